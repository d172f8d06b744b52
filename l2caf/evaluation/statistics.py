"""Is a number of the table a finding or noise? Each score of the table as a statistic of
per-unit samples, and its 95% bootstrap interval over images. numpy only; no run folders
(l2caf.runs.localization gathers the samples) and no TensorFlow.

A score is a statistic of its column's per-unit values (l2caf.evaluation.table: each
column's unit, image or heatmap, and outcome): the mean of a right/wrong or value column,
times its scale; for MaxBoxAcc the best threshold's percentage of right images, for
MaxBoxAccV2 the mean over its IoUs of that. `column_value` computes it exactly as the table
does (the table's own number, up to the last bits of a float).

The bootstrap resamples the images with replacement, all the heatmaps of an image together
(a cluster bootstrap: an image's heatmaps are not independent), recomputes the statistic on
each resample (for MaxBoxAcc and MaxBoxAccV2 the best threshold is chosen again in each
resample, which makes the interval slightly optimistic: the best of many thresholds is
biased up) and takes the percentile interval. It is vectorised over the resamples: a
resample is a row of counts (how often each image was drawn), so the sums of every column
over every resample of a chunk are one matrix product, counts (resamples x images) times
the images' sums (images x values); a column's statistic is then its sums over its number
of units in the resample (the ratio estimator of a cluster bootstrap), reduced (the best
threshold) for all the resamples at once. The resamples are drawn chunk by chunk from one
numpy Generator of the seed, the chunks' sizes depending only on the number of images, so
that a seed gives the same intervals to the digit on any machine.
"""
import collections
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from l2caf.evaluation.table import BEST_THRESHOLD, Column, scores

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
CONFIDENCE = 0.95
# Images drawn per chunk of resamples, at most (a chunk's counts: 8 bytes each).
CHUNK_DRAWS = 1 << 22

Samples = collections.namedtuple("Samples", ["units", "values"])
Samples.__doc__ = """A column's per-unit values in one run. units: a list of unique (image,
class id) keys, class id None for the columns of one value per image (their image is what
the bootstrap resamples). values: an array whose first axis is the units: floats (units,)
for the right/wrong (1 for what the column counts: an error counts the wrong ones) and value
columns; 0/1 (booleans, or floats) (units, IoUs, thresholds) for the best-threshold ones
(MaxBoxAcc: one IoU)."""

RunSamples = collections.namedtuple("RunSamples", ["run", "network", "fingerprint",
                                                   "samples"])
RunSamples.__doc__ = """What the statistics know of a run: run, its name (the table's run
column); network and fingerprint, what makes two runs' predictions the same ({what: digest}
of the weights and label list, as far as the run recorded them); samples, {column key:
`Samples`} of the columns with values."""

Interval = collections.namedtuple("Interval", ["low", "high"])
Interval.__doc__ = """A percentile bootstrap interval, in the column's units."""


def statistic(column: Column, means: np.ndarray) -> np.ndarray:
    """The column's score from the means over units of its flattened values (..., values):
    times the scale; for a best-threshold column, the means (..., IoUs x thresholds) become
    the mean over the IoUs of the best threshold's mean."""
    if column.outcome == BEST_THRESHOLD:
        return column.scale * means.max(axis=-1).mean(axis=-1)
    return column.scale * means[..., 0]


def _flat(values):
    """The values as (units, values per unit), in their own dtype (0/1 hits may stay
    booleans: an eighth of the memory)."""
    values = np.asarray(values)
    return values.reshape(len(values), -1)


def value_shape(column: Column, samples: Samples) -> Tuple[int, ...]:
    """The shape of one unit's values, as `statistic` takes their means: (1,) or (IoUs,
    thresholds)."""
    values = np.asarray(samples.values)
    return values.shape[1:] if column.outcome == BEST_THRESHOLD else (1,)


def column_value(column: Column, samples: Samples) -> Optional[float]:
    """The column's score over its samples, as the table computes it; None without units."""
    if not len(samples.units):
        return None
    means = _flat(samples.values).mean(axis=0, dtype=np.float64)
    return float(statistic(column, means.reshape(value_shape(column, samples))))


def image_of(unit) -> str:
    """The image of a unit key (image, class id): what the bootstrap resamples."""
    return unit[0]


def cluster_sums(values: np.ndarray, clusters: np.ndarray, count: int
                 ) -> Tuple[np.ndarray, np.ndarray]:
    """(sums (count, values per unit), units (count,)): per cluster (image), the sum of its
    units' flattened values and their number. clusters: each unit's cluster index. With one
    unit per image in order, the sums are the values as they are (booleans stay so)."""
    flat = _flat(values)
    if len(clusters) == count and np.array_equal(clusters, np.arange(count)):
        return flat, np.ones(count)  # one unit per image, in order: the values themselves
    flat = flat.astype(np.float64)
    sums = np.zeros((count, flat.shape[1]))
    if len(flat):
        order = np.argsort(clusters, kind="stable")
        ordered = clusters[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        sums[ordered[starts]] = np.add.reduceat(flat[order], starts, axis=0)
    return sums, np.bincount(clusters, minlength=count).astype(np.float64)


def resample_counts(clusters: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """The bootstrap's resamples of `clusters` images, chunk by chunk: float arrays (chunk,
    clusters), how often each image is drawn in each resample (each row sums to clusters).
    The same for the same arguments, on any machine."""
    rng = np.random.default_rng(seed)
    chunk = max(1, min(resamples, CHUNK_DRAWS // max(clusters, 1)))
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        drawn = rng.integers(0, clusters, size=(size, clusters))
        drawn += (np.arange(size) * clusters)[:, None]
        yield np.bincount(drawn.ravel(), minlength=size * clusters).reshape(
            size, clusters).astype(np.float64)


Block = collections.namedtuple("Block", ["column", "sums", "units", "shape"])
Block.__doc__ = """One statistic to resample: its column, the per-image sums and unit counts
of `cluster_sums`, and the shape of one unit's values (`value_shape`)."""


def clusters_of(units: Sequence, images: Mapping[str, int]) -> np.ndarray:
    """Each unit's image index in images {image: index}."""
    return np.fromiter((images[image_of(unit)] for unit in units), dtype=np.int64,
                       count=len(units))


def block_of(column: Column, samples: Samples, images: Mapping[str, int],
             clusters: Optional[np.ndarray] = None) -> Block:
    """The `Block` of a column's samples over the images {image: index} (all of theirs;
    clusters: `clusters_of` its units, when known)."""
    if clusters is None:
        clusters = clusters_of(samples.units, images)
    sums, units = cluster_sums(samples.values, clusters, len(images))
    return Block(column, sums, units, value_shape(column, samples))


def patterns(sums: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(the distinct rows of sums, each row's index among them): the images of a
    best-threshold column mostly share a few patterns of right thresholds, so that summing
    the patterns' counts and then the patterns is far less work than summing the images."""
    rows = np.ascontiguousarray(sums)
    # Each row's bytes are its key (booleans packed eight to a byte).
    if rows.dtype == bool:
        rows_bytes = np.ascontiguousarray(np.packbits(rows, axis=1))
    else:
        rows_bytes = rows
    keys = rows_bytes.view(np.dtype((np.void, rows_bytes.dtype.itemsize * rows_bytes.shape[1])))
    _, first, inverse = np.unique(keys.ravel(), return_index=True, return_inverse=True)
    return rows[first].astype(np.float64), inverse.reshape(-1)


def resampled(blocks: Sequence[Block], clusters: int, resamples: int, seed: int
              ) -> List[np.ndarray]:
    """Each block's statistic on each of `resamples` bootstrap resamples of the `clusters`
    images (all blocks on the same resamples): [array (resamples,)], NaN for a resample
    that holds no unit of the block.

    Per chunk of resamples, the counts (resamples x images) times the images' sums of the
    narrow blocks (one value per unit) is one matrix product; a wide block (a value per
    threshold) whose images fall into at most half as many distinct patterns is summed over
    its patterns' counts instead."""
    wide = {}
    for index, block in enumerate(blocks):
        if block.sums.shape[1] > 1:
            distinct, inverse = patterns(block.sums)
            if 2 * len(distinct) <= clusters:
                wide[index] = (distinct, inverse)
    narrow = [index for index in range(len(blocks)) if index not in wide]
    sums = np.concatenate([blocks[index].sums.astype(np.float64) for index in narrow]
                          + [np.zeros((clusters, 0))], axis=1)
    bounds = dict(zip(narrow, np.cumsum([0] + [blocks[index].sums.shape[1]
                                               for index in narrow])))
    units = np.stack([block.units for block in blocks], axis=1)
    results: List[List[np.ndarray]] = [[] for _ in blocks]
    for counts in resample_counts(clusters, resamples, seed):
        narrow_sums, resampled_units = counts @ sums, counts @ units
        for index, block in enumerate(blocks):
            if index in wide:
                distinct, inverse = wide[index]
                rows = (inverse[None, :] + len(distinct) * np.arange(len(counts))[:, None])
                pattern_counts = np.bincount(rows.ravel(), weights=counts.ravel(),
                                             minlength=len(counts) * len(distinct))
                block_sums = pattern_counts.reshape(len(counts), len(distinct)) @ distinct
            else:
                start = bounds[index]
                block_sums = narrow_sums[:, start:start + block.sums.shape[1]]
            with np.errstate(invalid="ignore", divide="ignore"):
                means = block_sums / resampled_units[:, index:index + 1]
            results[index].append(statistic(block.column,
                                            means.reshape((len(counts),) + block.shape)))
    return [np.concatenate(parts) for parts in results]


def percentile_interval(values: np.ndarray, confidence: float = CONFIDENCE
                        ) -> Optional[Interval]:
    """The percentile interval of a bootstrap's statistics (NaN ones left out), or None when
    fewer than half of them are numbers."""
    finite = values[np.isfinite(values)]
    if not len(finite) or len(finite) < len(values) / 2.0:
        return None
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return Interval(float(low), float(high))


def run_intervals(samples: Mapping[str, Samples], resamples: int = DEFAULT_RESAMPLES,
                  seed: int = DEFAULT_SEED, not_made: Sequence[str] = ()
                  ) -> Tuple[Dict[str, Optional[Interval]], List[str]]:
    """({score key: its `Interval`, or None}, notes) of a run's samples ({column key:
    `Samples`}): the 95% percentile bootstrap interval over the run's images of every score
    of the table, on `resamples` resamples drawn with `seed`. A score without values, or
    whose values are of a single image, has none, and a note says so (but for the scores
    `not_made`, which the table does not make for the run: MaxBoxAccV2 outside 'wsol', the
    sanity checks of a run never checked)."""
    intervals: Dict[str, Optional[Interval]] = collections.OrderedDict(
        (column.key, None) for column in scores())
    # The columns of one unit each share their list of units: each list is read once.
    unit_lists = {id(found.units): found.units for found in samples.values()}
    images = sorted({image_of(unit) for units in unit_lists.values() for unit in units})
    index = {image: position for position, image in enumerate(images)}
    clusters = {key: clusters_of(units, index) for key, units in unit_lists.items()}
    blocks, without, single = [], [], []
    for column in scores():
        column_samples = samples.get(column.key)
        if column_samples is None or not len(column_samples.units):
            if column.key not in not_made:
                without.append(column.label)
            continue
        found = clusters[id(column_samples.units)]
        if np.all(found == found[0]):
            single.append(column.label)
        else:
            blocks.append(block_of(column, column_samples, index, found))
    notes = []
    if single:
        notes.append("no interval for %s: the values of a single image (a bootstrap over "
                     "images needs two or more)" % ", ".join(single))
    if without:
        notes.append("no interval for %s: no values" % ", ".join(without))
    if blocks and resamples > 0:
        for block, values in zip(blocks, resampled(blocks, len(images), resamples, seed)):
            intervals[block.column.key] = percentile_interval(values)
    return intervals, notes
