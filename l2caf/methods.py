"""Explanation methods over a Model: L2CAF, the CAM and Grad-CAM baselines, and the random
floor (RandomMap).

    explainer = L2CAF(model)        # or CAM(model), GradCAM(model), RandomMap(model)
    explanations = explainer(images, classes)

images: RGB images (arrays [H, W, 3], 0..255, any size; or a batch at the network's input
size). classes: per image, a class id or a list of them (default: the top-1 predicted
class; None for cls_oblivious). The result is one Explanation per image and class, image by
image, class by class.
"""
import collections
import time

import numpy as np

from l2caf import filters, heads
from l2caf.errors import ConfigError
from l2caf.optimize import FilterOptimizer
from l2caf.settings import Settings

Explanation = collections.namedtuple(
    "Explanation", ["image_index", "class_id", "heatmap", "loss", "iterations", "seconds"])
Explanation.__doc__ = """One heatmap: for images[image_index] and class_id (None for
cls_oblivious), at the layer's resolution, with the final loss and the number of Adam
updates (None and 0 for the baselines), and the wall time (shared evenly by the pairs
explained together)."""


class Explainer(object):
    """The shared call of the methods: choose the (image, class) pairs, then `explain` them."""
    explains_classes = True

    def __init__(self, model):
        self.model = model

    def predict(self, images):
        """The unfiltered network on `images` (see the module docstring)."""
        return self.model.predict(self.model.prepare(images))

    def __call__(self, images, classes=None, keys=None, prediction=None, on_check=None):
        """Explanations of each image's classes. keys: a name per image, which seeds the
        filter (default: the image's index). prediction: `predict(images)`, if made already.
        on_check(updates, heatmaps, running): see FilterOptimizer.run (L2CAF only)."""
        batch = self.model.prepare(images)
        prediction = prediction or self.model.predict(batch)
        pairs = [(index, class_id) for index in range(len(batch))
                 for class_id in self._classes_of(index, classes, prediction)]
        keys = [str(index) for index in range(len(batch))] if keys is None else list(keys)
        return self.explain(batch, prediction, pairs, keys, on_check)

    def _classes_of(self, index, classes, prediction):
        if not self.explains_classes:
            return [None]
        if classes is None:
            return self.model.top_classes(prediction.probabilities[index], 1)
        chosen = classes[index]
        chosen = [chosen] if np.ndim(chosen) == 0 else list(chosen)
        bad = [c for c in chosen if c is None or not 0 <= c < self.model.num_labels]
        if bad:
            raise ConfigError("%s explains classes: %r is not a class id 0..%d of %s"
                              % (type(self).__name__, bad[0], self.model.num_labels - 1,
                                 self.model.name))
        return chosen

    def explain(self, images, prediction, pairs, keys, on_check):
        raise NotImplementedError


class L2CAF(Explainer):
    """Class-specific or class-oblivious L2-CAF at `model`'s layer.

    settings: l2caf.settings.Settings or a dict of some of its keys (the paper's defaults
    otherwise). cache_activation: iterations start from the activation at the layer, made
    once per image; False runs the whole network every iteration, as the original did (same
    results, slower). precompute_head: where the network's head allows it, the loss comes
    from terms made once per batch (l2caf.heads; same results, much faster). Pairs are
    explained model.rows at a time, each row stopping when its own loss has settled.
    """

    def __init__(self, model, caf_variant="cls_specific", settings=None, cache_activation=True,
                 precompute_head=True):
        super(L2CAF, self).__init__(model)
        self.caf_variant = caf_variant
        self.settings = Settings.of(settings)
        self.explains_classes = caf_variant == "cls_specific"
        if model.explain == "embedding" and self.explains_classes:
            raise ConfigError("explain: embedding works with caf_variant cls_oblivious only "
                              "(an embedding has no classes)")
        self.head = heads.head_for(model, caf_variant, cache_activation, precompute_head)
        self.optimizer = FilterOptimizer(model, self.head)

    def explain(self, images, prediction, pairs, keys, on_check):
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
        targets = heads.loss_targets(self.caf_variant, prediction.outputs[rows], output_indices)
        height, width = model.filter_size
        initial = np.ones(filters.filter_shape(model.filter_type, model.rows, height, width),
                          np.float32)
        # Unused rows keep ones: any finite non-zero value keeps n(f) finite.
        for row, (index, class_id) in enumerate(pairs):
            initial[row] = filters.initial_filter(model.filter_type, height, width,
                                                  self.settings.seed, keys[index], class_id)
        result = self.optimizer.run(images, prediction.activation, rows, targets, initial,
                                    self.settings, on_check)
        seconds = (time.time() - started) / len(pairs)
        return [Explanation(index, class_id, result.heatmaps[row], float(result.losses[row]),
                            int(result.iterations[row]), seconds)
                for row, (index, class_id) in enumerate(pairs)]


class ChannelWeightedMap(Explainer):
    """Base of the one-pass baselines CAM and Grad-CAM at `model`'s layer.

    The heatmap of (image, class) is ReLU(sum_c weight_c A[:, :, c]), scaled to a maximum
    of 1 (an all-zero map stays zero), where A is the activation at the layer (the map
    L2-CAF's filter multiplies) and the channel weights come from the subclass.
    """

    def explain(self, images, prediction, pairs, keys, on_check):
        started = time.time()
        rows = [index for index, _ in pairs]
        activations = prediction.activation[rows]
        weights = self.channel_weights(
            images[rows], activations, [self.model.class_output(c) for _, c in pairs])
        maps = np.maximum(np.einsum("nhwc,nc->nhw", activations, weights), 0.0)
        peaks = maps.max(axis=(1, 2), keepdims=True)
        heatmaps = maps / np.where(peaks > 0, peaks, 1.0)
        seconds = (time.time() - started) / max(len(pairs), 1)
        return [Explanation(index, class_id, heatmaps[row], None, 0, seconds)
                for row, (index, class_id) in enumerate(pairs)]

    def channel_weights(self, images, activations, output_indices):
        """[rows, channels] weights for the activation rows [rows, H, W, channels] of the
        images, each row explaining the network output output_indices[row]."""
        raise NotImplementedError


class CAM(ChannelWeightedMap):
    """Class activation mapping (Zhou et al., CVPR 2016).

    For a head that is a global mean followed by a linear layer, logit k = mean over
    locations of sum_c w[c, k] A[:, :, c] + b_k; CAM maps the summand. Only the layer that
    feeds such a head can be mapped: any other model or layer is a ConfigError (Grad-CAM
    works there).
    """

    def __init__(self, model):
        super(CAM, self).__init__(model)
        if model.linear_head_layer is None:
            raise ConfigError("CAM needs a head that is a global mean followed by a linear "
                              "layer, and %s has none; use method gradcam" % model.name)
        if model.layer != model.linear_head_layer:
            raise ConfigError("CAM maps the layer %s, which feeds %s's linear head, not %s; "
                              "use method gradcam for other layers"
                              % (model.linear_head_layer, model.name, model.layer))

    def channel_weights(self, images, activations, output_indices):
        # Read at every call: the checkpoint may be restored after construction.
        return self.model.linear_head_weights()[:, output_indices].T


class GradCAM(ChannelWeightedMap):
    """Grad-CAM (Selvaraju et al., ICCV 2017) at `model`'s layer, any layer.

    A channel's weight is the spatial mean of d logit_k / dA over its map. One gradient run
    serves a batch of rows: the gradient of the sum over rows of each row's own logit, which
    is each row's own gradient because the rows of an inference-mode network do not mix.
    """

    def channel_weights(self, images, activations, output_indices):
        one_hot = np.zeros((len(output_indices), self.model.num_classes), np.float32)
        one_hot[np.arange(len(output_indices)), output_indices] = 1.0
        return self.model.output_gradients(images, activations, one_hot).mean(axis=(1, 2))


class RandomMap(Explainer):
    """The floor of every metric: a map of independent uniform values at the layer's
    resolution, scaled to a maximum of 1, fixed by (seed, image key, class) whatever the
    batch around it (the seeds of L2-CAF's initial filters)."""

    def __init__(self, model, seed=0):
        super(RandomMap, self).__init__(model)
        self.seed = int(seed)

    def explain(self, images, prediction, pairs, keys, on_check):
        started = time.time()
        maps = [filters.random_generator(self.seed, keys[index], class_id).uniform(
            size=self.model.filter_size) for index, class_id in pairs]
        heatmaps = [(values / values.max()).astype(np.float32) for values in maps]
        seconds = (time.time() - started) / max(len(pairs), 1)
        return [Explanation(index, class_id, heatmap, None, 0, seconds)
                for heatmap, (index, class_id) in zip(heatmaps, pairs)]


METHODS = {"l2caf": L2CAF, "cam": CAM, "gradcam": GradCAM, "random": RandomMap}
