"""scripts/evaluate_faithfulness.py end to end on the shipped demo models over held-out
synthetic images (seed 777): L2-CAF and Grad-CAM against the random floor, the scores
against the library on the same heatmaps, resume after kill -9, shards and their merge,
refusals, a Keras run, and the table's new columns."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import yaml

from l2caf.evaluation import faithfulness
from l2caf.files import read_json_lines
from l2caf.runs import folder as run_folder
from l2caf.cli.evaluate import main as table_main
from l2caf.cli.faithfulness import main as faithfulness_main
from l2caf.cli.visualize_fast import main as sweep_main
from l2caf.runs.faithfulness import noise_seed
from l2caf.synthetic import make_dataset
from tests.helpers import (DEMO_CHECKPOINT, DEMO_DIR, DEMO_LABELS, REPO_ROOT, disc_meets_boxes,
                           mass_inside, read_xml)

# Marked slow: the tests that sweep and score end to end.

NUM_IMAGES = 32
HELD_OUT_SEED = 777  # training used seeds 0 and 1
STEPS = 12
METHODS = ("l2caf", "gradcam", "random", "gradcampp", "layercam", "scorecam")
SCORE_KEYS = ("deletion_auc", "insertion_auc", "average_drop", "increase_in_confidence",
              "probability", "masked_probability")


def sweep(data, output_dir, *extra):
    """configs/demo_fast.yaml on the data set, fewer iterations."""
    assert sweep_main([
        "--config", os.path.join(REPO_ROOT, "configs", "demo_fast.yaml"),
        "--checkpoint", DEMO_CHECKPOINT, "--labels", DEMO_LABELS,
        "--images", str(data / "images"), "--annotations", str(data / "annotations"),
        "--output_dir", str(output_dir), "--max_iters", "60", "--progress", "false"]
        + list(extra)) == 0
    return str(output_dir)


# Fewer ROAD fractions than the protocol's nine, for speed: each is two sparse solves per
# heatmap (tests/test_road.py checks the protocol's own).
ROAD_FRACTIONS = "0.3,0.6"


def score(*arguments):
    """scripts/evaluate_faithfulness.py with the arguments, at ROAD_FRACTIONS unless given."""
    road = [] if "--road_fractions" in arguments else ["--road_fractions", ROAD_FRACTIONS]
    return faithfulness_main(list(arguments) + road + ["--progress", "false"])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faithfulness")
    make_dataset(str(folder / "data"), NUM_IMAGES, seed=HELD_OUT_SEED, progress=False)
    return folder / "data"


@pytest.fixture(scope="module")
def scored(data):
    """{method: a run folder of the method, scored at STEPS steps}."""
    folders = {method: sweep(data, data.parent / method, "--method", method)
               for method in METHODS}
    assert score("--results", *folders.values(), "--steps", str(STEPS)) == 0
    return folders


def unscored_copy(folder, destination):
    """A copy of a run folder without its faithfulness files."""
    shutil.copytree(folder, str(destination))
    for name in os.listdir(str(destination)):
        if name.startswith("faithfulness"):
            os.remove(os.path.join(str(destination), name))
    return str(destination)


# The tests of resuming, shards, refusals and failures score copies of a run cut to its
# first FEW_IMAGES images: what they check does not depend on the number of heatmaps, and
# scoring the 32 images' heatmaps again costs many seconds in each.
FEW_IMAGES = 6


def few_images_copy(folder, destination, scores=False):
    """A copy of a run folder whose results are those of its first FEW_IMAGES images, with
    their scores and only the curves files those name (scores=True), or without its
    faithfulness files: a run of those images, as the scoring job and the table read it."""
    shutil.copytree(folder, str(destination))
    destination = str(destination)
    results = read_json_lines(os.path.join(folder, "results.jsonl"))
    kept = set(sorted({line["image"] for line in results})[:FEW_IMAGES])

    def cut(name):
        lines = [line for line in read_json_lines(os.path.join(folder, name))
                 if line["image"] in kept]
        with open(os.path.join(destination, name), "w") as stream:
            stream.writelines(json.dumps(line) + "\n" for line in lines)
        return lines
    cut("results.jsonl")
    named = {line[key].partition(":")[0] for line in cut("faithfulness.jsonl")
             for key in ("curves", "road_curves")} if scores else set()
    for name in os.listdir(destination):
        if name.startswith("faithfulness") and name != "faithfulness.jsonl" \
                and name not in named or name == "faithfulness.jsonl" and not scores:
            os.remove(os.path.join(destination, name))
    return destination


def score_lines(folder, name="faithfulness.jsonl"):
    return read_json_lines(os.path.join(folder, name))


def by_key(lines):
    keyed = {(line["image"], line["class_id"]): line for line in lines}
    assert len(keyed) == len(lines), "a heatmap scored twice"
    return keyed


def assert_same_scores(lines, reference_lines, folder, reference_folder):
    """The same heatmaps, scores and curves (to float32 rounding: batches differ)."""
    lines, reference = by_key(lines), by_key(reference_lines)
    assert set(lines) == set(reference)
    for key, line in lines.items():
        for name in SCORE_KEYS:
            assert line[name] == pytest.approx(reference[key][name], abs=2e-6), name
        for name in faithfulness.protocol_settings(STEPS, (168, 168)):
            assert line[name] == reference[key][name], name
        np.testing.assert_allclose(
            run_folder.load_heatmap(line["curves"], folder),
            run_folder.load_heatmap(reference[key]["curves"], reference_folder), atol=2e-6)


def table(capsys, folders, annotations, output):
    code = table_main(["--results"] + list(folders) + ["--annotations", str(annotations),
                                                       "--output", str(output)])
    out, err = capsys.readouterr()
    assert code == 0, err
    with open(str(output) + ".json") as stream:
        return json.load(stream), out


def pointing_games(folder, annotations):
    """(pointing game, energy pointing game) in percent of a run's ground-truth heatmaps,
    from its results, heatmaps and XMLs, with tests.helpers' pixel-by-pixel rules."""
    names = open(DEMO_LABELS).read().split()
    hits, energies = [], []
    for line in read_json_lines(os.path.join(folder, "results.jsonl")):
        stem = os.path.splitext(os.path.basename(line["image"]))[0]
        size, boxes = read_xml(str(annotations / (stem + ".xml")))
        class_boxes = boxes.get(names[line["class_id"]])
        if not class_boxes:
            continue  # a heatmap of a class the image does not hold
        resized = cv2.resize(run_folder.load_heatmap(line["heatmap"], folder).astype(np.float64),
                             (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        y, x = np.unravel_index(np.argmax(resized), resized.shape)
        hits.append(disc_meets_boxes((x, y), class_boxes))
        energies.append(mass_inside(resized, class_boxes))
    return 100 * np.mean(hits), 100 * np.mean(energies)


@pytest.mark.slow
def test_methods_beat_random_on_every_metric_and_the_baselines_on_the_curves(
        data, scored, capsys, tmp_path):
    rows, out = table(capsys, scored.values(), data / "annotations", tmp_path / "table")
    print("\n" + out)
    rows = {row["method"]: row for row in rows}
    floor = rows["random"]
    for method in ("l2caf", "gradcam"):
        row = rows[method]
        assert row["deletion_auc"] < floor["deletion_auc"]
        assert row["insertion_auc"] > floor["insertion_auc"]
        assert row["average_drop"] < floor["average_drop"]
        assert row["increase_in_confidence"] > floor["increase_in_confidence"]
        assert row["road_morf_auc"] < floor["road_morf_auc"]
        assert row["road_lerf_auc"] > floor["road_lerf_auc"]
        assert row["pointing_game"] > floor["pointing_game"]
        assert row["energy_pointing_game"] > floor["energy_pointing_game"]
    for method in ("gradcampp", "layercam", "scorecam"):  # the baselines' folders score too
        assert rows[method]["deletion_auc"] < floor["deletion_auc"]
        assert rows[method]["insertion_auc"] > floor["insertion_auc"]
    for row in rows.values():
        assert row["faithfulness_heatmaps"] == row["heatmaps"] == row["pointing_heatmaps"] \
            == row["ground_truth_pairs"]  # explain_gt: the heatmap of every object's class
        assert row["faithfulness_steps"] == STEPS
        assert row["notes"] == ["deletion and insertion curves of 12 steps, not the "
                                "protocol's 168 (one row of pixels per step)"]
    # The table's columns against the lines and the boxes, recomputed here.
    lines = score_lines(scored["gradcam"])
    row = rows["gradcam"]
    assert row["deletion_auc"] == pytest.approx(np.mean([x["deletion_auc"] for x in lines]))
    assert row["increase_in_confidence"] == pytest.approx(
        100 * np.mean([x["increase_in_confidence"] for x in lines]))
    assert (row["pointing_game"], row["energy_pointing_game"]) == pytest.approx(
        pointing_games(scored["gradcam"], data / "annotations"), abs=1e-9)
    header = out.splitlines()[0]
    for name in ("pointing game", "energy pointing game", "deletion AUC (lower is better)",
                 "insertion AUC", "Average Drop (lower is better)", "Increase in Confidence",
                 "Average Gain", "ROAD MoRF AUC (lower is better)", "ROAD LeRF AUC",
                 "heatmaps (pointing)", "heatmaps (faithfulness)"):
        assert "| %s |" % name in header


@pytest.mark.slow
def test_the_lines_are_the_librarys_scores_of_the_runs_heatmaps_and_images(scored, demo_model):
    folder = scored["gradcam"]
    lines = score_lines(folder)
    results = {(line["image"], line["class_id"]): line
               for line in read_json_lines(os.path.join(folder, "results.jsonl"))}
    assert set(by_key(lines)) == set(results)
    for line in lines:
        result = results[line["image"], line["class_id"]]
        assert line["heatmap"] == result["heatmap"] and line["method"] == "gradcam"
        # The network and the image rebuilt as the run saw them: the same probability.
        recorded = {p["class_id"]: p["probability"] for p in result["predictions"]}
        if line["class_id"] in recorded:
            assert line["probability"] == pytest.approx(recorded[line["class_id"]], abs=1e-5)
        curves = run_folder.load_heatmap(line["curves"], folder)
        assert curves.shape == (2, STEPS + 1) and curves.dtype == np.float32
        assert re.match(r"faithfulness_curves_\d{6}\.npz:", line["curves"])
        assert faithfulness.auc(curves[0]) == pytest.approx(line["deletion_auc"], abs=1e-6)
        assert faithfulness.auc(curves[1]) == pytest.approx(line["insertion_auc"], abs=1e-6)
    from l2caf import images, preprocessing
    chosen = lines[:3]
    inputs = np.stack([preprocessing.preprocess(
        images.resize(images.read_image(line["image"]), 168).astype(np.float32),
        demo_model.preprocessing) for line in chosen])
    road_fractions = [float(value) for value in ROAD_FRACTIONS.split(",")]
    expected = faithfulness.Faithfulness(demo_model, STEPS, road_fractions=road_fractions)(
        inputs, [run_folder.load_heatmap(line["heatmap"], folder) for line in chosen],
        [line["class_id"] for line in chosen],
        noise_seeds=[noise_seed(line) for line in chosen])
    for line, scores in zip(chosen, expected):
        for key in ("deletion_auc", "insertion_auc", "average_drop", "average_gain",
                    "road_morf_auc", "road_lerf_auc"):
            assert line[key] == pytest.approx(getattr(scores, key), abs=2e-6), key


@pytest.mark.slow
def test_resume_after_kill_9_equals_an_uninterrupted_run(scored, tmp_path):
    reference = few_images_copy(scored["gradcam"], tmp_path / "reference", scores=True)
    folder = few_images_copy(reference, tmp_path / "killed")
    scores_path = os.path.join(folder, "faithfulness.jsonl")
    # The command with a chunk of one image, so that a kill lands between chunks' lines.
    # (The chunk size is the scoring job's, l2caf.runs.faithfulness.)
    code = ("import sys; sys.path.insert(0, %r); import l2caf.cli.faithfulness as command; "
            "import l2caf.runs.faithfulness as job; job.FORWARD_PASSES_PER_CHUNK = 1; "
            "sys.exit(command.main(sys.argv[1:]))" % REPO_ROOT)
    process = subprocess.Popen([sys.executable, "-c", code, "--results", folder, "--steps",
                                str(STEPS), "--road_fractions", ROAD_FRACTIONS,
                                "--progress", "false"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None and not (
            os.path.exists(scores_path) and len(score_lines(folder)) >= 2):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    written = len(score_lines(folder))
    total = len(score_lines(reference))
    assert 2 <= written < total
    with open(scores_path, "a") as stream:  # and a line torn by the kill
        stream.write('{"image": "%s", "class_id": 1, "deletion_auc": 0.' % folder)
    assert score("--results", folder, "--steps", str(STEPS)) == 0
    assert_same_scores(score_lines(folder), score_lines(reference), folder, reference)


@pytest.mark.slow
def test_shards_then_merge_equal_one_run(data, scored, capsys, tmp_path, monkeypatch):
    reference = few_images_copy(scored["random"], tmp_path / "reference", scores=True)
    folder = few_images_copy(reference, tmp_path / "sharded")
    assert score("--results", folder, "--steps", str(STEPS), "--shard", "0/2") == 0
    capsys.readouterr()
    assert faithfulness_main(["--merge", folder]) == 1
    assert "rerun shard(s) 1" in capsys.readouterr().out
    # The second task of a Slurm job array of two (task ids 4 and 5).
    for name, value in (("SLURM_ARRAY_TASK_ID", "5"), ("SLURM_ARRAY_TASK_MIN", "4"),
                        ("SLURM_ARRAY_TASK_COUNT", "2")):
        monkeypatch.setenv(name, value)
    assert score("--results", folder, "--steps", str(STEPS), "--shard", "auto") == 0
    assert os.path.exists(os.path.join(folder, "faithfulness_shard1of2.jsonl"))
    # The table reads the shards side by side, as it reads the results'.
    rows, _ = table(capsys, [folder, reference], data / "annotations", tmp_path / "table")
    for key in ("deletion_auc", "insertion_auc", "average_drop", "increase_in_confidence",
                "faithfulness_heatmaps"):
        assert rows[0][key] == pytest.approx(rows[1][key], abs=1e-6)
    assert faithfulness_main(["--merge", folder]) == 0
    assert "0 unscored" in capsys.readouterr().out
    assert_same_scores(score_lines(folder), score_lines(reference), folder, reference)


@pytest.mark.slow
def test_a_partial_scoring_says_so_in_the_table(data, scored, capsys, tmp_path):
    folder = few_images_copy(scored["l2caf"], tmp_path / "partial")
    assert score("--results", folder, "--steps", str(STEPS), "--limit", "5") == 0
    [row], out = table(capsys, [folder], data / "annotations", tmp_path / "table")
    assert 5 <= row["faithfulness_heatmaps"] < row["heatmaps"]
    assert "faithfulness scores cover %d of the %d heatmaps" % (
        row["faithfulness_heatmaps"], row["heatmaps"]) in out


def one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    return err


@pytest.mark.slow
def test_other_settings_and_other_checkpoints_are_refused(data, scored, capsys, tmp_path):
    folder = scored["random"]
    assert score("--results", folder, "--steps", "5") == 2
    assert "holds scores made with other settings: steps (12 there, 5 now)" in \
        one_line_error(capsys)
    overwritten = few_images_copy(folder, tmp_path / "overwritten", scores=True)
    assert score("--results", overwritten, "--steps", "2", "--overwrite") == 0
    lines = score_lines(overwritten)
    # Every heatmap scored again.
    assert len(lines) == len(read_json_lines(os.path.join(overwritten, "results.jsonl")))
    assert {line["steps"] for line in lines} == {2}
    # Only the new scores' curves files are left: the old ones went with their lines.
    named = {line[key].partition(":")[0] for line in lines for key in ("curves", "road_curves")}
    assert {name for name in os.listdir(overwritten)
            if name.startswith("faithfulness_curves_")} == named
    assert score("--results", str(tmp_path / "absent")) == 2
    assert "no such results folder" in one_line_error(capsys)
    assert score("--results", folder, "--steps", str(168 * 168 + 1)) == 2
    assert "--steps must be at most 28224" in one_line_error(capsys)
    changed = unscored_copy(folder, tmp_path / "changed")
    with open(os.path.join(changed, "config.yaml")) as stream:
        config = yaml.safe_load(stream)
    config["made_with"]["checkpoint_sha256"] = "0" * 64  # another checkpoint made the heatmaps
    with open(os.path.join(changed, "config.yaml"), "w") as stream:
        yaml.safe_dump(config, stream)
    assert score("--results", changed, "--steps", "2") == 2
    assert "is not the one that made the heatmaps" in one_line_error(capsys)
    # Scores of other heatmaps than the results name (older results) stop the table.
    stale = unscored_copy(folder, tmp_path / "stale")
    lines = score_lines(folder)
    lines[0]["heatmap"] = "heatmaps_000099.npz:other"
    with open(os.path.join(stale, "faithfulness.jsonl"), "w") as stream:
        stream.writelines(json.dumps(line) + "\n" for line in lines)
    assert table_main(["--results", stale, "--annotations", str(data / "annotations"),
                       "--output", str(tmp_path / "stale_table")]) == 2
    assert "the scores are of other results" in one_line_error(capsys)
    assert not os.path.exists(str(tmp_path / "stale_table.json"))


@pytest.mark.slow
def test_an_unreadable_image_is_a_failure_and_the_others_are_scored(data, scored, capsys,
                                                                    tmp_path):
    folder = few_images_copy(scored["random"], tmp_path / "broken")
    images = tmp_path / "images"
    shutil.copytree(str(data / "images"), str(images))
    results = read_json_lines(os.path.join(folder, "results.jsonl"))
    for line in results:
        line["image"] = str(images / os.path.basename(line["image"]))
    with open(os.path.join(folder, "results.jsonl"), "w") as stream:
        stream.writelines(json.dumps(line) + "\n" for line in results)
    broken = results[0]["image"]
    with open(broken, "r+b") as stream:
        stream.truncate(100)
    assert score("--results", folder, "--steps", "2") == 1
    failures = score_lines(folder, "failures_faithfulness.jsonl")
    assert [failure["image"] for failure in failures] == [broken]
    scored_images = {line["image"] for line in score_lines(folder)}
    assert broken not in scored_images and len(scored_images) == FEW_IMAGES - 1


@pytest.mark.slow
def test_a_keras_run_is_scored_on_its_own_model(data, tmp_path):
    folder = str(tmp_path / "keras")
    assert sweep_main([
        "--config", os.path.join(REPO_ROOT, "configs", "demo_keras.yaml"),
        "--checkpoint", os.path.join(DEMO_DIR, "demo_keras.keras"), "--labels", DEMO_LABELS,
        "--images", str(data / "images"), "--annotations", str(data / "annotations"),
        "--output_dir", folder, "--method", "gradcam", "--limit", "3", "--top_k", "1",
        "--save_overlays", "false", "--progress", "false"]) == 0
    assert score("--results", folder, "--steps", "4", "--gpu", "-1") == 0
    results = by_key(read_json_lines(os.path.join(folder, "results.jsonl")))
    lines = score_lines(folder)
    assert len(lines) == len(results) == 3
    for line in lines:
        [top1] = results[line["image"], line["class_id"]]["predictions"][:1]
        assert line["probability"] == pytest.approx(top1["probability"], abs=1e-5)
        assert line["input_size"] == [96, 96]


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        faithfulness_main(["--help"])
    out = capsys.readouterr().out
    for option in ("--results", "--merge", "--steps", "--road_fractions", "--road_noise",
                   "--batch_size", "--limit", "--shard", "--gpu", "--workers", "--overwrite",
                   "--progress"):
        assert option in out


@pytest.mark.parametrize("value", ["0.1,x", "0.5,0.2", "0,0.5"])
def test_bad_road_fractions_are_one_line_before_any_work(value, capsys, tmp_path):
    assert faithfulness_main(["--results", str(tmp_path), "--road_fractions", value]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--road_fractions" in err
