"""The L2-CAF loss of every filter row, behind one interface: a head.

A row explaining class c (cls_specific) has the loss sum_k w_k FT_k with w_k = +1 for k != c
and w_c = -1 (raise c, lower the rest); cls_oblivious has mean_k (NT_k - FT_k)^2, NT the
unfiltered outputs. FT are the outputs with the filter on. Per batch, `load` gives a head each
row's input (its image, or the activation at the filter's layer) and targets (w, or NT); then
`row_losses(raw filter)` is each row's loss, built inside the optimiser's graph loop.

NetworkHead runs the network's own layers after the filter; LinearHead and ReluHead compute
the same loss from terms made once per batch, where the head after the last conv layer
allows it (see each).
"""
import numpy as np

from l2caf import filters, networks
from l2caf.errors import ConfigError
from nets.tf_slim_compat import tf

CAF_VARIANTS = ("cls_specific", "cls_oblivious")


def loss_targets(caf_variant, outputs, output_indices):
    """Each row's targets: class weights w for cls_specific (-1 at the row's output index,
    +1 elsewhere), the unfiltered outputs for cls_oblivious."""
    if caf_variant == "cls_oblivious":
        return np.asarray(outputs, np.float32)
    weights = np.ones(np.shape(outputs), np.float32)
    weights[np.arange(len(weights)), output_indices] = -1.0
    return weights


def caf_loss(caf_variant, outputs, targets):
    """Each row's loss from its filtered outputs and its targets."""
    if caf_variant == "cls_specific":
        return tf.reduce_sum(targets * outputs, axis=1)
    return tf.reduce_mean(tf.square(targets - outputs), axis=1)


class Head(object):
    """What the optimiser asks for. A subclass defines `terms` (what it keeps per batch, from
    the rows' inputs and targets) and `row_losses`; `uses_images` says whether a row's input
    is its image rather than the activation at the layer."""
    uses_images = False

    def __init__(self, model, caf_variant):
        if caf_variant not in CAF_VARIANTS:
            raise ConfigError("caf_variant must be one of %s, got %r"
                              % (", ".join(CAF_VARIANTS), caf_variant))
        self.model, self.caf_variant = model, caf_variant
        source = model.images if self.uses_images else model.filter.activation
        with model.graph.as_default(), tf.compat.v1.variable_scope(None, "l2caf_head"):
            self._inputs = tf.compat.v1.placeholder(tf.float32, [model.rows] + source.shape[1:])
            self._targets = tf.compat.v1.placeholder(
                tf.float32, [model.rows, model.outputs.shape[-1]])
            terms = self.terms(self._inputs, self._targets)
            # Kept in variables, so that every loop run of the batch reads them, made once.
            self.kept = [tf.compat.v1.get_variable(
                "term_%d" % index, term.shape, term.dtype, trainable=False,
                initializer=tf.compat.v1.zeros_initializer(),
                collections=[tf.compat.v1.GraphKeys.LOCAL_VARIABLES])
                for index, term in enumerate(terms)]
            self._load = tf.group(*[tf.compat.v1.assign(variable, term)
                                    for variable, term in zip(self.kept, terms)])
            model.session.run([variable.initializer for variable in self.kept])

    def load(self, images, activation, rows, targets):
        """Keeps the terms of a batch: row i explains images[rows[i]] (activation[rows[i]])
        with targets[i]; rows beyond len(rows) are padding."""
        inputs = (images if self.uses_images else activation)[rows]
        feed = {}
        for placeholder, values in ((self._inputs, inputs), (self._targets, targets)):
            padded = np.zeros(placeholder.shape, np.float32)
            padded[:len(values)] = values
            feed[placeholder] = padded
        self.model.session.run(self._load, feed)

    def normalized(self, raw, dtype=tf.float32):
        """n(f) of the raw filter rows, as multiplied into the map."""
        model = self.model
        return tf.cast(filters.normalize(raw, model.filter_type, model.filter_size[0]), dtype)

    def terms(self, inputs, targets):
        raise NotImplementedError

    def row_losses(self, raw):
        """[rows] float32 losses of the raw filter rows `raw` (a tensor)."""
        raise NotImplementedError


class NetworkHead(Head):
    """The network's own layers after the filter, every iteration: from the activation at
    the layer, or (uses_images, the original's way) from the image, the whole network."""

    def __init__(self, model, caf_variant, uses_images=False):
        self.uses_images = uses_images
        super(NetworkHead, self).__init__(model, caf_variant)

    def terms(self, inputs, targets):
        return [inputs, targets]

    def row_losses(self, raw):
        inputs, targets = self.kept
        source = {"images" if self.uses_images else "activation": inputs}
        return caf_loss(self.caf_variant,
                        self.model.filtered_outputs(self.normalized(raw), **source), targets)


class LinearHead(Head):
    """The loss as a quadratic form in the filter, for heads that are linear in it.

    Where the head after the filter is a spatial mean and a linear layer (InceptionV1 and
    ResNet-V2 at their last conv layer; any network's pooled embedding), the outputs are
    FT = b + P^T n / (H W), with n = n(f) flattened and P the per-location outputs
    (P_hw = A_hw . W; for the embedding P = A and b = 0). Each row's loss is then
        loss = const + a . n + n^T G n
    cls_specific (class weights w): const = w . b, a = P w / (H W), G = 0;
    cls_oblivious (unfiltered outputs NT, K outputs, d = NT - b):
        const = |d|^2 / K, a = -2 P d / (H W K), G = P P^T / ((H W)^2 K).
    An iteration then costs a few products of size H W instead of the head's layers.
    Float64 keeps the expansion exact.
    """

    @staticmethod
    def applies(model):
        return (model.layer == model.network.last_conv
                and (model.explain == "embedding"
                     or isinstance(model.network.head, networks.LinearHead)))

    def terms(self, activation, targets):
        model = self.model
        locations = model.filter_size[0] * model.filter_size[1]
        activation = tf.reshape(tf.cast(activation, tf.float64),
                                [model.rows, locations, activation.shape[-1]])
        targets = tf.cast(targets, tf.float64)
        if model.explain == "embedding":
            per_location, bias = activation, tf.constant(0.0, tf.float64)
        else:
            scope = model.network.head.logits_scope
            weights = tf.cast(model.variable(scope + "/weights"), tf.float64)[0, 0]
            bias = tf.cast(model.variable(scope + "/biases"), tf.float64)
        if self.caf_variant == "cls_specific":
            # a = P w = A (W w): contracting W with w first avoids forming P.
            channel_weights = targets if model.explain == "embedding" else tf.einsum(
                "ck,nk->nc", weights, targets)
            return [tf.reduce_sum(targets * bias, axis=1),
                    tf.einsum("nlc,nc->nl", activation, channel_weights) / locations]
        if model.explain != "embedding":
            per_location = tf.einsum("nlc,ck->nlk", activation, weights)
        outputs = int(per_location.shape[-1])
        difference = targets - bias
        return [tf.reduce_mean(tf.square(difference), axis=1),
                -2.0 * tf.einsum("nlk,nk->nl", per_location, difference) / (locations * outputs),
                tf.einsum("nlk,nmk->nlm", per_location, per_location) / (
                    locations ** 2 * outputs)]

    def row_losses(self, raw):
        normalized = tf.reshape(self.normalized(raw, tf.float64), [self.model.rows, -1])
        losses = self.kept[0] + tf.reduce_sum(self.kept[1] * normalized, axis=1)
        if len(self.kept) == 3:
            losses += tf.einsum("nl,nlm,nm->n", normalized, self.kept[2], normalized)
        return tf.cast(losses, tf.float32)


class ReluHead(Head):
    """The class-specific loss for heads of batch norm, ReLU, mean and a linear layer.

    DenseNet's head after its last conv block: with s, t the inference batch norm as
    x * s + t, W the logits weights and w a row's class weights, the loss is
        w . b + (1 / (H W)) sum_hw g_hw(n_hw),  g_hw(n) = sum_c u_c ReLU(s_c A_hwc n + t_c),
    u = W w. Each g_hw is a piecewise-linear function of the scalar n_hw with a knot per
    channel at n = -t_c / (s_c A_hwc). Sorting the knots once per batch and summing the
    slopes and intercepts of the terms that are on between knots makes an iteration a
    binary search per location instead of the head's layers over all channels.
    """

    @staticmethod
    def applies(model, caf_variant):
        return (caf_variant == "cls_specific" and model.explain == "logits"
                and model.layer == model.network.last_conv
                and isinstance(model.network.head, networks.ReluHead))

    def terms(self, activation, targets):
        model, head = self.model, self.model.network.head

        def variable(name):
            return tf.cast(model.variable(name), tf.float64)

        epsilon = networks.resolve(head.batch_norm_epsilon)
        norm = head.batch_norm_scope
        scale = variable(norm + "/gamma") / tf.sqrt(variable(norm + "/moving_variance") + epsilon)
        shift = variable(norm + "/beta") - variable(norm + "/moving_mean") * scale
        weights = variable(head.logits_scope + "/weights")[0, 0]
        targets = tf.cast(targets, tf.float64)
        channel_weights = tf.einsum("ck,nk->nc", weights, targets)[:, None, :]
        locations = model.filter_size[0] * model.filter_size[1]
        activation = tf.reshape(tf.cast(activation, tf.float64),
                                [model.rows, locations, weights.shape[0]])
        slope = scale * activation  # s_c A_hwc: the term's slope in n before u
        flat, zero = tf.equal(slope, 0.0), tf.zeros_like(slope)
        knots = tf.where(flat, tf.constant(-np.inf, tf.float64),
                         -shift / tf.where(flat, tf.ones_like(slope), slope))
        order = tf.argsort(knots, axis=-1)

        def on_between_knots(rising_part, falling_part):
            # Rising terms are on above their knot (a prefix of the sorted knots), falling
            # ones below it (a suffix); entry i holds the sum of those on between knots
            # i - 1 and i.
            rising_part = tf.gather(rising_part * channel_weights, order, batch_dims=2)
            falling_part = tf.gather(falling_part * channel_weights, order, batch_dims=2)
            prefix = tf.cumsum(rising_part, axis=-1, exclusive=True)
            prefix = tf.concat([prefix, tf.reduce_sum(rising_part, -1, keepdims=True)], -1)
            suffix = tf.cumsum(falling_part, axis=-1, reverse=True)
            return prefix + tf.concat([suffix, tf.zeros_like(suffix[..., :1])], -1)

        rising, falling = slope > 0, slope < 0
        flat_intercept = tf.where(flat, tf.nn.relu(shift) + zero, zero)
        return [
            tf.reduce_sum(targets * variable(head.logits_scope + "/biases"), axis=1),
            tf.gather(knots, order, batch_dims=2),
            on_between_knots(tf.where(rising, slope, zero), tf.where(falling, slope, zero)),
            on_between_knots(tf.where(rising, shift + zero, flat_intercept),
                             tf.where(falling, shift + zero, zero)),
        ]

    def row_losses(self, raw):
        bias, knots, slopes, intercepts = self.kept
        locations = int(knots.shape[1])
        normalized = tf.reshape(self.normalized(raw, tf.float64), [-1, locations, 1])
        segment = tf.stop_gradient(tf.searchsorted(knots, normalized, side="left"))
        values = (tf.gather(slopes, segment, batch_dims=2) * normalized
                  + tf.gather(intercepts, segment, batch_dims=2))
        return tf.cast(bias + tf.reduce_sum(values, axis=[1, 2]) / locations, tf.float32)


def head_for(model, caf_variant, cache_activation=True, precompute_head=True):
    """The fastest head that gives `model`'s loss: without cache_activation the whole
    network on the images (the original's way); with it, a precomputed head where the
    network's head allows one (and precompute_head), else the layers after the filter."""
    if not cache_activation:
        return NetworkHead(model, caf_variant, uses_images=True)
    if precompute_head and LinearHead.applies(model):
        return LinearHead(model, caf_variant)
    if precompute_head and ReluHead.applies(model, caf_variant):
        return ReluHead(model, caf_variant)
    return NetworkHead(model, caf_variant)
