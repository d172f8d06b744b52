"""Tests of l2caf.evaluation on hand-built heatmaps whose boxes and scores are known, of its
fast paths against plain full-image computations, of its process pool, and that it never
needs TensorFlow. The 'wsol' protocol: tests/test_wsol_protocol.py."""
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from l2caf.annotations import Annotation, BoxObject
from l2caf.evaluation import (ImageRecord, box_at_threshold, evaluate_records, heatmap_to_box,
                              iou, is_localized, localization_metrics, max_box_acc,
                              record_from_annotation)
from tests.helpers import REPO_ROOT

PROTOCOLS = ("cam", "adl")
IMAGE_SIZE = (40, 50)  # (height, width); the heatmaps below are built at this size
OBJECT_BOX = (10, 8, 29, 27)
FAR_BOX = (35, 30, 46, 37)


def paint(heatmap, box, value):
    """Set the inclusive box (xmin, ymin, xmax, ymax) of heatmap to value."""
    xmin, ymin, xmax, ymax = box
    heatmap[ymin:ymax + 1, xmin:xmax + 1] = value
    return heatmap


def blob_heatmap(box, size=IMAGE_SIZE):
    return paint(np.zeros(size), box, 1.0)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_single_blob_gives_its_box(protocol):
    heatmap = blob_heatmap((10, 5, 17, 9))
    assert heatmap_to_box(heatmap, IMAGE_SIZE, protocol=protocol) == (10, 5, 17, 9)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_larger_blob_wins_over_hotter_smaller_blob(protocol):
    heatmap = np.zeros(IMAGE_SIZE)
    paint(heatmap, (2, 2, 4, 4), 1.0)  # small, holds the maximum
    paint(heatmap, (20, 10, 25, 14), 0.5)  # larger, kept at threshold 0.2
    assert heatmap_to_box(heatmap, IMAGE_SIZE, protocol=protocol) == (20, 10, 25, 14)


def test_cam_components_are_8_connected():
    heatmap = np.zeros(IMAGE_SIZE)
    # Two 2x2 squares meeting at a corner: one component of 8 pixels under 8-connectivity,
    # beating the 6-pixel block (which would win under 4-connectivity).
    paint(heatmap, (0, 0, 1, 1), 1.0)
    paint(heatmap, (2, 2, 3, 3), 1.0)
    paint(heatmap, (30, 20, 32, 21), 1.0)
    assert heatmap_to_box(heatmap, IMAGE_SIZE, protocol="cam") == (0, 0, 3, 3)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_blob_touching_the_border(protocol):
    height, width = IMAGE_SIZE
    box = (0, 30, 4, height - 1)
    assert heatmap_to_box(blob_heatmap(box), IMAGE_SIZE, protocol=protocol) == box
    box = (width - 6, 0, width - 1, 9)
    assert heatmap_to_box(blob_heatmap(box), IMAGE_SIZE, protocol=protocol) == box


def test_threshold_inclusive_for_cam_strict_for_adl():
    # 0.5 is exactly threshold * max: CAM keeps it (>=); ADL scales it to uint8 127 and
    # keeps only values above int(0.5 * 255) = 127.
    heatmap = paint(blob_heatmap((10, 10, 14, 14)), (15, 10, 19, 14), 0.5)
    assert heatmap_to_box(heatmap, IMAGE_SIZE, 0.5, "cam") == (10, 10, 19, 14)
    assert heatmap_to_box(heatmap, IMAGE_SIZE, 0.5, "adl") == (10, 10, 14, 14)


def test_adl_scales_negative_maps_cam_rejects_them():
    heatmap = blob_heatmap((10, 5, 17, 9)) - 3.0
    assert heatmap_to_box(heatmap, IMAGE_SIZE, protocol="adl") == (10, 5, 17, 9)
    with pytest.raises(ValueError, match="maximum"):
        heatmap_to_box(heatmap, IMAGE_SIZE, protocol="cam")


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("value", [0.0, 0.37])
def test_flat_map_gives_the_whole_image(protocol, value):
    box = heatmap_to_box(np.full((7, 7), value), (30, 45), protocol=protocol)
    assert box == (0, 0, 44, 29)


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_non_finite_map_is_rejected(bad_value):
    heatmap = blob_heatmap(OBJECT_BOX)
    heatmap[0, 0] = bad_value
    with pytest.raises(ValueError, match="NaN or infinite"):
        heatmap_to_box(heatmap, IMAGE_SIZE)


@pytest.mark.parametrize("kwargs", [dict(protocol="grabcut"), dict(threshold=1.0),
                                    dict(threshold=-0.1)])
def test_bad_arguments_are_rejected(kwargs):
    with pytest.raises(ValueError):
        heatmap_to_box(blob_heatmap(OBJECT_BOX), IMAGE_SIZE, **kwargs)


def test_non_2d_map_is_rejected():
    with pytest.raises(ValueError, match="2-D"):
        heatmap_to_box(np.ones((1, 7, 7)), IMAGE_SIZE)


def hot_cell_extent(cell, cells=7, pixels=224, threshold=0.2):
    """Pixel range kept around a hot cell of a cells-wide map resized to pixels, by hand.

    Bilinear resizing (pixel centres aligned) samples source coordinate
    s(x) = (x + 0.5) * cells / pixels - 0.5, with weight 1 - |s(x) - cell| on the hot cell.
    No output pixel lands on the cell centre: the nearest are 0.5 * cells / pixels away, so
    the peak is (1 - d)^2 with d = 0.5 * cells / pixels. The box's extreme pixels lie on the
    peak's row, where the weight across is 1 - d, and need
    (1 - |s(x) - cell|) * (1 - d) >= threshold * (1 - d)^2, i.e.
    |s(x) - cell| <= 1 - threshold * (1 - d).
    """
    scale = pixels / cells
    reach = 1.0 - threshold * (1.0 - 0.5 / scale)
    first = int(np.ceil((cell - reach + 0.5) * scale - 0.5))
    last = int(np.floor((cell + reach + 0.5) * scale - 0.5))
    return first, last


def test_hot_cell_of_7x7_map_boxes_its_region_at_224():
    heatmap = np.zeros((7, 7))
    heatmap[2, 3] = 1.0
    xmin, xmax = hot_cell_extent(3)
    ymin, ymax = hot_cell_extent(2)
    assert (xmin, xmax, ymin, ymax) == (86, 137, 54, 105)  # the formula, worked by hand
    box = heatmap_to_box(heatmap, (224, 224))
    assert box == (xmin, ymin, xmax, ymax)
    # The box covers the cell's own 32x32 patch, centred on it.
    assert box[0] <= 3 * 32 and box[2] >= 4 * 32 - 1 and box[1] <= 2 * 32 and box[3] >= 3 * 32 - 1
    assert box[0] + box[2] == 2 * 3 * 32 + 31 and box[1] + box[3] == 2 * 2 * 32 + 31


def test_cam_ties_in_area_go_to_the_first_component_in_opencvs_order():
    # OpenCV labels components in the order of their first 2 x 2 block (pairs of rows from
    # the top, then pairs of columns): A's first block holds rows 10-11, B's rows 12-13, so
    # A comes first although B lies further left; the first of equal areas wins.
    heatmap = np.zeros(IMAGE_SIZE)
    paint(heatmap, (30, 11, 33, 14), 1.0)  # A
    paint(heatmap, (10, 12, 13, 15), 1.0)  # B
    assert heatmap_to_box(heatmap, IMAGE_SIZE, 0.5, "cam") == (30, 11, 33, 14)


def test_cam_counts_a_component_inside_anothers_hole():
    # A one-pixel ring around a larger solid square in its hole: the square wins.
    heatmap = np.zeros(IMAGE_SIZE)
    paint(heatmap, (5, 5, 34, 34), 1.0)
    paint(heatmap, (6, 6, 33, 33), 0.0)
    paint(heatmap, (8, 8, 31, 31), 1.0)
    assert heatmap_to_box(heatmap, IMAGE_SIZE, 0.5, "cam") == (8, 8, 31, 31)


def test_box_at_threshold_takes_an_image_sized_map():
    assert box_at_threshold(blob_heatmap(OBJECT_BOX), 0.2, "adl") == OBJECT_BOX


def test_iou_of_disjoint_nested_identical_boxes():
    box = (0, 0, 9, 9)
    assert iou(box, (20, 20, 29, 29)) == 0.0
    assert iou(box, (2, 2, 5, 5)) == pytest.approx(16 / 100)  # inner 4x4 in outer 10x10
    assert iou((2, 2, 5, 5), box) == pytest.approx(16 / 100)
    assert iou(box, box) == 1.0
    assert iou((3, 3, 3, 3), (3, 3, 3, 3)) == 1.0  # a one-pixel box has area 1


def test_iou_counts_a_shared_pixel_column():
    # Sharing column x = 9: an overlap of 1 x 10 pixels over 100 + 100 - 10.
    assert iou((0, 0, 9, 9), (9, 0, 18, 9)) == pytest.approx(10 / 190)
    # Side by side with no shared column: no overlap.
    assert iou((0, 0, 9, 9), (10, 0, 19, 9)) == 0.0
    assert iou((0, 0, 9, 9), (0, 10, 9, 19)) == 0.0


def test_is_localized_needs_any_gt_box_at_the_iou_threshold():
    box = (0, 0, 9, 9)
    half = (0, 0, 19, 9)  # IoU exactly 0.5
    assert is_localized(box, [half])
    assert not is_localized(box, [(0, 0, 20, 9)])
    assert is_localized(box, [(30, 30, 39, 39), (1, 0, 9, 9)])  # the second one counts
    assert not is_localized(box, [(30, 30, 39, 39)])
    assert not is_localized(box, [])
    assert not is_localized(box, [half], iou_threshold=0.6)


def record(predictions, heatmap_boxes, gt_boxes=None, image="img"):
    """A record whose only ground-truth class is 1, with one box OBJECT_BOX by default."""
    gt_boxes = gt_boxes or {1: [OBJECT_BOX]}
    heatmaps = {label: blob_heatmap(box) for label, box in heatmap_boxes.items()}
    return ImageRecord(image=image, gt_labels=set(gt_boxes), gt_boxes=gt_boxes,
                       predictions=predictions, heatmaps=heatmaps, image_size=IMAGE_SIZE)


def test_right_class_right_box_is_localized_everywhere():
    metrics = localization_metrics([record([1, 2, 3, 4, 5], {1: OBJECT_BOX})])
    assert metrics == (1, 0.0, 0.0, 0.0, 0.0, 100.0, 0)


def test_right_class_wrong_box_is_not_localized():
    metrics = localization_metrics([record([1, 2, 3, 4, 5], {1: FAR_BOX})])
    assert (metrics.top1_cls_error, metrics.top1_loc_error, metrics.top5_loc_error,
            metrics.gt_known_loc_accuracy) == (0.0, 100.0, 100.0, 0.0)


def test_right_box_of_a_wrong_class_is_not_localized():
    # Class 2 is predicted and its heatmap lands on the object, but 2 is not in the ground
    # truth; the ground-truth class's own heatmap makes GT-known right.
    metrics = localization_metrics(
        [record([2, 3, 4, 5, 6], {2: OBJECT_BOX, 1: OBJECT_BOX})])
    assert (metrics.top1_cls_error, metrics.top5_cls_error) == (100.0, 100.0)
    assert (metrics.top1_loc_error, metrics.top5_loc_error) == (100.0, 100.0)
    assert metrics.gt_known_loc_accuracy == 100.0


def test_box_must_match_a_gt_box_of_its_own_class():
    gt_boxes = {1: [OBJECT_BOX], 2: [FAR_BOX]}
    metrics = localization_metrics([record([2, 1], {2: OBJECT_BOX}, gt_boxes)])
    assert metrics.top1_cls_error == 0.0
    assert metrics.top1_loc_error == 100.0


def test_any_of_several_gt_boxes_counts():
    gt_boxes = {1: [FAR_BOX, OBJECT_BOX]}
    metrics = localization_metrics([record([1], {1: OBJECT_BOX}, gt_boxes)])
    assert metrics.top1_loc_error == 0.0


def test_right_class_in_third_place_counts_for_top5_only():
    metrics = localization_metrics([record([4, 5, 1, 6, 7], {1: OBJECT_BOX})])
    assert (metrics.top1_cls_error, metrics.top5_cls_error) == (100.0, 0.0)
    assert (metrics.top1_loc_error, metrics.top5_loc_error) == (100.0, 0.0)


def test_right_class_in_sixth_place_is_ignored():
    metrics = localization_metrics([record([2, 3, 4, 5, 6, 1], {1: OBJECT_BOX})])
    assert (metrics.top5_cls_error, metrics.top5_loc_error) == (100.0, 100.0)
    assert metrics.gt_known_loc_accuracy == 100.0


def test_missing_heatmap_is_not_localized_and_counted():
    metrics = localization_metrics([record([1, 2], {2: OBJECT_BOX})])
    assert metrics.top1_cls_error == 0.0
    assert (metrics.top1_loc_error, metrics.gt_known_loc_accuracy) == (100.0, 0.0)
    assert metrics.missing_heatmaps == 1


def test_metrics_average_over_images():
    records = [
        record([1, 2, 3, 4, 5], {1: OBJECT_BOX}),  # everything right
        record([2, 3, 1, 4, 5], {1: OBJECT_BOX}),  # top-5 right, top-1 wrong
        record([1, 2, 3, 4, 5], {1: FAR_BOX}),  # classified right, box wrong
        record([2, 3, 4, 5, 6], {1: OBJECT_BOX}),  # classified wrong, GT box right
        record([1, 2, 3, 4, 5], {}),  # no heatmap
    ]
    metrics = localization_metrics(records)
    assert metrics.num_images == 5
    assert metrics.top1_cls_error == pytest.approx(40.0)  # images 1, 3, 5 right
    assert metrics.top5_cls_error == pytest.approx(20.0)  # all but image 4
    assert metrics.top1_loc_error == pytest.approx(80.0)  # image 1
    assert metrics.top5_loc_error == pytest.approx(60.0)  # images 1, 2
    assert metrics.gt_known_loc_accuracy == pytest.approx(60.0)  # images 1, 2, 4
    assert metrics.missing_heatmaps == 1


def test_metrics_use_threshold_and_protocol():
    # The heatmap covers the object at 0.3 and only a small core at 1.0: a threshold of
    # 0.2 boxes the object, 0.5 only the core.
    heatmap = paint(paint(np.zeros(IMAGE_SIZE), OBJECT_BOX, 0.3), (18, 16, 21, 19), 1.0)
    image = ImageRecord("img", {1}, {1: [OBJECT_BOX]}, [1], {1: heatmap}, IMAGE_SIZE)
    for protocol in PROTOCOLS:
        assert localization_metrics([image], 0.2, protocol).top1_loc_error == 0.0
        assert localization_metrics([image], 0.5, protocol).top1_loc_error == 100.0


def test_no_records_is_an_error():
    with pytest.raises(ValueError, match="no records"):
        localization_metrics([])
    with pytest.raises(ValueError, match="no records"):
        max_box_acc([])


def ringed_heatmap(ring_value, size=(40, 40)):
    """Background 0.055, a ring at ring_value over GT box (10, 10, 29, 29), core 1.0."""
    heatmap = paint(np.full(size, 0.055), (10, 10, 29, 29), ring_value)
    return paint(heatmap, (15, 15, 19, 19), 1.0)


def ringed_record(ring_value):
    # Boxed at a threshold t: the whole image (IoU 0.25) for t <= 0.055, the GT box up to
    # t = ring_value, then the 5x5 core (IoU 25/400).
    return ImageRecord("img", {1}, {1: [(10, 10, 29, 29)]}, [1],
                       {1: ringed_heatmap(ring_value)}, (40, 40))


def test_max_box_acc_picks_the_best_threshold():
    records = [ringed_record(0.5), ringed_record(0.4)]
    # Right for both at 0.3; at 0.45 only for the first; at 0.05 and 0.7 for neither.
    result = max_box_acc(records, thresholds=[0.05, 0.45, 0.3, 0.7])
    assert result == (pytest.approx(100.0), 0.3)
    result = max_box_acc(records, thresholds=[0.05, 0.45, 0.7])
    assert result == (pytest.approx(50.0), 0.45)


def test_max_box_acc_default_sweep_reports_the_first_best_threshold():
    accuracy, threshold = max_box_acc([ringed_record(0.5)])
    assert accuracy == pytest.approx(100.0)
    assert threshold == pytest.approx(0.06)  # the first step above the background 0.055


def test_record_from_annotation():
    annotation = Annotation(filename="ILSVRC2012_val_00000007", width=50, height=40, objects=[
        BoxObject("n02", (1, 2, 10, 12)), BoxObject("n01", (5, 5, 9, 9)),
        BoxObject("n02", (20, 21, 30, 31))])
    heatmaps = {8: np.ones((7, 7))}
    image = record_from_annotation(annotation, {"n01": 3, "n02": 8}, [8, 3], heatmaps)
    assert image.image == "ILSVRC2012_val_00000007"
    assert tuple(image.gt_labels) == (8, 3)
    assert image.gt_boxes == {8: [(1, 2, 10, 12), (20, 21, 30, 31)], 3: [(5, 5, 9, 9)]}
    assert image.predictions == [8, 3]
    assert image.heatmaps is heatmaps
    assert image.image_size == (40, 50)
    with pytest.raises(KeyError, match="n02"):
        record_from_annotation(annotation, {"n01": 3}, [3], {})


def test_record_from_annotation_takes_class_ids_as_they_are():
    # wsolevaluation's metadata labels objects with class ids, not names.
    annotation = Annotation(filename="val/ILSVRC2012_val_00000001.JPEG", width=500, height=375,
                            objects=[BoxObject(65, (111, 108, 441, 193))])
    image = record_from_annotation(annotation, {"n01440764": 0, "n01751748": 65}, [65], {})
    assert tuple(image.gt_labels) == (65,)
    assert image.gt_boxes == {65: [(111, 108, 441, 193)]}
    with pytest.raises(KeyError, match="class id 65, which is not one of the 1 classes"):
        record_from_annotation(annotation, {"n01440764": 0}, [0], {})


# The fast paths (boxes on the kept pixels' extent, one component without statistics,
# thresholds skipped when no box could reach the IoU) against plain full-image computations.

def plain_cam_box(resized, threshold):
    """The largest 8-connected component of the whole thresholded map; ties to the first in
    raster order (OpenCV numbers components in that order)."""
    mask = (resized >= threshold * resized.max()).astype(np.uint8)
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    label = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, width, height = stats[label, :4]
    return (x, y, x + width - 1, y + height - 1)


def plain_adl_box(resized, threshold):
    gray = ((resized - resized.min()) / (resized.max() - resized.min()) * 255).astype(np.uint8)
    binary = (gray > int(threshold * 255)).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    x, y, width, height = cv2.boundingRect(max(contours, key=cv2.contourArea))
    return (x, y, x + width - 1, y + height - 1)


PLAIN_BOXES = {"cam": plain_cam_box, "adl": plain_adl_box}


def random_records(count, seed=0):
    """Records of one class with 7x7 maps (blobs, noise, and quantised levels that make
    equal areas and equal cuts), image-sized maps of up to 12 equal squares (ties in area;
    one, a few and many components), and one or two ground-truth boxes near the map's
    peak."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:7, 0:7]
    records = []
    for index in range(count):
        height, width = int(rng.integers(40, 160)), int(rng.integers(40, 160))
        kind = index % 4
        if kind == 0:
            heatmap = sum(rng.uniform(0.3, 1.0) * np.exp(
                -((rows - rng.uniform(0, 7)) ** 2 + (columns - rng.uniform(0, 7)) ** 2)
                / (2 * rng.uniform(0.4, 2.0) ** 2)) for _ in range(int(rng.integers(1, 4))))
        elif kind == 1:
            heatmap = rng.uniform(0, 1, (7, 7)) ** 3
        elif kind == 2:
            heatmap = np.round(rng.uniform(0, 1, (5, 6)) * 4) / 4
        else:
            heatmap = np.zeros((height, width))
            for _ in range(int(rng.integers(2, 13))):
                x, y = int(rng.integers(0, width - 5)), int(rng.integers(0, height - 5))
                paint(heatmap, (x, y, x + 3, y + 3), 1.0)
        peak_y, peak_x = np.unravel_index(np.argmax(heatmap), heatmap.shape)
        center_x = (peak_x + 0.5) * width / heatmap.shape[1]
        center_y = (peak_y + 0.5) * height / heatmap.shape[0]
        boxes = []
        for _ in range(int(rng.integers(1, 3))):
            half_width = rng.uniform(0.05, 0.4) * width
            half_height = rng.uniform(0.05, 0.4) * height
            boxes.append((int(max(0, center_x - half_width)), int(max(0, center_y - half_height)),
                          int(min(width - 1, center_x + half_width)),
                          int(min(height - 1, center_y + half_height))))
        records.append(ImageRecord("image%d" % index, (1,), {1: boxes}, [1, 2],
                                   {1: heatmap}, (height, width)))
    return records


THRESHOLDS = np.round(np.arange(0, 1, 0.05), 10)
# A fine stretch, where thresholds share adl's cut int(threshold * 255) (boxed once).
FINE_THRESHOLDS = np.round(np.arange(0.3, 0.34, 0.002), 10)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_boxes_equal_a_plain_full_image_computation(protocol):
    for image in random_records(40):
        resized = cv2.resize(image.heatmaps[1], image.image_size[::-1],
                             interpolation=cv2.INTER_LINEAR)
        for threshold in THRESHOLDS:
            assert box_at_threshold(resized, threshold, protocol) == \
                PLAIN_BOXES[protocol](resized, threshold), (image.image, threshold)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("iou_threshold", [0.3, 0.5, 0.7])
def test_sweep_equals_boxing_every_threshold_plainly(protocol, iou_threshold):
    records = random_records(40, seed=1)
    thresholds = np.concatenate([THRESHOLDS, FINE_THRESHOLDS])
    hits = np.zeros(len(thresholds))
    for image in records:
        resized = cv2.resize(image.heatmaps[1], image.image_size[::-1],
                             interpolation=cv2.INTER_LINEAR)
        hits += [any(iou(PLAIN_BOXES[protocol](resized, threshold), gt_box) >= iou_threshold
                     for gt_box in image.gt_boxes[1]) for threshold in thresholds]
    # The data must give hits and misses, or the sweep's skipping would go untested.
    assert 0 < hits.sum() < len(records) * len(thresholds)
    best = int(np.argmax(hits))
    result = max_box_acc(records, thresholds, iou_threshold, protocol)
    assert result == (pytest.approx(100.0 * hits[best] / len(records)), thresholds[best])
    for index in (0, 5, 10):
        metrics = localization_metrics(records, THRESHOLDS[index], protocol, iou_threshold)
        assert metrics.gt_known_loc_accuracy == pytest.approx(100.0 * hits[index] / len(records))


@pytest.mark.parametrize("protocol", ["cam", "adl", "wsol"])
def test_the_pool_gives_the_numbers_of_one_process(protocol):
    records = random_records(24, seed=2)
    alone = evaluate_records(records, protocol, 0.3, THRESHOLDS, workers=1)
    done = []
    pooled = evaluate_records(records, protocol, 0.3, THRESHOLDS, workers=2,
                              progress=done.append)
    assert pooled == alone
    assert sum(done) == len(records) and len(done) > 1  # chunks went to the pool
    assert (alone.max_box_acc_v2 is None) == (protocol != "wsol")


def test_the_evaluation_never_imports_tensorflow():
    """Also through the pool: its processes import only what the evaluation does."""
    code = textwrap.dedent("""
        import sys
        sys.modules["tensorflow"] = None  # any import of it now fails
        import numpy as np
        import l2caf.evaluation as evaluation
        heatmap = np.zeros((7, 7))
        heatmap[2:4, 2:4] = 1.0
        records = [evaluation.ImageRecord("image%d" % index, (1,), {1: [(60, 60, 140, 140)]},
                                          [1], {1: heatmap}, (224, 224)) for index in range(4)]
        for protocol in evaluation.PROTOCOLS:
            print(protocol, evaluation.evaluate_records(records, protocol, workers=2))
        print(sorted(name for name in sys.modules if name.split(".")[0] in ("nets", "tf_slim")))
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines[:3]] == ["cam", "adl", "wsol"]
    assert lines[3] == "[]"
