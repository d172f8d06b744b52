"""DenseNet: the checkpoint's variables, end points, and attention filters in the network."""

import numpy as np
import pytest

from nets import densenet
from nets.attention_filter import FILTER_COLLECTION
from nets.tf_slim_compat import slim, tf
from tests.helpers import FiltersAt, reference_variables

pytestmark = pytest.mark.slow  # builds full-size reference networks


TINY_LAYERS = (2, 2)
TINY_CLASSES = 10
TINY_LAST_CONV = "dense_block2/conv_block2"


def conv_blocks(num_layers):
    """Every conv block of every dense block: where the original L2-CAF put filters."""
    return ["dense_block%d/conv_block%d" % (block, layer)
            for block, block_layers in enumerate(num_layers, 1)
            for layer in range(1, block_layers + 1)]


def model_variables_by_name():
    """{name: shape} of the graph's variables, the attention filters' aside."""
    filters = set(tf.compat.v1.get_collection(FILTER_COLLECTION))
    return {variable.op.name: tuple(variable.shape.as_list())
            for variable in tf.compat.v1.global_variables() if variable not in filters}


def build_tiny(images, attention=None, reuse=None):
    with slim.arg_scope(densenet.densenet_arg_scope()):
        return densenet.densenet(images, num_classes=TINY_CLASSES, growth_rate=4,
                                 num_filters=8, num_layers=TINY_LAYERS, reuse=reuse,
                                 scope="tiny", attention=attention)


def random_images(batch=2, size=32):
    return np.random.RandomState(0).uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)


def test_densenet161_variables_equal_the_checkpoint():
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, [1, 224, 224, 3])
        attention = FiltersAt(conv_blocks(densenet.DENSENET161_LAYERS))
        with slim.arg_scope(densenet.densenet_arg_scope()):
            logits, end_points = densenet.densenet161(images, attention=attention)

        assert model_variables_by_name() == reference_variables("densenet161")
        # A raw filter and a gate per conv block, none of them among the model variables.
        assert len(tf.compat.v1.get_collection(FILTER_COLLECTION)) == 2 * sum(
            densenet.DENSENET161_LAYERS)
        assert all(f.activation is not None for f in attention.filters.values())
        assert end_points["dense_block4/conv_block24"].shape.as_list() == [1, 7, 7, 2208]
        assert logits.shape.as_list() == [1, 1000]


@pytest.mark.parametrize("network, scope, num_layers, channels", [
    (densenet.densenet121, "densenet121", densenet.DENSENET121_LAYERS, 1024),
    (densenet.densenet169, "densenet169", densenet.DENSENET169_LAYERS, 1664),
])
def test_densenet121_and_169_build_their_conv_blocks(network, scope, num_layers, channels):
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, [1, 224, 224, 3])
        with slim.arg_scope(densenet.densenet_arg_scope()):
            _, end_points = network(images)
        conv_block_points = [name for name in end_points if "/conv_block" in name]
        assert conv_block_points == conv_blocks(num_layers)
        assert len(conv_block_points) == sum(num_layers)
        assert end_points["PreLogits"].shape.as_list() == [1, channels]
        weights = model_variables_by_name()
        assert weights[scope + "/logits/weights"] == (1, 1, channels, 1000)
    assert network.default_image_size == 224


def test_tiny_densenet_end_point_shapes():
    with tf.Graph().as_default():
        _, end_points = build_tiny(tf.compat.v1.placeholder(tf.float32, [2, 32, 32, 3]))
        shapes = {name: tensor.shape.as_list() for name, tensor in end_points.items()}
    assert shapes == {
        "conv1": [2, 16, 16, 8],
        "pool1": [2, 8, 8, 8],
        "dense_block1/conv_block1": [2, 8, 8, 12],
        "dense_block1/conv_block2": [2, 8, 8, 16],
        "dense_block1": [2, 8, 8, 16],
        "transition_block1": [2, 4, 4, 8],
        "dense_block2/conv_block1": [2, 4, 4, 12],
        "dense_block2/conv_block2": [2, 4, 4, 16],
        "dense_block2": [2, 4, 4, 16],
        "final_block": [2, 4, 4, 16],
        "global_pool": [2, 1, 1, 16],
        "PreLogits": [2, 16],
        "Logits": [2, TINY_CLASSES],
        "Predictions": [2, TINY_CLASSES],
    }


def test_tiny_densenet_without_classes_returns_pre_logits():
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, [2, 32, 32, 3])
        with slim.arg_scope(densenet.densenet_arg_scope()):
            features, end_points = densenet.densenet(
                images, num_classes=None, growth_rate=4, num_filters=8, num_layers=TINY_LAYERS)
        assert features is end_points["PreLogits"]
        assert "Logits" not in end_points
        assert not [v for v in tf.compat.v1.global_variables() if "logits" in v.op.name]


def test_closed_gates_leave_the_network_bit_identical():
    with tf.Graph().as_default():
        images = tf.constant(random_images())
        plain_logits, _ = build_tiny(images)
        attention = FiltersAt(conv_blocks(TINY_LAYERS))
        # The same weights, with a filter (gate closed) after every conv block.
        logits, _ = build_tiny(images, attention=attention, reuse=tf.compat.v1.AUTO_REUSE)
        assert all(f.activation is not None for f in attention.filters.values())
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            plain, filtered = session.run([plain_logits, logits])
    np.testing.assert_array_equal(filtered, plain)


@pytest.mark.parametrize("filter_type", ["l2norm", "softmax"])
def test_open_gate_at_last_conv_block_filters_before_final_batch_norm(filter_type):
    with tf.Graph().as_default():
        attention = FiltersAt([TINY_LAST_CONV], filter_type=filter_type, rows=2)
        logits, end_points = build_tiny(tf.constant(random_images()), attention=attention)
        last_conv = attention.filters[TINY_LAST_CONV]
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            closed_logits = session.run(logits)
            session.run(last_conv.atten_var_gate.assign(True))
            raw, activation, output, final_block, open_logits = session.run(
                [last_conv.atten_var, last_conv.activation, last_conv.output,
                 end_points["final_block"], logits])

    flat = raw.reshape(len(raw), -1)
    if filter_type == "l2norm":
        expected_filter = flat / np.linalg.norm(flat, axis=1, keepdims=True)
    else:
        expected_filter = np.exp(flat) / np.exp(flat).sum(axis=1, keepdims=True)
    expected = activation * expected_filter.reshape(raw.shape)[..., None]
    np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-6)
    # Freshly initialised batch norm (mean 0, variance 1, gamma 1, beta 0) only rescales,
    # so final_block must be ReLU of the filtered map: the filter comes before its BN.
    np.testing.assert_allclose(final_block, np.maximum(expected, 0) / np.sqrt(1 + 1.1e-5),
                               rtol=1e-5, atol=1e-6)
    assert np.abs(open_logits - closed_logits).max() > 1e-4

