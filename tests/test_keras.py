"""Keras models: the closed-form optimum, keras.applications networks at any layer, Keras 3
and tf-keras, saved formats, preprocessing, the command line, and a trained model that
localises."""
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tf_keras

from l2caf import heads, synthetic
from l2caf.cli import evaluate, visualize, visualize_fast
from l2caf.errors import CheckpointError, ConfigError
from l2caf.models.keras import KerasModel
from l2caf.models.keras_loading import load_keras_model
from l2caf.methods import CAM, L2CAF, GradCAM
from l2caf.models.slim import Model
from l2caf.files import read_json_lines as read_results
from l2caf.runs.folder import load_heatmap
from nets.tf_slim_compat import tf
from tests.helpers import DEMO_CHECKPOINT, DEMO_DIR, REPO_ROOT

KERAS_DEMO = os.path.join(DEMO_DIR, "demo_keras.keras")


def small_model(api=keras, softmax=True):
    """A functional model with a skip connection across 'c2', a shared layer, and global
    average pooling with a Dense layer at the end."""
    layers = api.layers
    inputs = api.Input((24, 24, 3))
    c1 = layers.Conv2D(6, 3, padding="same", activation="relu", name="c1")(inputs)
    shared = layers.Conv2D(6, 1, activation="relu", name="shared")
    c2 = layers.Conv2D(6, 3, padding="same", activation="relu", name="c2")(shared(c1))
    skip = layers.Add(name="skip")([c1, shared(c2)])
    last = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="last")(skip)
    pooled = layers.GlobalAveragePooling2D(name="gap")(last)
    outputs = layers.Dense(5, activation="softmax" if softmax else None, name="dense")(pooled)
    model = api.Model(inputs, outputs, name="small")
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.3, w.shape) for w in model.get_weights()])
    return model


def images_of(size, count=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count, size, size, 3)).astype(np.float32)


def test_the_class_specific_heatmap_at_a_linear_head_is_the_closed_form_optimum():
    model = small_model()
    with KerasModel(model, rows=2) as explained:
        assert (explained.layer, explained.linear_head_layer) == ("last", "last")
        images = images_of(24)
        activation = explained.predict(images).activation
        kernel = model.get_layer("dense").kernel.numpy()
        for precompute_head in (True, False):
            explainer = L2CAF(explained, settings={"max_iters": 600, "tolerance": 0.0},
                              precompute_head=precompute_head)
            assert isinstance(explainer.head, heads.LinearHead if precompute_head
                              else heads.NetworkHead)
            for explanation, class_id in zip(explainer(images, [1, 3]), [1, 3]):
                weights = np.ones(5)
                weights[class_id] = -1
                locations = activation[explanation.image_index].reshape(-1, 8)
                g = locations @ (kernel @ weights) / len(locations)
                np.testing.assert_allclose(explanation.heatmap.ravel(),
                                           np.abs(g) / np.linalg.norm(g), atol=1e-3)


def test_the_losses_see_the_logits_and_the_filter_multiplies_the_layers_output():
    model = small_model()
    logits_model = small_model(softmax=False)
    images = images_of(24)
    with KerasModel(model) as explained:
        prediction = explained.predict(images)
        np.testing.assert_allclose(prediction.outputs, logits_model(images).numpy(), rtol=1e-5,
                                   atol=1e-5)
        np.testing.assert_allclose(prediction.probabilities, model(images).numpy(), atol=1e-6)
        # By hand: the same network with a Multiply after 'c2' (its output also feeds the
        # shared layer's second call and, through it, the skip connection).
        factor = np.random.default_rng(1).uniform(0, 2, (2, 24, 24)).astype(np.float32)
        inputs, gate = keras.Input((24, 24, 3)), keras.Input((24, 24, 1))
        c1 = model.get_layer("c1")(inputs)
        c2 = keras.layers.Multiply()([model.get_layer("c2")(model.get_layer("shared")(c1)),
                                      gate])
        skip = model.get_layer("skip")([c1, model.get_layer("shared")(c2)])
        pooled = model.get_layer("gap")(model.get_layer("last")(skip))
        by_hand = keras.Model([inputs, gate], logits_model.get_layer("dense")(pooled))
        expected = by_hand([images, factor[..., None]]).numpy()
    with KerasModel(model, layer="c2", rows=2) as explained:
        filtered = tf.function(lambda: explained.filtered_outputs(tf.constant(factor),
                                                                  tf.constant(images)))()
        np.testing.assert_allclose(filtered.numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("api", [keras, tf_keras], ids=["keras3", "tf_keras"])
def test_cached_activation_equals_the_whole_model_across_a_skip_connection(api):
    with KerasModel(small_model(api), layer="c2", rows=2, filter_type="softmax") as explained:
        assert explained.linear_head_layer == "last"
        images = images_of(24, seed=2)
        settings = {"max_iters": 30, "check_every": 10, "tolerance": 0.0}
        cached = L2CAF(explained, settings=settings)(images, [0, 4])
        whole = L2CAF(explained, settings=settings, cache_activation=False)(images, [0, 4])
        for a, b in zip(cached, whole):
            np.testing.assert_allclose(a.heatmap, b.heatmap, rtol=1e-4, atol=1e-6)
            assert a.heatmap.shape == (24, 24) and a.iterations == 30
        gradcam = GradCAM(explained)(images, [0, 4])
        assert [g.heatmap.shape for g in gradcam] == [(24, 24)] * 2


@pytest.mark.parametrize("explain", ["logits", "embedding"])
def test_class_oblivious_with_the_linear_head_equals_running_the_model(explain):
    with KerasModel(small_model(), rows=2, explain=explain) as explained:
        assert explained.num_outputs == (5 if explain == "logits" else 8)
        images = images_of(24, seed=3)
        settings = {"max_iters": 30, "check_every": 10, "tolerance": 0.0}
        fast = L2CAF(explained, "cls_oblivious", settings)
        plain = L2CAF(explained, "cls_oblivious", settings, precompute_head=False)
        assert isinstance(fast.head, heads.LinearHead)
        for a, b in zip(fast(images), plain(images)):
            assert a.class_id is None
            np.testing.assert_allclose(a.heatmap, b.heatmap, rtol=1e-3, atol=1e-5)
            assert a.loss == pytest.approx(b.loss, rel=1e-3, abs=1e-5)


@pytest.mark.parametrize("api", [keras, tf_keras], ids=["keras3", "tf_keras"])
def test_the_users_model_stays_theirs_and_two_explainers_do_not_interfere(api, tmp_path):
    model = small_model(api)
    images = images_of(24, seed=4)
    path = str(tmp_path / "model.keras")

    def state():
        """What the user sees of their model: outputs, layer calls and graph nodes, its
        configuration, and what saving and loading it gives."""
        model.save(path)
        reloaded = api.models.load_model(path)
        return {"outputs": model(images).numpy(), "predict": model.predict(images, verbose=0),
                "reloaded": reloaded(images).numpy(),
                "config": json.dumps(model.get_config(), sort_keys=True, default=str),
                "reloaded_config": json.dumps(reloaded.get_config(), sort_keys=True,
                                              default=str),
                "layers": [(layer.name, layer.call, len(layer._inbound_nodes),
                            getattr(layer, "activation", None)) for layer in model.layers]}

    def assert_same(a, b):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], np.ndarray):
                np.testing.assert_array_equal(a[key], b[key])
            else:
                assert a[key] == b[key], key

    settings = {"max_iters": 20, "check_every": 10, "tolerance": 0.0}

    def explain(explained):
        if explained.explain == "embedding":
            return [e.heatmap for e in L2CAF(explained, "cls_oblivious", settings)(images)]
        return [e.heatmap for e in L2CAF(explained, settings=settings)(images, [0, 4])] + \
            [e.heatmap for e in GradCAM(explained)(images, [0, 4])]

    before = state()
    with KerasModel(small_model(api), layer="c2", rows=2) as alone:
        first_alone = explain(alone)
    with KerasModel(small_model(api), layer="last", rows=2, explain="embedding") as alone:
        second_alone = explain(alone)
    first = KerasModel(model, layer="c2", rows=2)
    second = KerasModel(model, layer="last", rows=2, explain="embedding")
    results = [explain(first), explain(second)]
    during = state()
    results += [explain(first), explain(second), explain(first)]
    assert_same(before, during)
    first.close()
    second.close()
    assert_same(before, state())
    for heatmaps, expected in zip(results, [first_alone, second_alone] * 2 + [first_alone]):
        for heatmap, alone_heatmap in zip(heatmaps, expected):
            np.testing.assert_allclose(heatmap, alone_heatmap, rtol=1e-5, atol=1e-6)


def test_a_sequential_model_and_cam():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((20, 20, 3)), keras.layers.Conv2D(4, 3, name="conv"),
                              keras.layers.MaxPooling2D(), keras.layers.Conv2D(6, 3, name="top"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dropout(0.5),
                              keras.layers.Dense(3, activation="softmax")])
    with KerasModel(model, rows=3, filter_type="gauss") as explained:
        assert (explained.layer, explained.filter_size) == ("top", (7, 7))
        images = images_of(20, 3)
        l2caf = L2CAF(explained, settings={"max_iters": 20})(images)
        assert [e.heatmap.sum() for e in l2caf] == pytest.approx([1, 1, 1], abs=1e-5)
        cam = CAM(explained)(images, [0, 1, 2])
        gradcam = GradCAM(explained)(images, [0, 1, 2])
        for a, b in zip(cam, gradcam):  # at a global-mean + linear head, the same maps
            # (up to float32 rounding of sums over channels that nearly cancel)
            np.testing.assert_allclose(a.heatmap, b.heatmap, atol=1e-4)
    with KerasModel(model, layer="conv") as explained:
        with pytest.raises(ConfigError, match="CAM maps the layer top, which feeds"):
            CAM(explained)


def test_saved_formats_load_with_the_same_predictions(tmp_path):
    images = images_of(24)
    new = small_model()
    new.save(str(tmp_path / "model.keras"))
    old = small_model(tf_keras)
    old.save(str(tmp_path / "model.h5"))
    old.save(str(tmp_path / "saved_model"), save_format="tf")
    for path, original in (("model.keras", new), ("model.h5", old), ("saved_model", old)):
        with KerasModel(load_keras_model(str(tmp_path / path))) as explained:
            np.testing.assert_allclose(explained.predict(images).probabilities,
                                       original(images).numpy(), atol=1e-5)
    with pytest.raises(CheckpointError, match="no Keras model at"):
        load_keras_model(str(tmp_path / "none.keras"))


@pytest.mark.parametrize("name, preprocess", [("resnet50", "caffe"), ("mobilenet_v2", "tf"),
                                              ("densenet", "torch")])
def test_preprocessing_follows_keras_applications(name, preprocess):
    inputs = keras.Input((8, 8, 3))
    features = keras.layers.Conv2D(2, 1, name="conv")(inputs)
    logits = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(features))
    model = keras.Model(inputs, logits)
    images = images_of(8)
    reference = getattr(keras.applications, name).preprocess_input(images.copy())
    with KerasModel(model, preprocess=preprocess) as explained:
        np.testing.assert_allclose(explained.predict(images).outputs, model(reference).numpy(),
                                   rtol=1e-5, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("name, size, preprocess, intermediate", [
    ("ResNet50", 64, "caffe", "conv4_block6_out"),
    ("MobileNetV2", 64, "tf", "block_13_expand_relu"),
    ("DenseNet121", 64, "torch", "pool3_relu"),
    ("InceptionV3", 139, "tf", "mixed7"),
])
def test_keras_applications_at_the_last_conv_and_an_intermediate_layer(name, size, preprocess,
                                                                       intermediate):
    model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3))
    images = images_of(size)
    settings = {"max_iters": 20, "check_every": 10, "tolerance": 0.0}
    with KerasModel(model, rows=2, preprocess=preprocess) as explained:
        assert explained.layer == explained.linear_head_layer  # the last conv layer
        fast = L2CAF(explained, settings=settings)(images, [1, 7])
        plain = L2CAF(explained, settings=settings, precompute_head=False)(images, [1, 7])
        for a, b in zip(fast, plain):
            np.testing.assert_allclose(a.heatmap, b.heatmap, rtol=1e-3, atol=1e-5)
            assert np.sum(a.heatmap ** 2) == pytest.approx(1.0, rel=1e-4)
        assert len(CAM(explained)(images, [1, 7])) == 2
    with KerasModel(model, layer=intermediate, rows=2, preprocess=preprocess) as explained:
        cached = L2CAF(explained, settings=settings)(images, [1, 7])
        whole = L2CAF(explained, settings=settings, cache_activation=False)(images, [1, 7])
        for a, b in zip(cached, whole):
            np.testing.assert_allclose(a.heatmap, b.heatmap, rtol=1e-3, atol=1e-5)
            assert a.heatmap.shape == explained.filter_size
        assert GradCAM(explained)(images, [1, 7])[1].heatmap.shape == explained.filter_size


def test_slim_sessions_and_keras_functions_in_one_process():
    with Model.load("demo_densenet", DEMO_CHECKPOINT) as slim_model:
        before = L2CAF(slim_model, settings={"max_iters": 5})(images_of(168, 1))
    with KerasModel(small_model()) as explained:
        keras_heatmaps = L2CAF(explained, settings={"max_iters": 5})(images_of(24, 1))
    assert tf.executing_eagerly()
    with Model.load("demo_densenet", DEMO_CHECKPOINT) as slim_model:
        after = L2CAF(slim_model, settings={"max_iters": 5})(images_of(168, 1))
    np.testing.assert_allclose(before[0].heatmap, after[0].heatmap, atol=1e-6)
    assert keras_heatmaps[0].heatmap.shape == (12, 12)


def test_the_visualisers_take_a_keras_model(tmp_path, capsys):
    path = str(tmp_path / "small.keras")
    small_model().save(path)
    common = ["--network", "keras", "--checkpoint", path, "--images",
              os.path.join(REPO_ROOT, "input_imgs"), "--max_iters", "10", "--progress", "false"]
    assert visualize.main(common + ["--output_dir", str(tmp_path / "slow")]) == 0
    assert visualize_fast.main(common + ["--output_dir", str(tmp_path / "fast"),
                                         "--batch_size", "4"]) == 0
    slow = read_results(str(tmp_path / "slow" / "results.jsonl"))
    fast = {(r["image"], r["class_id"]): r for r in read_results(
        str(tmp_path / "fast" / "results.jsonl"))}
    assert len(slow) == len(fast) == 6
    for record in slow:
        assert (record["network"], record["layer"], record["class_name"]) == (
            "keras", "last", "class_%d" % record["class_id"])
        np.testing.assert_allclose(load_heatmap(record["heatmap"], str(tmp_path / "slow")),
                                   load_heatmap(fast[record["image"], record["class_id"]][
                                       "heatmap"], str(tmp_path / "fast")), rtol=1e-4, atol=1e-6)
    assert visualize.main(["--network", "keras", "--checkpoint", path, "--list_layers"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines[-5:]] == [
        ["c1", "24x24"], ["shared", "24x24"], ["c2", "24x24"], ["skip", "24x24"],
        ["last", "12x12"]]
    assert "default" in lines[-1]
    for extra, message in [(["--layer", "gap"], "Keras model small has no layer gap with a "
                                                "spatial map; layers where a filter can go: "
                                                "c1, shared, c2, skip, last"),
                           (["--image_size", "32"], "takes 24x24 images, not image_size 32")]:
        assert visualize.main(common + ["--output_dir", str(tmp_path / "x")] + extra) == 2
        assert message in capsys.readouterr().err
    assert visualize.main(["--network", "demo_densenet", "--checkpoint", DEMO_CHECKPOINT,
                           "--preprocess", "tf", "--output_dir", str(tmp_path / "y")]) == 2
    assert "preprocess, image_size, output and trust_model are for network keras" in \
        capsys.readouterr().err


@pytest.mark.slow
def test_the_trained_keras_demo_model_localises_held_out_objects(tmp_path, capsys):
    """A sweep of the shipped Keras demo model over 40 synthetic images that training never
    saw (seed 777), then the localisation table: GT-known localisation at the paper's
    protocol (box at 20% of the maximum, IoU >= 0.5) for at least 80% of the images."""
    synthetic.make_dataset(str(tmp_path / "data"), 40, seed=777, two_object_fraction=0.0,
                           progress=False)
    assert visualize_fast.main([
        "--config", os.path.join(REPO_ROOT, "configs", "demo_keras.yaml"),
        "--checkpoint", KERAS_DEMO, "--labels", os.path.join(DEMO_DIR, "labels.txt"),
        "--images", str(tmp_path / "data" / "images"), "--annotations",
        str(tmp_path / "data" / "annotations"), "--explain_gt", "true", "--top_k", "1",
        "--output_dir", str(tmp_path / "run"), "--progress", "false"]) == 0
    assert evaluate.main(["--results", str(tmp_path / "run"), "--annotations",
                          str(tmp_path / "data" / "annotations"), "--thresholds", "0.2",
                          "--workers", "1", "--output", str(tmp_path / "table")]) == 0
    with open(str(tmp_path / "table.json")) as stream:
        [row] = json.load(stream)
    print("\nKeras demo model: GT-known localisation %.1f%% of %d held-out images, top-1 "
          "classification error %.1f%%" % (row["gt_known_loc_accuracy"], row["images"],
                                           row["top1_cls_error"]), file=sys.__stdout__)
    assert (row["images"], row["network"], row["layer"]) == (40, "keras", "last_conv")
    assert row["gt_known_loc_accuracy"] >= 80.0


@pytest.mark.slow
def test_a_keras_run_in_a_terminal_shows_no_tensorflow_log_lines(tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "scripts", "visualize_attention.py"),
         "--config", "configs/demo_keras.yaml", "--output_dir", str(tmp_path),
         "--max_iters", "2", "--images", "input_imgs/shapes_1.jpg", "--progress", "false"],
        capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "2 heatmaps" in result.stdout
