"""Comparison figures (scripts/make_figure.py): the same images across run folders, one row
per image: the image, then one overlay per run (method, network and layer in the column
title), with the ground-truth boxes and the box the evaluation makes at the chosen threshold
and protocol in two colours, the class and the IoU under every picture, and a colour bar.

Each row shows one heatmap per run, of the class the first run's `runs.shown_entry` picks
(its first ground-truth class with a heatmap, else its top-1 class; for a class-oblivious
first run, its one heatmap, and the image's first ground-truth class, else its top-1 class,
for the others); the other runs show their heatmap of that class (or their class-oblivious
one). Under 'wsol' the box is made at
224 x 224, as the benchmark scores it, and drawn scaled back onto the image.
"""
import collections
import math
import os
import textwrap
from typing import Optional, Sequence

import cv2
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from l2caf import heatmaps
from l2caf.errors import ConfigError, RunError
from l2caf.evaluation.table import metrics
from l2caf.report import drawing
from l2caf.report.pictures import (Entry, PictureRun, box_fractions, matching_entry,
                                   read_picture, shown_class, shown_entry)
from l2caf.settings import check_number

# --by: what ranks the images, and whether higher is better.
FAITHFULNESS_RANKINGS = collections.OrderedDict(
    (metric.key, metric.better == "higher") for metric in metrics("faithfulness"))
RANKINGS = collections.OrderedDict(
    [("iou", True), ("probability", True)] + list(FAITHFULNESS_RANKINGS.items()))
PANEL_INCHES = 1.6
# How an overlay shows the heatmap (see comparison_figure).
OVERLAYS = ("fade", "blend")
CAPTION_POINTS = 6.0
TITLE_POINTS = 6.5
# The PNG's bounds: matplotlib's Agg draws less than 2^16 pixels a side, and holds 4 bytes a
# pixel while drawing (100 million pixels: 400 MB).
MAX_FIGURE_SIDE = 2 ** 16 - 1
MAX_FIGURE_PIXELS = 100 * 10 ** 6
# Rows are as tall as their image's aspect (height / width) within these bounds.
ASPECT_RANGE = (0.4, 2.5)

Panel = collections.namedtuple("Panel", ["row", "column", "image_size", "pixels"])
Panel.__doc__ = """Where a picture of a comparison figure lies in its PNG: row and column of
the grid (column 0 the image), the image's (height, width), and pixels: (left, top, right,
bottom) of the drawn image in the PNG's pixels, origin at the top left."""

Comparison = collections.namedtuple("Comparison", ["paths", "panels", "size", "notes"])
Comparison.__doc__ = """What `write_comparison` wrote: paths (PREFIX.png, PREFIX.pdf), the
`Panel`s, the PNG's (height, width) in pixels, and notes for the user (images left out of
a ranking)."""


def score(entry: Entry, by: str):
    """The number an entry is ranked by under --by (None when it has none)."""
    if by == "iou":
        return entry.box.iou
    if by == "probability":
        return entry.probability
    return (entry.faithfulness or {}).get(by)


class Chooser(object):
    """Chooses a comparison figure's images among the first run's, and keeps the entries it
    computed on the way."""

    def __init__(self, run: PictureRun, threshold: float, protocol: str):
        self.run, self.threshold, self.protocol = run, threshold, protocol
        self._entries = {}

    def entries(self, image: str) -> list:
        if image not in self._entries:
            self._entries[image] = self.run.entries(image, self.threshold, self.protocol)
        return self._entries[image]

    def by_names(self, names: list) -> list:
        """The images called names (names in the run, file names, or paths as the results
        give them); ConfigError for a name the run does not have."""
        lookup = dict(self.run.by_name)
        for image in self.run.lines:
            lookup.setdefault(image, image)
            lookup.setdefault(os.path.basename(image), image)
        chosen = []
        for name in names:
            if name not in lookup:
                examples = ", ".join(sorted(self.run.by_name)[:3])
                raise ConfigError("--images: %s is not an image of %s (its images are named "
                                  "like %s)" % (name, self.run.results_dir, examples))
            chosen.append(lookup[name])
        return chosen

    def at_random(self, count: int, seed: int) -> list:
        """count images (all, if the run has fewer) drawn with numpy's default_rng(seed),
        by name."""
        paths = self.run.image_paths()
        picked = np.random.default_rng(seed).choice(len(paths), min(count, len(paths)),
                                                    replace=False)
        return [paths[index] for index in sorted(picked)]

    def ranked(self, count: int, by: str, best: bool = True) -> tuple:
        """The count best (or worst) images by the score of their shown heatmap, best (or
        worst) first; ties by name. Returns (images, notes): images without the score are
        left out, and a note says how many."""
        if by not in RANKINGS:
            raise ConfigError("--by must be one of %s, got %r" % (", ".join(RANKINGS), by))
        if by == "iou" and self.run.annotations is None:
            raise ConfigError("--by iou needs the images' boxes: give --annotations (%s has "
                              "no annotations key)" % self.run.results_dir)
        if by in FAITHFULNESS_RANKINGS and not self.run.faithfulness:
            raise RunError("%s holds no faithfulness scores (faithfulness.jsonl); make them "
                           "with scripts/evaluate_faithfulness.py --results %s, or rank --by "
                           "iou" % (self.run.results_dir, self.run.results_dir))
        scored = []
        for image in self.run.image_paths():
            value = score(shown_entry(self.entries(image)), by)
            if value is not None:
                scored.append((value, self.run.names[image], image))
        notes = []
        missing = len(self.run.lines) - len(scored)
        if missing:
            notes.append("%d of the %d images of %s have no %s for their shown heatmap and "
                         "were not ranked" % (missing, len(self.run.lines),
                                              self.run.results_dir, by))
        if not scored:
            raise RunError("no image of %s has a %s to rank by" % (self.run.results_dir, by))
        higher_first = RANKINGS[by] == best
        scored.sort(key=lambda item: (-item[0] if higher_first else item[0], item[1]))
        return [image for _, _, image in scored[:count]], notes


def _thumbnail(picture, longest):
    """The picture shrunk (area interpolation) so that its longer side is at most longest."""
    height, width = picture.shape[:2]
    factor = longest / float(max(height, width))
    if factor >= 1.0:
        return picture
    size = (max(1, int(round(width * factor))), max(1, int(round(height * factor))))
    return cv2.resize(picture, size, interpolation=cv2.INTER_AREA)


def _draw_box(axes, box, frame_size, image_size, color):
    """An inclusive box of a frame drawn on an image shown in pixel coordinates (imshow's:
    pixel x covers x - 0.5 .. x + 0.5)."""
    left, top, right, bottom = box_fractions(box, frame_size)
    height, width = image_size
    # A dark edge under the colour keeps the box visible on a background of its colour; the
    # edges lie under every box's colour (zorder), so that two close boxes both show.
    for edge, line_width, zorder in ((drawing.BOX_EDGE_COLOR, drawing.BOX_LINE_WIDTH + 1.6, 2),
                                     (color, drawing.BOX_LINE_WIDTH, 3)):
        axes.add_patch(Rectangle((left * width - 0.5, top * height - 0.5),
                                 (right - left) * width, (bottom - top) * height, fill=False,
                                 edgecolor=edge, linewidth=line_width, zorder=zorder,
                                 clip_on=False))  # a box on the image's border shows whole


def _show(axes, picture, image_size):
    height, width = image_size
    axes.imshow(picture, extent=(-0.5, width - 0.5, height - 0.5, -0.5),
                interpolation="antialiased")
    axes.set_xticks([])
    axes.set_yticks([])
    for spine in axes.spines.values():
        spine.set_visible(False)


def _caption(run, entry):
    """The lines under an overlay: class id and name; probability and IoU."""
    details = []
    if entry.class_id is None:
        details.append("top-1: %s" % run.class_label(entry.line["predictions"][0]["class_id"]))
    elif entry.probability is not None:
        details.append("p %.2f" % entry.probability)
    if entry.box.iou is not None:
        details.append("IoU %.2f" % entry.box.iou)
    elif run.annotations is None:
        details.append("IoU - (no annotations)")
    else:
        details.append("IoU - (not a ground-truth class)")
    return "%s\n%s" % (run.class_label(entry.class_id), ", ".join(details))


def _wrapped(text, width=30):
    """Text in lines of at most width characters (a panel's), its own line breaks kept."""
    return "\n".join(wrapped for line in text.split("\n")
                     for wrapped in textwrap.wrap(line, width) or [""])


def _column_title(run, title=None):
    """A run's column title: `title` as given, else its method, network, layer and folder."""
    return _wrapped(title if title is not None
                    else run.title + "\n" + run.results_dir.rstrip("/"))


def figure_inches(runs: int, aspects: list) -> tuple:
    """(width, height) in inches of a comparison figure of `runs` runs (a column each, after
    the images') and rows of the given aspects (height / width, in ASPECT_RANGE)."""
    return (PANEL_INCHES * (1 + runs) + 0.7,
            sum(PANEL_INCHES * aspect + 0.35 for aspect in aspects) + 1.1)


def check_figure_size(runs: int, aspects: list, dpi: float, least: bool = False) -> None:
    """ConfigError unless dpi is a positive number at which the figure of `runs` runs and
    rows of `aspects` (see figure_inches) stays within MAX_FIGURE_SIDE pixels a side and
    MAX_FIGURE_PIXELS in all. least: the rows are the fewest and flattest the figure can
    have (a check of --dpi before the images are chosen)."""
    check_number("--dpi", dpi, "positive", lambda x: x > 0)
    width, height = (int(math.ceil(inches * dpi)) for inches in figure_inches(runs, aspects))
    if width > MAX_FIGURE_SIDE or height > MAX_FIGURE_SIDE or \
            width * height > MAX_FIGURE_PIXELS:
        fewer = " or show fewer images or runs" if len(aspects) > 1 or runs > 1 else ""
        raise ConfigError("a figure of %d image(s) x %d run(s) at --dpi %g would be %s%dx%d "
                          "pixels, over what a PNG may have here (%d a side, %d million in "
                          "all); lower --dpi%s"
                          % (len(aspects), runs, dpi, "at least " if least else "", width,
                             height, MAX_FIGURE_SIDE, MAX_FIGURE_PIXELS // 10 ** 6, fewer))


def check_titles(titles: Optional[Sequence[str]], runs: int) -> None:
    """ConfigError unless titles is None or one title per run."""
    if titles is not None and len(titles) != runs:
        raise ConfigError("--titles names %d column(s) for %d results folder(s); give one "
                          "title per folder, in their order" % (len(titles), runs))


def comparison_figure(runs: list, chooser: Chooser, images: list, threshold: float,
                      protocol: str, colormap: str = "bwr", alpha: float = 0.5,
                      dpi: int = drawing.DPI, titles: Optional[Sequence[str]] = None,
                      overlay: str = "fade") -> tuple:
    """The comparison figure of `images` (paths in runs[0]) as (matplotlib Figure, {(row,
    column): axes}, image sizes by row). titles: the runs' column titles (default: each
    run's method, network, layer and folder). overlay: "fade" (the heatmap's opacity grows
    from 0 at its minimum to alpha at its maximum) or "blend" (alpha everywhere)."""
    if overlay not in OVERLAYS:
        raise ConfigError("--overlay must be one of %s, got %r" % (", ".join(OVERLAYS), overlay))
    check_titles(titles, len(runs))
    colors = drawing.colormap(colormap)
    check_figure_size(len(runs), [ASPECT_RANGE[0]] * len(images), dpi, least=True)
    rows = []
    for image in images:
        entries = chooser.entries(image)
        shown = shown_entry(entries)
        picture = read_picture(image, runs[0].results_dir)
        if tuple(picture.shape[:2]) != shown.image_size:
            raise RunError("%s is %dx%d pixels now but the run saw %dx%d: the file changed "
                           "after the run" % ((image,) + picture.shape[:2] + shown.image_size))
        others = []
        for run in runs[1:]:
            other = run.by_name.get(shown.name)
            others.append(matching_entry(run.entries(other, threshold, protocol),
                                         shown_class(shown)) if other else None)
        rows.append((picture, [shown] + others))
    aspects = [min(ASPECT_RANGE[1], max(ASPECT_RANGE[0], picture.shape[0] /
                                        float(picture.shape[1]))) for picture, _ in rows]
    columns = 1 + len(runs)
    check_figure_size(len(runs), aspects, dpi)
    figure = drawing.new_figure(*figure_inches(len(runs), aspects), dpi)
    grid = figure.add_gridspec(len(rows), columns, height_ratios=aspects)
    longest = int(math.ceil(PANEL_INCHES * dpi * 1.5))
    axes_by_cell = {}
    for row, ((picture, entries), aspect) in enumerate(zip(rows, aspects)):
        shown, size = entries[0], entries[0].image_size
        small = _thumbnail(picture, longest)
        axes = figure.add_subplot(grid[row, 0])
        _show(axes, small, size)
        for gt_box in shown.gt_boxes:
            _draw_box(axes, gt_box, size, size, drawing.GROUND_TRUTH_COLOR)
        truth = ", ".join(runs[0].class_label(class_id) for class_id in shown.gt_classes)
        axes.set_xlabel(_wrapped("%s\nground truth: %s" % (shown.name, truth or "unknown")),
                        fontsize=CAPTION_POINTS)
        axes_by_cell[row, 0] = axes
        for column, (run, entry) in enumerate(zip(runs, entries), start=1):
            axes = figure.add_subplot(grid[row, column])
            axes_by_cell[row, column] = axes
            if row == 0:
                axes.set_title(_column_title(run, titles and titles[column - 1]),
                               fontsize=TITLE_POINTS)
            if entry is None:
                _show(axes, np.full_like(small, 255), size)
                axes.set_xlabel(_wrapped("no heatmap of %s in this run" % runs[0].class_label(
                    shown_class(shown))), fontsize=CAPTION_POINTS)
                continue
            _show(axes, heatmaps.show_heatmap_on_image(small, entry.heatmap, alpha, colors,
                                                       fade=overlay == "fade"), size)
            for gt_box in entry.gt_boxes:
                _draw_box(axes, gt_box, size, size, drawing.GROUND_TRUTH_COLOR)
            _draw_box(axes, entry.box.box, entry.box.frame_size, size, drawing.BOX_COLOR)
            axes.set_xlabel(_wrapped(_caption(run, entry)), fontsize=CAPTION_POINTS)
    # At the right of the whole grid.
    bar = figure.colorbar(ScalarMappable(Normalize(0.0, 1.0), colors),
                          ax=list(axes_by_cell.values()), shrink=min(1.0, 3.0 / len(rows) + 0.2),
                          aspect=30, pad=0.02)
    bar.set_label("heatmap, min-max normalised (opacity %s)" % (
        "0 at 0 to %g at 1" % alpha if overlay == "fade" else "%g" % alpha),
        fontsize=CAPTION_POINTS)
    bar.ax.tick_params(labelsize=CAPTION_POINTS)
    figure.legend(handles=[
        Line2D([], [], color=drawing.GROUND_TRUTH_COLOR, linewidth=2, label="ground truth"),
        Line2D([], [], color=drawing.BOX_COLOR, linewidth=2,
               label="box at threshold %g (%s protocol)" % (threshold, protocol))],
        loc="outside lower center", ncols=2, fontsize=CAPTION_POINTS, frameon=False)
    return figure, axes_by_cell, [entries[0].image_size for _, entries in rows]


def write_comparison(runs: list, images: list, prefix: str, threshold: float = 0.2,
                     protocol: str = "cam", colormap: str = "bwr", alpha: float = 0.5,
                     dpi: int = drawing.DPI, chooser: Chooser = None, notes=(),
                     titles: Optional[Sequence[str]] = None,
                     overlay: str = "fade") -> Comparison:
    """Draws the comparison figure of `images` and writes PREFIX.png and PREFIX.pdf; returns
    a `Comparison`. chooser: the `Chooser` that picked the images (its entries are reused)."""
    chooser = chooser or Chooser(runs[0], threshold, protocol)
    figure, axes_by_cell, sizes = comparison_figure(runs, chooser, images, threshold, protocol,
                                                    colormap, drawing.check_alpha(alpha), dpi,
                                                    titles, overlay)
    # Laid out once, then frozen: constrained layout run again at each save can move the
    # axes by a few pixels, and the panels must say where the PNG has them.
    figure.canvas.draw()
    figure.set_layout_engine("none")
    height = int(round(figure.bbox.height))
    panels = []
    for (row, column), axes in sorted(axes_by_cell.items()):
        extent = axes.get_window_extent()
        panels.append(Panel(row, column, sizes[row], (extent.x0, height - extent.y1,
                                                      extent.x1, height - extent.y0)))
    paths = drawing.save_figure(figure, prefix, dpi)
    return Comparison(paths, panels, (height, int(round(figure.bbox.width))), list(notes))
