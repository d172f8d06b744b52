"""Localisation evaluation of visualiser runs (scripts/evaluate_localization.py): the
paper's table (classification and localisation errors, GT-known accuracy, MaxBoxAcc, and
under the 'wsol' protocol MaxBoxAccV2) from results folders and the annotations: the ILSVRC
bounding-box XMLs, or wsolevaluation's metadata of the same images.

A results folder is what a visualiser wrote: config*.yaml (which network, labels, method and
layer), results*.jsonl (a line per heatmap, with the image's top-5 predictions and size) and
the heatmaps, read from that folder only (see l2caf.runs.folder: a copied or moved folder is
scored with its own heatmaps; one that cannot be used stops the evaluation with the rerun
that repairs it). Shards and their merged results.jsonl may lie side by side: each (image,
class) counts once. The annotations give every image's classes and boxes; the XMLs' object names are
WordNet ids for the ImageNet networks, or the class names of the run's label list, and the
metadata's class labels are class ids.

A run is scored on the images it covers (a partial run says how many of the annotated images
those are), through l2caf.evaluation. When the heatmap of a ground-truth class is missing (a
top-1 sweep without explain_gt, for an image whose class is ranked 2nd to 5th), that class
counts as not localised: the table then marks the scores it affects as bounds (loc errors
"<=", accuracies ">=") and a note says how many images lack which heatmaps.

Beside them: the pointing games (l2caf.evaluation.pointing) over the (image, ground-truth
class) pairs that have a heatmap, and, where the folder holds the scores of
scripts/evaluate_faithfulness.py (faithfulness*.jsonl), the means of deletion and insertion
AUC, Average Drop, Increase in Confidence, Average Gain and ROAD's two AUCs over the heatmaps
scored, and where it holds those of scripts/sanity_check.py (sanity*.jsonl), the mean Spearman
correlations with every block random and for a random logit; a column covering part of the
run says so in a note. The table itself (its columns, Markdown, CSV and JSON) is
l2caf.evaluation.table's.

A command reads each folder's results lines and faithfulness scores once
(`read_snapshot`), so that its table and the curves beside it show the same scores even while
scoring still appends to them. `evaluate_runs` makes the whole table of several runs: the
rows and, with a bootstrap, each score's interval over the run's images
(l2caf.evaluation.statistics), the paired comparisons
of the runs and the agreement of the metrics (l2caf.evaluation.comparisons), from the
per-unit samples each run's scoring keeps (`score_run`).
"""
import collections
import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np
from tqdm import tqdm

from l2caf import data, images
from l2caf.annotations import Annotation, read_annotations
from l2caf.config import Config
from l2caf.errors import ConfigError, RunError
from l2caf.evaluation import (DEFAULT_THRESHOLDS, V2_IOU_THRESHOLDS, BoxAccuracies, Evaluation,
                              ImageOutcomes, ImageRecord, evaluate_records, pointing_scores,
                              record_from_annotation)
from l2caf.evaluation.comparisons import (Agreement, ComparisonTable, agreement,
                                          compare_runs)
from l2caf.evaluation.statistics import (DEFAULT_RESAMPLES, DEFAULT_SEED, RunSamples, Samples,
                                         run_intervals)
from l2caf.evaluation.table import (COLUMNS, LACKING_HEATMAPS, metrics, name, run_notes,
                                    with_intervals)
from l2caf.runs.folder import FILES, HeatmapFiles, kind_pattern
from l2caf.runs.read import read_configs, read_lines, read_scores
from l2caf.runs.sanity import read_sanity, sanity_values

ScoredRun = collections.namedtuple("ScoredRun", ["row", "samples", "faithfulness"])
ScoredRun.__doc__ = """A run's table row, its per-unit samples (an
l2caf.evaluation.statistics.RunSamples: what its intervals and comparisons resample; None
when not asked for) and the faithfulness lines its row was made of ({(image, class_id):
line}, as l2caf.runs.read.read_scores read them: what the curves beside the table draw)."""

Table = collections.namedtuple("Table", ["rows", "comparisons", "agreement", "faithfulness"])
Table.__doc__ = """The table of runs: its rows (with their intervals when there was a
bootstrap), an l2caf.evaluation.comparisons.ComparisonTable of the paired runs and an
Agreement of the metrics (None without a bootstrap; the comparisons None for a single run,
the agreement below three runs), and per row the faithfulness lines it was made of (see
`ScoredRun`): a command reads each folder's scores once, so that its table and its curves
show the same scores even while scoring still writes them."""
# What identifies a run's weights and label list in its config's made_with: two runs whose
# records differ are not paired.
_FINGERPRINT = ("checkpoint_sha256", "labels_sha256")


def default_table_name(protocol: str) -> str:
    """The table's file name (without extension) in the first run folder, by default."""
    return FILES["localization"].stem + protocol


def load_annotations(folder: str) -> Dict[str, Annotation]:
    """{image stem: Annotation} of an annotation folder, XMLs or wsolevaluation metadata;
    RunError if it is neither or is malformed."""
    try:
        return read_annotations(folder)
    except (OSError, ValueError) as error:
        raise RunError("annotations: %s" % error) from None


def class_ids_of(config: Config, config_source: str) -> Dict[str, int]:
    """{annotation object name: class id} of a run: its label list's names, or WordNet ids.
    config_source: the run's config files, as an error names them."""
    try:
        return data.annotation_class_ids(config.labels)
    except (OSError, ValueError) as error:
        raise RunError("labels: %s (named by %s; paths in it are relative to the folder the run "
                       "was started from)" % (error, config_source)) from None


def _image_size(lines):
    """(height, width) of the image of `lines`: their image_size, else the image's own."""
    if lines[0].get("image_size"):
        return tuple(lines[0]["image_size"])
    try:
        return images.read_image(lines[0]["image"]).shape[:2]
    except images.ImageError as error:
        raise RunError("the results lines give no image_size and the image cannot be read: %s"
                       % error) from None


def image_record(lines: List[Dict[str, Any]], annotation: Annotation, class_ids: Mapping[str, int],
                 results_dir: str, files: Optional[HeatmapFiles] = None) -> ImageRecord:
    """The evaluation.ImageRecord of one image from its results lines and its annotation
    (class_ids: see class_ids_of).

    The heatmaps are read from results_dir (files: an open l2caf.runs.folder.HeatmapFiles of it, to
    read each .npz file once). A class-oblivious heatmap (class_id null) serves every class.
    Raises RunError when a heatmap cannot be used (naming the file and the rerun that
    repairs it) or the annotation cannot be this image's: other classes than the run
    recorded, another size, object names that are not the run's classes.
    """
    if files is None:
        with HeatmapFiles(results_dir) as files:
            return image_record(lines, annotation, class_ids, results_dir, files)
    heatmaps = {line.get("class_id"): files.read(line["heatmap"]) for line in lines}
    predictions = [prediction["class_id"] for prediction in lines[0]["predictions"]]
    try:
        record = record_from_annotation(annotation, class_ids, predictions, heatmaps)
    except KeyError as error:
        raise RunError("%s; are these annotations of the run's data set?" % error.args[0]) \
            from None
    if None in heatmaps:
        record = record._replace(heatmaps=dict.fromkeys(record.gt_labels, heatmaps[None]))
    image = lines[0]["image"]
    size = _image_size(lines)
    if tuple(size) != tuple(record.image_size):
        raise RunError("%s is %dx%d pixels but its annotation says %dx%d; are these annotations "
                       "of the run's data set?" % ((image,) + tuple(size) + record.image_size))
    ground_truth = lines[0].get("ground_truth")
    if ground_truth is not None and set(ground_truth) != set(record.gt_labels):
        raise RunError("%s: the run recorded classes %s but its annotation has %s; are these "
                       "annotations of the run's data set?"
                       % (image, sorted(ground_truth), sorted(record.gt_labels)))
    return record


def run_records(results_dir: str, by_image: Dict[str, List[Dict[str, Any]]],
                annotations: Mapping[str, Annotation],
                class_ids: Mapping[str, int]) -> List[ImageRecord]:
    """The ImageRecords of the images of a run, from their results lines `by_image` (all of
    them must be annotated in `annotations`, {image stem: Annotation})."""
    stems = {image: os.path.splitext(os.path.basename(image))[0] for image in by_image}
    unannotated = [image for image, stem in stems.items() if stem not in annotations]
    if unannotated:
        raise RunError("%d of the %d images of %s have no annotation (e.g. %s); are these "
                       "annotations of the run's data set?"
                       % (len(unannotated), len(by_image), results_dir, unannotated[0]))
    records = []
    # The bar is cleared before an error is printed.
    with tqdm(total=len(by_image), desc="heatmaps of %s" % results_dir, unit="image",
              dynamic_ncols=True, leave=False) as progress, HeatmapFiles(results_dir) as files:
        for image, lines in by_image.items():
            records.append(image_record(lines, annotations[stems[image]], class_ids,
                                        results_dir, files))
            progress.update()
    return records


def lacking_heatmaps(records: Iterable[ImageRecord]) -> Dict[str, int]:
    """{key of LACKING_HEATMAPS: how many images lack that heatmap}."""
    counts = collections.OrderedDict((key, 0) for key in LACKING_HEATMAPS)
    for record in records:
        missing = {label for label in record.gt_labels if label not in record.heatmaps}
        counts["images_lacking_top1_heatmap"] += record.predictions[0] in missing
        counts["images_lacking_top5_heatmap"] += bool(missing & set(record.predictions[:5]))
        counts["images_lacking_gt_heatmap"] += bool(missing)
    return counts


def _v2_thresholds(best_v2):
    """{IoU threshold as text: MaxBoxAccV2's best threshold there}, or None."""
    if best_v2 is None:
        return None
    return collections.OrderedDict(("%g" % iou, threshold)
                                   for iou, threshold in zip(V2_IOU_THRESHOLDS, best_v2.thresholds))


def box_accuracies_field(box_accuracies: BoxAccuracies) -> Dict[str, Any]:
    """A row's box_accuracies: the accuracy at every threshold of the sweep (percent), for
    the curves: {"thresholds": [...], "max_box_acc": [...], "max_box_acc_v2": {IoU as text:
    [...]} or None}."""
    v2 = None if box_accuracies.v2_accuracies is None else collections.OrderedDict(
        ("%g" % iou, list(curve))
        for iou, curve in zip(V2_IOU_THRESHOLDS, box_accuracies.v2_accuracies))
    return collections.OrderedDict([("thresholds", list(box_accuracies.thresholds)),
                                    ("max_box_acc", list(box_accuracies.accuracies)),
                                    ("max_box_acc_v2", v2)])


def score_records(records: List[ImageRecord], protocol: str, threshold: float,
                  thresholds: Union[Sequence[float], np.ndarray], iou_threshold: float,
                  workers: int, label: str, outcomes: bool = False) -> Evaluation:
    """l2caf.evaluation.evaluate_records, with a progress bar named label (outcomes: keep
    each image's outcomes too)."""
    # The bar is cleared before an error is printed.
    with tqdm(total=len(records), desc="boxes of %s" % label, unit="image",
              dynamic_ncols=True, leave=False) as progress:
        try:
            return evaluate_records(records, protocol, threshold, thresholds, iou_threshold,
                                    workers, progress=progress.update, outcomes=outcomes)
        except ValueError as error:
            raise RunError("%s: %s" % (label, error)) from None


def evaluate_run(results_dir: str, annotations: Mapping[str, Annotation], protocol: str = "cam",
                 threshold: float = 0.2,
                 thresholds: Union[Sequence[float], np.ndarray] = DEFAULT_THRESHOLDS,
                 iou_threshold: float = 0.5, workers: int = 1,
                 snapshot: Optional["FolderSnapshot"] = None) -> Dict[str, Any]:
    """One row of the table for the run in results_dir: an OrderedDict of the table's COLUMNS
    keys (scores in percent) and caf_variant, layer, iou_threshold, images_annotated,
    max_box_acc_threshold, max_box_acc_v2_thresholds, box_accuracies (see
    `box_accuracies_field`), the LACKING_HEATMAPS counts, the `pointing_columns` and
    `faithfulness_columns` and notes (a list of strings). MaxBoxAccV2 and its thresholds are
    None unless protocol is 'wsol'; the faithfulness scores are None unless the folder holds
    scripts/evaluate_faithfulness.py's scores.

    annotations: {image stem: Annotation} (l2caf.annotations.read_annotations).
    thresholds: MaxBoxAcc's threshold sweep. workers: processes that box the heatmaps.
    snapshot: the folder's results lines and scores when the command has read them already
    (`FolderSnapshot`); else they are read here.
    """
    return _score(results_dir, annotations, protocol, threshold, thresholds, iou_threshold,
                  workers, False, snapshot).row


def score_run(results_dir: str, annotations: Mapping[str, Annotation], protocol: str = "cam",
              threshold: float = 0.2,
              thresholds: Union[Sequence[float], np.ndarray] = DEFAULT_THRESHOLDS,
              iou_threshold: float = 0.5, workers: int = 1, with_samples: bool = True,
              snapshot: Optional["FolderSnapshot"] = None) -> ScoredRun:
    """`evaluate_run`'s row, with the faithfulness lines it was made of and (with_samples)
    the run's per-unit samples, as a `ScoredRun`: per image (its file stem) the localisation
    outcomes, per (image, ground-truth class) heatmap the pointing games, per scored heatmap
    the faithfulness scores. snapshot: as for `evaluate_run`."""
    return _score(results_dir, annotations, protocol, threshold, thresholds, iou_threshold,
                  workers, with_samples, snapshot)


FolderSnapshot = collections.namedtuple("FolderSnapshot", ["lines", "scores", "settings"])
FolderSnapshot.__doc__ = """What a command reads of a run folder once, so that everything it
shows of the folder (table, curves, gallery) is of the same moment, even while a visualiser
or scripts/evaluate_faithfulness.py still appends to it: lines, the results lines by image
(l2caf.runs.read.read_lines); scores and settings, the faithfulness lines of those
heatmaps and their settings (l2caf.runs.read.read_scores)."""


def read_snapshot(results_dir: str) -> FolderSnapshot:
    """The `FolderSnapshot` of a run folder, read now."""
    by_image = read_lines(results_dir)
    return FolderSnapshot(by_image, *read_scores(results_dir, by_image))


def _score(results_dir, annotations, protocol, threshold, thresholds, iou_threshold, workers,
           with_samples, snapshot=None):
    """A `ScoredRun` (samples None unless with_samples), of the folder's `FolderSnapshot`
    (read here when None)."""
    if not os.path.isdir(results_dir):
        raise RunError("%s: no such results folder" % results_dir)
    if not len(thresholds):
        raise ConfigError("thresholds: MaxBoxAcc's sweep needs at least one threshold")
    _, config, made_with = read_configs(results_dir)[0]
    class_ids = class_ids_of(config, os.path.join(results_dir, kind_pattern("config")))
    if snapshot is None:
        snapshot = read_snapshot(results_dir)  # before the long work
    by_image = snapshot.lines
    faithfulness_units = _faithfulness_units(snapshot)
    sanity_units = _sanity_units(results_dir)
    faithfulness = faithfulness_columns(results_dir, by_image, faithfulness_units)
    records = run_records(results_dir, by_image, annotations, class_ids)
    evaluation = score_records(records, protocol, threshold, thresholds, iou_threshold,
                               workers, results_dir, with_samples)
    scores, best, best_v2 = evaluation.metrics, evaluation.max_box_acc, evaluation.max_box_acc_v2
    layer = next(iter(by_image.values()))[0]["layer"]  # the results say which, resolved
    row = collections.OrderedDict([
        ("run", results_dir), ("method", config.method), ("caf_variant", config.caf_variant),
        ("network", config.network), ("layer", layer), ("protocol", protocol),
        ("threshold", threshold), ("iou_threshold", iou_threshold),
        ("images", scores.num_images), ("images_annotated", len(annotations)),
        ("top1_cls_error", scores.top1_cls_error), ("top5_cls_error", scores.top5_cls_error),
        ("top1_loc_error", scores.top1_loc_error), ("top5_loc_error", scores.top5_loc_error),
        ("gt_known_loc_accuracy", scores.gt_known_loc_accuracy),
        ("max_box_acc", best.accuracy), ("max_box_acc_threshold", best.threshold),
        ("max_box_acc_v2", best_v2.accuracy if best_v2 else None),
        ("max_box_acc_v2_thresholds", _v2_thresholds(best_v2)),
        ("box_accuracies", box_accuracies_field(evaluation.box_accuracies))])
    row.update(lacking_heatmaps(records))
    stems = [_stem(image) for image in by_image]
    pointing_units = _pointing_units(records, stems, results_dir)
    row.update(pointing_columns(records, results_dir, pointing_units))
    row.update(faithfulness)
    row.update(sanity_units.columns)
    row["notes"] = run_notes(row)
    if not with_samples:
        return ScoredRun(row, None, snapshot.scores)
    samples = collections.OrderedDict()
    samples.update(localization_samples(stems, evaluation.outcomes))
    samples.update(pointing_units.samples)
    samples.update(faithfulness_units.samples)
    samples.update(sanity_units.samples)
    fingerprint = {key: made_with[key] for key in _FINGERPRINT if made_with.get(key)}
    return ScoredRun(row, RunSamples(results_dir, config.network, fingerprint, samples),
                     snapshot.scores)


def _stem(image: str) -> str:
    """An image's key in the samples: its file name without the extension, as the
    annotations match it."""
    return os.path.splitext(os.path.basename(image))[0]


def localization_samples(stems: Sequence[str], outcomes: ImageOutcomes) -> Dict[str, Samples]:
    """{column key: Samples} of the localisation columns, one unit (stem, None) per image:
    the errors count the wrong images, the accuracies the right ones, MaxBoxAcc and
    MaxBoxAccV2 each threshold's right ones (l2caf.evaluation.ImageOutcomes)."""
    units = [(stem, None) for stem in stems]
    wrong = {"top1_cls_error": outcomes.top1_cls, "top5_cls_error": outcomes.top5_cls,
             "top1_loc_error": outcomes.top1_loc, "top5_loc_error": outcomes.top5_loc}
    samples = collections.OrderedDict(
        (key, Samples(units, 1.0 - right.astype(np.float64))) for key, right in wrong.items())
    samples["gt_known_loc_accuracy"] = Samples(units, outcomes.gt_known_loc.astype(np.float64))
    samples["max_box_acc"] = Samples(units, outcomes.box_hits[:, None, :])  # booleans
    if outcomes.v2_box_hits is not None:
        samples["max_box_acc_v2"] = Samples(units, outcomes.v2_box_hits)
    return samples


UnitScores = collections.namedtuple("UnitScores", ["columns", "samples"])
UnitScores.__doc__ = """Scores of a run's heatmaps: columns, {row field: value} (the means
and counts the table shows); samples, {column key: Samples} (each heatmap's value)."""


def _pointing_units(records, stems, label):
    """The pointing games of every (image, ground-truth class) pair with a heatmap, as
    `UnitScores` (see `pointing_columns`)."""
    units, hits, energies, pairs = [], [], [], 0
    # The bar is cleared before an error is printed.
    with tqdm(total=len(records), desc="pointing of %s" % label, unit="image",
              dynamic_ncols=True, leave=False) as progress:
        for record, stem in zip(records, stems):
            for class_id in collections.OrderedDict.fromkeys(record.gt_labels):
                pairs += 1
                if class_id not in record.heatmaps:
                    continue
                try:
                    hit, energy = pointing_scores(record.heatmaps[class_id], record.image_size,
                                                  record.gt_boxes.get(class_id, ()))
                except ValueError as error:
                    raise RunError("%s: the heatmap of %s for class %d: %s"
                                   % (label, record.image, class_id, error)) from None
                units.append((stem, class_id))
                hits.append(hit)
                energies.append(energy)
            progress.update()
    game, energy_game = COLUMNS["pointing_game"], COLUMNS["energy_pointing_game"]
    columns = collections.OrderedDict([
        (game.key, game.scale * np.mean(hits) if hits else None),
        (energy_game.key, energy_game.scale * np.mean(energies) if energies else None),
        ("pointing_heatmaps", len(hits)), ("ground_truth_pairs", pairs)])
    samples = collections.OrderedDict()
    if units:
        samples[game.key] = Samples(units, np.array(hits, dtype=np.float64))
        samples[energy_game.key] = Samples(units, np.array(energies, dtype=np.float64))
    return UnitScores(columns, samples)


def pointing_columns(records: Sequence[ImageRecord], label: str,
                     units: Optional[UnitScores] = None) -> Dict[str, Any]:
    """The pointing game and energy-based pointing game (l2caf.evaluation.pointing), in
    percent, over the (image, ground-truth class) pairs that have a heatmap:
    {pointing_game, energy_pointing_game, pointing_heatmaps (those pairs),
    ground_truth_pairs (all pairs)}; the scores are None without any. label: the run, as the
    progress bar and errors name it. units: the records' pointing games when already scored
    (`UnitScores`)."""
    if units is None:
        units = _pointing_units(records, [record.image for record in records], label)
    return units.columns


def _faithfulness_units(snapshot):
    """The faithfulness scores of a `FolderSnapshot`'s heatmaps, as `UnitScores` (see
    `faithfulness_columns`)."""
    by_image, scores, settings = snapshot
    columns: Dict[str, Any] = collections.OrderedDict()
    samples = collections.OrderedDict()
    units = [(_stem(image), class_id) for image, class_id in scores]
    missing = []
    for metric in metrics("faithfulness"):
        values = [record[metric.key] for record in scores.values() if metric.key in record]
        if len(values) < len(scores):  # lines scored before the metric existed: none, not
            missing.append(name(metric.key))  # the mean of some
            values = []
        columns[metric.key] = metric.scale * float(np.mean(values)) if values else None
        if values:
            samples[metric.key] = Samples(units, np.array(values, dtype=np.float64))
    columns["faithfulness_missing"] = missing
    columns["faithfulness_heatmaps"] = len(scores)
    columns["heatmaps"] = sum(len(lines) for lines in by_image.values())
    columns["faithfulness_steps"] = settings["steps"] if settings else None
    columns["faithfulness_input_size"] = settings["input_size"] if settings else None
    return UnitScores(columns, samples)


def _sanity_units(results_dir):
    """The sanity checks of a run folder's heatmaps (l2caf.runs.sanity), as `UnitScores`:
    each "sanity" column's mean over the heatmaps where it is defined (None without any) and
    sanity_heatmaps, the heatmaps checked."""
    checked = read_sanity(results_dir)
    values = {(_stem(image), class_id): sanity_values(record)
              for (image, class_id), record in checked.items()}
    columns: Dict[str, Any] = collections.OrderedDict()
    samples = collections.OrderedDict()
    for metric in metrics("sanity"):
        defined = [(unit, value[metric.key]) for unit, value in values.items()
                   if value[metric.key] is not None]  # a constant map has no rank correlation
        columns[metric.key] = metric.scale * float(np.mean([value for _, value in defined])) \
            if defined else None
        if defined:
            samples[metric.key] = Samples([unit for unit, _ in defined],
                                          np.array([value for _, value in defined],
                                                   dtype=np.float64))
    columns["sanity_heatmaps"] = len(checked)
    return UnitScores(columns, samples)


def faithfulness_columns(results_dir: str, by_image: Dict[str, List[Dict[str, Any]]],
                         units: Optional[UnitScores] = None) -> Dict[str, Any]:
    """Means over the heatmaps scored of the faithfulness lines (l2caf.evaluation.faithfulness),
    in the table's units: {each faithfulness metric of the table (None without scores),
    faithfulness_heatmaps (how many), heatmaps (of the results), faithfulness_steps,
    faithfulness_input_size}, of the heatmaps of the results lines `by_image`. units: those
    scores when already read (`UnitScores`)."""
    if units is None:
        units = _faithfulness_units(FolderSnapshot(by_image, *read_scores(results_dir,
                                                                          by_image)))
    return units.columns


def evaluate_runs(results_dirs: Sequence[str], annotations: Mapping[str, Annotation],
                  protocol: str = "cam", threshold: float = 0.2,
                  thresholds: Union[Sequence[float], np.ndarray] = DEFAULT_THRESHOLDS,
                  iou_threshold: float = 0.5, workers: int = 1,
                  resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> Table:
    """The `Table` of the runs in results_dirs (see `evaluate_run`): with resamples > 0, each
    row with its scores' 95% bootstrap intervals over images (`resamples` resamples drawn
    with `seed`), the paired comparisons of the runs and, for three runs or more, the
    agreement of the metrics; with resamples 0 the rows alone, as `evaluate_run` makes
    them."""
    return table_of([score_run(results_dir, annotations, protocol, threshold, thresholds,
                               iou_threshold, workers, resamples > 0)
                     for results_dir in results_dirs], protocol, resamples, seed)


def table_of(scored: Sequence[ScoredRun], protocol: str, resamples: int = DEFAULT_RESAMPLES,
             seed: int = DEFAULT_SEED) -> Table:
    """The `Table` of runs scored by `score_run` (under `protocol`): with resamples > 0 (runs
    scored with their samples), their rows with their intervals, their comparisons and, for
    three runs or more, their agreement, with `resamples` resamples drawn with `seed`; with
    resamples 0 their rows as they are."""
    faithfulness = [run.faithfulness for run in scored]
    if not resamples:
        return Table([run.row for run in scored], None, None, faithfulness)
    rows = []
    for run in scored:
        not_made = [] if protocol == "wsol" else ["max_box_acc_v2"]
        if not run.row["sanity_heatmaps"]:  # never checked: no note of its empty columns
            not_made += [column.key for column in metrics("sanity")]
        intervals, notes = run_intervals(run.samples.samples, resamples, seed, not_made)
        rows.append(with_intervals(run.row, intervals, notes, resamples, seed))
    runs = [run.samples for run in scored]
    comparisons: Optional[ComparisonTable] = compare_runs(runs, resamples, seed) \
        if len(runs) >= 2 else None
    found: Optional[Agreement] = agreement(rows, runs) if len(rows) >= 3 else None
    return Table(rows, comparisons, found, faithfulness)
