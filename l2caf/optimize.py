"""The L2-CAF optimisation: Adam on the filter rows, each row its own problem.

As in the authors' code, iteration i = 0, 1, 2, ... computes the loss and applies one Adam
update (learning rate decaying linearly from learning_rate to end_learning_rate over
max_iters); at every i that is a multiple of check_every the loss of iteration i (computed
before its update) is compared with the one of the previous check (at i = 0 with the
original's MAX_INT, 32767), and a row whose loss moved less than the tolerance stops there,
after i + 1 updates. Its heatmap is its filter after the last update.

The loss of the whole batch is the sum of the rows' losses, so each row's gradient is that
of its own loss; a stopped row keeps its filter while the others go on. The iterations
between two checks run in one session run, a loop inside the graph. Adam is written out
(the formula of tf.compat.v1.train.AdamOptimizer) so that stopped rows can be frozen.
"""
import collections

import numpy as np

from nets.tf_slim_compat import tf

ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999
ADAM_EPSILON = 1e-8
FIRST_PREVIOUS_LOSS = float(np.iinfo(np.int16).max)  # the original's MAX_INT

OptimizationResult = collections.namedtuple(
    "OptimizationResult", ["heatmaps", "losses", "iterations"])
OptimizationResult.__doc__ = """Per row used: final heatmap [H, W], the loss of its last
iteration, and the number of updates it made."""


def learning_rate_at(step, initial, final, max_iters):
    """tf.compat.v1.train.polynomial_decay with power 1 at iteration `step` (from 0)."""
    fraction = tf.minimum(step, max_iters) / tf.maximum(max_iters, 1.0)
    return (initial - final) * (1.0 - fraction) + final


def adam_step(value, first, second, gradient, learning_rate, step, active):
    """One Adam update (step counts from 1) of the rows where `active`; the other rows keep
    their value and moments. Returns (value, first, second)."""
    new_first = ADAM_BETA1 * first + (1.0 - ADAM_BETA1) * gradient
    new_second = ADAM_BETA2 * second + (1.0 - ADAM_BETA2) * tf.square(gradient)
    step_size = learning_rate * tf.sqrt(1.0 - ADAM_BETA2 ** step) / (1.0 - ADAM_BETA1 ** step)
    new_value = value - step_size * new_first / (tf.sqrt(new_second) + ADAM_EPSILON)
    mask = tf.broadcast_to(tf.reshape(active, [-1] + [1] * (value.shape.rank - 1)),
                           tf.shape(value))
    return [tf.where(mask, new, old) for new, old in
            ((new_value, value), (new_first, first), (new_second, second))]


class FilterOptimizer(object):
    """Adam on `model`'s filter rows for the losses of `head` (an l2caf.heads.Head)."""

    def __init__(self, model, head):
        self.model, self.head = model, head
        variable = model.filter.atten_var
        with model.graph.as_default(), tf.compat.v1.variable_scope(None, "l2caf_adam"):
            placeholder = tf.compat.v1.placeholder
            self.active = placeholder(tf.bool, [model.rows], "active")
            self.first_step = placeholder(tf.float32, [], "first_step")
            self.steps = placeholder(tf.int32, [], "steps")
            self.schedule = [placeholder(tf.float32, [], name) for name in
                             ("learning_rate", "end_learning_rate", "max_iters")]
            self.initial = placeholder(tf.float32, variable.shape, "initial")
            moments = [tf.compat.v1.get_variable(
                name, variable.shape, trainable=False,
                initializer=tf.compat.v1.zeros_initializer(),
                collections=[tf.compat.v1.GraphKeys.LOCAL_VARIABLES]) for name in ("m", "v")]

            def iterate(index, value, first, second, _):
                step = self.first_step + tf.cast(index, tf.float32)
                row_losses = head.row_losses(value)
                gradient = tf.gradients(tf.reduce_sum(row_losses), value)[0]
                return [index + 1] + adam_step(
                    value, first, second, gradient, learning_rate_at(step, *self.schedule),
                    step + 1.0, self.active) + [row_losses]

            state = [variable] + moments
            final = tf.while_loop(
                lambda index, *_: index < self.steps, iterate,
                [tf.constant(0)] + [v.read_value() for v in state] + [tf.zeros([model.rows])])
            with tf.control_dependencies([tf.compat.v1.assign(v, new)
                                          for v, new in zip(state, final[1:4])]):
                self.last_losses = tf.identity(final[4])
            self.reset = tf.group(tf.compat.v1.assign(variable, self.initial),
                                  *[tf.compat.v1.assign(v, tf.zeros_like(v)) for v in moments])
            model.session.run([v.initializer for v in moments])

    def run(self, initial, settings, rows_used, on_check=None):
        """Optimises the first `rows_used` rows from `initial` (all rows) until each stops or
        max_iters. settings: an l2caf.settings.Settings. on_check(updates, heatmaps,
        running): after each check, the number of updates made, every row's heatmap and
        which rows were running (GIF frames)."""
        session = self.model.session
        session.run(self.reset, {self.initial: initial})
        active = np.arange(self.model.rows) < rows_used
        iterations = np.zeros(rows_used, np.int64)
        losses = np.zeros(rows_used, np.float64)
        previous = np.full(rows_used, FIRST_PREVIOUS_LOSS)
        feed = dict(zip(self.schedule, (settings.learning_rate, settings.end_learning_rate,
                                        settings.max_iters)))
        iteration = 0
        while iteration < settings.max_iters and active.any():
            next_check = -(-iteration // settings.check_every) * settings.check_every
            last = min(next_check, settings.max_iters - 1)
            feed.update({self.first_step: iteration, self.steps: last - iteration + 1,
                         self.active: active})
            last_losses = session.run(self.last_losses, feed)[:rows_used]
            running = active[:rows_used].copy()
            losses[running] = last_losses[running]
            iterations[running] = last + 1
            if last == next_check:
                settled = running & (np.abs(last_losses - previous) < settings.tolerance)
                previous = np.where(running, last_losses, previous)
                active[:rows_used] &= ~settled
                if on_check is not None:
                    on_check(last + 1, self.heatmaps(rows_used), running)
            iteration = last + 1
        return OptimizationResult(self.heatmaps(rows_used), losses, iterations)

    def heatmaps(self, rows_used):
        return self.model.session.run(self.model.heatmap)[:rows_used]
