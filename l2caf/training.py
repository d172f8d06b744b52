"""Training the demo model: the small DenseNet of l2caf.networks on the synthetic shapes.

The data are drawn fresh for the run (l2caf.synthetic, one seed), the model learns a
softmax over the shape classes (an image with two objects has half of each label), and
the result is a slim checkpoint of the model variables plus its label list.
"""
import os
import time

import numpy as np
from tqdm import tqdm

from l2caf import checkpoints, images, networks, synthetic
from l2caf.model import build_network
from nets.tf_slim_compat import tf

DEMO_NETWORK = "demo_densenet"


def make_examples(num_images, image_size, seed, two_object_fraction):
    """Images resized to the network's input and their soft label vectors."""
    spec = networks.get_network(DEMO_NETWORK)
    pixels = np.zeros((num_images, spec.image_size, spec.image_size, 3), np.uint8)
    labels = np.zeros((num_images, len(synthetic.CLASS_NAMES)), np.float32)
    examples = synthetic.generate_examples(num_images, image_size, seed, two_object_fraction)
    for index, (image, objects) in enumerate(tqdm(examples, total=num_images, desc="data",
                                                  leave=False)):
        pixels[index] = images.resize(image, spec.image_size)
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
