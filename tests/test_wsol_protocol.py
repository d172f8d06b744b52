"""The 'wsol' protocol (wsolevaluation's box evaluation) on hand-made maps whose boxes and
scores are worked out here, and on random 7x7 maps against a plain transcription of the
benchmark's recipe."""
import numpy as np
import pytest

from l2caf.evaluation import (ImageRecord, evaluate_records, localization_metrics, max_box_acc,
                              max_box_acc_v2)
from l2caf.evaluation.wsol import ScoreMap, normalized_scoremap, scale_box
from tests.helpers import plain_boxes

SIZE = (224, 224)  # maps made at the benchmark's size pass its resize unchanged
GT_BOX = (50, 50, 149, 149)


def paint(heatmap, box, value):
    """Set the inclusive box (xmin, ymin, xmax, ymax) of heatmap to value."""
    xmin, ymin, xmax, ymax = box
    heatmap[ymin:ymax + 1, xmin:xmax + 1] = value
    return heatmap


def blob(box, value=1.0):
    return paint(np.zeros(SIZE), box, value)


def record(heatmap, gt_boxes=(GT_BOX,), image_size=SIZE, name="image"):
    """One class, 1; on a 224 x 224 image its boxes keep their coordinates."""
    return ImageRecord(name, (1,), {1: list(gt_boxes)}, [1], {1: heatmap}, image_size)


def test_a_box_ends_one_pixel_beyond_its_contour():
    # A blob over x 10..29, y 20..39: bounding rectangle (10, 20, 20, 20), box (x, y, x + w,
    # y + h).
    assert ScoreMap(blob((10, 20, 29, 39))).box(0.2) == (10, 20, 30, 40)


def test_a_box_is_clipped_to_the_last_pixel():
    # x + w = 224 and y + h = 224, clipped to 223.
    assert ScoreMap(blob((200, 210, 223, 223))).box(0.2) == (200, 210, 223, 223)


@pytest.mark.parametrize("value", [0.0, 0.5, -2.0])
def test_a_flat_map_is_all_zeros_and_has_the_box_0_0_0_0(value):
    heatmap = np.full((7, 7), value)
    assert not normalized_scoremap(heatmap).any()
    scored = ScoreMap(heatmap)
    for threshold in (0.0, 0.5, 0.99):
        assert scored.boxes(threshold) == [(0, 0, 0, 0)]


def test_flatness_is_judged_after_the_bicubic_resize_as_the_benchmark_does():
    # Resizing a constant 0.37 leaves ripples of about 1e-16 (0.0, 0.5 and -2.0 resize
    # exactly): not flat, so normalised to 0..1 like any map, and boxed like any map.
    heatmap = np.full((7, 7), 0.37)
    assert normalized_scoremap(heatmap).max() == 1.0
    for threshold in (0.0, 0.5, 0.99):
        largest, every = plain_boxes(heatmap, threshold)
        assert ScoreMap(heatmap).boxes(threshold)[0] == largest


def test_ground_truth_boxes_are_scaled_to_224_and_truncated():
    # 111 * 224 / 500 = 49.728, 108 * 224 / 375 = 64.512, 441 * 224 / 500 = 197.568,
    # 351 * 224 / 375 = 209.664.
    assert scale_box((111, 108, 441, 351), (375, 500)) == (49, 64, 197, 209)
    assert scale_box((0, 0, 99, 49), (50, 100)) == (0, 0, 221, 219)  # 221.76, 219.52


def test_pixels_must_exceed_int_threshold_times_255():
    # 0.5 becomes int(127.5) = 127; at 0.5 the cut is int(127.5) = 127 and 127 is not above
    # it; at 0.49 the cut is int(124.95) = 124.
    heatmap = paint(blob((10, 10, 19, 19)), (20, 10, 29, 19), 0.5)
    scored = ScoreMap(heatmap)
    assert scored.box(0.5) == (10, 10, 20, 20)
    assert scored.box(0.49) == (10, 10, 30, 20)


def test_maps_are_min_max_normalised():
    heatmap = paint(blob((10, 10, 19, 19)), (20, 10, 29, 19), 0.5)
    shifted = ScoreMap(heatmap * 3.0 - 7.0)
    assert shifted.box(0.5) == (10, 10, 20, 20)
    assert shifted.box(0.49) == (10, 10, 30, 20)


def ring():
    """A square ring: outer pixels 40..99, hole 60..79."""
    return paint(blob((40, 40, 99, 99)), (60, 60, 79, 79), 0.0)


def test_every_contour_includes_holes_and_the_largest_comes_first():
    # RETR_TREE traces the hole too: along the ring's pixels around it, 59..80, bounding
    # rectangle (59, 59, 22, 22). The outer contour's area (59 x 59) is the largest.
    assert ScoreMap(ring()).boxes(0.5) == [(40, 40, 100, 100), (59, 59, 81, 81)]


def test_max_box_acc_v2_tries_every_contour():
    # Ground truth: the hole. The largest contour's box (40, 40, 100, 100) has IoU
    # 400 / 61^2 = 0.107; the hole's box (59, 59, 81, 81) 400 / 23^2 = 0.756: >= 0.7.
    records = [record(ring(), [(60, 60, 79, 79)])]
    assert max_box_acc(records, [0.2, 0.5], protocol="wsol") == (0.0, 0.2)
    v2 = max_box_acc_v2(records, [0.2, 0.5])
    assert v2 == (pytest.approx(100.0), (100.0, 100.0, 100.0), (0.2, 0.2, 0.2))


def ringed_heatmap(ring_value):
    """0 outside GT_BOX, ring_value inside it, 1 in its core (90..109)."""
    return paint(blob(GT_BOX, ring_value), (90, 90, 109, 109), 1.0)


def test_max_box_acc_and_v2_over_thresholds():
    # Ring 0.5 -> uint8 127, ring 0.3 -> int(76.5) = 76. Below the ring's level the box is
    # GT_BOX's pixels plus one, (50, 50, 150, 150): IoU 100^2 / 101^2 = 0.980. Above it only
    # the core is kept, (90, 90, 110, 110): IoU 21^2 / 100^2 = 0.044.
    # Cuts: 0.1 -> 25 (both rings kept), 0.4 -> 102 (ring 127 only), 0.6 -> 153 (none).
    # The half blob covers GT_BOX's top half, box (50, 50, 150, 100) at any threshold: IoU
    # 100 x 51 / (101 x 51 + 100^2 - 100 x 51) = 5100 / 10051 = 0.507.
    records = [record(ringed_heatmap(0.5), name="ring 0.5"),
               record(ringed_heatmap(0.3), name="ring 0.3"),
               record(blob((50, 50, 149, 99)), name="half")]
    thresholds = [0.6, 0.4, 0.1]
    # IoU 0.5: 0.6 -> half; 0.4 -> ring 0.5, half; 0.1 -> all.
    assert max_box_acc(records, thresholds, protocol="wsol") == (pytest.approx(100.0), 0.1)
    assert max_box_acc(records, [0.6, 0.4], protocol="wsol") == \
        (pytest.approx(200.0 / 3), 0.4)
    # IoU 0.7: the half blob never; 0.3 and 0.5 as above (the maps have no other contours).
    v2 = max_box_acc_v2(records, thresholds)
    assert v2.accuracies == pytest.approx((100.0, 100.0, 200.0 / 3))
    assert v2.accuracy == pytest.approx((100.0 + 100.0 + 200.0 / 3) / 3)
    assert v2.thresholds == (0.1, 0.1, 0.1)
    v2 = max_box_acc_v2(records, [0.6, 0.4])
    assert v2.accuracies == pytest.approx((200.0 / 3, 200.0 / 3, 100.0 / 3))
    assert v2.thresholds == (0.4, 0.4, 0.4)


def test_errors_use_the_wsol_box_at_the_threshold():
    records = [record(ringed_heatmap(0.5)), record(ringed_heatmap(0.3))]
    assert localization_metrics(records, 0.1, "wsol").gt_known_loc_accuracy == 100.0
    assert localization_metrics(records, 0.4, "wsol").gt_known_loc_accuracy == 50.0
    assert localization_metrics(records, 0.4, "wsol").top1_loc_error == 50.0


def test_ground_truth_boxes_are_compared_at_224():
    # The same map on a 448 x 448 image whose box is GT_BOX doubled: scaled back, it is
    # (50, 50, 149, 149) again (int(100 * 224 / 448) = 50, int(299 * 224 / 448) = 149).
    heatmap = ringed_heatmap(0.5)
    doubled = record(heatmap, [(100, 100, 299, 299)], image_size=(448, 448))
    assert max_box_acc([doubled], [0.1], protocol="wsol").accuracy == 100.0
    # The cam protocol boxes at the image's size instead: the map resized to 448 covers it.
    assert max_box_acc([doubled], [0.1], protocol="cam").accuracy == 100.0


# A plain transcription of the benchmark (resize, normalise, uint8, threshold, contours,
# boxes: tests.helpers.plain_boxes; IoU matrix), for random 7x7 maps whose boxes nobody can
# work out by hand.

def plain_ious(boxes, gt_boxes):
    """The IoU matrix of boxes x gt_boxes, inclusive boxes."""
    boxes, gt_boxes = np.array(boxes)[:, None, :], np.array(gt_boxes)[None, :, :]
    width = np.maximum(0, np.minimum(boxes[..., 2], gt_boxes[..., 2])
                       - np.maximum(boxes[..., 0], gt_boxes[..., 0]) + 1)
    height = np.maximum(0, np.minimum(boxes[..., 3], gt_boxes[..., 3])
                        - np.maximum(boxes[..., 1], gt_boxes[..., 1]) + 1)

    def area(b):
        return (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    return width * height / (area(boxes) + area(gt_boxes) - width * height)


def random_maps_and_boxes(count, seed):
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:7, 0:7]
    cases = []
    for index in range(count):
        heatmap = sum(rng.uniform(0.3, 1.0) * np.exp(
            -((rows - rng.uniform(0, 7)) ** 2 + (columns - rng.uniform(0, 7)) ** 2)
            / (2 * rng.uniform(0.4, 2.0) ** 2)) for _ in range(int(rng.integers(1, 4))))
        if index % 4 == 3:
            heatmap = rng.uniform(0, 1, (7, 7)) ** 3  # many contours, holes
        height, width = int(rng.integers(100, 600)), int(rng.integers(100, 600))
        gt_boxes = []
        for _ in range(int(rng.integers(1, 3))):
            x0, y0 = int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2))
            gt_boxes.append((x0, y0, int(rng.integers(x0, width)), int(rng.integers(y0, height))))
        cases.append((heatmap, gt_boxes, (height, width)))
    return cases


def test_boxes_equal_the_plain_transcription():
    for heatmap, _, _ in random_maps_and_boxes(12, seed=0):
        scored = ScoreMap(heatmap)
        for threshold in np.arange(0, 1, 0.05):
            largest, every = plain_boxes(heatmap, threshold)
            boxes = scored.boxes(threshold)
            assert boxes[0] == largest and sorted(boxes) == sorted(every)


@pytest.mark.parametrize("count, step", [(40, 0.02), (6, 0.001)])
def test_max_box_acc_and_v2_equal_the_plain_transcription(count, step):
    # At step 0.001 (the benchmark's), thresholds share cuts int(threshold * 255).
    cases = random_maps_and_boxes(count, seed=1)
    thresholds = np.round(np.arange(0, 1, step), 10)
    correct = {iou: np.zeros(len(thresholds)) for iou in (0.3, 0.5, 0.7)}
    correct_largest = np.zeros(len(thresholds))
    for heatmap, gt_boxes, (height, width) in cases:
        scaled = [tuple(int(value * 224.0 / side) for value, side
                        in zip(box, (width, height, width, height))) for box in gt_boxes]
        for index, threshold in enumerate(thresholds):
            largest, every = plain_boxes(heatmap, threshold)
            correct_largest[index] += plain_ious([largest], scaled).max() >= 0.5
            for iou, counts in correct.items():
                counts[index] += plain_ious(every, scaled).max() >= iou
    records = [ImageRecord("image%d" % index, (1,), {1: gt_boxes}, [1], {1: heatmap}, size)
               for index, (heatmap, gt_boxes, size) in enumerate(cases)]
    evaluation = evaluate_records(records, "wsol", 0.2, thresholds)
    best = int(np.argmax(correct_largest))
    assert 0 < correct_largest[best] < len(cases)  # neither trivial nor hopeless
    assert evaluation.max_box_acc == (pytest.approx(100.0 * correct_largest[best] / len(cases)),
                                      thresholds[best])
    accuracies = [100.0 * counts.max() / len(cases) for counts in correct.values()]
    assert evaluation.max_box_acc_v2.accuracies == pytest.approx(accuracies)
    assert evaluation.max_box_acc_v2.accuracy == pytest.approx(np.mean(accuracies))
    assert evaluation.max_box_acc_v2.thresholds == \
        tuple(thresholds[int(np.argmax(counts))] for counts in correct.values())
