"""The L2-CAF optimisation: Adam on the attention filter, one independent problem per row.

Each row of the filter explains one (image, class) pair; the loss of the run is the sum of
the rows' losses, so each row's gradient is that of its own loss alone. Adam is written out
here (the formula of tf.compat.v1.train.AdamOptimizer) so that a row whose loss has settled
can be frozen while the others go on, and so that the slow and the batched modes are one loop.
"""
import collections
import zlib

import numpy as np

from nets.tf_slim_compat import tf

ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999
ADAM_EPSILON = 1e-8

OptimizationResult = collections.namedtuple(
    "OptimizationResult", ["heatmaps", "losses", "iterations"])
OptimizationResult.__doc__ = """Per row: final heatmap [H, W], last loss, iterations run."""


def class_specific_weights(num_outputs, output_indices):
    """w per row: -1 at the row's class output, +1 everywhere else (raise c, lower the rest)."""
    weights = np.ones((len(output_indices), num_outputs), np.float32)
    weights[np.arange(len(output_indices)), output_indices] = -1.0
    return weights


def initial_filter(shape, seed, image_key, class_id):
    """A filter row from N(0, 1), fixed by (seed, image, class) whatever the batch around it."""
    class_code = 0 if class_id is None else class_id + 1
    rng = np.random.default_rng([seed, zlib.crc32(image_key.encode("utf-8")), class_code])
    return rng.standard_normal(shape).astype(np.float32)


def learning_rate_at(step, initial, final, max_iters):
    """Linear (polynomial, power 1) decay, as tf.compat.v1.train.polynomial_decay; step from 0."""
    fraction = min(step, max_iters) / float(max(max_iters, 1))
    return (initial - final) * (1.0 - fraction) + final


class FilterOptimizer(object):
    """Loss and Adam update ops for `model`'s filter under `caf_variant`.

    row_losses: the rows' loss, when it is computed elsewhere (LinearHead); `targets` is
    then not fed here.

    Feed `targets` with, per row, the class weights w (cls_specific: sum_k w_k FT_k) or the
    unfiltered outputs NT (cls_oblivious: mean_k (NT_k - FT_k)^2).
    """

    def __init__(self, model, caf_variant, row_losses=None):
        self.model = model
        variable = model.filter.variable
        rows = int(variable.shape[0])
        with model.graph.as_default(), tf.compat.v1.variable_scope(None, "l2caf_adam"):
            self.targets = None
            if row_losses is not None:
                self.row_losses = row_losses
            else:
                outputs = model.outputs
                self.targets = tf.compat.v1.placeholder(tf.float32, outputs.shape, "targets")
                if caf_variant == "cls_specific":
                    self.row_losses = tf.reduce_sum(self.targets * outputs, axis=1)
                elif caf_variant == "cls_oblivious":
                    self.row_losses = tf.reduce_mean(tf.square(self.targets - outputs), axis=1)
                else:
                    raise ValueError("unknown caf_variant %r" % (caf_variant,))
            gradient = tf.gradients(tf.reduce_sum(self.row_losses), variable)[0]

            self.active = tf.compat.v1.placeholder(tf.bool, [rows], "active")
            self.learning_rate = tf.compat.v1.placeholder(tf.float32, [], "learning_rate")
            self.step = tf.compat.v1.placeholder(tf.float32, [], "step")  # 1-based
            self.initial = tf.compat.v1.placeholder(tf.float32, variable.shape, "initial")
            first = tf.compat.v1.get_variable("m", variable.shape, trainable=False,
                                              initializer=tf.compat.v1.zeros_initializer())
            second = tf.compat.v1.get_variable("v", variable.shape, trainable=False,
                                               initializer=tf.compat.v1.zeros_initializer())

            new_first = ADAM_BETA1 * first + (1.0 - ADAM_BETA1) * gradient
            new_second = ADAM_BETA2 * second + (1.0 - ADAM_BETA2) * tf.square(gradient)
            step_size = self.learning_rate * tf.sqrt(1.0 - ADAM_BETA2 ** self.step) / (
                1.0 - ADAM_BETA1 ** self.step)
            new_value = variable - step_size * new_first / (tf.sqrt(new_second) + ADAM_EPSILON)
            mask = tf.reshape(self.active, [rows] + [1] * (variable.shape.rank - 1))
            mask = tf.broadcast_to(mask, tf.shape(variable))
            self.update = tf.group(*[
                tf.compat.v1.assign(target, tf.where(mask, new, target))
                for target, new in ((variable, new_value), (first, new_first),
                                    (second, new_second))])
            self.reset = tf.group(tf.compat.v1.assign(variable, self.initial),
                                  tf.compat.v1.assign(first, tf.zeros_like(first)),
                                  tf.compat.v1.assign(second, tf.zeros_like(second)))
            model.session.run(tf.compat.v1.variables_initializer([first, second]))

    def run(self, feed, initial, targets, settings, on_check=None):
        """Optimises every row from `initial` until it converges or max_iters.

        feed: the model's input (images, or the cached activation at the layer) for each
        row. settings: learning_rate, end_learning_rate, max_iters, tolerance, check_every.
        on_check(iteration, heatmaps) is called at every convergence check (GIF frames).
        """
        session, model = self.model.session, self.model
        rows_used = len(targets)
        session.run(self.reset, {self.initial: initial})
        model.set_gate(True)
        active = np.zeros(int(model.filter.variable.shape[0]), bool)
        active[:rows_used] = True
        iterations = np.zeros(rows_used, np.int64)
        last_losses = np.zeros(rows_used, np.float64)
        checked_losses = np.full(rows_used, np.inf)
        fixed = dict(feed)
        if self.targets is not None:
            fixed[self.targets] = targets
        # A callable skips session.run's per-call parsing of fetches and feeds: the hot path.
        iterate = session.make_callable([self.update, self.row_losses],
                                        [self.active, self.step, self.learning_rate]
                                        + list(fixed))
        fixed_values = list(fixed.values())
        try:
            for step in range(settings.max_iters):
                rate = learning_rate_at(step, settings.learning_rate,
                                        settings.end_learning_rate, settings.max_iters)
                _, losses = iterate(active, step + 1, rate, *fixed_values)
                losses = losses[:rows_used]
                running = active[:rows_used]
                last_losses[running] = losses[running]
                iterations[running] = step + 1
                if (step + 1) % settings.check_every == 0:
                    settled = running & (np.abs(losses - checked_losses) < settings.tolerance)
                    checked_losses = np.where(running, losses, checked_losses)
                    active[:rows_used] &= ~settled
                    if on_check is not None:
                        on_check(step + 1, self.heatmaps(rows_used))
                    if not active.any():
                        break
            return OptimizationResult(self.heatmaps(rows_used), last_losses, iterations)
        finally:
            model.set_gate(False)

    def heatmaps(self, rows_used):
        return self.model.session.run(self.model.filter.heatmap)[:rows_used]
