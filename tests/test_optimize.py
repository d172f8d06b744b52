"""The optimisation loop: Adam as TF's, per-row independence, the cached path, convergence."""
import collections

import numpy as np
import pytest

from l2caf.methods import L2CAF
from l2caf.model import Model
from l2caf.optimize import FilterOptimizer, learning_rate_at
from nets import nets_factory
from nets.tf_slim_compat import tf
from tests.helpers import random_demo_checkpoint

# Equal paths agree to about 1e-3 relative: TensorFlow's multi-threaded float32 sums vary
# in their last bits from run to run, and 30 Adam steps carry such differences on. The gauss
# filter's kernel is steep around its moving mean, so its maps agree to 5e-3 (they sum to 1;
# a wrong computation moves the whole peak).
GAUSS_ATOL = 5e-3


def settings_for(filter_type):
    """The gauss filter's mean moves across many ReLU knots of the demo model's head, where
    last-bit differences pick another piece of the gradient: fewer iterations keep two equal
    computations comparable."""
    return settings(max_iters=10, check_every=5) if filter_type == "gauss" else settings()


def assert_same_heatmap(actual, expected, filter_type):
    np.testing.assert_allclose(actual, expected, rtol=1e-3,
                               atol=GAUSS_ATOL if filter_type == "gauss" else 1e-4)


Settings = collections.namedtuple("Settings", ["learning_rate", "end_learning_rate", "max_iters",
                                               "tolerance", "check_every", "seed"])
SIZE = nets_factory.get_network("demo_densenet").image_size


def settings(**changes):
    values = dict(learning_rate=0.5, end_learning_rate=0.0, max_iters=30, tolerance=0.0,
                  check_every=10, seed=3)
    values.update(changes)
    return Settings(**values)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return random_demo_checkpoint(tmp_path_factory.mktemp("demo"), num_classes=4)[0]


@pytest.fixture
def demo_model(checkpoint):
    """Builds demo_densenet models that share one set of random weights."""
    def build(rows=1, filter_type="l2norm", layer=""):
        model = Model(nets_factory.get_network("demo_densenet"), 4, layer, filter_type, rows=rows)
        model.restore(checkpoint)
        return model
    return build


def random_images(count, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count, SIZE, SIZE, 3)).astype(np.float32)


def test_learning_rate_is_linear_decay():
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        rates = session.run([learning_rate_at(tf.constant(float(step)), 0.5, final, 1000.0)
                             for step, final in ((0, 0.0), (500, 0.0), (1000, 0.1),
                                                 (2000, 0.1))])
    assert rates == pytest.approx([0.5, 0.25, 0.1, 0.1])


def test_our_adam_follows_tensorflows_adam_with_polynomial_decay():
    # InceptionV1's head after Mixed_5c is smooth (a mean and a linear layer): no ReLU kink
    # turns last-bit differences between the two runs into different steps.
    model = Model(nets_factory.get_network("inception_v1"), 1001)
    optimizer = FilterOptimizer(model, "cls_oblivious")
    image = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    variable = model.filter.variable
    with model.graph.as_default():
        existing = set(tf.compat.v1.global_variables())
        step = tf.compat.v1.Variable(0, trainable=False, dtype=tf.int64)
        rate = tf.compat.v1.train.polynomial_decay(0.5, step, 30, 0.0, power=1.0)
        reference = tf.compat.v1.train.AdamOptimizer(rate).minimize(
            tf.reduce_sum(optimizer.row_losses), var_list=[variable], global_step=step)
        model.session.run(tf.compat.v1.variables_initializer(
            [v for v in tf.compat.v1.global_variables() if v not in existing]))
    activation, outputs = model.session.run([model.filter.activation, model.outputs],
                                            {model.images: image})
    feed = {model.filter.activation: activation}
    targets = outputs + 1.0
    initial = np.random.default_rng(1).standard_normal(variable.shape).astype(np.float32)
    result = optimizer.run(feed, initial, targets, settings())
    ours = model.session.run(variable)
    variable.load(initial, model.session)
    model.set_gate(True)
    for _ in range(30):
        model.session.run(reference, {model.filter.activation: activation,
                                      optimizer.targets: targets})
    np.testing.assert_allclose(ours, model.session.run(variable), rtol=1e-4, atol=1e-5)
    assert result.iterations.tolist() == [30]


@pytest.mark.parametrize("filter_type", ["l2norm", "softmax", "gauss"])
def test_cached_activation_equals_the_naive_path(filter_type, demo_model):
    model = demo_model(filter_type=filter_type)
    images = random_images(1)
    keys = ["a.jpg"]
    run = settings_for(filter_type)
    cached = L2CAF(model, "cls_specific", run, cache_activation=True)(images, keys, [[2]])
    naive = L2CAF(model, "cls_specific", run, cache_activation=False)(images, keys, [[2]])
    assert_same_heatmap(cached[0].heatmap, naive[0].heatmap, filter_type)
    assert cached[0].loss == pytest.approx(naive[0].loss, rel=1e-3, abs=1e-4)


@pytest.mark.parametrize("variant", ["cls_specific", "cls_oblivious"])
def test_rows_are_independent_and_seeded_per_image_and_class(variant, demo_model):
    images, keys = random_images(3, seed=5), ["x.png", "y.png", "z.png"]
    classes = [[0, 3], [1], [2, 0]] if variant == "cls_specific" else None
    batched = L2CAF(demo_model(rows=6), variant, settings())(images, keys, classes)
    single = L2CAF(demo_model(rows=1), variant, settings())
    for explanation in batched:
        index = explanation.image_index
        [alone] = single(images[index:index + 1], keys[index:index + 1],
                         None if classes is None else [[explanation.class_id]])
        assert_same_heatmap(explanation.heatmap, alone.heatmap, "l2norm")
    assert len(batched) == (5 if variant == "cls_specific" else 3)


def test_a_settled_row_stops_while_others_go_on(demo_model):
    model = demo_model(rows=2)
    optimizer = FilterOptimizer(model, "cls_specific")
    images = random_images(2)
    targets = np.ones((2, 4), np.float32)
    targets[:, 1] = -1
    initial = np.random.default_rng(0).standard_normal(model.filter.variable.shape)
    # Row 0 has a zero learning signal (all-zero class weights): its loss never moves.
    targets[0] = 0.0
    result = optimizer.run({model.images: images}, initial.astype(np.float32), targets,
                           settings(max_iters=60, tolerance=1e-9))
    assert result.iterations[0] == 20  # stopped at the second check: no change since the first
    assert result.iterations[1] == 60
    np.testing.assert_allclose(model.session.run(model.filter.variable)[0], initial[0],
                               rtol=1e-6)


def test_class_specific_raises_the_class_logit(demo_model):
    model = demo_model()
    explainer = L2CAF(model, "cls_specific", settings(max_iters=50))
    images = random_images(1)
    before = explainer.predict(images).outputs[0]
    target = int(np.argmin(before))
    [explanation] = explainer(images, ["a"], [[target]])
    model.set_gate(True)
    after = model.session.run(model.outputs, {model.images: images})[0]
    model.set_gate(False)
    assert after[target] - np.delete(after, target).mean() > \
        before[target] - np.delete(before, target).mean()
    assert explanation.heatmap.shape == model.filter_size
    assert explanation.heatmap.min() >= 0
    assert np.sum(explanation.heatmap ** 2) == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("explain, variant, filter_type", [
    ("logits", "cls_specific", "l2norm"),
    ("logits", "cls_oblivious", "softmax"),
    ("embedding", "cls_oblivious", "gauss"),
])
def test_linear_head_equals_running_the_head(explain, variant, filter_type):
    # InceptionV1's head after Mixed_5c is a mean and a linear layer: the loss is a
    # quadratic form in the filter, computed once per batch (LinearHead).
    model = Model(nets_factory.get_network("inception_v1"), 1001, rows=3, explain=explain,
                  filter_type=filter_type)
    images = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    classes = [[1], [5]] if variant == "cls_specific" else None
    fast = L2CAF(model, variant, settings(), precompute_head=True)
    plain = L2CAF(model, variant, settings(), precompute_head=False)
    assert fast.precomputed_head is not None and plain.precomputed_head is None
    for quick, slow in zip(fast(images, ["a", "b"], classes), plain(images, ["a", "b"], classes)):
        assert_same_heatmap(quick.heatmap, slow.heatmap, filter_type)
        assert quick.loss == pytest.approx(slow.loss, rel=1e-3, abs=1e-4)
        assert quick.iterations == slow.iterations


@pytest.mark.parametrize("filter_type", ["l2norm", "softmax", "gauss"])
def test_relu_head_equals_running_the_head(filter_type, demo_model):
    # DenseNet's head (batch norm, ReLU, mean, linear) makes the class-specific loss a sum
    # of piecewise-linear functions of each filter entry (ReluHead).
    model = demo_model(rows=3, filter_type=filter_type)
    images = random_images(2, seed=8)
    run = settings_for(filter_type)
    fast = L2CAF(model, "cls_specific", run, precompute_head=True)
    plain = L2CAF(model, "cls_specific", run, precompute_head=False)
    assert fast.precomputed_head is not None and plain.precomputed_head is None
    classes = [[0, 3], [2]]
    for quick, slow in zip(fast(images, ["a", "b"], classes), plain(images, ["a", "b"], classes)):
        assert_same_heatmap(quick.heatmap, slow.heatmap, filter_type)
        assert quick.loss == pytest.approx(slow.loss, rel=1e-3, abs=1e-4)
        assert quick.iterations == slow.iterations
