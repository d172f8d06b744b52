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
    """Linear (polynomial, power 1) decay, as tf.compat.v1.train.polynomial_decay.

    step counts from 0; all arguments are float tensors (graph ops, so that a loop of
    iterations can run inside the graph).
    """
    fraction = tf.minimum(step, max_iters) / tf.maximum(max_iters, 1.0)
    return (initial - final) * (1.0 - fraction) + final


def adam_step(value, first, second, gradient, learning_rate, step, active):
    """One step of tf.compat.v1.train.AdamOptimizer (step counts from 1) on the rows where
    `active`; the other rows keep their value and moments. Returns (value, first, second)."""
    new_first = ADAM_BETA1 * first + (1.0 - ADAM_BETA1) * gradient
    new_second = ADAM_BETA2 * second + (1.0 - ADAM_BETA2) * tf.square(gradient)
    step_size = learning_rate * tf.sqrt(1.0 - ADAM_BETA2 ** step) / (1.0 - ADAM_BETA1 ** step)
    new_value = value - step_size * new_first / (tf.sqrt(new_second) + ADAM_EPSILON)
    mask = tf.reshape(active, [-1] + [1] * (value.shape.rank - 1))
    mask = tf.broadcast_to(mask, tf.shape(value))
    return [tf.where(mask, new, old) for new, old in
            ((new_value, value), (new_first, first), (new_second, second))]


class FilterOptimizer(object):
    """Loss and Adam ops for `model`'s filter under `caf_variant`.

    Feed `targets` with, per row, the class weights w (cls_specific: sum_k w_k FT_k) or the
    unfiltered outputs NT (cls_oblivious: mean_k (NT_k - FT_k)^2); the loss then runs the
    network's layers after the filter, one session run per iteration.

    head: a precomputed head (model.LinearHead or ReluHead) whose `row_losses_of(raw filter)`
    gives the loss without the network's layers; its targets are loaded with the head, and
    the iterations between two convergence checks run in one session run, a loop inside
    the graph (the per-iteration work is then too small for a session run's overhead).
    """

    def __init__(self, model, caf_variant, head=None):
        self.model = model
        self.head = head
        variable = model.filter.variable
        rows = int(variable.shape[0])
        with model.graph.as_default(), tf.compat.v1.variable_scope(None, "l2caf_adam"):
            self.active = tf.compat.v1.placeholder(tf.bool, [rows], "active")
            self.first_step = tf.compat.v1.placeholder(tf.float32, [], "first_step")  # from 0
            self.steps = tf.compat.v1.placeholder(tf.int32, [], "steps")
            self.schedule = [tf.compat.v1.placeholder(tf.float32, [], name) for name in
                             ("learning_rate", "end_learning_rate", "max_iters")]
            self.initial = tf.compat.v1.placeholder(tf.float32, variable.shape, "initial")
            first = tf.compat.v1.get_variable("m", variable.shape, trainable=False,
                                              initializer=tf.compat.v1.zeros_initializer())
            second = tf.compat.v1.get_variable("v", variable.shape, trainable=False,
                                               initializer=tf.compat.v1.zeros_initializer())
            self.targets = None
            if head is None:
                self._build_step(caf_variant, variable, first, second)
            else:
                self._build_loop(variable, first, second)
            self.reset = tf.group(tf.compat.v1.assign(variable, self.initial),
                                  tf.compat.v1.assign(first, tf.zeros_like(first)),
                                  tf.compat.v1.assign(second, tf.zeros_like(second)))
            model.session.run(tf.compat.v1.variables_initializer([first, second]))

    def _build_step(self, caf_variant, variable, first, second):
        """One iteration through the network's layers: `advance` runs `steps` of them."""
        outputs = self.model.outputs
        self.targets = tf.compat.v1.placeholder(tf.float32, outputs.shape, "targets")
        if caf_variant == "cls_specific":
            self.row_losses = tf.reduce_sum(self.targets * outputs, axis=1)
        elif caf_variant == "cls_oblivious":
            self.row_losses = tf.reduce_mean(tf.square(self.targets - outputs), axis=1)
        else:
            raise ValueError("unknown caf_variant %r" % (caf_variant,))
        gradient = tf.gradients(tf.reduce_sum(self.row_losses), variable)[0]
        updated = adam_step(variable, first, second, gradient,
                            learning_rate_at(self.first_step, *self.schedule),
                            self.first_step + 1.0, self.active)
        self._iterate = tf.group(*[tf.compat.v1.assign(target, new) for target, new in
                                   zip((variable, first, second), updated)])

    def _build_loop(self, variable, first, second):
        """`steps` iterations of the head's loss in a graph loop, then stores the state."""
        def iterate(index, value, first_moment, second_moment, _):
            step = self.first_step + tf.cast(index, tf.float32)
            row_losses = self.head.row_losses_of(value)
            gradient = tf.gradients(tf.reduce_sum(row_losses), value)[0]
            updated = adam_step(value, first_moment, second_moment, gradient,
                                learning_rate_at(step, *self.schedule), step + 1.0,
                                self.active)
            return [index + 1] + updated + [row_losses]

        rows = int(variable.shape[0])
        final = tf.while_loop(
            lambda index, *_: index < self.steps, iterate,
            [tf.constant(0), variable.read_value(), first.read_value(), second.read_value(),
             tf.zeros([rows])])
        stores = [tf.compat.v1.assign(target, new)
                  for target, new in zip((variable, first, second), final[1:4])]
        with tf.control_dependencies(stores):
            self._loop_losses = tf.identity(final[4])

    def advance(self, feed, first_step, steps, active):
        """Runs `steps` iterations from iteration `first_step`; returns the rows' losses of
        the last one (each computed before its update)."""
        feed = dict(feed)
        feed.update({self.active: active, self.steps: steps})
        if self.head is not None:
            feed[self.first_step] = first_step
            return self.model.session.run(self._loop_losses, feed)
        for step in range(first_step, first_step + steps):
            feed[self.first_step] = step
            _, losses = self.model.session.run([self._iterate, self.row_losses], feed)
        return losses

    def run(self, feed, initial, targets, settings, on_check=None):
        """Optimises every row from `initial` until it converges or max_iters.

        feed: the model's input (images, or the cached activation at the layer) for each
        row; empty with a precomputed head. settings: learning_rate, end_learning_rate,
        max_iters, tolerance, check_every. Every check_every iterations a row whose loss
        moved less than tolerance since the last check stops; on_check(iteration, heatmaps)
        is then called (GIF frames).
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
        feed = dict(feed)
        if self.targets is not None:
            feed[self.targets] = targets
        feed.update(zip(self.schedule, (settings.learning_rate, settings.end_learning_rate,
                                        settings.max_iters)))
        step = 0
        try:
            while step < settings.max_iters and active.any():
                steps = min(settings.check_every - step % settings.check_every,
                            settings.max_iters - step)
                losses = self.advance(feed, step, steps, active)[:rows_used]
                step += steps
                running = active[:rows_used]
                last_losses[running] = losses[running]
                iterations[running] = step
                if step % settings.check_every == 0:
                    settled = running & (np.abs(losses - checked_losses) < settings.tolerance)
                    checked_losses = np.where(running, losses, checked_losses)
                    active[:rows_used] &= ~settled
                    if on_check is not None:
                        on_check(step, self.heatmaps(rows_used))
            return OptimizationResult(self.heatmaps(rows_used), last_losses, iterations)
        finally:
            model.set_gate(False)

    def heatmaps(self, rows_used):
        return self.model.session.run(self.model.filter.heatmap)[:rows_used]
