"""InceptionV1: checkpoint variables, equality with tf-slim's reference, attention gates."""
import collections

import numpy as np
import pytest

from nets.tf_slim_compat import tf, slim
from l2caf import filters
from nets import inception_v1
from nets.attention_filter import FILTER_COLLECTION, AttentionFilter
from tf_slim.nets import inception_v1 as reference  # after nets.tf_slim_compat: see there
from tests.helpers import FiltersAt, reference_variables

pytestmark = pytest.mark.slow  # builds full-size reference networks

IMAGE_SIZE = inception_v1.inception_v1.default_image_size
COMPARED_END_POINTS = ['Conv2d_1a_7x7', 'Mixed_3c', 'Mixed_4f', 'Mixed_5c', 'Logits']
# Where the original L2-CAF code put its filters in InceptionV1.
ORIGINAL_FILTER_POINTS = ['Mixed_4c', 'Mixed_4e', 'Mixed_4f', 'Mixed_5b', 'Mixed_5c']

ReferenceRun = collections.namedtuple('ReferenceRun', ['checkpoint', 'images', 'end_points'])


def random_value(variable, rng):
    """He-scaled weights and small BN statistics, so activations stay O(1) through the net."""
    shape = variable.shape.as_list()
    name = variable.op.name
    if name.endswith('moving_variance'):
        return rng.uniform(0.5, 1.5, shape)
    if name.endswith('weights'):
        return rng.normal(0.0, np.sqrt(2.0 / np.prod(shape[:-1])), shape)
    return rng.normal(0.0, 0.1, shape)


def build(images, **kwargs):
    with slim.arg_scope(inception_v1.inception_v1_arg_scope()):
        return inception_v1.inception_v1(images, **kwargs)


def restore(sess, checkpoint):
    """Loads the network weights from `checkpoint` and initialises the other variables (the
    attention filters)."""
    model_variables = slim.get_model_variables()
    tf.compat.v1.train.Saver(model_variables).restore(sess, checkpoint)
    sess.run(tf.compat.v1.variables_initializer(
        [v for v in tf.compat.v1.global_variables() if v not in model_variables]))


def normalized_filter(raw, filter_type):
    """n(f) of each row of `raw` [rows, H, W], in numpy."""
    flat = raw.reshape(len(raw), -1)
    if filter_type == 'l2norm':
        flat = flat / np.linalg.norm(flat, axis=1, keepdims=True)
    else:
        exp = np.exp(flat - flat.max(axis=1, keepdims=True))
        flat = exp / exp.sum(axis=1, keepdims=True)
    return flat.reshape(raw.shape)


@pytest.fixture(scope='module')
def reference_run(tmp_path_factory):
    """tf-slim's InceptionV1 with random weights: its checkpoint and outputs on random images."""
    rng = np.random.RandomState(0)
    images = rng.uniform(-1.0, 1.0, [2, IMAGE_SIZE, IMAGE_SIZE, 3]).astype(np.float32)
    checkpoint = str(tmp_path_factory.mktemp('inception_v1') / 'random.ckpt')
    with tf.Graph().as_default():
        with slim.arg_scope(reference.inception_v1_arg_scope()):
            _, end_points = reference.inception_v1(
                tf.constant(images), num_classes=1001, is_training=False)
        with tf.compat.v1.Session() as sess:
            variables = tf.compat.v1.global_variables()
            # One run that feeds every initializer: far faster than a load() per variable.
            sess.run([v.initializer for v in variables],
                     {v.initializer.inputs[1]: random_value(v, rng) for v in variables})
            outputs = sess.run({name: end_points[name] for name in COMPARED_END_POINTS})
            tf.compat.v1.train.Saver().save(sess, checkpoint)
    return ReferenceRun(checkpoint, images, outputs)


def test_variables_equal_the_checkpoint_list():
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, [1, IMAGE_SIZE, IMAGE_SIZE, 3])
        build(images, num_classes=1001, attention=FiltersAt(ORIGINAL_FILTER_POINTS))
        filter_variables = tf.compat.v1.get_collection(FILTER_COLLECTION)
        network_variables = [v for v in tf.compat.v1.global_variables()
                             if v not in filter_variables]
        expected = reference_variables("inception_v1")

        assert {v.op.name: tuple(v.shape.as_list()) for v in network_variables} == expected
        assert {v.op.name for v in slim.get_model_variables()} == set(expected)
        assert sorted(v.op.name for v in filter_variables) == sorted(
            'InceptionV1/%s/%s' % (point, name)
            for point in ORIGINAL_FILTER_POINTS
            for name in ('atten_var', 'atten_var_gate'))


def test_restored_reference_weights_give_the_reference_outputs(reference_run):
    with tf.Graph().as_default():
        logits, end_points = build(tf.constant(reference_run.images),
                                   attention=FiltersAt(['Mixed_5c']))
        with tf.compat.v1.Session() as sess:
            restore(sess, reference_run.checkpoint)
            outputs = sess.run({name: end_points[name] for name in COMPARED_END_POINTS})

    assert logits.shape.as_list() == [2, 1001]
    assert np.abs(reference_run.end_points['Logits']).max() > 0.1  # not a trivial comparison
    for name in COMPARED_END_POINTS:
        np.testing.assert_allclose(outputs[name], reference_run.end_points[name],
                                   rtol=1e-4, atol=1e-4, err_msg=name)


def test_injected_filter_and_gate_at_mixed_4f(reference_run):
    """A filter variable and gate made outside the network: closed, the gate changes
    nothing; open, it multiplies Mixed_4f by n(f) (both types)."""
    filter_types = ['l2norm', 'softmax']
    raw = np.random.RandomState(1).normal(size=[2, 14, 14]).astype(np.float32)
    with tf.Graph().as_default():
        images = tf.constant(reference_run.images)
        plain_logits, plain_end_points = build(images)
        logits, mixed_4f, injected = {}, {}, {}
        for filter_type in filter_types:
            with tf.compat.v1.variable_scope('outside_' + filter_type):
                atten_var = tf.compat.v1.get_variable('atten_var', [2, 14, 14])
                gate = tf.compat.v1.get_variable('atten_var_gate', [], tf.bool,
                                                 initializer=tf.compat.v1.zeros_initializer())
            attention = AttentionFilter(
                'Mixed_4f', atten_var, gate,
                lambda raw, filter_type=filter_type: filters.normalize(raw, filter_type, 14))
            logits[filter_type], end_points = build(
                images, attention=attention, reuse=tf.compat.v1.AUTO_REUSE)
            mixed_4f[filter_type] = end_points['Mixed_4f']
            injected[filter_type] = attention
        fetches = [plain_logits, plain_end_points['Mixed_4f'], logits, mixed_4f]
        with tf.compat.v1.Session() as sess:
            restore(sess, reference_run.checkpoint)
            closed = sess.run(fetches)
            for attention_filter in injected.values():
                attention_filter.atten_var.load(raw, sess)
                attention_filter.atten_var_gate.load(True, sess)
            opened = sess.run(fetches)

    plain_logits_value, unfiltered, closed_logits, closed_mixed_4f = closed
    _, _, opened_logits, opened_mixed_4f = opened
    for filter_type in filter_types:
        np.testing.assert_array_equal(closed_mixed_4f[filter_type], unfiltered)
        np.testing.assert_array_equal(closed_logits[filter_type], plain_logits_value)
        expected = unfiltered * normalized_filter(raw, filter_type)[..., None]
        np.testing.assert_allclose(opened_mixed_4f[filter_type], expected,
                                   rtol=1e-5, atol=1e-6, err_msg=filter_type)
        assert np.abs(opened_logits[filter_type] - plain_logits_value).max() > 1e-3


def test_gauss_filter_at_mixed_5c(reference_run):
    with tf.Graph().as_default():
        attention = FiltersAt(['Mixed_5c'], filter_type='gauss')
        _, end_points = build(tf.constant(reference_run.images[:1]), attention=attention)
        mixed_5c = attention.filters['Mixed_5c']
        with tf.compat.v1.Session() as sess:
            restore(sess, reference_run.checkpoint)
            mixed_5c.atten_var.load([[1.0, -2.0]], sess)
            mixed_5c.atten_var_gate.load(True, sess)
            activation, filtered = sess.run([mixed_5c.activation, end_points['Mixed_5c']])

    grid = np.arange(-3, 4)
    density = np.exp(-0.5 * ((grid[:, None] - 1.0) ** 2 + (grid[None, :] + 2.0) ** 2))
    kernel = density / density.sum()
    assert mixed_5c.atten_var.shape.as_list() == [1, 2]
    np.testing.assert_allclose(filtered, activation * kernel[None, :, :, None],
                               rtol=1e-5, atol=1e-7)


def test_global_pool_equals_the_7x7_pool_at_224_and_takes_small_images(reference_run):
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, [2, None, None, 3])
        logits, end_points = build(images, global_pool=True)
        with tf.compat.v1.Session() as sess:
            restore(sess, reference_run.checkpoint)
            full_size_logits = sess.run(logits, {images: reference_run.images})
            small_logits, small_pre_logits = sess.run(
                [logits, end_points['PreLogits']], {images: reference_run.images[:, :96, :96]})

    np.testing.assert_allclose(full_size_logits, reference_run.end_points['Logits'],
                               rtol=1e-4, atol=1e-4)
    assert small_logits.shape == (2, 1001)
    assert small_pre_logits.shape == (2, 1024)
