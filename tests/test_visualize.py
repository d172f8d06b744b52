"""The visualiser end to end (slow), on a random-weight demo network and tiny images (its
error contract is in test_cli.py), and the size of its GIFs' frames."""
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from l2caf import networks
from l2caf.models.slim import Model
from l2caf.cli.visualize import main
from l2caf.files import read_json_lines as read_results
from l2caf.runs.folder import folder_path, load_heatmap
from l2caf.runs.visualize import GIF_SIZE, gif_frame_size
from tests.helpers import demo_run_inputs

SPEC = networks.get_network("demo_densenet")

FIELDS = ["image", "network", "layer", "method", "caf_variant", "filter_type", "class_id",
          "class_name", "iterations", "final_loss", "loss_history", "seconds", "heatmap",
          "overlay", "gif", "predictions", "ground_truth", "image_size"]


@pytest.fixture(scope="module")
def demo(random_demo, tmp_path_factory):
    return demo_run_inputs(tmp_path_factory.mktemp("demo"),
                           {"wide.png": (60, 90, 3), "gray.jpg": (50, 50)}, weights=random_demo)


# (height, width) of the GIF frames of the demo fixture's images: wide.png is 60x90 (its longer
# side 90 -> 224, 60 * 224 / 90 = 149.3), gray.jpg 50x50.
GIF_FRAMES = {"wide.png": (149, 224), "gray.jpg": (224, 224)}


def arguments(demo, output_dir, *extra):
    return ["--network", "demo_densenet", "--checkpoint", demo["checkpoint"],
            "--labels", demo["labels"], "--images", demo["images"],
            "--output_dir", str(output_dir), "--max_iters", "20", "--check_every", "10"] + \
        list(extra)


@pytest.mark.slow  # runs the visualiser end to end
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
        # The GIF keeps the image's aspect ratio (it once squashed every image to 224x224).
        with Image.open(folder_path(str(tmp_path), record["gif"])) as gif:
            assert gif.size[::-1] == GIF_FRAMES[os.path.basename(record["image"])]
        assert len(record["predictions"]) == 3  # top-5 of a 3-class model
        assert record["class_name"] == "class_%d" % record["class_id"]
    first = [r for r in records if r["image"].endswith("gray.jpg")]
    assert [r["class_id"] for r in first] == [p["class_id"] for p in first[0]["predictions"][:2]]
    saved = (tmp_path / "config.yaml").read_text()
    assert "top_k: 2" in saved and "network: demo_densenet" in saved
    assert (tmp_path / "run.log").stat().st_size > 0


@pytest.mark.slow  # runs the visualiser end to end
def test_rerun_continues_without_duplicates(demo, tmp_path):
    assert main(arguments(demo, tmp_path, "--classes", "0,2")) == 0
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    (tmp_path / "results.jsonl").write_text("\n".join(lines[:2]) + "\n" + lines[2][:25])
    assert main(arguments(demo, tmp_path, "--classes", "0,2")) == 0
    records = read_results(str(tmp_path / "results.jsonl"))
    assert sorted((r["image"], r["class_id"]) for r in records) == sorted(
        (os.path.join(demo["images"], name), c) for name in ("gray.jpg", "wide.png")
        for c in (0, 2))


@pytest.mark.slow  # runs the visualiser end to end
def test_class_oblivious_and_explicit_seed_reproduce(demo, tmp_path):
    for run in ("a", "b"):
        assert main(arguments(demo, tmp_path / run, "--caf_variant", "cls_oblivious",
                              "--filter_type", "softmax", "--seed", "4")) == 0
    a, b = (read_results(str(tmp_path / run / "results.jsonl")) for run in ("a", "b"))
    assert [r["class_id"] for r in a] == [None, None]
    for left, right in zip(a, b):
        np.testing.assert_array_equal(load_heatmap(left["heatmap"], str(tmp_path / "a")),
                                      load_heatmap(right["heatmap"], str(tmp_path / "b")))


@pytest.mark.parametrize("height, width, frame", [
    (300, 150, (224, 112)), (150, 300, (112, 224)), (224, 224, (224, 224)),
    (50, 50, (224, 224)),  # a small image is enlarged to the longer side too
    (1000, 3, (224, 1)),  # 0.67 pixels wide: still one
    (7, 2000, (1, 224)), (480, 640, (168, 224)), (101, 203, (111, 224))])
def test_gif_frames_have_the_images_aspect_ratio_and_longer_side_gif_size(height, width, frame):
    """gif_frame_size: the longer side is GIF_SIZE, the shorter one in proportion (to the
    nearest pixel, at least 1), whichever side is the longer."""
    assert GIF_SIZE == 224
    assert gif_frame_size(height, width) == frame
