"""The sanity checks' figure (scripts/sanity_check.py's lines, l2caf.runs.sanity), as Adebayo
et al. drew it (their Fig. 4 and 2): PREFIX_sanity.png and .pdf.

* The curves: per similarity (Spearman of the absolute maps, Spearman of the maps, SSIM), the
  mean similarity of each run's heatmaps with the maps made again against the blocks made
  random, from the output down; top row cascading (the blocks up to it random), bottom row
  independent (that block alone), one curve per run with its 95% bootstrap interval over
  the images (all heatmaps of an image resampled together), the random logit's mean a dashed
  line of the run's colour. A method whose curves stay near 1 does not depend on the
  network's weights.
* The strip: one image (the first every run checked), per run a row: its heatmap, then its
  maps as the cascade makes block after block random.
"""
import collections
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from matplotlib.figure import Figure

from l2caf import images
from l2caf.errors import ImageError, RunError
from l2caf.evaluation.statistics import percentile_interval
from l2caf.report import drawing
from l2caf.runs import read
from l2caf.runs.folder import load_heatmap
from l2caf.runs.sanity import (CASCADING, INDEPENDENT, MEASURES, RANDOM_LOGIT, field,
                               read_cascading_maps, read_sanity)

FONT_POINTS = 7.0
PANEL_SIZE = (2.8, 2.2)  # inches
STRIP_CELL = 0.75  # inches per map of the strip
LEGEND_LINE = 0.15  # inches per line of the legend
MAX_WIDTH = 12.0  # inches: 1152 pixels on a page at 96 pixels per inch
RESAMPLES, SEED = 1000, 0
MEASURE_LABELS = {"spearman_abs": "Spearman, absolute maps", "spearman": "Spearman",
                  "ssim": "SSIM"}

SanityRun = collections.namedtuple("SanityRun", ["label", "folder", "lines"])
SanityRun.__doc__ = """A run of the figure: its label (the method as papers write it), its
folder and its sanity lines ({(image, class_id): line}, l2caf.runs.sanity.read_sanity)."""


def sanity_runs(folders: Sequence[str]) -> List[SanityRun]:
    """The SanityRuns of the folders that hold sanity lines, all on the same blocks (RunError
    otherwise: one network per figure)."""
    runs = []
    for folder in folders:
        lines = read_sanity(folder)
        if lines:
            config = read.read_config(folder)
            runs.append(SanityRun(drawing.method_name(config.method, config.caf_variant),
                                  folder, lines))
    blocks = {tuple(next(iter(run.lines.values()))["blocks"]) for run in runs}
    if len(blocks) > 1:
        raise RunError("the sanity checks of %s are of different networks (blocks %s); draw "
                       "one network per figure" % (", ".join(run.folder for run in runs),
                                                   " and ".join(map(str, sorted(blocks)))))
    return runs


def mean_with_interval(values: Sequence[Optional[float]], images_of: Sequence[str]
                       ) -> Tuple[Optional[float], Optional[Tuple[float, float]]]:
    """(mean, its 95% percentile bootstrap interval over the images) of per-heatmap values,
    the heatmaps of an image resampled together; None values (undefined) left out; (None,
    None) when there are none, no interval for a single image."""
    kept = [(value, image) for value, image in zip(values, images_of) if value is not None]
    if not kept:
        return None, None
    names = sorted({image for _, image in kept})
    index = {image: number for number, image in enumerate(names)}
    sums, counts = np.zeros(len(names)), np.zeros(len(names))
    for value, image in kept:
        sums[index[image]] += value
        counts[index[image]] += 1
    mean = float(sums.sum() / counts.sum())
    if len(names) < 2:
        return mean, None
    draws = np.random.default_rng(SEED).integers(0, len(names), (RESAMPLES, len(names)))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    interval = percentile_interval(means)
    return mean, None if interval is None else (interval.low, interval.high)


def _curve(run: SanityRun, randomisation: str, measure: str, blocks: int):
    """(means, lows, highs) per block of a run's heatmaps (NaN where there are none)."""
    lines = list(run.lines.values())
    found = [mean_with_interval([line[field(randomisation, measure)][step] for line in lines],
                                [line["image"] for line in lines]) for step in range(blocks)]
    means = np.array([np.nan if mean is None else mean for mean, _ in found])
    lows = np.array([np.nan if interval is None else interval[0] for _, interval in found])
    highs = np.array([np.nan if interval is None else interval[1] for _, interval in found])
    return means, lows, highs


def strip_image(runs: Sequence[SanityRun]) -> Optional[Tuple[str, Optional[int]]]:
    """The (image, class_id) of the strip: the first, in sorted order, that every run
    checked; None if there is none."""
    shared = set.intersection(*(set(run.lines) for run in runs)) if runs else set()
    return min(shared, key=lambda key: (key[0], -1 if key[1] is None else key[1])) \
        if shared else None


def sanity_figure(runs: Sequence[SanityRun], font_points: float = FONT_POINTS) -> Figure:
    """The curves (two rows of panels) and the strip (a row per run) of the runs."""
    blocks = next(iter(runs[0].lines.values()))["blocks"]
    key = strip_image(runs)
    strip_rows = len(runs) if key else 0
    # Panels and cells grow with the text, so that titles and block names do not overlap,
    # up to a width that a 1280-pixel page shows whole (the report page's figures).
    scale = max(1.0, font_points / FONT_POINTS)
    cell = STRIP_CELL * scale
    width = min(MAX_WIDTH, max(PANEL_SIZE[0] * scale * len(MEASURES), cell * (len(blocks) + 2)))
    curves_height = PANEL_SIZE[1] * scale * 2 + 0.4 + LEGEND_LINE * scale * (len(runs) + 2)
    figure = drawing.new_figure(width, curves_height + cell * strip_rows)
    curves_part, strip_part = figure.subfigures(
        2, 1, height_ratios=[curves_height, max(cell * strip_rows, 0.01)])
    panels = curves_part.subplots(2, len(MEASURES), squeeze=False)
    steps = np.arange(1, len(blocks) + 1)
    colors = [drawing_color(number) for number in range(len(runs))]
    for row, randomisation in enumerate((CASCADING, INDEPENDENT)):
        for column, measure in enumerate(MEASURES):
            axes = panels[row][column]
            for run, color in zip(runs, colors):
                means, lows, highs = _curve(run, randomisation, measure, len(blocks))
                axes.plot(steps, means, marker="o", markersize=2.5, linewidth=1.0,
                          color=color, label=_label(run))
                axes.fill_between(steps, lows, highs, color=color, alpha=0.2, linewidth=0)
                if randomisation == CASCADING:
                    lines = list(run.lines.values())
                    logit, _ = mean_with_interval(
                        [line[field(RANDOM_LOGIT, measure)] for line in lines],
                        [line["image"] for line in lines])
                    if logit is not None:
                        axes.axhline(logit, color=color, linestyle="--", linewidth=0.8)
            axes.axhline(0, color="#777777", linewidth=0.5)
            axes.set_xticks(steps)
            axes.set_xticklabels([("+" if randomisation == CASCADING and step > 1 else "")
                                  + name for step, name in enumerate(blocks, start=1)],
                                 rotation=60, ha="right", fontsize=font_points)
            axes.set_ylim(-1.05, 1.05)
            axes.tick_params(labelsize=font_points)
            axes.grid(True, linewidth=0.3, alpha=0.5)
            axes.set_title("%s: %s" % (randomisation, MEASURE_LABELS[measure]),
                           fontsize=font_points)
            if column == 0:
                axes.set_ylabel("mean similarity", fontsize=font_points)
    handles, labels = panels[0][0].get_legend_handles_labels()
    curves_part.legend(handles, labels, loc="outside lower center", fontsize=font_points,
                       frameon=False, ncols=1,
                       title="similarity of the maps made again with the run's heatmaps, "
                             "against the blocks made random from the output down;\ndashed: "
                             "the random logit; bands: 95% bootstrap intervals over the images",
                       title_fontsize=font_points)
    if key:
        _strip(strip_part, runs, key, blocks, font_points)
    return figure


def _label(run: SanityRun) -> str:
    """A run's legend entry: its method, heatmaps, and the maps left out (constant: no rank
    correlation, see l2caf.evaluation.similarity)."""
    undefined = sum(value is None for line in run.lines.values()
                    for randomisation in (CASCADING, INDEPENDENT)
                    for value in line[field(randomisation, "spearman")])
    return "%s (%d heatmaps%s)" % (run.label, len(run.lines), "; %d constant maps left out of "
                                   "the Spearman means" % undefined if undefined else "")


def drawing_color(number: int) -> str:
    """The colour of the number-th run (matplotlib's default cycle)."""
    return "C%d" % (number % 10)


def _strip(part, runs, key, blocks, font_points):
    """A row per run: the image, the run's heatmap, then its map after each cascading step."""
    cells = part.subplots(len(runs), len(blocks) + 2, squeeze=False)
    image, class_id = key
    try:
        picture = images.read_image(image)
    except ImageError:
        picture = None  # (the strip's maps still show; the image is for the eye only)
    for row, run in enumerate(runs):
        line = run.lines[key]
        maps = [load_heatmap(line["heatmap"], run.folder)] + \
            list(read_cascading_maps(run.folder, line))
        if picture is not None:
            cells[row][0].imshow(picture)
        titles = ["trained"] + ["+" + name if step else name for step, name in enumerate(blocks)]
        for column, (heatmap, title) in enumerate(zip(maps, titles), start=1):
            cells[row][column].imshow(heatmap, cmap="jet", interpolation="bilinear")
            if row == 0:
                cells[row][column].set_title(title, fontsize=font_points)
        cells[row][0].set_ylabel(run.label, fontsize=font_points)
        for axes in cells[row]:
            axes.set_xticks([])
            axes.set_yticks([])
    cells[0][0].set_title("image, class %s" % class_id, fontsize=font_points)
    part.suptitle("%s: the maps as the cascade makes the blocks random"
                  % os.path.basename(image), fontsize=font_points)


def write_sanity_figure(prefix: str, folders: Sequence[str],
                        font_points: float = FONT_POINTS) -> List[str]:
    """Writes PREFIX_sanity.png and .pdf of the folders' sanity checks; returns their paths
    ([] when no folder holds any)."""
    runs = sanity_runs(folders)
    if not runs:
        return []
    return drawing.save_figure(sanity_figure(runs, font_points), prefix + "_sanity")


def read_values(folders: Sequence[str]) -> Dict[str, Dict[str, Optional[float]]]:
    """{folder: {"cascading_<measure>": the mean at full randomisation, "random_logit_<measure>":
    the random logit's mean}} of the folders with sanity lines: the numbers the
    documentation quotes."""
    found = {}
    for run in sanity_runs(folders):
        lines = list(run.lines.values())
        image_list = [line["image"] for line in lines]
        values = {}
        for measure in MEASURES:
            values[field(CASCADING, measure)] = mean_with_interval(
                [line[field(CASCADING, measure)][-1] for line in lines], image_list)[0]
            values[field(RANDOM_LOGIT, measure)] = mean_with_interval(
                [line[field(RANDOM_LOGIT, measure)] for line in lines], image_list)[0]
        found[run.folder] = values
    return found
