"""The new methods on the shipped demo models: they localise the objects of held-out synthetic
images (seed 777, as tests/test_semantics.py), and they run everywhere the baselines go: both
visualisers (slim and Keras networks), run folders, the evaluation table; L2-CAF's results
lines carry their loss history."""
import json
import os

import numpy as np
import pytest

from l2caf import evaluation, synthetic
from l2caf.cli import evaluate, visualize, visualize_fast
from l2caf.methods import METHODS
from l2caf.files import read_json_lines as read_results
from l2caf.runs.folder import load_heatmap
from l2caf.synthetic import make_dataset
from tests.helpers import DEMO_CHECKPOINT, DEMO_DIR, DEMO_LABELS, REPO_ROOT

pytestmark = pytest.mark.slow  # explains 40 images with each method, runs the visualisers

HELD_OUT_SEED = 777  # training used seeds 0 (training set) and 1 (validation)
THRESHOLDS = np.arange(0.05, 0.951, 0.05)
# GT-known localisation (the box of the largest region at a threshold x the maximum, IoU >=
# 0.5 with the object's box) measured with the shipped model on these 40 images (run pytest
# -s to see them): at the threshold 0.2 (65.0 to 72.5%; L2-CAF's is 87.5%, see
# test_semantics.py) and at each method's best threshold of the sweep (100%). The bars are a
# little under; the random map (5% at its best) shows that the measure tells maps apart.
BARS = {"gradcam": (0.6, 0.95), "gradcampp": (0.6, 0.95), "layercam": (0.6, 0.95),
        "scorecam": (0.6, 0.95)}


@pytest.fixture(scope="module")
def held_out(demo_model):
    examples = list(synthetic.generate_examples(40, 224, HELD_OUT_SEED, 0.0))
    images = [image for image, _ in examples]
    classes = [synthetic.CLASS_NAMES.index(objects[0].name) for _, objects in examples]
    prediction = METHODS["gradcam"](demo_model).predict(images)
    return examples, {name: METHODS[name](demo_model)(images, classes, prediction=prediction)
                      for name in list(BARS) + ["random"]}


def gt_known_accuracy(examples, explanations, threshold):
    hits = []
    for explanation in explanations:
        image, objects = examples[explanation.image_index]
        box = evaluation.heatmap_to_box(explanation.heatmap, image.shape[:2], threshold)
        hits.append(evaluation.iou(box, objects[0].box) >= 0.5)
    return np.mean(hits)


@pytest.mark.parametrize("method", sorted(BARS) + ["random"])
def test_the_demo_model_localises_held_out_objects_with_each_method(held_out, method):
    examples, explanations = held_out
    sweep = [gt_known_accuracy(examples, explanations[method], threshold)
             for threshold in THRESHOLDS]
    at_0_2, best = sweep[3], max(sweep)
    print("\n%s: GT-known localisation of 40 single objects: %.1f%% at the threshold 0.2, "
          "%.1f%% at the best threshold (%.2f)"
          % (method, 100 * at_0_2, 100 * best, THRESHOLDS[int(np.argmax(sweep))]))
    if method == "random":
        assert best <= 0.1
    else:
        assert at_0_2 >= BARS[method][0] and best >= BARS[method][1]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("methods")
    make_dataset(str(folder / "data"), 3, image_size=64, progress=False)
    return folder / "data"


def fast_arguments(data, output_dir, *extra):
    return ["--network", "demo_densenet", "--checkpoint", DEMO_CHECKPOINT,
            "--labels", DEMO_LABELS, "--images", str(data / "images"),
            "--annotations", str(data / "annotations"), "--explain_gt", "true",
            "--max_iters", "20", "--check_every", "5", "--batch_size", "2",
            "--output_dir", str(output_dir), "--progress", "false"] + list(extra)


def test_fast_visualiser_runs_each_method_into_a_run_folder_and_the_table(dataset, tmp_path):
    folders = []
    for method in ("l2caf", "gradcampp", "layercam", "scorecam"):
        folder = tmp_path / method
        assert visualize_fast.main(fast_arguments(dataset, folder, "--method", method)) == 0
        folders.append(str(folder))
    pairs = None
    for folder, method in zip(folders, ("l2caf", "gradcampp", "layercam", "scorecam")):
        records = read_results(os.path.join(folder, "results.jsonl"))
        assert pairs in (None, [(r["image"], r["class_id"]) for r in records])
        pairs = [(r["image"], r["class_id"]) for r in records]
        for record in records:
            assert record["method"] == method
            heatmap = load_heatmap(record["heatmap"], folder)
            assert heatmap.shape == (21, 21) and heatmap.min() >= 0
            if method == "l2caf":
                # Every check (every 5 updates, check_every), then the last iteration's loss:
                # the final one, after iterations - 1 updates.
                updates = [entry[0] for entry in record["loss_history"]]
                assert updates[-1] == record["iterations"] - 1
                assert updates[:-1] == list(range(0, updates[-1], 5))
                assert record["loss_history"][-1][1] == record["final_loss"]
            else:
                assert record["loss_history"] is None and record["iterations"] == 0
                assert heatmap.max() == pytest.approx(1.0)
    output = str(tmp_path / "table")
    assert evaluate.main(["--annotations", str(dataset / "annotations"), "--results"]
                         + folders + ["--output", output, "--workers", "1"]) == 0
    with open(output + ".json") as stream:
        rows = json.load(stream)
    assert [row["method"] for row in rows] == ["l2caf", "gradcampp", "layercam", "scorecam"]


def test_the_keras_visualiser_runs_the_new_methods(tmp_path):
    for method in ("gradcampp", "layercam", "scorecam"):
        output = tmp_path / method
        assert visualize.main([
            "--config", os.path.join(REPO_ROOT, "configs", "demo_keras.yaml"),
            "--checkpoint", os.path.join(DEMO_DIR, "demo_keras.keras"), "--labels", DEMO_LABELS,
            "--images", os.path.join(REPO_ROOT, "input_imgs", "shapes_1.jpg"),
            "--output_dir", str(output), "--method", method, "--progress", "false"]) == 0
        records = read_results(str(output / "results.jsonl"))
        assert [r["method"] for r in records] == [method, method]  # top_k: 2
        for record in records:
            assert load_heatmap(record["heatmap"], str(output)).shape == (24, 24)
            assert os.path.exists(os.path.join(str(output), os.path.basename(record["overlay"])))
