"""The evaluation table: its columns in one table (COLUMNS: name, label, better direction,
scale, format, unit, outcome), and the table of runs' rows as Markdown, CSV and JSON. The
localisation job (l2caf.runs.localization) fills the rows; the intervals, the comparisons, the
curves, the figures and the report page read the metrics' names, directions, units and
formats from here. No TensorFlow, no run folders.

A row is a dict of the COLUMNS' keys (and more: the thresholds, the curves, notes). Scores
are in the table's units: percent for the localisation and pointing columns, Average Drop,
Increase in Confidence and Average Gain; the AUCs in [0, 1]; the sanity checks' Spearman
correlations in [-1, 1]. A row with intervals (l2caf.evaluation.statistics)
also holds each score's `interval_keys` right after it, shown in its cell as
"88.0 [81.0, 94.0]"; a row without them is the table as it was before intervals.
"""
import collections
import csv
import io
import json
from typing import Dict, List, Optional, Tuple

from l2caf.evaluation.metrics import V2_IOU_THRESHOLDS
from l2caf.files import write_atomically

Column = collections.namedtuple("Column", ["key", "label", "better", "scale", "format",
                                           "family", "unit", "outcome"])
Column.__doc__ = """A column of the table. key: its field in a row (and, for a per-heatmap
score, in a scores line); label: its header. better: "higher" or "lower" for a score, None
for a description or a count. scale: what a per-image (or per-heatmap) value is multiplied
by in the table (100 for a percentage of 0/1 outcomes or fractions). format: the cell's
printf format for a score. family: "run" (what the row is), "localization", "pointing",
"faithfulness" or "sanity" (the sanity checks of scripts/sanity_check.py: the Spearman rank
correlation of the absolute maps with the run's, l2caf.runs.sanity). For a score, what the
table averages (None for the others): unit, "image" (one value per image) or "heatmap" (one
per (image, class) heatmap scored); outcome, RIGHT_WRONG (a 0/1 per unit: the column is
their percentage; an error counts the wrong ones), VALUE (a number per unit: the column is
their mean, times scale) or BEST_THRESHOLD (a 0/1 per unit at every threshold of the sweep:
the column is the best threshold's percentage, and for MaxBoxAccV2 the mean of that over
its IoUs)."""

RIGHT_WRONG, VALUE, BEST_THRESHOLD = "right/wrong", "value", "best threshold"


def _column(key, label, better=None, scale=1.0, format=None, family="run", unit=None,
            outcome=None):
    return Column(key, label, better, scale, format, family, unit, outcome)


# The Markdown table's columns, in order; the CSV and JSON hold these keys and more.
COLUMNS = collections.OrderedDict((column.key, column) for column in [
    _column("run", "run"), _column("method", "method"), _column("network", "network"),
    _column("protocol", "protocol"), _column("threshold", "threshold"),
    _column("images", "images"),
    _column("top1_cls_error", "top-1 cls err", "lower", 100.0, "%.1f", "localization",
            "image", RIGHT_WRONG),
    _column("top5_cls_error", "top-5 cls err", "lower", 100.0, "%.1f", "localization",
            "image", RIGHT_WRONG),
    _column("top1_loc_error", "top-1 loc err", "lower", 100.0, "%.1f", "localization",
            "image", RIGHT_WRONG),
    _column("top5_loc_error", "top-5 loc err", "lower", 100.0, "%.1f", "localization",
            "image", RIGHT_WRONG),
    _column("gt_known_loc_accuracy", "GT-known loc acc", "higher", 100.0, "%.1f",
            "localization", "image", RIGHT_WRONG),
    _column("max_box_acc", "MaxBoxAcc (threshold)", "higher", 100.0, "%.1f", "localization",
            "image", BEST_THRESHOLD),
    _column("max_box_acc_v2", "MaxBoxAccV2 (thresholds at IoU %s)"
            % "/".join("%g" % value for value in V2_IOU_THRESHOLDS), "higher", 100.0, "%.1f",
            "localization", "image", BEST_THRESHOLD),
    _column("pointing_game", "pointing game", "higher", 100.0, "%.1f", "pointing", "heatmap",
            RIGHT_WRONG),
    _column("energy_pointing_game", "energy pointing game", "higher", 100.0, "%.1f",
            "pointing", "heatmap", VALUE),
    _column("pointing_heatmaps", "heatmaps (pointing)", family="pointing"),
    _column("deletion_auc", "deletion AUC (lower is better)", "lower", 1.0, "%.3f",
            "faithfulness", "heatmap", VALUE),
    _column("insertion_auc", "insertion AUC", "higher", 1.0, "%.3f", "faithfulness",
            "heatmap", VALUE),
    _column("average_drop", "Average Drop (lower is better)", "lower", 100.0, "%.1f",
            "faithfulness", "heatmap", VALUE),
    _column("increase_in_confidence", "Increase in Confidence", "higher", 100.0, "%.1f",
            "faithfulness", "heatmap", RIGHT_WRONG),
    _column("average_gain", "Average Gain", "higher", 100.0, "%.1f", "faithfulness",
            "heatmap", VALUE),
    _column("road_morf_auc", "ROAD MoRF AUC (lower is better)", "lower", 1.0, "%.3f",
            "faithfulness", "heatmap", VALUE),
    _column("road_lerf_auc", "ROAD LeRF AUC", "higher", 1.0, "%.3f", "faithfulness",
            "heatmap", VALUE),
    _column("faithfulness_heatmaps", "heatmaps (faithfulness)", family="faithfulness"),
    _column("sanity_spearman_randomized", "Spearman, all blocks random (lower is better)",
            "lower", 1.0, "%.2f", "sanity", "heatmap", VALUE),
    _column("sanity_spearman_random_logit", "Spearman, random logit (lower is better)",
            "lower", 1.0, "%.2f", "sanity", "heatmap", VALUE),
])


# The scores that are areas under the curves of a faithfulness curves file ([2, points]: the
# deletion curve, then the insertion curve), in that order.
CURVE_AREAS = ("deletion_auc", "insertion_auc")


def metrics(family: str) -> List[Column]:
    """The scores (columns with a better direction) of a family, in table order."""
    return [column for column in COLUMNS.values()
            if column.family == family and column.better is not None]


def name(key: str) -> str:
    """A column's name without what its label adds in parentheses ('MaxBoxAcc', 'deletion
    AUC')."""
    return COLUMNS[key].label.split(" (")[0]


def scores() -> List[Column]:
    """Every score of the table (columns with a better direction), in table order."""
    return [column for column in COLUMNS.values() if column.better is not None]


# A score's interval in a row: its lower and upper bound, in the column's units (None when
# there is none: no values, a single image).
INTERVAL_SUFFIXES = ("_ci_low", "_ci_high")


def interval_keys(key: str) -> Tuple[str, str]:
    """The row's keys of a score's interval: (<key>_ci_low, <key>_ci_high)."""
    return tuple(key + suffix for suffix in INTERVAL_SUFFIXES)  # type: ignore[return-value]


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
    if 0 < row.get("sanity_heatmaps", 0) < row["heatmaps"]:
        notes.append("sanity checks cover %d of the %d heatmaps (scripts/sanity_check.py "
                     "--results %s checks the rest)"
                     % (row["sanity_heatmaps"], row["heatmaps"], row["run"]))
    if row.get("faithfulness_missing"):  # scores made before these metrics existed
        notes.append("no %s: scored before they existed (scripts/evaluate_faithfulness.py "
                     "--overwrite --results %s scores every metric again)"
                     % (", ".join(row["faithfulness_missing"]), row["run"]))
    return notes


def with_intervals(row: Dict, intervals: Dict, notes: List[str], resamples: int,
                   seed: int) -> Dict:
    """The row with its scores' intervals ({score key: (low, high) or None}, as
    l2caf.evaluation.statistics.run_intervals gives them): each score's `interval_keys` right
    after it (None for none), the bootstrap's resamples and seed before the notes, and
    `notes` added to the row's."""
    extended: Dict = collections.OrderedDict()
    for key, value in row.items():
        if key == "notes":
            extended["bootstrap_resamples"], extended["bootstrap_seed"] = resamples, seed
            extended["notes"] = list(value) + list(notes)
            continue
        extended[key] = value
        if key in intervals:
            interval = intervals[key]
            for interval_key, bound in zip(interval_keys(key), interval or (None, None)):
                extended[interval_key] = bound
    return extended


def _is_bound(row, key):
    return any(row[count] for count, (_, scores, _) in LACKING_HEATMAPS.items() if key in scores)


def cell(row: Dict, key: str) -> str:
    """A Markdown cell: scores in their column's format, marked as bounds where heatmaps
    lack, with their interval when the row has one ("[-]" when it has none); "-" for a score
    the row has not."""
    value, column = row[key], COLUMNS[key]
    if key == "method" and row["caf_variant"] == "cls_oblivious":
        return "%s (cls_oblivious)" % value
    if column.format is None:
        return "%g" % value if isinstance(value, float) else str(value)
    if value is None:
        return "-"
    text = column.format % value
    low_key, high_key = interval_keys(key)
    if low_key in row:
        low, high = row[low_key], row[high_key]
        text += " [-]" if low is None else " [%s, %s]" % (column.format % low,
                                                            column.format % high)
    if key == "max_box_acc":
        text += " (%g)" % row["max_box_acc_threshold"]
    elif key == "max_box_acc_v2":
        text += " (%s)" % "/".join("%g" % threshold
                                   for threshold in row["max_box_acc_v2_thresholds"].values())
    if _is_bound(row, key):
        text = (">=" if key in ACCURACIES else "<=") + text
    return text


def interval_legend(resamples: int, seed: int) -> str:
    """What the bracketed intervals of a table are."""
    return ("[low, high]: 95%% bootstrap interval over the images (%d resamples, seed %d; all "
            "heatmaps of an image resampled together); %s and %s choose their best threshold "
            "again in each resample, which makes their intervals slightly optimistic."
            % (resamples, seed, name("max_box_acc"), name("max_box_acc_v2")))


def markdown_table(rows: List[Dict]) -> str:
    """The rows as a Markdown table, then (for rows with intervals) what the intervals are,
    then their notes (a bullet each)."""
    lines = ["| %s |" % " | ".join(column.label for column in COLUMNS.values()),
             "|" + "---|" * len(COLUMNS)]
    lines += ["| %s |" % " | ".join(cell(row, key) for key in COLUMNS) for row in rows]
    if rows and "bootstrap_resamples" in rows[0]:
        lines += ["", interval_legend(rows[0]["bootstrap_resamples"], rows[0]["bootstrap_seed"])]
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
                             faithfulness_input_size=size and "x".join(map(str, size)),
                             **({"faithfulness_missing": "; ".join(row["faithfulness_missing"])}
                                if "faithfulness_missing" in row else {})))
    write_atomically(path, lambda stream: stream.write(text.getvalue().encode("utf-8")))


def write_json(path: str, rows: List[Dict]) -> None:
    """The rows with all their fields, as a JSON list."""
    text = json.dumps(rows, indent=2) + "\n"
    write_atomically(path, lambda stream: stream.write(text.encode("utf-8")))
