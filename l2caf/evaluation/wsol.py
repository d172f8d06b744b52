"""The box recipe of wsolevaluation (Choe et al., CVPR 2020, "Evaluating Weakly Supervised
Object Localization Methods Right", github.com/clovaai/wsolevaluation), the benchmark behind
MaxBoxAcc and MaxBoxAccV2: the 'wsol' protocol.

Written after its inference.py and evaluation.py (MIT licence), step by step:

* the heatmap, as float64, is resized with bicubic interpolation to 224 x 224 (whatever the
  image's size: the benchmark scores the network's 224 x 224 input), then min-max normalised
  to [0, 1]; a map flat after the resize becomes all zeros (the resize can leave rounding
  ripples of 1e-16 on some constant maps, e.g. 0.37, which are then normalised like any
  map: the benchmark does the same);
* the score map becomes uint8 as (map * 255), truncated: only the maximum reaches 255;
* at a threshold t (a fraction of the maximum) the pixels > int(t * max) are kept, and
  cv2.findContours(RETR_TREE, CHAIN_APPROX_SIMPLE) traces them: outer contours and holes;
* a contour's box is its bounding rectangle (x, y, w, h) as (x, y, min(x + w, 223),
  min(y + h, 223)): one pixel beyond the contour, clipped to the map; no contour (a flat
  map) gives the box (0, 0, 0, 0);
* the box is that of the contour with the largest cv2.contourArea (the first of equals);
  MaxBoxAccV2 tries every contour's box;
* ground-truth boxes are scaled to 224 x 224 coordinate by coordinate, truncated:
  int(x * 224 / width), int(y * 224 / height).

The IoU is l2caf.evaluation.boxes.iou (inclusive boxes, the benchmark's + 1 convention).
"""
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from l2caf.heatmaps import check_finite_2d

if TYPE_CHECKING:
    from l2caf.evaluation.boxes import Box

RESIZE_LENGTH = 224
_LAST_PIXEL = RESIZE_LENGTH - 1


def normalized_scoremap(heatmap: np.ndarray) -> np.ndarray:
    """The heatmap resized bicubically to 224 x 224 and min-max normalised to [0, 1] (a flat
    map: all zeros), as the benchmark's inference does. Raises ValueError for a map that is
    not 2-D or holds NaN or infinity (the benchmark would score NaN as a flat map)."""
    heatmap = check_finite_2d(heatmap)
    resized = cv2.resize(heatmap, (RESIZE_LENGTH, RESIZE_LENGTH), interpolation=cv2.INTER_CUBIC)
    if resized.min() == resized.max():
        return np.zeros_like(resized)
    # In two steps, as the benchmark: the maximum becomes exactly 1.
    shifted = resized - resized.min()
    return shifted / shifted.max()


def score_image(heatmap: np.ndarray) -> np.ndarray:
    """The benchmark's uint8 score map of a heatmap: (normalised map * 255), truncated."""
    return (normalized_scoremap(heatmap) * 255).astype(np.uint8)


def scale_box(box: Sequence[float], image_size: Tuple[int, int]) -> "Box":
    """A ground-truth box (x0, y0, x1, y1) on an image of image_size = (height, width),
    scaled to 224 x 224 and truncated per coordinate, as the benchmark's resize_bbox."""
    height, width = image_size
    x0, y0, x1, y1 = (float(value) for value in box)
    return (int(x0 * RESIZE_LENGTH / width), int(y0 * RESIZE_LENGTH / height),
            int(x1 * RESIZE_LENGTH / width), int(y1 * RESIZE_LENGTH / height))


def _clipped_box(left, top, right_end, bottom_end):
    """The benchmark's box of a contour whose pixels end before right_end and bottom_end."""
    return (left, top, min(right_end, _LAST_PIXEL), min(bottom_end, _LAST_PIXEL))


class ScoreMap(object):
    """A heatmap as the benchmark scores it: the uint8 224 x 224 score map, boxed at any
    threshold.

    The maxima of every row and column give `extent` without thresholding the map.
    """

    def __init__(self, heatmap: np.ndarray):
        self.image = score_image(heatmap)
        self.peak = int(self.image.max())
        self.row_peaks = self.image.max(axis=1)
        self.column_peaks = self.image.max(axis=0)

    def cut(self, threshold: float) -> int:
        """The grey level pixels must exceed at threshold: int(threshold * max). Thresholds act
        through it only."""
        return int(threshold * self.peak)

    def extent(self, threshold: float) -> Optional["Box"]:
        """A box holding every box of `boxes(threshold)`: the kept pixels' bounding box, one
        pixel wider to the right and bottom as the boxes are, clipped; None when no pixel is
        kept (the box is (0, 0, 0, 0))."""
        cut = self.cut(threshold)
        rows = np.flatnonzero(self.row_peaks > cut)
        if not len(rows):
            return None
        columns = np.flatnonzero(self.column_peaks > cut)
        return _clipped_box(int(columns[0]), int(rows[0]), int(columns[-1]) + 1,
                            int(rows[-1]) + 1)

    def boxes(self, threshold: float) -> List["Box"]:
        """The boxes at threshold: the largest contour's first (the MaxBoxAcc box), then the
        other contours' (MaxBoxAccV2 tries them all), in findContours' order."""
        _, binary = cv2.threshold(self.image, self.cut(threshold), 255, cv2.THRESH_BINARY)
        contours, _ = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
        if not contours:
            return [(0, 0, 0, 0)]
        boxes = []
        for contour in contours:
            left, top, box_width, box_height = cv2.boundingRect(contour)
            boxes.append(_clipped_box(left, top, left + box_width, top + box_height))
        # max() keeps the first of equal areas, as the benchmark's max(contours, key=...).
        largest = max(range(len(contours)), key=lambda index: cv2.contourArea(contours[index]))
        return [boxes[largest]] + boxes[:largest] + boxes[largest + 1:]

    def box(self, threshold: float) -> "Box":
        """The box of the largest contour at threshold."""
        return self.boxes(threshold)[0]
