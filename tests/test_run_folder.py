"""Run folders without TensorFlow: heatmap references, shards from a Slurm job array, file
names with ':' through the evaluation, and an evaluation that never imports TensorFlow."""
import errno
import os
import re
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
import yaml

from l2caf import files
from l2caf.runs import folder as run_folder
from l2caf.runs.merge import merge_results
from l2caf.errors import ConfigError, OutputError, RunError
from l2caf.runs.folder import Shard, load_heatmap, parse_shard
from tests.helpers import REPO_ROOT


def test_heatmap_references_are_relative_to_their_folder_and_read_from_it_only(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    chunks = run_folder.NpzChunks(str(folder), Shard(0, 1))
    heatmap = np.arange(6, dtype=np.float32).reshape(2, 3)
    [reference] = chunks.write({"a:b.npz:c_c1": heatmap}).values()
    assert reference == "heatmaps_000000.npz:a:b.npz:c_c1"
    np.testing.assert_array_equal(load_heatmap(reference, str(folder)), heatmap)
    [npy] = run_folder.NpyFiles(str(folder)).write({"x.npz:y_c2": 2 * heatmap}).values()
    assert npy == "x.npz:y_c2.npy"  # a .npy file, though its name holds '.npz:'
    np.testing.assert_array_equal(load_heatmap(npy, str(folder)), 2 * heatmap)
    # Numbered on from the highest file in the folder: no file a line names is overwritten.
    (folder / "heatmaps_000007.npz").write_bytes(b"")
    assert run_folder.NpzChunks(str(folder), Shard(0, 1)).next_number == 8

    # Moved: read where it is now. A line of an older release names the file where it was
    # written; the folder's own file of that name is read, never the other one.
    shutil.move(str(folder), str(tmp_path / "moved"))
    moved = str(tmp_path / "moved")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    np.save(str(elsewhere / "x.npz:y_c2.npy"), np.zeros((2, 3), np.float32))
    for reference, expected in [(reference, heatmap),
                                (str(folder / "heatmaps_000000.npz") + ":a:b.npz:c_c1", heatmap),
                                (str(elsewhere / "x.npz:y_c2.npy"), 2 * heatmap),
                                ("../elsewhere/x.npz:y_c2.npy", 2 * heatmap)]:
        np.testing.assert_array_equal(load_heatmap(reference, moved), expected)
    assert run_folder.folder_path(moved, "/anywhere/x_c3.png") == os.path.join(moved, "x_c3.png")
    assert run_folder.folder_path(moved, "heatmaps_000001.npz:k_c0") == \
        os.path.join(moved, "heatmaps_000001.npz")


def corrupt(path, how):
    data = open(path, "rb").read()
    with open(path, "wb") as stream:
        stream.write(data[:len(data) // 2] if how == "truncated" else b"\x93NUMPY garbage" * 9)


@pytest.mark.parametrize("case, reason", [
    ("missing npy", "no such file"),
    ("garbage npy", "not a .npy array: truncated or corrupt"),
    ("truncated npy", "not a .npy array: truncated or corrupt"),
    ("pickled npy", "not a .npy array: truncated or corrupt"),
    ("3-D npy", "not a 2-D array of numbers (float32 [2, 2, 2])"),
    ("NaN npy", "it holds NaN or infinite values"),
    ("truncated npz", "not a whole .npz archive: truncated or corrupt"),
    ("garbage npz", "not a whole .npz archive: truncated or corrupt"),
    ("missing key", "it holds no array gone_c0"),
])
def test_an_unusable_heatmap_is_one_runerror_naming_the_file_and_the_rerun(tmp_path, case,
                                                                        reason):
    (tmp_path / "config.yaml").write_text("max_iters: 3\n")
    heatmap = np.ones((2, 2), np.float32)
    [npy] = run_folder.NpyFiles(str(tmp_path)).write({"x_c0": heatmap}).values()
    [npz] = run_folder.NpzChunks(str(tmp_path), Shard(0, 1)).write({"x_c0": heatmap}).values()
    reference = npz if "npz" in case or "key" in case else npy
    path = run_folder.folder_path(str(tmp_path), reference)
    if case == "missing npy":
        os.remove(path)
    elif case.split()[0] in ("garbage", "truncated"):
        corrupt(path, case.split()[0])
    elif case == "pickled npy":
        np.save(path, np.array([{"code": "runs on load"}], dtype=object), allow_pickle=True)
    elif case == "3-D npy":
        np.save(path, np.ones((2, 2, 2), np.float32))
    elif case == "NaN npy":
        np.save(path, np.full((2, 2), np.nan, np.float32))
    elif case == "missing key":
        reference = npz.replace("x_c0", "gone_c0")
    with pytest.raises(RunError) as caught:
        load_heatmap(reference, str(tmp_path))
    message = str(caught.value)
    assert message == "heatmap file %s cannot be used (%s); rerun python " \
        "scripts/visualize_attention.py --config %s --output_dir %s to make it again" % (
            path, reason, tmp_path / "config.yaml", tmp_path)
    records = [{"image": "x.jpg", "class_id": 0, "heatmap": reference},
               {"image": "y.jpg", "class_id": 0, "heatmap": npy if reference == npz else npz}]
    problems = run_folder.unreadable_heatmaps(records, str(tmp_path))
    assert list(problems) == [0] and problems[0].reason == reason


def test_shard_auto_takes_the_slurm_array_task():
    environ = {"SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_MIN": "10",
               "SLURM_ARRAY_TASK_COUNT": "4"}
    assert parse_shard("auto", environ) == Shard(2, 4)
    assert parse_shard("3/8", {}) == Shard(3, 8)
    with pytest.raises(ConfigError, match="shard auto takes INDEX/COUNT from a Slurm job array "
                                          r"\(sbatch --array\), but SLURM_ARRAY_TASK_ID, "
                                          "SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT are not "
                                          "set; give --shard INDEX/COUNT instead"):
        parse_shard("auto", {})
    with pytest.raises(ConfigError, match="shard must be INDEX/COUNT"):
        parse_shard("auto", dict(environ, SLURM_ARRAY_TASK_ID="9"))  # below the array's first
    with pytest.raises(ConfigError, match="must be integers"):
        parse_shard("auto", dict(environ, SLURM_ARRAY_TASK_COUNT="x"))


def run(*argv, env=None):
    return subprocess.run(list(argv), capture_output=True, text=True, cwd=REPO_ROOT,
                          env=dict(os.environ, **(env or {})))


@pytest.mark.slow
def test_a_slurm_array_sweep_with_colons_in_names_then_merge_and_evaluation_without_tensorflow(
        tmp_path, blocked_tensorflow):
    from l2caf.synthetic import make_dataset
    make_dataset(str(tmp_path / "data"), 4, image_size=64, progress=False)
    images, annotations = tmp_path / "data" / "images", tmp_path / "data" / "annotations"
    for index in range(2):  # names with ':' (legal on Linux and macOS)
        os.rename(str(images / ("synth_%05d.JPEG" % index)), str(images / ("x:%d.JPEG" % index)))
        os.rename(str(annotations / ("synth_%05d.xml" % index)),
                  str(annotations / ("x:%d.xml" % index)))
    output = tmp_path / "out"
    sweep = [os.path.join("scripts", "cluster", "slurm_sweep.sbatch"), "configs/demo_fast.yaml",
             "--images", str(images), "--annotations", str(annotations), "--max_iters", "5",
             "--output_dir", str(output)]
    for task in (3, 4):  # the tasks of an array --array=3-4, as Slurm runs them
        result = run("bash", *sweep, env={"SLURM_ARRAY_TASK_ID": str(task),
                                          "SLURM_ARRAY_TASK_MIN": "3",
                                          "SLURM_ARRAY_TASK_COUNT": "2",
                                          "SLURM_CPUS_PER_TASK": "2"})
        assert result.returncode == 0, result.stderr
    assert sorted(name for name in os.listdir(str(output)) if name.startswith("results")) == [
        "results_shard0of2.jsonl", "results_shard1of2.jsonl"]

    no_tensorflow = {"PYTHONPATH": blocked_tensorflow}
    assert run(sys.executable, "-c", "import tensorflow", env=no_tensorflow).returncode == 1
    result = run("bash", os.path.join("scripts", "cluster", "slurm_merge_evaluate.sbatch"),
                 str(output), str(annotations), "--thresholds", "0.2,0.5", env=no_tensorflow)
    assert result.returncode == 0, result.stderr
    assert "0 failed, 0 missing, 0 incomplete" in result.stdout
    assert "| %s | l2caf | demo_densenet | cam | 0.2 | 4 |" % output in result.stdout
    records = files.read_json_lines(str(output / "results.jsonl"))
    assert {os.path.basename(r["image"]) for r in records} >= {"x:0.JPEG", "x:1.JPEG"}


def test_submit_slurm_queues_the_array_then_the_merge_after_it(tmp_path):
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    (bin_folder / "sbatch").write_text("#!/bin/bash\necho \"$@\" >> %s\n"
                                       "echo $((1000 + $(wc -l < %s)))\\;cluster\n"
                                       % (tmp_path / "calls", tmp_path / "calls"))
    (bin_folder / "sbatch").chmod(0o755)
    result = run("bash", os.path.join("scripts", "cluster", "submit_slurm.sh"),
                 "configs/resnet50_v2_fast.yaml", "data/imagenet/val", "4",
                 env={"PATH": "%s:%s" % (bin_folder, os.environ["PATH"])})
    assert result.returncode == 0, result.stderr
    here = os.path.join("scripts", "cluster")
    assert (tmp_path / "calls").read_text().splitlines() == [
        "--parsable --array=0-3 %s/slurm_sweep.sbatch configs/resnet50_v2_fast.yaml" % here,
        "--parsable --dependency=afterany:1001 %s/slurm_merge_evaluate.sbatch "
        "outputs/resnet_v2_50_fast data/imagenet/val" % here]
    assert result.stdout == ("sweep: job array 1001 (4 tasks) into outputs/resnet_v2_50_fast; "
                             "merge and evaluation: job 1002\n")


def test_the_kubernetes_indexed_job_runs_one_shard_per_index():
    with open(os.path.join(REPO_ROOT, "scripts", "cluster", "k8s_sweep.yaml")) as stream:
        job = yaml.safe_load(stream)
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"]
    [container] = spec["template"]["spec"]["containers"]
    command = " ".join(container["command"] + container["args"])
    shard = re.search(r"--shard (\S+)", command).group(1)
    for index in range(spec["completions"]):
        assert parse_shard(shard.replace("${JOB_COMPLETION_INDEX}", str(index))) == \
            Shard(index, spec["completions"])
    config = re.search(r"--config (\S+)", command).group(1)
    assert os.path.exists(os.path.join(REPO_ROOT, config))
    with open(os.path.join(REPO_ROOT, "scripts", "cluster", "k8s_merge_evaluate.yaml")) as stream:
        merge = yaml.safe_load(stream)
    [container] = merge["spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == run_folder.read_config_file(
        os.path.join(REPO_ROOT, config))[0].output_dir


HOLD_LOCK = """
import sys
from l2caf.files import FolderLock
with FolderLock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.read()
"""


def lock_holder(path):
    """A process that holds FolderLock(path) until killed (or its stdin closes)."""
    process = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path)], cwd=REPO_ROOT,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "locked\n"
    return process


def test_one_writer_per_file_and_a_killed_writers_lock_is_taken_over(tmp_path):
    results = tmp_path / "results.jsonl"
    holder = lock_holder(results)
    with pytest.raises(RunError) as caught:
        with files.FolderLock(str(results)):
            pass
    message = str(caught.value)
    assert message.startswith("%s is being written by another process (pid %d on host %s "
                              "since " % (results, holder.pid, socket.gethostname()))
    assert "-c %s); wait for it to end or stop it" % results in message
    # Another shard's file is another lock.
    with files.FolderLock(str(tmp_path / "results_shard1of2.jsonl")):
        pass
    holder.kill()  # SIGKILL: no clean-up; the system drops the lock with the process
    holder.wait()
    assert str(holder.pid) in (tmp_path / ".results.jsonl.lock").read_text()
    with files.FolderLock(str(results)) as lock:
        assert lock.problem is None
        assert '"pid": %d' % os.getpid() in (tmp_path / ".results.jsonl.lock").read_text()
        with pytest.raises(RunError, match="being written by this process already"):
            with files.FolderLock(str(results)):
                pass
    with files.FolderLock(str(results)):  # released on leaving
        pass


def test_a_merge_and_an_overwrite_wait_for_no_one(tmp_path):
    """A merge writes results.jsonl, an --overwrite deletes every shard's files: either
    stops while a process writes one of them, and nothing is changed."""
    (tmp_path / "config_shard0of2.yaml").write_text("network: demo_densenet\n")
    (tmp_path / "results_shard0of2.jsonl").write_text("")
    (tmp_path / "results_shard1of2.jsonl").write_text("")
    before = sorted(os.listdir(tmp_path))
    holder = lock_holder(tmp_path / "results.jsonl")
    with pytest.raises(RunError, match="results.jsonl is being written by another process "
                                       r"\(pid %d " % holder.pid):
        merge_results(str(tmp_path))
    holder.kill()
    holder.wait()
    holder = lock_holder(tmp_path / "results_shard1of2.jsonl")
    folder = run_folder.RunFolder(str(tmp_path), Shard(0, 2))
    with pytest.raises(RunError, match="results_shard1of2.jsonl is being written by another "
                                       r"process \(pid %d " % holder.pid):
        with folder.lock():
            folder.prepare(overwrite=True)
    holder.kill()
    holder.wait()
    assert sorted(name for name in os.listdir(tmp_path) if not name.endswith(".lock")) == before


def test_without_locks_on_the_file_system_the_lock_says_so(tmp_path, monkeypatch):
    def no_locks(*args):
        raise OSError(errno.ENOLCK, "No locks available")
    monkeypatch.setattr(files.fcntl, "lockf", no_locks)
    with files.FolderLock(str(tmp_path / "results.jsonl")) as lock:
        assert lock.problem.startswith("the file system of %s has no locks (No locks "
                                       "available)" % (tmp_path / ".results.jsonl.lock"))


@pytest.mark.parametrize("stop", [OSError(errno.ENOSPC, "No space left on device"),
                                  KeyboardInterrupt()])
def test_a_failed_write_leaves_neither_the_file_nor_a_temporary_one(tmp_path, stop):
    def write(stream):
        stream.write(b"half a heatmap")
        raise stop
    path = str(tmp_path / "x_c0.npy")
    with pytest.raises(OutputError if isinstance(stop, OSError) else KeyboardInterrupt) as caught:
        files.write_atomically(path, write)
    if isinstance(stop, OSError):
        assert str(caught.value) == "cannot write %s: No space left on device" % path
    assert os.listdir(tmp_path) == []
