"""Run folders without TensorFlow: heatmap references, shards from a Slurm job array, file
names with ':' through the evaluation, and an evaluation that never imports TensorFlow."""
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

from l2caf import run_folder
from l2caf.errors import ConfigError
from l2caf.run_folder import Shard, load_heatmap, parse_shard
from tests.helpers import REPO_ROOT


def test_heatmap_references_with_colons_and_moved_folders(tmp_path):
    chunks = run_folder.NpzChunks(str(tmp_path), Shard(0, 1))
    heatmap = np.arange(6, dtype=np.float32).reshape(2, 3)
    [reference] = chunks.write({"a:b.npz:c_c1": heatmap}).values()
    assert reference == str(tmp_path / "heatmaps_000000.npz") + ":a:b.npz:c_c1"
    np.testing.assert_array_equal(load_heatmap(reference), heatmap)
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.move(str(tmp_path / "heatmaps_000000.npz"), str(moved))
    np.testing.assert_array_equal(load_heatmap(reference, str(moved)), heatmap)
    [npy] = run_folder.NpyFiles(str(tmp_path)).write({"x:y_c2": heatmap}).values()
    np.testing.assert_array_equal(load_heatmap(npy), heatmap)
    # Numbered on from the highest file in the folder: no file a line names is overwritten.
    (tmp_path / "heatmaps_000007.npz").write_bytes(b"")
    assert run_folder.NpzChunks(str(tmp_path), Shard(0, 1)).next_number == 8


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


def blocked_tensorflow(folder):
    """A folder to put first on PYTHONPATH: in it, `import tensorflow` fails."""
    package = folder / "tensorflow"
    package.mkdir()
    (package / "__init__.py").write_text("raise ImportError('tensorflow is blocked here')\n")
    return str(folder)


def run(*argv, env=None):
    return subprocess.run(list(argv), capture_output=True, text=True, cwd=REPO_ROOT,
                          env=dict(os.environ, **(env or {})))


@pytest.mark.slow
def test_a_slurm_array_sweep_with_colons_in_names_then_merge_and_evaluation_without_tensorflow(
        tmp_path):
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

    no_tensorflow = {"PYTHONPATH": blocked_tensorflow(tmp_path)}
    assert run(sys.executable, "-c", "import tensorflow", env=no_tensorflow).returncode == 1
    result = run("bash", os.path.join("scripts", "cluster", "slurm_merge_evaluate.sbatch"),
                 str(output), str(annotations), "--thresholds", "0.2,0.5", env=no_tensorflow)
    assert result.returncode == 0, result.stderr
    assert "0 failed, 0 missing, 0 incomplete" in result.stdout
    assert "| %s | l2caf | demo_densenet | cam | 0.2 | 4 |" % output in result.stdout
    records = run_folder.read_results(str(output / "results.jsonl"))
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
    assert container["args"][0] == run_folder.read_run_config(
        os.path.join(REPO_ROOT, config)).output_dir
