"""Opti-CAM (l2caf.methods.OptiCAM) against a float64 transcription of its authors' loop
(github hanwei0912/OptiCAM, util.py's Basic_OptCAM with generate_opticam.py's plain loss and
max-min normalisation), written here on a tiny network computed in numpy too (shared with
the one-pass methods' tests: tests.helpers.TinyNetwork), and on a slim network whose input
gradient alone comes from TensorFlow; rows that stop on their own; its configuration; and,
on the shipped demo models, maps that localise the objects and beat the random floor on
every faithfulness score, in both visualisers and the evaluation."""
import json
import os

import numpy as np
import pytest

from l2caf import OptiCAM, config, evaluation, synthetic
from l2caf.errors import ConfigError
from l2caf.methods import METHODS, RandomMap
from l2caf.models.keras import KerasModel
from l2caf.models.slim import Model
from l2caf.optimize import Loop
from l2caf.settings import OPTICAM_DEFAULTS
from nets.tf_slim_compat import tf
# INPUT: the tiny network's 13 pixels, which Opti-CAM upsamples its layer's 6 to.
from tests.helpers import (DEMO_CHECKPOINT, DEMO_DIR, DEMO_LABELS, REPO_ROOT,
                           TINY_INPUT as INPUT, TinyNetwork, bilinear_matrix)

ADAM = (0.9, 0.999, 1e-8)


def relu(x):
    return np.maximum(x, 0.0)


def min_max(values):
    return (values - values.min()) / (values.max() - values.min())


def reference_loop(logit_and_gradient, image, features, class_id, learning_rate, max_iters):
    """The authors' Basic_OptCAM.forward in float64 for one image and class: weights 0.5,
    torch's Adam at a constant rate, the plain loss (the logit on the image minus the logit
    on the masked image), a check every max_iters // 10 steps that returns the map computed
    before that step's update once the loss rose. Returns (the weights whose map it returns,
    the losses at the checks [(step, loss)], the updates behind the returned map)."""
    beta1, beta2, epsilon = ADAM
    height, width = image.shape[:2]
    rows, columns = (bilinear_matrix(features.shape[0], height),
                     bilinear_matrix(features.shape[1], width))
    features = relu(features)
    weights = np.full(features.shape[-1], 0.5)
    first, second = np.zeros_like(weights), np.zeros_like(weights)
    original, _ = logit_and_gradient(image, class_id)
    previous, checks = 1e10, []
    for step in range(max_iters):
        alpha = np.exp(weights - weights.max())
        alpha /= alpha.sum()
        upsampled = rows @ (features @ alpha) @ columns.T
        low, high = upsampled.min(), upsampled.max()
        mask = (upsampled - low) / (high - low)
        masked_logit, to_image = logit_and_gradient(image * mask[..., None], class_id)
        loss = original - masked_logit
        # d loss / d mask, then back through the max-min normalisation (the gradient of the
        # extremes goes to their pixels), the upsampling, the channel sum and the softmax.
        to_mask = -(to_image * image).sum(axis=-1)
        to_upsampled = to_mask / (high - low)
        to_upsampled.flat[np.argmin(upsampled)] += np.sum(to_mask * (mask - 1.0)) / (high - low)
        to_upsampled.flat[np.argmax(upsampled)] -= np.sum(to_mask * mask) / (high - low)
        to_alpha = np.einsum("hwc,hw->c", features, rows.T @ to_upsampled @ columns)
        gradient = alpha * (to_alpha - np.sum(alpha * to_alpha))
        before = weights.copy()
        first = beta1 * first + (1 - beta1) * gradient
        second = beta2 * second + (1 - beta2) * gradient ** 2
        denominator = np.sqrt(second) / np.sqrt(1 - beta2 ** (step + 1)) + epsilon
        weights = weights - learning_rate / (1 - beta1 ** (step + 1)) * first / denominator
        if step % (max_iters // 10) == 0:
            checks.append((step, loss))
            if loss > previous:
                return before, checks, step
            previous = loss
    return weights, checks, max_iters


def reference_maps(weights, features, size):
    """(the heatmap at the layer's resolution, the reference's mask at the image's) of
    weights."""
    alpha = np.exp(weights - weights.max())
    saliency = relu(features) @ (alpha / alpha.sum())
    upsampled = bilinear_matrix(saliency.shape[0], size[0]) @ saliency @ \
        bilinear_matrix(saliency.shape[1], size[1]).T
    return min_max(saliency), min_max(upsampled)


@pytest.fixture(scope="module")
def tiny():
    network = TinyNetwork()
    with KerasModel(network.keras_model, layer="features", preprocess="tf", rows=3) as model:
        images = np.random.default_rng(1).uniform(0, 255, (3, INPUT, INPUT, 3))
        yield network, model, images.astype(np.float32)


def check_against_reference(network, images, explanations, learning_rate, max_iters):
    for explanation in explanations:
        image = images[explanation.image_index].astype(np.float64)
        features = network.features(network.network_input(image))
        weights, checks, updates = reference_loop(
            network.logit_and_gradient, image, features, explanation.class_id, learning_rate,
            max_iters)
        heatmap, mask = reference_maps(weights, features, image.shape[:2])
        assert explanation.iterations == updates
        np.testing.assert_allclose(explanation.heatmap, heatmap, atol=1e-4)
        # Upsampled, min-max normalised: the mask the reference returns.
        np.testing.assert_allclose(min_max(bilinear_matrix(6, INPUT) @ explanation.heatmap
                                           @ bilinear_matrix(6, INPUT).T), mask, atol=1e-4)
        history = explanation.loss_history if updates < max_iters \
            else explanation.loss_history[:-1]  # the last iteration's loss, no check
        assert [step for step, _ in history] == [step for step, _ in checks]
        np.testing.assert_allclose([loss for _, loss in history],
                                   [loss for _, loss in checks], rtol=1e-4, atol=1e-5)
        yield explanation, updates


def test_opticam_equals_the_reference_loop(tiny):
    network, model, images = tiny
    # 4 pairs on 3 rows: explained in two turns.
    explanations = OptiCAM(model, learning_rate=0.1, max_iters=30)(images, [[0, 2], [1], [1]])
    assert [(e.image_index, e.class_id) for e in explanations] == [(0, 0), (0, 2), (1, 1),
                                                                     (2, 1)]
    checked = list(check_against_reference(network, images, explanations, 0.1, 30))
    # Two rows' losses rose at a check (after 3 and 12 updates), two ran every iteration.
    assert [updates for _, updates in checked] == [3, 12, 30, 30]
    for explanation, updates in checked:
        assert explanation.heatmap.shape == (6, 6) and explanation.heatmap.dtype == np.float32
        assert explanation.heatmap.min() == 0.0 and explanation.heatmap.max() == \
            pytest.approx(1.0)
        if updates == 30:  # the class's logit on the masked image rose: the loss fell
            assert explanation.loss < explanation.loss_history[0][1]
    # The maps moved away from the start (all weights equal: the plain sum of the channels).
    start, _ = reference_maps(np.zeros(4), network.features(network.network_input(
        images[1].astype(np.float64))), (INPUT, INPUT))
    assert np.abs(explanations[2].heatmap - start).max() > 0.05


def test_a_row_whose_loss_rises_stops_with_the_map_of_that_check_while_others_go_on(tiny):
    network, model, images = tiny
    # A large rate overshoots: the loss rises at a check for some rows, not for others.
    explanations = OptiCAM(model, learning_rate=3.0, max_iters=20)(images, [[0], [1], [2]])
    checked = list(check_against_reference(network, images, explanations, 3.0, 20))
    updates = [count for _, count in checked]
    assert min(updates) < 20 and max(updates) == 20, updates
    for explanation, count in checked:
        if count < 20:  # stopped at a check: its update there is discarded
            assert count % 2 == 0 and explanation.loss_history[-1][0] == count
            assert explanation.loss == explanation.loss_history[-1][1]


def test_opticams_loop_and_its_defaults_are_the_papers(tiny):
    assert OPTICAM_DEFAULTS == {"learning_rate": 0.1, "max_iters": 100}
    network = tiny[0]
    with KerasModel(network.keras_model, layer="features", preprocess="tf") as model:
        explainer = OptiCAM(model)
        assert explainer.loop() == Loop("adam_pytorch", 0.1, 0.1, 100, 10, "rose")
        assert OptiCAM(model, max_iters=5).loop().check_every == 1
        assert METHODS["opticam"] is OptiCAM
        for arguments, message in [({"learning_rate": 0}, "OptiCAM's learning_rate must be a "
                                                          "finite number, positive, got 0"),
                                   ({"max_iters": 2.5}, "OptiCAM's max_iters must be a whole "
                                                        "number")]:
            with pytest.raises(ConfigError, match=message):
                OptiCAM(model, **arguments)
    with KerasModel(network.keras_model, layer="features", explain="embedding") as model:
        with pytest.raises(ConfigError, match="OptiCAM raises a class's logit: it needs a "
                                              "model that explains logits, not embedding"):
            OptiCAM(model)


def test_the_configuration_takes_opticam_with_its_papers_defaults(tmp_path):
    def parse(argv, table=config.OPTIONS):
        return config.parse("", table, argv)[0]
    values = parse(["--method", "opticam"])
    assert (values.learning_rate, values.max_iters) == (0.1, 100)
    values = parse(["--method", "opticam", "--learning_rate", "0.05", "--save_gif", "true"])
    assert (values.learning_rate, values.max_iters, values.save_gif) == (0.05, 100, True)
    path = tmp_path / "c.yaml"
    path.write_text("method: opticam\nmax_iters: 40\n")
    assert parse(["--config", str(path)]).max_iters == 40
    with pytest.raises(ConfigError, match="preset pytorch is one of L2-CAF's implementations, "
                                          "and method opticam is not L2-CAF"):
        parse(["--method", "opticam", "--preset", "pytorch"])
    with pytest.raises(ConfigError, match="method opticam explains classes"):
        parse(["--method", "opticam", "--caf_variant", "cls_oblivious"])


# The slim networks: the reference loop with the network's logit and its gradient with
# respect to the image from the model's own graph (float32), the rest in float64.

def slim_logit_and_gradient(model):
    with model.graph.as_default():
        image = tf.compat.v1.placeholder(tf.float32, [1] + list(model.input_shape))
        weights = tf.compat.v1.placeholder(tf.float32, [1, model.num_classes])
        logit = tf.reduce_sum(weights * model.logits_of(image))
        gradient = tf.gradients(logit, image)[0]

    def logit_and_gradient(values, class_id):
        one_hot = np.eye(model.num_classes)[[model.class_output(class_id)]]
        result = model.session.run([logit, gradient], {image: values[None], weights: one_hot})
        return float(result[0]), result[1][0].astype(np.float64)
    return logit_and_gradient


def test_opticam_on_a_slim_network_equals_the_reference_loop(random_demo):
    checkpoint, _ = random_demo
    with Model.load("demo_densenet", checkpoint, rows=2) as model:
        images = np.random.default_rng(3).uniform(0, 255, (2, 168, 168, 3)).astype(np.float32)
        activation = model.predict(images).activation
        logit_and_gradient = slim_logit_and_gradient(model)
        stops = []
        for learning_rate in (0.3, 1.0):  # image 1's loss rises (after 7, then 2 updates)
            explanations = OptiCAM(model, learning_rate, max_iters=10)(images, [[0], [2]])
            stops.append([explanation.iterations for explanation in explanations])
            for explanation in explanations:
                index = explanation.image_index
                weights, checks, updates = reference_loop(
                    logit_and_gradient, images[index].astype(np.float64),
                    activation[index].astype(np.float64), explanation.class_id,
                    learning_rate, 10)
                heatmap, _ = reference_maps(weights, activation[index].astype(np.float64),
                                            (168, 168))
                assert explanation.iterations == updates
                np.testing.assert_allclose(explanation.heatmap, heatmap, atol=1e-4)
                np.testing.assert_allclose(
                    [loss for _, loss in explanation.loss_history[:len(checks)]],
                    [loss for _, loss in checks], rtol=1e-4, atol=1e-4)
        assert stops == [[10, 7], [10, 2]]


# The shipped demo models.

HELD_OUT_SEED = 777  # training used seeds 0 (training set) and 1 (validation)
THRESHOLDS = np.arange(0.05, 0.951, 0.05)


@pytest.fixture(scope="module")
def held_out():
    """Opti-CAM (the paper's settings) and the random maps of 24 held-out single-object
    images on the shipped slim demo model, and their faithfulness scores (curves of 24
    steps; ROAD at one fraction, half the pixels: its nine at 224x224 are 18 sparse solves
    a heatmap)."""
    from l2caf.evaluation.faithfulness import Faithfulness
    from l2caf.preprocessing import preprocess
    examples = list(synthetic.generate_examples(24, 224, HELD_OUT_SEED, 0.0))
    images = [image for image, _ in examples]
    classes = [synthetic.CLASS_NAMES.index(objects[0].name) for _, objects in examples]
    with Model.load("demo_densenet", DEMO_CHECKPOINT, rows=24) as model:
        explanations = {"opticam": OptiCAM(model)(images, classes),
                        "random": RandomMap(model)(images, classes)}
        inputs = preprocess(model.prepare(images), model.preprocessing)
        scorer = Faithfulness(model, steps=24, road_fractions=(0.5,))
        scores = {name: scorer(inputs, [e.heatmap for e in found],
                               [e.class_id for e in found], [e.image_index for e in found])
                  for name, found in explanations.items()}
    yield examples, explanations, scores


@pytest.mark.slow
def test_opticam_localises_held_out_objects_and_beats_random_on_every_faithfulness_score(
        held_out):
    examples, explanations, scores = held_out
    measured = {}
    for name, found in explanations.items():
        sweep, pointing, energy = [], [], []
        for threshold in THRESHOLDS:
            sweep.append(np.mean([evaluation.iou(evaluation.heatmap_to_box(
                e.heatmap, examples[e.image_index][0].shape[:2], threshold),
                examples[e.image_index][1][0].box) >= 0.5 for e in found]))
        for e in found:
            image, objects = examples[e.image_index]
            hit, share = evaluation.pointing.pointing_scores(
                e.heatmap, image.shape[:2], [objects[0].box])
            pointing.append(hit)
            energy.append(share)
        measured[name] = {
            "best GT-known loc": max(sweep), "pointing game": np.mean(pointing),
            "energy pointing game": np.mean(energy),
            "deletion AUC": np.mean([s.deletion_auc for s in scores[name]]),
            "insertion AUC": np.mean([s.insertion_auc for s in scores[name]]),
            "Average Drop": np.mean([s.average_drop for s in scores[name]]),
            "Increase in Confidence": np.mean([s.increase_in_confidence
                                               for s in scores[name]]),
            "ROAD MoRF AUC": np.mean([s.road_morf_auc for s in scores[name]]),
            "ROAD LeRF AUC": np.mean([s.road_lerf_auc for s in scores[name]])}
        print("\n%s on 24 held-out images: %s" % (name, ", ".join(
            "%s %.3f" % item for item in measured[name].items())))
    ours, floor = measured["opticam"], measured["random"]
    # Opti-CAM's maps are spread (its paper's finding): at the CAM protocol's 0.2 the box
    # of its largest region covers most of the image, at a higher threshold the object.
    assert ours["best GT-known loc"] >= 0.85 and floor["best GT-known loc"] <= 0.1
    assert ours["pointing game"] >= 0.9
    for higher in ("pointing game", "energy pointing game", "insertion AUC",
                   "Increase in Confidence", "ROAD LeRF AUC"):
        assert ours[higher] > floor[higher] + 0.05, higher
    for lower in ("deletion AUC", "Average Drop", "ROAD MoRF AUC"):
        assert ours[lower] < floor[lower] - 0.05, lower


@pytest.mark.slow
def test_opticam_runs_in_both_visualisers_and_every_evaluation_command(tmp_path):
    from l2caf.cli import evaluate, faithfulness, figure, report, visualize, visualize_fast
    from l2caf.files import read_json_lines
    from l2caf.runs.folder import load_heatmap
    data = tmp_path / "data"
    synthetic.make_dataset(str(data), 3, image_size=64, progress=False)
    common = ["--network", "demo_densenet", "--checkpoint", DEMO_CHECKPOINT, "--labels",
              DEMO_LABELS, "--images", str(data / "images"), "--annotations",
              str(data / "annotations"), "--explain_gt", "true", "--batch_size", "2",
              "--progress", "false"]
    folders = {}
    for method in ("opticam", "random"):
        folders[method] = str(tmp_path / method)
        extra = ["--max_iters", "10", "--save_gif", "true"] if method == "opticam" else []
        assert visualize_fast.main(common + ["--output_dir", folders[method], "--method",
                                             method] + extra) == 0
    records = read_json_lines(os.path.join(folders["opticam"], "results.jsonl"))
    for record in records:
        assert (record["method"], record["filter_type"]) == ("opticam", None)
        assert 1 <= record["iterations"] <= 10 and record["loss_history"][-1][1] == \
            record["final_loss"]
        heatmap = load_heatmap(record["heatmap"], folders["opticam"])
        assert heatmap.shape == (21, 21) and heatmap.min() == 0 and heatmap.max() == 1
        assert os.path.exists(os.path.join(folders["opticam"], record["gif"]))
    with open(os.path.join(folders["opticam"], "config.yaml")) as stream:
        recorded = config.load_yaml(stream.name)
    assert (recorded["method"], recorded["learning_rate"], recorded["max_iters"]) == (
        "opticam", 0.1, 10)
    # The Keras demo model in the slow visualiser, its overlays.
    keras_output = tmp_path / "keras"
    assert visualize.main(["--network", "keras", "--checkpoint",
                           os.path.join(DEMO_DIR, "demo_keras.keras"), "--labels", DEMO_LABELS,
                           "--images", os.path.join(REPO_ROOT, "input_imgs", "shapes_1.jpg"),
                           "--top_k", "2", "--method", "opticam", "--max_iters", "10",
                           "--output_dir", str(keras_output), "--progress", "false"]) == 0
    keras_records = read_json_lines(str(keras_output / "results.jsonl"))
    assert [r["method"] for r in keras_records] == ["opticam"] * 2
    for record in keras_records:
        assert load_heatmap(record["heatmap"], str(keras_output)).shape == (24, 24)
        assert os.path.exists(os.path.join(str(keras_output), record["overlay"]))
    # The faithfulness scores, the table, a figure and the report page read the folders.
    assert faithfulness.main(["--results", folders["opticam"], folders["random"], "--steps",
                              "4", "--road_fractions", "0.5", "--progress", "false"]) == 0
    table = str(tmp_path / "table")
    assert evaluate.main(["--annotations", str(data / "annotations"), "--results",
                          folders["opticam"], folders["random"], "--output", table,
                          "--workers", "1"]) == 0
    with open(table + ".json") as stream:
        rows = json.load(stream)
    assert [row["method"] for row in rows] == ["opticam", "random"]
    assert all(row.get("deletion_auc") is not None for row in rows)
    assert figure.main(["--results", folders["opticam"], folders["random"], "--output",
                        str(tmp_path / "figure"), "--random", "2", "--dpi", "50"]) == 0
    assert os.path.exists(str(tmp_path / "figure.png"))
    assert report.main(["--results", folders["opticam"], folders["random"], "--output",
                        str(tmp_path / "page")]) == 0
    assert "Opti-CAM" in (tmp_path / "page" / "report.html").read_text()
