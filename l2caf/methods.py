"""Explanation methods over a Model: `explainer = L2CAF(model, ...)`, then `explainer(images, ...)`."""
import collections
import time

import numpy as np

from l2caf.optimize import FilterOptimizer, class_specific_weights, initial_filter
from nets.attention_filter import filter_shape

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
    every iteration, as the original did.
    """

    def __init__(self, model, caf_variant, settings, cache_activation=True):
        self.model = model
        self.caf_variant = caf_variant
        self.settings = settings
        self.cache_activation = cache_activation
        self.optimizer = FilterOptimizer(model, caf_variant)

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
        feed = ({self.model.filter.activation: prediction.activation[rows]}
                if self.cache_activation else {self.model.images: np.asarray(images)[rows]})
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
