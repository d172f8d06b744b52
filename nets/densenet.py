"""DenseNet (Huang et al., https://arxiv.org/abs/1608.06993) in tf-slim, with L2-CAF filters.

The variables are those of pudae/tensorflow-densenet's public checkpoints (for example
`tf-densenet161.ckpt`: scope `densenet161`, `conv1`, `dense_block1/conv_block1/x1/...`,
`transition_block1/blk/...`, `final_block/BatchNorm`, `logits`). Build the network inside
`densenet_arg_scope()`: it supplies the conventions those checkpoints were trained with
(convolutions without biases or activation, batch norm with a learned scale).

DenseNet is pre-activation: every convolution is preceded by its own BN + ReLU. The output
of a conv block is therefore the raw concatenation of its input and its new feature maps,
and a filter at a conv block multiplies that concatenation before the next BN. At the last
conv block (dense_block4/conv_block24 in DenseNet-161) that BN is final_block's: the
filtered map goes through BN, ReLU, a global mean and the 1x1 `logits` convolution.

End points (names relative to the network scope, where pudae's are full scope names; all but
the last three can take a filter):
  conv1                  the stem: 7x7/2 convolution, BN, ReLU
  pool1                  3x3/2 max pool
  dense_blockB/conv_blockL   each conv block's output (where the original L2-CAF put filters)
  dense_blockB           each dense block's output
  transition_blockB      each transition's output (after its 2x2 average pool)
  final_block            BN + ReLU after the last dense block
  global_pool            its spatial mean, [N, 1, 1, C]
  PreLogits              the same as [N, C]
  Logits, Predictions    [N, num_classes] (absent when num_classes is 0 or None)
"""
import collections

from nets import attention_filter
from nets.tf_slim_compat import slim, tf

DENSENET121_LAYERS = (6, 12, 24, 16)
DENSENET161_LAYERS = (6, 12, 36, 24)
DENSENET169_LAYERS = (6, 12, 32, 32)
# Of every batch norm (densenet_arg_scope), the final block's included: the library reads it
# to compute that batch norm outside the network.
BATCH_NORM_EPSILON = 1.1e-5


def _conv_block_name(block, layer):
    return "dense_block%d/conv_block%d" % (block, layer)


@slim.add_arg_scope
def _bn_relu_conv(inputs, num_outputs, kernel_size, dropout_rate=None, scope=None):
    """A pre-activation convolution: BN, ReLU, convolution, then dropout if asked for."""
    with tf.compat.v1.variable_scope(scope):
        net = tf.nn.relu(slim.batch_norm(inputs))
        net = slim.conv2d(net, num_outputs, kernel_size)
        if dropout_rate:
            net = slim.dropout(net, keep_prob=1.0 - dropout_rate)
    return net


def _conv_block(inputs, growth_rate, scope):
    """Adds growth_rate feature maps (after a 4 * growth_rate bottleneck) to the inputs."""
    with tf.compat.v1.variable_scope(scope):
        net = _bn_relu_conv(inputs, 4 * growth_rate, 1, scope="x1")
        net = _bn_relu_conv(net, growth_rate, 3, scope="x2")
        return tf.concat([inputs, net], axis=3)


def _transition_block(inputs, compression, scope):
    """Keeps a fraction `compression` of the channels and halves the resolution."""
    with tf.compat.v1.variable_scope(scope):
        net = _bn_relu_conv(inputs, int(inputs.shape[3] * compression), 1, scope="blk")
        return slim.avg_pool2d(net, 2)


def densenet(inputs, num_classes=1000, reduction=0.5, growth_rate=48, num_filters=96,
             num_layers=DENSENET161_LAYERS, dropout_rate=None, is_training=False, reuse=None,
             scope="densenet", attention=None):
    """DenseNet-BC with any number of dense blocks, and optional attention filters.

    Args:
      inputs: [N, H, W, 3] images (a fixed H and W where filters are inserted).
      num_classes: number of logits; 0 or None returns the [N, C] pre-logits instead.
      reduction: fraction of the channels each transition block drops.
      growth_rate: feature maps added by each conv block.
      num_filters: output channels of the stem convolution.
      num_layers: number of conv blocks of each dense block; a transition block follows
        every dense block but the last.
      dropout_rate: dropout after every convolution of the blocks when training; None: none.
      is_training: batch norm (and dropout) in training mode.
      reuse: whether to reuse the variables of `scope`.
      scope: the network's variable scope, the checkpoint's prefix.
      attention: called as attention(end_point, net) after each spatial end point (an
        `attention_filter.AttentionFilter`), or None for no filters.

    Returns:
      logits ([N, num_classes]) and the dict of end points described in the module doc.
    """
    end_points = collections.OrderedDict()

    def add_end_point(name, net):
        net = attention_filter.apply(attention, name, net)
        end_points[name] = net
        return net

    with tf.compat.v1.variable_scope(scope, "densenet", [inputs], reuse=reuse):
        with slim.arg_scope([slim.batch_norm, slim.dropout], is_training=is_training), \
                slim.arg_scope([_bn_relu_conv], dropout_rate=dropout_rate):
            net = slim.conv2d(inputs, num_filters, 7, stride=2, scope="conv1")
            # The checkpoints keep the stem's batch norm at the network scope, not in conv1.
            net = add_end_point("conv1", tf.nn.relu(slim.batch_norm(net)))
            net = add_end_point("pool1", slim.max_pool2d(net, 3, stride=2, padding="SAME"))

            for block, block_layers in enumerate(num_layers, 1):
                for layer in range(1, block_layers + 1):
                    conv_block = _conv_block_name(block, layer)
                    net = add_end_point(conv_block, _conv_block(net, growth_rate, conv_block))
                net = add_end_point("dense_block%d" % block, net)
                if block < len(num_layers):
                    transition = "transition_block%d" % block
                    net = add_end_point(
                        transition, _transition_block(net, 1.0 - reduction, transition))

            with tf.compat.v1.variable_scope("final_block"):
                net = tf.nn.relu(slim.batch_norm(net))
            net = add_end_point("final_block", net)
            net = add_end_point(
                "global_pool", tf.reduce_mean(net, [1, 2], keepdims=True, name="global_pool"))
            # The end points from here on are vectors, where no spatial filter can go.
            end_points["PreLogits"] = tf.squeeze(net, [1, 2], name="PreLogits")
            if not num_classes:
                return end_points["PreLogits"], end_points
            logits = slim.conv2d(net, num_classes, 1, activation_fn=None, normalizer_fn=None,
                                 biases_initializer=tf.compat.v1.zeros_initializer(),
                                 scope="logits")
            logits = tf.squeeze(logits, [1, 2], name="SpatialSqueeze")
            end_points["Logits"] = logits
            end_points["Predictions"] = slim.softmax(logits, scope="Predictions")
    return logits, end_points


def densenet121(inputs, num_classes=1000, dropout_rate=None, is_training=False, reuse=None,
                scope="densenet121", attention=None):
    """DenseNet-121: growth rate 32, 64 stem filters."""
    return densenet(inputs, num_classes, growth_rate=32, num_filters=64,
                    num_layers=DENSENET121_LAYERS, dropout_rate=dropout_rate,
                    is_training=is_training, reuse=reuse, scope=scope, attention=attention)


densenet121.default_image_size = 224


def densenet161(inputs, num_classes=1000, dropout_rate=None, is_training=False, reuse=None,
                scope="densenet161", attention=None):
    """DenseNet-161: growth rate 48, 96 stem filters (pudae's tf-densenet161.ckpt)."""
    return densenet(inputs, num_classes, growth_rate=48, num_filters=96,
                    num_layers=DENSENET161_LAYERS, dropout_rate=dropout_rate,
                    is_training=is_training, reuse=reuse, scope=scope, attention=attention)


densenet161.default_image_size = 224


def densenet169(inputs, num_classes=1000, dropout_rate=None, is_training=False, reuse=None,
                scope="densenet169", attention=None):
    """DenseNet-169: growth rate 32, 64 stem filters."""
    return densenet(inputs, num_classes, growth_rate=32, num_filters=64,
                    num_layers=DENSENET169_LAYERS, dropout_rate=dropout_rate,
                    is_training=is_training, reuse=reuse, scope=scope, attention=attention)


densenet169.default_image_size = 224


def densenet_arg_scope(weight_decay=1e-4, batch_norm_decay=0.99,
                       batch_norm_epsilon=BATCH_NORM_EPSILON):
    """The layer defaults of pudae's DenseNets (NHWC only: the filters assume it)."""
    with slim.arg_scope([slim.conv2d],
                        weights_regularizer=slim.l2_regularizer(weight_decay),
                        activation_fn=None,
                        biases_initializer=None):
        with slim.arg_scope([slim.batch_norm], scale=True, decay=batch_norm_decay,
                            epsilon=batch_norm_epsilon) as arg_scope:
            return arg_scope
