"""The faithfulness job (l2caf.runs.faithfulness) on run folders written here, with a small
numpy classifier in place of the run's network (l2caf.models.sources.model_source replaced):
the lines and curves it writes are the library's scores of the folder's heatmaps and images;
a rerun skips them, scores stale ones again, refuses other settings and another checkpoint;
--overwrite, unreadable images, options, shards."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from l2caf import images as image_io
from l2caf.errors import ConfigError, RunError
from l2caf.evaluation import faithfulness
from l2caf.files import read_json_lines
from l2caf.runs.faithfulness import FolderScores, ScoringOptions, curves_key, noise_seed
from l2caf.runs.folder import NpyFiles, NpzChunks, Shard, load_heatmap
from l2caf.runs.merge import merge_scores
from tests.run_builders import (CHECKPOINT_SHA256, MADE_WITH, REPO_ROOT, names, results_line,
                                    write_config, write_lines)

SIZE = 8  # the fake network's input: 8 x 8 pixels, RISE's 8 steps
NUM_CLASSES = 3
SCORE_FIELDS = ["image", "class_id", "scored_class_id", "heatmap", "method", "deletion_auc",
                "insertion_auc", "average_drop", "increase_in_confidence", "average_gain",
                "road_morf_auc", "road_lerf_auc", "probability", "masked_probability", "steps",
                "input_size", "score", "heatmap_resize", "ranking", "deletion_substrate",
                "insertion_substrate", "confidence_mask", "road_fractions", "road_noise",
                "road_imputation", "curves", "road_curves"]
SETTINGS_FIELDS = slice(14, 25)


class FakeModel(object):
    """A linear softmax classifier of 8 x 8 RGB images: what Faithfulness and the job use of
    a model."""

    preprocessing = "none"
    input_shape = (SIZE, SIZE, 3)

    def __init__(self):
        rng = np.random.default_rng(0)
        self.weights = rng.normal(0.0, 1.0, (SIZE * SIZE * 3, NUM_CLASSES)) / (SIZE * 255.0)
        self.closed = 0

    def prepare(self, pictures):
        return np.stack([cv2.resize(np.asarray(picture, np.float32), (SIZE, SIZE),
                                    interpolation=cv2.INTER_AREA) for picture in pictures])

    def class_output(self, class_id):
        return int(class_id)

    def class_probabilities(self, batch):
        # Row by row: the same numbers whatever the batch.
        logits = np.array([np.asarray(row, np.float64).ravel() @ self.weights for row in batch])
        exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exponentials / exponentials.sum(axis=1, keepdims=True)

    def close(self):
        self.closed += 1


class FakeSource(object):
    """What l2caf.models.sources.model_source gives: the checkpoint's fingerprint and the
    model."""

    def __init__(self, fingerprint=CHECKPOINT_SHA256):
        self.fingerprint = fingerprint
        self.configs, self.models = [], []

    def model(self, config):
        self.models.append(FakeModel())
        return self.models[-1]


@pytest.fixture
def source(monkeypatch):
    """The fake network every scoring in the test builds; source.configs: the configs it was
    asked for."""
    fake = FakeSource()

    def model_source(config):
        fake.configs.append(config)
        return fake
    monkeypatch.setattr("l2caf.models.sources.model_source", model_source)
    return fake


@pytest.fixture
def run(tmp_path):
    """A run folder: a.png classes 0 and 2, b.png class 1 (npz), c.png class 0 (npy), d.png
    class 1 (another npz); images of several sizes."""
    folder, pictures = tmp_path / "run", tmp_path / "images"
    pictures.mkdir()
    rng = np.random.default_rng(1)
    paths = {}
    for stem, shape in (("a", (12, 10, 3)), ("b", (8, 8, 3)), ("c", (20, 16, 3)),
                        ("d", (9, 13, 3))):
        paths[stem] = str(pictures / (stem + ".png"))
        cv2.imwrite(paths[stem], rng.integers(0, 256, shape, dtype=np.uint8))
    write_config(folder, checkpoint="weights/model.ckpt", method="gradcam")
    maps = {key: rng.random((4, 5)).astype(np.float32) for key in ("a_c0", "a_c2", "b_c1")}
    references = NpzChunks(str(folder), Shard(0, 1)).write(maps)
    references.update(NpyFiles(str(folder)).write({"c_c0": rng.random((3, 3))}))
    references.update(NpzChunks(str(folder), Shard(0, 1)).write({"d_c1": rng.random((6, 6))}))
    lines = [results_line(paths[key[0]], int(key[-1]), references[key], predictions=(2, 0, 1))
             for key in ("a_c0", "a_c2", "b_c1", "c_c0", "d_c1")]
    write_lines(folder / "results.jsonl", lines)
    return {"folder": str(folder), "lines": lines, "paths": paths, "pictures": pictures}


def score(folder, **options):
    """FolderScores(folder, options).run(), without a progress bar, one worker thread."""
    options = dict({"progress": False, "workers": 1}, **options)
    return FolderScores(folder, ScoringOptions(**options)).run()


def expected_scores(folder, lines, steps=SIZE):
    """The library's Scores of the lines' heatmaps on their images, on the fake network."""
    model = FakeModel()
    inputs = np.stack([model.prepare([image_io.read_image(line["image"])])[0]
                       for line in lines])
    return faithfulness.Faithfulness(model, steps)(
        inputs, [load_heatmap(line["heatmap"], folder) for line in lines],
        [line["class_id"] if line["class_id"] is not None else line["predictions"][0]["class_id"]
         for line in lines], noise_seeds=[noise_seed(line) for line in lines])


def assert_lines_score(records, lines, folder, steps=SIZE):
    """records are the job's lines of the results lines `lines`, with the library's scores."""
    assert [(record["image"], record["class_id"], record["heatmap"]) for record in records] == \
        [(line["image"], line["class_id"], line["heatmap"]) for line in lines]
    for record, expected in zip(records, expected_scores(folder, lines, steps)):
        assert list(record) == SCORE_FIELDS
        assert record["scored_class_id"] == expected.class_id
        for key in ("deletion_auc", "insertion_auc", "average_drop", "increase_in_confidence",
                    "average_gain", "road_morf_auc", "road_lerf_auc", "probability",
                    "masked_probability"):
            assert record[key] == pytest.approx(getattr(expected, key), abs=1e-12), key
        curves = load_heatmap(record["curves"], folder)
        assert curves.dtype == np.float32 and curves.shape == (2, steps + 1)
        np.testing.assert_allclose(curves, [expected.deletion, expected.insertion], atol=1e-7)
        road = load_heatmap(record["road_curves"], folder)
        assert record["road_curves"] == record["curves"] + "_road"
        assert road.dtype == np.float32 and road.shape == (2, 10)
        np.testing.assert_allclose(road, [expected.road_morf, expected.road_lerf], atol=1e-7)
        assert {key: record[key] for key in SCORE_FIELDS[SETTINGS_FIELDS]} == \
            faithfulness.protocol_settings(steps, (SIZE, SIZE))


def test_every_heatmap_gets_a_line_of_its_scores_and_its_curves(run, source):
    folder = run["folder"]
    summary = score(folder, gpu=-1)
    assert (summary.results_dir, summary.scores_path, summary.scored, summary.skipped,
            summary.failures) == (folder, os.path.join(folder, "faithfulness.jsonl"), 5, 0, [])
    records = read_json_lines(summary.scores_path)
    assert_lines_score(records, run["lines"], folder)
    assert [record["curves"] for record in records] == [
        "faithfulness_curves_000000.npz:" + key for key in ("a_c0", "a_c2", "b_c1", "c_c0",
                                                            "d_c1")]
    assert {record["method"] for record in records} == {"gradcam"}
    assert [config.gpu for config in source.configs] == [-1]  # on this machine's device
    assert [model.closed for model in source.models] == [1]
    assert names(folder) == [
        "c_c0.npy", "config.yaml", "failures_faithfulness.jsonl",
        "faithfulness.jsonl", "faithfulness_curves_000000.npz", "heatmaps_000000.npz",
        "heatmaps_000001.npz", "results.jsonl"]
    assert read_json_lines(os.path.join(folder, "failures_faithfulness.jsonl")) == []


def test_ctrl_c_keeps_every_heatmap_scored_before_it_and_a_rerun_scores_the_rest(
        run, source, monkeypatch):
    """The five heatmaps are one chunk. With 4 rows a forward pass, the shared rows (the
    zero input, each image and its blurred copy: 9) and a heatmap's 33 rows (7 inner points
    of each curve, 9 ROAD images of each curve, the masked image) put the ends of the first
    two heatmaps in passes 11 and 19: Ctrl-C at the 20th pass keeps those two, and the rerun
    scores the other three."""
    folder, passes = run["folder"], []
    scores_of = FakeModel.class_probabilities

    def interrupted(model, batch):
        passes.append(len(batch))
        if len(passes) == 20:
            raise KeyboardInterrupt
        return scores_of(model, batch)
    monkeypatch.setattr(FakeModel, "class_probabilities", interrupted)
    with pytest.raises(KeyboardInterrupt):
        score(folder, batch_size=4)
    path = os.path.join(folder, "faithfulness.jsonl")
    assert_lines_score(read_json_lines(path), run["lines"][:2], folder)
    monkeypatch.setattr(FakeModel, "class_probabilities", scores_of)
    summary = score(folder, batch_size=4)
    assert (summary.scored, summary.skipped) == (3, 2)
    assert_lines_score(read_json_lines(path), run["lines"], folder)


def test_scores_are_written_as_they_come_when_a_chunk_takes_long(run, source, monkeypatch):
    """With the write interval at 0, every heatmap is written (curves file and line) as soon
    as it is scored: a kill -9 would lose none."""
    monkeypatch.setattr("l2caf.runs.faithfulness.WRITE_EVERY_SECONDS", 0.0)
    folder = run["folder"]
    score(folder, batch_size=4)
    records = read_json_lines(os.path.join(folder, "faithfulness.jsonl"))
    assert_lines_score(records, run["lines"], folder)
    assert [record["curves"].split(":")[0] for record in records] == [
        "faithfulness_curves_%06d.npz" % number for number in range(5)]


def test_a_rerun_skips_the_heatmaps_scored_and_a_torn_line(run, source):
    folder = run["folder"]
    score(folder)
    path = os.path.join(folder, "faithfulness.jsonl")
    scored = open(path).read()
    with open(path, "a") as stream:
        stream.write('{"image": "%s", "class_id": 1, "deletion_auc": 0.' % run["paths"]["d"])
    summary = score(folder)
    assert (summary.scored, summary.skipped, summary.failures) == (0, 5, [])
    assert open(path).read() == scored
    assert len(source.models) == 1  # no network built for nothing to score
    assert not os.path.exists(os.path.join(folder, "faithfulness_curves_000001.npz"))


def test_a_heatmap_made_again_and_unreadable_curves_are_scored_again(run, source):
    folder = run["folder"]
    score(folder)
    lines = [dict(line) for line in run["lines"]]
    remade = NpzChunks(folder, Shard(0, 1)).write({"b_c1": np.eye(5, dtype=np.float32)})
    lines[2]["heatmap"] = remade["b_c1"]
    assert remade["b_c1"] == "heatmaps_000002.npz:b_c1"
    write_lines(os.path.join(folder, "results.jsonl"), lines)
    summary = score(folder)
    assert (summary.scored, summary.skipped) == (1, 4)
    records = read_json_lines(summary.scores_path)
    assert_lines_score(records, lines[:2] + lines[3:] + lines[2:3], folder)
    assert records[-1]["curves"] == "faithfulness_curves_000001.npz:b_c1"

    # The curves file of the first four is cut short: they are scored again.
    curves = os.path.join(folder, "faithfulness_curves_000000.npz")
    data = open(curves, "rb").read()
    with open(curves, "wb") as stream:
        stream.write(data[:len(data) // 2])
    summary = score(folder)
    assert (summary.scored, summary.skipped) == (4, 1)
    records = read_json_lines(summary.scores_path)
    assert [record["curves"].split(":")[0] for record in records] == [
        "faithfulness_curves_000001.npz"] + ["faithfulness_curves_000002.npz"] * 4


def test_other_settings_are_refused_naming_the_keys_and_overwrite_deletes_every_shards_scores(
        run, source):
    folder = run["folder"]
    score(folder, shard=Shard(0, 2))
    score(folder, shard=Shard(1, 2))
    with pytest.raises(RunError) as caught:
        FolderScores(folder, ScoringOptions(steps=4, shard=Shard(1, 2)))
    assert str(caught.value) == (
        "%s holds scores made with other settings: steps (8 there, 4 now); give the same "
        "settings, or --overwrite to delete the folder's scores first"
        % os.path.join(folder, "faithfulness_shard0of2.jsonl"))
    write_config(folder, made_with=dict(MADE_WITH, image_size=[6, 7]),
                 checkpoint="weights/model.ckpt", method="gradcam")
    with pytest.raises(RunError, match=r"other settings: steps \(8 there, 6 now\); input_size "
                                       r"\(\[8, 8\] there, \[6, 7\] now\); give the same"):
        FolderScores(folder, ScoringOptions(shard=Shard(1, 2)))
    write_config(folder, checkpoint="weights/model.ckpt", method="gradcam")

    summary = score(folder, steps=4, shard=Shard(1, 2), overwrite=True)
    assert (summary.scored, summary.skipped) == (2, 0)  # b and d
    assert [name for name in names(folder) if "faithfulness" in name] == [
        "failures_faithfulness_shard1of2.jsonl", "faithfulness_curves_shard1of2_000000.npz",
        "faithfulness_shard1of2.jsonl"]
    records = read_json_lines(summary.scores_path)
    assert_lines_score(records, [run["lines"][2], run["lines"][4]], folder, steps=4)


def test_another_checkpoint_is_refused_before_any_scoring(run, monkeypatch):
    other = FakeSource("00" * 32)
    monkeypatch.setattr("l2caf.models.sources.model_source", lambda config: other)
    with pytest.raises(RunError) as caught:
        score(run["folder"])
    assert str(caught.value) == (
        "checkpoint weights/model.ckpt is not the one that made the heatmaps of %s (its SHA-256 "
        "differs from the one config.yaml records); give the run's checkpoint at that path"
        % run["folder"])
    assert other.models == []
    path = os.path.join(run["folder"], "faithfulness.jsonl")
    assert not os.path.exists(path) or read_json_lines(path) == []


def test_without_a_recorded_checkpoint_fingerprint_any_checkpoint_scores(run, monkeypatch):
    write_config(run["folder"], made_with={"image_size": SIZE})
    other = FakeSource("00" * 32)
    monkeypatch.setattr("l2caf.models.sources.model_source", lambda config: other)
    assert score(run["folder"]).scored == 5


def test_an_unreadable_image_is_a_failure_line_and_the_others_are_scored(run, source):
    folder = run["folder"]
    with open(run["paths"]["a"], "wb") as stream:
        stream.write(b"not a picture" * 10)
    os.remove(run["paths"]["c"])
    summary = score(folder)
    reasons = ["%s: not a readable image (corrupt, empty, or an unknown format)"
               % run["paths"]["a"], "%s: no such file" % run["paths"]["c"]]
    assert (summary.scored, summary.skipped, summary.failures) == (2, 0, reasons)
    assert read_json_lines(os.path.join(folder, "failures_faithfulness.jsonl")) == [
        {"image": run["paths"]["a"], "reason": reasons[0]},
        {"image": run["paths"]["c"], "reason": reasons[1]}]
    assert_lines_score(read_json_lines(summary.scores_path),
                       [run["lines"][2], run["lines"][4]], folder)
    # Repaired, the rerun scores them and forgets the failures.
    cv2.imwrite(run["paths"]["a"], np.zeros((5, 5, 3), np.uint8))
    cv2.imwrite(run["paths"]["c"], np.zeros((5, 5, 3), np.uint8))
    summary = score(folder)
    assert (summary.scored, summary.skipped, summary.failures) == (3, 2, [])
    assert read_json_lines(os.path.join(folder, "failures_faithfulness.jsonl")) == []


def test_a_class_oblivious_heatmap_is_scored_on_the_top1_class(tmp_path, source):
    run_dir = tmp_path / "oblivious"
    write_config(run_dir, caf_variant="cls_oblivious")
    cv2.imwrite(str(tmp_path / "x.png"), np.full((8, 8, 3), 90, np.uint8))
    references = NpzChunks(str(run_dir), Shard(0, 1)).write(
        {"x_oblivious": np.arange(16, dtype=np.float32).reshape(4, 4)})
    lines = [results_line(str(tmp_path / "x.png"), None, references["x_oblivious"],
                          predictions=(1, 2, 0))]
    write_lines(run_dir / "results.jsonl", lines)
    summary = score(str(run_dir))
    [record] = read_json_lines(summary.scores_path)
    assert (record["class_id"], record["scored_class_id"]) == (None, 1)
    assert_lines_score([record], lines, str(run_dir))
    assert curves_key(references["x_oblivious"]) == "x_oblivious"
    assert curves_key("/old/place/x_c3.npy") == "x_c3"


@pytest.mark.parametrize("options, message", [
    ({"batch_size": 0}, "--batch_size must be at least 1, got 0"),
    ({"workers": 0, "steps": -1}, "--workers must be at least 1, got 0"),
    ({"steps": -1, "limit": -1}, "--steps must be 0 or more, got -1"),
    ({"limit": -2}, "--limit must be 0 or more, got -2"),
    ({"road_fractions": (0.5, 1.0)}, "--road_fractions: ROAD's removal fractions must be "
                                     "increasing, each above 0 and below 1 (at 1 no pixel is "
                                     "left to impute from), got 0.5, 1"),
    ({"road_noise": -0.5}, "--road_noise must be 0 or more, got -0.5"),
])
def test_scoring_options_name_the_first_that_is_out_of_range(options, message):
    with pytest.raises(ConfigError) as caught:
        ScoringOptions(**options).check()
    assert str(caught.value) == message


def test_scoring_options_defaults():
    options = ScoringOptions()
    assert options.check() is options
    assert (options.steps, options.batch_size, options.limit, options.shard, options.gpu,
            options.workers, options.overwrite, options.progress) == (
        0, faithfulness.DEFAULT_BATCH_SIZE, 0, Shard(0, 1), 0, 4, False, True)


@pytest.mark.parametrize("shard, limit, stems", [
    (Shard(0, 1), 0, "abcd"), (Shard(0, 2), 0, "ac"), (Shard(1, 2), 0, "bd"),
    (Shard(2, 3), 0, "c"), (Shard(0, 2), 3, "ac"), (Shard(1, 2), 3, "b"), (Shard(0, 1), 2, "ab"),
])
def test_a_shard_takes_every_count_th_image_of_the_first_limit(run, shard, limit, stems):
    job = FolderScores(run["folder"], ScoringOptions(shard=shard, limit=limit))
    assert list(job.lines) == [run["paths"][stem] for stem in stems]
    assert job.scores_path == os.path.join(run["folder"], "faithfulness.jsonl"
                                           if shard.count == 1 else
                                           "faithfulness_shard%dof%d.jsonl" % shard)
    assert (job.steps, job.settings) == (SIZE, faithfulness.protocol_settings(SIZE, (SIZE, SIZE)))


def test_the_shards_scores_merged_are_one_runs(run, source, tmp_path):
    folder = run["folder"]
    for index in (1, 0):
        summary = score(folder, shard=Shard(index, 2))
        assert summary.scores_path == os.path.join(folder, "faithfulness_shard%dof2.jsonl"
                                                   % index)
    report = merge_scores(folder)
    assert (report.lines, report.duplicates, report.total, report.missing,
            report.shards_to_rerun) == (5, 0, 5, [], [])
    records = read_json_lines(os.path.join(folder, "faithfulness.jsonl"))
    assert_lines_score(records, run["lines"], folder)
    assert score(folder).skipped == 5  # the merged file is the unsharded job's


@pytest.mark.parametrize("case, error, message", [
    ("absent", RunError, "{folder}: no such results folder"),
    ("no image_size", RunError, "{folder}: config.yaml has no made_with image_size; rerun the "
                                "visualiser into the folder to record it"),
    ("too many steps", ConfigError, "--steps must be at most 64 (the 8x8 input's pixels), got "
                                    "65"),
])
def test_a_folder_that_cannot_be_scored_is_refused_before_any_work(run, case, error, message):
    folder = run["folder"]
    options = ScoringOptions()
    if case == "absent":
        folder = os.path.join(folder, "absent")
    elif case == "no image_size":
        write_config(folder, made_with={"checkpoint_sha256": CHECKPOINT_SHA256})
    else:
        options = ScoringOptions(steps=SIZE * SIZE + 1)
    before = names(run["folder"])
    with pytest.raises(error) as caught:
        FolderScores(folder, options)
    assert str(caught.value) == message.format(folder=folder)
    assert names(run["folder"]) == before


def test_the_run_folder_modules_import_no_tensorflow():
    code = ("import sys\n"
            "import l2caf.runs.folder, l2caf.runs.plan, l2caf.runs.read, l2caf.runs.merge\n"
            "import l2caf.runs.faithfulness, l2caf.runs.localization, l2caf.models.sources\n"
            "import l2caf.evaluation.table, l2caf.cli.options, l2caf.files, l2caf.parallel\n"
            "print(sorted(name for name in sys.modules if name.split('.')[0] in "
            "('tensorflow', 'keras', 'tf_slim')))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, "[]\n", "")


def test_other_road_settings_are_refused_like_other_steps(run, source):
    folder = run["folder"]
    score(folder)
    with pytest.raises(RunError, match=r"other settings: road_fractions \(\[0.1, 0.2, 0.3, 0.4, "
                                       r"0.5, 0.6, 0.7, 0.8, 0.9\] there, \[0.5\] now\); give"):
        FolderScores(folder, ScoringOptions(road_fractions=(0.5,)))
    with pytest.raises(RunError, match=r"road_noise \(0.01 there, 0.0 now\)"):
        FolderScores(folder, ScoringOptions(road_noise=0.0))


def scored_before_road(folder):
    """The folder's scores as a version without ROAD and Average Gain wrote them."""
    path = os.path.join(folder, "faithfulness.jsonl")
    old = [{key: value for key, value in record.items()
            if key not in ("average_gain", "road_morf_auc", "road_lerf_auc", "road_curves",
                           "road_fractions", "road_noise", "road_imputation")}
           for record in read_json_lines(path)]
    write_lines(path, old)
    return old


def test_a_folder_scored_before_road_is_refused_and_its_table_shows_no_road(run, source):
    """Never a mean of some heatmaps: the three columns are None ('-') with a note saying how
    to score them, and the command refuses to add scores of other settings; --overwrite
    scores every metric again."""
    from l2caf.evaluation.table import cell, run_notes
    from l2caf.runs.localization import faithfulness_columns
    from l2caf.runs.read import read_lines
    folder = run["folder"]
    score(folder)
    old = scored_before_road(folder)
    with pytest.raises(RunError) as caught:
        FolderScores(folder, ScoringOptions())
    assert str(caught.value) == (
        "%s holds scores made before ROAD and Average Gain existed; give --overwrite to score "
        "the folder again with every metric (the table shows '-' for those until then)"
        % os.path.join(folder, "faithfulness.jsonl"))
    columns = faithfulness_columns(folder, read_lines(folder))
    assert (columns["average_gain"], columns["road_morf_auc"], columns["road_lerf_auc"]) == \
        (None, None, None)
    assert columns["faithfulness_missing"] == ["Average Gain", "ROAD MoRF AUC", "ROAD LeRF AUC"]
    assert columns["deletion_auc"] == pytest.approx(
        np.mean([record["deletion_auc"] for record in old]))
    row = dict(columns, run=folder, images=4, images_annotated=4, pointing_heatmaps=0,
               ground_truth_pairs=0, images_lacking_top1_heatmap=0,
               images_lacking_top5_heatmap=0, images_lacking_gt_heatmap=0)
    assert cell(row, "road_morf_auc") == cell(row, "average_gain") == "-"
    assert run_notes(row) == [
        "no Average Gain, ROAD MoRF AUC, ROAD LeRF AUC: scored before they existed "
        "(scripts/evaluate_faithfulness.py --overwrite --results %s scores every metric again)"
        % folder]
    summary = score(folder, overwrite=True)
    assert summary.scored == 5
    assert_lines_score(read_json_lines(summary.scores_path), run["lines"], folder)
    assert faithfulness_columns(folder, read_lines(folder))["faithfulness_missing"] == []


def test_the_faithfulness_figure_gains_the_mean_road_curves(run, source):
    from l2caf.report import curves
    folder = run["folder"]
    score(folder)
    records = read_json_lines(os.path.join(folder, "faithfulness.jsonl"))
    found = curves.faithfulness_curves(folder)
    road = np.mean([load_heatmap(record["road_curves"], folder) for record in records], axis=0)
    np.testing.assert_allclose(found.road.fractions, [0.0] + records[0]["road_fractions"])
    np.testing.assert_allclose([found.road.morf, found.road.lerf], road, atol=1e-6)
    assert found.road.areas == pytest.approx(
        [np.mean([record[key] for record in records])
         for key in ("road_morf_auc", "road_lerf_auc")])
    figure = curves.faithfulness_figure([("run", found)])
    titles = [axes.get_title() for axes in figure.axes]
    assert titles[2:] == ["mean ROAD MoRF curve (a lower AUC is better)",
                          "mean ROAD LeRF curve (a higher AUC is better)"]
    scored_before_road(folder)  # without ROAD curves: the two panels of before
    older = curves.faithfulness_curves(folder)
    assert older.road is None
    assert len(curves.faithfulness_figure([("run", older)]).axes) == 2
