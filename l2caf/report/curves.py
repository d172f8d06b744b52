"""The curves beside an evaluation table (scripts/evaluate_localization.py, the report page):

* PREFIX_maxboxacc.png / .pdf: the box accuracy against the threshold for every run, whose
  maximum is MaxBoxAcc (Choe et al. 2020, their Fig. 4); under 'wsol' three more panels, the
  accuracy with every contour's box at IoU 0.3, 0.5 and 0.7, whose maxima MaxBoxAccV2
  averages;
* PREFIX_faithfulness.png / .pdf, when a run folder holds faithfulness scores: one figure
  with two panels, the mean deletion curve and the mean insertion curve of each run (RISE,
  Petsiuk et al. 2018, their Fig. 4), the class's probability against the fraction of pixels
  deleted or inserted, with the mean AUC of the run's heatmaps in the legend.
"""
import collections

import numpy as np
from matplotlib.figure import Figure

from l2caf.errors import RunError
from l2caf.evaluation import V2_IOU_THRESHOLDS
from l2caf.evaluation.table import COLUMNS, CURVE_AREAS
from l2caf.report import drawing
from l2caf.report.pictures import read_faithfulness
from l2caf.runs.folder import HeatmapFiles, UnreadableHeatmap

PANEL_SIZE = (4.2, 3.0)  # inches
FONT_POINTS = 7.0

FaithfulnessCurves = collections.namedtuple(
    "FaithfulnessCurves", ["fractions", "deletion", "insertion", "areas", "heatmaps"])
FaithfulnessCurves.__doc__ = """The mean deletion and insertion curves of a run's heatmaps:
fractions of pixels (np.linspace(0, 1, points)), the two mean curves, areas: the mean
deletion and insertion AUC of the faithfulness lines (in the order of
l2caf.evaluation.table.CURVE_AREAS), and how many heatmaps they average."""


def run_label(row: dict) -> str:
    """A run's name in a legend: method, network, layer and folder."""
    return "%s, %s, %s (%s)" % (drawing.method_name(row["method"], row["caf_variant"]),
                                row["network"], row["layer"], row["run"].rstrip("/"))


def _style(axes, xlabel, ylabel, title):
    axes.set_xlabel(xlabel, fontsize=FONT_POINTS)
    axes.set_ylabel(ylabel, fontsize=FONT_POINTS)
    axes.set_title(title, fontsize=FONT_POINTS)
    axes.tick_params(labelsize=FONT_POINTS)
    axes.grid(True, linewidth=0.3, alpha=0.5)


def _legend(figure, axes):
    handles, labels = axes.get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", fontsize=FONT_POINTS,
                  frameon=False, ncols=1)


def box_accuracy_figure(rows: list) -> Figure:
    """The MaxBoxAcc curves of evaluation rows (l2caf.runs.localization.evaluate_run), one
    line per row, its maximum marked; under 'wsol' the MaxBoxAccV2 panels too."""
    with_v2 = any(row["box_accuracies"]["max_box_acc_v2"] for row in rows)
    panels = [("MaxBoxAcc's curve: the largest box, IoU >= %g" % rows[0]["iou_threshold"],
               lambda curves: curves["max_box_acc"])]
    if with_v2:
        panels += [("MaxBoxAccV2's: the best contour's box, IoU >= %s" % iou,
                    lambda curves, iou=iou: curves["max_box_acc_v2"][iou])
                   for iou in ("%g" % value for value in V2_IOU_THRESHOLDS)]
    columns = 2 if with_v2 else 1
    figure_rows = (len(panels) + columns - 1) // columns
    figure = drawing.new_figure(PANEL_SIZE[0] * columns,
                                PANEL_SIZE[1] * figure_rows + 0.25 * len(rows) + 0.3)
    grid = figure.subplots(figure_rows, columns, squeeze=False)
    for axes, (title, curve_of) in zip(grid.flat, panels):
        for row in rows:
            curves = row["box_accuracies"]
            thresholds, accuracies = curves["thresholds"], curve_of(curves)
            [line] = axes.plot(thresholds, accuracies, linewidth=1.0, label=run_label(row))
            best = int(np.argmax(accuracies))
            axes.plot([thresholds[best]], [accuracies[best]], "o", markersize=3,
                      color=line.get_color())
        _style(axes, "threshold (fraction of the heatmap's maximum)",
               "box accuracy (%%), protocol %s" % rows[0]["protocol"], title)
        axes.set_xlim(0, 1)
        axes.set_ylim(-2, 102)
    _legend(figure, grid.flat[0])
    return figure


def faithfulness_curves(results_dir: str):
    """The `FaithfulnessCurves` of a run folder's faithfulness*.jsonl, or None without
    them; RunError for curves that cannot be read or whose lengths differ."""
    lines = list(read_faithfulness(results_dir).values())
    if not lines:
        return None
    curves = []
    with HeatmapFiles(results_dir) as files:  # each curves file opened once
        for line in lines:
            try:
                curves.append(np.asarray(files.read(line["curves"]), np.float64))
            except UnreadableHeatmap as error:
                raise RunError("faithfulness curves file %s cannot be used (%s); rerun "
                               "scripts/evaluate_faithfulness.py --overwrite --results %s to "
                               "score the folder again" % (error.path, error.reason,
                                                           results_dir)) from None
            except KeyError:
                raise RunError("a faithfulness line of %s names no curves (%s, class %s); "
                               "rerun scripts/evaluate_faithfulness.py --overwrite --results "
                               "%s" % (results_dir, line.get("image"), line.get("class_id"),
                                       results_dir)) from None
    shapes = {curve.shape for curve in curves}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2 or next(iter(shapes))[0] != 2:
        raise RunError("%s: the faithfulness curves have shapes %s; expected one shape [2, "
                       "points] (scores made with other --steps mixed in one folder?)"
                       % (results_dir, sorted(shapes)))
    mean = np.mean(curves, axis=0)
    return FaithfulnessCurves(np.linspace(0.0, 1.0, mean.shape[1]), mean[0], mean[1],
                              [float(np.mean([line[key] for line in lines]))
                               for key in CURVE_AREAS], len(lines))


def faithfulness_figure(labelled_curves: list) -> Figure:
    """Deletion and insertion panels, one line per (label, FaithfulnessCurves)."""
    figure = drawing.new_figure(PANEL_SIZE[0] * 2, PANEL_SIZE[1] + 0.25 * len(labelled_curves)
                                + 0.3)
    deletion, insertion = figure.subplots(1, 2)
    for label, curves in labelled_curves:
        deletion.plot(curves.fractions, curves.deletion, linewidth=1.0,
                      label="%s: deletion AUC %.3f, insertion AUC %.3f, %d heatmaps"
                      % ((label,) + tuple(curves.areas) + (curves.heatmaps,)))
        insertion.plot(curves.fractions, curves.insertion, linewidth=1.0)
    deletion_area, insertion_area = (COLUMNS[key] for key in CURVE_AREAS)
    for axes, kind, verb, better in ((deletion, "deletion", "deleted", deletion_area.better),
                                     (insertion, "insertion", "inserted",
                                      insertion_area.better)):
        _style(axes, "fraction of pixels %s, most salient first" % verb,
               "class probability (mean over heatmaps)",
               "mean %s curve (a %s AUC is better)" % (kind, better))
        axes.set_xlim(0, 1)
        axes.set_ylim(-0.02, 1.02)
    _legend(figure, deletion)
    return figure


def write_box_accuracy_curves(prefix: str, rows: list) -> list:
    """Writes PREFIX_maxboxacc.png and .pdf of evaluation rows; returns their paths."""
    return drawing.save_figure(box_accuracy_figure(rows), prefix + "_maxboxacc")


def write_faithfulness_curves(prefix: str, labelled_folders: list) -> list:
    """Writes PREFIX_faithfulness.png and .pdf of the (label, run folder) pairs whose folders
    hold faithfulness scores; returns their paths ([] when none does)."""
    labelled = [(label, faithfulness_curves(folder)) for label, folder in labelled_folders]
    labelled = [(label, found) for label, found in labelled if found is not None]
    if not labelled:
        return []
    return drawing.save_figure(faithfulness_figure(labelled), prefix + "_faithfulness")


def write_evaluation_curves(prefix: str, rows: list) -> list:
    """The curves of an evaluation table beside it: PREFIX_maxboxacc.png/.pdf and, when some
    of its run folders hold faithfulness scores, PREFIX_faithfulness.png/.pdf; returns the
    paths."""
    return write_box_accuracy_curves(prefix, rows) + write_faithfulness_curves(
        prefix, [(run_label(row), row["run"]) for row in rows])
