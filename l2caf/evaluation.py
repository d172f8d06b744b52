"""Weakly-supervised localisation evaluation of heatmaps: boxes, IoU, loc errors, MaxBoxAcc.

A heatmap becomes one box by resizing it to the image and thresholding it at a fraction of
its maximum; two published recipes are supported (`protocol`):

* 'cam' (Zhou et al. 2016, used for the L2-CAF paper's Tables 1 and 3): keep the pixels
  >= threshold * max of the resized map; the box of the largest 8-connected component.
* 'adl' (Choe & Shim 2019, their Python code, used for Table 2): min-max scale the resized
  map to uint8 0..255; keep the pixels > int(threshold * 255); the bounding rectangle of the
  external contour with the largest area.

Boxes are (xmin, ymin, xmax, ymax) in inclusive pixel coordinates, like the ImageNet and
VOC annotations. (ADL's code returned x + w as xmax, one pixel beyond the contour; here both
protocols return the contour's last pixel, so they agree on the same blob.)

Only the heatmaps of ground-truth classes can ever matter: a box is scored against the
ground-truth boxes of its own class, so a predicted class that is not in the ground truth
is wrong whatever its box. The heatmap of each ground-truth class therefore suffices for
top-1, top-5 and GT-known localisation, because L2-CAF's class-specific heatmap of a class
does not depend on where that class is ranked.
"""
import collections

import cv2
import numpy as np

PROTOCOLS = ("cam", "adl")
DEFAULT_THRESHOLDS = np.arange(0.0, 1.0, 0.01)

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
the image the ground-truth boxes refer to; heatmaps are resized to it."""

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


def record_from_annotation(annotation, class_ids, predictions, heatmaps):
    """An `ImageRecord` from an `l2caf.annotations.Annotation` (one image's XML).

    class_ids: {object name (e.g. a WordNet id): class id in the network's numbering}.
    The ground-truth labels are the annotated classes in order of first appearance; the
    image size is the annotated (height, width), the frame of the annotated boxes.
    """
    gt_boxes = collections.OrderedDict()
    for box_object in annotation.objects:
        if box_object.name not in class_ids:
            raise KeyError("annotation of %s names object class %r, which has no class id"
                           % (annotation.filename, box_object.name))
        gt_boxes.setdefault(class_ids[box_object.name], []).append(tuple(box_object.box))
    return ImageRecord(image=annotation.filename, gt_labels=tuple(gt_boxes),
                       gt_boxes=dict(gt_boxes), predictions=list(predictions),
                       heatmaps=heatmaps, image_size=(annotation.height, annotation.width))


def resize_heatmap(heatmap, image_size):
    """The heatmap bilinearly resized to image_size = (height, width), as float64.

    Raises ValueError for a map that is not 2-D or holds NaN or infinity. A flat map is
    returned exactly flat (interpolation could otherwise leave rounding ripples on it).
    """
    heatmap = np.asarray(heatmap, dtype=np.float64)
    if heatmap.ndim != 2 or heatmap.size == 0:
        raise ValueError("a heatmap must be a non-empty 2-D array, got shape %s"
                         % (heatmap.shape,))
    if not np.all(np.isfinite(heatmap)):
        raise ValueError("the heatmap holds NaN or infinite values")
    height, width = image_size
    if height < 1 or width < 1:
        raise ValueError("image_size must be a positive (height, width), got %s"
                         % (image_size,))
    if heatmap.min() == heatmap.max():
        return np.full((height, width), heatmap.flat[0])
    return cv2.resize(heatmap, (width, height), interpolation=cv2.INTER_LINEAR)


def box_at_threshold(resized, threshold=0.2, protocol="cam"):
    """The box of a heatmap already at the image's size (see `heatmap_to_box`)."""
    if protocol not in PROTOCOLS:
        raise ValueError("unknown protocol %r; choose one of %s"
                         % (protocol, ", ".join(PROTOCOLS)))
    if not 0.0 <= threshold < 1.0:
        raise ValueError("threshold is a fraction of the maximum in [0, 1), got %r"
                         % (threshold,))
    height, width = resized.shape
    if resized.min() == resized.max():
        # Nothing stands out, so nothing can be excluded: the whole image.
        return (0, 0, width - 1, height - 1)
    if protocol == "cam":
        return _largest_component_box(resized, threshold)
    return _largest_contour_box(resized, threshold)


def heatmap_to_box(heatmap, image_size, threshold=0.2, protocol="cam"):
    """The localisation box of a heatmap on an image of image_size = (height, width).

    heatmap: 2-D array at any resolution, resized bilinearly to the image. threshold: the
    fraction of the maximum that a pixel must reach, in [0, 1). protocol: 'cam' or 'adl'
    (see the module docstring). A flat map (all values equal, all zeros included) gives the
    whole image. Raises ValueError for NaN or infinite values, and under 'cam' for a map
    whose maximum is negative (a fraction of it would keep nothing).
    Returns (xmin, ymin, xmax, ymax), inclusive pixel coordinates.
    """
    return box_at_threshold(resize_heatmap(heatmap, image_size), threshold, protocol)


def _largest_component_box(resized, threshold):
    peak = resized.max()
    if peak < 0:
        raise ValueError("the 'cam' protocol keeps pixels >= a fraction of the maximum, "
                         "which needs a maximum >= 0; got %g" % peak)
    mask = (resized >= threshold * peak).astype(np.uint8)
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    # Label 0 is the background (the zero pixels), even when there are none.
    largest = 1 + np.argmax(stats[1:, cv2.CC_STAT_AREA])
    left, top, box_width, box_height = stats[largest, :cv2.CC_STAT_AREA]
    return (int(left), int(top), int(left + box_width - 1), int(top + box_height - 1))


def _largest_contour_box(resized, threshold):
    low = resized.min()
    # Truncation to uint8, as in ADL's code: only the maximum maps to 255.
    gray = ((resized - low) / (resized.max() - low) * 255.0).astype(np.uint8)
    _, binary = cv2.threshold(gray, int(threshold * gray.max()), 255, cv2.THRESH_BINARY)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    left, top, box_width, box_height = cv2.boundingRect(max(contours, key=cv2.contourArea))
    return (left, top, left + box_width - 1, top + box_height - 1)


def iou(box_a, box_b):
    """Intersection over union of two inclusive boxes (a box of x0..x1 is x1 - x0 + 1 wide,
    as in CAM's and ADL's evaluation code); 0 for disjoint boxes."""
    inter_width = min(box_a[2], box_b[2]) - max(box_a[0], box_b[0]) + 1
    inter_height = min(box_a[3], box_b[3]) - max(box_a[1], box_b[1]) + 1
    if inter_width <= 0 or inter_height <= 0:
        return 0.0
    intersection = inter_width * inter_height
    union = _area(box_a) + _area(box_b) - intersection
    return intersection / float(union)


def _area(box):
    return (box[2] - box[0] + 1) * (box[3] - box[1] + 1)


def is_localized(box, gt_boxes, iou_threshold=0.5):
    """Whether box overlaps any of gt_boxes with IoU >= iou_threshold."""
    return any(iou(box, gt_box) >= iou_threshold for gt_box in gt_boxes)


def _gt_heatmaps(record):
    """{class id: resized heatmap} for the ground-truth classes that have a heatmap."""
    return {label: resize_heatmap(record.heatmaps[label], record.image_size)
            for label in record.gt_labels if label in record.heatmaps}


def _localized_classes(record, resized_heatmaps, threshold, protocol, iou_threshold):
    """The ground-truth classes whose box hits a ground-truth box of the same class."""
    return {label for label, resized in resized_heatmaps.items()
            if is_localized(box_at_threshold(resized, threshold, protocol),
                            record.gt_boxes.get(label, ()), iou_threshold)}


def _percent(count, total):
    return 100.0 * count / total


def localization_metrics(records, threshold=0.2, protocol="cam", iou_threshold=0.5):
    """Classification and localisation errors of a run (ILSVRC rules, as in CAM and ADL).

    records: iterable of `ImageRecord`. Boxes come from `heatmap_to_box` with threshold and
    protocol. Per image: top-1 (top-5) classification is right when predictions[0] (one of
    predictions[:5]) is a ground-truth class; top-1 (top-5) localisation when, in addition,
    the box of that class has IoU >= iou_threshold with a ground-truth box of that class;
    GT-known localisation when the box of a ground-truth class does, whatever was predicted.
    Returns a `LocalizationMetrics`.
    """
    counts = collections.Counter()
    for record in records:
        resized_heatmaps = _gt_heatmaps(record)
        localized = _localized_classes(record, resized_heatmaps, threshold, protocol,
                                       iou_threshold)
        top1, top5 = record.predictions[0], record.predictions[:5]
        counts["images"] += 1
        counts["top1_cls"] += top1 in record.gt_labels
        counts["top5_cls"] += any(label in record.gt_labels for label in top5)
        counts["top1_loc"] += top1 in localized
        counts["top5_loc"] += any(label in localized for label in top5)
        counts["gt_known_loc"] += bool(localized)
        counts["missing"] += len(resized_heatmaps) < len(set(record.gt_labels))
    if not counts["images"]:
        raise ValueError("no records to evaluate")
    num_images = counts["images"]
    return LocalizationMetrics(
        num_images=num_images,
        top1_cls_error=100.0 - _percent(counts["top1_cls"], num_images),
        top5_cls_error=100.0 - _percent(counts["top5_cls"], num_images),
        top1_loc_error=100.0 - _percent(counts["top1_loc"], num_images),
        top5_loc_error=100.0 - _percent(counts["top5_loc"], num_images),
        gt_known_loc_accuracy=_percent(counts["gt_known_loc"], num_images),
        missing_heatmaps=counts["missing"])


def max_box_acc(records, thresholds=DEFAULT_THRESHOLDS, iou_threshold=0.5, protocol="cam"):
    """MaxBoxAcc (Choe et al. 2020): GT-known box accuracy at the best of several thresholds.

    Each heatmap is resized once and then boxed at every threshold. Returns a `MaxBoxAcc`
    (accuracy in percent, and the lowest threshold reaching it).
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    hits = np.zeros(len(thresholds), dtype=np.int64)
    num_images = 0
    for record in records:
        resized_heatmaps = _gt_heatmaps(record)
        num_images += 1
        hits += [bool(_localized_classes(record, resized_heatmaps, threshold, protocol,
                                         iou_threshold))
                 for threshold in thresholds]
    if not num_images:
        raise ValueError("no records to evaluate")
    best = int(np.argmax(hits))
    return MaxBoxAcc(accuracy=_percent(int(hits[best]), num_images),
                     threshold=float(thresholds[best]))
