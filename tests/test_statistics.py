"""l2caf.evaluation.statistics: each score as a statistic of per-unit samples, and its
bootstrap interval over images, against float64 references written here from the
definitions: the normal approximation of a Bernoulli column's interval (and of a mean over
images of several heatmaps) at large N, and every resample recomputed one by one from the
images it draws (all of an image's heatmaps together)."""
import collections
import csv
import json

import numpy as np
import pytest

from l2caf.evaluation import statistics
from l2caf.evaluation.statistics import (Samples, column_value, percentile_interval,
                                         resample_counts, resampled, run_intervals)
from l2caf.evaluation.table import (COLUMNS, cell, interval_keys, markdown_table, with_intervals,
                                    write_csv, write_json)

Z_975 = 1.959963984540054


def image_units(count):
    return [("image_%05d" % index, None) for index in range(count)]


def test_column_value_is_the_tables_statistic():
    gt = COLUMNS["gt_known_loc_accuracy"]
    assert column_value(gt, Samples(image_units(4), np.array([1, 0, 1, 1.0]))) == 75.0
    deletion = COLUMNS["deletion_auc"]
    assert column_value(deletion, Samples(image_units(3), np.array([0.1, 0.2, 0.6]))) == \
        pytest.approx(0.3)
    # MaxBoxAcc: the best threshold's percentage (thresholds are the last axis)
    hits = np.array([[[1, 1, 0]], [[0, 1, 0]], [[0, 1, 1]], [[0, 0, 1]]], dtype=float)
    assert column_value(COLUMNS["max_box_acc"], Samples(image_units(4), hits)) == 75.0
    # MaxBoxAccV2: the mean over the IoUs of each one's best threshold
    v2 = np.array([[[1, 0], [1, 1], [0, 0]], [[1, 1], [0, 1], [0, 0]]], dtype=float)
    assert column_value(COLUMNS["max_box_acc_v2"], Samples(image_units(2), v2)) == \
        pytest.approx((100 + 100 + 0) / 3.0)
    assert column_value(gt, Samples([], np.zeros(0))) is None


def test_a_bernoulli_columns_interval_is_the_normal_approximation_at_large_n():
    rng = np.random.default_rng(11)
    count = 2000
    right = (rng.random(count) < 0.3).astype(float)
    intervals, notes = run_intervals({"gt_known_loc_accuracy": Samples(image_units(count),
                                                                       right)},
                                     resamples=3000, seed=5)
    p = right.mean()
    half = Z_975 * np.sqrt(p * (1 - p) / count) * 100
    interval = intervals["gt_known_loc_accuracy"]
    standard_error = half / Z_975
    assert interval.low == pytest.approx(100 * p - half, abs=0.15 * standard_error)
    assert interval.high == pytest.approx(100 * p + half, abs=0.15 * standard_error)
    assert "no interval for top-1 cls err" in notes[0]


def test_a_mean_over_images_of_several_heatmaps_is_the_ratio_estimators_interval():
    # Images of 1 to 4 heatmaps, the heatmaps of an image alike (an image effect): the
    # interval is that of a ratio of sums over images, sqrt(sum((S_i - r n_i)^2)) / sum(n_i),
    # wider than one that took the heatmaps as independent.
    rng = np.random.default_rng(3)
    images = 2000
    units, values = [], []
    for index in range(images):
        effect = rng.normal(0.5, 0.2)
        for class_id in range(int(rng.integers(1, 5))):
            units.append(("image_%05d" % index, class_id))
            values.append(effect + rng.normal(0, 0.05))
    values = np.array(values)
    intervals, _ = run_intervals({"energy_pointing_game": Samples(units, values)},
                                 resamples=3000, seed=1)
    sums, counts = collections.defaultdict(float), collections.defaultdict(int)
    for (image, _), value in zip(units, values):
        sums[image] += value
        counts[image] += 1
    ratio = values.mean()
    error = np.sqrt(sum((sums[image] - ratio * counts[image]) ** 2 for image in sums)) / len(units)
    interval = intervals["energy_pointing_game"]
    assert interval.low == pytest.approx(100 * (ratio - Z_975 * error), abs=100 * 0.15 * error)
    assert interval.high == pytest.approx(100 * (ratio + Z_975 * error), abs=100 * 0.15 * error)
    naive = values.std(ddof=1) / np.sqrt(len(values))
    assert error > 1.5 * naive


def test_every_resample_is_whole_images_and_recomputes_the_column_plainly():
    """Each resample's statistic, recomputed one by one from the list of heatmaps it draws
    (an image drawn k times brings all its heatmaps k times), equals the vectorised one; for
    MaxBoxAcc the best threshold is chosen again in every resample."""
    rng = np.random.default_rng(0)
    images = ["img_%d" % index for index in range(7)]
    units = [(image, class_id) for image in images for class_id in range(int(rng.integers(1, 4)))]
    energy = rng.random(len(units))
    hits = (rng.random((len(images), 1, 5)) < 0.5).astype(float)
    index = {image: position for position, image in enumerate(images)}
    blocks = [statistics.block_of(COLUMNS["energy_pointing_game"], Samples(units, energy),
                                  index),
              statistics.block_of(COLUMNS["max_box_acc"],
                                  Samples([(image, None) for image in images], hits), index)]
    energy_stats, box_stats = resampled(blocks, len(images), 50, seed=9)
    draws = list(resample_counts(len(images), 50, seed=9))
    counts = np.concatenate(draws)
    assert counts.shape == (50, 7) and np.all(counts.sum(axis=1) == 7)
    assert np.array_equal(counts, np.round(counts))
    for row, times in enumerate(counts):
        drawn = [image for image, count in zip(images, times) for _ in range(int(count))]
        values = [value for image in drawn for unit, value in zip(units, energy)
                  if unit[0] == image]
        assert energy_stats[row] == pytest.approx(100 * np.mean(values))
        resampled_hits = np.array([hits[index[image], 0] for image in drawn])
        assert box_stats[row] == pytest.approx(100 * resampled_hits.mean(axis=0).max())


def test_the_same_seed_gives_the_same_intervals_and_another_seed_others():
    rng = np.random.default_rng(4)
    samples = {"insertion_auc": Samples(image_units(300), rng.random(300)),
               "pointing_game": Samples(image_units(300), (rng.random(300) < 0.6) * 1.0)}
    first, _ = run_intervals(samples, resamples=300, seed=7)
    again, _ = run_intervals(samples, resamples=300, seed=7)
    other, _ = run_intervals(samples, resamples=300, seed=8)
    assert first == again and first != other
    # in the order of the units or not
    shuffled = {key: Samples(found.units[::-1], found.values[::-1])
                for key, found in samples.items()}
    assert run_intervals(shuffled, resamples=300, seed=7)[0] == first


def test_the_chunks_of_resamples_depend_on_the_images_only(monkeypatch):
    monkeypatch.setattr(statistics, "CHUNK_DRAWS", 1000)
    chunks = [len(counts) for counts in resample_counts(300, 50, 0)]
    assert chunks == [3] * 16 + [2]
    assert [len(counts) for counts in resample_counts(3, 10, 0)] == [10]
    assert [len(counts) for counts in resample_counts(5000, 2, 0)] == [1, 1]


def test_a_single_image_or_no_values_give_no_interval_and_a_note():
    one = {"gt_known_loc_accuracy": Samples([("only", None)], np.array([1.0])),
           "pointing_game": Samples([("only", 1), ("only", 2)], np.array([1.0, 0.0]))}
    intervals, notes = run_intervals(one, resamples=100, not_made=("max_box_acc_v2",))
    assert all(interval is None for interval in intervals.values())
    assert notes[0] == ("no interval for GT-known loc acc, pointing game: the values of a "
                        "single image (a bootstrap over images needs two or more)")
    assert "MaxBoxAccV2" not in notes[1] and notes[1].startswith("no interval for top-1 cls err")
    assert percentile_interval(np.array([np.nan, np.nan, 1.0])) is None
    assert percentile_interval(np.array([np.nan, 1.0, 2.0, 3.0])) == (
        pytest.approx(1.05), pytest.approx(2.95))


def a_row():
    row = collections.OrderedDict([("run", "runs/a"), ("method", "l2caf"),
                                   ("caf_variant", "cls_specific"), ("network", "n"),
                                   ("protocol", "cam"), ("threshold", 0.2), ("images", 2),
                                   ("images_annotated", 2)])
    for key, column in COLUMNS.items():
        if column.better:
            row[key] = 50.0
    row.update(max_box_acc_threshold=0.3, max_box_acc_v2=None, pointing_heatmaps=2,
               faithfulness_heatmaps=2, max_box_acc_v2_thresholds=None,
               images_lacking_top1_heatmap=0, images_lacking_top5_heatmap=0,
               images_lacking_gt_heatmap=0, box_accuracies={}, faithfulness_input_size=None,
               notes=["first"])
    return row


def test_a_row_with_intervals_shows_them_and_writes_no_nan(tmp_path):
    intervals = {key: None for key, column in COLUMNS.items() if column.better}
    intervals["gt_known_loc_accuracy"] = statistics.Interval(40.0, 61.25)
    intervals["max_box_acc"] = statistics.Interval(30.0, 70.0)
    row = with_intervals(a_row(), intervals, ["second"], 1000, 0)
    keys = list(row)
    position = keys.index("gt_known_loc_accuracy")
    assert keys[position + 1:position + 3] == list(interval_keys("gt_known_loc_accuracy"))
    assert keys[-3:] == ["bootstrap_resamples", "bootstrap_seed", "notes"]
    assert row["notes"] == ["first", "second"]
    assert cell(row, "gt_known_loc_accuracy") == "50.0 [40.0, 61.2]"
    assert cell(row, "max_box_acc") == "50.0 [30.0, 70.0] (0.3)"
    assert cell(row, "pointing_game") == "50.0 [-]"
    assert cell(row, "max_box_acc_v2") == "-"
    text = markdown_table([row])
    assert "[low, high]: 95% bootstrap interval over the images (1000 resamples, seed 0" in text
    write_csv(str(tmp_path / "t.csv"), [row])
    write_json(str(tmp_path / "t.json"), [row])
    with open(str(tmp_path / "t.csv"), newline="") as stream:
        [read] = list(csv.DictReader(stream))
    assert read["gt_known_loc_accuracy_ci_high"] == "61.25" and read["pointing_game_ci_low"] == ""
    assert "nan" not in (tmp_path / "t.csv").read_text().lower()
    assert json.loads((tmp_path / "t.json").read_text())[0]["pointing_game_ci_low"] is None
