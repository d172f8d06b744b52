"""l2caf.upsample (the evaluation's interpolation, maps stacked [N, H, W]) and the overlays'
colour maps (OpenCV's and matplotlib's; the blue-white-red default unchanged)."""
import subprocess
import sys

import cv2
import numpy as np
import pytest

from l2caf import show_heatmap_on_image, upsample
from l2caf.errors import ConfigError
from l2caf.heatmaps import resize_heatmap
from l2caf.heatmaps import BLUE_WHITE_RED, colormap_table
from tests.helpers import REPO_ROOT


def test_upsample_is_bilinear_with_aligned_pixel_centres():
    # 2 -> 4 pixels: the new centres sit at -0.25, 0.25, 0.75, 1.25 old pixels (clamped).
    np.testing.assert_allclose(upsample(np.array([[0.0, 1.0]]), (1, 4)),
                               [[0.0, 0.25, 0.75, 1.0]])
    np.testing.assert_allclose(upsample(np.array([[0.0], [4.0]]), (4, 1))[:, 0],
                               [0.0, 1.0, 3.0, 4.0])


def test_upsample_is_the_evaluations_resize_stacked_for_matplotlib():
    rng = np.random.default_rng(0)
    maps = rng.uniform(0, 1, (3, 7, 7)).astype(np.float32)
    stacked = upsample(maps, (50, 40))
    assert stacked.shape == (3, 50, 40) and stacked.dtype == np.float64
    for heatmap, resized in zip(maps, stacked):
        np.testing.assert_array_equal(resized, resize_heatmap(heatmap, (50, 40)))
    assert upsample(maps[0], 20).shape == (20, 20)  # one map: one map; a number: a square
    mixed = upsample([maps[0], rng.uniform(0, 1, (5, 9)), np.full((3, 3), 0.7)], (10, 12))
    assert mixed.shape == (3, 10, 12)
    assert np.all(mixed[2] == 0.7)  # a flat map stays exactly flat


@pytest.mark.parametrize("heatmaps, size, message", [
    ([np.zeros((4, 4)), np.full((4, 4), np.nan)], 8,
     r"heatmap 1 \(shape \(4, 4\)\): the heatmap holds NaN or infinite values"),
    ([np.zeros(4)], 8, r"heatmap 0 \(shape \(4,\)\): a heatmap must be a non-empty 2-D array"),
    ([], 8, "upsample got no heatmaps"),
    (np.zeros((4, 4)), (0, 5), r"size must be positive, got \(0, 5\)"),
    (np.zeros((4, 4)), "big", "size must be one number or"),
])
def test_upsample_mistakes_are_clear_errors(heatmaps, size, message):
    with pytest.raises(ConfigError, match=message):
        upsample(heatmaps, size)


@pytest.fixture
def picture():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (30, 40, 3)).astype(np.uint8), rng.uniform(0, 1, (5, 5))


def blended(image, heatmap, table, alpha=0.6):
    resized = resize_heatmap(heatmap, image.shape[:2])
    indices = ((resized - resized.min()) / (resized.max() - resized.min()) * 255).round()
    colour = table[indices.astype(np.uint8)].astype(np.float32)
    return (alpha * colour + (1 - alpha) * image.astype(np.float32)).round().astype(np.uint8)


def test_the_default_colour_map_is_the_originals_blue_white_red(picture):
    image, heatmap = picture
    overlay = show_heatmap_on_image(image, heatmap)
    np.testing.assert_array_equal(overlay, blended(image, heatmap, BLUE_WHITE_RED))
    np.testing.assert_array_equal(BLUE_WHITE_RED[[0, 255]], [[0, 0, 255], [255, 0, 0]])
    assert BLUE_WHITE_RED[127:129].min() >= 253  # white in the middle


def test_opencv_colour_maps_by_constant_or_name(picture):
    image, heatmap = picture
    jet = cv2.cvtColor(cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None],
                                         cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)[:, 0]
    by_constant = show_heatmap_on_image(image, heatmap, colormap=cv2.COLORMAP_JET)
    np.testing.assert_array_equal(by_constant, blended(image, heatmap, jet))
    np.testing.assert_array_equal(show_heatmap_on_image(image, heatmap, colormap="JET"),
                                  by_constant)
    assert np.array_equal(jet[255], [128, 0, 0])  # jet ends in dark red, in RGB order


def test_matplotlib_colour_maps_by_name_or_object(picture):
    import matplotlib
    image, heatmap = picture
    coolwarm = matplotlib.colormaps["coolwarm"]
    table = (np.asarray(coolwarm(np.linspace(0, 1, 256)))[:, :3] * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(colormap_table("coolwarm"), table)
    np.testing.assert_array_equal(colormap_table(coolwarm), table)
    np.testing.assert_array_equal(show_heatmap_on_image(image, heatmap, 0.3, "coolwarm"),
                                  blended(image, heatmap, table, 0.3))


@pytest.mark.parametrize("colormap, message", [
    ("no_such_map", "colormap 'no_such_map' is neither OpenCV's .* nor matplotlib's"),
    (999, r"colormap 999 is not one of OpenCV's \(cv2.COLORMAP_\*"),
    (2.5, "colormap must be None, an OpenCV colour map"),
])
def test_unknown_colour_maps_are_clear_errors(picture, colormap, message):
    with pytest.raises(ConfigError, match=message):
        show_heatmap_on_image(*picture, colormap=colormap)


def test_matplotlib_is_imported_only_for_its_colour_maps():
    code = ("import sys, numpy as np; from l2caf import heatmaps; "
            "image = np.zeros((8, 8, 3), np.uint8); heatmap = np.eye(4); "
            "heatmaps.show_heatmap_on_image(image, heatmap); "
            "heatmaps.show_heatmap_on_image(image, heatmap, colormap='jet'); "
            "before = 'matplotlib' in sys.modules; "
            "heatmaps.show_heatmap_on_image(image, heatmap, colormap='coolwarm'); "
            "print(before, 'matplotlib' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                            text=True, check=True)
    assert result.stdout.split() == ["False", "True"]
