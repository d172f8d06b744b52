"""The evaluation table: its columns in one table (COLUMNS: name, label, better direction,
scale, format), and the table of runs' rows as Markdown, CSV and JSON. The localisation job
(l2caf.runs.localization) fills the rows; the curves, the figures and the report page read
the metrics' names, directions and formats from here. No TensorFlow, no run folders.

A row is a dict of the COLUMNS' keys (and more: the thresholds, the curves, notes). Scores
are in the table's units: percent for the localisation and pointing columns, Average Drop and
Increase in Confidence; the AUCs in [0, 1].
"""
import collections
import csv
import io
import json
from typing import Dict, List, Optional

from l2caf.evaluation.metrics import V2_IOU_THRESHOLDS
from l2caf.files import write_atomically

Column = collections.namedtuple("Column", ["key", "label", "better", "scale", "format",
                                           "family"])
Column.__doc__ = """A column of the table. key: its field in a row (and, for a per-heatmap
score, in a scores line); label: its header. better: "higher" or "lower" for a score, None
for a description or a count. scale: what a per-image (or per-heatmap) value is multiplied
by in the table (100 for a percentage of 0/1 outcomes or fractions). format: the cell's
printf format for a score. family: "run" (what the row is), "localization", "pointing" or
"faithfulness"."""


def _column(key, label, better=None, scale=1.0, format=None, family="run"):
    return Column(key, label, better, scale, format, family)


# The Markdown table's columns, in order; the CSV and JSON hold these keys and more.
COLUMNS = collections.OrderedDict((column.key, column) for column in [
    _column("run", "run"), _column("method", "method"), _column("network", "network"),
    _column("protocol", "protocol"), _column("threshold", "threshold"),
    _column("images", "images"),
    _column("top1_cls_error", "top-1 cls err", "lower", 100.0, "%.1f", "localization"),
    _column("top5_cls_error", "top-5 cls err", "lower", 100.0, "%.1f", "localization"),
    _column("top1_loc_error", "top-1 loc err", "lower", 100.0, "%.1f", "localization"),
    _column("top5_loc_error", "top-5 loc err", "lower", 100.0, "%.1f", "localization"),
    _column("gt_known_loc_accuracy", "GT-known loc acc", "higher", 100.0, "%.1f",
            "localization"),
    _column("max_box_acc", "MaxBoxAcc (threshold)", "higher", 100.0, "%.1f", "localization"),
    _column("max_box_acc_v2", "MaxBoxAccV2 (thresholds at IoU %s)"
            % "/".join("%g" % value for value in V2_IOU_THRESHOLDS), "higher", 100.0, "%.1f",
            "localization"),
    _column("pointing_game", "pointing game", "higher", 100.0, "%.1f", "pointing"),
    _column("energy_pointing_game", "energy pointing game", "higher", 100.0, "%.1f",
            "pointing"),
    _column("pointing_heatmaps", "heatmaps (pointing)", family="pointing"),
    _column("deletion_auc", "deletion AUC (lower is better)", "lower", 1.0, "%.3f",
            "faithfulness"),
    _column("insertion_auc", "insertion AUC", "higher", 1.0, "%.3f", "faithfulness"),
    _column("average_drop", "Average Drop (lower is better)", "lower", 100.0, "%.1f",
            "faithfulness"),
    _column("increase_in_confidence", "Increase in Confidence", "higher", 100.0, "%.1f",
            "faithfulness"),
    _column("faithfulness_heatmaps", "heatmaps (faithfulness)", family="faithfulness"),
])


# The scores that are areas under the curves of a faithfulness curves file ([2, points]: the
# deletion curve, then the insertion curve), in that order.
CURVE_AREAS = ("deletion_auc", "insertion_auc")


def metrics(family: str) -> List[Column]:
    """The scores (columns with a better direction) of a family, in table order."""
    return [column for column in COLUMNS.values()
            if column.family == family and column.better is not None]


# The accuracies that missing heatmaps make lower bounds (and the errors upper bounds).
ACCURACIES = ("gt_known_loc_accuracy", "max_box_acc", "max_box_acc_v2")
# Counts of images that lack a heatmap some scores need: (which heatmap, those scores, what
# that makes of them).
LACKING_HEATMAPS = collections.OrderedDict([
    ("images_lacking_top1_heatmap", ("their top-1 class, a ground-truth class",
                                     ("top1_loc_error",), "top-1 loc err is an upper bound")),
    ("images_lacking_top5_heatmap", ("a ground-truth class among their top-5",
                                     ("top5_loc_error",), "top-5 loc err is an upper bound")),
    ("images_lacking_gt_heatmap", ("a ground-truth class", ACCURACIES,
                                   "GT-known loc acc, MaxBoxAcc and MaxBoxAccV2 are lower "
                                   "bounds")),
])


def run_notes(row: Dict) -> List[str]:
    """What a reader of the row must know: a partial run, scores that are only bounds."""
    notes = []
    if row["images"] < row["images_annotated"]:
        notes.append("partial run: %d of the %d annotated images"
                     % (row["images"], row["images_annotated"]))
    lacking = ["%d image(s) lack the heatmap of %s: %s" % (row[key], heatmap, consequence)
               for key, (heatmap, _, consequence) in LACKING_HEATMAPS.items() if row[key]]
    if lacking:
        notes.append("missing heatmaps count as not localised; %s (sweep with explain_gt true "
                     "for the heatmaps of every ground-truth class)" % "; ".join(lacking))
    if row["pointing_heatmaps"] < row["ground_truth_pairs"]:
        notes.append("pointing games over the %d of the %d (image, ground-truth class) pairs "
                     "that have a heatmap" % (row["pointing_heatmaps"], row["ground_truth_pairs"]))
    if 0 < row["faithfulness_heatmaps"] < row["heatmaps"]:
        notes.append("faithfulness scores cover %d of the %d heatmaps (scripts/evaluate_"
                     "faithfulness.py --results %s scores the rest)"
                     % (row["faithfulness_heatmaps"], row["heatmaps"], row["run"]))
    if row["faithfulness_steps"] and row["faithfulness_input_size"] and \
            row["faithfulness_steps"] != row["faithfulness_input_size"][0]:
        notes.append("deletion and insertion curves of %d steps, not the protocol's %d (one "
                     "row of pixels per step)" % (row["faithfulness_steps"],
                                                  row["faithfulness_input_size"][0]))
    return notes


def _is_bound(row, key):
    return any(row[count] for count, (_, scores, _) in LACKING_HEATMAPS.items() if key in scores)


def cell(row: Dict, key: str) -> str:
    """A Markdown cell: scores in their column's format, marked as bounds where heatmaps
    lack; "-" for a score the row has not."""
    value, column = row[key], COLUMNS[key]
    if key == "method" and row["caf_variant"] == "cls_oblivious":
        return "%s (cls_oblivious)" % value
    if column.format is None:
        return "%g" % value if isinstance(value, float) else str(value)
    if value is None:
        return "-"
    text = column.format % value
    if key == "max_box_acc":
        text += " (%g)" % row["max_box_acc_threshold"]
    elif key == "max_box_acc_v2":
        text += " (%s)" % "/".join("%g" % threshold
                                   for threshold in row["max_box_acc_v2_thresholds"].values())
    if _is_bound(row, key):
        text = (">=" if key in ACCURACIES else "<=") + text
    return text


def markdown_table(rows: List[Dict]) -> str:
    """The rows as a Markdown table, then their notes (a bullet each)."""
    lines = ["| %s |" % " | ".join(column.label for column in COLUMNS.values()),
             "|" + "---|" * len(COLUMNS)]
    lines += ["| %s |" % " | ".join(cell(row, key) for key in COLUMNS) for row in rows]
    notes = ["- %s: %s" % (row["run"], note) for row in rows for note in row["notes"]]
    if notes:
        lines += ["", "Notes:"] + notes
    return "\n".join(lines)


def write_csv(path: str, rows: List[Dict]) -> None:
    """The rows with all their fields: notes joined by '; ', max_box_acc_v2_thresholds and
    box_accuracies as JSON, None as an empty cell."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    for row in rows:
        thresholds = row["max_box_acc_v2_thresholds"]
        size: Optional[list] = row["faithfulness_input_size"]
        writer.writerow(dict(row, notes="; ".join(row["notes"]),
                             max_box_acc_v2_thresholds=thresholds and json.dumps(thresholds),
                             box_accuracies=json.dumps(row["box_accuracies"]),
                             faithfulness_input_size=size and "x".join(map(str, size))))
    write_atomically(path, lambda stream: stream.write(text.getvalue().encode("utf-8")))


def write_json(path: str, rows: List[Dict]) -> None:
    """The rows with all their fields, as a JSON list."""
    text = json.dumps(rows, indent=2) + "\n"
    write_atomically(path, lambda stream: stream.write(text.encode("utf-8")))
