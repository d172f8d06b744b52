"""The loss of every optimised row, behind one interface: a head. A head is what a method
adds to the shared optimisation loop (l2caf.optimize): each row's variable, the loss the
loop lowers and the heatmap it ends with.

L2-CAF: a row explaining class c (cls_specific) has the loss sum_k w_k FT_k with w_k = +1
for k != c and w_c = -1 (raise c, lower the rest); cls_oblivious has mean_k (NT_k - FT_k)^2,
NT the unfiltered outputs. FT are the outputs with the filter on; the variable is the
filter, its heatmap n(|f|) (l2caf.filters). Opti-CAM: see OptiCAMHead.

A head is four functions of tensors: `variable_shape(rows)`; `terms(inputs, targets)`, made
once per batch from each row's inputs (its image and/or the activation at the layer, as
named by `sources`) and targets (w, or NT); `row_losses(terms, value)`, every iteration; and
`heatmaps(terms, value)`. l2caf.optimize runs them in a session graph (slim networks) or in
tf.functions (Keras models).

NetworkHead runs the network's own layers after the filter; LinearHead and ReluHead compute
the same loss from terms made once per batch, where the model's head after the filter's
layer allows it (see each).
"""
import numpy as np

from l2caf import filters
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
    """The interface: `sources` (the row inputs `terms` takes, from 'images' and
    'activation'), `variable_shape`, `terms`, `row_losses` and `heatmaps`. optimizes_filter:
    the variable is the model's filter (a slim model keeps it in its filter variable)."""
    sources = ("activation",)
    optimizes_filter = False

    def __init__(self, model):
        self.model = model

    def variable_shape(self, rows):
        """The shape of the variable of `rows` rows."""
        raise NotImplementedError

    def terms(self, inputs, targets):
        """The batch's terms (a list of tensors) from {source: [rows, ...]} and targets."""
        raise NotImplementedError

    def row_losses(self, terms, value):
        """[rows] float32 losses of the variable's rows `value`."""
        raise NotImplementedError

    def heatmaps(self, terms, value):
        """[rows, H, W] heatmaps of the variable's rows `value`."""
        raise NotImplementedError


class CAFHead(Head):
    """L2-CAF's heads: the variable is the filter's raw rows f, the heatmap n(|f|) (l2norm)
    or n(f)."""
    optimizes_filter = True

    def __init__(self, model, caf_variant):
        if caf_variant not in CAF_VARIANTS:
            raise ConfigError("caf_variant must be one of %s, got %r"
                              % (", ".join(CAF_VARIANTS), caf_variant))
        super(CAFHead, self).__init__(model)
        self.caf_variant = caf_variant

    def variable_shape(self, rows):
        model = self.model
        return filters.filter_shape(model.filter_type, rows, *model.filter_size)

    def normalized(self, raw, dtype=tf.float32):
        """n(f) of the raw filter rows, as multiplied into the map."""
        model = self.model
        return tf.cast(filters.normalize(raw, model.filter_type, model.filter_size[0]), dtype)

    def heatmaps(self, terms, value):
        return filters.heatmap(value, self.model.filter_type, self.model.filter_size[0])


class NetworkHead(CAFHead):
    """The network's own layers after the filter, every iteration: from the activation at
    the layer (cache_activation) or from the image, the whole network (the original's way).
    The model says which inputs it needs (`network_head_sources`)."""

    def __init__(self, model, caf_variant, cache_activation=True):
        super(NetworkHead, self).__init__(model, caf_variant)
        self.sources = model.network_head_sources(cache_activation)

    def terms(self, inputs, targets):
        return [inputs[source] for source in self.sources] + [targets]

    def row_losses(self, terms, raw):
        outputs = self.model.filtered_outputs(self.normalized(raw),
                                              **dict(zip(self.sources, terms[:-1])))
        return caf_loss(self.caf_variant, outputs, terms[-1])


class LinearHead(CAFHead):
    """The loss as a quadratic form in the filter, for heads that are linear in it.

    Where the layer's map goes straight into a spatial mean and a linear layer (InceptionV1
    and ResNet-V2 at their last conv layer, Keras models ending in global average pooling
    and a Dense layer), the outputs are FT = b + P^T n / (H W), with n = n(f) flattened and P
    the per-location outputs (P_hw = A_hw . W; for the pooled embedding P = A and b = 0).
    Each row's loss is then
        loss = const + a . n + n^T G n
    cls_specific (class weights w): const = w . b, a = P w / (H W), G = 0;
    cls_oblivious (unfiltered outputs NT, K outputs, d = NT - b):
        const = |d|^2 / K, a = -2 P d / (H W K), G = P P^T / ((H W)^2 K).
    An iteration then costs a few products of size H W instead of the head's layers.
    Float64 keeps the expansion exact.
    """

    @staticmethod
    def applies(model):
        return model.layer == model.linear_head_layer

    def terms(self, inputs, targets):
        model = self.model
        locations = model.filter_size[0] * model.filter_size[1]
        activation = inputs["activation"]
        activation = tf.reshape(tf.cast(activation, tf.float64),
                                [model.rows, locations, activation.shape[-1]])
        targets = tf.cast(targets, tf.float64)
        if model.explain == "embedding":
            per_location, bias = activation, tf.constant(0.0, tf.float64)
        else:
            weights, bias = (tf.cast(value, tf.float64) for value in model.linear_head())
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

    def row_losses(self, terms, raw):
        normalized = tf.reshape(self.normalized(raw, tf.float64), [self.model.rows, -1])
        losses = terms[0] + tf.reduce_sum(terms[1] * normalized, axis=1)
        if len(terms) == 3:
            losses += tf.einsum("nl,nlm,nm->n", normalized, terms[2], normalized)
        return tf.cast(losses, tf.float32)


class ReluHead(CAFHead):
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
        return caf_variant == "cls_specific" and model.explain == "logits" \
            and model.layer == model.relu_head_layer

    def terms(self, inputs, targets):
        model = self.model
        scale, shift, weights, bias = (tf.cast(value, tf.float64)
                                       for value in model.relu_head())
        targets = tf.cast(targets, tf.float64)
        channel_weights = tf.einsum("ck,nk->nc", weights, targets)[:, None, :]
        locations = model.filter_size[0] * model.filter_size[1]
        activation = tf.reshape(tf.cast(inputs["activation"], tf.float64),
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
            tf.reduce_sum(targets * bias, axis=1),
            tf.gather(knots, order, batch_dims=2),
            on_between_knots(tf.where(rising, slope, zero), tf.where(falling, slope, zero)),
            on_between_knots(tf.where(rising, shift + zero, flat_intercept),
                             tf.where(falling, shift + zero, zero)),
        ]

    def row_losses(self, terms, raw):
        bias, knots, slopes, intercepts = terms
        locations = int(knots.shape[1])
        normalized = tf.reshape(self.normalized(raw, tf.float64), [-1, locations, 1])
        segment = tf.stop_gradient(tf.searchsorted(knots, normalized, side="left"))
        values = (tf.gather(slopes, segment, batch_dims=2) * normalized
                  + tf.gather(intercepts, segment, batch_dims=2))
        return tf.cast(bias + tf.reduce_sum(values, axis=[1, 2]) / locations, tf.float32)


class OptiCAMHead(Head):
    """Opti-CAM's objective (Zhang et al., CVIU 2024; the authors' code, github
    hanwei0912/OptiCAM, util.py's Basic_OptCAM with its scripts' plain loss and max-min
    normalisation). A row's variable u holds one weight per channel of the activation A at
    the model's layer; its saliency map is

        S = sum_k softmax(u)_k ReLU(A_k)                      (at the layer's resolution)
        M = (up(S) - min up(S)) / (max up(S) - min up(S))     (at the network's input)

    with up the bilinear upsampling of half-pixel centres (torch's interpolate with
    align_corners=False, tf.image.resize). The loss is the plain one: the class's logit on
    the image minus its logit on the image multiplied by M (RGB 0..255, before the model's
    preprocessing: the authors' code multiplies its 0..1 images before its normalisation
    layer), so that lowering it raises the class's logit on the masked image. Each iteration
    runs the whole network on the masked images, forwards and backwards down to the input.
    The heatmap is S min-max normalised at the layer's resolution (upsampled, an increasing
    affine function of M). A flat map (max = min, where the reference divides by 0) masks
    the whole image out.
    """
    sources = ("images", "activation")

    def variable_shape(self, rows):
        return [rows, self.model.source_shape("activation")[-1]]

    def terms(self, inputs, targets):
        images = inputs["images"]
        logits = self.model.logits_of(images)
        return [images, tf.nn.relu(inputs["activation"]), targets,
                tf.reduce_sum(targets * logits, axis=1)]

    @staticmethod
    def _min_max(maps):
        low = tf.reduce_min(maps, axis=[1, 2], keepdims=True)
        spread = tf.reduce_max(maps, axis=[1, 2], keepdims=True) - low
        return (maps - low) / tf.where(spread > 0, spread, tf.ones_like(spread))

    @staticmethod
    def _saliency(features, value):
        return tf.einsum("nhwc,nc->nhw", features, tf.nn.softmax(value, axis=1))

    def row_losses(self, terms, value):
        images, features, weights, original = terms
        size = self.model.input_shape[:2]
        mask = self._min_max(tf.image.resize(self._saliency(features, value)[..., None], size,
                                             method="bilinear")[..., 0])
        logits = self.model.logits_of(images * mask[..., None])
        return original - tf.reduce_sum(weights * logits, axis=1)

    def heatmaps(self, terms, value):
        return self._min_max(self._saliency(terms[1], value))


def head_for(model, caf_variant, cache_activation=True, precompute_head=True):
    """The fastest head that gives `model`'s loss: a precomputed head where the model's head
    allows one (with cache_activation and precompute_head), else the network's layers."""
    if cache_activation and precompute_head and LinearHead.applies(model):
        return LinearHead(model, caf_variant)
    if cache_activation and precompute_head and ReluHead.applies(model, caf_variant):
        return ReluHead(model, caf_variant)
    return NetworkHead(model, caf_variant, cache_activation)
