"""The optimisation loop every optimised method shares: L2-CAF, in both of its presets, and
Opti-CAM. A method is a head (l2caf.heads: each row's variable, its loss and its heatmap)
and a Loop (how the variable moves and when a row stops); this module runs them, many
(image, class) rows at once, each row its own problem.

As in the authors' code, iteration i = 0, 1, 2, ... computes the loss and applies one update
(learning rate decaying linearly from learning_rate to end_learning_rate over max_iters; the
update: Adam as tf.compat.v1.train.AdamOptimizer, Adam as torch.optim.Adam, or plain SGD as
torch.optim.SGD). At every i that is a multiple of check_every the loss of iteration i
(computed before its update) is compared with the one of the row's previous check, and the
row stops:

    settled  (L2-CAF, both implementations) when its loss moved less than the tolerance
             since the previous check (at i = 0: the original's MAX_INT, 32767); it keeps
             iteration i's update: i + 1 updates, its heatmap that of its variable after them;
    rose     (Opti-CAM's reference code) when its loss rose since the previous check (at
             i = 0: 1e10); iteration i's update is discarded: i updates, its heatmap that of
             the variable its last loss was computed at.

A loss that is no longer finite stops its row too (the visualisation job reports it).

The loss of the whole batch is the sum of the rows' losses, so each row's gradient is that
of its own loss; a stopped row keeps its variable while the others go on. The iterations
between two checks are one loop in a graph (`iterate`), run in the slim networks' session
(SessionProgram) or as a tf.function for Keras models (FunctionProgram). The updates are
written out (the formulas of the optimisers named above) so that stopped rows can be frozen.
"""
import collections
import dataclasses

import numpy as np

from nets.tf_slim_compat import tf

ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999
ADAM_EPSILON = 1e-8
FIRST_PREVIOUS_LOSS = float(np.iinfo(np.int16).max)  # the original's MAX_INT
STOPS = {"settled": FIRST_PREVIOUS_LOSS, "rose": 1e10}  # rule: the first check's reference

OptimizationResult = collections.namedtuple(
    "OptimizationResult", ["heatmaps", "losses", "iterations", "histories"])
OptimizationResult.__doc__ = """Per row used: final heatmap [H, W], the loss of its last
iteration, the number of updates it kept, and its loss history: [updates, loss] at every
convergence check it ran (iteration i's loss, computed after i updates), then its last
iteration's when that was no check (a row that ran to max_iters), so that the history ends
with the final loss."""


@dataclasses.dataclass(frozen=True)
class Loop:
    """How a method's rows are optimised: `update` (adam, adam_pytorch or sgd) with the
    learning rate decaying linearly from learning_rate to end_learning_rate over max_iters
    iterations; a check every check_every iterations, where a row stops by `stop` (settled,
    with tolerance, or rose; see the module docstring)."""
    update: str
    learning_rate: float
    end_learning_rate: float
    max_iters: int
    check_every: int
    stop: str = "settled"
    tolerance: float = 0.0

    @classmethod
    def of(cls, settings) -> "Loop":
        """L2-CAF's loop from its l2caf.settings.Settings."""
        return cls(settings.optimizer, settings.learning_rate, settings.end_learning_rate,
                   settings.max_iters, settings.check_every, "settled", settings.tolerance)


def learning_rate_at(step, initial, final, max_iters):
    """tf.compat.v1.train.polynomial_decay with power 1 at iteration `step` (from 0); the
    PyTorch port's polynomial_lr_decay is the same line (it never passes max_iters)."""
    fraction = tf.minimum(step, max_iters) / tf.maximum(max_iters, 1.0)
    return (initial - final) * (1.0 - fraction) + final


def _where_active(active, pairs):
    """Each (new, old) pair of tensors [rows, ...] as new where the row is active, old
    elsewhere."""
    value = pairs[0][1]
    mask = tf.broadcast_to(tf.reshape(active, [-1] + [1] * (value.shape.rank - 1)),
                           tf.shape(value))
    return [tf.where(mask, new, old) for new, old in pairs]


def adam_step(value, first, second, gradient, learning_rate, step, active):
    """One Adam update as tf.compat.v1.train.AdamOptimizer (step counts from 1) of the rows
    where `active`; the other rows keep their value and moments. Returns (value, first,
    second)."""
    new_first = ADAM_BETA1 * first + (1.0 - ADAM_BETA1) * gradient
    new_second = ADAM_BETA2 * second + (1.0 - ADAM_BETA2) * tf.square(gradient)
    step_size = learning_rate * tf.sqrt(1.0 - ADAM_BETA2 ** step) / (1.0 - ADAM_BETA1 ** step)
    new_value = value - step_size * new_first / (tf.sqrt(new_second) + ADAM_EPSILON)
    return _where_active(active, ((new_value, value), (new_first, first), (new_second, second)))


def adam_pytorch_step(value, first, second, gradient, learning_rate, step, active):
    """One Adam update as torch.optim.Adam: the same moments, epsilon added to the
    bias-corrected root of the second moment (TensorFlow adds it before the correction)."""
    new_first = ADAM_BETA1 * first + (1.0 - ADAM_BETA1) * gradient
    new_second = ADAM_BETA2 * second + (1.0 - ADAM_BETA2) * tf.square(gradient)
    denominator = tf.sqrt(new_second) / tf.sqrt(1.0 - ADAM_BETA2 ** step) + ADAM_EPSILON
    new_value = value - learning_rate / (1.0 - ADAM_BETA1 ** step) * new_first / denominator
    return _where_active(active, ((new_value, value), (new_first, first), (new_second, second)))


def sgd_step(value, first, second, gradient, learning_rate, step, active):
    """One step of plain gradient descent, as torch.optim.SGD without momentum (the moments
    stay as they are)."""
    return _where_active(active, ((value - learning_rate * gradient, value),)) + [first, second]


UPDATES = {"adam": adam_step, "adam_pytorch": adam_pytorch_step, "sgd": sgd_step}


def iterate(row_losses, state, first_step, steps, active, schedule, update="adam",
            keep_previous=False):
    """`steps` iterations from iteration `first_step`, a loop in the graph being built.
    state: (variable rows, the update's first and second moments[, with keep_previous the
    rows before the last update]); row_losses(variable rows) -> [rows]; schedule:
    (learning_rate, end_learning_rate, max_iters). Returns the new state and the rows'
    losses of the last iteration (before its update)."""
    update_step = UPDATES[update]

    def body(index, value, first, second, *_):
        step = tf.cast(first_step, tf.float32) + tf.cast(index, tf.float32)
        losses = row_losses(value)
        gradient = tf.gradients(tf.reduce_sum(losses), value)[0]
        return [index + 1] + update_step(value, first, second, gradient,
                                         learning_rate_at(step, *schedule), step + 1.0,
                                         active) + ([value] if keep_previous else []) + [losses]

    final = tf.while_loop(lambda index, *_: index < steps, body,
                          [tf.constant(0)] + list(state) + [tf.zeros([state[0].shape[0]])])
    return final[1:-1], final[-1]


def _padded(values, rows):
    padded = np.zeros((rows,) + np.shape(values)[1:], np.float32)
    padded[:len(values)] = values
    return padded


class SessionProgram(object):
    """A head's optimisation in a slim Model's graph: the batch's terms in local variables,
    the variable's rows in the model's filter variable (L2-CAF: the filter stays in the
    model) or in a variable of the program's own, one session run per loop."""

    def __init__(self, model, head, loop):
        self.model = model
        keep_previous = loop.stop == "rose"
        local = [tf.compat.v1.GraphKeys.LOCAL_VARIABLES]
        with model.graph.as_default(), tf.compat.v1.variable_scope(None, "l2caf_optimizer"):
            placeholder = tf.compat.v1.placeholder

            def local_variable(name, shape, dtype=tf.float32):
                return tf.compat.v1.get_variable(
                    name, shape, dtype, trainable=False, collections=local,
                    initializer=tf.compat.v1.zeros_initializer())

            self.inputs = {source: placeholder(tf.float32, [model.rows] + model.source_shape(
                source), source) for source in head.sources}
            self.targets = placeholder(tf.float32, [model.rows, model.num_outputs], "targets")
            terms = head.terms(self.inputs, self.targets)
            kept = [local_variable("term_%d" % index, term.shape, term.dtype)
                    for index, term in enumerate(terms)]
            self._load = tf.group(*[tf.compat.v1.assign(v, t) for v, t in zip(kept, terms)])
            variable = model.filter.atten_var if head.optimizes_filter else \
                local_variable("variable", head.variable_shape(model.rows))
            moments = [local_variable(name, variable.shape) for name in ("m", "v")]
            previous = [local_variable("previous", variable.shape)] if keep_previous else []
            self.first_step = placeholder(tf.int32, [], "first_step")
            self.steps = placeholder(tf.int32, [], "steps")
            self.active = placeholder(tf.bool, [model.rows], "active")
            self.schedule = [placeholder(tf.float32, [], name) for name in
                             ("learning_rate", "end_learning_rate", "max_iters")]
            state = [variable] + moments + previous
            new_state, losses = iterate(lambda raw: head.row_losses(kept, raw),
                                        [v.read_value() for v in state], self.first_step,
                                        self.steps, self.active, self.schedule, loop.update,
                                        keep_previous)
            with tf.control_dependencies([tf.compat.v1.assign(v, new)
                                          for v, new in zip(state, new_state)]):
                self._losses = tf.identity(losses)
            self.initial = placeholder(tf.float32, variable.shape, "initial")
            self._reset = tf.group(tf.compat.v1.assign(variable, self.initial),
                                   *[tf.compat.v1.assign(v, tf.zeros_like(v)) for v in moments])
            if keep_previous:
                self.reverted = placeholder(tf.bool, [model.rows], "reverted")
                [self._revert] = _where_active(self.reverted, ((previous[0], variable),))
                self._revert = tf.compat.v1.assign(variable, self._revert)
            self._heatmaps = head.heatmaps(kept, variable)
            model.session.run([v.initializer for v in kept + moments + previous]
                              + ([] if head.optimizes_filter else [variable.initializer]))

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

    def revert(self, rows):
        """The rows where `rows` (all the model's rows) go back to their variable before the
        last update."""
        self.model.session.run(self._revert, {self.reverted: rows})

    def heatmaps(self):
        return self.model.session.run(self._heatmaps)


class FunctionProgram(object):
    """A head's optimisation for a model that runs eagerly (Keras): the same functions as
    tf.functions, the terms and the state as tensors between calls."""

    def __init__(self, model, head, loop):
        self.model = model
        self.keep_previous = loop.stop == "rose"
        self._terms = tf.function(head.terms)
        self._iterate = tf.function(lambda terms, state, *arguments: iterate(
            lambda raw: head.row_losses(terms, raw), state, *arguments, update=loop.update,
            keep_previous=self.keep_previous))
        self._heatmaps = tf.function(head.heatmaps)
        self.terms = self.state = None

    def load(self, inputs, targets):
        with tf.device(self.model.device):
            self.terms = self._terms({source: tf.constant(_padded(values, self.model.rows))
                                      for source, values in inputs.items()},
                                     tf.constant(_padded(targets, self.model.rows)))

    def reset(self, initial):
        initial = tf.constant(initial)
        self.state = [initial, tf.zeros_like(initial), tf.zeros_like(initial)] + (
            [initial] if self.keep_previous else [])

    def advance(self, first_step, steps, active, schedule):
        with tf.device(self.model.device):
            self.state, losses = self._iterate(
                self.terms, self.state, tf.constant(first_step, tf.int32),
                tf.constant(steps, tf.int32), tf.constant(active),
                [tf.constant(value, tf.float32) for value in schedule])
        return losses.numpy()

    def revert(self, rows):
        """The rows where `rows` go back to their variable before the last update."""
        [self.state[0]] = _where_active(tf.constant(rows), ((self.state[3], self.state[0]),))

    def heatmaps(self):
        with tf.device(self.model.device):
            return self._heatmaps(self.terms, self.state[0]).numpy()


class FilterOptimizer(object):
    """The shared loop on `model`'s rows for the losses of `head` (an l2caf.heads.Head), in
    the model's kind of program: one program per update and stopping rule, built when first
    needed (`loop`: the one to build at once)."""

    def __init__(self, model, head, loop=None):
        self.model, self.head = model, head
        self._programs = {}
        if loop is not None:
            self.program(loop)

    def program(self, loop):
        """The program that runs `loop`'s update and stopping rule."""
        key = (loop.update, loop.stop)
        if key not in self._programs:
            self._programs[key] = self.model.optimization_program(self.head, loop)
        return self._programs[key]

    def run(self, images, activation, rows, targets, initial, loop, on_check=None):
        """Optimises the rows explaining images[rows[i]] (activation[rows[i]]) with
        targets[i], from `initial` (all the model's rows), until each stops or max_iters.
        loop: a Loop (L2-CAF's: Loop.of(its l2caf.settings.Settings)). on_check(updates,
        heatmaps, running): after each check, the number of updates made, every row's
        heatmap and which rows were running (GIF frames)."""
        program = self.program(loop)
        rows_used = len(rows)
        sources = {"images": images, "activation": activation}
        program.load({source: sources[source][rows] for source in self.head.sources}, targets)
        program.reset(initial)
        active = np.arange(self.model.rows) < rows_used
        iterations = np.zeros(rows_used, np.int64)
        losses = np.zeros(rows_used, np.float64)
        previous = np.full(rows_used, STOPS[loop.stop])
        histories = [[] for _ in range(rows_used)]
        schedule = (loop.learning_rate, loop.end_learning_rate, loop.max_iters)
        iteration = 0
        while iteration < loop.max_iters and active.any():
            next_check = -(-iteration // loop.check_every) * loop.check_every
            last = min(next_check, loop.max_iters - 1)
            last_losses = program.advance(iteration, last - iteration + 1, active,
                                          schedule)[:rows_used]
            running = active[:rows_used].copy()
            losses[running] = last_losses[running]
            iterations[running] = last + 1
            for row in np.flatnonzero(running):
                histories[row].append([last, float(last_losses[row])])
            if last == next_check:
                # A loss that is no longer finite cannot recover: the row stops, and the
                # visualisation job reports it as a failure.
                moved = last_losses > previous if loop.stop == "rose" else \
                    np.abs(last_losses - previous) < loop.tolerance
                stopped = running & (moved | ~np.isfinite(last_losses))
                previous = np.where(running, last_losses, previous)
                active[:rows_used] &= ~stopped
                if loop.stop == "rose" and stopped.any():
                    iterations[stopped] = last
                    program.revert(np.pad(stopped, (0, self.model.rows - rows_used)))
                if on_check is not None:
                    on_check(last + 1, program.heatmaps()[:rows_used], running)
            iteration = last + 1
        return OptimizationResult(program.heatmaps()[:rows_used], losses, iterations,
                                  histories)
