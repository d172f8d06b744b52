"""The L2-CAF attention filter: a gated, constrained spatial filter inserted in a network.

A network built with an `AttentionFilters` object calls `attention.apply(end_point, net)`
after each of its named end points. Where `end_point` is one of the chosen insertion
points, this adds two variables beside the network's own (never in a checkpoint):

* `<end_point>/atten_var`: the raw filter, one row per image being explained:
  shape [rows, H, W] for `l2norm` and `softmax`, [rows, 2] (a mean mu) for `gauss`;
* `<end_point>/atten_var_gate`: a boolean, False by default.

With the gate closed the end point's value passes through unchanged (exactly); with it
open, row i of the activation is multiplied by the normalised filter n(f_i), broadcast
over channels. A batch smaller than `rows` uses the first rows of the filter.
"""
import collections

from nets.tf_slim_compat import tf

# The gate is a tf.cond. Gradients to the filter are built after the graph has already run
# (the checkpoint is restored first), which a cond only allows when it exports its
# intermediate values.
tf.compat.v1.experimental.output_all_intermediates(True)

FILTER_TYPES = ("l2norm", "softmax", "gauss")
FILTER_COLLECTION = "l2caf_attention_filters"

AttentionFilter = collections.namedtuple(
    "AttentionFilter", ["end_point", "filter_type", "variable", "gate", "activation",
                        "output", "normalized", "heatmap"])
AttentionFilter.__doc__ = """One inserted filter.

end_point: name of the end point it follows. variable: the raw filter f. gate: its boolean
gate. activation: the end point's value before the filter (feed it to skip the layers
before). output: the value after the (gated) filter. normalized: n(f), [rows, H, W], as
multiplied into the activation. heatmap: the final heatmap of each row, [rows, H, W]
(|f|/|||f|||_2 for l2norm, softmax(f), the Gaussian kernel at mu)."""


class AttentionFilterError(ValueError):
    """A filter cannot be placed where it was asked for."""


def gaussian_kernel(mu, size):
    """2-D Gaussian densities (identity covariance) on the grid -r..r, summing to 1.

    mu: [rows, 2] means as (row offset, column offset) from the centre. size: odd H (= W).
    Returns [rows, size, size].
    """
    radius = (size - 1) // 2
    grid = tf.range(-radius, radius + 1, dtype=mu.dtype)
    d_row = grid[None, :, None] - mu[:, 0, None, None]
    d_col = grid[None, None, :] - mu[:, 1, None, None]
    density = tf.exp(-0.5 * (tf.square(d_row) + tf.square(d_col)))
    return density / tf.reduce_sum(density, axis=[1, 2], keepdims=True)


def normalize_filter(raw, filter_type, size):
    """n(f) for each row of a raw filter: the factor multiplied into the activation."""
    if filter_type == "l2norm":
        flat = tf.reshape(raw, [tf.shape(raw)[0], -1])
        return raw / tf.norm(flat, axis=1)[:, None, None]
    if filter_type == "softmax":
        flat = tf.reshape(raw, [tf.shape(raw)[0], -1])
        return tf.reshape(tf.nn.softmax(flat, axis=1), tf.shape(raw))
    if filter_type == "gauss":
        return gaussian_kernel(raw, size)
    raise AttentionFilterError(
        "unknown filter_type %r; choose one of %s" % (filter_type, ", ".join(FILTER_TYPES)))


def filter_heatmap(raw, filter_type, size):
    """The final heatmap of each row: like n(f), but l2norm uses |f| (the paper's figure)."""
    if filter_type == "l2norm":
        return normalize_filter(tf.abs(raw), filter_type, size)
    return normalize_filter(raw, filter_type, size)


def filter_shape(filter_type, rows, height, width):
    """Shape of the raw filter variable for a feature map of height x width."""
    if filter_type == "gauss":
        return [rows, 2]
    return [rows, height, width]


class AttentionFilters(object):
    """Which end points of a network get a filter, of which type, for how many rows.

    points: end point names, or None for the network's default points. A network calls
    `use_defaults` before it builds and `check_points` after.
    """

    def __init__(self, points=None, filter_type="l2norm", rows=1):
        if filter_type not in FILTER_TYPES:
            raise AttentionFilterError(
                "unknown filter_type %r; choose one of %s" % (filter_type, ", ".join(FILTER_TYPES)))
        if int(rows) < 1:
            raise AttentionFilterError("rows must be at least 1, got %r" % (rows,))
        self.points = None if points is None else list(points)
        self.filter_type = filter_type
        self.rows = int(rows)
        self.filters = collections.OrderedDict()

    def use_defaults(self, default_points):
        """Called by a network before it builds: None means its default points."""
        if self.points is None:
            self.points = list(default_points)

    def check_points(self, all_points):
        """Called by a network after it builds: every chosen point must have been seen."""
        unknown = [p for p in self.points if p not in self.filters]
        if unknown:
            raise AttentionFilterError(
                "unknown insertion point(s) %s; valid end points are: %s"
                % (", ".join(unknown), ", ".join(all_points)))

    def apply(self, end_point, net):
        """Returns `net` through a filter if `end_point` is an insertion point, else `net`."""
        if self.points is None or end_point not in self.points:
            return net
        return self._insert(end_point, net)

    def _insert(self, end_point, activation):
        height, width = activation.shape[1], activation.shape[2]
        if height is None or width is None:
            raise AttentionFilterError(
                "end point %s has an unknown spatial size; build the network on a fixed "
                "image size" % end_point)
        if self.filter_type == "gauss" and (height != width or height % 2 == 0):
            raise AttentionFilterError(
                "filter_type gauss needs a square feature map of odd size, but end point %s "
                "is %dx%d; use l2norm or softmax there, or another layer"
                % (end_point, height, width))
        with tf.compat.v1.variable_scope(end_point):
            variable = tf.compat.v1.get_variable(
                "atten_var", shape=filter_shape(self.filter_type, self.rows, height, width),
                dtype=tf.float32, initializer=tf.compat.v1.random_normal_initializer(),
                trainable=False,
                collections=[tf.compat.v1.GraphKeys.GLOBAL_VARIABLES, FILTER_COLLECTION])
            gate = tf.compat.v1.get_variable(
                "atten_var_gate", shape=[], dtype=tf.bool,
                initializer=tf.compat.v1.constant_initializer(False), trainable=False,
                collections=[tf.compat.v1.GraphKeys.GLOBAL_VARIABLES, FILTER_COLLECTION])
            normalized = normalize_filter(variable, self.filter_type, height)
            heatmap = filter_heatmap(variable, self.filter_type, height)

            def filtered():
                batch = tf.shape(activation)[0]
                return activation * tf.cast(normalized[:batch, :, :, None], activation.dtype)

            output = tf.cond(gate, filtered, lambda: tf.identity(activation))
            output.set_shape(activation.shape)
        self.filters[end_point] = AttentionFilter(
            end_point, self.filter_type, variable, gate, activation, output, normalized, heatmap)
        return output


def apply_filter(attention, end_point, net):
    """`attention.apply(end_point, net)`, or `net` when the network has no filters."""
    if attention is None:
        return net
    return attention.apply(end_point, net)
