"""Explanation methods over a model (any l2caf.models.base.ExplainableModel: a slim Model or a
KerasModel): L2-CAF, Opti-CAM, and the one-pass maps papers compare them with: CAM,
Grad-CAM, Grad-CAM++, LayerCAM, Score-CAM, and the random floor.

    explainer = GradCAMPlusPlus(model)  # or L2CAF, OptiCAM, CAM, GradCAM, LayerCAM, ...
    explanations = explainer(images, classes=None, keys=None, preprocessed=False)

What images, classes and keys may be is l2caf.inputs' (the same for every method). The
result is one Explanation per image and class, image by image, class by class.

The optimised methods share `OptimizedMap`: each is a head (l2caf.heads: its variable, loss
and heatmap), a loop (l2caf.optimize.Loop: its update, schedule and stopping rule), and each
row's start and targets; one loop (l2caf.optimize.FilterOptimizer) optimises model.rows
(image, class) rows at once, each stopping on its own:

    L2-CAF      a spatial filter f after the layer, constrained (l2norm, softmax, gauss);
                the class raised and the others lowered (or the output kept); preset
                original (Adam from N(0, 1)) or pytorch (SGD from ones) (Taha et al. 2020)
    Opti-CAM    a weight per channel, through a softmax; the map their sum of the layer's
                activation, upsampled and min-max normalised, multiplies the image; the
                class's logit on it maximised with Adam (Zhang et al. 2024)

The one-pass methods share `ActivationMap`: the activation A [H, W, C] at the model's layer
(the map L2-CAF's filter multiplies) comes from the forward pass that also gives the
predictions, and the gradient methods' G = d score / dA from one gradient run for a batch of
(image, class) rows, the score being the class's output before the softmax (its logit). A
method gives weights per channel [C] or per location [H, W, C]; its heatmap is
ReLU(sum_c weights * A), scaled to a maximum of 1 (an all-zero map stays zero), at the
layer's resolution:

    CAM         w_c   the linear head's weight of channel c for the class (Zhou et al. 2016)
    Grad-CAM    w_c   mean_ij G_ijc (Selvaraju et al. 2017)
    Grad-CAM++  w_c   sum_ij alpha_ijc relu(G_ijc), alpha = G^2 / (2 G^2 + sum_ab A_abc G^3)
                      (Chattopadhyay et al. 2018, the paper's equation; alpha = 0 where its
                      denominator is 0)
    LayerCAM    w_ijc relu(G_ijc) (Jiang et al. 2021)
    Score-CAM   w_c   the class's softmax probability on the network input masked by channel
                      c, upsampled and min-max normalised (Wang et al. 2020); forward passes
                      only
    RandomMap   its own map: seeded uniform values, the floor of every metric
"""
import collections
import time
from typing import (TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple,
                    Union)

import numpy as np
from tqdm import tqdm

from l2caf import filters, heads, inputs, preprocessing
from l2caf.errors import ConfigError
from l2caf.heatmaps import upsample
from l2caf.optimize import FilterOptimizer, Loop
from l2caf.settings import OPTICAM_DEFAULTS, Settings, check_number, check_whole_number

if TYPE_CHECKING:
    from l2caf.models.base import ExplainableModel, Prediction

Explanation = collections.namedtuple(
    "Explanation", ["image_index", "class_id", "heatmap", "loss", "iterations", "seconds",
                    "loss_history", "class_name", "probability"], defaults=(None, None, None))
Explanation.__doc__ = """One heatmap: for images[image_index] and class_id (None for
cls_oblivious), at the layer's resolution, with the final loss and the number of updates
(None and 0 for the one-pass methods), the wall time (shared evenly by the pairs explained
together), and for the optimised methods (L2-CAF, Opti-CAM) loss_history: [updates, loss]
at every convergence check (the loss after that many updates), ending with the final loss
(None for the one-pass methods); what a plot's title needs: class_name, the class's name
from the model's labels (None when the model has none), and probability, the class's
softmax probability on the image (both None for cls_oblivious)."""

# on_check(updates, heatmaps, running): see FilterOptimizer.run.
_OnCheck = Optional[Callable[[int, np.ndarray, np.ndarray], object]]


class Explainer(object):
    """The shared call of the methods: check the images and targets (l2caf.inputs), run the
    network, choose the (image, class) pairs, then `explain` them."""
    explains_classes = True

    def __init__(self, model: "ExplainableModel"):
        self.model = model

    def predict(self, images: Any, preprocessed: bool = False) -> "Prediction":
        """The unfiltered network (model.predict) on `images` (see l2caf.inputs)."""
        predictions = [self.model.predict(batch)
                       for batch in inputs.ImageBatches(images, self.model, preprocessed)]
        if len(predictions) == 1:
            return predictions[0]
        return type(predictions[0])(*(np.concatenate(field) for field in zip(*predictions)))

    def __call__(self, images: Any, classes: Any = None, keys: Optional[Sequence] = None,
                 prediction: Optional["Prediction"] = None, on_check: _OnCheck = None,
                 preprocessed: bool = False) -> List[Explanation]:
        """Explanations of each image's classes.

        images: one image, a list, a batch, a tensor or an iterable of batches (a
        tf.data.Dataset), RGB 0..255; preprocessed=True for the network's input. classes:
        None (each image's top-1 class), an int for all images, or per image an int or a
        list of ints. keys: a name per image, which seeds L2-CAF's filters and the random
        maps (default: the image's index). prediction: `predict(images)`, if made already.
        on_check(updates, heatmaps, running): see FilterOptimizer.run (the optimised
        methods only).
        """
        batches = inputs.ImageBatches(images, self.model, preprocessed)
        targets = inputs.Targets(classes, keys, self.model, type(self).__name__,
                                 self.explains_classes)
        if batches.count is not None:
            targets.check_count(batches.count)
        if prediction is not None and batches.count != len(prediction.probabilities):
            raise ConfigError("prediction holds %d images, but images %s: give "
                              "predict(images) of these images, or none"
                              % (len(prediction.probabilities), "are a stream" if
                                 batches.count is None else "hold %d" % batches.count))
        explanations, start = [], 0
        for batch in batches:
            targets.check_count(start + len(batch), final=False)
            predicted = prediction if prediction is not None else self.model.predict(batch)
            pairs = [(row, class_id) for row in range(len(batch))
                     for class_id in targets.classes_of(start + row,
                                                        predicted.probabilities[row])]
            keys_of_batch = [targets.key_of(start + row) for row in range(len(batch))]
            explanations += [self._described(explanation, predicted, start)
                             for explanation in self.explain(batch, predicted, pairs,
                                                             keys_of_batch, on_check)]
            start += len(batch)
        targets.check_count(start)
        return explanations

    def _described(self, explanation: Explanation, prediction: "Prediction",
                   start: int) -> Explanation:
        """An explanation of a batch starting at image `start`, with its image's index over
        all the images, its class's name and probability."""
        class_id, labels = explanation.class_id, self.model.labels
        probability = None if class_id is None else float(
            prediction.probabilities[explanation.image_index][self.model.class_output(class_id)])
        return explanation._replace(
            image_index=explanation.image_index + start, probability=probability,
            class_name=labels[class_id] if labels is not None and class_id is not None else None)

    def explain(self, images: np.ndarray, prediction: "Prediction",
                pairs: Sequence[Tuple[int, Optional[int]]], keys: Sequence[str],
                on_check: _OnCheck) -> List[Explanation]:
        """The Explanations of `pairs` [(row of images, class id)] of an input batch, with
        the network's `prediction` on it, each image's key and on_check (see __call__)."""
        raise NotImplementedError


class OptimizedMap(Explainer):
    """The base of the optimised methods (see the module docstring): a method sets `head`
    (an l2caf.heads.Head) and `optimizer` (a FilterOptimizer of it), and gives `loop()`,
    `initial_row(key, class_id)` and `targets(outputs, output_indices)`; pairs are explained
    model.rows at a time."""
    head: heads.Head
    optimizer: FilterOptimizer

    def loop(self) -> Loop:
        """How the rows are optimised (l2caf.optimize.Loop)."""
        raise NotImplementedError

    def initial_row(self, key: str, class_id: Optional[int]) -> np.ndarray:
        """The variable's start for the row explaining (image key, class)."""
        raise NotImplementedError

    def targets(self, outputs: np.ndarray, output_indices: Optional[List[int]]) -> np.ndarray:
        """The rows' targets from their images' unfiltered outputs and their classes' output
        indices (None: no classes)."""
        raise NotImplementedError

    def explain(self, images: np.ndarray, prediction: "Prediction",
                pairs: Sequence[Tuple[int, Optional[int]]], keys: Sequence[str],
                on_check: _OnCheck) -> List[Explanation]:
        """The Explanations of `pairs`, optimised model.rows pairs at a time."""
        rows = self.model.rows
        return [explanation for start in range(0, len(pairs), rows)
                for explanation in self._explain_rows(images, prediction,
                                                      pairs[start:start + rows], keys, on_check)]

    def _explain_rows(self, images, prediction, pairs, keys, on_check):
        model = self.model
        started = time.time()
        rows = [index for index, _ in pairs]
        output_indices = [model.class_output(c) for _, c in pairs] \
            if self.explains_classes else None
        targets = self.targets(prediction.outputs[rows], output_indices)
        # Unused rows keep ones: any finite non-zero value keeps the maps finite.
        initial = np.ones(self.head.variable_shape(model.rows), np.float32)
        for row, (index, class_id) in enumerate(pairs):
            initial[row] = self.initial_row(keys[index], class_id)
        result = self.optimizer.run(images, prediction.activation, rows, targets, initial,
                                    self.loop(), on_check)
        seconds = (time.time() - started) / len(pairs)
        return [Explanation(index, class_id, result.heatmaps[row], float(result.losses[row]),
                            int(result.iterations[row]), seconds, result.histories[row])
                for row, (index, class_id) in enumerate(pairs)]


class L2CAF(OptimizedMap):
    """Class-specific or class-oblivious L2-CAF at `model`'s layer.

    settings: l2caf.settings.Settings or a dict of some of its keys; preset: original (the
    paper's TensorFlow 1 code, the default) or pytorch (the authors' PyTorch port), whose
    values the settings not given take (see l2caf.settings). cache_activation: iterations
    start from the activation at the layer, made once per image; False runs the whole
    network every iteration, as the original did (same results, slower). precompute_head:
    where the network's head allows it, the loss comes from terms made once per batch
    (l2caf.heads; same results, much faster). Pairs are explained model.rows at a time, each
    row stopping when its own loss has settled.
    """

    def __init__(self, model: "ExplainableModel", caf_variant: str = "cls_specific",
                 settings: Optional[Union[Settings, Mapping[str, Any]]] = None,
                 cache_activation: bool = True, precompute_head: bool = True,
                 preset: Optional[str] = None):
        super(L2CAF, self).__init__(model)
        self.caf_variant = caf_variant
        self.settings = Settings.of(settings, preset)
        self.explains_classes = caf_variant == "cls_specific"
        if model.explain == "embedding" and self.explains_classes:
            raise ConfigError("explain: embedding works with caf_variant cls_oblivious only "
                              "(an embedding has no classes)")
        self.head = heads.head_for(model, caf_variant, cache_activation, precompute_head)
        self.optimizer = FilterOptimizer(model, self.head, self.loop())

    def loop(self) -> Loop:
        """The settings' loop: Adam (original) or SGD (pytorch), stopping once settled."""
        return Loop.of(self.settings)

    def initial_row(self, key: str, class_id: Optional[int]) -> np.ndarray:
        """N(0, 1) seeded by (seed, key, class), or ones."""
        height, width = self.model.filter_size
        return filters.initial_filter(self.model.filter_type, height, width,
                                      self.settings.seed, key, class_id,
                                      self.settings.initial_filter)

    def targets(self, outputs: np.ndarray, output_indices: Optional[List[int]]) -> np.ndarray:
        """Class weights (cls_specific) or the unfiltered outputs (cls_oblivious)."""
        return heads.loss_targets(self.caf_variant, outputs, output_indices)


class OptiCAM(OptimizedMap):
    """Opti-CAM (Zhang, Torres, Sicre, Avrithis, Ayache, "Opti-CAM: Optimizing saliency maps
    for interpretability", CVIU 2024) at `model`'s layer, any layer, as the paper and the
    authors' code (github hanwei0912/OptiCAM) define it: per (image, class) row, weights u
    of the layer's channels, 0.5 each at the start; the saliency map S = sum_k softmax(u)_k
    ReLU(A_k), upsampled bilinearly to the input and min-max normalised, multiplies the
    image; Adam (torch.optim.Adam's formula, constant learning_rate) raises the class's logit
    on the masked image for max_iters iterations, checking every max_iters // 10 whether the
    loss (logit on the image minus logit on the masked one) rose since the previous check:
    the row then stops with the map of that check (l2caf.heads.OptiCAMHead). The defaults
    are the paper's (l2caf.settings.OPTICAM_DEFAULTS). The heatmap is S, min-max normalised
    at the layer's resolution. Each iteration runs the network forwards and backwards on the
    masked images: max_iters such passes per heatmap, model.rows rows batched.
    """

    def __init__(self, model: "ExplainableModel",
                 learning_rate: float = OPTICAM_DEFAULTS["learning_rate"],
                 max_iters: int = OPTICAM_DEFAULTS["max_iters"]):
        super(OptiCAM, self).__init__(model)
        if model.explain != "logits":
            raise ConfigError("OptiCAM raises a class's logit: it needs a model that "
                              "explains logits, not %s" % model.explain)
        self.learning_rate = check_number("OptiCAM's learning_rate", learning_rate,
                                          "positive", lambda x: x > 0)
        self.max_iters = check_whole_number("OptiCAM's max_iters", max_iters, "at least 1", 1)
        self.head = heads.OptiCAMHead(model)
        self.optimizer = FilterOptimizer(model, self.head, self.loop())

    def loop(self) -> Loop:
        """Adam at a constant learning rate; a check every max_iters // 10 (at least 1) that
        stops a row whose loss rose."""
        return Loop("adam_pytorch", self.learning_rate, self.learning_rate, self.max_iters,
                    max(self.max_iters // 10, 1), "rose")

    def initial_row(self, key: str, class_id: Optional[int]) -> np.ndarray:
        """0.5 per channel (the authors' code)."""
        return np.full(self.head.variable_shape(1)[1:], 0.5, np.float32)

    def targets(self, outputs: np.ndarray, output_indices: Optional[List[int]]) -> np.ndarray:
        """One-hot rows at the classes' outputs."""
        one_hot = np.zeros(np.shape(outputs), np.float32)
        one_hot[np.arange(len(one_hot)), output_indices] = 1.0
        return one_hot


PairRows = collections.namedtuple(
    "PairRows", ["images", "image_rows", "activations", "gradients", "outputs", "class_ids",
                 "keys"])
PairRows.__doc__ = """What a one-pass method sees of the (image, class) pairs of a batch, one
row per pair: the input batch (RGB 0..255, all its images), each pair's row in it, its
activation at the layer [rows, H, W, C], d logit / d activation (gradient methods, else
None), the output index of its class, its class id and its image's key."""


class ActivationMap(Explainer):
    """The base of the one-pass methods (see the module docstring): the heatmap of a pair is
    ReLU(`maps`), scaled to a maximum of 1. A method gives `weights` (per channel [rows, C]
    or per location [rows, H, W, C]) or its own `maps` [rows, H, W]; uses_gradients: the
    rows need d logit / d activation."""
    uses_gradients = False

    def explain(self, images: np.ndarray, prediction: "Prediction",
                pairs: Sequence[Tuple[int, Optional[int]]], keys: Sequence[str],
                on_check: _OnCheck) -> List[Explanation]:
        """The Explanations of `pairs`, from the forward pass's activation (and one gradient
        run)."""
        if not pairs:
            return []
        started = time.time()
        image_rows = [index for index, _ in pairs]
        activations = prediction.activation[image_rows]
        # (the one-pass methods explain classes: no class id is None)
        outputs = [self.model.class_output(c) for _, c in pairs]  # type: ignore[arg-type]
        gradients = None
        if self.uses_gradients:
            # One run for all rows: the gradient of the sum over rows of each row's own logit
            # is each row's own gradient, as the rows of an inference-mode network do not mix.
            one_hot = np.zeros((len(outputs), self.model.num_classes), np.float32)
            one_hot[np.arange(len(outputs)), outputs] = 1.0
            gradients = self.model.output_gradients(images[image_rows], activations, one_hot)
        rows = PairRows(images, image_rows, activations, gradients, outputs,
                        [class_id for _, class_id in pairs], [keys[i] for i in image_rows])
        maps = np.maximum(self.maps(rows), 0.0)
        peaks = maps.max(axis=(1, 2), keepdims=True)
        heatmaps = (maps / np.where(peaks > 0, peaks, 1.0)).astype(np.float32, copy=False)
        seconds = (time.time() - started) / len(pairs)
        return [Explanation(index, class_id, heatmaps[row], None, 0, seconds)
                for row, (index, class_id) in enumerate(pairs)]

    def maps(self, rows: PairRows) -> np.ndarray:
        """[rows, H, W]: sum over channels of weights * activation."""
        weights = self.weights(rows)
        if np.ndim(weights) == 2:
            return np.einsum("nhwc,nc->nhw", rows.activations, weights)
        return np.einsum("nhwc,nhwc->nhw", rows.activations, weights)

    def weights(self, rows: PairRows) -> np.ndarray:
        """[rows, C] per channel, or [rows, H, W, C] per location."""
        raise NotImplementedError


class CAM(ActivationMap):
    """Class activation mapping (Zhou et al., CVPR 2016).

    For a head that is a global mean followed by a linear layer, logit k = mean over
    locations of sum_c w[c, k] A[:, :, c] + b_k; CAM maps the summand. Only the layer that
    feeds such a head can be mapped: any other model or layer is a ConfigError (Grad-CAM
    works there).
    """

    def __init__(self, model: "ExplainableModel"):
        super(CAM, self).__init__(model)
        if model.linear_head_layer is None:
            raise ConfigError("CAM needs a head that is a global mean followed by a linear "
                              "layer, and %s has none; use method gradcam" % model.name)
        if model.layer != model.linear_head_layer:
            raise ConfigError("CAM maps the layer %s, which feeds %s's linear head, not %s; "
                              "use method gradcam for other layers"
                              % (model.linear_head_layer, model.name, model.layer))

    def weights(self, rows: PairRows) -> np.ndarray:
        """[rows, C]: the linear head's weights of each row's class."""
        # Read at every call: the checkpoint may be restored after construction.
        return self.model.linear_head_weights()[:, rows.outputs].T


class GradCAM(ActivationMap):
    """Grad-CAM (Selvaraju et al., ICCV 2017) at `model`'s layer, any layer: a channel's
    weight is the spatial mean of d logit / dA over its map."""
    uses_gradients = True

    def weights(self, rows: PairRows) -> np.ndarray:
        """[rows, C]: the spatial means of the gradients."""
        return rows.gradients.mean(axis=(1, 2))


class GradCAMPlusPlus(ActivationMap):
    """Grad-CAM++ (Chattopadhyay et al., WACV 2018) at `model`'s layer, any layer, with the
    paper's equation: channel c's weight is sum_ij alpha_ij relu(G_ij), where G = d logit / dA
    and alpha = G^2 / (2 G^2 + sum_ab A_ab G^3) (the closed form of the exponential score's
    derivatives, whose exp(score) factor cancels in alpha and only scales the map); alpha is
    0 where its denominator is 0. Computed in float64."""
    uses_gradients = True

    def weights(self, rows: PairRows) -> np.ndarray:
        """[rows, C]: sum_ij alpha_ij relu(G_ij)."""
        gradients = rows.gradients.astype(np.float64)
        squared = gradients * gradients
        sums = rows.activations.astype(np.float64).sum(axis=(1, 2), keepdims=True)
        denominators = 2.0 * squared + sums * squared * gradients
        alphas = np.divide(squared, denominators, out=np.zeros_like(squared),
                           where=denominators != 0)
        return (alphas * np.maximum(gradients, 0.0)).sum(axis=(1, 2))


class LayerCAM(ActivationMap):
    """LayerCAM (Jiang et al., IEEE TIP 2021) at `model`'s layer, any layer: each location's
    activation weighted by its own positive gradient, relu(d logit / dA), summed over the
    channels."""
    uses_gradients = True

    def weights(self, rows: PairRows) -> np.ndarray:
        """[rows, H, W, C]: the positive part of the gradients."""
        return np.maximum(rows.gradients, 0.0)


class ScoreCAM(ActivationMap):
    """Score-CAM (Wang et al., CVPR workshops 2020) at `model`'s layer, any layer, as the
    authors' code (github haofanwang/Score-CAM) computes it: each channel of the activation
    is upsampled bilinearly to the network's input size (l2caf.upsample), min-max normalised
    to 0..1 and multiplied with the network input (the image after the model's
    preprocessing, so that masked-out pixels become the preprocessing's zero); its weight is
    the class's softmax probability on that masked input. A channel that is constant (flat
    at the layer, hence when upsampled) gets weight 0 and no forward pass, as in the
    authors' code. The masked inputs of all the batch's images and channels go through
    `model.class_probabilities` batch_size at a time: one forward pass per channel and
    image. progress: a progress bar over them."""

    def __init__(self, model: "ExplainableModel", batch_size: int = 64, progress: bool = False):
        super(ScoreCAM, self).__init__(model)
        if int(batch_size) < 1:
            raise ConfigError("ScoreCAM's batch_size must be at least 1, got %r"
                              % (batch_size,))
        self.batch_size, self.progress = int(batch_size), bool(progress)

    def weights(self, rows: PairRows) -> np.ndarray:
        """[rows, C]: the class's probability on the input masked by each channel."""
        model = self.model
        size = model.input_shape[:2]
        rows_of: Dict[int, List[int]] = collections.OrderedDict()
        for row, image in enumerate(rows.image_rows):
            rows_of.setdefault(image, []).append(row)
        maps = {image: rows.activations[pair_rows[0]] for image, pair_rows in rows_of.items()}
        masked = [(image, channel) for image, activation in maps.items()
                  for channel in np.flatnonzero(activation.max(axis=(0, 1)) >
                                                activation.min(axis=(0, 1)))]
        network_inputs = {image: preprocessing.preprocess(rows.images[image],
                                                          model.preprocessing)
                          for image in rows_of}
        scores = np.zeros((len(rows.image_rows), rows.activations.shape[-1]), np.float64)
        with tqdm(total=len(masked), desc="Score-CAM", unit="masked input", leave=False,
                  disable=not self.progress) as bar:
            for start in range(0, len(masked), self.batch_size):
                chunk = masked[start:start + self.batch_size]
                masks = upsample(np.stack([maps[image][:, :, channel]
                                           for image, channel in chunk]), size)
                low = masks.min(axis=(1, 2), keepdims=True)
                masks = ((masks - low) / (masks.max(axis=(1, 2), keepdims=True) - low)) \
                    .astype(np.float32)
                batch = np.stack([network_inputs[image] for image, _ in chunk]) * masks[..., None]
                probabilities = model.class_probabilities(
                    preprocessing.unpreprocess(batch, model.preprocessing))
                for position, (image, channel) in enumerate(chunk):
                    for row in rows_of[image]:
                        scores[row, channel] = probabilities[position, rows.outputs[row]]
                bar.update(len(chunk))
        return scores


class RandomMap(ActivationMap):
    """The floor of every metric: a map of independent uniform values at the layer's
    resolution, scaled to a maximum of 1, fixed by (seed, image key, class) whatever the
    batch around it (the seeds of L2-CAF's initial filters)."""

    def __init__(self, model: "ExplainableModel", seed: int = 0):
        super(RandomMap, self).__init__(model)
        self.seed = int(seed)

    def maps(self, rows: PairRows) -> np.ndarray:
        """[rows, H, W]: uniform values seeded by (seed, image key, class)."""
        return np.stack([filters.random_generator(self.seed, key, class_id).uniform(
            size=self.model.filter_size) for key, class_id in zip(rows.keys, rows.class_ids)])


METHODS = {"l2caf": L2CAF, "opticam": OptiCAM, "cam": CAM, "gradcam": GradCAM,
           "gradcampp": GradCAMPlusPlus, "layercam": LayerCAM, "scorecam": ScoreCAM,
           "random": RandomMap}
