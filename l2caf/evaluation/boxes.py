"""Boxes from heatmaps at the image's own size (the 'cam' and 'adl' protocols), and IoU.

A heatmap becomes one box by resizing it bilinearly to the image and thresholding it at a
fraction of its maximum; two published recipes (`protocol`):

* 'cam' (Zhou et al. 2016, used for the L2-CAF paper's Tables 1 and 3): keep the pixels
  >= threshold * max of the resized map; the box of the largest 8-connected component.
* 'adl' (Choe & Shim 2019, their Python code, used for Table 2): min-max scale the resized
  map to uint8 0..255; keep the pixels > int(threshold * 255); the bounding rectangle of the
  external contour with the largest area.

Boxes are (xmin, ymin, xmax, ymax) in inclusive pixel coordinates, like the ImageNet and
VOC annotations. (ADL's code returned x + w as xmax, one pixel beyond the contour; here both
protocols return the contour's last pixel, so they agree on the same blob.) The benchmark's
recipe, at 224 x 224, is l2caf.evaluation.wsol.
"""
from typing import Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from l2caf.heatmaps import resize_heatmap

IMAGE_SIZE_PROTOCOLS = ("cam", "adl")
# (xmin, ymin, xmax, ymax), inclusive pixel coordinates.
Box = Tuple[int, int, int, int]
# Up to this many components, the largest is found by counting each one's pixels.
_FEW_COMPONENTS = 8


def check_threshold(threshold: float) -> None:
    """Raises ValueError unless threshold is a fraction of the maximum in [0, 1)."""
    if not 0.0 <= threshold < 1.0:
        raise ValueError("threshold is a fraction of the maximum in [0, 1), got %r"
                         % (threshold,))


def _first_and_last(flags):
    indices = np.flatnonzero(flags)
    return int(indices[0]), int(indices[-1])


class ImageSizedMap(object):
    """A heatmap at its image's size, boxed at any threshold under 'cam' or 'adl'.

    What a threshold sweep needs is computed once: the 'adl' grey levels, and the maxima of
    every row and column, from which `extent` bounds the kept pixels without thresholding
    the whole map.
    """

    def __init__(self, resized: np.ndarray, protocol: str = "cam"):
        if protocol not in IMAGE_SIZE_PROTOCOLS:
            raise ValueError("unknown protocol %r; choose one of %s"
                             % (protocol, ", ".join(IMAGE_SIZE_PROTOCOLS)))
        self.resized = resized
        self.protocol = protocol
        self.flat = resized.min() == resized.max()
        if self.flat:
            return
        if protocol == "cam":
            self.peak = resized.max()
            if self.peak < 0:
                raise ValueError("the 'cam' protocol keeps pixels >= a fraction of the maximum, "
                                 "which needs a maximum >= 0; got %g" % self.peak)
            levels = resized
        else:
            low = resized.min()
            # Truncation to uint8, as in ADL's code: only the maximum maps to 255.
            self.gray = ((resized - low) / (resized.max() - low) * 255.0).astype(np.uint8)
            levels = self.gray
        self.row_peaks = levels.max(axis=1)
        self.column_peaks = levels.max(axis=0)

    def cut(self, threshold: float) -> Optional[float]:
        """What the threshold keeps pixels by, the same for thresholds that keep the same
        pixels: 'cam' keeps those >= the level threshold * max, 'adl' those > the grey level
        int(threshold * 255); a flat map keeps all."""
        if self.flat:
            return None
        if self.protocol == "cam":
            return threshold * self.peak
        return int(threshold * int(self.gray.max()))

    def _kept_rows_and_columns(self, threshold):
        """Boolean flags of the rows and columns holding a pixel the threshold keeps."""
        cut = self.cut(threshold)
        if self.protocol == "cam":
            return self.row_peaks >= cut, self.column_peaks >= cut
        return self.row_peaks > cut, self.column_peaks > cut

    def extent(self, threshold: float) -> Optional[Box]:
        """The bounding box of the pixels kept at threshold, which holds the box; None for a
        flat map (whose box is the whole image)."""
        if self.flat:
            return None
        rows, columns = self._kept_rows_and_columns(threshold)
        top, bottom = _first_and_last(rows)
        left, right = _first_and_last(columns)
        return (left, top, right, bottom)

    def box(self, threshold: float) -> Box:
        """The protocol's box at threshold (see `box_at_threshold`)."""
        if self.flat:
            # Nothing stands out, so nothing can be excluded: the whole image.
            height, width = self.resized.shape
            return (0, 0, width - 1, height - 1)
        if self.protocol == "cam":
            return self._largest_component_box(threshold)
        return self._largest_contour_box(threshold)

    def boxes(self, threshold: float) -> List[Box]:
        """[the box at threshold]: the sweep's interface, shared with wsol.ScoreMap (whose
        list goes on with other contours' boxes)."""
        return [self.box(threshold)]

    def _largest_component_box(self, threshold):
        extent = self.extent(threshold)
        # Labelling is the cost, so it runs on the kept pixels' extent only: the components
        # are the same. Their order, which breaks ties in area, is that of OpenCV's 2 x 2
        # blocks (pairs of rows, then pairs of columns), so the crop starts on even
        # coordinates to keep the blocks of the whole map.
        left, top = extent[0] - extent[0] % 2, extent[1] - extent[1] % 2
        mask = (self.resized[top:extent[3] + 1, left:extent[2] + 1] >= self.cut(threshold))
        mask = mask.view(np.uint8)
        # Most thresholds leave one component, whose box is the extent. Tracing borders
        # tells faster than labelling: each 8-connected component has one outer border,
        # the contours without a parent under RETR_CCOMP.
        _, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        if np.count_nonzero(hierarchy[0, :, 3] < 0) == 1:
            return extent
        count, labels = cv2.connectedComponents(mask, connectivity=8)
        if count - 1 <= _FEW_COMPONENTS:
            # Counting a few labels' pixels is cheaper than OpenCV's statistics of all.
            areas = [np.count_nonzero(labels == label) for label in range(1, count)]
            in_largest = labels == 1 + int(np.argmax(areas))
            top_row, bottom_row = _first_and_last(in_largest.any(axis=1))
            left_column, right_column = _first_and_last(in_largest.any(axis=0))
            return (left + left_column, top + top_row, left + right_column, top + bottom_row)
        _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        largest = 1 + np.argmax(stats[1:, cv2.CC_STAT_AREA])
        x, y, box_width, box_height = (int(value) for value in stats[largest, :cv2.CC_STAT_AREA])
        return (left + x, top + y, left + x + box_width - 1, top + y + box_height - 1)

    def _largest_contour_box(self, threshold):
        _, binary = cv2.threshold(self.gray, self.cut(threshold), 255, cv2.THRESH_BINARY)
        contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        left, top, box_width, box_height = cv2.boundingRect(max(contours, key=cv2.contourArea))
        return (left, top, left + box_width - 1, top + box_height - 1)


def box_at_threshold(resized: np.ndarray, threshold: float = 0.2, protocol: str = "cam") -> Box:
    """The box of a heatmap already at the image's size (see `heatmap_to_box`)."""
    check_threshold(threshold)
    return ImageSizedMap(resized, protocol).box(threshold)


def heatmap_to_box(heatmap: np.ndarray, image_size: Tuple[int, int], threshold: float = 0.2,
                   protocol: str = "cam") -> Box:
    """The localisation box of a heatmap on an image of image_size = (height, width).

    heatmap: 2-D array at any resolution, resized bilinearly to the image. threshold: the
    fraction of the maximum that a pixel must reach, in [0, 1). protocol: 'cam' or 'adl'
    (see the module docstring). A flat map (all values equal, all zeros included) gives the
    whole image. Raises ValueError for NaN or infinite values, and under 'cam' for a map
    whose maximum is negative (a fraction of it would keep nothing).
    Returns (xmin, ymin, xmax, ymax), inclusive pixel coordinates.
    """
    if protocol not in IMAGE_SIZE_PROTOCOLS:
        raise ValueError("unknown protocol %r for a box at the image's size; choose one of %s "
                         "(the benchmark's boxes at 224 x 224: l2caf.evaluation.wsol)"
                         % (protocol, ", ".join(IMAGE_SIZE_PROTOCOLS)))
    return box_at_threshold(resize_heatmap(heatmap, image_size), threshold, protocol)


def area(box: Sequence[int]) -> int:
    """Pixels in an inclusive box: x0..x1 is x1 - x0 + 1 wide."""
    return (box[2] - box[0] + 1) * (box[3] - box[1] + 1)


def intersection(box_a: Sequence[int], box_b: Sequence[int]) -> int:
    """Pixels two inclusive boxes share; 0 for disjoint boxes."""
    inter_width = min(box_a[2], box_b[2]) - max(box_a[0], box_b[0]) + 1
    inter_height = min(box_a[3], box_b[3]) - max(box_a[1], box_b[1]) + 1
    if inter_width <= 0 or inter_height <= 0:
        return 0
    return inter_width * inter_height


def iou(box_a: Sequence[int], box_b: Sequence[int]) -> float:
    """Intersection over union of two inclusive boxes (a box of x0..x1 is x1 - x0 + 1 wide,
    as in CAM's, ADL's and wsolevaluation's code); 0 for disjoint boxes."""
    shared = intersection(box_a, box_b)
    if not shared:
        return 0.0
    return shared / float(area(box_a) + area(box_b) - shared)


def is_localized(box: Sequence[int], gt_boxes: Iterable[Sequence[int]],
                 iou_threshold: float = 0.5) -> bool:
    """Whether box overlaps any of gt_boxes with IoU >= iou_threshold."""
    return any(iou(box, gt_box) >= iou_threshold for gt_box in gt_boxes)
