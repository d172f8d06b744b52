"""Faithfulness of heatmaps: do the pixels a heatmap ranks first matter to the network?

Four scores per heatmap, each the class's softmax probability as the papers use it:

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

from l2caf import preprocessing
from l2caf.heatmaps import resize_heatmap

if typing.TYPE_CHECKING:
    from l2caf.models.base import ExplainableModel

BLUR_SIZE = 11
BLUR_SIGMA = 5.0
# scipy.ndimage.gaussian_filter's default: the Gaussian is cut 4 sigma from its centre.
_BLUR_TRUNCATE = 4.0
DEFAULT_BATCH_SIZE = 64

Scores = collections.namedtuple(
    "Scores", ["class_id", "deletion", "insertion", "deletion_auc", "insertion_auc",
               "average_drop", "increase_in_confidence", "probability", "masked_probability"])
Scores.__doc__ = """The faithfulness of one heatmap for class_id. deletion, insertion: the
curves (float64 arrays of steps + 1 class probabilities, at the fractions of pixels changed
np.linspace(0, 1, steps + 1)); deletion_auc, insertion_auc: their normalised areas;
average_drop: max(0, Y - O) / Y; increase_in_confidence: 1.0 if O > Y, else 0.0; probability
(Y) and masked_probability (O): the class's probability on the image and on the image masked
by the heatmap."""


def default_steps(input_shape: typing.Sequence[int]) -> int:
    """RISE's number of steps for an input of (height, width, ...): one row of pixels each."""
    return int(input_shape[0])


def protocol_settings(steps: int, input_size: typing.Sequence[int]) -> "collections.OrderedDict":
    """The protocol's settings at the network's input_size (height, width): fields of every
    faithfulness.jsonl line, so that scores made with other settings do not mix."""
    return collections.OrderedDict([
        ("steps", int(steps)), ("input_size", [int(side) for side in input_size[:2]]),
        ("score", "softmax"),
        ("heatmap_resize", "bilinear"), ("ranking", "stable, decreasing, ties in raster order"),
        ("deletion_substrate", "zero of the network input"),
        ("insertion_substrate", "gaussian blur %dx%d sigma %g, zero padded"
         % (BLUR_SIZE, BLUR_SIZE, BLUR_SIGMA)),
        ("confidence_mask", "bilinear, min-max normalised")])


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

    def __init__(self, points: int):
        self.deletion = np.full(points, np.nan)
        self.insertion = np.full(points, np.nan)
        self.masked_probability = np.nan


class Faithfulness(object):
    """Deletion, insertion, Average Drop and Increase in Confidence of heatmaps (see the
    module docstring) on `model`.

    steps: the curves' steps (default: the input's height, RISE's one row of pixels per
    step). batch_size: images per forward pass.
    """

    def __init__(self, model: "ExplainableModel", steps: typing.Optional[int] = None,
                 batch_size: int = DEFAULT_BATCH_SIZE):
        self.model = model
        self.size = tuple(int(side) for side in model.input_shape[:2])
        self.steps = default_steps(model.input_shape) if steps is None else int(steps)
        self.changed = changed_pixels(self.size[0] * self.size[1], self.steps)
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1, got %r" % (batch_size,))
        self.batch_size = int(batch_size)
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
        """Points per curve: steps + 1."""
        return self.steps + 1

    def __call__(self, inputs: np.ndarray, heatmaps: typing.Sequence[np.ndarray],
                 class_ids: typing.Sequence[int],
                 image_indices: typing.Optional[typing.Sequence[int]] = None,
                 progress: typing.Optional[typing.Callable[[int], object]] = None,
                 on_scored: typing.Optional[typing.Callable[[int, Scores], object]] = None
                 ) -> typing.List[Scores]:
        """The Scores of each heatmap, in order.

        inputs: network inputs [N, H, W, C] at the model's input size (`model.prepare`d and
        preprocessed: see l2caf.preprocessing). heatmaps: 2-D maps at any resolution;
        class_ids: the class of each (a class id, as `model.class_output` takes).
        image_indices: the input of each heatmap (default: heatmap i on input i). progress:
        called with the number of heatmaps finished after each forward pass that finishes
        some. on_scored: called with a heatmap's index and its Scores as soon as they exist
        (heatmaps finish in order), so that a caller can keep them before the others finish.
        """
        inputs = np.asarray(inputs, np.float32)
        if inputs.ndim != 4 or tuple(inputs.shape[1:]) != self.size + (self.channels,):
            raise ValueError("inputs must be network inputs [N, %d, %d, %d], got shape %s" % (
                self.size + (self.channels, inputs.shape)))  # type: ignore[str-format]
        if image_indices is None:
            image_indices = range(len(heatmaps))
        image_indices = list(image_indices)
        if not len(heatmaps) == len(class_ids) == len(image_indices):
            raise ValueError("heatmaps, class_ids and image_indices must have one entry per "
                             "heatmap, got %d, %d and %d"
                             % (len(heatmaps), len(class_ids), len(image_indices)))
        outputs = [self.model.class_output(class_id) for class_id in class_ids]
        orders = [pixel_order(heatmap, self.size) for heatmap in heatmaps]
        curves = [_Curve(self.points) for _ in heatmaps]
        # (what, image index): the probabilities of a row shared by curves
        shared: typing.Dict[typing.Tuple[str, typing.Optional[int]], np.ndarray] = {}
        scores: typing.List[Scores] = []

        def finished(number):  # a heatmap's last row is scored: its rows' and shared rows'
            curve, output, index = curves[number], outputs[number], image_indices[number]
            probability = shared["image", index][output]
            curve.deletion[0] = curve.insertion[-1] = probability
            curve.deletion[-1] = shared["zero", None][output]
            curve.insertion[0] = shared["blurred", index][output]
            observed = curve.masked_probability
            scores.append(Scores(
                class_id=class_ids[number], deletion=curve.deletion, insertion=curve.insertion,
                deletion_auc=auc(curve.deletion), insertion_auc=auc(curve.insertion),
                average_drop=float(max(0.0, probability - observed) / probability)
                if probability > 0 else 0.0,
                increase_in_confidence=float(observed > probability),
                probability=float(probability), masked_probability=float(observed)))
            if on_scored is not None:
                on_scored(number, scores[-1])
        self._score(self._rows(inputs, heatmaps, orders, curves, outputs, image_indices,
                               shared, finished), progress)
        return scores

    def _rows(self, inputs, heatmaps, orders, curves, outputs, image_indices, shared,
              finished):
        """Yields (RGB image, a function taking its probabilities, whether it is a heatmap's
        last row) for every forward pass the scores need: the shared rows first, then
        heatmap by heatmap its curves' inner points and its masked image, whose function
        calls finished(the heatmap's number)."""
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
        for number, (heatmap, order, curve, output, index) in enumerate(
                zip(heatmaps, orders, curves, outputs, image_indices)):
            yield from self._curve_rows(curve.deletion, images[index], self._zero, order,
                                        output)
            yield from self._curve_rows(curve.insertion, blurred[index], images[index], order,
                                        output)
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
