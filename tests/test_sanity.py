"""The sanity-check job (l2caf.runs.sanity) and its command (scripts/sanity_check.py): on the
demo model the random maps fail the check and Grad-CAM's pass; a line per heatmap with a
value per block; resumable; other settings refused; shards merged."""
import os
import shutil

import numpy as np
import pytest

from l2caf.errors import RunError
from l2caf.files import sha256
from l2caf.runs import sanity
from l2caf.runs.folder import Shard
from l2caf.runs.lines import read_lines_file
from l2caf.synthetic import make_dataset
from tests.conftest import demo_sweep_into
from tests.helpers import DEMO_CHECKPOINT, HELD_OUT_SEED, assert_one_error_line
from tests.run_builders import LockHolder, results_line, write_config, write_lines

DEMO_BLOCKS = ["Logits", "final_block", "dense_block2", "transition_block1", "dense_block1",
               "conv1"]
QUIET = sanity.SanityOptions(progress=False, workers=1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Grad-CAM and random runs of the demo model on 4 held-out synthetic images, and their
    sanity checks (seed 0), once. Read only: copy a folder before changing it."""
    folder = tmp_path_factory.mktemp("sanity_runs")
    data = str(folder / "data")
    make_dataset(data, 4, image_size=128, seed=HELD_OUT_SEED, progress=False)
    made = {method: demo_sweep_into(data, str(folder / method), "--method", method)
            for method in ("gradcam", "random")}
    unchecked = str(folder / "gradcam_unchecked")
    shutil.copytree(made["gradcam"], unchecked)
    checkpoint_before = sha256(DEMO_CHECKPOINT + ".data-00000-of-00001")
    summaries = {method: sanity.FolderSanity(path, QUIET).run() for method, path in made.items()}
    assert sha256(DEMO_CHECKPOINT + ".data-00000-of-00001") == checkpoint_before
    return dict(made, summaries=summaries, gradcam_unchecked=unchecked)


def lines_of(folder, name="sanity.jsonl"):
    return read_lines_file(os.path.join(folder, name), "sanity")


def mean(values):
    return float(np.mean([value for value in values if value is not None]))


@pytest.mark.slow
def test_the_random_maps_fail_and_grad_cams_pass(runs):
    random, gradcam = lines_of(runs["random"]), lines_of(runs["gradcam"])
    # The random maps do not depend on the network: the same maps whatever is random.
    for line in random:
        for randomisation in (sanity.CASCADING, sanity.INDEPENDENT):
            for measure in sanity.MEASURES:
                assert line[sanity.field(randomisation, measure)] == \
                    pytest.approx([1.0] * len(DEMO_BLOCKS))
    # Grad-CAM's maps change once the network is random.
    fully_random = mean([line["cascading_spearman_abs"][-1] for line in gradcam])
    assert fully_random < 0.5
    assert mean([line["cascading_ssim"][-1] for line in gradcam]) < 0.9
    assert mean([sanity.sanity_values(line)["sanity_spearman_randomized"]
                 for line in random]) > 0.99


@pytest.mark.slow
def test_every_heatmap_gets_a_line_with_a_value_per_block_and_its_cascading_maps(runs):
    results = read_lines_file(os.path.join(runs["gradcam"], "results.jsonl"), "results")
    lines = lines_of(runs["gradcam"])
    assert runs["summaries"]["gradcam"].checked == len(results) == len(lines)
    assert [(line["image"], line["class_id"], line["heatmap"]) for line in lines] == \
        [(line["image"], line["class_id"], line["heatmap"]) for line in results]
    found = sanity.read_sanity(runs["gradcam"])
    assert list(found.values()) == lines
    for line in lines:
        assert line["blocks"] == DEMO_BLOCKS and line["seed"] == 0 and line["method"] == "gradcam"
        for randomisation in (sanity.CASCADING, sanity.INDEPENDENT):
            for measure in sanity.MEASURES:
                assert len(line[sanity.field(randomisation, measure)]) == len(DEMO_BLOCKS)
        # The cascade's first step and the first independent step are one network.
        assert line["cascading_ssim"][0] == line["independent_ssim"][0]
        other = line["random_logit_class_id"]
        assert other is not None and other != line["class_id"] and 0 <= other < 6
        maps = sanity.read_cascading_maps(runs["gradcam"], line)
        assert maps.shape == (len(DEMO_BLOCKS), 21, 21)


@pytest.mark.slow
def test_an_interrupted_check_keeps_its_chunks_and_a_rerun_makes_the_same_lines(
        runs, tmp_path, monkeypatch):
    folder = str(tmp_path / "gradcam")
    shutil.copytree(runs["gradcam_unchecked"], folder)
    monkeypatch.setattr(sanity, "IMAGES_PER_CHUNK", 1)
    real_check_chunk, calls = sanity._Checking.check_chunk, []

    def interrupted(self, loaded, progress):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_check_chunk(self, loaded, progress)
    monkeypatch.setattr(sanity._Checking, "check_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sanity.FolderSanity(folder, QUIET).run()
    first = lines_of(folder)
    assert 0 < len(first) < len(lines_of(runs["gradcam"]))
    monkeypatch.setattr(sanity._Checking, "check_chunk", real_check_chunk)
    summary = sanity.FolderSanity(folder, QUIET).run()
    assert summary.skipped == len(first)
    assert lines_of(folder)[:len(first)] == first
    whole = lines_of(runs["gradcam"])
    for resumed, uninterrupted in zip(lines_of(folder), whole):
        for key in uninterrupted:
            if key != "maps":  # (named by the chunk that wrote them)
                assert resumed[key] == pytest.approx(uninterrupted[key]), key
    assert len(lines_of(folder)) == len(whole)


def checked_folder(folder, seed=0, blocks=("Logits", "conv1"), heatmaps=("a_c1.npy",)):
    """A run folder (no network) whose results name `heatmaps` and whose sanity.jsonl holds a
    line of `seed` and `blocks` for the first."""
    write_config(folder)
    write_lines(folder / "results.jsonl", [results_line("img/%s.png" % name[0], 1, name)
                                           for name in heatmaps])
    write_lines(folder / "sanity.jsonl", [sanity_line("img/a.png", heatmaps[0], seed, blocks)])
    return str(folder)


def sanity_line(image, heatmap, seed=0, blocks=("Logits", "conv1"), **extra):
    """A sanity line as the job writes it."""
    line = {"image": image, "class_id": 1, "heatmap": heatmap, "method": "l2caf", "seed": seed,
            "blocks": list(blocks), "random_logit_class_id": 0,
            "random_logit_spearman_abs": 0.1, "random_logit_spearman": 0.1,
            "random_logit_ssim": 0.2, "maps": "sanity_maps_000000.npz:a_c1"}
    for randomisation in (sanity.CASCADING, sanity.INDEPENDENT):
        for measure in sanity.MEASURES:
            line[sanity.field(randomisation, measure)] = [0.5, None][:len(blocks)]
    line.update(extra)
    return line


def test_checks_of_another_seed_are_refused_before_any_work(tmp_path):
    folder = checked_folder(tmp_path)
    with pytest.raises(RunError, match=r"sanity.jsonl holds sanity checks made with other "
                                       r"settings: seed \(0 there, 1 now\);.*--overwrite"):
        sanity.FolderSanity(folder, sanity.SanityOptions(seed=1))
    sanity.FolderSanity(folder, sanity.SanityOptions(seed=1, overwrite=True))  # accepted
    sanity.FolderSanity(folder, sanity.SanityOptions(seed=0))


def test_the_command_refuses_another_seed_with_one_line(tmp_path, capsys):
    from l2caf.cli.sanity_check import main
    folder = checked_folder(tmp_path)
    assert main(["--results", folder, "--seed", "2"]) == 2
    assert_one_error_line(capsys.readouterr().err, "seed (0 there, 2 now)")
    assert main(["--results", str(tmp_path / "nowhere")]) == 2
    assert_one_error_line(capsys.readouterr().err, "no such results folder")
    assert main(["--results", folder, "--limit", "-1"]) == 2
    assert_one_error_line(capsys.readouterr().err, "--limit must be 0 or more, got -1")


def test_a_line_that_is_not_a_sanity_line_is_refused_naming_the_file_and_field(tmp_path):
    folder = checked_folder(tmp_path)
    write_lines(tmp_path / "sanity.jsonl", [
        sanity_line("img/a.png", "a_c1.npy", cascading_ssim=[1.5, 0.2])])
    with pytest.raises(RunError, match=r"sanity.jsonl, line 1: cascading_ssim is not a list "
                                       r"of similarities"):
        sanity.read_sanity(folder)


def test_lines_of_a_heatmap_made_again_are_refused_by_the_reader_and_redone_by_the_job(
        tmp_path):
    folder = checked_folder(tmp_path)
    write_lines(tmp_path / "results.jsonl", [results_line("img/a.png", 1, "a_c1_new.npy")])
    with pytest.raises(RunError, match="checks heatmap a_c1.npy, which the results of"):
        sanity.read_sanity(folder)
    job = sanity.FolderSanity(folder, QUIET)
    assert not job.usable(lines_of(folder)[0])


def test_one_writer_at_a_time(tmp_path):
    folder = checked_folder(tmp_path)
    with LockHolder(os.path.join(folder, "sanity.jsonl")):
        with pytest.raises(RunError, match="sanity.jsonl is being written by another process"):
            sanity.FolderSanity(folder, QUIET).run()


def test_a_shard_takes_every_count_th_image_of_the_first_limit(tmp_path):
    folder = checked_folder(tmp_path, heatmaps=("a_c1.npy", "b_c1.npy", "c_c1.npy", "d_c1.npy"))
    job = sanity.FolderSanity(folder, sanity.SanityOptions(limit=3, shard=Shard(1, 2)))
    assert list(job.lines) == ["img/b.png"]
    assert job.sanity_path.endswith("sanity_shard1of2.jsonl")


def test_the_shards_lines_are_merged_and_the_unchecked_heatmaps_reported(tmp_path, capsys):
    from l2caf.cli.sanity_check import main
    folder = checked_folder(tmp_path, heatmaps=("a_c1.npy", "b_c1.npy", "c_c1.npy"))
    os.remove(os.path.join(folder, "sanity.jsonl"))
    write_lines(tmp_path / "sanity_shard0of2.jsonl", [sanity_line("img/a.png", "a_c1.npy")])
    write_lines(tmp_path / "sanity_shard1of2.jsonl", [sanity_line("img/b.png", "b_c1.npy")])
    assert main(["--merge", folder]) == 1
    out = capsys.readouterr().out
    assert "2 lines (0 duplicates dropped) for the 3 heatmaps of the results; 1 unchecked" in out
    assert "rerun shard(s) 0" in out
    assert [line["image"] for line in lines_of(folder)] == ["img/a.png", "img/b.png"]


def test_sanity_values_are_the_last_cascading_step_and_the_random_logit():
    line = sanity_line("a.png", "a_c1.npy", cascading_spearman_abs=[0.9, 0.3],
                       random_logit_spearman_abs=0.2)
    assert sanity.sanity_values(line) == {"sanity_spearman_randomized": 0.3,
                                          "sanity_spearman_random_logit": 0.2}


def test_help_explains_every_option(capsys):
    from l2caf.cli.sanity_check import main
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for option in ("--results", "--merge", "--seed", "--limit", "--shard", "--gpu", "--workers",
                   "--overwrite", "--trust_model", "--progress"):
        assert option in out


def test_the_job_module_imports_no_tensorflow(blocked_tensorflow):
    import subprocess
    import sys
    environment = dict(os.environ, PYTHONPATH=blocked_tensorflow + os.pathsep +
                       os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    completed = subprocess.run([sys.executable, "-c", "import l2caf.runs.sanity, "
                                "l2caf.evaluation.similarity"], env=environment,
                               capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr


@pytest.mark.slow
def test_a_keras_run_is_checked_on_its_layers_and_its_model_file_is_untouched(tmp_path):
    from l2caf.cli.sanity_check import main as check
    from l2caf.cli.visualize_fast import main as visualize
    from tests.helpers import DEMO_DIR, DEMO_LABELS, REPO_ROOT
    model_file = os.path.join(DEMO_DIR, "demo_keras.keras")
    before = sha256(model_file)
    data = str(tmp_path / "data")
    make_dataset(data, 2, image_size=96, seed=HELD_OUT_SEED, progress=False)
    folder = str(tmp_path / "keras_gradcam")
    assert visualize(["--config", os.path.join(REPO_ROOT, "configs", "demo_keras.yaml"),
                      "--checkpoint", model_file, "--labels", DEMO_LABELS,
                      "--images", os.path.join(data, "images"),
                      "--annotations", os.path.join(data, "annotations"),
                      "--output_dir", folder, "--method", "gradcam", "--progress", "false"]) == 0
    assert check(["--results", folder, "--progress", "false"]) == 0
    lines = lines_of(folder)
    assert len(lines) == len(read_lines_file(os.path.join(folder, "results.jsonl"), "results"))
    # Keras layers with weights, from the output down.
    assert lines[0]["blocks"] == ["predictions", "last_conv", "bn3", "conv3", "bn2", "conv2",
                                  "bn1", "conv1"]
    assert all(len(line["cascading_ssim"]) == 8 for line in lines)
    assert sha256(model_file) == before
