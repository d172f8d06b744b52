"""ResNet V2: the slim checkpoint's variables, the slim reference's outputs, and filters."""

import numpy as np
import pytest

from nets.tf_slim_compat import slim, tf  # before tf_slim.nets: it fixes tf-slim's import
from nets import resnet_v2
from nets.attention_filter import FILTER_COLLECTION
from tf_slim.nets import resnet_v2 as reference
from tests.helpers import FiltersAt, reference_variables

pytestmark = pytest.mark.slow  # builds full-size reference networks

IMAGE_SHAPE = [2, 224, 224, 3]


def variable_shapes(variables):
    return {v.op.name: tuple(v.shape.as_list()) for v in variables}


def build_ours(images, **kwargs):
    with slim.arg_scope(resnet_v2.resnet_arg_scope()):
        return resnet_v2.resnet_v2_50(images, **kwargs)


def initialize_randomly(sess, seed=0):
    """Filters at their initial values; random model weights that keep activations finite:
    He-like convolutions, BN scales and variances near 1."""
    sess.run(tf.compat.v1.variables_initializer(tf.compat.v1.get_collection(FILTER_COLLECTION)))
    rng = np.random.RandomState(seed)
    values = {}
    for variable in slim.get_model_variables():
        shape = variable.shape.as_list()
        name = variable.op.name
        if name.endswith('weights'):
            value = rng.normal(scale=np.sqrt(1.0 / np.prod(shape[:-1])), size=shape)
        elif name.endswith(('gamma', 'moving_variance')):
            value = rng.uniform(0.5, 1.5, size=shape)
        else:  # biases, beta, moving_mean
            value = rng.normal(scale=0.1, size=shape)
        values[name] = value.astype(np.float32)
    assign_op, feed_dict = slim.assign_from_values(values)
    sess.run(assign_op, feed_dict)


def random_images(shape=IMAGE_SHAPE, seed=1):
    return np.random.RandomState(seed).uniform(-1, 1, size=shape).astype(np.float32)


def normalized_filter(filter_type, raw):
    """n(f) in numpy: f / ||f|| per row, or the Gaussian kernel at mu on the -3..3 grid."""
    if filter_type == 'l2norm':
        return raw / np.linalg.norm(raw.reshape(len(raw), -1), axis=1)[:, None, None]
    grid = np.arange(-3, 4, dtype=np.float64)
    density = np.exp(-0.5 * ((grid[None, :, None] - raw[:, 0, None, None]) ** 2
                             + (grid[None, None, :] - raw[:, 1, None, None]) ** 2))
    return density / density.sum(axis=(1, 2), keepdims=True)


def test_variables_equal_the_checkpoint_and_end_points_have_slim_shapes():
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, IMAGE_SHAPE)
        logits, end_points = build_ours(images, attention=FiltersAt(['postnorm']))

        assert variable_shapes(slim.get_model_variables()) == reference_variables("resnet_v2_50")
        filters = tf.compat.v1.get_collection(FILTER_COLLECTION)
        assert sorted(v.op.name for v in filters) == [
            'resnet_v2_50/postnorm/atten_var', 'resnet_v2_50/postnorm/atten_var_gate']
        non_filter = set(tf.compat.v1.global_variables()) - set(filters)
        assert variable_shapes(non_filter) == reference_variables("resnet_v2_50")

        shapes = {name: net.shape.as_list() for name, net in end_points.items()}
        assert shapes['conv1'] == [2, 112, 112, 64]
        assert shapes['pool1'] == [2, 56, 56, 64]
        assert shapes['block1/unit_3'] == shapes['block1'] == [2, 28, 28, 256]
        assert shapes['block3/unit_6'] == [2, 7, 7, 1024]
        assert shapes['postnorm'] == [2, 7, 7, 2048]
        assert shapes['global_pool'] == [2, 1, 1, 2048]
        assert shapes['PreLogits'] == [2, 2048]
        assert shapes['Logits'] == shapes['Predictions'] == [2, 1001]
        assert logits is end_points['Logits']
        assert len([n for n in end_points if '/unit_' in n]) == 16


def test_restores_a_slim_reference_checkpoint_with_equal_outputs(tmp_path):
    images_value = random_images()
    checkpoint = str(tmp_path / 'reference.ckpt')
    with tf.Graph().as_default() as graph:
        images = tf.compat.v1.placeholder(tf.float32, IMAGE_SHAPE)
        with slim.arg_scope(reference.resnet_arg_scope()):
            reference_logits, reference_end_points = reference.resnet_v2_50(
                images, num_classes=1001, is_training=False)
        with tf.compat.v1.Session() as sess:
            initialize_randomly(sess)
            tf.compat.v1.train.Saver(slim.get_model_variables()).save(sess, checkpoint)
            expected = sess.run({
                'logits': tf.squeeze(reference_logits, [1, 2]),
                'postnorm': graph.get_tensor_by_name('resnet_v2_50/postnorm/Relu:0'),
                'block2': reference_end_points['resnet_v2_50/block2'],
            }, {images: images_value})

    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, IMAGE_SHAPE)
        attention = FiltersAt(['postnorm'])
        logits, end_points = build_ours(images, attention=attention)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.variables_initializer(
                tf.compat.v1.get_collection(FILTER_COLLECTION)))
            tf.compat.v1.train.Saver(slim.get_model_variables()).restore(sess, checkpoint)
            assert not sess.run(attention.filters['postnorm'].atten_var_gate)
            actual = sess.run({'logits': logits, 'postnorm': end_points['postnorm'],
                               'block2': end_points['block2']}, {images: images_value})

    assert np.all(np.isfinite(expected['logits']))
    assert np.std(expected['logits']) > 1e-3  # the random weights reach the logits
    for name in expected:
        scale = np.abs(expected[name]).max()
        np.testing.assert_allclose(actual[name], expected[name], rtol=1e-4, atol=1e-4 * scale)


def test_output_stride_matches_the_slim_reference_with_shared_weights():
    images_value = random_images([1, 64, 64, 3])
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, [1, 64, 64, 3])
        with slim.arg_scope(reference.resnet_arg_scope()):
            reference_logits, _ = reference.resnet_v2_50(
                images, num_classes=1001, is_training=False, output_stride=8)
        logits, end_points = build_ours(images, output_stride=8, reuse=True)
        with tf.compat.v1.Session() as sess:
            initialize_randomly(sess)
            expected, actual = sess.run([tf.squeeze(reference_logits, [1, 2]), logits],
                                        {images: images_value})
    assert end_points['postnorm'].shape.as_list() == [1, 8, 8, 2048]
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_closed_gates_leave_the_network_bit_identical():
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, IMAGE_SHAPE)
        attention = FiltersAt(['block3/unit_6', 'postnorm'])
        filtered_logits, filtered_end_points = build_ours(images, attention=attention)
        plain_logits, plain_end_points = build_ours(images, reuse=True)
        with tf.compat.v1.Session() as sess:
            initialize_randomly(sess)
            filtered, plain = sess.run(
                [(filtered_logits, filtered_end_points['postnorm']),
                 (plain_logits, plain_end_points['postnorm'])], {images: random_images()})
    assert sorted(attention.filters) == ['block3/unit_6', 'postnorm']
    np.testing.assert_array_equal(filtered[0], plain[0])
    np.testing.assert_array_equal(filtered[1], plain[1])


@pytest.mark.parametrize('end_point, filter_type', [
    ('postnorm', 'l2norm'),
    ('postnorm', 'gauss'),
    ('block3/unit_6', 'l2norm'),
])
def test_open_gate_multiplies_the_end_point_by_the_normalized_filter(end_point, filter_type):
    batch = IMAGE_SHAPE[0]
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, IMAGE_SHAPE)
        attention = FiltersAt([end_point], filter_type=filter_type, rows=batch)
        logits, end_points = build_ours(images, attention=attention)
        inserted = attention.filters[end_point]
        assert inserted.atten_var.op.name == 'resnet_v2_50/%s/atten_var' % end_point
        with tf.compat.v1.Session() as sess:
            initialize_randomly(sess)
            feed = {images: random_images()}
            closed_logits = sess.run(logits, feed)
            raw = np.random.RandomState(2).normal(
                size=inserted.atten_var.shape.as_list()).astype(np.float32)
            inserted.atten_var.load(raw, sess)
            inserted.atten_var_gate.load(True, sess)
            activation, output, open_logits = sess.run(
                [inserted.activation, end_points[end_point], logits], feed)

    expected = activation * normalized_filter(filter_type, raw)[..., None]
    np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())
    assert not np.allclose(open_logits, closed_logits, rtol=1e-3, atol=1e-3)


def test_resnet_v2_101_extends_block3_of_resnet_v2_50():
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, [1, 64, 64, 3])
        with slim.arg_scope(resnet_v2.resnet_arg_scope()):
            _, end_points = resnet_v2.resnet_v2_101(images)
        shapes = variable_shapes(slim.get_model_variables())
    assert len(shapes) == 544  # 33 units of 16 variables, 4 shortcuts, root and head
    in_resnet_v2_50 = {name.replace('resnet_v2_50/', 'resnet_v2_101/', 1): shape
                       for name, shape in reference_variables("resnet_v2_50").items()}
    assert {name: shapes[name] for name in in_resnet_v2_50} == in_resnet_v2_50
    added_units = {name.split('/bottleneck_v2/')[0] for name in set(shapes) - set(in_resnet_v2_50)}
    assert added_units == {'resnet_v2_101/block3/unit_%d' % u for u in range(7, 24)}
    assert 'block3/unit_23' in end_points and 'block3/unit_24' not in end_points
    assert resnet_v2.resnet_v2_101.default_image_size == 224
