"""Does a heatmap point at the objects of its class? The pointing game (Zhang et al., ECCV
2016, "Top-down Neural Attention by Excitation Backprop") and its energy-based variant
(Score-CAM, Wang et al., CVPRW 2020).

Both score the heatmap at the image's own size, resized bilinearly as the boxes are
(`l2caf.heatmaps.resize_heatmap`), against the ground-truth boxes of its class
(xmin, ymin, xmax, ymax, inclusive pixel coordinates):

* **Pointing game**: a hit when the heatmap's maximum lies within `POINTING_TOLERANCE` (15)
  pixels of a box, i.e. when the disc of radius 15 around it meets a box's pixels
  (Euclidean distance <= 15, as the authors' eval_coco.py tests a 15-pixel buffer around the
  point for intersection). The maximum is the first one in raster order among equal values
  (numpy's argmax: the reference code's "naively take argmax"), so a flat map (all zeros
  included) points at the top-left pixel.
* **Energy-based pointing game**: the share of the heatmap's mass inside the union of the
  class's boxes (a pixel inside two boxes counts once). A map without mass (all zeros) is
  scored as the flat map it is: the boxes' share of the image. Heatmaps must be >= 0.

Zhang et al. report the mean of per-class accuracies; the evaluation's table reports means
over the heatmaps scored (l2caf.runs.localization). numpy and OpenCV only, no TensorFlow.
"""
import typing

import numpy as np

from l2caf.heatmaps import resize_heatmap

POINTING_TOLERANCE = 15

Box = typing.Tuple[int, int, int, int]


def peak(resized: np.ndarray) -> typing.Tuple[int, int]:
    """(x, y) of a map's maximum, the first in raster order among equal values."""
    row, column = np.unravel_index(int(np.argmax(resized)), resized.shape)
    return int(column), int(row)


def distance_to_box(point: typing.Tuple[int, int], box: Box) -> float:
    """The Euclidean distance from pixel (x, y) to the nearest pixel of an inclusive box
    (0 inside it)."""
    x, y = point
    dx = max(box[0] - x, 0, x - box[2])
    dy = max(box[1] - y, 0, y - box[3])
    return float(np.hypot(dx, dy))


def pointing_hit(resized: np.ndarray, boxes: typing.Sequence[Box],
                 tolerance: float = POINTING_TOLERANCE) -> bool:
    """Whether the maximum of a map at the image's size lies within `tolerance` pixels of
    one of `boxes`."""
    point = peak(resized)
    return any(distance_to_box(point, box) <= tolerance for box in boxes)


def box_mask(size: typing.Tuple[int, int], boxes: typing.Sequence[Box]) -> np.ndarray:
    """Boolean (height, width) mask of the pixels inside any of the boxes (clipped to the
    image)."""
    height, width = size
    mask = np.zeros((height, width), dtype=bool)
    for xmin, ymin, xmax, ymax in boxes:
        mask[max(ymin, 0):max(ymax + 1, 0), max(xmin, 0):max(xmax + 1, 0)] = True
    return mask


def energy_share(resized: np.ndarray, boxes: typing.Sequence[Box]) -> float:
    """The share of a map's mass (at the image's size, >= 0) inside the union of `boxes`;
    a map without mass counts as flat."""
    if resized.min() < 0:
        raise ValueError("the energy-based pointing game needs a heatmap >= 0, got a minimum "
                         "of %g" % resized.min())
    inside = box_mask(resized.shape, boxes)
    total = resized.sum()
    if total == 0:
        return float(np.count_nonzero(inside)) / inside.size
    return float(resized[inside].sum() / total)


def pointing_scores(heatmap: np.ndarray, image_size: typing.Tuple[int, int],
                    boxes: typing.Sequence[Box],
                    tolerance: float = POINTING_TOLERANCE) -> typing.Tuple[bool, float]:
    """(pointing game hit, energy share) of a heatmap at any resolution on an image of
    image_size = (height, width), against its class's boxes; the map is resized once."""
    resized = resize_heatmap(heatmap, image_size)
    return pointing_hit(resized, boxes, tolerance), energy_share(resized, boxes)
