"""l2caf.evaluation.table: the one table of columns and metrics, its cells, Markdown, CSV and
JSON, and a row's notes, on rows written here."""
import collections
import csv
import json

import pytest

from l2caf.evaluation.table import (COLUMNS, CURVE_AREAS, LACKING_HEATMAPS, cell, markdown_table,
                                    metrics, run_notes, write_csv, write_json)


def a_row(**changes):
    """A row as the localisation job makes it (a 'wsol' run, every column filled)."""
    row = collections.OrderedDict([
        ("run", "outputs/demo"), ("method", "l2caf"), ("caf_variant", "cls_specific"),
        ("network", "demo_densenet"), ("layer", "conv1"), ("protocol", "wsol"),
        ("threshold", 0.2), ("iou_threshold", 0.5), ("images", 12), ("images_annotated", 12),
        ("top1_cls_error", 25.0), ("top5_cls_error", 0.0), ("top1_loc_error", 41.66666),
        ("top5_loc_error", 33.33333), ("gt_known_loc_accuracy", 66.66666),
        ("max_box_acc", 75.0), ("max_box_acc_threshold", 0.35), ("max_box_acc_v2", 61.11111),
        ("max_box_acc_v2_thresholds", collections.OrderedDict([("0.3", 0.1), ("0.5", 0.35),
                                                               ("0.7", 0.5)])),
        ("box_accuracies", collections.OrderedDict([
            ("thresholds", [0.1, 0.35, 0.5]), ("max_box_acc", [50.0, 75.0, 25.0]),
            ("max_box_acc_v2", {"0.3": [100.0, 75.0, 50.0], "0.5": [50.0, 75.0, 25.0],
                                "0.7": [0.0, 8.3, 8.3]})])),
        ("images_lacking_top1_heatmap", 0), ("images_lacking_top5_heatmap", 0),
        ("images_lacking_gt_heatmap", 0), ("pointing_game", 91.66666),
        ("energy_pointing_game", 48.04), ("pointing_heatmaps", 12), ("ground_truth_pairs", 12),
        ("deletion_auc", 0.12345), ("insertion_auc", 0.6789), ("average_drop", 12.3456),
        ("increase_in_confidence", 8.0), ("average_gain", 4.25), ("road_morf_auc", 0.2345),
        ("road_lerf_auc", 0.7654), ("faithfulness_missing", []), ("faithfulness_heatmaps", 12),
        ("heatmaps", 12), ("faithfulness_steps", 96), ("faithfulness_input_size", [96, 96]),
        ("sanity_spearman_randomized", 0.0512), ("sanity_spearman_random_logit", -0.315),
        ("sanity_heatmaps", 12), ("notes", [])])
    for key, value in changes.items():
        assert key in row, key
        row[key] = value
    return row


def test_every_column_has_its_key_a_label_and_a_family():
    for key, column in COLUMNS.items():
        assert column.key == key and column.label.strip() == column.label != ""
        assert column.family in ("run", "localization", "pointing", "faithfulness", "sanity")
        if column.better is None:
            assert (column.format, column.scale) == (None, 1.0), key
        else:
            assert column.better in ("higher", "lower") and column.format in ("%.1f", "%.2f", "%.3f")
    labels = [column.label for column in COLUMNS.values()]
    assert len(set(labels)) == len(labels)
    assert COLUMNS["max_box_acc_v2"].label == "MaxBoxAccV2 (thresholds at IoU 0.3/0.5/0.7)"


@pytest.mark.parametrize("family, keys", [
    ("run", []),
    ("localization", ["top1_cls_error", "top5_cls_error", "top1_loc_error", "top5_loc_error",
                      "gt_known_loc_accuracy", "max_box_acc", "max_box_acc_v2"]),
    ("pointing", ["pointing_game", "energy_pointing_game"]),
    ("faithfulness", ["deletion_auc", "insertion_auc", "average_drop",
                      "increase_in_confidence", "average_gain", "road_morf_auc",
                      "road_lerf_auc"]),
    ("sanity", ["sanity_spearman_randomized", "sanity_spearman_random_logit"]),
    ("nonsense", []),
])
def test_metrics_are_a_familys_scores_in_table_order(family, keys):
    assert [column.key for column in metrics(family)] == keys


def test_the_metrics_directions_and_scales():
    better = {column.key: (column.better, column.scale) for family in
              ("localization", "pointing", "faithfulness", "sanity")
              for column in metrics(family)}
    assert better == {
        "top1_cls_error": ("lower", 100.0), "top5_cls_error": ("lower", 100.0),
        "top1_loc_error": ("lower", 100.0), "top5_loc_error": ("lower", 100.0),
        "gt_known_loc_accuracy": ("higher", 100.0), "max_box_acc": ("higher", 100.0),
        "max_box_acc_v2": ("higher", 100.0), "pointing_game": ("higher", 100.0),
        "energy_pointing_game": ("higher", 100.0), "deletion_auc": ("lower", 1.0),
        "insertion_auc": ("higher", 1.0), "average_drop": ("lower", 100.0),
        "increase_in_confidence": ("higher", 100.0), "average_gain": ("higher", 100.0),
        "road_morf_auc": ("lower", 1.0), "road_lerf_auc": ("higher", 1.0),
        "sanity_spearman_randomized": ("lower", 1.0),
        "sanity_spearman_random_logit": ("lower", 1.0)}
    assert CURVE_AREAS == ("deletion_auc", "insertion_auc")
    assert [key for key, (_, scores, _) in LACKING_HEATMAPS.items()] == [
        "images_lacking_top1_heatmap", "images_lacking_top5_heatmap",
        "images_lacking_gt_heatmap"]
    for _, scores, _ in LACKING_HEATMAPS.values():
        assert all(COLUMNS[key].family == "localization" for key in scores)


def test_cells_in_their_columns_formats():
    row = a_row()
    assert [cell(row, key) for key in COLUMNS] == [
        "outputs/demo", "l2caf", "demo_densenet", "wsol", "0.2", "12", "25.0", "0.0", "41.7",
        "33.3", "66.7", "75.0 (0.35)", "61.1 (0.1/0.35/0.5)", "91.7", "48.0", "12", "0.123",
        "0.679", "12.3", "8.0", "4.2", "0.234", "0.765", "12", "0.05", "-0.32"]


def test_cells_of_missing_scores_bounds_and_class_oblivious_runs():
    row = a_row(caf_variant="cls_oblivious", protocol="cam", max_box_acc_v2=None,
                max_box_acc_v2_thresholds=None, deletion_auc=None, pointing_game=None,
                images_lacking_top5_heatmap=2, images_lacking_gt_heatmap=3)
    assert cell(row, "method") == "l2caf (cls_oblivious)"
    assert [cell(row, key) for key in ("max_box_acc_v2", "deletion_auc", "pointing_game")] == [
        "-", "-", "-"]
    assert [cell(row, key) for key in ("top1_loc_error", "top5_loc_error",
                                       "gt_known_loc_accuracy", "max_box_acc",
                                       "top1_cls_error")] == [
        "41.7", "<=33.3", ">=66.7", ">=75.0 (0.35)", "25.0"]
    row = a_row(images_lacking_top1_heatmap=1, images_lacking_gt_heatmap=1)
    assert [cell(row, key) for key in ("top1_loc_error", "top5_loc_error", "max_box_acc_v2")] \
        == ["<=41.7", "33.3", ">=61.1 (0.1/0.35/0.5)"]


def test_the_markdown_table_is_the_labels_then_a_line_per_row_then_the_notes():
    rows = [a_row(), a_row(run="outputs/other", notes=["partial run: 5 of the 12 annotated "
                                                       "images", "second note"])]
    lines = markdown_table(rows).splitlines()
    assert lines[0] == "| " + " | ".join(column.label for column in COLUMNS.values()) + " |"
    assert lines[0].startswith("| run | method | network | protocol | threshold | images | "
                               "top-1 cls err |")
    assert lines[1] == "|" + "---|" * 26
    assert lines[2] == "| " + " | ".join(cell(rows[0], key) for key in COLUMNS) + " |"
    assert lines[3].startswith("| outputs/other | l2caf |")
    assert lines[4:] == ["", "Notes:",
                         "- outputs/other: partial run: 5 of the 12 annotated images",
                         "- outputs/other: second note"]
    assert markdown_table([a_row()]).splitlines()[3:] == []


def test_csv_holds_every_field_of_every_row(tmp_path):
    rows = [a_row(notes=["one", "two"]),
            a_row(run="outputs/cam", protocol="cam", max_box_acc_v2=None,
                  max_box_acc_v2_thresholds=None, deletion_auc=None,
                  faithfulness_input_size=None, faithfulness_steps=None)]
    path = str(tmp_path / "table.csv")
    write_csv(path, rows)
    with open(path, newline="") as stream:
        reader = csv.DictReader(stream)
        read = list(reader)
    assert reader.fieldnames == list(rows[0])
    first, second = read
    assert first["notes"] == "one; two" and second["notes"] == ""
    assert json.loads(first["max_box_acc_v2_thresholds"]) == {"0.3": 0.1, "0.5": 0.35,
                                                              "0.7": 0.5}
    assert json.loads(first["box_accuracies"]) == json.loads(json.dumps(rows[0]
                                                                        ["box_accuracies"]))
    assert first["faithfulness_input_size"] == "96x96"
    assert (first["top1_loc_error"], first["threshold"], first["images"], first["method"]) == (
        "41.66666", "0.2", "12", "l2caf")
    assert [second[key] for key in ("max_box_acc_v2", "max_box_acc_v2_thresholds",
                                    "deletion_auc", "faithfulness_input_size",
                                    "faithfulness_steps")] == ["", "", "", "", ""]
    assert not (tmp_path / "table.csv.tmp").exists()


def test_json_holds_the_rows_as_they_are(tmp_path):
    rows = [a_row(notes=["one"]), a_row(max_box_acc_v2=None, max_box_acc_v2_thresholds=None)]
    path = tmp_path / "table.json"
    write_json(str(path), rows)
    assert json.loads(path.read_text()) == rows
    assert path.read_text().endswith("]\n")
    assert list(json.loads(path.read_text(), object_pairs_hook=collections.OrderedDict)[0]) \
        == list(rows[0])


@pytest.mark.parametrize("changes, notes", [
    ({}, []),
    ({"images": 5}, ["partial run: 5 of the 12 annotated images"]),
    ({"images_lacking_top1_heatmap": 2},
     ["missing heatmaps count as not localised; 2 image(s) lack the heatmap of their top-1 "
      "class, a ground-truth class: top-1 loc err is an upper bound (sweep with explain_gt true "
      "for the heatmaps of every ground-truth class)"]),
    ({"pointing_heatmaps": 10}, ["pointing games over the 10 of the 12 (image, ground-truth "
                                 "class) pairs that have a heatmap"]),
    ({"faithfulness_heatmaps": 7}, ["faithfulness scores cover 7 of the 12 heatmaps "
                                    "(scripts/evaluate_faithfulness.py --results outputs/demo "
                                    "scores the rest)"]),
    ({"faithfulness_heatmaps": 0, "faithfulness_steps": None,
      "faithfulness_input_size": None}, []),  # not scored: no note
    ({"sanity_heatmaps": 5}, ["sanity checks cover 5 of the 12 heatmaps (scripts/sanity_check.py "
                              "--results outputs/demo checks the rest)"]),
    ({"sanity_heatmaps": 0}, []),  # not checked: no note
    ({"faithfulness_missing": ["Average Gain"]}, [
        "no Average Gain: scored before they existed (scripts/evaluate_faithfulness.py "
        "--overwrite --results outputs/demo scores every metric again)"]),
    ({"faithfulness_steps": 12}, ["deletion and insertion curves of 12 steps, not the "
                                  "protocol's 96 (one row of pixels per step)"]),
    ({"faithfulness_steps": 96, "faithfulness_input_size": [96, 128]}, []),
    ({"images": 11, "images_lacking_top5_heatmap": 1, "images_lacking_gt_heatmap": 3,
      "pointing_heatmaps": 9, "faithfulness_heatmaps": 11, "faithfulness_steps": 4},
     ["partial run: 11 of the 12 annotated images",
      "missing heatmaps count as not localised; 1 image(s) lack the heatmap of a ground-truth "
      "class among their top-5: top-5 loc err is an upper bound; 3 image(s) lack the heatmap of "
      "a ground-truth class: GT-known loc acc, MaxBoxAcc and MaxBoxAccV2 are lower bounds "
      "(sweep with explain_gt true for the heatmaps of every ground-truth class)",
      "pointing games over the 9 of the 12 (image, ground-truth class) pairs that have a "
      "heatmap",
      "faithfulness scores cover 11 of the 12 heatmaps (scripts/evaluate_faithfulness.py "
      "--results outputs/demo scores the rest)",
      "deletion and insertion curves of 4 steps, not the protocol's 96 (one row of pixels per "
      "step)"]),
])
def test_run_notes(changes, notes):
    assert run_notes(a_row(**changes)) == notes

