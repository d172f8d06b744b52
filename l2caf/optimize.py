"""The L2-CAF optimisation: Adam on the filter rows, each row its own problem.

As in the authors' code, iteration i = 0, 1, 2, ... computes the loss and applies one Adam
update (learning rate decaying linearly from learning_rate to end_learning_rate over
max_iters); at every i that is a multiple of check_every the loss of iteration i (computed
before its update) is compared with the one of the previous check (at i = 0 with the
original's MAX_INT, 32767), and a row whose loss moved less than the tolerance stops there,
after i + 1 updates. Its heatmap is its filter after the last update.

The loss of the whole batch is the sum of the rows' losses, so each row's gradient is that
of its own loss; a stopped row keeps its filter while the others go on. The iterations
between two checks are one loop in a graph (`iterate`), run in the slim networks' session
(SessionProgram) or as a tf.function for Keras models (FunctionProgram). Adam is written out
(the formula of tf.compat.v1.train.AdamOptimizer) so that stopped rows can be frozen.
"""
import collections

import numpy as np

from l2caf import filters
from nets.tf_slim_compat import tf

ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999
ADAM_EPSILON = 1e-8
FIRST_PREVIOUS_LOSS = float(np.iinfo(np.int16).max)  # the original's MAX_INT

OptimizationResult = collections.namedtuple(
    "OptimizationResult", ["heatmaps", "losses", "iterations", "histories"])
OptimizationResult.__doc__ = """Per row used: final heatmap [H, W], the loss of its last
iteration, the number of updates it made, and its loss history: [updates, loss] at every
convergence check it ran (iteration i's loss, computed after i updates), then its last
iteration's when that was no check (a row that ran to max_iters), so that the history ends
with the final loss."""


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


def iterate(row_losses, state, first_step, steps, active, schedule):
    """`steps` iterations from iteration `first_step`, a loop in the graph being built.
    state: (filter rows, Adam's first and second moments); row_losses(filter rows) -> [rows];
    schedule: (learning_rate, end_learning_rate, max_iters). Returns the new state and the
    rows' losses of the last iteration (before its update)."""
    def body(index, value, first, second, _):
        step = tf.cast(first_step, tf.float32) + tf.cast(index, tf.float32)
        losses = row_losses(value)
        gradient = tf.gradients(tf.reduce_sum(losses), value)[0]
        return [index + 1] + adam_step(value, first, second, gradient,
                                       learning_rate_at(step, *schedule), step + 1.0,
                                       active) + [losses]

    final = tf.while_loop(lambda index, *_: index < steps, body,
                          [tf.constant(0)] + list(state) + [tf.zeros([state[0].shape[0]])])
    return final[1:4], final[4]


def _padded(values, rows):
    padded = np.zeros((rows,) + np.shape(values)[1:], np.float32)
    padded[:len(values)] = values
    return padded


class SessionProgram(object):
    """A head's optimisation in a slim Model's graph: the batch's terms in local variables,
    the filter rows in the model's filter variable, one session run per loop."""

    def __init__(self, model, head):
        self.model = model
        variable = model.filter.atten_var
        local = [tf.compat.v1.GraphKeys.LOCAL_VARIABLES]
        with model.graph.as_default(), tf.compat.v1.variable_scope(None, "l2caf_optimizer"):
            placeholder = tf.compat.v1.placeholder
            self.inputs = {source: placeholder(tf.float32, [model.rows] + model.source_shape(
                source), source) for source in head.sources}
            self.targets = placeholder(tf.float32, [model.rows, model.num_outputs], "targets")
            terms = head.terms(self.inputs, self.targets)
            kept = [tf.compat.v1.get_variable(
                "term_%d" % index, term.shape, term.dtype, trainable=False, collections=local,
                initializer=tf.compat.v1.zeros_initializer()) for index, term in enumerate(terms)]
            self._load = tf.group(*[tf.compat.v1.assign(v, t) for v, t in zip(kept, terms)])
            moments = [tf.compat.v1.get_variable(
                name, variable.shape, trainable=False, collections=local,
                initializer=tf.compat.v1.zeros_initializer()) for name in ("m", "v")]
            self.first_step = placeholder(tf.int32, [], "first_step")
            self.steps = placeholder(tf.int32, [], "steps")
            self.active = placeholder(tf.bool, [model.rows], "active")
            self.schedule = [placeholder(tf.float32, [], name) for name in
                             ("learning_rate", "end_learning_rate", "max_iters")]
            state = [variable] + moments
            new_state, losses = iterate(lambda raw: head.row_losses(kept, raw),
                                        [v.read_value() for v in state], self.first_step,
                                        self.steps, self.active, self.schedule)
            with tf.control_dependencies([tf.compat.v1.assign(v, new)
                                          for v, new in zip(state, new_state)]):
                self._losses = tf.identity(losses)
            self.initial = placeholder(tf.float32, variable.shape, "initial")
            self._reset = tf.group(tf.compat.v1.assign(variable, self.initial),
                                   *[tf.compat.v1.assign(v, tf.zeros_like(v)) for v in moments])
            model.session.run([v.initializer for v in kept + moments])

    def load(self, inputs, targets):
        feed = {self.inputs[source]: _padded(values, self.model.rows)
                for source, values in inputs.items()}
        feed[self.targets] = _padded(targets, self.model.rows)
        self.model.session.run(self._load, feed)

    def reset(self, initial):
        self.model.session.run(self._reset, {self.initial: initial})

    def advance(self, first_step, steps, active, schedule):
        feed = dict(zip(self.schedule, schedule))
        feed.update({self.first_step: first_step, self.steps: steps, self.active: active})
        return self.model.session.run(self._losses, feed)

    def heatmaps(self):
        return self.model.session.run(self.model.heatmap)


class FunctionProgram(object):
    """A head's optimisation for a model that runs eagerly (Keras): the same functions as
    tf.functions, the terms and the state as tensors between calls."""

    def __init__(self, model, head):
        self.model = model
        self._terms = tf.function(head.terms)
        self._iterate = tf.function(lambda terms, state, *loop: iterate(
            lambda raw: head.row_losses(terms, raw), state, *loop))
        self._heatmaps = tf.function(lambda raw: filters.heatmap(
            raw, model.filter_type, model.filter_size[0]))
        self.terms = self.state = None

    def load(self, inputs, targets):
        with tf.device(self.model.device):
            self.terms = self._terms({source: tf.constant(_padded(values, self.model.rows))
                                      for source, values in inputs.items()},
                                     tf.constant(_padded(targets, self.model.rows)))

    def reset(self, initial):
        initial = tf.constant(initial)
        self.state = [initial, tf.zeros_like(initial), tf.zeros_like(initial)]

    def advance(self, first_step, steps, active, schedule):
        with tf.device(self.model.device):
            self.state, losses = self._iterate(
                self.terms, self.state, tf.constant(first_step, tf.int32),
                tf.constant(steps, tf.int32), tf.constant(active),
                [tf.constant(value, tf.float32) for value in schedule])
        return losses.numpy()

    def heatmaps(self):
        return self._heatmaps(self.state[0]).numpy()


class FilterOptimizer(object):
    """Adam on `model`'s filter rows for the losses of `head` (an l2caf.heads.Head), in the
    model's kind of program."""

    def __init__(self, model, head):
        self.model, self.head = model, head
        self.program = model.optimization_program(head)

    def run(self, images, activation, rows, targets, initial, settings, on_check=None):
        """Optimises the rows explaining images[rows[i]] (activation[rows[i]]) with
        targets[i], from `initial` (all the model's rows), until each stops or max_iters.
        settings: an l2caf.settings.Settings. on_check(updates, heatmaps, running): after
        each check, the number of updates made, every row's heatmap and which rows were
        running (GIF frames)."""
        rows_used = len(rows)
        sources = {"images": images, "activation": activation}
        self.program.load({source: sources[source][rows] for source in self.head.sources},
                          targets)
        self.program.reset(initial)
        active = np.arange(self.model.rows) < rows_used
        iterations = np.zeros(rows_used, np.int64)
        losses = np.zeros(rows_used, np.float64)
        previous = np.full(rows_used, FIRST_PREVIOUS_LOSS)
        histories = [[] for _ in range(rows_used)]
        schedule = (settings.learning_rate, settings.end_learning_rate, settings.max_iters)
        iteration = 0
        while iteration < settings.max_iters and active.any():
            next_check = -(-iteration // settings.check_every) * settings.check_every
            last = min(next_check, settings.max_iters - 1)
            last_losses = self.program.advance(iteration, last - iteration + 1, active,
                                               schedule)[:rows_used]
            running = active[:rows_used].copy()
            losses[running] = last_losses[running]
            iterations[running] = last + 1
            for row in np.flatnonzero(running):
                histories[row].append([last, float(last_losses[row])])
            if last == next_check:
                # A loss that is no longer finite cannot recover: the row stops, and the
                # visualisation job reports it as a failure.
                settled = running & ((np.abs(last_losses - previous) < settings.tolerance)
                                     | ~np.isfinite(last_losses))
                previous = np.where(running, last_losses, previous)
                active[:rows_used] &= ~settled
                if on_check is not None:
                    on_check(last + 1, self.program.heatmaps()[:rows_used], running)
            iteration = last + 1
        return OptimizationResult(self.program.heatmaps()[:rows_used], losses, iterations,
                                  histories)
