"""l2caf.evaluation.similarity against plain float64 transcriptions of its definitions: the
Spearman rank correlation (the textbook formula without ties, the Pearson correlation of
mean ranks with them) and skimage's SSIM at its defaults, written as a loop over windows."""
import itertools

import numpy as np
import pytest
from scipy import stats

from l2caf.evaluation import similarity


def plain_spearman_without_ties(first, second):
    """1 - 6 sum d^2 / (n (n^2 - 1)), d the rank differences (no ties)."""
    first_ranks = np.argsort(np.argsort(first.ravel())).astype(np.float64)
    second_ranks = np.argsort(np.argsort(second.ravel())).astype(np.float64)
    n = first.size
    return 1.0 - 6.0 * np.sum((first_ranks - second_ranks) ** 2) / (n * (n * n - 1.0))


def plain_ssim(first, second, window=7, k1=0.01, k2=0.03):
    """skimage's structural_similarity at its defaults (a uniform window, the sample
    covariance, the mean over the windows inside the map) on maps in [0, 1], one window at a
    time."""
    half = window // 2
    values = []
    for row, column in itertools.product(range(half, first.shape[0] - half),
                                         range(half, first.shape[1] - half)):
        x = first[row - half:row + half + 1, column - half:column + half + 1].ravel()
        y = second[row - half:row + half + 1, column - half:column + half + 1].ravel()
        mean_x, mean_y = x.mean(), y.mean()
        variance_x, variance_y = x.var(ddof=1), y.var(ddof=1)
        covariance = np.sum((x - mean_x) * (y - mean_y)) / (x.size - 1)
        c1, c2 = k1 ** 2, k2 ** 2
        values.append((2 * mean_x * mean_y + c1) * (2 * covariance + c2) /
                      ((mean_x ** 2 + mean_y ** 2 + c1) * (variance_x + variance_y + c2)))
    return float(np.mean(values))


def minmax(values):
    return (values - values.min()) / (values.max() - values.min())


@pytest.mark.parametrize("seed", range(5))
def test_spearman_is_the_textbook_formula_without_ties(seed):
    rng = np.random.default_rng(seed)
    first = rng.standard_normal((7, 9))
    second = first + rng.standard_normal((7, 9)) * (seed + 1) * 0.3
    assert similarity.spearman(first, second) == pytest.approx(
        plain_spearman_without_ties(first, second), abs=1e-12)


def test_spearman_with_ties_is_the_correlation_of_mean_ranks():
    rng = np.random.default_rng(3)
    first = rng.integers(0, 4, (10, 10)).astype(np.float32)  # many ties
    second = np.maximum(first + rng.integers(-1, 2, (10, 10)), 0)
    expected = stats.spearmanr(first.ravel(), second.ravel()).correlation
    assert similarity.spearman(first, second) == pytest.approx(expected, abs=1e-12)


def test_the_absolute_maps_drop_the_sign():
    heatmap = np.random.default_rng(0).standard_normal((6, 6))
    assert similarity.spearman(heatmap, -heatmap) == pytest.approx(-1.0)
    assert similarity.spearman(heatmap, -heatmap, absolute=True) == pytest.approx(1.0)
    expected = plain_spearman_without_ties(np.abs(heatmap), np.abs(2 * heatmap + 0.0))
    assert similarity.spearman(heatmap, 2 * heatmap, absolute=True) == pytest.approx(expected)


def test_a_constant_map_has_no_rank_correlation():
    heatmap = np.random.default_rng(0).uniform(size=(5, 5))
    assert similarity.spearman(heatmap, np.zeros((5, 5))) is None
    assert similarity.spearman(np.ones((5, 5)), heatmap, absolute=True) is None


def test_maps_of_different_sizes_are_refused():
    with pytest.raises(ValueError, match="different sizes"):
        similarity.spearman(np.ones((3, 3)), np.ones((3, 4)))


@pytest.mark.parametrize("seed", range(3))
def test_ssim_is_skimages_defaults_on_the_maps_scaled_to_0_1(seed):
    rng = np.random.default_rng(seed)
    first = rng.uniform(-2, 3, (16, 13))
    second = 0.5 * first + rng.standard_normal((16, 13))
    assert similarity.ssim(first, second) == pytest.approx(
        plain_ssim(minmax(first), minmax(second)), abs=1e-10)


def test_ssim_of_a_map_with_itself_or_a_rescaled_copy_is_one():
    heatmap = np.random.default_rng(0).uniform(size=(9, 9))
    assert similarity.ssim(heatmap, heatmap) == pytest.approx(1.0)
    assert similarity.ssim(heatmap, 5 * heatmap + 2) == pytest.approx(1.0)
    assert similarity.ssim(heatmap, 1 - heatmap) < 0


def test_ssim_needs_a_window_of_7_by_7():
    with pytest.raises(ValueError, match="at least 7 x 7"):
        similarity.ssim(np.ones((6, 9)), np.ones((6, 9)))


def test_similarities_rank_the_heatmaps_and_compare_them_at_the_image_size():
    rng = np.random.default_rng(1)
    heatmap, other = rng.uniform(size=(4, 4)), rng.uniform(size=(4, 4))
    found = similarity.similarities(heatmap, other, (20, 24))
    assert found["spearman"] == pytest.approx(plain_spearman_without_ties(heatmap, other))
    assert found["spearman_abs"] == found["spearman"]  # (non-negative maps)
    from l2caf.heatmaps import upsample
    assert found["ssim"] == pytest.approx(plain_ssim(minmax(upsample(heatmap, (20, 24))),
                                                     minmax(upsample(other, (20, 24)))))


def test_ranks_are_scipys_mean_ranks():
    values = np.random.default_rng(2).integers(0, 5, 50).astype(np.float64)
    assert np.array_equal(similarity.ranks(values), stats.rankdata(values))


@pytest.mark.parametrize("shift", [0.0, -0.5])
def test_a_reference_compares_as_the_measures_one_by_one(shift):
    """(shift -0.5: signed maps, whose absolute values rank otherwise)"""
    rng = np.random.default_rng(4)
    heatmap = rng.uniform(size=(5, 5)) + shift
    reference = similarity.Reference(heatmap, (12, 12))
    from l2caf.heatmaps import upsample
    for other in (rng.uniform(size=(5, 5)) + shift, heatmap * 2, np.zeros((5, 5))):
        found = reference.similarities(other)
        assert found["spearman"] == similarity.spearman(heatmap, other)
        assert found["spearman_abs"] == similarity.spearman(heatmap, other, absolute=True)
        assert found["ssim"] == pytest.approx(similarity.ssim(upsample(heatmap, (12, 12)),
                                                              upsample(other, (12, 12))))
    with pytest.raises(ValueError, match="different sizes"):
        reference.similarities(np.ones((4, 5)))


def vectorised_ssim(first, second):
    """SSIM of two maps in [0, 1] as the formula reads, whole arrays at a time (the
    implementation the sanity lines were first written with)."""
    def window_mean(values):
        import cv2
        return cv2.blur(values, (7, 7), borderType=cv2.BORDER_REFLECT)
    norm = 49 / 48.0
    mean_first, mean_second = window_mean(first), window_mean(second)
    variance_first = norm * (window_mean(first * first) - mean_first ** 2)
    variance_second = norm * (window_mean(second * second) - mean_second ** 2)
    covariance = norm * (window_mean(first * second) - mean_first * mean_second)
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    index = ((2 * mean_first * mean_second + c1) * (2 * covariance + c2)) / (
        (mean_first ** 2 + mean_second ** 2 + c1) * (variance_first + variance_second + c2))
    return float(index[3:-3, 3:-3].mean())


@pytest.mark.parametrize("seed", range(4))
def test_ssim_is_the_vectorised_formula_bit_for_bit(seed):
    """(Its steps are made in place, the reference's once: the values must not move, or the
    sanity lines written before would differ from those written now.)"""
    rng = np.random.default_rng(seed)
    first = rng.uniform(-1, 1, (40, 33)) * 10 ** rng.uniform(-6, 6)
    for second in (first + rng.standard_normal((40, 33)), -first, np.zeros((40, 33)),
                   rng.integers(0, 3, (40, 33)).astype(np.float32)):
        expected = vectorised_ssim(similarity.scaled(first), similarity.scaled(second))
        assert similarity.ssim(first, second) == expected
        reference = similarity.Reference(first, (40, 33))
        assert reference.similarities(second)["ssim"] == expected
