"""The curves beside an evaluation table (scripts/evaluate_localization.py, the report page):

* PREFIX_maxboxacc.png / .pdf: the box accuracy against the threshold for every run, whose
  maximum is MaxBoxAcc (Choe et al. 2020, their Fig. 4); under 'wsol' three more panels, the
  accuracy with every contour's box at IoU 0.3, 0.5 and 0.7, whose maxima MaxBoxAccV2
  averages;
* PREFIX_faithfulness.png / .pdf, when a run folder holds faithfulness scores: one figure
  with two panels, the mean deletion curve and the mean insertion curve of each run (RISE,
  Petsiuk et al. 2018, their Fig. 4), the class's probability against the fraction of pixels
  deleted or inserted, with the mean AUC of the run's heatmaps in the legend;
* PREFIX_comparisons.png / .pdf, with a bootstrap: a forest plot of the paired comparisons
  (l2caf.evaluation.comparisons), one panel per column, one line per pair of runs: the
  difference A - B with its 95% paired-bootstrap interval, coloured by the verdict after
  Holm's correction, a vertical line at no difference.
"""
import collections
from typing import Optional

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from l2caf.errors import RunError
from l2caf.evaluation import V2_IOU_THRESHOLDS
from l2caf.evaluation.table import COLUMNS, CURVE_AREAS, name, scores
from l2caf.report import drawing
from l2caf.report.pictures import read_faithfulness
from l2caf.runs.folder import HeatmapFiles, UnreadableHeatmap

PANEL_SIZE = (4.2, 3.0)  # inches
FONT_POINTS = 7.0
# The report page's figures are shown at their size (l2caf.report.page: CSS pixels of 1/96
# inch), where 11 points are 14.7 pixels: not smaller than the page's text (14 pixels).
PAGE_FONT_POINTS = 11.0
# The forest plot: panels per row, and the height of a panel's pair of runs, in inches.
FOREST_COLUMNS = 2
FOREST_PAIR_HEIGHT = 0.17
# The verdicts' colours: A better, B better, no difference (l2caf.evaluation.comparisons).
VERDICT_COLORS = ("#1a7f37", "#cf4a00", "#777777")

FaithfulnessCurves = collections.namedtuple(
    "FaithfulnessCurves", ["fractions", "deletion", "insertion", "areas", "heatmaps", "road"])
FaithfulnessCurves.__doc__ = """The mean deletion and insertion curves of a run's heatmaps:
fractions of pixels (np.linspace(0, 1, points)), the two mean curves, areas: the mean
deletion and insertion AUC of the faithfulness lines (in the order of
l2caf.evaluation.table.CURVE_AREAS), how many heatmaps they average, and road: their mean
`RoadCurves`, or None when some line was scored before ROAD existed."""
RoadCurves = collections.namedtuple("RoadCurves", ["fractions", "morf", "lerf", "areas"])
RoadCurves.__doc__ = """The mean ROAD curves of a run's heatmaps: fractions removed (0, then
the lines' road_fractions), the mean MoRF and LeRF curves, and areas: the mean ROAD MoRF and
LeRF AUC of the lines."""
# The ROAD areas of a faithfulness line, in the order of its road_curves' rows.
ROAD_AREAS = ("road_morf_auc", "road_lerf_auc")


RunName = collections.namedtuple("RunName", ["method", "network", "layer", "folder"])
RunName.__doc__ = """What tells a run apart in a figure: its method as papers write it
(l2caf.report.drawing.method_name), network, layer and results folder."""


def run_name(row: dict) -> RunName:
    """The `RunName` of an evaluation row (l2caf.runs.localization.evaluate_run)."""
    return RunName(drawing.method_name(row["method"], row["caf_variant"]), row["network"],
                   row["layer"], row["run"].rstrip("/"))


def run_labels(names: list) -> tuple:
    """(a label per `RunName`, what they all share) for a legend: each line is labelled by
    what differs between the runs (the method alone when they share network and layer),
    its folder only when method, network and layer do not tell it from another run; what
    they share (e.g. 'demo_densenet, layer dense_block4') goes once in the legend's title
    ('' when nothing is shared)."""
    def part(field, value):
        return "layer %s" % value if field == "layer" else str(value)
    described = ("method", "network", "layer")
    differing = [field for field in described
                 if len({getattr(found, field) for found in names}) > 1]
    shown = differing or ["method"]
    labels = [", ".join(part(field, getattr(found, field)) for field in shown)
              for found in names]
    if len(set(labels)) < len(labels):  # the same method, network and layer: the folder
        labels = ["%s (%s)" % (label, found.folder) for label, found in zip(labels, names)]
    shared = [part(field, getattr(names[0], field)) for field in described
              if field not in shown and field not in differing] if names else []
    return labels, ", ".join(shared)


def _style(axes, xlabel, ylabel, title, font_points):
    axes.set_xlabel(xlabel, fontsize=font_points)
    axes.set_ylabel(ylabel, fontsize=font_points)
    axes.set_title(title, fontsize=font_points)
    axes.tick_params(labelsize=font_points)
    axes.grid(True, linewidth=0.3, alpha=0.5)


def _legend(figure, axes, font_points, title=""):
    handles, labels = axes.get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", fontsize=font_points,
                  frameon=False, ncols=1, title=title or None, title_fontsize=font_points)


def box_accuracy_figure(rows: list, font_points: float = FONT_POINTS) -> Figure:
    """The MaxBoxAcc curves of evaluation rows (l2caf.runs.localization.evaluate_run), one
    line per row (labelled by `run_labels`), its maximum marked; under 'wsol' the MaxBoxAccV2
    panels too. font_points: the size of every text."""
    with_v2 = any(row["box_accuracies"]["max_box_acc_v2"] for row in rows)
    panels = [("MaxBoxAcc's curve: the largest box, IoU >= %g" % rows[0]["iou_threshold"],
               lambda curves: curves["max_box_acc"])]
    if with_v2:
        panels += [("MaxBoxAccV2's: the best contour's box, IoU >= %s" % iou,
                    lambda curves, iou=iou: curves["max_box_acc_v2"][iou])
                   for iou in ("%g" % value for value in V2_IOU_THRESHOLDS)]
    columns = 2 if with_v2 else 1
    figure_rows = (len(panels) + columns - 1) // columns
    figure = drawing.new_figure(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * figure_rows
                                + _legend_height(len(rows) + 1, font_points))
    grid = figure.subplots(figure_rows, columns, squeeze=False)
    labels, shared = run_labels([run_name(row) for row in rows])
    for axes, (title, curve_of) in zip(grid.flat, panels):
        for row, label in zip(rows, labels):
            curves = row["box_accuracies"]
            thresholds, accuracies = curves["thresholds"], curve_of(curves)
            [line] = axes.plot(thresholds, accuracies, linewidth=1.0, label=label)
            best = int(np.argmax(accuracies))
            axes.plot([thresholds[best]], [accuracies[best]], "o", markersize=3,
                      color=line.get_color())
        _style(axes, "threshold (fraction of the heatmap's maximum)",
               "box accuracy (%%), protocol %s" % rows[0]["protocol"], title, font_points)
        axes.set_xlim(0, 1)
        axes.set_ylim(-2, 102)
    _legend(figure, grid.flat[0], font_points, shared)
    return figure


def _legend_height(lines: int, font_points: float) -> float:
    """Inches below the panels for a legend of that many lines (its title included)."""
    return 0.3 + lines * 1.5 * font_points / 72.0


def faithfulness_curves(results_dir: str, scores: Optional[dict] = None):
    """The `FaithfulnessCurves` of a run folder's faithfulness lines, or None without
    them; RunError for curves that cannot be read or whose lengths differ. scores: the
    lines ({(image, class_id): line}) as the command read them for its table (so that
    table and curves show the same scores); None: read the folder's now."""
    lines = list((read_faithfulness(results_dir) if scores is None else scores).values())
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
                               for key in CURVE_AREAS], len(lines),
                              _road_curves(results_dir, lines))


def _road_curves(results_dir, lines):
    """The `RoadCurves` of a run's faithfulness lines, None when some line has none (scored
    before ROAD existed); RunError for curves that cannot be read or do not match the lines'
    fractions."""
    if not all("road_curves" in line and "road_fractions" in line for line in lines):
        return None
    fractions = lines[0]["road_fractions"]
    curves = []
    with HeatmapFiles(results_dir) as files:
        for line in lines:
            try:
                curve = np.asarray(files.read(line["road_curves"]), np.float64)
            except UnreadableHeatmap as error:
                raise RunError("ROAD curves file %s cannot be used (%s); rerun scripts/evaluate_"
                               "faithfulness.py --overwrite --results %s to score the folder "
                               "again" % (error.path, error.reason, results_dir)) from None
            if curve.shape != (2, len(fractions) + 1):
                raise RunError("%s: ROAD curves of shape %s for the %d fractions of the lines; "
                               "rerun scripts/evaluate_faithfulness.py --overwrite --results %s"
                               % (results_dir, list(curve.shape), len(fractions),
                                  results_dir))
            curves.append(curve)
    mean = np.mean(curves, axis=0)
    return RoadCurves(np.concatenate([[0.0], fractions]), mean[0], mean[1],
                      [float(np.mean([line[key] for line in lines])) for key in ROAD_AREAS])


def faithfulness_figure(labelled_curves: list, font_points: float = FONT_POINTS,
                        shared: str = "") -> Figure:
    """Deletion and insertion panels, one line per (label, FaithfulnessCurves), and below
    them ROAD's MoRF and LeRF panels when some run has ROAD curves; shared: what the runs
    share, the legend's title (see `run_labels`)."""
    with_road = any(curves.road is not None for _, curves in labelled_curves)
    figure = drawing.new_figure(PANEL_SIZE[0] * 2, PANEL_SIZE[1] * (2 if with_road else 1)
                                + _legend_height(len(labelled_curves) + 1, font_points))
    grid = figure.subplots(2 if with_road else 1, 2, squeeze=False)
    deletion, insertion = grid[0]
    for label, curves in labelled_curves:
        road = curves.road
        deletion.plot(curves.fractions, curves.deletion, linewidth=1.0,
                      label="%s: deletion AUC %.3f, insertion AUC %.3f%s, %d heatmaps"
                      % ((label,) + tuple(curves.areas) + (
                          "" if road is None else ", ROAD MoRF AUC %.3f, LeRF AUC %.3f"
                          % tuple(road.areas), curves.heatmaps)))
        insertion.plot(curves.fractions, curves.insertion, linewidth=1.0)
        if with_road:
            for axes, curve in zip(grid[1], (None, None) if road is None
                                   else (road.morf, road.lerf)):
                # (a run without ROAD curves keeps its colour: an empty line)
                axes.plot([] if road is None else road.fractions,
                          [] if curve is None else curve, linewidth=1.0, marker=".",
                          markersize=3)
    if with_road:
        morf_area, lerf_area = (COLUMNS[key] for key in ROAD_AREAS)
        for axes, kind, which, better in ((grid[1][0], "MoRF", "most", morf_area.better),
                                          (grid[1][1], "LeRF", "least", lerf_area.better)):
            _style(axes, "fraction of pixels removed and imputed, %s relevant first" % which,
                   "mean class probability",
                   "mean ROAD %s curve (a %s AUC is better)" % (kind, better), font_points)
            axes.set_xlim(0, 1)
            axes.set_ylim(-0.02, 1.02)
    deletion_area, insertion_area = (COLUMNS[key] for key in CURVE_AREAS)
    for axes, kind, verb, better in ((deletion, "deletion", "deleted", deletion_area.better),
                                     (insertion, "insertion", "inserted",
                                      insertion_area.better)):
        _style(axes, "fraction of pixels %s, most salient first" % verb,
               "mean class probability",
               "mean %s curve (a %s AUC is better)" % (kind, better), font_points)
        axes.set_xlim(0, 1)
        axes.set_ylim(-0.02, 1.02)
    _legend(figure, deletion, font_points, shared)
    return figure


def write_box_accuracy_curves(prefix: str, rows: list, font_points: float = FONT_POINTS
                              ) -> list:
    """Writes PREFIX_maxboxacc.png and .pdf of evaluation rows; returns their paths."""
    return drawing.save_figure(box_accuracy_figure(rows, font_points), prefix + "_maxboxacc")


def write_faithfulness_curves(prefix: str, runs: list, font_points: float = FONT_POINTS
                              ) -> list:
    """Writes PREFIX_faithfulness.png and .pdf of the runs, (`RunName`, its faithfulness
    lines as the command read them) pairs, that have scores; returns their paths ([] when
    none has)."""
    found = [(name, faithfulness_curves(name.folder, scores)) for name, scores in runs
             if scores]
    if not found:
        return []
    labels, shared = run_labels([name for name, _ in found])
    labelled = [(label, curves) for label, (_, curves) in zip(labels, found)]
    return drawing.save_figure(faithfulness_figure(labelled, font_points, shared),
                               prefix + "_faithfulness")


def write_evaluation_curves(prefix: str, rows: list, scores: list) -> list:
    """The curves of an evaluation table beside it: PREFIX_maxboxacc.png/.pdf and, when some
    of its runs have faithfulness scores, PREFIX_faithfulness.png/.pdf; returns the paths.
    scores: each row's faithfulness lines, as its table read them
    (l2caf.runs.localization.Table.faithfulness)."""
    return write_box_accuracy_curves(prefix, rows) + write_faithfulness_curves(
        prefix, [(run_name(row), found) for row, found in zip(rows, scores)])


def comparison_figure(table, rows: list, font_points: float = FONT_POINTS) -> Figure:
    """The forest plot of an l2caf.evaluation.comparisons.ComparisonTable with comparisons,
    of the table's rows (each pair named by `run_labels` of its two runs)."""
    from l2caf.evaluation.comparisons import VERDICTS
    pairs = list(collections.OrderedDict.fromkeys(
        (comparison.run_a, comparison.run_b) for comparison in table.comparisons))
    compared = {comparison.column for comparison in table.comparisons}
    keys = [column.key for column in scores() if column.key in compared]
    columns = min(FOREST_COLUMNS, len(keys))
    panel_rows = (len(keys) + columns - 1) // columns
    panel_height = 0.4 + 3.0 * font_points / 72.0 + FOREST_PAIR_HEIGHT * len(pairs) \
        * font_points / FONT_POINTS
    figure = drawing.new_figure(PANEL_SIZE[0] * columns, panel_height * panel_rows
                                + _legend_height(3, font_points))
    grid = figure.subplots(panel_rows, columns, squeeze=False, sharey=True)
    names, shared = run_labels([run_name(row) for row in rows])
    label_of = {row["run"]: label for row, label in zip(rows, names)}
    labels = ["%s - %s" % (label_of.get(a, a), label_of.get(b, b)) for a, b in pairs]
    for axes, key in zip(grid.flat, keys):
        column = COLUMNS[key]
        for comparison in table.comparisons:
            if comparison.column != key:
                continue
            position = pairs.index((comparison.run_a, comparison.run_b))
            color = VERDICT_COLORS[VERDICTS.index(comparison.verdict)] \
                if comparison.verdict in VERDICTS else VERDICT_COLORS[2]
            if comparison.ci_low is not None:
                axes.plot([comparison.ci_low, comparison.ci_high], [position, position],
                          color=color, linewidth=1.2)
            axes.plot([comparison.difference], [position], "o", color=color, markersize=3)
        axes.axvline(0.0, color="#333333", linewidth=0.6)
        _style(axes, "A - B (%s is better)" % column.better, "", name(key), font_points)
    for axes in grid.flat[len(keys):]:
        axes.set_visible(False)
    grid[0, 0].set_yticks(range(len(pairs)))
    grid[0, 0].set_yticklabels(labels)
    grid[0, 0].set_ylim(len(pairs) - 0.5, -0.5)
    for axes in grid.flat:
        axes.tick_params(axis="y", labelsize=font_points)
    handles = [Line2D([], [], color=color, marker="o", markersize=3, linewidth=1.2,
                      label=verdict) for verdict, color in zip(VERDICTS, VERDICT_COLORS)]
    title = "95%% paired-bootstrap interval (%d resamples); verdict after Holm's correction" \
        % table.resamples
    figure.legend(handles=handles, loc="outside lower center", fontsize=font_points,
                  frameon=False, ncols=len(handles),
                  title="%s\n%s" % (shared, title) if shared else title,
                  title_fontsize=font_points)
    return figure


def write_comparison_plot(prefix: str, table, rows: list, font_points: float = FONT_POINTS
                          ) -> list:
    """Writes PREFIX_comparisons.png and .pdf, the forest plot of a ComparisonTable of the
    rows; returns their paths ([] without comparisons)."""
    if not table.comparisons:
        return []
    return drawing.save_figure(comparison_figure(table, rows, font_points),
                               prefix + "_comparisons")
