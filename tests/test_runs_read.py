"""l2caf.runs.read, the one reader of run folders, on folders written here: configs that
agree or not, results lines of shards beside their merge, faithfulness scores of other
heatmaps or settings, failures."""
import os

import pytest

from l2caf.errors import RunError
from l2caf.runs.folder import RunFolder, Shard
from l2caf.runs.read import read_config, read_configs, read_failures, read_lines, read_scores
from tests.run_builders import (MADE_WITH, results_line, run_config, write_config,
                                    write_lines)


def test_read_configs_gives_the_made_with_sections(tmp_path):
    write_config(tmp_path, Shard(1, 2), limit=4, batch_size=2)
    write_config(tmp_path, Shard(0, 2), made_with={"image_size": 8})
    configs = read_configs(str(tmp_path))
    assert [path for path, _, _ in configs] == [str(tmp_path / "config_shard0of2.yaml"),
                                                str(tmp_path / "config_shard1of2.yaml")]
    assert [(config.limit, config.batch_size, made_with) for _, config, made_with in configs] \
        == [(0, 64, {"image_size": 8}), (4, 2, MADE_WITH)]
    assert read_config(str(tmp_path)) == configs[0][1]


@pytest.mark.parametrize("key, first, second", [
    ("network", "demo_densenet", "resnet_v2_50"), ("method", "l2caf", "gradcam"),
    ("caf_variant", "cls_specific", "cls_oblivious"),
])
def test_read_configs_refuses_shards_of_two_runs(tmp_path, key, first, second):
    write_config(tmp_path, **{key: first})
    write_config(tmp_path, Shard(0, 2), **{key: second})
    with pytest.raises(RunError) as caught:
        read_configs(str(tmp_path))
    assert str(caught.value) == "%s and %s disagree on %s (%r, %r): one results folder per " \
        "run" % (tmp_path / "config.yaml", tmp_path / "config_shard0of2.yaml", key, first, second)


@pytest.mark.parametrize("key, first, second, made_with", [
    ("labels", "a.txt", "b.txt", {"labels_sha256": "ef" * 32}),  # another label list
    ("layer", "conv1", "pool1", {"layer": "pool1"}),
])
def test_read_configs_refuses_shards_of_other_labels_or_layers(tmp_path, key, first, second,
                                                               made_with):
    write_config(tmp_path, **{key: first})
    write_config(tmp_path, Shard(0, 2), made_with=dict(MADE_WITH, **made_with), **{key: second})
    with pytest.raises(RunError) as caught:
        read_configs(str(tmp_path))
    assert str(caught.value).startswith("%s and %s disagree on " % (
        tmp_path / "config.yaml", tmp_path / "config_shard0of2.yaml"))
    assert str(caught.value).endswith(": one results folder per run")


@pytest.mark.parametrize("key, first, second", [("labels", "/home/me/labels.txt", "labels.txt"),
                                                ("layer", "", "conv1")])
def test_shards_the_visualiser_accepted_into_one_folder_are_read_as_one_run(tmp_path, key,
                                                                            first, second):
    write_config(tmp_path, Shard(0, 2), **{key: first})
    other = run_config(output_dir=str(tmp_path), **{key: second})
    shard = RunFolder(str(tmp_path), Shard(1, 2))
    shard.check(other, MADE_WITH)  # the same label list's contents, the same resolved layer
    shard.write_config(other, MADE_WITH)
    assert [config[key] for _, config, _ in read_configs(str(tmp_path))] == [first, second]


def test_read_configs_lets_shards_differ_in_other_keys(tmp_path):
    write_config(tmp_path, Shard(0, 2), max_iters=3, checkpoint="a.ckpt")
    write_config(tmp_path, Shard(1, 2), max_iters=5, checkpoint="b.ckpt")
    assert [config.max_iters for _, config, _ in read_configs(str(tmp_path))] == [3, 5]


def test_a_folder_without_a_config_is_not_a_run(tmp_path):
    (tmp_path / "results.jsonl").write_text("")
    (tmp_path / "settings.yml").write_text("max_iters: 3\n")
    with pytest.raises(RunError) as caught:
        read_configs(str(tmp_path))
    assert str(caught.value) == "%s holds no config*.yaml: not a folder a visualiser wrote" \
        % tmp_path


def test_read_lines_takes_each_image_and_class_once_from_the_merge_and_the_shards(tmp_path):
    merged = [results_line("a.jpg", 0, "heatmaps_000000.npz:a_c0"),
              results_line("b.jpg", 1, "heatmaps_000000.npz:b_c1")]
    write_lines(tmp_path / "results.jsonl", merged)
    write_lines(tmp_path / "results_shard0of2.jsonl", [
        results_line("./a.jpg", 0, "heatmaps_shard0of2_000000.npz:a_c0"),  # a again
        results_line("./a.jpg", 2, "heatmaps_shard0of2_000000.npz:a_c2"),
        results_line("c.jpg", None, "c_oblivious.npy")], torn='{"image": "d.jpg"')
    write_lines(tmp_path / "results_shard1of2.jsonl", [
        results_line("sub/../b.jpg", 1, "heatmaps_shard1of2_000000.npz:b_c1"),  # b again
        results_line("b.jpg", 3, "heatmaps_shard1of2_000000.npz:b_c3")])
    by_image = read_lines(str(tmp_path))
    assert list(by_image) == ["a.jpg", "b.jpg", "c.jpg"]
    assert [(line["image"], line["class_id"], line["heatmap"]) for line in by_image["a.jpg"]] == [
        ("a.jpg", 0, "heatmaps_000000.npz:a_c0"),  # the merged file's, read first
        ("./a.jpg", 2, "heatmaps_shard0of2_000000.npz:a_c2")]
    assert [(line["class_id"], line["heatmap"]) for line in by_image["b.jpg"]] == [
        (1, "heatmaps_000000.npz:b_c1"), (3, "heatmaps_shard1of2_000000.npz:b_c3")]
    assert [line["class_id"] for line in by_image["c.jpg"]] == [None]


@pytest.mark.parametrize("files", [(), ("results.jsonl",), ("results_shard0of2.jsonl",
                                                             "results.jsonl")])
def test_a_folder_without_results_lines_says_to_run_a_visualiser(tmp_path, files):
    for name in files:
        (tmp_path / name).write_text('{"image": "a.jpg", "cl')  # a torn line only
    with pytest.raises(RunError) as caught:
        read_lines(str(tmp_path))
    assert str(caught.value) == "%s holds no results (results*.jsonl with heatmap lines); run " \
        "a visualiser into it first" % tmp_path


def score_line(image, class_id, heatmap, steps=8, input_size=(8, 8), **scores):
    line = {"image": image, "class_id": class_id, "heatmap": heatmap, "deletion_auc": 0.25,
            "insertion_auc": 0.75, "average_drop": 0.5, "increase_in_confidence": 0.0,
            "steps": steps, "input_size": list(input_size), "curves": "faithfulness_curves_"
            "000000.npz:" + heatmap.split(":")[-1].replace(".npy", "")}
    line.update(scores)
    return line


@pytest.fixture
def run(tmp_path):
    """A run's results: a.jpg classes 0 and 1 (npz), b.jpg class-oblivious (npy)."""
    write_lines(tmp_path / "results.jsonl", [
        results_line("a.jpg", 0, "heatmaps_000000.npz:a_c0"),
        results_line("a.jpg", 1, "heatmaps_000000.npz:a_c1"),
        results_line("b.jpg", None, "b_oblivious.npy")])
    return str(tmp_path), read_lines(str(tmp_path))


def test_read_scores_takes_each_heatmaps_score_once_whatever_names_its_file(run):
    folder, by_image = run
    write_lines(os.path.join(folder, "faithfulness.jsonl"), [
        score_line("a.jpg", 0, "heatmaps_000000.npz:a_c0", deletion_auc=0.1)])
    write_lines(os.path.join(folder, "faithfulness_shard0of2.jsonl"), [
        score_line("./a.jpg", 0, "/old/place/heatmaps_000000.npz:a_c0", deletion_auc=0.9),
        score_line("a.jpg", 1, "/old/place/heatmaps_000000.npz:a_c1")])
    write_lines(os.path.join(folder, "faithfulness_shard1of2.jsonl"), [
        score_line("b.jpg", None, "b_oblivious.npy")], torn='{"image": "a.jpg", "cl')
    scores, settings = read_scores(folder, by_image)
    assert list(scores) == [("a.jpg", 0), ("a.jpg", 1), ("b.jpg", None)]
    assert scores["a.jpg", 0]["deletion_auc"] == 0.1  # the merged file's, read first
    assert settings == {"steps": 8, "input_size": [8, 8]}


def test_read_scores_of_an_unscored_run_are_none(run):
    folder, by_image = run
    assert read_scores(folder, by_image) == ({}, None)


@pytest.mark.parametrize("image, class_id, heatmap", [
    ("a.jpg", 1, "heatmaps_000003.npz:a_c1"),  # the heatmap was made again since
    ("a.jpg", 1, "heatmaps_000000.npz:a_c0"),
    ("c.jpg", 0, "heatmaps_000000.npz:c_c0"),  # an image the results do not hold
])
def test_scores_of_other_heatmaps_than_the_results_name_are_refused(run, image, class_id,
                                                                    heatmap):
    folder, by_image = run
    path = os.path.join(folder, "faithfulness_shard1of2.jsonl")
    write_lines(path, [score_line("a.jpg", 0, "heatmaps_000000.npz:a_c0"),
                       score_line(image, class_id, heatmap)])
    with pytest.raises(RunError) as caught:
        read_scores(folder, by_image)
    assert str(caught.value) == (
        "%s scores heatmap %s, which the results of %s do not hold (for %s, class %s); the "
        "scores are of other results (a heatmap made again since): rerun "
        "scripts/evaluate_faithfulness.py --results %s to score it again (each shard, then "
        "--merge)" % (path, heatmap, folder, image, class_id, folder))


def test_scores_of_mixed_settings_are_refused(run):
    folder, by_image = run
    write_lines(os.path.join(folder, "faithfulness_shard0of2.jsonl"), [
        score_line("a.jpg", 0, "heatmaps_000000.npz:a_c0")])
    write_lines(os.path.join(folder, "faithfulness_shard1of2.jsonl"), [
        score_line("b.jpg", None, "b_oblivious.npy", steps=4)])
    with pytest.raises(RunError) as caught:
        read_scores(folder, by_image)
    assert str(caught.value) == (
        '%s holds faithfulness scores of different settings ({"steps": 8, "input_size": [8, '
        '8]} and {"steps": 4, "input_size": [8, 8]}); run scripts/evaluate_faithfulness.py '
        '--overwrite --results %s' % (folder, folder))


def test_read_failures_gives_one_line_per_image_that_has_no_results(run):
    folder, by_image = run
    failed = {"image": "c.jpg", "reason": "c.jpg: no such file"}
    write_lines(os.path.join(folder, "failures.jsonl"), [failed])
    write_lines(os.path.join(folder, "failures_shard0of2.jsonl"), [
        dict(failed, reason="again"),  # the merged file's line, read first, stays
        {"image": "./a.jpg", "reason": "a.jpg: unreadable once, done since"},
        {"image": "a.jpg", "class_id": 2, "reason": "class 2: the loss became nan"},
        {"image": "d.png", "class_id": 1, "reason": "d.png, class 1: the loss became nan"}])
    assert read_failures(folder, by_image) == [
        failed, {"image": "d.png", "class_id": 1, "reason": "d.png, class 1: the loss became nan"}]
    assert read_failures(str(os.path.join(folder, "absent")), by_image) == []
