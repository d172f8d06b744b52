"""Hostile run folders (issue 24): lines whose fields have the wrong types, heatmaps of
another shape or none, links out of the folder, a merge while a shard is running, what
--overwrite leaves. Every reader (the evaluation, the pictures, the scoring, the merge, the
visualiser's rerun) refuses with one message naming the file, the line and the repair.
Folders written here without a network, but for one end-to-end case."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from l2caf.annotations import Annotation, BoxObject
from l2caf.errors import RunError
from l2caf.files import FolderLock
from l2caf.report.pictures import PictureRun
from l2caf.runs.faithfulness import FolderScores, ScoringOptions
from l2caf.runs.folder import (RunFolder, Shard, UnreadableHeatmap, load_heatmap,
                               read_config_file, unreadable_heatmaps)
from l2caf.runs.localization import evaluate_run, image_record
from l2caf.runs.merge import merge_results, merge_scores
from l2caf.runs.read import read_failures, read_lines, read_scores
from tests.helpers import DEMO_CHECKPOINT, DEMO_LABELS, REPO_ROOT
from tests.run_builders import (MADE_WITH, LockHolder, results_line, score_line, write_config,
                                write_lines)

SIZE = [4, 4]  # the run's heatmaps


def folder_with(tmp_path, lines, heatmaps=None, made_with=None):
    """A run folder of `lines` (results lines) and their .npy heatmaps (default: a 4x4 map
    each), whose config records heatmap_size 4x4; returns its path."""
    folder = tmp_path / "run"
    write_config(folder, made_with=dict(MADE_WITH, heatmap_size=SIZE) if made_with is None
                 else made_with)
    for line in lines:
        if isinstance(line, dict) and isinstance(line.get("heatmap"), str):
            array = (heatmaps or {}).get(line["heatmap"], np.ones(SIZE, np.float32))
            np.save(str(folder / line["heatmap"]), array)
    with open(str(folder / "results.jsonl"), "w") as stream:
        stream.writelines(line if isinstance(line, str) else json.dumps(line) + "\n"
                          for line in lines)
    return str(folder)


def good(stem="a", class_id=0):
    return results_line("images/%s.jpg" % stem, class_id, "%s_c%d.npy" % (stem, class_id),
                        image_size=[8, 8])


# Lines whose fields have the wrong types (case 8).

BAD_LINES = [
    ("a JSON list", "[1, 2]\n", "line 2: not a JSON object"),
    ("a string", '"results"\n', "line 2: not a JSON object"),
    ("no heatmap", json.dumps({"image": "images/b.jpg", "layer": "conv1",
                               "predictions": [{"class_id": 0, "probability": 0.5}]}) + "\n",
     "line 2: no field heatmap"),
    ("predictions null", json.dumps(dict(good("b"), predictions=None)) + "\n",
     "line 2: predictions is not a non-empty list of predictions (null)"),
    ("markup for a number", json.dumps(dict(good("b"), iterations="<img src=x onerror=1>"))
     + "\n", "line 2: iterations is not a whole number >= 0"),
    ("a string class id", json.dumps(dict(good("b"), class_id="0")) + "\n",
     "line 2: class_id is not a whole number >= 0"),
    ("invalid UTF-8", '{"image": "b\udcff.jpg"}\n', "line 2: not JSON (UnicodeDecodeError)"),
    ("torn in the middle", '{"image": "images/b.jpg", "cla\n', "line 2: not JSON"),
]


def write_bad(folder, text):
    with open(os.path.join(folder, "results.jsonl"), "ab") as stream:
        stream.write(text.encode("utf-8", "surrogateescape"))
        stream.write((json.dumps(good("c")) + "\n").encode("utf-8"))


@pytest.mark.parametrize("case, text, message", BAD_LINES, ids=[case[0] for case in BAD_LINES])
def test_every_reader_refuses_a_bad_results_line_naming_the_file_and_line(tmp_path, case, text,
                                                                         message):
    folder = folder_with(tmp_path, [good("a")])
    write_bad(folder, text)
    path = os.path.join(folder, "results.jsonl")
    for read in (lambda: read_lines(folder), lambda: PictureRun(folder),
                 lambda: FolderScores(folder, ScoringOptions()),
                 lambda: evaluate_run(folder, {})):
        with pytest.raises(RunError) as caught:
            read()
        assert str(caught.value).startswith("%s, %s" % (path, message))
        assert str(caught.value).endswith("delete that line (the command that wrote it makes "
                                          "its work again), or rerun that command with "
                                          "--overwrite")


def test_a_torn_last_line_is_left_out_and_the_others_read(tmp_path):
    folder = folder_with(tmp_path, [good("a"), good("c")])
    with open(os.path.join(folder, "results.jsonl"), "a") as stream:
        stream.write('{"image": "images/d.jpg", "class_id": 0, "heat')  # no newline: a kill
    assert sorted(read_lines(folder)) == ["images/a.jpg", "images/c.jpg"]


def test_bad_score_and_failure_lines_are_refused_too(tmp_path):
    folder = folder_with(tmp_path, [good("a")])
    write_lines(os.path.join(folder, "faithfulness.jsonl"),
                [score_line("images/a.jpg", 0, "a_c0.npy", deletion_auc="low")])
    with pytest.raises(RunError, match=r"faithfulness.jsonl, line 1: deletion_auc is not a "
                                       r"finite number \(\"low\"\)"):
        read_scores(folder, read_lines(folder))
    write_lines(os.path.join(folder, "failures.jsonl"), [{"image": ["x"], "reason": "r"}])
    with pytest.raises(RunError, match=r"failures.jsonl, line 1: image is not a non-empty "
                                       r"string"):
        read_failures(folder, {})


def test_the_merge_refuses_a_bad_shard_line(tmp_path):
    write_config(tmp_path, Shard(0, 2), made_with=dict(MADE_WITH, heatmap_size=SIZE))
    write_lines(tmp_path / "results_shard0of2.jsonl", [good("a")])
    (tmp_path / "results_shard1of2.jsonl").write_text("[]\n")
    with pytest.raises(RunError, match=r"results_shard1of2.jsonl, line 1: not a JSON object"):
        merge_results(str(tmp_path))


# Heatmaps of another shape, or empty (case 5).

def test_a_heatmap_of_another_shape_is_named_by_every_reader(tmp_path):
    folder = folder_with(tmp_path, [good("a"), good("c")],
                         heatmaps={"c_c0.npy": np.ones((5, 5), np.float32)})
    message = "heatmap file %s cannot be used (it is a 5x5 map, not the run's 4x4); rerun" \
        % os.path.join(folder, "c_c0.npy")
    with pytest.raises(UnreadableHeatmap) as caught:
        load_heatmap("c_c0.npy", folder)
    assert str(caught.value).startswith(message)
    # The visualiser's rerun explains it again.
    assert list(unreadable_heatmaps([good("a"), good("c")], folder)) == [1]
    lines = read_lines(folder)["images/c.jpg"]
    annotation = Annotation("c.jpg", 8, 8, [BoxObject("x", (0, 0, 3, 3))])
    with pytest.raises(RunError) as caught:  # the localisation job
        image_record(lines, annotation, {"x": 0}, folder)
    assert str(caught.value).startswith(message)
    with pytest.raises(RunError) as caught:  # the pictures
        PictureRun(folder).entries("images/c.jpg")
    assert str(caught.value).startswith(message)


def test_an_empty_heatmap_is_named(tmp_path):
    folder = folder_with(tmp_path, [good("a")], made_with=MADE_WITH,  # no heatmap_size
                         heatmaps={"a_c0.npy": np.zeros((0, 0), np.float32)})
    with pytest.raises(UnreadableHeatmap, match=r"a_c0.npy cannot be used \(it is empty "
                                                r"\(\[0, 0\]\)\); rerun"):
        load_heatmap("a_c0.npy", folder)


def test_the_curves_are_not_held_to_the_heatmaps_size(tmp_path):
    folder = folder_with(tmp_path, [good("a")])
    np.savez(os.path.join(folder, "faithfulness_curves_000000.npz"), x=np.ones((2, 9)))
    assert load_heatmap("faithfulness_curves_000000.npz:x", folder).shape == (2, 9)


# Links out of the folder (case 9).

def test_a_heatmap_that_links_out_of_the_folder_is_refused(tmp_path):
    folder = folder_with(tmp_path, [good("a")])
    outside = tmp_path / "elsewhere.npy"
    np.save(str(outside), np.ones(SIZE, np.float32))
    os.remove(os.path.join(folder, "a_c0.npy"))
    os.symlink(str(outside), os.path.join(folder, "a_c0.npy"))
    with pytest.raises(UnreadableHeatmap, match="a link to %s, outside the folder"
                                                % str(outside)):
        load_heatmap("a_c0.npy", folder)
    inside = os.path.join(folder, "kept.npy")
    np.save(inside, np.ones(SIZE, np.float32))
    os.symlink(inside, os.path.join(folder, "b_c0.npy"))  # a link within the folder reads
    assert load_heatmap("b_c0.npy", folder).shape == tuple(SIZE)


def test_an_overlay_that_links_out_of_the_folder_is_not_shown(tmp_path):
    folder = folder_with(tmp_path, [dict(good("a"), overlay="a_c0.png")])
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"\x89PNG")
    os.symlink(str(outside), os.path.join(folder, "a_c0.png"))
    run = PictureRun(folder)
    assert run.file_of(run.lines["images/a.jpg"][0], "overlay") is None


# A merge while a shard runs, and what --overwrite deletes (case 9).

def test_a_merge_while_a_shard_is_written_is_refused_naming_its_writer(tmp_path):
    write_config(tmp_path, Shard(0, 2), made_with=dict(MADE_WITH, heatmap_size=SIZE))
    write_lines(tmp_path / "results_shard0of2.jsonl", [good("a")])
    write_lines(tmp_path / "results_shard1of2.jsonl", [good("b")])
    with LockHolder(tmp_path / "results_shard1of2.jsonl") as holder:
        with pytest.raises(RunError) as caught:
            merge_results(str(tmp_path))
    assert "results_shard1of2.jsonl is being written by another process (pid %d" \
        % holder.pid in str(caught.value)
    assert not (tmp_path / "results.jsonl").exists()
    write_lines(tmp_path / "results.jsonl", [good("a"), good("b")])
    write_lines(tmp_path / "faithfulness_shard0of2.jsonl", [score_line("images/a.jpg", 0,
                                                                       "a_c0.npy")])
    with LockHolder(tmp_path / "faithfulness_shard0of2.jsonl"):
        with pytest.raises(RunError, match="faithfulness_shard0of2.jsonl is being written by "
                                           "another process"):
            merge_scores(str(tmp_path))
    assert not (tmp_path / "faithfulness.jsonl").exists()


def test_overwrite_deletes_the_old_tables_curves_too(tmp_path):
    folder = RunFolder(str(tmp_path))
    write_config(tmp_path)
    names = ["localization_cam.csv", "localization_cam.json", "localization_cam_maxboxacc.png",
             "localization_cam_maxboxacc.pdf", "localization_wsol_faithfulness.png",
             "localization_wsol_faithfulness.pdf", "mine.png"]
    for name in names:
        (tmp_path / name).write_text("x")
    with FolderLock(folder.results_path):
        folder.prepare(overwrite=True)
    assert sorted(os.listdir(str(tmp_path))) == [".results.jsonl.lock", "mine.png"]


# End to end: the visualiser records the heatmaps' size, remakes a wrong one, and refuses a
# bad line on its rerun.

@pytest.mark.slow
def test_the_visualiser_remakes_a_wrong_shaped_heatmap_and_refuses_a_bad_line(tmp_path, capsys):
    from l2caf.cli.visualize_fast import main
    images = tmp_path / "images"
    images.mkdir()
    for name in ("shapes_1.jpg", "shapes_2.jpg"):
        shutil.copy(os.path.join(REPO_ROOT, "input_imgs", name), str(images / name))
    output = tmp_path / "run"
    arguments = ["--checkpoint", DEMO_CHECKPOINT, "--labels", DEMO_LABELS, "--network",
                 "demo_densenet", "--images", str(images), "--output_dir", str(output),
                 "--annotations", "", "--max_iters", "3", "--heatmap_format", "npy",
                 "--progress", "false"]
    # The first run and the refusal in this process (TensorFlow is loaded once); the rerun
    # through the script, whose log says on stderr what it explains again.
    assert main(arguments) == 0
    with open(str(output / "config.yaml")) as stream:
        assert "heatmap_size:\n  - 21\n  - 21\n" in stream.read()
    [first] = read_lines(str(output))[str(images / "shapes_1.jpg")]
    np.save(str(output / first["heatmap"]), np.ones((5, 5), np.float32))
    rerun = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "scripts", "visualize_attention_fast.py")]
        + arguments, capture_output=True, text=True, cwd=REPO_ROOT)
    assert rerun.returncode == 0, rerun.stderr
    assert "it is a 5x5 map, not the run's 21x21): explaining them again" in rerun.stderr
    assert "1 images done (1 heatmaps" in rerun.stdout
    assert load_heatmap(first["heatmap"], str(output)).shape == (21, 21)
    with open(str(output / "results.jsonl"), "a") as stream:
        stream.write('{"image": 7}\n')
    capsys.readouterr()
    assert main(arguments) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: %s, line 3: image is not a non-empty string (7); delete that line (the "
        "command that wrote it makes its work again), or rerun that command with "
        "--overwrite" % (output / "results.jsonl")]


def test_a_finished_folder_rerun_with_another_checkpoint_is_refused(tmp_path):
    """A regression test: this holds today too (the report in the issue could not be
    reproduced: a finished folder, slim or Keras, is refused as one with work left)."""
    config = write_config(tmp_path, made_with=dict(MADE_WITH, heatmap_size=SIZE))
    with pytest.raises(RunError, match=r"checkpoint_sha256 \(%s there, %s now\)"
                                       % (MADE_WITH["checkpoint_sha256"], "ef" * 32)):
        RunFolder(str(tmp_path)).check(config, dict(MADE_WITH, checkpoint_sha256="ef" * 32))


def test_a_config_written_with_a_shared_value_has_no_alias_and_reads_back(tmp_path):
    shared = [3, 5]
    config = write_config(tmp_path, made_with=dict(MADE_WITH, heatmap_size=shared),
                          classes=shared)
    text = (tmp_path / "config.yaml").read_text()
    assert "&" not in text and "*" not in text
    assert read_config_file(str(tmp_path / "config.yaml")) == (
        config, dict(MADE_WITH, heatmap_size=[3, 5]))
