"""Localisation scores of a run: classification and localisation errors, GT-known accuracy,
MaxBoxAcc and MaxBoxAccV2, over a process pool.

Protocols (how a heatmap becomes a box; see l2caf.evaluation.boxes and .wsol):

* 'cam', 'adl': at the image's size, against its ground-truth boxes as annotated;
* 'wsol': wsolevaluation's recipe at 224 x 224, against ground-truth boxes scaled there.

Only the heatmaps of ground-truth classes can ever matter: a box is scored against the
ground-truth boxes of its own class, so a predicted class that is not in the ground truth
is wrong whatever its box. The heatmap of each ground-truth class therefore suffices for
top-1, top-5 and GT-known localisation, because L2-CAF's class-specific heatmap of a class
does not depend on where that class is ranked. An image with several ground-truth classes
is localised (GT-known) when the box of any of them hits a box of its class; wsolevaluation's
images have one class, where this is its rule.

Each heatmap is resized once and then boxed at every threshold of a sweep. A threshold
whose kept pixels' extent cannot reach the IoU needed with any ground-truth box (the box
lies inside that extent, so IoU <= |extent & gt| / |gt|) is scored a miss without being
boxed: the result is the same, and high thresholds cost almost nothing.
"""
import collections
import contextlib
import functools
import math
import multiprocessing
import signal
import threading
from typing import (TYPE_CHECKING, Callable, Dict, Iterable, List, Mapping, Optional, Sequence,
                    Tuple, Union)

import cv2
import numpy as np

from l2caf.evaluation import wsol
from l2caf.evaluation.boxes import (IMAGE_SIZE_PROTOCOLS, Box, ImageSizedMap, area,
                                    check_threshold, intersection, iou)
from l2caf.heatmaps import resize_heatmap

if TYPE_CHECKING:
    from l2caf.annotations import Annotation

PROTOCOLS = IMAGE_SIZE_PROTOCOLS + ("wsol",)
DEFAULT_THRESHOLDS = np.arange(0.0, 1.0, 0.01)
# MaxBoxAccV2's IoU thresholds, the benchmark's default iou_threshold_list (30, 50, 70).
V2_IOU_THRESHOLDS = (0.3, 0.5, 0.7)
# Records per task of the pool: small enough for a progress bar that moves and for the
# workers to finish together, large enough that sending them costs nothing.
_MAX_CHUNK = 200

ImageRecord = collections.namedtuple(
    "ImageRecord",
    ["image", "gt_labels", "gt_boxes", "predictions", "heatmaps", "image_size"])
ImageRecord.__doc__ = """What the evaluation needs to know about one image.

image: an identifier (file stem), only for reports. gt_labels: the image's ground-truth
class ids (ImageNet: its one validation label); a prediction is right if it is any of them.
gt_boxes: {class_id: [box, ...]} ground-truth boxes per class. predictions: the top-5
predicted class ids, best first. heatmaps: {class_id: 2-D array} heatmaps at any
resolution; those of the ground-truth classes are used (a missing one means that class is
never localised, see `LocalizationMetrics.missing_heatmaps`). image_size: (height, width) of
the image the ground-truth boxes refer to."""

LocalizationMetrics = collections.namedtuple(
    "LocalizationMetrics",
    ["num_images", "top1_cls_error", "top5_cls_error", "top1_loc_error", "top5_loc_error",
     "gt_known_loc_accuracy", "missing_heatmaps"])
LocalizationMetrics.__doc__ = """Results over a run, in percent (errors = 100 - accuracy).

missing_heatmaps: the number of images lacking the heatmap of some ground-truth class;
those classes counted as not localised, so the loc errors are upper bounds when it is > 0."""

MaxBoxAcc = collections.namedtuple("MaxBoxAcc", ["accuracy", "threshold"])
MaxBoxAcc.__doc__ = """The best GT-known box accuracy (percent) over a threshold sweep, and
the first threshold reaching it."""

MaxBoxAccV2 = collections.namedtuple("MaxBoxAccV2", ["accuracy", "accuracies", "thresholds"])
MaxBoxAccV2.__doc__ = """MaxBoxAccV2 (percent): the mean over `V2_IOU_THRESHOLDS` of the best
box accuracy over the sweep, every contour's box tried ('wsol' protocol). accuracies and
thresholds: per IoU threshold, that best accuracy and the first threshold reaching it."""

BoxAccuracies = collections.namedtuple("BoxAccuracies", ["thresholds", "accuracies",
                                                       "v2_accuracies"])
BoxAccuracies.__doc__ = """The box accuracies (percent) at every threshold of a sweep, the
curves whose maxima are MaxBoxAcc and MaxBoxAccV2. thresholds: the sweep, a tuple of floats.
accuracies: per threshold, the GT-known box accuracy (the largest box, IoU >= iou_threshold).
v2_accuracies: None unless the protocol is 'wsol'; else per IoU of `V2_IOU_THRESHOLDS`, a tuple
of the accuracies per threshold with every contour's box tried. Tuples, so that evaluations
compare with ==."""

ImageOutcomes = collections.namedtuple(
    "ImageOutcomes", ["top1_cls", "top5_cls", "top1_loc", "top5_loc", "gt_known_loc",
                      "box_hits", "v2_box_hits"])
ImageOutcomes.__doc__ = """Each image's outcomes, in the order of the records, whose means
are `evaluate_records`' numbers (what a bootstrap over images resamples). top1_cls,
top5_cls, top1_loc, top5_loc, gt_known_loc: booleans (images,), right or not under each rule
(an error is 100 minus the percentage of them). box_hits: booleans (images, thresholds),
GT-known right with the largest box at each threshold of the sweep (MaxBoxAcc: the best
threshold's percentage). v2_box_hits: None unless the protocol is 'wsol'; else booleans
(images, len(V2_IOU_THRESHOLDS), thresholds), right with every contour's box tried at each IoU
and threshold (MaxBoxAccV2: the mean over the IoUs of the best threshold's percentage)."""

Evaluation = collections.namedtuple("Evaluation", ["metrics", "max_box_acc", "max_box_acc_v2",
                                                   "box_accuracies", "outcomes"],
                                    defaults=(None,))
Evaluation.__doc__ = """Everything `evaluate_records` computes: a `LocalizationMetrics`, a
`MaxBoxAcc` (None for an empty sweep), a `MaxBoxAccV2` (None unless the protocol is 'wsol'
and the sweep is not empty), the `BoxAccuracies` behind both (None for an empty sweep) and,
when asked for, the `ImageOutcomes` behind all of them (else None)."""

# What a worker needs to score records; a namedtuple, so that it pickles. outcomes: whether to
# keep each image's outcomes (`ImageOutcomes`).
_Task = collections.namedtuple("_Task", ["protocol", "threshold", "thresholds", "iou_threshold",
                                         "outcomes"])
# The per-image rules of `ImageOutcomes`, in its order (the booleans of a record).
_RULES = ("top1_cls", "top5_cls", "top1_loc", "top5_loc", "gt_known_loc")


def record_from_annotation(annotation: "Annotation", class_ids: Mapping[str, int],
                           predictions: Sequence[int],
                           heatmaps: Dict[Optional[int], np.ndarray]) -> ImageRecord:
    """An `ImageRecord` from an `l2caf.annotations.Annotation` (one image's).

    class_ids: {object name (e.g. a WordNet id): class id in the network's numbering}. An
    object whose class is already a class id (wsolevaluation's metadata) keeps it; it must be
    one of class_ids' values. The ground-truth labels are the annotated classes in order of
    first appearance; the image size is the annotated (height, width), the frame of the
    annotated boxes. predictions, heatmaps: the ImageRecord's.
    """
    known_ids = set(class_ids.values())
    gt_boxes: Dict[int, List[Box]] = collections.OrderedDict()
    for box_object in annotation.objects:
        if isinstance(box_object.name, int):
            if box_object.name not in known_ids:
                raise KeyError("annotation of %s names class id %d, which is not one of the %d "
                               "classes" % (annotation.filename, box_object.name, len(known_ids)))
            class_id = box_object.name
        elif box_object.name in class_ids:
            class_id = class_ids[box_object.name]
        else:
            raise KeyError("annotation of %s names object class %r, which has no class id"
                           % (annotation.filename, box_object.name))
        gt_boxes.setdefault(class_id, []).append(tuple(box_object.box))
    return ImageRecord(image=annotation.filename, gt_labels=tuple(gt_boxes),
                       gt_boxes=dict(gt_boxes), predictions=list(predictions),
                       heatmaps=heatmaps, image_size=(annotation.height, annotation.width))


def parse_thresholds(text: str) -> np.ndarray:
    """A threshold sweep from text: 'START:STOP:STEP' (STOP excluded, as numpy.arange) or a
    comma-separated list; ValueError unless every threshold is in [0, 1)."""
    try:
        if ":" in text:
            start, stop, step = (float(part) for part in text.split(":"))
            if step <= 0:
                raise ValueError
            # Rounded so that 0.3 is 0.3, not 0.30000000000000004. (The benchmark's unrounded
            # np.arange(0, 1, 0.01) and 0.001 give the same int(t * 255) at every step.)
            thresholds = np.round(np.arange(start, stop, step), 10)
        else:
            thresholds = np.array([float(part) for part in text.split(",")])
    except ValueError:
        raise ValueError("must be START:STOP:STEP (e.g. 0:1:0.01, STEP > 0) or a "
                         "comma-separated list, got %r" % text) from None
    if not len(thresholds) or np.any((thresholds < 0) | (thresholds >= 1)):
        raise ValueError("must give thresholds in [0, 1), got %r" % text)
    return thresholds


def _class_map(heatmap, image_size, gt_boxes, protocol):
    """(map, ground-truth boxes) of one class under protocol, in the frame the protocol boxes
    in: an `ImageSizedMap` and the boxes as annotated ('cam', 'adl'), or a `wsol.ScoreMap`
    and the boxes scaled to 224 x 224 ('wsol')."""
    if protocol == "wsol":
        return wsol.ScoreMap(heatmap), [wsol.scale_box(box, image_size) for box in gt_boxes]
    if protocol not in IMAGE_SIZE_PROTOCOLS:
        raise ValueError("unknown protocol %r; choose one of %s"
                         % (protocol, ", ".join(PROTOCOLS)))
    return ImageSizedMap(resize_heatmap(heatmap, image_size), protocol), list(gt_boxes)


ClassBox = collections.namedtuple("ClassBox", ["box", "frame_size", "iou"])
ClassBox.__doc__ = """The box a protocol makes of one class's heatmap at one threshold, as
the evaluation scores it. box: (xmin, ymin, xmax, ymax), inclusive, in the protocol's frame:
the image ('cam', 'adl') or the 224 x 224 score map ('wsol'). frame_size: that frame's
(height, width). iou: the best IoU of the box with the class's ground-truth boxes, compared
in that frame; None without ground-truth boxes."""


def class_box(heatmap: np.ndarray, image_size: Tuple[int, int], gt_boxes: Sequence[Box] = (),
              threshold: float = 0.2, protocol: str = "cam") -> ClassBox:
    """The `ClassBox` of a heatmap of an image of image_size = (height, width) at threshold,
    against gt_boxes (the class's boxes as annotated, at the image's size)."""
    check_threshold(threshold)
    scored_map, frame_boxes = _class_map(heatmap, image_size, gt_boxes, protocol)
    box = tuple(int(value) for value in scored_map.box(threshold))
    frame_size = (wsol.RESIZE_LENGTH, wsol.RESIZE_LENGTH) if protocol == "wsol" \
        else tuple(image_size)
    best = max((iou(box, gt_box) for gt_box in frame_boxes), default=None)
    return ClassBox(box, frame_size, best)


def _cannot_reach(extent, gt_boxes, iou_floor):
    """Whether no box inside extent can have IoU >= iou_floor with any of gt_boxes.

    Exact, not approximate: IoU(box, gt) <= |box & gt| / |gt| <= |extent & gt| / |gt|, and
    rounding the quotients to floats keeps that order.
    """
    return all(intersection(extent, gt_box) / float(area(gt_box)) < iou_floor
               for gt_box in gt_boxes)


def _best_ious(scored_map, gt_boxes, threshold, iou_floor, every_contour):
    """(best IoU of the map's box, of any of its contours' boxes or None) at threshold; 0 for
    both if no box inside the kept pixels' extent can reach iou_floor."""
    extent = scored_map.extent(threshold)
    if extent is not None and _cannot_reach(extent, gt_boxes, iou_floor):
        return 0.0, (0.0 if every_contour else None)
    boxes = scored_map.boxes(threshold) if every_contour else [scored_map.box(threshold)]
    ious = [max(iou(box, gt_box) for gt_box in gt_boxes) for box in boxes]
    return ious[0], (max(ious) if every_contour else None)


def _sweep_ious(scored_map, gt_boxes, thresholds, iou_floor, every_contour=False):
    """(best, best_every): per threshold, the best IoU of the map's box with gt_boxes, and
    (every_contour, for a wsol.ScoreMap) of any of its contours' boxes, else None.

    Thresholds that keep the same pixels (the same `cut` of the map: under 'adl' and 'wsol'
    a fine sweep has many) are boxed once. An IoU below iou_floor may be reported as 0 (the
    threshold was not boxed, see `_cannot_reach`): compare the results only with IoU
    thresholds >= iou_floor.
    """
    best = np.zeros(len(thresholds))
    best_every = np.zeros(len(thresholds)) if every_contour else None
    if not gt_boxes:
        return best, best_every
    ious_by_cut = {}
    for index, threshold in enumerate(thresholds):
        cut = scored_map.cut(threshold)
        if cut not in ious_by_cut:
            ious_by_cut[cut] = _best_ious(scored_map, gt_boxes, threshold, iou_floor,
                                          every_contour)
        best[index], every = ious_by_cut[cut]
        if every_contour:
            best_every[index] = every
    return best, best_every


class _Tally(object):
    """Counts over some records, which add up over the pool's chunks."""

    def __init__(self, num_thresholds: int, with_v2: bool):
        self.counts: "collections.Counter[str]" = collections.Counter()
        self.hits = np.zeros(num_thresholds, dtype=np.int64)
        self.v2_hits = (np.zeros((len(V2_IOU_THRESHOLDS), num_thresholds), dtype=np.int64)
                        if with_v2 else None)
        # With a task's outcomes: [(index of the first record, {field of ImageOutcomes:
        # its array over the records})], one block per chunk.
        self.outcome_blocks: List[Tuple[int, Dict[str, Optional[np.ndarray]]]] = []

    def add(self, other: "_Tally") -> None:
        """Adds the counts (and outcomes) of `other`."""
        self.counts.update(other.counts)
        self.hits += other.hits
        self.outcome_blocks += other.outcome_blocks
        if self.v2_hits is not None:
            # (both tallies are of one task: other has v2_hits when self has)
            self.v2_hits += other.v2_hits  # type: ignore[arg-type]


def _tally(records, task, start=0):
    """The `_Tally` of records under a `_Task` (start: the index of the first of them among
    all the records, which its outcomes keep)."""
    with_v2 = task.protocol == "wsol"
    tally = _Tally(len(task.thresholds), with_v2)
    rules, box_hits, v2_box_hits = [], [], []
    # The single threshold of the errors is boxed with the sweep's.
    thresholds = np.concatenate([[task.threshold], task.thresholds])
    iou_floor = min((task.iou_threshold,) + (V2_IOU_THRESHOLDS if with_v2 else ()))
    for record in records:
        gt_labels = list(collections.OrderedDict.fromkeys(record.gt_labels))
        localized = set()
        best = np.zeros(len(task.thresholds))
        best_every = np.zeros(len(task.thresholds)) if with_v2 else None
        for label in gt_labels:
            if label not in record.heatmaps:
                continue
            scored_map, gt_boxes = _class_map(record.heatmaps[label], record.image_size,
                                              record.gt_boxes.get(label, ()), task.protocol)
            ious, every_ious = _sweep_ious(scored_map, gt_boxes, thresholds, iou_floor, with_v2)
            if ious[0] >= task.iou_threshold:
                localized.add(label)
            best = np.maximum(best, ious[1:])
            if with_v2:
                best_every = np.maximum(best_every, every_ious[1:])
        top1, top5 = record.predictions[0], record.predictions[:5]
        counts = tally.counts
        counts["images"] += 1
        counts["top1_cls"] += top1 in gt_labels
        counts["top5_cls"] += any(label in gt_labels for label in top5)
        counts["top1_loc"] += top1 in localized
        counts["top5_loc"] += any(label in localized for label in top5)
        counts["gt_known_loc"] += bool(localized)
        counts["missing"] += any(label not in record.heatmaps for label in gt_labels)
        hits = best >= task.iou_threshold
        tally.hits += hits
        if with_v2:
            v2_hits = np.stack([best_every >= iou_threshold
                                for iou_threshold in V2_IOU_THRESHOLDS])
            tally.v2_hits += v2_hits
        if task.outcomes:
            rules.append((top1 in gt_labels, any(label in gt_labels for label in top5),
                          top1 in localized, any(label in localized for label in top5),
                          bool(localized)))
            box_hits.append(hits)
            if with_v2:
                v2_box_hits.append(v2_hits)
    if task.outcomes:
        block: Dict[str, Optional[np.ndarray]] = dict(zip(
            _RULES, np.array(rules, dtype=bool).reshape(len(records), len(_RULES)).T))
        block["box_hits"] = np.array(box_hits, dtype=bool).reshape(len(records),
                                                                   len(task.thresholds))
        block["v2_box_hits"] = np.array(v2_box_hits, dtype=bool).reshape(
            len(records), len(V2_IOU_THRESHOLDS), len(task.thresholds)) if with_v2 else None
        tally.outcome_blocks.append((start, block))
    return tally


def _tally_chunk(chunk, task):
    """The `_Tally` of a chunk (index of its first record, its records) under a `_Task`."""
    start, records = chunk
    return _tally(records, task, start)


def _image_outcomes(tally):
    """The `ImageOutcomes` of a tally's outcome blocks, in the records' order."""
    blocks = [block for _, block in sorted(tally.outcome_blocks, key=lambda item: item[0])]
    fields = {name: np.concatenate([block[name] for block in blocks])
              for name in _RULES + ("box_hits",)}
    fields["v2_box_hits"] = None if blocks[0]["v2_box_hits"] is None else np.concatenate(
        [block["v2_box_hits"] for block in blocks])
    return ImageOutcomes(**fields)


def _start_worker():
    # Ctrl-C is the parent's to handle (it ends the pool): a worker never prints a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # One process per core: OpenCV's own threads would only compete with the other workers.
    cv2.setNumThreads(1)


@contextlib.contextmanager
def _sigint_ignored():
    """While the pool's processes start: they inherit the ignored SIGINT from their first
    instruction on, before _start_worker runs (a terminal's Ctrl-C reaches the whole process
    group). Only the main thread can set signal handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _chunks(records, workers):
    """[(index of the chunk's first record, the chunk's records)]."""
    size = max(1, min(_MAX_CHUNK, math.ceil(len(records) / (4.0 * workers))))
    return [(start, records[start:start + size]) for start in range(0, len(records), size)]


def _tally_all(records, task, workers, progress):
    """The `_Tally` of all records: in this process, or over a pool of `workers` processes.

    The pool's processes are started fresh ('spawn'): the caller may have imported
    TensorFlow or used OpenCV's threads, neither of which survives a fork safely. They
    ignore Ctrl-C: the KeyboardInterrupt comes in this process, which ends the pool.
    """
    chunks = _chunks(records, workers)
    total = _Tally(len(task.thresholds), task.protocol == "wsol")
    score = functools.partial(_tally_chunk, task=task)
    if min(workers, len(chunks)) <= 1:
        tallies = map(score, chunks)
        return _sum_tallies(total, tallies, progress)
    context = multiprocessing.get_context("spawn")
    with _sigint_ignored():
        pool = context.Pool(min(workers, len(chunks)), initializer=_start_worker)
    with pool:  # on leaving, even by Ctrl-C, the workers are terminated
        return _sum_tallies(total, pool.imap_unordered(score, chunks), progress)


def _sum_tallies(total, tallies, progress):
    for tally in tallies:
        total.add(tally)
        if progress:
            progress(tally.counts["images"])
    return total


def _percent(count, total):
    return 100.0 * count / total


def _best(hits, thresholds, num_images):
    """(accuracy in percent, first threshold reaching it) of per-threshold hit counts."""
    best = int(np.argmax(hits))
    return _percent(int(hits[best]), num_images), float(thresholds[best])


def _box_accuracies(tally, thresholds, num_images):
    """The `BoxAccuracies` of a sweep's tally."""
    def curve(hits):
        return tuple(_percent(int(count), num_images) for count in hits)
    v2 = None if tally.v2_hits is None else tuple(curve(hits) for hits in tally.v2_hits)
    return BoxAccuracies(tuple(float(value) for value in thresholds), curve(tally.hits), v2)


def evaluate_records(records: Iterable[ImageRecord], protocol: str = "cam",
                     threshold: float = 0.2,
                     thresholds: Union[Sequence[float], np.ndarray] = DEFAULT_THRESHOLDS,
                     iou_threshold: float = 0.5, workers: int = 1,
                     progress: Optional[Callable[[int], object]] = None,
                     outcomes: bool = False) -> Evaluation:
    """Every score of a run at once (each heatmap resized once), as an `Evaluation`.

    records: iterable of `ImageRecord`. protocol: 'cam', 'adl' or 'wsol' (module docstring).
    Errors (ILSVRC rules, as in CAM and ADL), with boxes at threshold: top-1 (top-5)
    classification is right when predictions[0] (one of predictions[:5]) is a ground-truth
    class; top-1 (top-5) localisation when, in addition, the box of that class has IoU >=
    iou_threshold with a ground-truth box of that class; GT-known localisation when the box
    of a ground-truth class does, whatever was predicted. MaxBoxAcc (Choe et al. 2020): the
    GT-known accuracy at the best of thresholds. MaxBoxAccV2 ('wsol' only): the same over
    every contour's box, at each of `V2_IOU_THRESHOLDS`, averaged.
    workers: processes (1: this one); more start fresh interpreters ('spawn'), so a script
    that asks for them needs the usual `if __name__ == "__main__":` guard. progress: called
    with the number of records done after each chunk of them. outcomes: also return each
    image's outcomes (`ImageOutcomes`, what the scores are means of), which changes no score.
    """
    records = list(records)
    if not records:
        raise ValueError("no records to evaluate")
    if protocol not in PROTOCOLS:
        raise ValueError("unknown protocol %r; choose one of %s"
                         % (protocol, ", ".join(PROTOCOLS)))
    thresholds = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    for value in np.concatenate([[threshold], thresholds]):
        check_threshold(value)
    task = _Task(protocol, float(threshold), thresholds, float(iou_threshold), bool(outcomes))
    tally = _tally_all(records, task, workers, progress)
    counts, num_images = tally.counts, tally.counts["images"]
    metrics = LocalizationMetrics(
        num_images=num_images,
        top1_cls_error=100.0 - _percent(counts["top1_cls"], num_images),
        top5_cls_error=100.0 - _percent(counts["top5_cls"], num_images),
        top1_loc_error=100.0 - _percent(counts["top1_loc"], num_images),
        top5_loc_error=100.0 - _percent(counts["top5_loc"], num_images),
        gt_known_loc_accuracy=_percent(counts["gt_known_loc"], num_images),
        missing_heatmaps=counts["missing"])
    image_outcomes = _image_outcomes(tally) if outcomes else None
    if not len(thresholds):
        return Evaluation(metrics, None, None, None, image_outcomes)
    best_v1 = MaxBoxAcc(*_best(tally.hits, thresholds, num_images))
    best_v2 = None
    if tally.v2_hits is not None:
        accuracies, best_thresholds = zip(*(_best(hits, thresholds, num_images)
                                            for hits in tally.v2_hits))
        best_v2 = MaxBoxAccV2(accuracy=float(np.mean(accuracies)), accuracies=accuracies,
                              thresholds=best_thresholds)
    return Evaluation(metrics, best_v1, best_v2, _box_accuracies(tally, thresholds, num_images),
                      image_outcomes)


def localization_metrics(records: Iterable[ImageRecord], threshold: float = 0.2,
                         protocol: str = "cam", iou_threshold: float = 0.5,
                         workers: int = 1) -> LocalizationMetrics:
    """Classification and localisation errors of a run, as a `LocalizationMetrics` (see
    `evaluate_records`)."""
    return evaluate_records(records, protocol, threshold, (), iou_threshold, workers).metrics


def max_box_acc(records: Iterable[ImageRecord],
                thresholds: Union[Sequence[float], np.ndarray] = DEFAULT_THRESHOLDS,
                iou_threshold: float = 0.5, protocol: str = "cam",
                workers: int = 1) -> Optional[MaxBoxAcc]:
    """MaxBoxAcc (Choe et al. 2020): GT-known box accuracy at the best of several thresholds,
    as a `MaxBoxAcc` (accuracy in percent, and the first threshold reaching it)."""
    return evaluate_records(records, protocol, thresholds=thresholds,
                            iou_threshold=iou_threshold, workers=workers).max_box_acc


def max_box_acc_v2(records: Iterable[ImageRecord],
                   thresholds: Union[Sequence[float], np.ndarray] = DEFAULT_THRESHOLDS,
                   workers: int = 1) -> Optional[MaxBoxAccV2]:
    """MaxBoxAccV2 (wsolevaluation's box_v2_metric), as a `MaxBoxAccV2`: the 'wsol' recipe,
    every contour's box, the best accuracy over thresholds at IoU 0.3, 0.5 and 0.7, averaged."""
    return evaluate_records(records, "wsol", thresholds=thresholds,
                            workers=workers).max_box_acc_v2
