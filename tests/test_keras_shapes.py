"""Keras models as they are trained: nested models, several outputs, inputs of any height
and width, models without a fixed size, one-channel models, and token maps (vision
transformers), each built here; the heatmaps checked against the model run by hand."""
import os

import cv2
import keras
import numpy as np
import pytest
import tf_keras
import yaml
from keras import layers, ops

from l2caf.cli import visualize, visualize_fast
from l2caf.errors import ConfigError
from l2caf.models.keras import KerasModel, filter_layers
from l2caf.methods import CAM, L2CAF, GradCAM
from l2caf.files import read_json_lines as read_results
from l2caf.runs.folder import load_heatmap
from nets.tf_slim_compat import tf
from tests.helpers import REPO_ROOT

SETTINGS = {"max_iters": 30, "check_every": 10, "tolerance": 0.0}


def images_of(height, width, count=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count, height, width, 3)).astype(
        np.float32)


def seeded(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.3, w.shape) for w in model.get_weights()])
    return model


def by_hand_filtered(model_layers, images, factor):
    """conv -> top (its map times factor) -> global mean -> dense, on real tensors."""
    conv, top, dense = model_layers
    mapped = top(conv(tf.constant(images))).numpy().astype(np.float64)
    pooled = (mapped * factor[..., None]).mean(axis=(1, 2))
    kernel, bias = (np.asarray(w, np.float64) for w in dense.get_weights())
    return pooled @ kernel + bias


def nested_model(api):
    """A backbone model inside a Sequential model with a pooling and a Dense head: the
    transfer-learning layout."""
    inner_inputs = api.Input((16, 16, 3))
    conv = api.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inner_inputs)
    top = api.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="top")(conv)
    backbone = api.Model(inner_inputs, top, name="backbone")
    return seeded(api.Sequential([api.Input((16, 16, 3)), backbone,
                                  api.layers.GlobalAveragePooling2D(name="gap"),
                                  api.layers.Dense(3, name="dense")], name="transfer"))


@pytest.mark.parametrize("api", [keras, tf_keras], ids=["keras3", "tf_keras"])
def test_a_layer_inside_a_nested_model(api):
    model = nested_model(api)
    layers_found, default = filter_layers(model)
    assert [(name, size) for name, size, _ in layers_found] == [
        ("backbone/conv", (16, 16)), ("backbone/top", (8, 8))]
    images = images_of(16, 16)
    backbone = model.get_layer("backbone")
    parts = (backbone.get_layer("conv"), backbone.get_layer("top"), model.get_layer("dense"))
    with KerasModel(model, rows=2) as explained:
        assert (default, explained.layer, explained.linear_head_layer) == ("backbone/top",) * 3
        np.testing.assert_allclose(explained.predict(images).outputs,
                                   model(images, training=False).numpy(), rtol=1e-5, atol=1e-5)
        factor = np.random.default_rng(1).uniform(0, 2, (2, 8, 8)).astype(np.float32)
        filtered = tf.function(lambda: explained.filtered_outputs(tf.constant(factor),
                                                                  tf.constant(images)))()
        np.testing.assert_allclose(filtered.numpy(), by_hand_filtered(parts, images, factor),
                                   rtol=1e-4, atol=1e-5)
        for a, b in zip(CAM(explained)(images, [0, 2]), GradCAM(explained)(images, [0, 2])):
            np.testing.assert_allclose(a.heatmap, b.heatmap, atol=1e-5)
    with KerasModel(model, layer="backbone/conv", rows=2) as explained:
        cached = L2CAF(explained, settings=SETTINGS)(images, [0, 2])
        whole = L2CAF(explained, settings=SETTINGS, cache_activation=False)(images, [0, 2])
        for a, b in zip(cached, whole):
            assert a.heatmap.shape == (16, 16)
            np.testing.assert_allclose(a.heatmap, b.heatmap, rtol=1e-4, atol=1e-6)


def test_a_nested_model_is_listed_by_list_layers(tmp_path, capsys):
    path = str(tmp_path / "transfer.keras")
    nested_model(keras).save(path)
    assert visualize.main(["--network", "keras", "--checkpoint", path, "--list_layers"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines[-2:]] == [["backbone/conv", "16x16"],
                                                         ["backbone/top", "8x8"]]
    assert lines[-1].endswith("(default: the last conv layer)")


@pytest.mark.slow
def test_the_transfer_learning_model_with_resnet50_inside():
    keras.utils.set_random_seed(0)
    # As users write it: the Sequential takes the backbone's input, of any size.
    model = keras.Sequential([keras.applications.ResNet50(include_top=False, weights=None),
                              layers.GlobalAveragePooling2D(), layers.Dense(10)])
    images = images_of(64, 64)
    with KerasModel(model, rows=2, preprocess="caffe", image_size=64) as explained:
        assert (explained.layer, explained.linear_head_layer, explained.filter_size) == (
            "resnet50/conv5_block3_out", "resnet50/conv5_block3_out", (2, 2))
        reference = keras.applications.resnet50.preprocess_input(images.copy())
        np.testing.assert_allclose(explained.predict(images).outputs,
                                   model(reference, training=False).numpy(), rtol=1e-4,
                                   atol=1e-4)
        for a, b in zip(CAM(explained)(images, [1, 7]), GradCAM(explained)(images, [1, 7])):
            np.testing.assert_allclose(a.heatmap, b.heatmap, atol=1e-4)
        fast = L2CAF(explained, settings=SETTINGS)(images, [1, 7])
        plain = L2CAF(explained, settings=SETTINGS, precompute_head=False)(images, [1, 7])
        for a, b in zip(fast, plain):
            np.testing.assert_allclose(a.heatmap, b.heatmap, rtol=1e-3, atol=1e-5)


def two_output_model():
    inputs = keras.Input((16, 16, 3))
    conv = layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    side = layers.Conv2D(2, 3, strides=2, activation="relu", name="side")(inputs)
    classes = layers.Dense(3, activation="softmax", name="class")(
        layers.GlobalAveragePooling2D(name="gap")(conv))
    box = layers.Dense(4, name="box")(layers.GlobalAveragePooling2D(name="side_gap")(side))
    return seeded(keras.Model(inputs, [classes, box], name="two_heads"))


def test_a_model_with_several_outputs_explains_the_one_chosen():
    model = two_output_model()
    images = images_of(16, 16)
    with pytest.raises(ConfigError, match=r"has 2 outputs \(class, box\); choose the explained "
                                          r"one with output \(a name or an index\)"):
        KerasModel(model)
    for output in ("class", 0, "0"):
        with KerasModel(model, output=output, rows=2) as explained:
            assert (explained.output, explained.layer, explained.linear_head_layer,
                    explained.num_classes) == ("class", "conv", "conv", 3)
            prediction = explained.predict(images)
            probabilities = model(images)[0].numpy()
            np.testing.assert_allclose(prediction.probabilities, probabilities, atol=1e-6)
            # The losses see the logits: the softmax's input, by hand.
            conv = model.get_layer("conv")(tf.constant(images)).numpy().mean(axis=(1, 2))
            kernel, bias = model.get_layer("class").get_weights()
            np.testing.assert_allclose(prediction.outputs, conv @ kernel + bias, rtol=1e-4,
                                       atol=1e-5)
    with KerasModel(model, output="box") as explained:
        assert (explained.layer, explained.num_classes, explained.filter_size) == (
            "side", 4, (7, 7))
    with pytest.raises(ConfigError, match="no layer conv with a spatial map that feeds "
                                          "output box; layers where a filter can go: side"):
        KerasModel(model, output="box", layer="conv")
    with pytest.raises(ConfigError, match=r"no output 'boxes'; its outputs: class, box \(or "
                                          r"their indices 0..1\)"):
        KerasModel(model, output="boxes")
    with pytest.raises(ConfigError, match="no output 2"):
        KerasModel(model, output=2)


def gap_dense_model(input_shape, strides=2, name="model"):
    inputs = keras.Input(input_shape)
    conv = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    top = layers.Conv2D(6, 3, strides=strides, padding="same", activation="relu",
                        name="top")(conv)
    outputs = layers.Dense(3, name="dense")(layers.GlobalAveragePooling2D(name="gap")(top))
    return seeded(keras.Model(inputs, outputs, name=name))


def test_an_input_of_any_height_and_width():
    model = gap_dense_model((24, 16, 3))
    picture = np.random.default_rng(2).uniform(0, 255, (30, 50, 3)).astype(np.uint8)
    with KerasModel(model, rows=2) as explained:
        assert (explained.input_shape, explained.filter_size) == ((24, 16, 3), (12, 8))
        batch = explained.prepare([picture, picture[:20]])
        assert batch.shape == (2, 24, 16, 3) and batch.dtype == np.float32
        np.testing.assert_array_equal(batch[0], cv2.resize(picture, (16, 24),
                                                           interpolation=cv2.INTER_LINEAR))
        np.testing.assert_allclose(explained.predict(batch).outputs, model(batch).numpy(),
                                   rtol=1e-5, atol=1e-5)
        for method in (L2CAF(explained, settings=SETTINGS), CAM(explained),
                       GradCAM(explained)):
            assert [e.heatmap.shape for e in method([picture, picture], [0, 1])] == [(12, 8)] * 2
    with KerasModel(model, image_size=(24, 16)) as explained:
        assert explained.image_size == (24, 16)
    with pytest.raises(ConfigError, match="takes 24x16 images, not image_size 24$"):
        KerasModel(model, image_size=24)


def test_a_model_without_a_fixed_size_takes_image_size():
    model = gap_dense_model((None, None, 3), name="any_size")
    with pytest.raises(ConfigError, match="takes images of any size; give image_size"):
        KerasModel(model)
    pictures = [np.random.default_rng(3).uniform(0, 255, (40, 30, 3)).astype(np.uint8)]
    for image_size, shape in ((20, (10, 10)), ("20x28", (10, 14)), ((20, 28), (10, 14))):
        layers_found, default = filter_layers(model, image_size)
        assert (layers_found[-1][:2], default) == (("top", shape), "top")
        with KerasModel(model, image_size=image_size) as explained:
            assert (explained.layer, explained.filter_size) == ("top", shape)
            batch = explained.prepare(pictures)
            np.testing.assert_allclose(explained.predict(batch).outputs, model(batch).numpy(),
                                       rtol=1e-5, atol=1e-5)
            assert L2CAF(explained, settings=SETTINGS)(pictures)[0].heatmap.shape == shape


def test_a_one_channel_model_takes_gray_images():
    model = gap_dense_model((12, 12, 1), strides=1, name="gray")
    pictures = [np.random.default_rng(4).uniform(0, 255, (30, 20, 3)).astype(np.uint8)]
    with KerasModel(model, preprocess="tf") as explained:
        batch = explained.prepare(pictures)
        resized = cv2.resize(pictures[0], (12, 12), interpolation=cv2.INTER_LINEAR)
        gray = resized.astype(np.float64) @ [0.299, 0.587, 0.114]  # ITU-R BT.601 luma
        assert batch.shape == (1, 12, 12, 1)
        np.testing.assert_allclose(batch[0, ..., 0], gray, atol=1e-3)
        np.testing.assert_array_equal(explained.prepare(batch), batch)
        np.testing.assert_allclose(explained.predict(batch).outputs,
                                   model(batch / 127.5 - 1.0).numpy(), rtol=1e-5, atol=1e-5)
        assert GradCAM(explained)(pictures)[0].heatmap.shape == (12, 12)
    with pytest.raises(ConfigError, match="takes one-channel \\(gray\\) images; preprocess "
                                          "caffe is for RGB images"):
        KerasModel(model, preprocess="caffe")


def test_the_visualiser_on_a_gray_model_of_any_size(tmp_path):
    path = str(tmp_path / "gray.keras")
    gap_dense_model((None, None, 1), name="gray_any").save(path)
    output_dir = str(tmp_path / "run")
    arguments = ["--network", "keras", "--checkpoint", path, "--image_size", "20x28",
                 "--images", os.path.join(REPO_ROOT, "input_imgs"), "--max_iters", "5",
                 "--output_dir", output_dir, "--progress", "false", "--batch_size", "3"]
    assert visualize_fast.main(arguments) == 0
    records = read_results(os.path.join(output_dir, "results.jsonl"))
    assert len(records) == 6
    assert {load_heatmap(r["heatmap"], output_dir).shape for r in records} == {(10, 14)}
    with open(os.path.join(output_dir, "config.yaml")) as stream:
        saved = yaml.safe_load(stream)
    assert (saved["image_size"], saved["made_with"]["image_size"]) == ("20x28", [20, 28])
    assert visualize_fast.main(arguments) == 0  # the same settings: all already done
    assert len(read_results(os.path.join(output_dir, "results.jsonl"))) == 6


class ClassToken(layers.Layer):
    """A learnt token put before the patch tokens."""

    def build(self, shape):
        self.token = self.add_weight(shape=(1, 1, shape[-1]), initializer="random_normal")

    def call(self, tokens):
        return ops.concatenate([ops.tile(self.token, (ops.shape(tokens)[0], 1, 1)), tokens],
                               axis=1)


def tiny_vit(class_token):
    """A two-block vision transformer on 32x32 images: 4x4 patches of 8x8 pixels, 16
    channels, a class token (its output read by the head) or global average pooling."""
    inputs = keras.Input((32, 32, 3))
    tokens = layers.Reshape((16, 16), name="tokens")(
        layers.Conv2D(16, 8, strides=8, name="patches")(inputs))
    if class_token:
        tokens = ClassToken(name="cls")(tokens)
    for block in range(2):
        normed = layers.LayerNormalization(name="ln%da" % block)(tokens)
        attended = layers.MultiHeadAttention(2, 8, name="attention%d" % block)(normed, normed)
        tokens = layers.Add(name="add%d" % block)([tokens, attended])
        normed = layers.LayerNormalization(name="ln%db" % block)(tokens)
        hidden = layers.Dense(32, activation="gelu", name="mlp%da" % block)(normed)
        tokens = layers.Add(name="block%d" % block)(
            [tokens, layers.Dense(16, name="mlp%db" % block)(hidden)])
    tokens = layers.LayerNormalization(name="norm")(tokens)
    pooled = tokens[:, 0] if class_token else layers.GlobalAveragePooling1D(name="gap")(tokens)
    outputs = layers.Dense(5, activation="softmax", name="head")(pooled)
    model = keras.Model(inputs, outputs, name="vit")
    rng = np.random.default_rng(5)
    model.set_weights([w + rng.normal(0, 0.2, w.shape) for w in model.get_weights()])
    return model


def after_block0(model):
    """The ViT's logits from block0's output tokens on (its layers on real tensors)."""
    def logits(tokens):
        normed = model.get_layer("ln1a")(tokens)
        added = model.get_layer("add1")([tokens, model.get_layer("attention1")(normed, normed)])
        hidden = model.get_layer("mlp1a")(model.get_layer("ln1b")(added))
        out = model.get_layer("norm")(model.get_layer("block1")(
            [added, model.get_layer("mlp1b")(hidden)]))
        head = model.get_layer("head")
        return tf.matmul(out[:, 0], head.kernel) + head.bias
    return lambda tokens: logits(tf.constant(tokens, tf.float32))


def test_a_vision_transformer_with_a_class_token():
    model = tiny_vit(class_token=True)
    images = images_of(32, 32, seed=6)
    listed = dict((name, (size, what)) for name, size, what in filter_layers(model)[0])
    assert listed["patches"] == ((4, 4), "")
    assert listed["tokens"] == ((4, 4), "tokens")
    assert listed["block0"] == ((4, 4), "tokens, class token first")
    block0 = keras.Model(model.inputs[0], model.get_layer("block0").output)(images).numpy()
    block0 = block0.astype(np.float32)
    rest = after_block0(model)
    with KerasModel(model, layer="block0", rows=2) as explained:
        assert (explained.filter_size, explained.linear_head_layer) == ((4, 4), None)
        prediction = explained.predict(images)
        np.testing.assert_allclose(prediction.probabilities, model(images).numpy(), atol=1e-6)
        # float32 tokens of magnitude ~100: a last-bit difference between two call paths is
        # ~1e-5 absolute, so the tolerance is relative.
        np.testing.assert_allclose(prediction.activation,
                                   block0[:, 1:].reshape(2, 4, 4, 16), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(prediction.outputs, rest(block0).numpy(), rtol=1e-4,
                                   atol=1e-4)
        # The filter multiplies the patch tokens, row by row of the grid; the class token
        # passes as it is.
        factor = np.random.default_rng(7).uniform(0, 2, (2, 4, 4)).astype(np.float32)
        gate = np.concatenate([np.ones((2, 1)), factor.reshape(2, 16)], axis=1)[..., None]
        filtered = tf.function(lambda: explained.filtered_outputs(tf.constant(factor),
                                                                  tf.constant(images)))()
        np.testing.assert_allclose(filtered.numpy(), rest(block0 * gate).numpy(), rtol=1e-4,
                                   atol=1e-4)
        cached = L2CAF(explained, settings=SETTINGS)(images, [0, 3])
        whole = L2CAF(explained, settings=SETTINGS, cache_activation=False)(images, [0, 3])
        for a, b in zip(cached, whole):
            assert a.heatmap.shape == (4, 4)
            np.testing.assert_allclose(a.heatmap, b.heatmap, rtol=1e-4, atol=1e-5)
        # Grad-CAM by its formula: ReLU(sum_c mean(d logit / d A_c) A_c), maximum 1.
        patches = tf.constant(block0)
        with tf.GradientTape() as tape:
            tape.watch(patches)
            score = tf.reduce_sum(rest(patches) * tf.one_hot([0, 3], 5))
        gradients = tape.gradient(score, patches).numpy()[:, 1:].astype(np.float64)
        weights = gradients.mean(axis=1)
        activation = block0[:, 1:].astype(np.float64)
        expected = np.maximum(np.einsum("ntc,nc->nt", activation, weights), 0).reshape(2, 4, 4)
        expected /= expected.max(axis=(1, 2), keepdims=True)
        for explanation, heatmap in zip(GradCAM(explained)(images, [0, 3]), expected):
            np.testing.assert_allclose(explanation.heatmap, heatmap, atol=1e-4)
    with KerasModel(model) as explained, pytest.raises(
            ConfigError, match="CAM needs a head that is a global mean"):
        CAM(explained)


def test_a_vision_transformer_with_global_average_pooling_has_a_linear_head():
    model = tiny_vit(class_token=False)
    images = images_of(32, 32, seed=8)
    with KerasModel(model, rows=2) as explained:
        assert (explained.layer, explained.linear_head_layer, explained.filter_size) == (
            "norm", "norm", (4, 4))
        for a, b in zip(CAM(explained)(images, [1, 2]), GradCAM(explained)(images, [1, 2])):
            np.testing.assert_allclose(a.heatmap, b.heatmap, atol=1e-5)
        fast = L2CAF(explained, settings=SETTINGS)(images, [1, 2])
        plain = L2CAF(explained, settings=SETTINGS, precompute_head=False)(images, [1, 2])
        for a, b in zip(fast, plain):
            np.testing.assert_allclose(a.heatmap, b.heatmap, rtol=1e-3, atol=1e-5)
