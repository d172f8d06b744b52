"""Explanation methods over a Model: L2CAF and the CAM and Grad-CAM baselines.

`explainer = L2CAF(model, ...)` (or CAM(model), GradCAM(model)), then
`explainer(images, image_keys, classes)` -> one Explanation per image and class."""
import collections
import time

import numpy as np

from l2caf.config import ConfigError
from l2caf.model import LinearHead, ReluHead
from l2caf.optimize import FilterOptimizer, class_specific_weights, initial_filter
from nets.attention_filter import filter_shape
from nets.tf_slim_compat import tf

Explanation = collections.namedtuple(
    "Explanation", ["image_index", "class_id", "heatmap", "loss", "iterations", "seconds"])
Explanation.__doc__ = """One heatmap: for images[image_index] and class_id (None for
cls_oblivious), at the filter's resolution, with the final loss, the iterations run and the
wall time of its optimisation (a batch's time is shared evenly by its rows)."""

Prediction = collections.namedtuple("Prediction", ["probabilities", "outputs", "activation"])


class L2CAF(object):
    """Class-specific or class-oblivious L2-CAF on `model`'s filter layer.

    settings: learning_rate, end_learning_rate, max_iters, tolerance, check_every, seed.
    cache_activation: feed the activation before the filter, computed once per image
    (iterations then run only the layers after the filter); False runs the whole network
    every iteration, as the original did. precompute_head: on the cached path, where the
    head after the filter allows it (LinearHead: a mean and a linear layer; ReluHead:
    DenseNet's batch norm, ReLU, mean and linear layer, cls_specific), compute the loss from
    terms made once per batch (same result, much faster); False runs the head's layers.
    """

    def __init__(self, model, caf_variant, settings, cache_activation=True,
                 precompute_head=True):
        self.model = model
        self.caf_variant = caf_variant
        self.settings = settings
        self.cache_activation = cache_activation
        self.precomputed_head = None
        if precompute_head and cache_activation:
            if LinearHead.applies(model):
                self.precomputed_head = LinearHead(model, caf_variant)
            elif ReluHead.applies(model, caf_variant):
                self.precomputed_head = ReluHead(model)
        self.optimizer = FilterOptimizer(model, caf_variant, self.precomputed_head)

    def predict(self, images):
        """The unfiltered network on RGB images [N, S, S, 3] (float 0..255)."""
        model = self.model
        probabilities, outputs, activation = model.session.run(
            [model.probabilities, model.outputs, model.filter.activation], {model.images: images})
        return Prediction(probabilities, outputs, activation)

    def __call__(self, images, image_keys, classes=None, prediction=None, on_check=None):
        """Heatmaps for each image and each of its classes.

        classes: per image, a list of class ids (cls_specific); None for cls_oblivious.
        image_keys: per image, a stable name (it seeds the filter's initialisation).
        Returns a list of Explanation, image by image, class by class.
        """
        prediction = prediction or self.predict(images)
        pairs = [(index, class_id) for index in range(len(images))
                 for class_id in (classes[index] if classes is not None else [None])]
        if len(pairs) > self.model.filter.variable.shape[0]:
            raise ValueError("%d (image, class) pairs do not fit the %d filter rows"
                             % (len(pairs), self.model.filter.variable.shape[0]))
        rows = [index for index, _ in pairs]
        if self.caf_variant == "cls_specific":
            if any(class_id is None for _, class_id in pairs):
                raise ValueError("cls_specific needs class ids for every image")
            targets = class_specific_weights(
                prediction.outputs.shape[1],
                [self.model.class_output(class_id) for _, class_id in pairs])
        else:
            targets = prediction.outputs[rows]
        if self.precomputed_head:
            self.precomputed_head.load(prediction.activation[rows], targets)
            feed = {}
        elif self.cache_activation:
            feed = {self.model.filter.activation: prediction.activation[rows]}
        else:
            feed = {self.model.images: np.asarray(images)[rows]}
        initial = self._initial_filters(pairs, image_keys)
        started = time.time()
        result = self.optimizer.run(feed, initial, targets, self.settings, on_check)
        seconds = (time.time() - started) / len(pairs)
        return [Explanation(index, class_id, result.heatmaps[row], float(result.losses[row]),
                            int(result.iterations[row]), seconds)
                for row, (index, class_id) in enumerate(pairs)]

    def _initial_filters(self, pairs, image_keys):
        variable = self.model.filter.variable
        shape = filter_shape(self.model.filter.filter_type, 1, *self.model.filter_size)[1:]
        initial = np.zeros(variable.shape, np.float32)
        for row, (index, class_id) in enumerate(pairs):
            initial[row] = initial_filter(shape, self.settings.seed, image_keys[index], class_id)
        if len(pairs) < initial.shape[0]:
            # Unused rows never reach a loss; any finite non-zero value keeps n(f) finite.
            initial[len(pairs):] = 1.0
        return initial


class ChannelWeightedMap(object):
    """Base of the one-pass baselines CAM and Grad-CAM on `model`'s filter layer.

    The heatmap of (image, class) is ReLU(sum_c weight_c A[:, :, c]), scaled to a maximum
    of 1 (an all-zero map stays zero), where A is the activation at the layer with the gate
    closed (the map L2-CAF's filter multiplies) and the channel weights come from the
    subclass. Called like L2CAF, they return the same Explanations, with loss None and 0
    iterations: nothing is optimised, so there is neither a loss nor a seed (image_keys and
    on_check are accepted and unused).
    """

    def __init__(self, model):
        self.model = model

    def predict(self, images):
        """The unfiltered network on RGB images: L2CAF's forward pass."""
        return L2CAF.predict(self, images)

    def __call__(self, images, image_keys, classes, prediction=None, on_check=None):
        """Heatmaps for each image and each of its classes (a list of class ids per image);
        returns a list of Explanation, image by image, class by class."""
        if classes is None:
            raise ValueError("%s explains classes: give class ids for every image"
                             % type(self).__name__)
        prediction = prediction or self.predict(images)
        pairs = [(index, class_id) for index in range(len(images))
                 for class_id in classes[index]]
        started = time.time()
        activations = prediction.activation[[index for index, _ in pairs]]
        weights = self.channel_weights(
            activations, [self.model.class_output(class_id) for _, class_id in pairs])
        maps = np.maximum(np.einsum("nhwc,nc->nhw", activations, weights), 0.0)
        peaks = maps.max(axis=(1, 2), keepdims=True)
        heatmaps = maps / np.where(peaks > 0, peaks, 1.0)
        seconds = (time.time() - started) / len(pairs)
        return [Explanation(index, class_id, heatmaps[row], None, 0, seconds)
                for row, (index, class_id) in enumerate(pairs)]

    def channel_weights(self, activations, output_indices):
        """[rows, channels] weights for activation rows [rows, H, W, channels], each row
        explaining the network output output_indices[row]."""
        raise NotImplementedError


class CAM(ChannelWeightedMap):
    """Class activation mapping (Zhou et al., CVPR 2016).

    For a head that is a global mean followed by a linear layer (the spec's
    linear_head_scope), logit k = mean over locations of sum_c w[c, k] A[:, :, c] + b_k;
    CAM maps the summand. Only the last conv end point feeds such a head: any other
    network or layer is a ConfigError (Grad-CAM works there).
    """

    def __init__(self, model):
        super(CAM, self).__init__(model)
        spec = model.spec
        if spec.linear_head_scope is None:
            raise ConfigError(
                "CAM needs a head that is a global mean followed by a linear layer, and %s "
                "has none; use method gradcam" % spec.name)
        if model.layer != spec.last_conv_end_point:
            raise ConfigError(
                "CAM maps the last conv end point %s, which feeds %s's linear head, not %s; "
                "use method gradcam for other layers"
                % (spec.last_conv_end_point, spec.name, model.layer))
        self.head_weights = model.variable(spec.linear_head_scope + "/weights")

    def channel_weights(self, activations, output_indices):
        # Read at every call: the checkpoint may be restored after construction.
        head = self.model.session.run(self.head_weights)  # [1, 1, channels, outputs]
        return head[0, 0][:, output_indices].T


class GradCAM(ChannelWeightedMap):
    """Grad-CAM (Selvaraju et al., ICCV 2017) at `model`'s filter layer, any layer.

    A channel's weight is the spatial mean of d logit_k / dA over its map. One gradient run
    serves a batch of rows: the gradient of the sum over rows of each row's own logit, which
    is each row's own gradient because the rows of an inference-mode network do not mix.
    """

    def __init__(self, model):
        super(GradCAM, self).__init__(model)
        with model.graph.as_default(), tf.compat.v1.name_scope("gradcam"):
            self.output_weights = tf.compat.v1.placeholder(tf.float32, model.logits.shape,
                                                           "output_weights")
            score = tf.reduce_sum(self.output_weights * model.logits)
            self.gradient = tf.gradients(score, model.filter.activation)[0]

    def channel_weights(self, activations, output_indices):
        one_hot = np.zeros((len(output_indices), int(self.model.logits.shape[1])), np.float32)
        one_hot[np.arange(len(output_indices)), output_indices] = 1.0
        gradient = self.model.session.run(self.gradient, {
            self.model.filter.activation: activations, self.output_weights: one_hot})
        return gradient.mean(axis=(1, 2))


BASELINES = {"cam": CAM, "gradcam": GradCAM}
