"""The optimisation: Adam as TF's, the original's loop and convergence rule, the heads agree,
rows are independent."""
import types

import numpy as np
import pytest

from l2caf import filters, heads
from l2caf.errors import ConfigError
from l2caf.methods import L2CAF
from l2caf.models.slim import Model
from l2caf.optimize import FilterOptimizer, Loop, learning_rate_at
from l2caf.runs.visualize import GIF_SIZE, LoadedImage, _GifRecorder
from l2caf.settings import Settings
from nets.tf_slim_compat import tf
from tests.helpers import DEMO_CHECKPOINT, load_values, random_demo_checkpoint

# Equal paths agree to about 1e-3 relative: TensorFlow's multi-threaded float32 sums vary
# in their last bits from run to run, and 30 Adam steps carry such differences on. The gauss
# filter's kernel is steep around its moving mean, so its maps agree to 5e-3 (they sum to 1;
# a wrong computation moves the whole peak).
GAUSS_ATOL = 5e-3
SIZE = 168  # the demo network's input


def settings(**changes):
    values = dict(max_iters=30, tolerance=0.0, check_every=10, seed=3)
    values.update(changes)
    return Settings(**values)


def settings_for(filter_type):
    """The gauss filter's mean moves across many ReLU knots of the demo model's head, where
    last-bit differences pick another piece of the gradient: fewer iterations keep two equal
    computations comparable."""
    return settings(max_iters=10, check_every=5) if filter_type == "gauss" else settings()


def assert_same_heatmap(actual, expected, filter_type):
    np.testing.assert_allclose(actual, expected, rtol=1e-3,
                               atol=GAUSS_ATOL if filter_type == "gauss" else 1e-4)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return random_demo_checkpoint(tmp_path_factory.mktemp("demo"), num_classes=4)[0]


@pytest.fixture
def demo_model(checkpoint):
    """Builds demo_densenet models that share one set of random weights."""
    def build(rows=1, filter_type="l2norm", layer=""):
        return Model.load("demo_densenet", checkpoint, layer, filter_type, rows=rows)
    return build


def random_images(count, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count, SIZE, SIZE, 3)).astype(np.float32)


def test_learning_rate_is_linear_decay():
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        rates = session.run([learning_rate_at(tf.constant(float(step)), 0.5, final, 1000.0)
                             for step, final in ((0, 0.0), (500, 0.0), (1000, 0.1),
                                                 (2000, 0.1))])
    assert rates == pytest.approx([0.5, 0.25, 0.1, 0.1])


@pytest.mark.slow
def test_our_adam_follows_tensorflows_adam_with_polynomial_decay():
    # InceptionV1's head after Mixed_5c is smooth (a mean and a linear layer): no ReLU kink
    # turns last-bit differences between the two runs into different steps.
    model = Model("inception_v1", 1001)
    explainer = L2CAF(model, "cls_oblivious", settings(), precompute_head=False)
    image = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    variable = model.filter.atten_var
    with model.graph.as_default():
        existing = set(tf.compat.v1.global_variables())
        targets = tf.compat.v1.placeholder(tf.float32, model.outputs.shape)
        loss = tf.reduce_sum(heads.caf_loss("cls_oblivious", model.outputs, targets))
        step = tf.compat.v1.Variable(0, trainable=False, dtype=tf.int64)
        rate = tf.compat.v1.train.polynomial_decay(0.5, step, 30, 0.0, power=1.0)
        reference = tf.compat.v1.train.AdamOptimizer(rate).minimize(
            loss, var_list=[variable], global_step=step)
        model.session.run(tf.compat.v1.variables_initializer(
            [v for v in tf.compat.v1.global_variables() if v not in existing]))
    [ours] = explainer(image, keys=["a"])
    initial = filters.initial_filter("l2norm", 7, 7, 3, "a", None)
    unfiltered = model.predict(image).outputs
    load_values(model, [(variable, initial[None])])
    model.set_gate(True)
    for _ in range(30):
        model.session.run(reference, {model.images: image, targets: unfiltered})
    expected = model.session.run(model.heatmap)[0]
    np.testing.assert_allclose(ours.heatmap, expected, rtol=1e-4, atol=1e-5)
    assert ours.iterations == 30


def original_loop(model, image, class_id, initial, run_settings):
    """A transcription of the authors' visualize_attention.py loop (TF1 AdamOptimizer,
    polynomial decay on a global step, one session run per iteration computing the loss and
    applying the update, a check every 50 iterations against the loss of the previous check,
    MAX_INT first); returns (updates made, heatmap)."""
    with model.graph.as_default():
        existing = set(tf.compat.v1.global_variables())
        per_class = tf.compat.v1.placeholder(tf.float32, model.logits.shape)
        loss = tf.reduce_sum(per_class * model.logits)
        global_step = tf.compat.v1.Variable(0, trainable=False, dtype=tf.int64)
        rate = tf.compat.v1.train.polynomial_decay(
            run_settings.learning_rate, global_step, run_settings.max_iters,
            run_settings.end_learning_rate, power=1.0)
        train_op = tf.compat.v1.train.AdamOptimizer(rate).minimize(
            loss, var_list=[model.filter.atten_var], global_step=global_step)
        model.session.run(tf.compat.v1.variables_initializer(
            [v for v in tf.compat.v1.global_variables() if v not in existing]))
    load_values(model, [(model.filter.atten_var, initial[None])])
    model.set_gate(True)
    per_class_maximization = np.ones((1, model.num_classes), np.float32)
    per_class_maximization[0, class_id] = -1
    max_int = np.iinfo(np.int16).max
    iteration, prev_loss = 0, max_int
    while iteration < run_settings.max_iters:
        loss_value, _ = model.session.run([loss, train_op], {
            model.images: image, per_class: per_class_maximization})
        if iteration % 50 == 0:
            if np.abs(loss_value - prev_loss) < run_settings.tolerance:
                break
            prev_loss = loss_value
        iteration += 1
    updates = min(iteration + 1, run_settings.max_iters)
    heatmap = model.session.run(model.heatmap)[0]
    model.set_gate(False)
    return updates, heatmap


@pytest.mark.parametrize("tolerance, expected_updates", [(1000.0, 51), (1e-2, None)])
def test_convergence_follows_the_original_loop(tolerance, expected_updates):
    run_settings = Settings(max_iters=400, tolerance=tolerance, seed=1)
    model = Model.load("demo_densenet", DEMO_CHECKPOINT)
    image = random_images(1, seed=4)
    class_id = model.top_classes(model.predict(image).probabilities[0], 1)[0]
    initial = filters.initial_filter("l2norm", 21, 21, 1, "x.jpg", class_id)
    updates, heatmap = original_loop(model, image, class_id, initial, run_settings)
    if expected_updates is not None:
        assert updates == expected_updates
    else:  # converged at a later check: the counts to compare are not trivial
        assert 51 < updates < 400 and updates % 50 == 1
    for cache_activation in (False, True):  # the whole network, then the precomputed head
        [ours] = L2CAF(model, settings=run_settings, cache_activation=cache_activation)(
            image, [class_id], ["x.jpg"])
        assert ours.iterations == updates
        np.testing.assert_allclose(ours.heatmap, heatmap, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("filter_type", ["l2norm", "softmax", "gauss"])
def test_every_head_gives_the_naive_paths_heatmap(filter_type, demo_model):
    model = demo_model(filter_type=filter_type)
    images = random_images(1)
    run = settings_for(filter_type)
    naive = L2CAF(model, "cls_specific", run, cache_activation=False)(images, [[2]], ["a.jpg"])
    for precompute_head in (False, True):
        explainer = L2CAF(model, "cls_specific", run, precompute_head=precompute_head)
        assert isinstance(explainer.head, heads.ReluHead if precompute_head
                          else heads.NetworkHead)
        [cached] = explainer(images, [[2]], ["a.jpg"])
        assert_same_heatmap(cached.heatmap, naive[0].heatmap, filter_type)
        assert cached.loss == pytest.approx(naive[0].loss, rel=1e-3, abs=1e-4)
        assert cached.iterations == naive[0].iterations


@pytest.mark.parametrize("variant", ["cls_specific", "cls_oblivious"])
def test_rows_are_independent_and_seeded_per_image_and_class(variant, demo_model):
    images, keys = random_images(3, seed=5), ["x.png", "y.png", "z.png"]
    classes = [[0, 3], [1], [2, 0]] if variant == "cls_specific" else None
    # 5 pairs on 4 rows: explained in two turns.
    batched = L2CAF(demo_model(rows=4), variant, settings())(images, classes, keys)
    single = L2CAF(demo_model(rows=1), variant, settings())
    for explanation in batched:
        index = explanation.image_index
        [alone] = single(images[index:index + 1],
                         None if classes is None else [[explanation.class_id]],
                         keys[index:index + 1])
        assert_same_heatmap(explanation.heatmap, alone.heatmap, "l2norm")
    assert [(e.image_index, e.class_id) for e in batched] == (
        [(0, 0), (0, 3), (1, 1), (2, 2), (2, 0)] if variant == "cls_specific"
        else [(0, None), (1, None), (2, None)])


def test_a_settled_row_stops_at_a_check_while_others_go_on(demo_model):
    model = demo_model(rows=2)
    optimizer = FilterOptimizer(model, heads.NetworkHead(model, "cls_specific"))
    images = random_images(2)
    prediction = model.predict(images)
    targets = heads.loss_targets("cls_specific", prediction.outputs, [1, 1])
    targets[0] = 0.0  # no learning signal: row 0's loss never moves
    initial = np.random.default_rng(0).standard_normal(model.filter.atten_var.shape)
    checks = []
    result = optimizer.run(images, prediction.activation, [0, 1], targets,
                           initial.astype(np.float32),
                           Loop.of(settings(max_iters=60, tolerance=1e-9)),
                           lambda updates, _, running: checks.append((updates, list(running))))
    # Row 0 equals the previous check at iteration 10: it stops after 11 updates.
    assert result.iterations.tolist() == [11, 60]
    assert checks == [(1, [True, True]), (11, [True, True]), (21, [False, True]),
                      (31, [False, True]), (41, [False, True]), (51, [False, True])]
    np.testing.assert_allclose(model.session.run(model.filter.atten_var)[0], initial[0],
                               rtol=1e-6)


def test_class_specific_lowers_its_loss_and_raises_the_class_from_the_initial_filter():
    model = Model.load("demo_densenet", DEMO_CHECKPOINT)
    images = random_images(1, seed=6)
    target = int(np.argmin(model.predict(images).outputs[0]))

    def filtered_outputs(raw):
        load_values(model, [(model.filter.atten_var, raw)])
        model.set_gate(True)
        outputs = model.session.run(model.outputs, {model.images: images})[0]
        model.set_gate(False)
        return outputs

    start = filtered_outputs(filters.initial_filter("l2norm", 21, 21, 3, "0", target)[None])
    [explanation] = L2CAF(model, "cls_specific", settings(max_iters=50))(images, [target])
    end = filtered_outputs(model.session.run(model.filter.atten_var))
    weights = heads.loss_targets("cls_specific", [end], [target])[0]
    assert (weights * end).sum() < (weights * start).sum()
    # The reported loss is that of the last iteration, before its (small) update.
    assert explanation.loss == pytest.approx((weights * end).sum(), rel=0.05)
    assert end[target] - np.delete(end, target).sum() > \
        start[target] - np.delete(start, target).sum()
    assert explanation.heatmap.shape == model.filter_size
    assert explanation.heatmap.min() >= 0
    assert np.sum(explanation.heatmap ** 2) == pytest.approx(1.0, rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("explain, variant, filter_type", [
    ("logits", "cls_specific", "l2norm"),
    ("logits", "cls_oblivious", "softmax"),
    ("embedding", "cls_oblivious", "gauss"),
])
def test_linear_head_equals_running_the_head(explain, variant, filter_type):
    # InceptionV1's head after Mixed_5c is a mean and a linear layer: the loss is a
    # quadratic form in the filter, computed once per batch (LinearHead).
    model = Model("inception_v1", 1001, rows=3, explain=explain, filter_type=filter_type)
    images = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    classes = [[1], [5]] if variant == "cls_specific" else None
    fast = L2CAF(model, variant, settings(), precompute_head=True)
    plain = L2CAF(model, variant, settings(), precompute_head=False)
    assert isinstance(fast.head, heads.LinearHead) and isinstance(plain.head, heads.NetworkHead)
    for quick, slow in zip(fast(images, classes), plain(images, classes)):
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
    assert isinstance(fast.head, heads.ReluHead) and isinstance(plain.head, heads.NetworkHead)
    classes = [[0, 3], [2]]
    for quick, slow in zip(fast(images, classes), plain(images, classes)):
        assert_same_heatmap(quick.heatmap, slow.heatmap, filter_type)
        assert quick.loss == pytest.approx(slow.loss, rel=1e-3, abs=1e-4)
        assert quick.iterations == slow.iterations


def test_an_intermediate_layer_runs_the_layers_after_it(demo_model):
    model = demo_model(layer="dense_block1/conv_block2")
    explainer = L2CAF(model, "cls_specific", settings())
    assert isinstance(explainer.head, heads.NetworkHead)
    assert explainer.head.sources == ("activation",)
    images = random_images(1, seed=2)
    naive = L2CAF(model, "cls_specific", settings(), cache_activation=False)
    [cached], [whole] = explainer(images, [1]), naive(images, [1])
    assert cached.heatmap.shape == model.filter_size == (42, 42)
    assert_same_heatmap(cached.heatmap, whole.heatmap, "l2norm")


def test_settings_have_the_papers_defaults_and_take_a_dict():
    assert Settings() == Settings(0.5, 0.0, 1000, 1e-6, 50, 0)
    assert Settings.of({"max_iters": 300}) == Settings(max_iters=300)
    assert Settings.of(None) == Settings()
    with pytest.raises(ConfigError, match="unknown setting.*max_iter;.*max_iters"):
        Settings.of({"max_iter": 300})
    with pytest.raises(ConfigError, match="check_every must be at least 1"):
        Settings(check_every=0)


def test_gif_frames_keep_the_images_aspect_ratio():
    # The frames of an optimisation (every check, then the final heatmap): the image's
    # shape at a longer side of 224, as its overlay keeps the image's shape.
    pictures = [np.full((300, 451, 3), 200, np.uint8), np.full((600, 400, 3), 90, np.uint8),
                np.zeros((50, 50, 3), np.uint8)]
    recorder = _GifRecorder(types.SimpleNamespace(overlay_alpha=0.6), [
        LoadedImage(None, None, picture.shape[:2], picture) for picture in pictures])
    maps = np.random.default_rng(0).uniform(size=(3, 7, 7)).astype(np.float32)
    recorder.on_check(1, maps, np.array([True, True, True]))
    explanation = types.SimpleNamespace(iterations=51, heatmap=maps[0])
    for row, shape in enumerate([(149, 224), (224, 149), (224, 224)]):
        frames = recorder.frames(row, explanation)
        assert len(frames) == 2 and max(shape) == GIF_SIZE
        assert [frame.shape for frame in frames] == [shape + (3,)] * 2
