"""A run folder is self-contained, as a user meets it (issue 19): copied, moved and rerun
folders scored with their own heatmaps, --overwrite deleting nothing outside its folder, one
writer per folder and shard (two processes started together; kill -9 and a rerun), missing
and corrupt heatmaps remade by a rerun and refused by the evaluation in one line, losses
that stop being finite, and Ctrl-C during the evaluation. The shipped demo model on a few
small synthetic images, few iterations."""
import json
import os
import re
import shutil
import socket
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from l2caf.cli.evaluate import main as evaluate_main
from l2caf.cli.visualize import main as slow_main
from l2caf.cli.visualize_fast import main as fast_main
from l2caf.annotations import Annotation, BoxObject, write_voc_xml
from l2caf.files import read_json_lines as read_results
from l2caf.runs.folder import folder_path, load_heatmap
from l2caf.synthetic import make_dataset
from tests.helpers import DEMO_CHECKPOINT, DEMO_LABELS, REPO_ROOT, default_sigint

pytestmark = pytest.mark.slow  # runs the visualisers end to end

NUM_IMAGES = 6
NUM_EVALUATED = 100  # random heatmaps, in the Ctrl-C test
LOC_SCORES = ("top1_loc_error", "top5_loc_error", "gt_known_loc_accuracy", "max_box_acc",
              "max_box_acc_threshold")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("integrity")
    make_dataset(str(folder / "data"), NUM_IMAGES, image_size=96, seed=777, progress=False)
    return {"images": str(folder / "data" / "images"),
            "annotations": str(folder / "data" / "annotations"), "folder": folder}


def run_arguments(data, output_dir, *extra):
    return ["--network", "demo_densenet", "--checkpoint", DEMO_CHECKPOINT, "--labels",
            DEMO_LABELS, "--images", data["images"], "--annotations", data["annotations"],
            "--output_dir", str(output_dir), "--max_iters", "30", "--check_every", "10",
            "--progress", "false"] + list(extra)


def sweep(data, output_dir, *extra):
    """The fast visualiser (npz heatmaps, batches of 3, top-1 and ground-truth classes)."""
    return fast_main(run_arguments(data, output_dir, "--batch_size", "3", "--explain_gt",
                                   "true", *extra))


def slow_run_arguments(data, output_dir, *extra):
    """The slow visualiser: a .npy heatmap and an overlay per (image, class)."""
    return run_arguments(data, output_dir, "--save_overlays", "true", *extra)


@pytest.fixture(scope="module")
def fast_run(data):
    assert sweep(data, data["folder"] / "fast") == 0
    return str(data["folder"] / "fast")


@pytest.fixture(scope="module")
def slow_run(data):
    assert slow_main(slow_run_arguments(data, data["folder"] / "slow")) == 0
    return str(data["folder"] / "slow")


def evaluate(data, results, capsys):
    """(exit status, the table's row or None, stderr) of the evaluation of one folder."""
    prefix = os.path.join(str(data["folder"]), "tables", os.path.basename(results))
    code = evaluate_main(["--results", str(results), "--annotations", data["annotations"],
                          "--thresholds", "0.1:0.6:0.1", "--workers", "1", "--output", prefix])
    err = capsys.readouterr().err
    if code:
        return code, None, err
    with open(prefix + ".json") as stream:
        [row] = json.load(stream)
    return code, row, err


def loc_scores(row):
    return {key: row[key] for key in LOC_SCORES}


def as_an_older_release_wrote_it(folder, written_in):
    """The folder's lines naming their files as the releases before did: the path as the run
    was given it, here the folder the run was written in (which the copy is not)."""
    path = os.path.join(str(folder), "results.jsonl")
    lines = read_results(path)
    for line in lines:
        for key in ("heatmap", "overlay", "gif"):
            if line[key]:
                line[key] = os.path.join(str(written_in), line[key])
    write_lines(path, lines)
    return lines


def write_lines(path, lines):
    with open(path, "w") as stream:
        stream.writelines(json.dumps(line) + "\n" for line in lines)


def contents(folder):
    """{file name: bytes} of a folder."""
    return {name: open(os.path.join(str(folder), name), "rb").read()
            for name in sorted(os.listdir(str(folder)))}


def one_line(err):
    """The one line of stderr (the evaluation's progress bars end in carriage returns)."""
    lines = [line for line in err.replace("\r", "\n").splitlines()
             if line.strip() and not line.startswith(("heatmaps of", "boxes of"))]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_copied_or_moved_folder_is_scored_with_its_own_heatmaps(data, fast_run, tmp_path,
                                                                   capsys):
    code, own, _ = evaluate(data, fast_run, capsys)
    assert code == 0
    original = tmp_path / "original"
    shutil.copytree(fast_run, str(original))
    copy, older = tmp_path / "copy", tmp_path / "older"
    shutil.copytree(str(original), str(copy))
    shutil.copytree(str(original), str(older))
    as_an_older_release_wrote_it(older, original)  # its lines name the original's files
    shutil.copytree(str(original), str(tmp_path / "before"))
    os.rename(str(tmp_path / "before"), str(tmp_path / "moved"))

    # The original rerun with another method; a new run where the moved folder was.
    assert sweep(data, original, "--method", "random", "--overwrite") == 0
    assert sweep(data, tmp_path / "before", "--method", "random") == 0
    code, other, _ = evaluate(data, original, capsys)
    assert code == 0 and other["method"] == "random"
    assert loc_scores(other) != loc_scores(own)  # else this test would prove nothing
    for folder in (copy, older, tmp_path / "moved"):
        code, row, err = evaluate(data, folder, capsys)
        assert code == 0, err
        assert (row["method"], loc_scores(row)) == ("l2caf", loc_scores(own)), folder


def test_overwrite_in_a_copy_deletes_nothing_outside_it(data, slow_run, tmp_path):
    original, copy = tmp_path / "original", tmp_path / "copy"
    shutil.copytree(slow_run, str(original))
    shutil.copytree(str(original), str(copy))
    lines = as_an_older_release_wrote_it(copy, original)
    # Lines naming files outside the folder: an absolute path and one that climbs out.
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"not the run's")
    lines.append(dict(lines[0], image="other.jpg", heatmap="../original/" + os.path.basename(
        lines[0]["heatmap"]), overlay=str(victim)))
    write_lines(str(copy / "results.jsonl"), lines)
    before = contents(original)

    assert slow_main(slow_run_arguments(data, copy, "--max_iters", "20", "--overwrite")) == 0
    assert contents(original) == before
    assert victim.read_bytes() == b"not the run's"
    records = read_results(str(copy / "results.jsonl"))
    assert len(records) == NUM_IMAGES and all(r["iterations"] <= 20 for r in records)
    for record in records:  # named relative to the folder, and there
        assert os.path.dirname(record["heatmap"]) == os.path.dirname(record["overlay"]) == ""
        assert load_heatmap(record["heatmap"], str(copy)).shape == (21, 21)
        assert os.path.exists(folder_path(str(copy), record["overlay"]))


def test_missing_and_corrupt_npy_heatmaps_stop_the_evaluation_and_a_rerun_remakes_them(
        data, slow_run, tmp_path, capsys):
    folder = tmp_path / "run"
    shutil.copytree(slow_run, str(folder))
    code, before, _ = evaluate(data, folder, capsys)
    assert code == 0
    lines = read_results(str(folder / "results.jsonl"))
    missing, corrupt = (folder_path(str(folder), line["heatmap"]) for line in lines[:2])
    saved = {line["heatmap"]: load_heatmap(line["heatmap"], str(folder)) for line in lines}
    os.remove(missing)
    with open(corrupt, "wb") as stream:
        stream.write(b"garbage, not numpy" * 10)

    code, _, err = evaluate(data, folder, capsys)
    assert code == 2
    assert one_line(err) == (
        "error: heatmap file %s cannot be used (no such file); rerun python "
        "scripts/visualize_attention.py --config %s --output_dir %s to make it again"
        % (missing, folder / "config.yaml", folder))
    write_lines(str(folder / "results.jsonl"), lines[1:])  # the other file next
    code, _, err = evaluate(data, folder, capsys)
    assert code == 2 and "error: heatmap file %s cannot be used (not a .npy array: truncated " \
        "or corrupt); rerun" % corrupt in one_line(err)
    write_lines(str(folder / "results.jsonl"), lines)

    assert slow_main(slow_run_arguments(data, folder)) == 0
    out, err = capsys.readouterr()
    assert "%d skipped as already done" % (NUM_IMAGES - 2) in out
    assert err.count("\n") == 1 and "warning: 2 finished heatmap(s) of %s are missing or " \
        "cannot be used (e.g. %s: no such file): explaining them again" % (
            folder / "results.jsonl", missing) in err
    log = (folder / "run.log").read_text()
    assert "cannot be used (no such file): explaining it again" in log
    assert "cannot be used (not a .npy array: truncated or corrupt): explaining it again" in log
    records = read_results(str(folder / "results.jsonl"))
    assert sorted((r["image"], r["class_id"]) for r in records) == \
        sorted((r["image"], r["class_id"]) for r in lines)
    for record in records:  # the same heatmaps again (the same seeds)
        np.testing.assert_allclose(load_heatmap(record["heatmap"], str(folder)),
                                   saved[record["heatmap"]], rtol=1e-5, atol=1e-7)
    code, after, _ = evaluate(data, folder, capsys)
    assert code == 0 and loc_scores(after) == loc_scores(before)


def test_a_truncated_npz_stops_the_evaluation_and_a_rerun_remakes_its_heatmaps(
        data, fast_run, tmp_path, capsys):
    folder = tmp_path / "run"
    shutil.copytree(fast_run, str(folder))
    code, before, _ = evaluate(data, folder, capsys)
    assert code == 0
    lines = read_results(str(folder / "results.jsonl"))
    assert sorted(name for name in os.listdir(str(folder)) if name.endswith(".npz")) == [
        "heatmaps_000000.npz", "heatmaps_000001.npz"]
    chunk = folder / "heatmaps_000000.npz"
    data_bytes = chunk.read_bytes()
    chunk.write_bytes(data_bytes[:len(data_bytes) // 2])

    code, _, err = evaluate(data, folder, capsys)
    assert code == 2
    assert one_line(err).startswith("error: heatmap file %s cannot be used (not a whole .npz "
                                    "archive: truncated or corrupt); rerun python " % chunk)

    assert sweep(data, folder) == 0
    out, err = capsys.readouterr()
    assert "3 skipped as already done" in out  # the images of the other file
    redone = [line for line in lines if line["heatmap"].startswith("heatmaps_000000.npz:")]
    assert "warning: %d finished heatmap(s)" % len(redone) in err
    records = read_results(str(folder / "results.jsonl"))
    assert len(records) == len(lines) and \
        {(r["image"], r["class_id"]) for r in records} == {(r["image"], r["class_id"])
                                                           for r in lines}
    assert {r["heatmap"].split(":")[0] for r in records} == {"heatmaps_000001.npz",
                                                            "heatmaps_000002.npz"}
    code, after, _ = evaluate(data, folder, capsys)
    assert code == 0 and loc_scores(after) == loc_scores(before)


def test_a_loss_that_is_not_finite_is_a_failure_naming_image_and_class(data, tmp_path,
                                                                       capsys):
    # A finite learning rate so large that Adam's first step overflows the filter: the loss
    # of iteration 0 is finite, that of the next check (iteration 10) is not, and the row
    # stops there (after 11 updates), not at max_iters (30).
    arguments = run_arguments(data, tmp_path, "--learning_rate", "1e38", "--heatmap_format",
                              "npy", "--limit", "2")
    assert slow_main(arguments) == 1
    err = capsys.readouterr().err
    failures = read_results(str(tmp_path / "failures.jsonl"))
    assert len(failures) == 2 and all(f["class_id"] is not None for f in failures)
    for failure in failures:
        class_name = open(DEMO_LABELS).read().split()[failure["class_id"]]
        assert failure["reason"] == (
            "%s, class %d (%s): the loss became nan within 11 updates; no heatmap written (a "
            "smaller learning_rate than 1e+38 may help)" % (failure["image"],
                                                             failure["class_id"], class_name))
        assert err.count(failure["reason"]) == 1
    assert read_results(str(tmp_path / "results.jsonl")) == []
    assert not [name for name in os.listdir(str(tmp_path)) if name.endswith(".npy")]


def start_script(name, *argv):
    return subprocess.Popen([sys.executable, os.path.join(REPO_ROOT, "scripts", name)]
                            + list(argv), cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=default_sigint)


def test_two_processes_on_one_shard_the_second_stops_and_kill_9_loses_nothing(tmp_path,
                                                                            monkeypatch):
    """The same command started twice at once; then the one running is killed with -9 and
    the command run again. cache_activation false (the whole network every iteration, same
    results) keeps the first busy; the rerun may change it."""
    output = tmp_path / "out"
    argv = ["--config", "configs/demo.yaml", "--output_dir", str(output), "--max_iters", "300",
            "--tolerance", "0", "--save_gif", "false", "--progress", "false"]
    processes = [start_script("visualize_attention.py", *argv, "--cache_activation", "false")
                 for _ in range(2)]
    while all(process.poll() is None for process in processes):
        time.sleep(0.1)
    [stopped] = [process for process in processes if process.poll() is not None]
    [running] = [process for process in processes if process is not stopped]
    out, err = stopped.communicate()
    assert stopped.returncode == 2, err
    assert err.startswith("error: %s is being written by another process (pid %d on host %s "
                          "since " % (output / "results.jsonl", running.pid,
                                      socket.gethostname()))
    assert err.count("\n") == 1 and "wait for it to end or stop it" in err

    while running.poll() is None and not read_results(str(output / "results.jsonl")):
        time.sleep(0.1)
    assert running.poll() is None, running.communicate()
    running.kill()  # kill -9, in the middle of the run
    running.communicate()
    assert "pid\": %d" % running.pid in (output / ".results.jsonl.lock").read_text()
    finished = len(read_results(str(output / "results.jsonl")))
    assert 0 < finished < 12

    monkeypatch.chdir(REPO_ROOT)  # the config's paths are relative to the repository
    assert slow_main(argv) == 0
    records = read_results(str(output / "results.jsonl"))
    assert len(records) == len({(r["image"], r["class_id"]) for r in records}) == 12
    for record in records:
        assert load_heatmap(record["heatmap"], str(output)).shape == (21, 21)


def synthetic_run_folder(folder, count):
    """A run folder of `count` images with random 21x21 heatmaps, as the demo model's sweep
    writes them, and their annotations (no model needed)."""
    run, annotations = folder / "run", folder / "annotations"
    run.mkdir()
    annotations.mkdir()
    (run / "config.yaml").write_text("network: demo_densenet\nlabels: %s\nmethod: random\n"
                                     % DEMO_LABELS)
    names = open(DEMO_LABELS).read().split()
    rng = np.random.default_rng(0)
    heatmaps, lines = {}, []
    for index in range(count):
        key = "image_%04d_c0" % index
        heatmaps[key] = rng.random((21, 21)).astype(np.float32)
        lines.append({"image": "image_%04d.jpg" % index, "class_id": 0, "layer": "x",
                      "heatmap": "heatmaps_000000.npz:" + key, "image_size": [300, 400],
                      "ground_truth": [0],
                      "predictions": [{"class_id": 0, "probability": 1.0}]})
        write_voc_xml(str(annotations / ("image_%04d.xml" % index)), Annotation(
            "image_%04d.jpg" % index, 400, 300, [BoxObject(names[0], (50, 40, 250, 200))]))
    np.savez_compressed(str(run / "heatmaps_000000.npz"), **heatmaps)
    write_lines(str(run / "results.jsonl"), lines)
    return run, annotations


def test_ctrl_c_during_the_evaluation_is_one_line_exit_130(tmp_path):
    run, annotations = synthetic_run_folder(tmp_path, NUM_EVALUATED)
    process = start_script("evaluate_localization.py", "--results", str(run), "--annotations",
                           str(annotations), "--workers", "2", "--thresholds", "0:1:0.05")
    err = []
    reader = threading.Thread(target=lambda: err.extend(iter(lambda: process.stderr.read(1),
                                                             "")))
    reader.start()
    while not re.search(r"boxes of .* [1-9]\d*/%d" % NUM_EVALUATED, "".join(err)):
        assert process.poll() is None, "".join(err)  # (the pool is at work once it counts)
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    process.wait(timeout=60)
    reader.join()
    err = "".join(err)
    assert process.returncode == 130, err
    for sign in ("Traceback", "KeyboardInterrupt", "SpawnPoolWorker"):  # the workers say none
        assert sign not in err, err
    assert one_line(err) == ("interrupted: nothing written; run the same command again for "
                             "the table")
    assert not os.path.exists(str(run / "localization_cam.csv"))
