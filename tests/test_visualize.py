"""The slow visualiser end to end, on a random-weight demo network and tiny images (its
error contract is in test_cli.py)."""
import os

import cv2
import numpy as np
import pytest

from l2caf import networks
from l2caf.models.slim import Model
from l2caf.cli.visualize import main
from l2caf.files import read_json_lines as read_results
from l2caf.runs.folder import folder_path, load_heatmap
from tests.helpers import demo_run_inputs

pytestmark = pytest.mark.slow  # runs the visualisers end to end

SPEC = networks.get_network("demo_densenet")

FIELDS = ["image", "network", "layer", "method", "caf_variant", "filter_type", "class_id",
          "class_name", "iterations", "final_loss", "loss_history", "seconds", "heatmap",
          "overlay", "gif", "predictions", "ground_truth", "image_size"]


@pytest.fixture(scope="module")
def demo(random_demo, tmp_path_factory):
    return demo_run_inputs(tmp_path_factory.mktemp("demo"),
                           {"wide.png": (60, 90, 3), "gray.jpg": (50, 50)}, weights=random_demo)


def arguments(demo, output_dir, *extra):
    return ["--network", "demo_densenet", "--checkpoint", demo["checkpoint"],
            "--labels", demo["labels"], "--images", demo["images"],
            "--output_dir", str(output_dir), "--max_iters", "20", "--check_every", "10"] + \
        list(extra)


def test_writes_heatmaps_overlays_gif_and_results(demo, tmp_path):
    assert main(arguments(demo, tmp_path, "--top_k", "2", "--save_gif", "true")) == 0
    records = read_results(str(tmp_path / "results.jsonl"))
    assert len(records) == 4  # 2 images x top-2 classes
    filter_size = Model(SPEC, 3).filter_size
    for record in records:
        assert list(record) == FIELDS
        assert record["network"] == "demo_densenet"
        assert record["layer"] == SPEC.last_conv
        heatmap = load_heatmap(record["heatmap"], str(tmp_path))
        assert heatmap.shape == filter_size
        assert np.sum(heatmap ** 2) == pytest.approx(1, rel=1e-4)
        source = cv2.imread(record["image"])
        assert cv2.imread(folder_path(str(tmp_path), record["overlay"])).shape[:2] == \
            source.shape[:2]
        assert os.path.getsize(folder_path(str(tmp_path), record["gif"])) > 0
        assert len(record["predictions"]) == 3  # top-5 of a 3-class model
        assert record["class_name"] == "class_%d" % record["class_id"]
    first = [r for r in records if r["image"].endswith("gray.jpg")]
    assert [r["class_id"] for r in first] == [p["class_id"] for p in first[0]["predictions"][:2]]
    saved = (tmp_path / "config.yaml").read_text()
    assert "top_k: 2" in saved and "network: demo_densenet" in saved
    assert (tmp_path / "run.log").stat().st_size > 0


def test_rerun_continues_without_duplicates(demo, tmp_path):
    assert main(arguments(demo, tmp_path, "--classes", "0,2")) == 0
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    (tmp_path / "results.jsonl").write_text("\n".join(lines[:2]) + "\n" + lines[2][:25])
    assert main(arguments(demo, tmp_path, "--classes", "0,2")) == 0
    records = read_results(str(tmp_path / "results.jsonl"))
    assert sorted((r["image"], r["class_id"]) for r in records) == sorted(
        (os.path.join(demo["images"], name), c) for name in ("gray.jpg", "wide.png")
        for c in (0, 2))


def test_class_oblivious_and_explicit_seed_reproduce(demo, tmp_path):
    for run in ("a", "b"):
        assert main(arguments(demo, tmp_path / run, "--caf_variant", "cls_oblivious",
                              "--filter_type", "softmax", "--seed", "4")) == 0
    a, b = (read_results(str(tmp_path / run / "results.jsonl")) for run in ("a", "b"))
    assert [r["class_id"] for r in a] == [None, None]
    for left, right in zip(a, b):
        np.testing.assert_array_equal(load_heatmap(left["heatmap"], str(tmp_path / "a")),
                                      load_heatmap(right["heatmap"], str(tmp_path / "b")))
