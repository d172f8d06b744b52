"""The fast, batched visualiser: equal to the slow one, ILSVRC layout, shards, resume."""
import json
import os

import numpy as np
import pytest

from l2caf.cli.visualize import main as slow_main
from l2caf.cli.visualize_fast import OPTIONS, main
from l2caf.annotations import read_annotation_folder
from l2caf.models.slim import Model
from l2caf.files import read_json_lines as read_results
from l2caf.runs.folder import load_heatmap
from l2caf.synthetic import CLASS_NAMES, make_dataset
from tests.helpers import random_demo_checkpoint

# Marked slow: the tests that run the visualisers end to end.

NUM_IMAGES = 8


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A random-weight demo model for the synthetic classes and a tiny ILSVRC-layout set."""
    folder = tmp_path_factory.mktemp("sweep")
    checkpoint, _ = random_demo_checkpoint(folder, num_classes=len(CLASS_NAMES))
    make_dataset(str(folder / "data"), NUM_IMAGES, image_size=64, progress=False)
    return {"checkpoint": checkpoint, "labels": str(folder / "data" / "labels.txt"),
            "images": str(folder / "data" / "images"),
            "annotations": str(folder / "data" / "annotations")}


def model_arguments(dataset, output_dir, *extra):
    return ["--network", "demo_densenet", "--checkpoint", dataset["checkpoint"],
            "--labels", dataset["labels"], "--output_dir", str(output_dir),
            "--max_iters", "20", "--check_every", "10"] + list(extra)


def sweep_arguments(dataset, output_dir, *extra):
    return model_arguments(dataset, output_dir, "--images", dataset["images"],
                           "--annotations", dataset["annotations"], "--batch_size", "3",
                           *extra)


@pytest.fixture(scope="module")
def filter_size():
    return Model("demo_densenet", len(CLASS_NAMES)).filter_size


def pairs(records):
    return sorted((r["image"], r["class_id"]) for r in records)


@pytest.fixture(scope="module")
def full_sweep_dir(dataset, tmp_path_factory):
    """All images, top-1 plus the ground-truth classes, npz heatmaps: the folder."""
    output_dir = tmp_path_factory.mktemp("full")
    assert main(sweep_arguments(dataset, output_dir, "--explain_gt", "true")) == 0
    return str(output_dir)


@pytest.fixture(scope="module")
def full_sweep(full_sweep_dir):
    """The results lines of full_sweep_dir."""
    return read_results(os.path.join(full_sweep_dir, "results.jsonl"))


@pytest.mark.parametrize("filter_type, variant", [
    ("l2norm", "cls_specific"), ("softmax", "cls_oblivious"), ("gauss", "cls_specific")])
@pytest.mark.slow
def test_each_heatmap_equals_the_slow_visualisers(dataset, tmp_path, filter_type, variant):
    listing = tmp_path / "three.txt"
    listing.write_text("".join("%s\n" % os.path.join(dataset["images"], "synth_%05d.JPEG" % i)
                               for i in range(3)))
    common = ["--images", str(listing), "--filter_type", filter_type, "--caf_variant", variant,
              "--top_k", "2", "--tolerance", "1e-4", "--seed", "7"]
    assert slow_main(model_arguments(dataset, tmp_path / "slow", *common)) == 0
    # Batches of 2 images (4 rows), the last one partial.
    assert main(model_arguments(dataset, tmp_path / "fast", "--batch_size", "2", *common)) == 0
    slow = {(r["image"], r["class_id"]): r for r in read_results(
        str(tmp_path / "slow" / "results.jsonl"))}
    fast = read_results(str(tmp_path / "fast" / "results.jsonl"))
    assert pairs(fast) == sorted(slow)
    assert len(fast) == (6 if variant == "cls_specific" else 3)
    for record in fast:
        alone = slow[record["image"], record["class_id"]]
        np.testing.assert_allclose(load_heatmap(record["heatmap"], str(tmp_path / "fast")),
                                   load_heatmap(alone["heatmap"], str(tmp_path / "slow")),
                                   rtol=1e-4, atol=1e-6)
        assert record["iterations"] == alone["iterations"]
        assert record["final_loss"] == pytest.approx(alone["final_loss"], rel=1e-4, abs=1e-6)
        assert [p["class_id"] for p in record["predictions"]] == \
            [p["class_id"] for p in alone["predictions"]]
        np.testing.assert_allclose([p["probability"] for p in record["predictions"]],
                                   [p["probability"] for p in alone["predictions"]], rtol=1e-5)


@pytest.mark.slow
def test_ilsvrc_layout_gives_ground_truth_sizes_and_npz_heatmaps(dataset, full_sweep,
                                                                 full_sweep_dir, filter_size):
    annotations = read_annotation_folder(dataset["annotations"])
    assert {os.path.basename(r["image"])[:-len(".JPEG")] for r in full_sweep} == set(annotations)
    assert any(len(a.objects) == 2 for a in annotations.values())
    for record in full_sweep:
        annotation = annotations[os.path.basename(record["image"])[:-len(".JPEG")]]
        assert record["ground_truth"] == [CLASS_NAMES.index(o.name) for o in annotation.objects]
        assert record["image_size"] == [64, 64]
        heatmap = load_heatmap(record["heatmap"], full_sweep_dir)
        assert heatmap.shape == filter_size
        assert np.sum(heatmap ** 2) == pytest.approx(1, rel=1e-4)
        assert ".npz:" in record["heatmap"] and record["overlay"] is None
    for image in {r["image"] for r in full_sweep}:
        lines = [r for r in full_sweep if r["image"] == image]
        top1 = lines[0]["predictions"][0]["class_id"]
        expected = [top1] + [c for c in lines[0]["ground_truth"] if c != top1]
        assert [r["class_id"] for r in lines] == expected


@pytest.mark.slow
def test_shards_cover_everything_once_and_merge(dataset, full_sweep, filter_size, tmp_path,
                                                capsys):
    for shard in ("0/2", "1/2"):
        assert main(sweep_arguments(dataset, tmp_path, "--explain_gt", "true",
                                    "--shard", shard)) == 0
    shard0, shard1 = (read_results(str(tmp_path / ("results_shard%dof2.jsonl" % index)))
                      for index in (0, 1))
    assert not {r["image"] for r in shard0} & {r["image"] for r in shard1}
    assert pairs(shard0 + shard1) == pairs(full_sweep)
    assert main(["--merge", str(tmp_path)]) == 0
    merged = read_results(str(tmp_path / "results.jsonl"))
    assert pairs(merged) == pairs(full_sweep) and len(merged) == len(full_sweep)
    for record in merged:
        assert load_heatmap(record["heatmap"], str(tmp_path)).shape == filter_size
    assert "0 failed, 0 missing, 0 incomplete" in capsys.readouterr().out

    os.remove(str(tmp_path / "results_shard1of2.jsonl"))
    assert main(["--merge", str(tmp_path)]) == 1
    assert "rerun shard(s) 1" in capsys.readouterr().out
    assert pairs(read_results(str(tmp_path / "results.jsonl"))) == pairs(shard0)


@pytest.mark.slow
def test_limit_then_rerun_and_torn_results_lose_and_repeat_nothing(dataset, filter_size,
                                                                    tmp_path, capsys):
    arguments = sweep_arguments(dataset, tmp_path, "--classes", "0,3")
    assert main(arguments + ["--limit", "5"]) == 0
    assert len({r["image"] for r in read_results(str(tmp_path / "results.jsonl"))}) == 5
    assert main(arguments) == 0
    assert "5 skipped as already done" in capsys.readouterr().out
    complete = (tmp_path / "results.jsonl").read_text().splitlines()
    assert len(complete) == 2 * NUM_IMAGES

    # A kill during a batch: its last line torn, two more never written.
    (tmp_path / "results.jsonl").write_text("\n".join(complete[:-3]) + "\n" + complete[-3][:40])
    assert main(arguments) == 0
    assert "6 skipped as already done" in capsys.readouterr().out
    records = read_results(str(tmp_path / "results.jsonl"))
    assert len(records) == len(complete) and pairs(records) == pairs(
        json.loads(line) for line in complete)
    # Every run wrote new heatmap files: none that a line names was overwritten.
    for record in records:
        assert load_heatmap(record["heatmap"], str(tmp_path)).shape == filter_size


@pytest.mark.slow
def test_a_corrupt_image_is_a_failure_and_the_others_are_done(dataset, filter_size, tmp_path,
                                                              capsys):
    images = tmp_path / "images"
    images.mkdir()
    for index in range(2):
        name = "synth_%05d.JPEG" % index
        (images / name).write_bytes(open(os.path.join(dataset["images"], name), "rb").read())
    (images / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    arguments = model_arguments(dataset, tmp_path / "out", "--images", str(images),
                                "--heatmap_format", "npy")
    assert main(arguments) == 1
    assert "broken.jpg: not a readable image" in capsys.readouterr().err
    [failure] = read_results(str(tmp_path / "out" / "failures.jsonl"))
    assert failure["image"].endswith("broken.jpg") and "not a readable image" in failure["reason"]
    records = read_results(str(tmp_path / "out" / "results.jsonl"))
    assert sorted(os.path.basename(r["image"]) for r in records) == [
        "synth_00000.JPEG", "synth_00001.JPEG"]
    assert all(r["ground_truth"] is None for r in records)  # no annotations given
    assert all(load_heatmap(r["heatmap"], str(tmp_path / "out")).shape == filter_size
               for r in records)

    assert main(arguments) == 1  # tried again, still failing; nothing redone
    assert "0 images done (0 heatmaps" in capsys.readouterr().out
    assert len(read_results(str(tmp_path / "out" / "results.jsonl"))) == 2


@pytest.mark.parametrize("extra, message", [
    (["--shard", "2/2"], "shard must be INDEX/COUNT with 0 <= INDEX < COUNT"),
    (["--batch_size", "0"], "batch_size must be at least 1"),
    (["--annotations", "/nowhere"], "annotations: /nowhere: no such annotation folder"),
])
@pytest.mark.slow
def test_bad_sweep_settings_are_clear_errors(dataset, tmp_path, capsys, extra, message):
    assert main(sweep_arguments(dataset, tmp_path, *extra)) == 2
    assert message in capsys.readouterr().err


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for key, option in OPTIONS.items():
        assert "--%s" % key in text
        assert " ".join(option.help.split()) in text
    for flag in ("--merge DIR", "--config", "--list_layers"):
        assert flag in text
