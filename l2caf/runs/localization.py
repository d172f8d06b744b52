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
AUC, Average Drop and Increase in Confidence over the heatmaps scored; a column covering part
of the run says so in a note. The table itself (its columns, Markdown, CSV and JSON) is
l2caf.evaluation.table's.
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
                              ImageRecord, evaluate_records, pointing_scores,
                              record_from_annotation)
from l2caf.evaluation.table import COLUMNS, LACKING_HEATMAPS, metrics, run_notes
from l2caf.runs.folder import FILES, HeatmapFiles, kind_pattern
from l2caf.runs.read import read_config, read_lines, read_scores


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
                  workers: int, label: str) -> Evaluation:
    """l2caf.evaluation.evaluate_records, with a progress bar named label."""
    # The bar is cleared before an error is printed.
    with tqdm(total=len(records), desc="boxes of %s" % label, unit="image",
              dynamic_ncols=True, leave=False) as progress:
        try:
            return evaluate_records(records, protocol, threshold, thresholds, iou_threshold,
                                    workers, progress=progress.update)
        except ValueError as error:
            raise RunError("%s: %s" % (label, error)) from None


def evaluate_run(results_dir: str, annotations: Mapping[str, Annotation], protocol: str = "cam",
                 threshold: float = 0.2,
                 thresholds: Union[Sequence[float], np.ndarray] = DEFAULT_THRESHOLDS,
                 iou_threshold: float = 0.5, workers: int = 1) -> Dict[str, Any]:
    """One row of the table for the run in results_dir: an OrderedDict of the table's COLUMNS
    keys (scores in percent) and caf_variant, layer, iou_threshold, images_annotated,
    max_box_acc_threshold, max_box_acc_v2_thresholds, box_accuracies (see
    `box_accuracies_field`), the LACKING_HEATMAPS counts, the `pointing_columns` and
    `faithfulness_columns` and notes (a list of strings). MaxBoxAccV2 and its thresholds are
    None unless protocol is 'wsol'; the faithfulness scores are None unless the folder holds
    scripts/evaluate_faithfulness.py's scores.

    annotations: {image stem: Annotation} (l2caf.annotations.read_annotations).
    thresholds: MaxBoxAcc's threshold sweep. workers: processes that box the heatmaps.
    """
    if not os.path.isdir(results_dir):
        raise RunError("%s: no such results folder" % results_dir)
    if not len(thresholds):
        raise ConfigError("thresholds: MaxBoxAcc's sweep needs at least one threshold")
    config = read_config(results_dir)
    class_ids = class_ids_of(config, os.path.join(results_dir, kind_pattern("config")))
    by_image = read_lines(results_dir)
    faithfulness = faithfulness_columns(results_dir, by_image)  # before the long work
    records = run_records(results_dir, by_image, annotations, class_ids)
    evaluation = score_records(records, protocol, threshold, thresholds, iou_threshold,
                               workers, results_dir)
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
    row.update(pointing_columns(records, results_dir))
    row.update(faithfulness)
    row["notes"] = run_notes(row)
    return row


def pointing_columns(records: Sequence[ImageRecord], label: str) -> Dict[str, Any]:
    """The pointing game and energy-based pointing game (l2caf.evaluation.pointing), in
    percent, over the (image, ground-truth class) pairs that have a heatmap:
    {pointing_game, energy_pointing_game, pointing_heatmaps (those pairs),
    ground_truth_pairs (all pairs)}; the scores are None without any. label: the run, as the
    progress bar and errors name it."""
    hits, energies, pairs = [], [], 0
    # The bar is cleared before an error is printed.
    with tqdm(total=len(records), desc="pointing of %s" % label, unit="image",
              dynamic_ncols=True, leave=False) as progress:
        for record in records:
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
                hits.append(hit)
                energies.append(energy)
            progress.update()
    game, energy_game = COLUMNS["pointing_game"], COLUMNS["energy_pointing_game"]
    return collections.OrderedDict([
        (game.key, game.scale * np.mean(hits) if hits else None),
        (energy_game.key, energy_game.scale * np.mean(energies) if energies else None),
        ("pointing_heatmaps", len(hits)), ("ground_truth_pairs", pairs)])


def faithfulness_columns(results_dir: str,
                         by_image: Dict[str, List[Dict[str, Any]]]) -> Dict[str, Any]:
    """Means over the heatmaps scored of the faithfulness lines (l2caf.evaluation.faithfulness),
    in the table's units: {each faithfulness metric of the table (None without scores),
    faithfulness_heatmaps (how many), heatmaps (of the results), faithfulness_steps,
    faithfulness_input_size}, of the heatmaps of the results lines `by_image`."""
    scores, settings = read_scores(results_dir, by_image)
    columns: Dict[str, Any] = collections.OrderedDict()
    for metric in metrics("faithfulness"):
        values = [record[metric.key] for record in scores.values()]
        columns[metric.key] = metric.scale * float(np.mean(values)) if values else None
    columns["faithfulness_heatmaps"] = len(scores)
    columns["heatmaps"] = sum(len(lines) for lines in by_image.values())
    columns["faithfulness_steps"] = settings["steps"] if settings else None
    columns["faithfulness_input_size"] = settings["input_size"] if settings else None
    return columns
