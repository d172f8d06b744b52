"""How alike two heatmaps are, as the sanity checks of Adebayo et al. ("Sanity Checks for
Saliency Maps", NeurIPS 2018) measure it: the Spearman rank correlation of the absolute maps
and of the maps, and the structural similarity (SSIM) of the maps resized to the image. No
TensorFlow, no run folders.

SSIM is skimage's `structural_similarity` (formerly `compare_ssim`) at its defaults, which
the paper's code used: a 7 x 7 uniform window, K1 = 0.01, K2 = 0.03, the sample covariance
(normalised by N - 1), the mean over the pixels at least 3 from the border. Both maps are
first scaled to [0, 1] (min-max; a constant map becomes zeros), so the data range is 1.
"""
from typing import Dict, Optional, Sequence, Union

import cv2
import numpy as np

from l2caf.heatmaps import upsample

SSIM_WINDOW = 7
SSIM_K1, SSIM_K2 = 0.01, 0.03


def ranks(values: np.ndarray) -> np.ndarray:
    """The ranks (1 to n) of a vector's values, ties given their mean rank (float64)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    # Each run of equal values gets the mean of the ranks it spans.
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    mean_ranks = (starts + ends + 1) / 2.0
    found = np.empty(len(values), np.float64)
    found[order] = np.repeat(mean_ranks, ends - starts)
    return found


def _correlation(first_ranks: np.ndarray, second_ranks: np.ndarray) -> float:
    first, second = first_ranks - first_ranks.mean(), second_ranks - second_ranks.mean()
    return float(np.sum(first * second) / np.sqrt(np.sum(first ** 2) * np.sum(second ** 2)))


def spearman(heatmap: np.ndarray, other: np.ndarray, absolute: bool = False) -> Optional[float]:
    """The Spearman rank correlation of two maps of one shape (of their absolute values with
    absolute=True): the Pearson correlation of their ranks, ties given their mean rank. None
    where it is undefined: a map whose values are all equal has no ranking."""
    first, second = (np.abs(values) if absolute else values
                     for values in (np.asarray(heatmap, np.float64).ravel(),
                                    np.asarray(other, np.float64).ravel()))
    if first.shape != second.shape:
        raise ValueError("maps of different sizes: %s and %s"
                         % (np.shape(heatmap), np.shape(other)))
    if np.ptp(first) == 0 or np.ptp(second) == 0:
        return None
    return _correlation(ranks(first), ranks(second))


def scaled(heatmap: np.ndarray) -> np.ndarray:
    """A map min-max scaled to [0, 1], float64 (zeros for a constant map)."""
    values = np.asarray(heatmap, np.float64)
    low = values.min()
    spread = values.max() - low  # (np.ptp)
    return np.zeros_like(values) if spread == 0 else (values - low) / spread


def _window_mean(values: np.ndarray) -> np.ndarray:
    """The mean over the SSIM_WINDOW x SSIM_WINDOW window around each pixel (the border
    mirrored: it is cropped from the mean SSIM anyway)."""
    return cv2.blur(values, (SSIM_WINDOW, SSIM_WINDOW), borderType=cv2.BORDER_REFLECT)


# The covariance's normalisation (the sample's, N - 1) and SSIM's constants, (K x range)^2
# with a range of 1.
_COVARIANCE_NORM = SSIM_WINDOW * SSIM_WINDOW / (SSIM_WINDOW * SSIM_WINDOW - 1.0)
_C1, _C2 = SSIM_K1 ** 2, SSIM_K2 ** 2


class _Windows(object):
    """A map scaled to [0, 1] and what SSIM takes of it alone: its windows' means, their
    squares and the windows' variances (a run's heatmap is compared 2 x blocks + 1 times:
    these are made once)."""

    def __init__(self, heatmap: np.ndarray):
        self.values = scaled(heatmap)
        if min(self.values.shape) < SSIM_WINDOW:
            raise ValueError("SSIM needs maps of at least %d x %d; got %s"
                             % (SSIM_WINDOW, SSIM_WINDOW, self.values.shape))
        self.mean = _window_mean(self.values)
        self.mean_squared = self.mean ** 2
        self.variance = _window_mean(self.values * self.values)
        self.variance -= self.mean_squared
        self.variance *= _COVARIANCE_NORM


def _ssim(first: _Windows, second: _Windows) -> float:
    """The mean SSIM of two maps' windows. Each step is the formula's, in its order
    ((2 mean1 mean2 + C1)(2 cov + C2) / ((mean1^2 + mean2^2 + C1)(var1 + var2 + C2)), left
    to right), in place where a temporary array is not needed again."""
    if first.values.shape != second.values.shape:
        raise ValueError("SSIM needs two maps of one shape; got %s and %s"
                         % (first.values.shape, second.values.shape))
    covariance = _window_mean(first.values * second.values)
    covariance -= first.mean * second.mean
    covariance *= _COVARIANCE_NORM
    numerator = 2 * first.mean
    numerator *= second.mean
    numerator += _C1
    covariance *= 2
    covariance += _C2
    numerator *= covariance
    denominator = first.mean_squared + second.mean_squared
    denominator += _C1
    variances = first.variance + second.variance
    variances += _C2
    denominator *= variances
    numerator /= denominator
    border = (SSIM_WINDOW - 1) // 2
    return float(numerator[border:-border, border:-border].mean())


def ssim(heatmap: np.ndarray, other: np.ndarray) -> float:
    """The mean structural similarity of two maps of one shape, each at least 7 x 7, scaled
    to [0, 1] first (see the module docstring)."""
    return _ssim(_Windows(heatmap), _Windows(other))


class Reference(object):
    """A run's heatmap, ready to be compared with many others of the same (image, class):
    its ranks and its windows at image_size (the network's input) made once."""

    def __init__(self, heatmap: np.ndarray, image_size: Union[int, Sequence[int]]):
        self.heatmap = np.asarray(heatmap, np.float64)
        self.image_size = image_size
        values = self.heatmap.ravel()
        self.constant = np.ptp(values) == 0
        self.absolute_constant = np.ptp(np.abs(values)) == 0
        self.non_negative = bool(np.all(values >= 0))
        self.ranks = ranks(values)
        self.absolute_ranks = self.ranks if self.non_negative else ranks(np.abs(values))
        self.windows = _Windows(upsample(self.heatmap, image_size))

    def similarities(self, other: np.ndarray) -> Dict[str, Optional[float]]:
        """{"spearman_abs", "spearman", "ssim"} of the heatmap and `other` (see
        `similarities`)."""
        values = np.asarray(other, np.float64).ravel()
        if values.shape != self.ranks.shape:
            raise ValueError("maps of different sizes: %s and %s"
                             % (self.heatmap.shape, np.shape(other)))
        other_constant = np.ptp(values) == 0
        signed = None if self.constant or other_constant else \
            _correlation(self.ranks, ranks(values))
        if self.non_negative and np.all(values >= 0):
            absolute = signed  # (the same maps)
        elif self.absolute_constant or np.ptp(np.abs(values)) == 0:
            absolute = None
        else:
            absolute = _correlation(self.absolute_ranks, ranks(np.abs(values)))
        return {"spearman_abs": absolute, "spearman": signed,
                "ssim": _ssim(self.windows, _Windows(upsample(other, self.image_size)))}


def similarities(heatmap: np.ndarray, other: np.ndarray,
                 image_size: Union[int, Sequence[int]]) -> Dict[str, Optional[float]]:
    """{"spearman_abs", "spearman", "ssim"} of a run's heatmap and another of the same
    (image, class): the rank correlations at the heatmaps' own resolution, SSIM of the two
    resized (bilinearly) to image_size, the network's input."""
    return Reference(heatmap, image_size).similarities(other)
