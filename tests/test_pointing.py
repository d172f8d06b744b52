"""The pointing game (Zhang et al. 2016) and its energy-based variant (Score-CAM), against
the definitions written out again (tests/helpers.py): a disc of radius 15 around the first
maximum meeting a box's pixels, and the map's mass inside the boxes pixel by pixel."""
import cv2
import numpy as np
import pytest

from l2caf.evaluation import pointing
from tests.helpers import disc_meets_boxes, mass_inside


@pytest.mark.parametrize("point, hit", [
    ((35, 20), True),   # 15 pixels right of the box's last column
    ((36, 20), False),  # 16
    ((29, 42), True),   # 9 right and 12 below its corner: 15 exactly
    ((30, 42), False),  # 10 and 12: 15.6
    ((15, 15), True),   # inside
])
def test_a_hit_is_a_maximum_within_15_pixels_of_a_box(point, hit):
    boxes = [(10, 10, 20, 30)]
    resized = np.zeros((60, 50))
    resized[point[1], point[0]] = 1.0
    assert pointing.pointing_hit(resized, boxes) is hit
    assert disc_meets_boxes(point, boxes) is hit


def test_tied_maxima_point_at_the_first_in_raster_order():
    resized = np.zeros((40, 40))
    resized[30, 5] = resized[2, 38] = 1.0  # (38, 2) comes first row by row
    assert pointing.peak(resized) == (38, 2)
    assert pointing.pointing_hit(resized, [(30, 0, 39, 5)])
    assert not pointing.pointing_hit(resized, [(0, 25, 10, 39)])
    # A flat map points at the top-left pixel.
    assert pointing.peak(np.zeros((5, 7))) == (0, 0)


def test_scores_are_taken_on_the_bilinearly_resized_map():
    rng = np.random.default_rng(0)
    for _ in range(20):
        heatmap = np.maximum(rng.normal(0, 1, (7, 7)), 0) + 1e-3
        boxes = [tuple(int(v) for v in (x, y, x + w, y + h)) for x, y, w, h in
                 rng.integers(0, 60, (2, 4))]
        resized = cv2.resize(heatmap, (90, 70), interpolation=cv2.INTER_LINEAR)
        y, x = np.unravel_index(np.argmax(resized), resized.shape)
        hit, energy = pointing.pointing_scores(heatmap, (70, 90), boxes)
        assert hit is disc_meets_boxes((x, y), boxes)
        assert energy == pytest.approx(mass_inside(resized, boxes), abs=1e-12)


def test_energy_counts_a_pixel_in_two_boxes_once_and_clips_boxes_to_the_image():
    resized = np.random.default_rng(1).uniform(0, 1, (20, 30))
    boxes = [(2, 3, 12, 10), (8, 5, 40, 25), (-5, -5, 1, 1)]
    assert pointing.energy_share(resized, boxes) == pytest.approx(
        mass_inside(resized, boxes), abs=1e-12)
    assert pointing.energy_share(resized, [(0, 0, 29, 19)]) == pytest.approx(1.0)


def test_a_map_without_mass_scores_the_boxes_share_of_the_image():
    assert pointing.energy_share(np.zeros((10, 10)), [(0, 0, 4, 4)]) == 0.25
    assert pointing.energy_share(np.full((10, 10), 3.0), [(0, 0, 4, 4)]) == 0.25


def test_negative_maps_are_refused():
    with pytest.raises(ValueError, match=">= 0"):
        pointing.energy_share(np.array([[1.0, -0.5]]), [(0, 0, 0, 0)])
