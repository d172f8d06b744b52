"""A network's inference graph with one attention filter, its session and its checkpoint."""
import numpy as np

from l2caf import checkpoints
from nets import nets_factory
from nets.attention_filter import FILTER_COLLECTION, AttentionFilters, normalize_filter
from nets.tf_slim_compat import tf


def session_config(gpu):
    """Session options: the GPU `gpu` with memory growth, or the CPU only for gpu < 0.

    On a machine without a GPU both run on the CPU.
    """
    if gpu is None or gpu < 0:
        return tf.compat.v1.ConfigProto(device_count={"GPU": 0})
    options = tf.compat.v1.GPUOptions(allow_growth=True, visible_device_list=str(gpu))
    return tf.compat.v1.ConfigProto(gpu_options=options, allow_soft_placement=True)


def list_layers(spec, num_classes):
    """The end points of `spec` where a filter can go (those with a spatial map), in order."""
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, [1, spec.image_size, spec.image_size, 3])
        _, end_points = nets_factory.build(spec, images, num_classes)
    return [name for name, value in end_points.items() if value.shape.rank == 4
            and value.shape[1] is not None and value.shape[1] > 1]


class Model(object):
    """`spec`'s network with a filter at `layer`, in its own graph and session.

    images: placeholder of RGB images, float 0..255, [N, size, size, 3].
    outputs: what the losses see: the logits, or the pooled pre-logits features when
    explain == 'embedding'. filter: the AttentionFilter at `layer` (gate closed), with
    `rows` rows: N may be at most `rows` when the gate is open.
    """

    def __init__(self, spec, num_classes, layer="", filter_type="l2norm", rows=1,
                 explain="logits", gpu=0):
        self.spec = spec
        self.num_classes = num_classes
        self.explain = explain
        self.layer = layer or spec.last_conv_end_point
        self.graph = tf.Graph()
        with self.graph.as_default():
            size = spec.image_size
            self.images = tf.compat.v1.placeholder(tf.float32, [None, size, size, 3], "images")
            attention = AttentionFilters([self.layer], filter_type, rows)
            self.logits, self.end_points = nets_factory.build(
                spec, self.images, num_classes, attention)
            self.filter = attention.filters[self.layer]
            self.outputs = (self.end_points["PreLogits"] if explain == "embedding"
                            else self.logits)
            self.probabilities = tf.nn.softmax(self.logits)
            self.network_scope = self.logits.name.split("/")[0]
            filter_variables = set(tf.compat.v1.get_collection(FILTER_COLLECTION))
            self.model_variables = [v for v in tf.compat.v1.global_variables()
                                    if v not in filter_variables]
            self._open_gate = self.filter.gate.assign(True)
            self._close_gate = self.filter.gate.assign(False)
            self._initializer = tf.compat.v1.global_variables_initializer()
        self.session = tf.compat.v1.Session(graph=self.graph, config=session_config(gpu))
        self.session.run(self._initializer)

    @property
    def filter_size(self):
        """(H, W) of the filtered feature map."""
        return tuple(int(d) for d in self.filter.activation.shape[1:3])

    def restore(self, checkpoint_path):
        """Loads the network's weights; errors name the file or the variables at fault."""
        with self.graph.as_default():
            checkpoints.restore_variables(self.session, checkpoint_path, self.model_variables,
                                          network_name=self.spec.name)

    def variable(self, name):
        """The network variable `name`, relative to the network scope (e.g. 'logits/weights')."""
        full_name = "%s/%s" % (self.network_scope, name)
        for variable in self.model_variables:
            if variable.op.name == full_name:
                return variable
        raise KeyError("network %s has no variable %s" % (self.spec.name, full_name))

    def set_gate(self, is_open):
        self.session.run(self._open_gate if is_open else self._close_gate)

    def class_output(self, class_id):
        """Output index of class id `class_id` (0..num_labels-1)."""
        return class_id + self.spec.label_offset

    def top_classes(self, probabilities, k):
        """Class ids (label offset removed) of the k most probable classes, best first."""
        scores = np.asarray(probabilities)[self.spec.label_offset:]
        return [int(i) for i in np.argsort(-scores, kind="stable")[:k]]

    def close(self):
        self.session.close()


class PrecomputedHead(object):
    """Base of the heads whose loss terms are computed once per batch and kept in the graph."""

    def _keep(self, names, terms):
        """Local variables holding `terms` (one row per filter row), and their load op."""
        rows = int(self.model.filter.variable.shape[0])
        self._terms = [tf.compat.v1.get_variable(
            name, [rows] + term.shape.as_list()[1:], tf.float64, trainable=False,
            initializer=tf.compat.v1.zeros_initializer(),
            collections=[tf.compat.v1.GraphKeys.LOCAL_VARIABLES])
            for name, term in zip(names, terms)]
        self._load = tf.group(*[tf.compat.v1.assign(variable, term)
                                for variable, term in zip(self._terms, terms)])
        self.model.session.run([variable.initializer for variable in self._terms])
        return self._terms

    def _normalized(self, raw_filter):
        """n(f) in float64, as the filter multiplies it into the activation."""
        model = self.model
        return tf.cast(normalize_filter(raw_filter, model.filter.filter_type,
                                        model.filter_size[0]), tf.float64)

    def load(self, activation, targets):
        """Computes the loss terms of each row from its activation and targets."""
        rows = int(self._terms[0].shape[0])
        padded_activation = np.zeros((rows,) + activation.shape[1:], activation.dtype)
        padded_activation[:len(activation)] = activation
        padded_targets = np.zeros((rows,) + targets.shape[1:], np.float64)
        padded_targets[:len(targets)] = targets
        self.model.session.run(self._load, {self.model.filter.activation: padded_activation,
                                            self.targets: padded_targets})


class LinearHead(PrecomputedHead):
    """The L2-CAF loss as a quadratic form in the filter, for heads that are linear in it.

    Where the head after the filter is a spatial mean followed by a linear layer (InceptionV1
    and ResNet-V2 at their last conv layer; any network's pooled embedding), the outputs are
    FT = b + P^T n / (H W), with n = n(f) flattened and P the per-location outputs
    (P_hw = A_hw . W; for explain == 'embedding', P = A and b = 0). Each row's loss is then
        loss = const + a . n + n^T G n
    cls_specific (class weights w): const = w . b, a = P w / (H W), G = 0;
    cls_oblivious (unfiltered outputs NT, K outputs, d = NT - b):
        const = |d|^2 / K, a = -2 P d / (H W K), G = P P^T / ((H W)^2 K).
    const, a and G are computed once per batch (`load`), so an iteration costs a few
    products of size H W instead of the head's layers. Float64 keeps the expansion exact.
    """

    def __init__(self, model, caf_variant):
        if not self.applies(model):
            raise ValueError("network %s has no linear head after %s"
                             % (model.spec.name, model.layer))
        self.model = model
        rows = int(model.filter.variable.shape[0])
        height, width = model.filter_size
        locations = height * width
        with model.graph.as_default(), tf.compat.v1.variable_scope("l2caf_linear_head"):
            activation = tf.reshape(model.filter.activation,
                                    [-1, locations, model.filter.activation.shape[-1]])
            if model.explain == "embedding":
                weights, bias = None, tf.constant(0.0, tf.float64)
                num_outputs = int(activation.shape[-1])
            else:
                scope = model.spec.linear_head_scope
                weights = model.variable(scope + "/weights")
                bias = tf.cast(model.variable(scope + "/biases"), tf.float64)
                weights = tf.reshape(weights, weights.shape[2:])
                num_outputs = int(weights.shape[-1])
            self.targets = tf.compat.v1.placeholder(tf.float64, [rows, num_outputs], "targets")
            if caf_variant == "cls_specific":
                # a = P w = A (W w): contracting W with w first avoids forming P.
                weighted = self.targets if weights is None else tf.einsum(
                    "ck,nk->nc", tf.cast(weights, tf.float64), self.targets)
                terms = [tf.reduce_sum(self.targets * bias, axis=1),
                         tf.einsum("nlc,nc->nl", tf.cast(activation, tf.float64), weighted)
                         / locations]
            else:
                per_location = activation if weights is None else tf.einsum(
                    "nlc,ck->nlk", activation, weights)
                per_location = tf.cast(per_location, tf.float64)
                difference = self.targets - bias
                terms = [tf.reduce_mean(tf.square(difference), axis=1),
                         -2.0 * tf.einsum("nlk,nk->nl", per_location, difference) / (
                             locations * num_outputs),
                         tf.einsum("nlk,nmk->nlm", per_location, per_location) / (
                             locations ** 2 * num_outputs)]
            self._keep(["term_%d" % order for order in range(len(terms))], terms)

    def row_losses_of(self, raw_filter):
        """Each row's loss for the raw filter values `raw_filter` (a tensor)."""
        normalized = tf.reshape(self._normalized(raw_filter), [-1, self._terms[1].shape[1]])
        row_losses = self._terms[0] + tf.reduce_sum(self._terms[1] * normalized, axis=1)
        if len(self._terms) == 3:
            row_losses += tf.einsum("nl,nlm,nm->n", normalized, self._terms[2], normalized)
        return tf.cast(row_losses, tf.float32)

    @staticmethod
    def applies(model):
        """True when model's outputs after the filter are linear in it (see the docstring)."""
        return (model.layer == model.spec.last_conv_end_point
                and (model.explain == "embedding" or model.spec.linear_head_scope is not None))


class ReluHead(PrecomputedHead):
    """The class-specific loss for heads of batch norm, ReLU, mean and a linear layer.

    DenseNet's head after its last conv block: with s, t the inference batch norm as
    x * s + t, W the logits weights and w a row's class weights, the loss is
        w . b + (1 / (H W)) sum_hw g_hw(n_hw),  g_hw(n) = sum_c u_c ReLU(s_c A_hwc n + t_c),
    u = W w. Each g_hw is a piecewise-linear function of the scalar n_hw with a knot per
    channel at n = -t_c / (s_c A_hwc). Sorting the knots once per batch and summing the
    slopes and intercepts of the terms that are on between knots makes an iteration a
    binary search per location instead of the head's layers over all channels.
    cls_oblivious needs every output, not one weighted sum, and runs the head's layers.
    """

    def __init__(self, model):
        if not self.applies(model, "cls_specific"):
            raise ValueError("network %s has no batch norm-ReLU head after %s"
                             % (model.spec.name, model.layer))
        self.model = model
        rows = int(model.filter.variable.shape[0])
        height, width = model.filter_size
        locations = height * width
        norm_scope, logits_scope = model.spec.relu_head_scopes
        with model.graph.as_default(), tf.compat.v1.variable_scope("l2caf_relu_head"):
            def variable(name):
                return tf.cast(model.variable(name), tf.float64)

            # The epsilon is the batch norm op's own, whatever the arg scope set.
            epsilon = [op for op in model.graph.get_operations()
                       if op.name.startswith("%s/%s/" % (model.network_scope, norm_scope))
                       and op.type.startswith("FusedBatchNorm")][0].get_attr("epsilon")
            scale = variable(norm_scope + "/gamma") / tf.sqrt(
                variable(norm_scope + "/moving_variance") + epsilon)
            shift = variable(norm_scope + "/beta") - variable(norm_scope + "/moving_mean") * scale
            weights = variable(logits_scope + "/weights")
            weights = tf.reshape(weights, weights.shape[2:])
            self.targets = tf.compat.v1.placeholder(
                tf.float64, [rows, weights.shape[-1]], "targets")
            channel_weights = tf.einsum("ck,nk->nc", weights, self.targets)[:, None, :]
            activation = tf.reshape(tf.cast(model.filter.activation, tf.float64),
                                    [-1, locations, weights.shape[0]])
            slope = scale * activation  # s_c A_hwc: the term's slope in n before u
            rising, falling = slope > 0, slope < 0
            knots = tf.where(tf.equal(slope, 0.0), tf.constant(-np.inf, tf.float64),
                             -shift / tf.where(tf.equal(slope, 0.0), tf.ones_like(slope), slope))
            order = tf.argsort(knots, axis=-1)
            sorted_knots = tf.gather(knots, order, batch_dims=2)

            def on_between_knots(rising_part, falling_part):
                # Rising terms are on above their knot (a prefix of the sorted knots), falling
                # ones below it (a suffix); entry i holds the sum of those on between knots
                # i - 1 and i.
                rising_part = tf.gather(rising_part, order, batch_dims=2)
                falling_part = tf.gather(falling_part, order, batch_dims=2)
                prefix = tf.cumsum(rising_part, axis=-1, exclusive=True)
                prefix = tf.concat([prefix, tf.reduce_sum(rising_part, -1, keepdims=True)], -1)
                suffix = tf.cumsum(falling_part, axis=-1, reverse=True)
                return prefix + tf.concat([suffix, tf.zeros_like(suffix[..., :1])], -1)

            zero = tf.zeros_like(slope)
            flat_intercept = tf.where(tf.equal(slope, 0.0), tf.nn.relu(shift) + zero, zero)
            terms = [
                tf.reduce_sum(self.targets * variable(logits_scope + "/biases"), axis=1),
                sorted_knots,
                on_between_knots(tf.where(rising, slope, zero) * channel_weights,
                                 tf.where(falling, slope, zero) * channel_weights),
                on_between_knots(tf.where(rising, shift + zero, flat_intercept) * channel_weights,
                                 tf.where(falling, shift + zero, zero) * channel_weights),
            ]
            self._keep(["bias", "knots", "slopes", "intercepts"], terms)

    def row_losses_of(self, raw_filter):
        """Each row's loss for the raw filter values `raw_filter` (a tensor)."""
        bias, knots, slopes, intercepts = self._terms
        locations = int(knots.shape[1])
        normalized = tf.reshape(self._normalized(raw_filter), [-1, locations, 1])
        segment = tf.stop_gradient(tf.searchsorted(knots, normalized, side="left"))
        values = (tf.gather(slopes, segment, batch_dims=2) * normalized
                  + tf.gather(intercepts, segment, batch_dims=2))
        return tf.cast(bias + tf.reduce_sum(values, axis=[1, 2]) / locations, tf.float32)

    @staticmethod
    def applies(model, caf_variant):
        return (caf_variant == "cls_specific" and model.explain == "logits"
                and model.layer == model.spec.last_conv_end_point
                and model.spec.relu_head_scopes is not None)
