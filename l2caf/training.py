"""Training the demo models on the synthetic shapes: the small slim DenseNet of
l2caf.networks (`train`) and a small Keras CNN (`train_keras`).

The data are drawn fresh for the run (l2caf.synthetic, one seed), a model learns a softmax
over the shape classes (an image with two objects has half of each label), and the result
is a slim checkpoint of the model variables, or a .keras file, plus the label list.
"""
import os
import time

import numpy as np
from tqdm import tqdm

from l2caf import images, networks, synthetic
from l2caf.models import checkpoints
from l2caf.models.slim import build_network
from nets.tf_slim_compat import tf

DEMO_NETWORK = "demo_densenet"


def make_examples(num_images, image_size, seed, two_object_fraction,
                  input_size=networks.get_network(DEMO_NETWORK).image_size):
    """Images resized to the network's input and their soft label vectors."""
    pixels = np.zeros((num_images, input_size, input_size, 3), np.uint8)
    labels = np.zeros((num_images, len(synthetic.CLASS_NAMES)), np.float32)
    examples = synthetic.generate_examples(num_images, image_size, seed, two_object_fraction)
    for index, (image, objects) in enumerate(tqdm(examples, total=num_images, desc="data",
                                                  leave=False)):
        pixels[index] = images.resize(image, input_size)
        for box_object in objects:
            labels[index, synthetic.CLASS_NAMES.index(box_object.name)] += 1.0 / len(objects)
    return pixels, labels


def train(output_dir, num_images=4000, epochs=8, batch_size=32, learning_rate=2e-3,
          image_size=224, seed=0, two_object_fraction=0.5, num_validation=300):
    """Trains the demo model; writes <output_dir>/demo_densenet.ckpt and labels.txt.

    Returns the validation accuracy (top-1 on single-object images) in [0, 1].
    """
    spec = networks.get_network(DEMO_NETWORK)
    num_classes = len(synthetic.CLASS_NAMES)
    train_images, train_labels = make_examples(num_images, image_size, seed, two_object_fraction)
    valid_images, valid_labels = make_examples(num_validation, image_size, seed + 1, 0.0)
    steps = epochs * (num_images // batch_size)
    with tf.Graph().as_default():
        tf.compat.v1.set_random_seed(seed)
        images_in = tf.compat.v1.placeholder(tf.float32, [None, spec.image_size,
                                                          spec.image_size, 3])
        labels_in = tf.compat.v1.placeholder(tf.float32, [None, num_classes])
        is_training = tf.compat.v1.placeholder_with_default(False, [])
        logits, _ = build_network(spec, images_in, num_classes, is_training=is_training)
        model_variables = tf.compat.v1.global_variables()
        loss = tf.compat.v1.losses.softmax_cross_entropy(labels_in, logits) + \
            tf.compat.v1.losses.get_regularization_loss()
        step = tf.compat.v1.train.get_or_create_global_step()
        rate = tf.compat.v1.train.cosine_decay(learning_rate, step, steps)
        with tf.control_dependencies(tf.compat.v1.get_collection(
                tf.compat.v1.GraphKeys.UPDATE_OPS)):
            train_op = tf.compat.v1.train.AdamOptimizer(rate).minimize(loss, global_step=step)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            rng = np.random.default_rng(seed)
            progress = tqdm(range(steps), desc="training", unit="step")
            started = time.time()
            for _ in progress:
                batch = rng.choice(num_images, batch_size, replace=False)
                pixels = train_images[batch].astype(np.float32)
                flips = rng.random(batch_size) < 0.5  # the shapes look alike mirrored
                pixels[flips] = pixels[flips, :, ::-1]
                _, value = session.run([train_op, loss], {images_in: pixels,
                                                          labels_in: train_labels[batch],
                                                          is_training: True})
                progress.set_postfix(loss="%.3f" % value)
            predicted = np.concatenate([
                session.run(logits, {images_in: valid_images[i:i + 100].astype(np.float32)})
                for i in range(0, num_validation, 100)]).argmax(axis=1)
            accuracy = float(np.mean(predicted == valid_labels.argmax(axis=1)))
            os.makedirs(output_dir, exist_ok=True)
            checkpoints.save_variables(session, os.path.join(output_dir, spec.checkpoint_file),
                                       model_variables)
    with open(os.path.join(output_dir, "labels.txt"), "w") as stream:
        stream.write("\n".join(synthetic.CLASS_NAMES) + "\n")
    print("trained %d steps in %.0f s; validation accuracy %.3f"
          % (steps, time.time() - started, accuracy))
    return accuracy


KERAS_DEMO_SIZE = 96


def keras_demo_model(num_classes, size=KERAS_DEMO_SIZE):
    """A small CNN ending in global average pooling and a softmax Dense layer: two
    conv-BN-ReLU-pool stages, a conv-BN-ReLU stage, then a conv layer ('last_conv', a 24x24
    map at 96x96 input: fine enough for tight boxes). An L1 penalty on last_conv's
    activations keeps them near zero where nothing of a class is, so that its maps (and the
    heatmaps made there) are sharp."""
    import keras
    inputs = keras.Input((size, size, 3), name="image")
    net = keras.layers.Rescaling(1.0 / 255.0)(inputs)
    for stage, width in enumerate((24, 48, 96), 1):
        net = keras.layers.Conv2D(width, 3, padding="same", use_bias=False,
                                  name="conv%d" % stage)(net)
        net = keras.layers.BatchNormalization(name="bn%d" % stage)(net)
        net = keras.layers.ReLU(name="relu%d" % stage)(net)
        if stage < 3:
            net = keras.layers.MaxPooling2D(name="pool%d" % stage)(net)
    net = keras.layers.Conv2D(128, 3, padding="same", activation="relu", name="last_conv",
                              activity_regularizer=keras.regularizers.L1(5e-6))(net)
    net = keras.layers.GlobalAveragePooling2D(name="gap")(net)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(net)
    return keras.Model(inputs, outputs, name="demo_keras")


def train_keras(output_dir, num_images=4000, epochs=8, batch_size=32, learning_rate=2e-3,
                image_size=224, seed=0, two_object_fraction=0.5, num_validation=300):
    """Trains the Keras demo model on the images and their mirror images; writes
    <output_dir>/demo_keras.keras. Returns the validation accuracy (top-1 on single-object
    images) in [0, 1]."""
    import keras
    keras.utils.set_random_seed(seed)
    train_images, train_labels = make_examples(num_images, image_size, seed,
                                               two_object_fraction, KERAS_DEMO_SIZE)
    valid_images, valid_labels = make_examples(num_validation, image_size, seed + 1, 0.0,
                                               KERAS_DEMO_SIZE)
    # The shapes look alike mirrored.
    train_images = np.concatenate([train_images, train_images[:, :, ::-1]]).astype(np.float32)
    train_labels = np.concatenate([train_labels, train_labels])
    model = keras_demo_model(len(synthetic.CLASS_NAMES))
    steps = epochs * (len(train_images) // batch_size)
    model.compile(optimizer=keras.optimizers.Adam(
        keras.optimizers.schedules.CosineDecay(learning_rate, steps)),
        loss="categorical_crossentropy")
    started = time.time()
    model.fit(train_images, train_labels, batch_size=batch_size, epochs=epochs, verbose=2)
    predicted = model.predict(valid_images.astype(np.float32), verbose=0).argmax(axis=1)
    accuracy = float(np.mean(predicted == valid_labels.argmax(axis=1)))
    os.makedirs(output_dir, exist_ok=True)
    # Saved without the optimizer's state, which only training needs: a third of the size.
    trained = keras_demo_model(len(synthetic.CLASS_NAMES))
    trained.set_weights(model.get_weights())
    trained.save(os.path.join(output_dir, networks.KERAS_DEMO_FILE))
    with open(os.path.join(output_dir, "labels.txt"), "w") as stream:
        stream.write("\n".join(synthetic.CLASS_NAMES) + "\n")
    print("trained in %.0f s; validation accuracy %.3f" % (time.time() - started, accuracy))
    return accuracy
