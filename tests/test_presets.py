"""L2-CAF's presets: `original` (the authors' TensorFlow 1 code) and `pytorch` (their PyTorch
port, github ahmdtaha/l2_caf_pytorch). The pytorch preset against a float64 numpy
transcription of the port's loop (SGD, its learning-rate schedule, the filter started at
ones, a check every 50 iterations), at a global-average-pooling + Dense head (the network's
own layers and the closed form) and at a slim DenseNet's batch-norm + ReLU head; its optimum
at a linear head; the presets' values, what wins over them, and the run folder that records
them."""
import os

import keras
import numpy as np
import pytest
import yaml

from l2caf import L2CAF, config, heads
from l2caf.cli import visualize, visualize_fast
from l2caf.errors import ConfigError
from l2caf.models.keras import KerasModel
from l2caf.models.slim import Model
from l2caf.settings import PRESETS, Settings
from l2caf.synthetic import make_dataset
from tests.helpers import DEMO_CHECKPOINT, DEMO_LABELS

MAX_INT = float(np.iinfo(np.int16).max)


# What the presets set, and what wins over them.

def test_the_presets_set_their_implementations_values_and_given_settings_win():
    assert Settings() == Settings(preset="original") == Settings(
        0.5, 0.0, 1000, 1e-6, 50, 0, "adam", "normal", "original")
    assert Settings(preset="pytorch") == Settings(
        0.5, 1e-5, 1000, 1e-6, 50, 0, "sgd", "ones", "pytorch")
    assert Settings.of({"learning_rate": 0.1, "max_iters": 500}, "pytorch") == Settings(
        0.1, 1e-5, 500, 1e-6, 50, 0, "sgd", "ones", "pytorch")
    assert Settings.of({"optimizer": "adam"}, "pytorch").initial_filter == "ones"
    assert Settings.of({"preset": "pytorch"}).optimizer == "sgd"
    for values, preset, message in [
            ({"preset": "pytorch"}, "original", "the settings have preset pytorch, and preset "
                                                "original was given: give the preset once"),
            (Settings(preset="pytorch"), "original", "give the preset once"),
            ({}, "torch", "preset must be one of original, pytorch, got 'torch'"),
            ({"optimizer": "rmsprop"}, None, "optimizer must be one of adam, sgd, got "
                                             "'rmsprop'"),
            ({"initial_filter": "zeros"}, None, "initial_filter must be one of normal, ones")]:
        with pytest.raises(ConfigError, match=message):
            Settings.of(values, preset)


def parse(argv, table=config.OPTIONS):
    return config.parse("", table, argv)[0]


def test_the_visualisers_take_a_preset_and_keys_given_in_a_file_or_the_command_line_win(
        tmp_path):
    fast_table = config.options(config.FAST_DEFAULTS)
    for table in (config.OPTIONS, fast_table):  # the port has one tolerance: both take it
        values = parse(["--preset", "pytorch"], table)
        assert {key: values[key] for key in PRESETS["pytorch"]} == PRESETS["pytorch"]
        assert values.tolerance == 1e-6
    # original keeps each visualiser's tolerance (the released slow and fast scripts').
    assert parse(["--preset", "original"], fast_table).tolerance == 1e-4
    assert parse(["--preset", "original"]).tolerance == 1e-6
    path = tmp_path / "c.yaml"
    path.write_text("preset: pytorch\nend_learning_rate: 0.0\nmax_iters: 300\n")
    values = parse(["--config", str(path), "--learning_rate", "0.1"], fast_table)
    assert (values.optimizer, values.initial_filter, values.learning_rate,
            values.end_learning_rate, values.max_iters, values.tolerance) == (
        "sgd", "ones", 0.1, 0.0, 300, 1e-6)
    # The file's preset, replaced on the command line: the other preset's values.
    values = parse(["--config", str(path), "--preset", "original"], fast_table)
    assert (values.optimizer, values.initial_filter, values.tolerance) == (
        "adam", "normal", 1e-4)
    assert parse(["--preset", "pytorch", "--optimizer", "adam"]).optimizer == "adam"
    with pytest.raises(ConfigError, match="preset pytorch is one of L2-CAF's "
                                          "implementations, and method gradcam is not L2-CAF"):
        parse(["--method", "gradcam", "--preset", "pytorch"])
    with pytest.raises(ConfigError, match="--preset must be one of original, pytorch"):
        parse(["--preset", "tf1"])


def test_the_library_takes_a_preset_and_a_pytorch_filter_starts_at_ones():
    with KerasModel(linear_head_model(), rows=2) as model:
        explainer = L2CAF(model, preset="pytorch", settings={"max_iters": 3})
        assert explainer.settings == Settings(max_iters=3, preset="pytorch")
        assert explainer.loop().update == "sgd"
        assert np.array_equal(explainer.initial_row("a.jpg", 1), np.ones((6, 6)))
        assert L2CAF(model).settings == Settings()  # original, the default
        # Ones whatever the key and seed: the same heatmap for any name.
        images = images_of(1)
        first = L2CAF(model, preset="pytorch", settings={"max_iters": 20, "seed": 1})(
            images, 2, keys=["a.jpg"])[0]
        second = L2CAF(model, preset="pytorch", settings={"max_iters": 20, "seed": 7})(
            images, 2, keys=["b.jpg"])[0]
        assert np.array_equal(first.heatmap, second.heatmap)


# The port's loop, transcribed in float64 (class_specific.py and class_oblivious.py: SGD on
# the filter, LambdaLR over lr_utils.polynomial_lr_decay, F.normalize, the check every 50).

def ports_loop(outputs_and_gradient, size, targets, variant, max_iters=1000, tolerance=1e-6,
               learning_rate=0.5, check_every=50):
    """(|f| / || |f| ||, updates made, the last loss) of the port's loop, where
    outputs_and_gradient(n, d loss / d outputs) gives the filtered outputs for the filter
    n = f / ||f|| [H, W] and, when given d loss / d outputs, d loss / d n."""
    end_learning_rate = 1e-5
    filter_ = np.ones(size)
    previous = MAX_INT
    iteration = 0
    while iteration < max_iters:
        norm = np.linalg.norm(filter_)
        normalized = filter_ / norm
        outputs = outputs_and_gradient(normalized)
        if variant == "cls_specific":
            loss, to_outputs = np.sum(outputs * targets), targets
        else:
            loss = np.mean((outputs - targets) ** 2)
            to_outputs = 2.0 * (outputs - targets) / len(outputs)
        to_normalized = outputs_and_gradient(normalized, to_outputs)
        gradient = (to_normalized - np.sum(to_normalized * normalized) * normalized) / norm
        rate = (learning_rate - end_learning_rate) * (1 - iteration / max_iters) \
            + end_learning_rate
        filter_ = filter_ - rate * gradient
        if iteration % check_every == 0:
            if abs(loss - previous) < tolerance:
                break
            previous = loss
        iteration += 1
    magnitude = np.abs(filter_)
    return magnitude / np.linalg.norm(magnitude), min(iteration + 1, max_iters), loss


def linear_head(activation, kernel, bias):
    """The outputs (and d loss / d n) of global average pooling and a Dense layer on the
    filtered activation [H, W, C]."""
    per_location = activation @ kernel  # [H, W, K]
    locations = activation.shape[0] * activation.shape[1]

    def outputs_and_gradient(normalized, to_outputs=None):
        if to_outputs is None:
            return bias + np.einsum("hwk,hw->k", per_location, normalized) / locations
        return per_location @ to_outputs / locations
    return outputs_and_gradient


def relu_head(activation, scale, shift, kernel, bias):
    """The same for DenseNet's head: batch norm (x * scale + shift), ReLU, the mean, a linear
    layer."""
    locations = activation.shape[0] * activation.shape[1]

    def outputs_and_gradient(normalized, to_outputs=None):
        pre = activation * normalized[..., None] * scale + shift
        if to_outputs is None:
            return bias + np.maximum(pre, 0).mean(axis=(0, 1)) @ kernel
        return np.einsum("hwc,c->hw", (pre > 0) * activation * scale,
                         kernel @ to_outputs) / locations
    return outputs_and_gradient


def linear_head_model(seed=3):
    """features (3x3 conv + ReLU, 6x6) -> global average pooling -> Dense (4 logits)."""
    inputs = keras.Input((12, 12, 3))
    features = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu",
                                   name="features")(inputs)
    logits = keras.layers.Dense(4, name="logits")(
        keras.layers.GlobalAveragePooling2D()(features))
    model = keras.Model(inputs, logits)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return model


def images_of(count, size=12, seed=4):
    return np.random.default_rng(seed).uniform(0, 255, (count, size, size, 3)).astype(
        np.float32)


@pytest.mark.parametrize("variant", ["cls_specific", "cls_oblivious"])
@pytest.mark.parametrize("precompute_head", [False, True], ids=["network", "closed_form"])
def test_pytorch_preset_equals_the_ports_loop_at_a_linear_head(variant, precompute_head):
    keras_model = linear_head_model()
    with KerasModel(keras_model, rows=3) as model:
        images = images_of(2)
        prediction = model.predict(images)
        kernel, bias = (w.astype(np.float64) for w in keras_model.get_layer("logits")
                        .get_weights())
        classes = [[1, 3], [2]] if variant == "cls_specific" else None
        # Tolerance 0 runs every iteration; the other stops rows at checks (the class-specific
        # loss settles by the third check, the class-oblivious one of image 1 at the sixth).
        for tolerance, max_iters in ((0.0, 200), (1e-3 if classes else 10.0, 400)):
            explainer = L2CAF(model, variant, {"max_iters": max_iters, "tolerance": tolerance},
                              precompute_head=precompute_head, preset="pytorch")
            assert isinstance(explainer.head, heads.LinearHead if precompute_head
                              else heads.NetworkHead)
            updates = []
            for explanation in explainer(images, classes):
                index, class_id = explanation.image_index, explanation.class_id
                if variant == "cls_specific":
                    targets = np.ones(4)
                    targets[class_id] = -1.0
                else:
                    targets = prediction.outputs[index].astype(np.float64)
                heatmap, count, loss = ports_loop(
                    linear_head(prediction.activation[index].astype(np.float64), kernel, bias),
                    (6, 6), targets, variant, max_iters, tolerance)
                np.testing.assert_allclose(explanation.heatmap, heatmap, atol=1e-5)
                assert explanation.iterations == count
                assert explanation.loss == pytest.approx(loss, rel=1e-4, abs=1e-6)
                updates.append(count)
            if tolerance:
                assert updates == ([101, 101, 101] if classes else [400, 251]), updates


def test_pytorch_preset_reaches_the_closed_form_optimum_at_a_linear_head():
    # The loss is const + a . n with a = P w / (H W) (l2caf.heads.LinearHead): its minimum
    # on the unit sphere is n = -a / |a|, and the heatmap |n| = |2 CAM_c - sum_k CAM_k| /
    # norm, CAM_k the class maps A . W_k.
    keras_model = linear_head_model()
    with KerasModel(keras_model, rows=2) as model:
        images = images_of(2, seed=6)
        activation = model.predict(images).activation.astype(np.float64)
        kernel, bias = (w.astype(np.float64) for w in keras_model.get_layer("logits")
                        .get_weights())
        explanations = L2CAF(model, preset="pytorch")(images, [0, 3])
        for explanation, class_id in zip(explanations, [0, 3]):
            maps = activation[explanation.image_index] @ kernel  # CAM_k, [H, W, K]
            optimum = np.abs(2 * maps[..., class_id] - maps.sum(axis=-1))
            np.testing.assert_allclose(explanation.heatmap, optimum / np.linalg.norm(optimum),
                                       atol=1e-5)
            targets = np.ones(4)
            targets[class_id] = -1.0
            heatmap, _, _ = ports_loop(
                linear_head(activation[explanation.image_index], kernel, bias), (6, 6),
                targets, "cls_specific")
            np.testing.assert_allclose(explanation.heatmap, heatmap, atol=1e-5)
            # Settled: the float32 loss (as the port's) stopped moving at a check. (When, the
            # float64 one cannot say: a change of 1e-6 is below float32's resolution there.)
            assert explanation.iterations < 1000


@pytest.mark.parametrize("precompute_head", [False, True], ids=["network", "relu_head"])
def test_pytorch_preset_equals_the_ports_loop_on_a_slim_densenet(random_demo, precompute_head):
    checkpoint, _ = random_demo
    with Model.load("demo_densenet", checkpoint, rows=2) as model:
        images = np.random.default_rng(5).uniform(0, 255, (2, 168, 168, 3)).astype(np.float32)
        activation = model.predict(images).activation.astype(np.float64)
        with model.graph.as_default():
            head = list(model.relu_head())
        scale, shift, kernel, bias = (value.astype(np.float64)
                                      for value in model.session.run(head))
        explainer = L2CAF(model, settings={"max_iters": 120, "tolerance": 0.0},
                          precompute_head=precompute_head, preset="pytorch")
        assert isinstance(explainer.head, heads.ReluHead if precompute_head
                          else heads.NetworkHead)
        for explanation in explainer(images, [[0], [2]]):
            targets = np.ones(model.num_classes)
            targets[explanation.class_id] = -1.0
            heatmap, count, loss = ports_loop(
                relu_head(activation[explanation.image_index], scale, shift, kernel, bias),
                model.filter_size, targets, "cls_specific", max_iters=120, tolerance=0.0)
            np.testing.assert_allclose(explanation.heatmap, heatmap, atol=1e-5)
            assert explanation.iterations == count == 120
            assert explanation.loss == pytest.approx(loss, rel=1e-4, abs=1e-5)


# The run folder records the preset and every value it set.

@pytest.mark.slow
def test_a_run_folder_records_its_preset_and_refuses_another(tmp_path, capsys):
    data = tmp_path / "data"
    make_dataset(str(data), 2, image_size=64, progress=False)
    output = tmp_path / "pytorch"
    arguments = ["--network", "demo_densenet", "--checkpoint", DEMO_CHECKPOINT,
                 "--labels", DEMO_LABELS, "--images", str(data / "images"),
                 "--max_iters", "20", "--output_dir", str(output), "--progress", "false"]
    assert visualize_fast.main(arguments + ["--preset", "pytorch"]) == 0
    with open(output / "config.yaml") as stream:
        recorded = yaml.safe_load(stream)
    assert {key: recorded[key] for key in ("preset", "optimizer", "initial_filter",
                                           "learning_rate", "end_learning_rate", "tolerance",
                                           "check_every", "max_iters")} == dict(
        PRESETS["pytorch"], preset="pytorch", max_iters=20)
    capsys.readouterr()
    assert visualize_fast.main(arguments + ["--preset", "original"]) == 2
    error = capsys.readouterr().err
    assert "holds results made with other settings" in error
    assert "preset (pytorch there, original now)" in error and "optimizer (sgd there, " \
        "adam now)" in error
    # Its config.yaml repeats the run: nothing left to do.
    assert visualize_fast.main(["--config", str(output / "config.yaml")]) == 0
    # The slow visualiser, a Keras model: the pytorch preset there too.
    keras_output = tmp_path / "keras"
    assert visualize.main([
        "--network", "keras", "--checkpoint", os.path.join(os.path.dirname(DEMO_CHECKPOINT),
                                                          "demo_keras.keras"),
        "--labels", DEMO_LABELS, "--images", str(data / "images"), "--max_iters", "20",
        "--preset", "pytorch", "--output_dir", str(keras_output), "--progress", "false"]) == 0
    with open(keras_output / "config.yaml") as stream:
        assert yaml.safe_load(stream)["optimizer"] == "sgd"
