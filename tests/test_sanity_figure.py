"""l2caf.report.sanity: the sanity checks' figure (PNG and PDF) and its numbers, from run
folders written without a network."""
import os

import numpy as np
import pytest

from l2caf.errors import RunError
from l2caf.report import sanity as figure
from l2caf.runs import sanity
from l2caf.runs.folder import NpzChunks, Shard
from tests.run_builders import results_line, write_config, write_lines

BLOCKS = ["Logits", "block2", "conv1"]
HEATMAP_SIZE = (4, 4)


def checked_run(folder, method, values, blocks=BLOCKS, images=("a", "b", "c")):
    """A run folder of `method` whose heatmaps (one per image, class 1) have sanity lines with
    every similarity of a heatmap's line `values[image]` (or, per block, values[image]
    times the block's place), and their cascading maps."""
    os.makedirs(str(folder))
    write_config(folder, method=method, made_with={"image_size": 8, "layer": "conv1",
                                                   "heatmap_size": list(HEATMAP_SIZE)})
    rng = np.random.default_rng(0)
    results, lines = [], []
    maps = NpzChunks(str(folder), Shard(0, 1), "sanity_maps").write(
        {name: rng.uniform(size=(len(blocks),) + HEATMAP_SIZE) for name in images})
    for name in images:
        heatmap = "%s_c1.npy" % name
        np.save(os.path.join(str(folder), heatmap), rng.uniform(size=HEATMAP_SIZE))
        results.append(results_line("img/%s.png" % name, 1, heatmap, method=method))
        line = {"image": "img/%s.png" % name, "class_id": 1, "heatmap": heatmap,
                "method": method, "seed": 0, "blocks": list(blocks),
                "random_logit_class_id": 0, "maps": maps[name]}
        for measure in sanity.MEASURES:
            for randomisation in (sanity.CASCADING, sanity.INDEPENDENT):
                line[sanity.field(randomisation, measure)] = [values[name]] * len(blocks)
            line[sanity.field(sanity.RANDOM_LOGIT, measure)] = values[name] / 2
        lines.append(line)
    write_lines(folder / "results.jsonl", results)
    write_lines(folder / "sanity.jsonl", lines)
    return str(folder)


def test_the_figure_is_written_as_png_and_pdf(tmp_path):
    runs = [checked_run(tmp_path / "gradcam", "gradcam", {"a": 0.1, "b": 0.2, "c": 0.3}),
            checked_run(tmp_path / "random", "random", {"a": 1.0, "b": 1.0, "c": 1.0})]
    prefix = str(tmp_path / "out" / "demo")
    paths = figure.write_sanity_figure(prefix, runs)
    assert paths == [prefix + "_sanity.png", prefix + "_sanity.pdf"]
    with open(paths[0], "rb") as stream:
        assert stream.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(paths[1], "rb") as stream:
        assert stream.read(5) == b"%PDF-"


def test_the_numbers_are_the_means_of_the_last_step_and_of_the_random_logit(tmp_path):
    folder = checked_run(tmp_path / "gradcam", "gradcam", {"a": 0.1, "b": 0.2, "c": 0.6})
    values = figure.read_values([folder])[folder]
    assert values["cascading_spearman_abs"] == pytest.approx(0.3)
    assert values["random_logit_ssim"] == pytest.approx(0.15)


def test_the_mean_leaves_out_undefined_values_and_its_interval_resamples_images():
    mean, interval = figure.mean_with_interval([0.2, None, 0.4, 0.9], ["a", "a", "b", "c"])
    assert mean == pytest.approx(0.5)
    assert interval[0] <= mean <= interval[1]
    assert interval[0] >= 0.2 and interval[1] <= 0.9
    # An image's heatmaps are resampled together: with one image there is no interval.
    assert figure.mean_with_interval([0.1, 0.3], ["a", "a"]) == (pytest.approx(0.2), None)
    assert figure.mean_with_interval([None], ["a"]) == (None, None)


def test_the_strip_shows_the_first_image_every_run_checked(tmp_path):
    first = checked_run(tmp_path / "one", "gradcam", {"a": 0.1, "b": 0.2, "c": 0.3})
    second = checked_run(tmp_path / "two", "l2caf", {"b": 0.1, "c": 0.2}, images=("b", "c"))
    runs = figure.sanity_runs([first, second])
    assert [run.label for run in runs] == ["Grad-CAM", "L2-CAF"]
    assert figure.strip_image(runs) == ("img/b.png", 1)


def test_runs_of_other_networks_are_refused_and_runs_without_checks_left_out(tmp_path):
    first = checked_run(tmp_path / "one", "gradcam", {"a": 0.1, "b": 0.2, "c": 0.3})
    other = checked_run(tmp_path / "two", "gradcam", {"a": 0.1, "b": 0.2, "c": 0.3},
                        blocks=["Logits", "conv1"])
    with pytest.raises(RunError, match="different networks"):
        figure.sanity_runs([first, other])
    os.remove(os.path.join(other, "sanity.jsonl"))
    assert [run.folder for run in figure.sanity_runs([first, other])] == [first]
    assert figure.write_sanity_figure(str(tmp_path / "none"), [other]) == []
