"""Faithfulness of heatmaps: do the pixels a heatmap ranks first matter to the network?

Seven scores per heatmap, each of the class's softmax probability as the papers use it:

* **Deletion and insertion** (RISE, Petsiuk et al., BMVC 2018; the `CausalMetric` of
  github.com/eclique/RISE, evaluation.py). The heatmap is resized to the network's input
  with OpenCV's bilinear interpolation and its pixels ranked by a stable sort in
  decreasing order: tied pixels (most of a ReLU'd map is exactly 0) keep their raster
  order, row by row. Deletion starts from the image and sets the ranked pixels, a step at a
  time, to the network input's zero (its preprocessing's zero: see l2caf.preprocessing);
  insertion starts from a blurred copy and puts the image's pixels back in the same order.
  A curve holds the class probability after each step, from none of the pixels changed to
  all of them: after step i of `steps`, the first floor(i * H * W / steps) pixels. The
  default, steps = H, is RISE's one row of pixels per step (224 pixels at 224 x 224, so
  225 points per curve); fewer steps trade fidelity to the protocol for time. The AUC is the
  trapezoid rule over the points, normalised to [0, 1] (RISE's `auc`). Deletion: lower is
  better; insertion: higher.
* **Average Drop and Increase in Confidence** (Grad-CAM++, Chattopadhyay et al., WACV
  2018): the network input multiplied by the heatmap resized to it (bilinear) and min-max
  normalised to [0, 1], so that unimportant pixels go to the network input's zero. With Y
  the class probability on the image and O on the masked image: max(0, Y - O) / Y (0 when
  Y is 0) and [O > Y]; the papers report their means, in percent.
* **Average Gain** (Opti-CAM, Zhang et al., CVIU 2024; xplique's `AverageGainMetric`): on
  the same masked image, max(0, O - Y) / (1 - Y) (0 when Y is 1), Average Drop's
  counterpart; its mean in percent. Higher is better.
* **ROAD** (Rong et al., ICML 2022; github.com/tleemann/road_evaluation): the pixels ranked
  as the reference ranks them (the map resized bilinearly, min-max normalised with its
  1e-5, plus its 1e-4 Gaussian noise to break ties, sorted in decreasing order), then at each
  removal fraction p of `road_fractions` (default 10%, 20%, ..., 90%) the int(p * H * W) most
  relevant pixels (MoRF) or least relevant ones (LeRF) removed and imputed by the noisy
  linear imputation (l2caf.evaluation.imputation; its noise of 0.01 on images in [0, 1] is
  2.55 on the RGB images 0..255 the model takes). A curve holds the class probability on the
  image (fraction 0) and at each fraction; the area under it is the trapezoid rule over the
  fractions, divided by their span (so in [0, 1]). MoRF: lower is better; LeRF: higher. The
  noise (ranking and imputation) is drawn from a Generator seeded by the heatmap's
  `noise_seed`, so that a heatmap's scores do not depend on which others are scored with it.
  At 100% no pixel is known and the imputation is undefined, so the curves end at the last
  fraction (the reference's too).

The insertion's blurred copy is RISE's: the network input convolved channel by channel with
an 11 x 11 Gaussian of sigma 5 (`gkern(11, 5)`: scipy's gaussian_filter of a centred delta,
whose tails are folded back into the 11 x 11 window by its 'reflect' border), zero padded
as PyTorch's conv2d pads (`padding=5`). Blurring in the network input's space is blurring
the image: every preprocessing is a per-pixel affine map x -> a * x + b (caffe's also
reorders the channels) and the kernel sums to 1, so the blur of a * x + b is a * blur(x) + b,
where the image is padded with the colour the preprocessing maps to 0 (mid-grey for
'inception', the ImageNet mean colour for the mean/std ones).

`Faithfulness(model)` scores any number of heatmaps on network inputs: the perturbed images
of all their curves go through the network in batches of `batch_size`, several heatmaps per
batch; the image itself, its blurred copy and the all-zero input, which start or end the
curves, are scored once. The model needs `class_probabilities`, `preprocessing`,
`input_shape` and `class_output` (l2caf.models.slim.Model and l2caf.models.keras.KerasModel have
them). No TensorFlow here.
"""
import collections
import typing

import cv2
import numpy as np

from l2caf import parallel, preprocessing
from l2caf.evaluation import imputation
from l2caf.heatmaps import resize_heatmap

if typing.TYPE_CHECKING:
    from l2caf.models.base import ExplainableModel

BLUR_SIZE = 11
BLUR_SIGMA = 5.0
# scipy.ndimage.gaussian_filter's default: the Gaussian is cut 4 sigma from its centre.
_BLUR_TRUNCATE = 4.0
DEFAULT_BATCH_SIZE = 64
DEFAULT_ROAD_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# The reference's ranking: min-max normalisation's epsilon, and the noise that breaks ties.
_ROAD_NORMALISATION_EPSILON = 1e-5
_ROAD_TIE_NOISE = 1e-4
# The RGB images the model takes are 0..255; the reference imputes images in [0, 1].
_RGB_RANGE = 255.0

Scores = collections.namedtuple(
    "Scores", ["class_id", "deletion", "insertion", "deletion_auc", "insertion_auc",
               "average_drop", "increase_in_confidence", "probability", "masked_probability",
               "road_morf", "road_lerf", "road_morf_auc", "road_lerf_auc", "average_gain"])
Scores.__doc__ = """The faithfulness of one heatmap for class_id. deletion, insertion: the
curves (float64 arrays of steps + 1 class probabilities, at the fractions of pixels changed
np.linspace(0, 1, steps + 1)); deletion_auc, insertion_auc: their normalised areas;
average_drop: max(0, Y - O) / Y; increase_in_confidence: 1.0 if O > Y, else 0.0; probability
(Y) and masked_probability (O): the class's probability on the image and on the image masked
by the heatmap. road_morf, road_lerf: the ROAD curves (float64 arrays of the class
probability on the image, then at each removal fraction); road_morf_auc, road_lerf_auc: their
areas (`road_auc`); average_gain: max(0, O - Y) / (1 - Y)."""


def default_steps(input_shape: typing.Sequence[int]) -> int:
    """RISE's number of steps for an input of (height, width, ...): one row of pixels each."""
    return int(input_shape[0])


def protocol_settings(steps: int, input_size: typing.Sequence[int],
                      road_fractions: typing.Sequence[float] = DEFAULT_ROAD_FRACTIONS,
                      road_noise: float = imputation.DEFAULT_NOISE) -> "collections.OrderedDict":
    """The protocol's settings at the network's input_size (height, width), with ROAD's
    removal fractions and imputation noise: fields of every faithfulness.jsonl line, so that
    scores made with other settings do not mix."""
    return collections.OrderedDict([
        ("steps", int(steps)), ("input_size", [int(side) for side in input_size[:2]]),
        ("score", "softmax"),
        ("heatmap_resize", "bilinear"), ("ranking", "stable, decreasing, ties in raster order"),
        ("deletion_substrate", "zero of the network input"),
        ("insertion_substrate", "gaussian blur %dx%d sigma %g, zero padded"
         % (BLUR_SIZE, BLUR_SIZE, BLUR_SIGMA)),
        ("confidence_mask", "bilinear, min-max normalised"),
        ("road_fractions", [float(fraction) for fraction in road_fractions]),
        ("road_noise", float(road_noise)),
        ("road_imputation", "noisy linear (Rong et al. 2022), noise on images in [0, 1], "
                            "seeded per heatmap")])


def check_road_fractions(fractions: typing.Sequence[float]) -> typing.Tuple[float, ...]:
    """ROAD's removal fractions as a tuple; ValueError unless they are increasing, in (0, 1)."""
    fractions = tuple(float(fraction) for fraction in fractions)
    if not fractions or not all(0.0 < fraction < 1.0 for fraction in fractions) or \
            any(later <= earlier for earlier, later in zip(fractions, fractions[1:])):
        raise ValueError("ROAD's removal fractions must be increasing, each above 0 and below 1 "
                         "(at 1 no pixel is left to impute from), got %s"
                         % ", ".join("%g" % fraction for fraction in fractions))
    return fractions


def road_auc(curve: typing.Union[typing.Sequence[float], np.ndarray],
             fractions: typing.Sequence[float]) -> float:
    """The area under a ROAD curve (the probability on the image, then at each fraction) by
    the trapezoid rule over (0, *fractions), divided by the last fraction (in [0, 1])."""
    positions = np.concatenate([[0.0], np.asarray(fractions, dtype=np.float64)])
    curve = np.asarray(curve, dtype=np.float64)
    widths = np.diff(positions)
    return float(np.sum(widths * (curve[1:] + curve[:-1]) / 2.0) / positions[-1])


def road_order(heatmap: np.ndarray, size: typing.Sequence[int],
               rng: np.random.Generator) -> np.ndarray:
    """ROAD's ranking of the pixels of an input of size (height, width), raster order
    flattened, most relevant first: the heatmap resized bilinearly, min-max normalised as the
    reference does, plus its tie-breaking Gaussian noise of 1e-4 drawn from rng."""
    resized = resize_heatmap(heatmap, tuple(size[:2])).astype(np.float64)
    normalised = (resized - resized.min()) / (resized.max() - resized.min()
                                               + _ROAD_NORMALISATION_EPSILON)
    ranked = normalised + _ROAD_TIE_NOISE * rng.standard_normal(normalised.shape)
    return np.argsort(-ranked.ravel(), kind="stable")


def road_images(image: np.ndarray, order: np.ndarray, fractions: typing.Sequence[float],
                noise: float, rng: np.random.Generator) -> typing.Tuple[np.ndarray, np.ndarray]:
    """(MoRF, LeRF) images [len(fractions), H, W, C] (float32) of an RGB image [H, W, C]
    0..255: at each fraction p, the int(p * H * W) first (MoRF) or last (LeRF) pixels of
    `order` imputed, with noise (in units of an image in [0, 1]) drawn from rng."""
    height, width = image.shape[:2]
    count = height * width
    curves = []
    for removed_first in (True, False):
        rows = []
        for fraction in fractions:
            removed = int(count * fraction)
            known = np.ones(count, dtype=bool)
            known[order[:removed] if removed_first else order[count - removed:]] = False
            rows.append(imputation.impute(image, known.reshape(height, width),
                                          noise * _RGB_RANGE, rng))
        curves.append(np.stack(rows).astype(np.float32))
    return curves[0], curves[1]


def average_drop(probability: float, masked_probability: float) -> float:
    """Grad-CAM++'s drop of one heatmap: max(0, Y - O) / Y, 0 when Y is 0."""
    if probability <= 0:
        return 0.0
    return float(max(0.0, probability - masked_probability) / probability)


def average_gain(probability: float, masked_probability: float) -> float:
    """Opti-CAM's gain of one heatmap: max(0, O - Y) / (1 - Y), 0 when Y is 1 (O cannot
    exceed it)."""
    if probability >= 1:
        return 0.0
    return float(max(0.0, masked_probability - probability) / (1.0 - probability))


def pixel_order(heatmap: np.ndarray, size: typing.Sequence[int]) -> np.ndarray:
    """Indices of the pixels of an input of size (height, width), raster order flattened,
    most salient first: the heatmap resized bilinearly, a stable sort in decreasing order
    (tied pixels in raster order). ValueError for a map that is not 2-D or not finite."""
    resized = resize_heatmap(heatmap, tuple(size[:2]))
    return np.argsort(-resized.ravel(), kind="stable")


def changed_pixels(num_pixels: int, steps: int) -> np.ndarray:
    """How many pixels are changed at each of the steps + 1 points of a curve:
    floor(i * num_pixels / steps), from 0 to all."""
    if not 1 <= steps <= num_pixels:
        raise ValueError("steps must be in 1..%d (the input's pixels), got %r"
                         % (num_pixels, steps))
    return np.arange(steps + 1, dtype=np.int64) * num_pixels // steps


def auc(curve: typing.Union[typing.Sequence[float], np.ndarray]) -> float:
    """The area under a curve of evenly spaced points over [0, 1] by the trapezoid rule
    (RISE's `auc`)."""
    curve = np.asarray(curve, dtype=np.float64)
    return float((curve.sum() - (curve[0] + curve[-1]) / 2.0) / (len(curve) - 1))


def rise_blur_kernel(size: int = BLUR_SIZE, sigma: float = BLUR_SIGMA) -> np.ndarray:
    """The 1-D factor k of RISE's blur kernel outer(k, k) (`gkern`): scipy's gaussian_filter
    of a delta at the centre of `size` samples, i.e. the Gaussian of `sigma` cut at 4 sigma,
    normalised to sum 1, with the part beyond the window reflected back into it (scipy's
    'reflect': the edge sample repeated)."""
    radius = int(_BLUR_TRUNCATE * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * (offsets / float(sigma)) ** 2)
    weights /= weights.sum()
    delta = np.zeros(size)
    delta[size // 2] = 1.0
    padded = np.pad(delta, radius, mode="symmetric")
    return np.correlate(padded, weights, mode="valid")


def blur(network_input: np.ndarray, kernel: typing.Optional[np.ndarray] = None) -> np.ndarray:
    """RISE's insertion substrate: the network input [H, W, C] blurred channel by channel
    with outer(kernel, kernel) (default `rise_blur_kernel()`), zero padded, as float32."""
    kernel = rise_blur_kernel() if kernel is None else np.asarray(kernel, np.float64)
    network_input = np.asarray(network_input, np.float32)
    return cv2.sepFilter2D(network_input, -1, kernel, kernel,
                           borderType=cv2.BORDER_CONSTANT).reshape(network_input.shape)


def confidence_mask(heatmap: np.ndarray, size: typing.Sequence[int]) -> np.ndarray:
    """Grad-CAM++'s mask: the heatmap resized bilinearly to size (height, width) and min-max
    normalised to [0, 1]. A flat map stands out nowhere: its mask is 0 everywhere (x - min
    is), which masks the whole image to the network input's zero."""
    resized = resize_heatmap(heatmap, tuple(size[:2]))
    low, high = resized.min(), resized.max()
    if high == low:
        return np.zeros_like(resized)
    return (resized - low) / (high - low)


class _Curve(object):
    """The scores of one heatmap while its rows go through the network."""

    def __init__(self, points: int, road_points: int):
        self.deletion = np.full(points, np.nan)
        self.insertion = np.full(points, np.nan)
        self.road_morf = np.full(road_points, np.nan)
        self.road_lerf = np.full(road_points, np.nan)
        self.masked_probability = np.nan


class Faithfulness(object):
    """Deletion, insertion, Average Drop, Increase in Confidence, Average Gain and ROAD of
    heatmaps (see the module docstring) on `model`.

    steps: the deletion and insertion curves' steps (default: the input's height, RISE's one
    row of pixels per step). batch_size: images per forward pass. road_fractions: ROAD's
    removal fractions (increasing, in (0, 1)); road_noise: its imputation's noise, in units of
    an image in [0, 1]. workers: threads that make the next heatmaps' ROAD images (CPU work:
    sparse solves) while the network scores the current rows (default: the cores this
    process may use); the scores do not depend on it.
    """

    def __init__(self, model: "ExplainableModel", steps: typing.Optional[int] = None,
                 batch_size: int = DEFAULT_BATCH_SIZE,
                 road_fractions: typing.Sequence[float] = DEFAULT_ROAD_FRACTIONS,
                 road_noise: float = imputation.DEFAULT_NOISE,
                 workers: typing.Optional[int] = None):
        self.model = model
        self.road_fractions = check_road_fractions(road_fractions)
        if not road_noise >= 0:
            raise ValueError("ROAD's noise must be 0 or more, got %r" % (road_noise,))
        self.road_noise = float(road_noise)
        self.size = tuple(int(side) for side in model.input_shape[:2])
        self.steps = default_steps(model.input_shape) if steps is None else int(steps)
        self.changed = changed_pixels(self.size[0] * self.size[1], self.steps)
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1, got %r" % (batch_size,))
        self.batch_size = int(batch_size)
        self.workers = parallel.default_workers() if workers is None else int(workers)
        if self.workers < 1:
            raise ValueError("workers must be at least 1, got %r" % (workers,))
        self.kernel = rise_blur_kernel()
        # 3 channels, or 1 for a gray Keras model.
        self.channels = int(model.input_shape[2]) if len(model.input_shape) > 2 else 3
        shape = self.size + (self.channels,)
        # Rows are built as the RGB images the model takes (per-pixel edits commute with the
        # per-pixel preprocessing), so that a batch needs no conversion.
        self._zero = preprocessing.unpreprocess(np.zeros(shape, np.float32),
                                                model.preprocessing)
        self._buffer = np.empty((self.batch_size,) + shape, np.float32)

    @property
    def points(self) -> int:
        """Points per deletion or insertion curve: steps + 1."""
        return self.steps + 1

    @property
    def road_points(self) -> int:
        """Points per ROAD curve: the image, then each removal fraction."""
        return len(self.road_fractions) + 1

    @property
    def forward_passes(self) -> int:
        """Forward passes of a heatmap's own rows: the inner points of its deletion and
        insertion curves, its ROAD images and its masked image."""
        return 2 * (self.points - 2) + 2 * len(self.road_fractions) + 1

    def __call__(self, inputs: np.ndarray, heatmaps: typing.Sequence[np.ndarray],
                 class_ids: typing.Sequence[int],
                 image_indices: typing.Optional[typing.Sequence[int]] = None,
                 progress: typing.Optional[typing.Callable[[int], object]] = None,
                 on_scored: typing.Optional[typing.Callable[[int, Scores], object]] = None,
                 noise_seeds: typing.Optional[typing.Sequence[int]] = None
                 ) -> typing.List[Scores]:
        """The Scores of each heatmap, in order.

        inputs: network inputs [N, H, W, C] at the model's input size (`model.prepare`d and
        preprocessed: see l2caf.preprocessing). heatmaps: 2-D maps at any resolution;
        class_ids: the class of each (a class id, as `model.class_output` takes).
        image_indices: the input of each heatmap (default: heatmap i on input i). progress:
        called with the number of heatmaps finished after each forward pass that finishes
        some. on_scored: called with a heatmap's index and its Scores as soon as they exist
        (heatmaps finish in order), so that a caller can keep them before the others finish.
        noise_seeds: the seed of each heatmap's ROAD noise (default: its index), so that its
        scores do not depend on the other heatmaps scored with it.
        """
        inputs = np.asarray(inputs, np.float32)
        if inputs.ndim != 4 or tuple(inputs.shape[1:]) != self.size + (self.channels,):
            raise ValueError("inputs must be network inputs [N, %d, %d, %d], got shape %s" % (
                self.size + (self.channels, inputs.shape)))  # type: ignore[str-format]
        if image_indices is None:
            image_indices = range(len(heatmaps))
        image_indices = list(image_indices)
        noise_seeds = list(range(len(heatmaps)) if noise_seeds is None else noise_seeds)
        if not len(heatmaps) == len(class_ids) == len(image_indices) == len(noise_seeds):
            raise ValueError("heatmaps, class_ids, image_indices and noise_seeds must have one "
                             "entry per heatmap, got %d, %d, %d and %d"
                             % (len(heatmaps), len(class_ids), len(image_indices),
                                len(noise_seeds)))
        outputs = [self.model.class_output(class_id) for class_id in class_ids]
        orders = [pixel_order(heatmap, self.size) for heatmap in heatmaps]
        curves = [_Curve(self.points, self.road_points) for _ in heatmaps]
        # (what, image index): the probabilities of a row shared by curves
        shared: typing.Dict[typing.Tuple[str, typing.Optional[int]], np.ndarray] = {}
        scores: typing.List[Scores] = []

        def finished(number):  # a heatmap's last row is scored: its rows' and shared rows'
            curve, output, index = curves[number], outputs[number], image_indices[number]
            probability = shared["image", index][output]
            curve.deletion[0] = curve.insertion[-1] = probability
            curve.road_morf[0] = curve.road_lerf[0] = probability
            curve.deletion[-1] = shared["zero", None][output]
            curve.insertion[0] = shared["blurred", index][output]
            observed = curve.masked_probability
            scores.append(Scores(
                class_id=class_ids[number], deletion=curve.deletion, insertion=curve.insertion,
                deletion_auc=auc(curve.deletion), insertion_auc=auc(curve.insertion),
                average_drop=average_drop(probability, observed),
                increase_in_confidence=float(observed > probability),
                probability=float(probability), masked_probability=float(observed),
                road_morf=curve.road_morf, road_lerf=curve.road_lerf,
                road_morf_auc=road_auc(curve.road_morf, self.road_fractions),
                road_lerf_auc=road_auc(curve.road_lerf, self.road_fractions),
                average_gain=average_gain(probability, observed)))
            if on_scored is not None:
                on_scored(number, scores[-1])
        self._score(self._rows(inputs, heatmaps, orders, curves, outputs, image_indices,
                               noise_seeds, shared, finished), progress)
        return scores

    def _rows(self, inputs, heatmaps, orders, curves, outputs, image_indices, noise_seeds,
              shared, finished):
        """Yields (RGB image, a function taking its probabilities, whether it is a heatmap's
        last row) for every forward pass the scores need: the shared rows first, then
        heatmap by heatmap its deletion and insertion curves' inner points, its ROAD images
        and its masked image, whose function calls finished(the heatmap's number)."""
        name = self.model.preprocessing

        def keep(key):
            return lambda probabilities: shared.__setitem__(key, probabilities)
        yield self._zero, keep(("zero", None)), False
        images, blurred = {}, {}
        for index in sorted(set(image_indices)):
            images[index] = preprocessing.unpreprocess(inputs[index], name)
            blurred[index] = preprocessing.unpreprocess(blur(inputs[index], self.kernel), name)
            yield images[index], keep(("image", index)), False
            yield blurred[index], keep(("blurred", index)), False

        def make_road(number):  # on a worker thread; its own generator keeps it reproducible
            rng = np.random.default_rng(noise_seeds[number])
            return road_images(images[image_indices[number]],
                               road_order(heatmaps[number], self.size, rng),
                               self.road_fractions, self.road_noise, rng)
        roads = (made for batch in parallel.prefetched(range(len(heatmaps)), self.workers,
                                                        make_road, self.workers)
                 for _, made in batch)
        for number, (heatmap, order, curve, output, index, road) in enumerate(
                zip(heatmaps, orders, curves, outputs, image_indices, roads)):
            yield from self._curve_rows(curve.deletion, images[index], self._zero, order,
                                        output)
            yield from self._curve_rows(curve.insertion, blurred[index], images[index], order,
                                        output)
            for values, imputed in zip((curve.road_morf, curve.road_lerf), road.result()):
                for point, image in enumerate(imputed, start=1):
                    def record_road(probabilities, values=values, point=point, output=output):
                        values[point] = probabilities[output]
                    yield image, record_road, False
            mask = confidence_mask(heatmap, self.size).astype(np.float32)[..., None]

            def record(probabilities, curve=curve, output=output, number=number):
                curve.masked_probability = probabilities[output]
                finished(number)
            yield preprocessing.unpreprocess(inputs[index] * mask, name), record, True

    def _curve_rows(self, values, start, finish, order, output):
        """The rows of a curve's inner points: start with the first changed[i] pixels of
        `order` taken from finish."""
        current = start.reshape(-1, self.channels).copy()
        finish = finish.reshape(-1, self.channels)
        for point in range(1, self.points - 1):
            changed = order[self.changed[point - 1]:self.changed[point]]
            current[changed] = finish[changed]

            def record(probabilities, point=point):
                values[point] = probabilities[output]
            yield current.reshape(self.size + (self.channels,)), record, False

    def _score(self, rows, progress):
        """Runs the rows through the network, batch_size at a time."""
        pending, finished = [], 0
        for image, record, last in rows:
            self._buffer[len(pending)] = image
            pending.append((record, last))
            if len(pending) == self.batch_size:
                finished += self._run(pending)
                pending = []
                if progress and finished:
                    progress(finished)
                    finished = 0
        if pending:
            finished += self._run(pending)
        if progress and finished:
            progress(finished)

    def _run(self, pending):
        probabilities = np.asarray(self.model.class_probabilities(self._buffer[:len(pending)]),
                                   np.float64)
        for (record, _), row in zip(pending, probabilities):
            record(row)
        return sum(last for _, last in pending)
