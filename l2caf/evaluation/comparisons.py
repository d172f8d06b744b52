"""Is the difference between two runs real, and do the metrics agree? Paired comparisons of
the runs of a table, and the agreement of its columns' rankings. No run folders (the samples
are l2caf.evaluation.statistics.RunSamples), no TensorFlow; scipy.special for the t and
binomial distribution functions.

**Paired comparisons.** Runs of different methods on the same images with the same network
are paired: each (image, class) has a value in both. For every two paired runs A and B and
every score both have, over the units (images, or (image, class) heatmaps) both have:

* the difference A - B of the score recomputed on those units (the table's statistic:
  l2caf.evaluation.statistics), and its 95% paired-bootstrap interval: the common images
  resampled with replacement, all their heatmaps together, the same resample for A and B;
* a two-sided p-value: for right/wrong columns the exact McNemar test on the discordant
  units (A right and B wrong, or the reverse: a two-sided binomial test at 1/2); for value
  columns the paired t-test over images (the per-image sums of the differences, with the
  cluster-robust standard error of their ratio to the units: with one unit per image, the
  paired t-test itself); for MaxBoxAcc and MaxBoxAccV2, whose best threshold is chosen again
  in each resample, a normal approximation with the paired bootstrap's standard error;
* Holm's step-down correction over all the comparisons of the table, and the verdict at 5%
  after it: "A better", "B better" (by the column's better direction) or "no difference at
  5%".

Runs of other networks, other weights or label lists, or without an image in common are not
compared; the table says why.

**Agreement** (Tomsett et al., "Sanity Checks for Saliency Metrics", AAAI 2020), for three
runs or more: the rank of each run under each column (1 the best, ties sharing their mean
rank), Kendall's tau-b between every two columns' rankings, and Krippendorff's alpha
(ordinal) with each metric a rater that ranks the runs on each image (the images all the runs
share; a heatmap column's value on an image is the mean over its heatmaps all runs have, a
best-threshold column's the outcome at the run's best threshold).
"""
import collections
import csv
import io
import json
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from l2caf.evaluation.statistics import (DEFAULT_RESAMPLES, DEFAULT_SEED, Block, RunSamples,
                                         Samples, block_of, column_value, image_of,
                                         percentile_interval, resampled, value_shape)
from l2caf.evaluation.table import BEST_THRESHOLD, COLUMNS, RIGHT_WRONG, Column, name, scores
from l2caf.files import write_atomically

SIGNIFICANCE = 0.05
VERDICTS = ("A better", "B better", "no difference at 5%")
MCNEMAR, PAIRED_T, BOOTSTRAP_Z = ("exact McNemar", "paired t over images",
                                  "bootstrap normal approximation")

Comparison = collections.namedtuple("Comparison", [
    "run_a", "run_b", "column", "difference", "ci_low", "ci_high", "images", "units", "test",
    "detail", "p_value", "p_holm", "verdict"])
Comparison.__doc__ = """One column of two paired runs A and B. difference: A - B over the
units both have, in the column's units; ci_low, ci_high: its 95% paired-bootstrap interval
(None without one); images, units: how many images and units (images or heatmaps) both have;
test: MCNEMAR, PAIRED_T or BOOTSTRAP_Z; detail: the test's numbers as text (discordant
units, t and degrees of freedom, z); p_value, p_holm: the two-sided p-value and its Holm
correction over the table (None when there is no test); verdict: one of VERDICTS, or '-'
without a test."""

NotCompared = collections.namedtuple("NotCompared", ["run_a", "run_b", "reason"])
NotCompared.__doc__ = """Two runs that are not paired, and why."""

ComparisonTable = collections.namedtuple("ComparisonTable", [
    "comparisons", "not_compared", "notes", "resamples", "seed"])
ComparisonTable.__doc__ = """Every comparison of a table's runs: `Comparison`s (pairs in
table order, A the earlier run, columns in table order), `NotCompared` pairs, notes (columns
left out of a pair, untestable ones), and the bootstrap's resamples and seed."""

Agreement = collections.namedtuple("Agreement", [
    "runs", "methods", "columns", "ranks", "ranked_columns", "kendall", "alpha", "raters",
    "images", "notes"])
Agreement.__doc__ = """How the columns rank the runs. runs, methods: the table's; columns:
the score keys with a value for every run; ranks: {column key: [rank of each run]} (1 the
best); ranked_columns: the columns whose ranking Kendall's tau compares (those that do not
tie every run); kendall: [[tau-b]] between them (None where undefined); alpha: Krippendorff's
alpha (ordinal) of the `raters` (column keys that rank the runs differently on some image)
over `images` images, or None; notes: why a column or alpha is left out."""


# The tests.

def mcnemar_exact(a_only: int, b_only: int) -> float:
    """The exact McNemar test's two-sided p-value of a_only units where only A counts (is
    right, or for an error column wrong) and b_only where only B does: twice the binomial
    tail of the smaller count at 1/2, at most 1 (1 without discordant units)."""
    from scipy.special import bdtr  # the binomial distribution function
    discordant = a_only + b_only
    if not discordant:
        return 1.0
    return float(min(1.0, 2.0 * bdtr(min(a_only, b_only), discordant, 0.5)))


def paired_t(differences: np.ndarray, units: np.ndarray) -> Optional[Tuple[float, int, float]]:
    """The paired t-test over images of per-image sums of differences (A - B, over the
    image's units) and numbers of units: (t, degrees of freedom, two-sided p-value), or None
    with fewer than two images with units. The mean difference d = sum(differences) /
    sum(units) has the cluster-robust standard error sqrt(n / (n - 1) sum((differences -
    d units)^2)) / sum(units) over the n images; with one unit per image this is the paired
    t-test (s / sqrt(n))."""
    from scipy.special import stdtr  # Student's t distribution function
    keep = units > 0
    differences, units = np.asarray(differences, np.float64)[keep], units[keep]
    count = len(units)
    if count < 2:
        return None
    mean = differences.sum() / units.sum()
    error = math.sqrt(count / (count - 1.0) * float(np.sum((differences - mean * units) ** 2))
                      ) / units.sum()
    if error == 0:
        return (0.0 if mean == 0 else math.copysign(math.inf, mean)), count - 1, \
            (1.0 if mean == 0 else 0.0)
    t = mean / error
    return float(t), count - 1, float(2.0 * stdtr(count - 1, -abs(t)))


def normal_p_value(difference: float, error: float) -> float:
    """Two-sided p-value of a difference with a standard error, normal approximation."""
    if error == 0 or not math.isfinite(error):
        return 1.0 if difference == 0 else 0.0
    return math.erfc(abs(difference / error) / math.sqrt(2.0))


def holm(p_values: Sequence[float]) -> List[float]:
    """Holm's step-down adjusted p-values, in the order given: the k-th smallest times (m -
    k + 1), never below the one before it, at most 1."""
    order = np.argsort(np.asarray(p_values, dtype=np.float64), kind="stable")
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def _verdict(column: Column, difference: float, p_holm: Optional[float]) -> str:
    if p_holm is None:
        return "-"
    if p_holm >= SIGNIFICANCE or difference == 0:
        return VERDICTS[2]
    a_higher = difference > 0
    return VERDICTS[0] if a_higher == (column.better == "higher") else VERDICTS[1]


# Paired comparisons.

def _unit_order(unit):
    image, class_id = unit
    return (image, -1 if class_id is None else 0, class_id if class_id is not None else 0)


def not_paired(a: RunSamples, b: RunSamples) -> Optional[str]:
    """Why runs a and b are not paired (other networks, weights or label lists, no image in
    common), or None when they are."""
    if a.network != b.network:
        return "other networks (%s, %s)" % (a.network, b.network)
    for what, digest in sorted(a.fingerprint.items()):
        other = b.fingerprint.get(what)
        if other is not None and other != digest:
            return "other %s" % what.replace("_", " ")
    if not set(_images(a)) & set(_images(b)):
        return "no image in common"
    return None


def _images(run: RunSamples) -> List[str]:
    return sorted({image_of(unit) for samples in run.samples.values() for unit in samples.units})


def _aligned(samples: Samples, units: Sequence) -> Samples:
    position = {unit: index for index, unit in enumerate(samples.units)}
    rows = np.fromiter((position[unit] for unit in units), dtype=np.int64, count=len(units))
    return Samples(list(units), np.asarray(samples.values)[rows])


# A column of a pair for its test: the units per image (images x 1) and each unit's image.
_ClusterBlock = collections.namedtuple("_ClusterBlock", ["units", "clusters"])


def _pair_columns(a: RunSamples, b: RunSamples):
    """[(column, A's Samples, B's Samples on the same units)] of the columns both runs have
    units in common in, with values that differ on some unit (the classification errors,
    the network's, never differ), and notes for the others."""
    columns, notes, same = [], [], []
    for column in scores():
        left, right = a.samples.get(column.key), b.samples.get(column.key)
        if left is None or right is None or not len(left.units) or not len(right.units):
            if (left is not None and len(left.units)) or (right is not None and
                                                          len(right.units)):
                notes.append("%s not compared: %s has no values"
                             % (column.label, b.run if left is not None and len(left.units)
                                else a.run))
            continue
        common = sorted(set(left.units) & set(right.units), key=_unit_order)
        if not common:
            notes.append("%s not compared: no %s in common" % (
                column.label, "image" if column.unit == "image" else "(image, class) pair"))
            continue
        left, right = _aligned(left, common), _aligned(right, common)
        if np.array_equal(left.values, right.values):
            same.append(column.label)
            continue
        columns.append((column, left, right))
    if same:
        notes.append("not compared, the same in both runs on every unit: %s" % ", ".join(same))
    return columns, notes


def _test(column, left, right, block, differences):
    """(test, detail, p-value) of one column of a pair, or (test, reason, None)."""
    images = int(np.count_nonzero(block.units))
    if column.outcome == RIGHT_WRONG:
        a_only = int(np.sum((left.values == 1) & (right.values == 0)))
        b_only = int(np.sum((left.values == 0) & (right.values == 1)))
        return MCNEMAR, "%d vs %d discordant" % (a_only, b_only), mcnemar_exact(a_only, b_only)
    if images < 2:
        return (PAIRED_T if column.outcome != BEST_THRESHOLD else BOOTSTRAP_Z), \
            "a single image", None
    if column.outcome == BEST_THRESHOLD:
        finite = differences[np.isfinite(differences)]
        if len(finite) < 2:
            return BOOTSTRAP_Z, "no bootstrap", None
        error = float(np.std(finite, ddof=1))
        difference = float(column_value(column, left) - column_value(column, right))
        z = difference / error if error else (0.0 if difference == 0 else math.inf)
        return BOOTSTRAP_Z, "z = %.2f" % z, normal_p_value(difference, error)
    clusters = block.clusters
    summed = np.zeros(len(block.units))
    np.add.at(summed, clusters, left.values - right.values)
    t, degrees, p_value = paired_t(summed, block.units)
    return PAIRED_T, "t = %.2f, %d df" % (t, degrees), p_value


def compare_pair(a: RunSamples, b: RunSamples, resamples: int = DEFAULT_RESAMPLES,
                 seed: int = DEFAULT_SEED) -> Tuple[List[Comparison], List[str]]:
    """(the `Comparison`s of every column two paired runs have in common, before Holm's
    correction (p_holm and verdict None), notes)."""
    columns, notes = _pair_columns(a, b)
    if not columns:
        return [], notes
    images = sorted({image_of(unit) for _, left, _ in columns for unit in left.units})
    index = {image: position for position, image in enumerate(images)}
    blocks: List[Block] = []
    for column, left, right in columns:
        blocks += [block_of(column, left, index), block_of(column, right, index)]
    statistics = resampled(blocks, len(images), resamples, seed) \
        if len(images) > 1 and resamples > 0 else [np.full(0, np.nan)] * len(blocks)
    comparisons = []
    for number, (column, left, right) in enumerate(columns):
        block = _ClusterBlock(blocks[2 * number].units,
                              np.array([index[image_of(unit)] for unit in left.units]))
        differences = statistics[2 * number] - statistics[2 * number + 1]
        interval = percentile_interval(differences) if len(differences) else None
        test, detail, p_value = _test(column, left, right, block, differences)
        if p_value is None:
            notes.append("%s: no test (%s)" % (column.label, detail))
        comparisons.append(Comparison(
            a.run, b.run, column.key,
            float(column_value(column, left) - column_value(column, right)),
            interval.low if interval else None, interval.high if interval else None,
            len({image_of(unit) for unit in left.units}), len(left.units), test, detail,
            p_value, None, None))
    return comparisons, notes



def compare_runs(runs: Sequence[RunSamples], resamples: int = DEFAULT_RESAMPLES,
                 seed: int = DEFAULT_SEED) -> ComparisonTable:
    """The `ComparisonTable` of every two runs (in table order): paired ones compared column
    by column, with Holm's correction over all the comparisons that have a p-value."""
    comparisons: List[Comparison] = []
    not_compared = []
    pairs_of: Dict[str, List[str]] = collections.OrderedDict()  # note: the pairs it is of
    compared = 0
    for first in range(len(runs)):
        for second in range(first + 1, len(runs)):
            a, b = runs[first], runs[second]
            reason = not_paired(a, b)
            if reason:
                not_compared.append(NotCompared(a.run, b.run, reason))
                continue
            found, pair_notes = compare_pair(a, b, resamples, seed)
            comparisons += found
            compared += 1
            for note in pair_notes:
                pairs_of.setdefault(note, []).append("%s vs %s" % (a.run, b.run))
    notes = ["%s (%s)" % (note, "every pair" if len(pairs) == compared > 1 else "; ".join(pairs))
             for note, pairs in pairs_of.items()]
    tested = [index for index, comparison in enumerate(comparisons)
              if comparison.p_value is not None]
    adjusted = dict(zip(tested, holm([comparisons[index].p_value for index in tested])))
    comparisons = [comparison._replace(
        p_holm=adjusted.get(index),
        verdict=_verdict(COLUMNS[comparison.column], comparison.difference,
                         adjusted.get(index)))
        for index, comparison in enumerate(comparisons)]
    return ComparisonTable(comparisons, not_compared, notes, resamples, seed)


# Agreement.

def rank_rows(values: np.ndarray, better: str) -> np.ndarray:
    """The rank of each value within its row (values: (rows, runs)), 1 the best by `better`
    ("higher" or "lower"), ties sharing their mean rank."""
    keys = -np.asarray(values, np.float64) if better == "higher" else \
        np.asarray(values, np.float64)
    below = (keys[:, None, :] < keys[:, :, None]).sum(axis=2)
    equal = (keys[:, None, :] == keys[:, :, None]).sum(axis=2)
    return below + (equal + 1) / 2.0


def ranks(values: Sequence[float], better: str) -> List[float]:
    """The rank of each value (1 the best by `better`, "higher" or "lower"), ties sharing
    their mean rank; values equal to 12 significant digits tie (the table's numbers, made
    by different sums, may differ in their last bits)."""
    rounded = np.array([[float("%.12g" % value) for value in values]])
    return [float(rank) for rank in rank_rows(rounded, better)[0]]


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> Optional[float]:
    """Kendall's tau-b of two rankings: (concordant - discordant) / sqrt((pairs - ties in x)
    (pairs - ties in y)); None when a ranking ties everything."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    upper = np.triu_indices(len(x), 1)
    dx = np.sign(x[:, None] - x[None, :])[upper]
    dy = np.sign(y[:, None] - y[None, :])[upper]
    denominator = math.sqrt(float(np.count_nonzero(dx)) * float(np.count_nonzero(dy)))
    if denominator == 0:
        return None
    return float(np.sum(dx * dy) / denominator)


def krippendorff_alpha(data, level: str = "ordinal") -> Optional[float]:
    """Krippendorff's alpha of reliability data (raters x units, NaN where a rater gave no
    value), at the `level` of measurement: "nominal", "ordinal" or "interval"
    (Krippendorff, "Computing Krippendorff's Alpha-Reliability", 2011): 1 - (n - 1) sum o_ck
    d_ck / sum n_c n_k d_ck, o the coincidence matrix of the values pairable within units
    (units with two values or more), n_c its margins, d the level's squared distance (ordinal:
    (sum of n_g from c to k - (n_c + n_k) / 2)^2). None without pairable values or without
    disagreement to expect (a single value)."""
    data = np.asarray(data, dtype=np.float64)
    present = np.isfinite(data)
    values = np.unique(data[present])
    pairable = present.sum(axis=0) >= 2
    if len(values) < 2 or not pairable.any():
        return None
    counts = np.stack([(data[:, pairable] == value).sum(axis=0) for value in values], axis=1
                      ).astype(np.float64)  # units x values
    per_unit = counts.sum(axis=1)
    weighted = counts / (per_unit - 1.0)[:, None]
    coincidences = weighted.T @ counts - np.diag(weighted.sum(axis=0))
    margins = coincidences.sum(axis=1)
    total = margins.sum()
    if level == "nominal":
        distance = 1.0 - np.eye(len(values))
    elif level == "interval":
        distance = (values[:, None] - values[None, :]) ** 2
    elif level == "ordinal":
        cumulative = np.concatenate([[0.0], np.cumsum(margins)])
        low = np.minimum.outer(np.arange(len(values)), np.arange(len(values)))
        high = np.maximum.outer(np.arange(len(values)), np.arange(len(values)))
        between = cumulative[high + 1] - cumulative[low]
        distance = (between - (margins[:, None] + margins[None, :]) / 2.0) ** 2
    else:
        raise ValueError("unknown level %r; choose nominal, ordinal or interval" % level)
    expected = float(np.sum(np.outer(margins, margins) * distance))
    if expected == 0:
        return None
    return float(1.0 - (total - 1.0) * float(np.sum(coincidences * distance)) / expected)


def image_values(column: Column, samples: Samples, units: Sequence) -> Dict[str, float]:
    """{image: the column's value on it} over `units` (unit keys the samples hold): the mean
    over the image's units; for a best-threshold column, the outcome at the best threshold
    of all the samples (the mean over the IoUs)."""
    values = np.asarray(samples.values, dtype=np.float64)
    if column.outcome == BEST_THRESHOLD:
        shaped = values.reshape((len(values),) + value_shape(column, samples))
        best = np.argmax(shaped.mean(axis=0), axis=-1)  # per IoU, the first best threshold
        values = shaped[:, np.arange(shaped.shape[1]), best].mean(axis=1)
    position = {unit: index for index, unit in enumerate(samples.units)}
    sums: Dict[str, List[float]] = collections.OrderedDict()
    for unit in units:
        sums.setdefault(image_of(unit), []).append(float(values[position[unit]]))
    return {image: float(np.mean(found)) for image, found in sums.items()}


def agreement(rows: Sequence[Dict[str, Any]], runs: Sequence[RunSamples]) -> Agreement:
    """The `Agreement` of a table's rows and their runs' samples (three runs or more)."""
    names = [row["run"] for row in rows]
    notes = []
    # The sanity checks are left out: they test a method against its network, not how well
    # a map shows what matters on an image (the random maps pass the random-logit test).
    columns = [column for column in scores() if column.family != "sanity"
               and all(row.get(column.key) is not None for row in rows)]
    rank_table = collections.OrderedDict(
        (column.key, ranks([row[column.key] for row in rows], column.better))
        for column in columns)
    ranked = [column.key for column in columns if len(set(rank_table[column.key])) > 1]
    tied = [COLUMNS[key].label for key in rank_table if key not in ranked]
    if tied:
        notes.append("Kendall's tau leaves out %s: every run has the same value"
                     % ", ".join(tied))
    kendall = [[kendall_tau_b(rank_table[first], rank_table[second]) for second in ranked]
               for first in ranked]
    alpha, raters, images = None, [], 0
    unpaired = [(a.run, b.run, reason) for position, a in enumerate(runs)
                for b in runs[position + 1:] for reason in [not_paired(a, b)] if reason]
    if unpaired:
        notes.append("Krippendorff's alpha not computed: %s and %s are not paired (%s)"
                     % unpaired[0])
    else:
        alpha, raters, images, alpha_notes = _alpha(columns, runs)
        notes += alpha_notes
    return Agreement(names, [row["method"] for row in rows], [column.key for column in columns],
                     rank_table, ranked, kendall, alpha, raters, images, notes)


def _alpha(columns: Sequence[Column], runs: Sequence[RunSamples]):
    """(alpha, rater keys, images, notes): each column a rater ranking the runs on each image
    all runs share (its units all runs have)."""
    ratings, raters, same = [], [], []
    images = sorted(set.intersection(*[set(_images(run)) for run in runs]))
    position = {image: index for index, image in enumerate(images)}
    for column in columns:
        if any(column.key not in run.samples for run in runs):
            continue
        units = sorted(set.intersection(*[set(run.samples[column.key].units) for run in runs]),
                       key=_unit_order)
        per_run = [image_values(column, run.samples[column.key], units) for run in runs]
        rated_images = [image for image in per_run[0] if image in position]
        values = np.array([[found[image] for found in per_run] for image in rated_images])
        if not len(values) or not np.any(values != values[:, :1]):
            same.append(column.label)
            continue
        rated = np.full((len(images), len(runs)), np.nan)
        rated[[position[image] for image in rated_images]] = rank_rows(values, column.better)
        raters.append(column.key)
        ratings.append(rated.ravel())
    notes = []
    if same:
        notes.append("Krippendorff's alpha leaves out %s: the same for every run on every "
                     "image" % ", ".join(same))
    if len(raters) < 2:
        notes.append("Krippendorff's alpha not computed: fewer than two metrics rank the runs")
        return None, raters, len(images), notes
    alpha = krippendorff_alpha(np.array(ratings), "ordinal")
    return alpha, raters, len(images), notes


# Output.

def _number(column: Column, value: Optional[float]) -> str:
    return "-" if value is None else column.format % value


def _p(value: Optional[float]) -> str:
    if value is None:
        return "-"
    return "<0.001" if value < 0.001 else "%.3f" % value


def markdown_comparisons(table: ComparisonTable) -> str:
    """The comparisons as a Markdown table, what it is, and its notes."""
    if not table.comparisons:
        lines = ["No two runs were compared."]
    else:
        lines = ["| A | B | column | A - B [95% interval] | units | test | p | p (Holm) | "
                 "verdict |", "|" + "---|" * 9]
    for comparison in table.comparisons:
        column = COLUMNS[comparison.column]
        interval = "" if comparison.ci_low is None else " [%s, %s]" % (
            _number(column, comparison.ci_low), _number(column, comparison.ci_high))
        units = "%d images" % comparison.images if column.unit == "image" else \
            "%d heatmaps of %d images" % (comparison.units, comparison.images)
        lines.append("| %s | %s | %s (%s is better) | %s%s | %s | %s: %s | %s | %s | %s |" % (
            comparison.run_a, comparison.run_b, name(column.key), column.better,
            _number(column, comparison.difference), interval, units, comparison.test,
            comparison.detail, _p(comparison.p_value), _p(comparison.p_holm),
            comparison.verdict))
    tested = sum(comparison.p_value is not None for comparison in table.comparisons)
    if table.comparisons:
        lines += ["", "A - B over the units both runs have, with its 95%% paired-bootstrap "
                  "interval over the images (%d resamples, seed %d); p: exact McNemar test on "
                  "the discordant units (right/wrong columns), paired t-test over images "
                  "(value columns), normal approximation with the bootstrap's standard error "
                  "(%s, %s); Holm's correction over the %d tested comparisons; the verdict at "
                  "5%% after it." % (table.resamples, table.seed, name("max_box_acc"),
                                     name("max_box_acc_v2"), tested)]
    notes = ["- not compared: %s and %s: %s" % found for found in table.not_compared]
    notes += ["- %s" % note for note in table.notes]
    if notes:
        lines += ["", "Notes:"] + notes
    return "\n".join(lines)


def comparison_records(table: ComparisonTable) -> List[Dict[str, Any]]:
    """The comparisons as flat records (the CSV's and JSON's): the pairs compared, then those
    not compared (verdict 'not compared', reason)."""
    records = []
    for comparison in table.comparisons:
        column = COLUMNS[comparison.column]
        records.append(collections.OrderedDict([
            ("run_a", comparison.run_a), ("run_b", comparison.run_b),
            ("column", comparison.column), ("label", column.label), ("better", column.better),
            ("unit", column.unit), ("difference", comparison.difference),
            ("ci_low", comparison.ci_low), ("ci_high", comparison.ci_high),
            ("images", comparison.images), ("units", comparison.units),
            ("test", comparison.test), ("detail", comparison.detail),
            ("p_value", comparison.p_value), ("p_holm", comparison.p_holm),
            ("verdict", comparison.verdict), ("reason", None)]))
    for found in table.not_compared:
        record = collections.OrderedDict((key, None) for key in records[0]) if records else \
            collections.OrderedDict((key, None) for key in (
                "run_a", "run_b", "column", "label", "better", "unit", "difference", "ci_low",
                "ci_high", "images", "units", "test", "detail", "p_value", "p_holm",
                "verdict", "reason"))
        record.update(run_a=found.run_a, run_b=found.run_b, verdict="not compared",
                      reason=found.reason)
        records.append(record)
    return records


def write_comparisons(prefix: str, table: ComparisonTable) -> List[str]:
    """Writes PREFIX_comparisons.csv and .json (the JSON also holds the settings and notes);
    returns their paths."""
    records = comparison_records(table)
    fields = list(records[0]) if records else ["run_a", "run_b", "verdict", "reason"]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields)
    writer.writeheader()
    writer.writerows(records)
    csv_path, json_path = prefix + "_comparisons.csv", prefix + "_comparisons.json"
    write_atomically(csv_path, lambda stream: stream.write(text.getvalue().encode("utf-8")))
    document = collections.OrderedDict([
        ("resamples", table.resamples), ("seed", table.seed), ("significance", SIGNIFICANCE),
        ("comparisons", records), ("notes", table.notes)])
    encoded = (json.dumps(document, indent=2, allow_nan=False) + "\n").encode("utf-8")
    write_atomically(json_path, lambda stream: stream.write(encoded))
    return [csv_path, json_path]


def _tau(value: Optional[float]) -> str:
    return "-" if value is None else "%.2f" % value


def markdown_agreement(found: Agreement) -> str:
    """The ranks, the Kendall matrix and Krippendorff's alpha as Markdown."""
    labels = [name(key) for key in found.columns]
    lines = ["Rank of each run under each column (1 the best; ties share their mean rank):", "",
             "| run | method | %s |" % " | ".join(labels), "|" + "---|" * (2 + len(labels))]
    for index, (run, method) in enumerate(zip(found.runs, found.methods)):
        lines.append("| %s | %s | %s |" % (run, method, " | ".join(
            "%g" % found.ranks[key][index] for key in found.columns)))
    if found.ranked_columns:
        ranked = [name(key) for key in found.ranked_columns]
        lines += ["", "Kendall's tau-b between the columns' rankings of the runs (1: the same "
                  "order, -1: the reverse):", "", "| | %s |" % " | ".join(ranked),
                  "|" + "---|" * (1 + len(ranked))]
        lines += ["| %s | %s |" % (label, " | ".join(_tau(value) for value in row))
                  for label, row in zip(ranked, found.kendall)]
    lines.append("")
    if found.alpha is None:
        lines.append("Krippendorff's alpha (ordinal): -")
    else:
        lines.append("Krippendorff's alpha (ordinal) of the %d metrics as raters ranking the %d "
                     "runs on each of the %d images they share: %.3f (1: the metrics rank the "
                     "runs alike on every image; 0: no more alike than by chance)"
                     % (len(found.raters), len(found.runs), found.images, found.alpha))
    if found.notes:
        lines += ["", "Notes:"] + ["- %s" % note for note in found.notes]
    return "\n".join(lines)


def write_agreement(prefix: str, found: Agreement) -> List[str]:
    """Writes PREFIX_agreement.json; returns its path."""
    document = collections.OrderedDict([
        ("runs", found.runs), ("methods", found.methods), ("columns", found.columns),
        ("ranks", found.ranks), ("kendall_columns", found.ranked_columns),
        ("kendall_tau_b", found.kendall), ("krippendorff_alpha_ordinal", found.alpha),
        ("alpha_raters", found.raters), ("alpha_images", found.images),
        ("notes", found.notes)])
    path = prefix + "_agreement.json"
    encoded = (json.dumps(document, indent=2, allow_nan=False) + "\n").encode("utf-8")
    write_atomically(path, lambda stream: stream.write(encoded))
    return [path]
