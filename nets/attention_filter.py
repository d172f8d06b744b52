"""The L2-CAF attention filter as the networks take it: a gated spatial filter at one end point.

Every network here takes `attention`, a callable `attention(end_point, net) -> net` that it
calls after each end point with a spatial feature map (None: no filter anywhere). An
`AttentionFilter` is that callable for one end point: with its boolean gate open, row i of
the end point's map is multiplied by the filter's row i, broadcast over channels; with the
gate closed the map passes through unchanged (exactly).

The caller makes the filter variable and the gate (`AttentionFilter(end_point, atten_var,
atten_var_gate, normalize)`), or lets the filter make them when the network reaches the end
point and the map's size is known (`AttentionFilter.create`), as the original L2-CAF code
did: then they are `<end point>/atten_var` and `<end point>/atten_var_gate` in the
network's scope, in no checkpoint. The filter's constraint (unit L2 norm, softmax, a
Gaussian) is the caller's `normalize`: the networks only multiply.
"""
from nets.tf_slim_compat import tf

FILTER_COLLECTION = "l2caf_attention_filters"


def apply(attention, end_point, net):
    """What the networks call after each spatial end point: `attention(end_point, net)`, or
    `net` itself without attention."""
    return net if attention is None else attention(end_point, net)


class AttentionFilter(object):
    """A gated filter at `end_point`: net * normalize(atten_var)[..., None] when
    `atten_var_gate` is open, net when it is closed.

    atten_var: the raw filter, one row per image of the batch (the first rows serve a
    smaller batch). atten_var_gate: a boolean variable or tensor, or the Python constant
    True for a filter that is always on. normalize: raw filter -> [rows, H, W] multiplier
    (None: the raw filter is the multiplier).
    After the network is built: `activation` is the end point's map before the filter and
    `output` the map after it (both None if the network never reached the end point).
    """

    def __init__(self, end_point, atten_var, atten_var_gate, normalize=None):
        self.end_point = end_point
        self.atten_var = atten_var
        self.atten_var_gate = atten_var_gate
        self.normalize = normalize or (lambda raw: raw)
        self.activation = self.output = None

    def __call__(self, end_point, net):
        if end_point != self.end_point:
            return net
        self.activation = net
        self.output = self._filtered(net)
        return self.output

    def _filtered(self, net):
        factor = self.normalize(self.atten_var)

        def filtered():
            return net * tf.cast(factor[:tf.shape(net)[0], :, :, None], net.dtype)

        if self.atten_var_gate is True:
            return filtered()
        output = tf.cond(self.atten_var_gate, filtered, lambda: tf.identity(net))
        output.set_shape(net.shape)
        return output

    @classmethod
    def create(cls, end_point, filter_shape, normalize=None):
        """A filter whose variable and gate are made when the network reaches `end_point`:
        atten_var of shape filter_shape(height, width) of the end point's map, drawn from
        N(0, 1), and atten_var_gate, closed. Both are in FILTER_COLLECTION, not trainable."""
        return _CreatedAttentionFilter(end_point, filter_shape, normalize)


class _CreatedAttentionFilter(AttentionFilter):
    def __init__(self, end_point, filter_shape, normalize):
        super(_CreatedAttentionFilter, self).__init__(end_point, None, None, normalize)
        self.filter_shape = filter_shape

    def _filtered(self, net):
        collections = [tf.compat.v1.GraphKeys.GLOBAL_VARIABLES, FILTER_COLLECTION]
        with tf.compat.v1.variable_scope(self.end_point):
            self.atten_var = tf.compat.v1.get_variable(
                "atten_var", self.filter_shape(net.shape[1], net.shape[2]), tf.float32,
                initializer=tf.compat.v1.random_normal_initializer(), trainable=False,
                collections=collections)
            self.atten_var_gate = tf.compat.v1.get_variable(
                "atten_var_gate", [], tf.bool, trainable=False, collections=collections,
                initializer=tf.compat.v1.constant_initializer(False))
            return super(_CreatedAttentionFilter, self)._filtered(net)
