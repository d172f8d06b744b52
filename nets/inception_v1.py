"""InceptionV1 (GoogLeNet with batch norm), as in tf-slim, with L2-CAF attention filters.

Szegedy et al., "Going deeper with convolutions", arXiv 1409.4842. The layers and variable
names are those of tf-slim's `inception_v1`, so the public TF-slim checkpoint
`inception_v1_2016_08_28` restores into this network. Any end point of the base
(`Conv2d_1a_7x7` ... `Mixed_5c`) can take an attention filter (see nets.attention_filter).

End points: those of tf-slim, except that the pooled features are always
'AvgPool_0a_7x7' (tf-slim names them 'global_pool' with global_pool=True) and that
'PreLogits' (the pooled features as [batch, channels]) is added.
"""
import functools

from nets import attention_filter
from nets.tf_slim_compat import tf, slim


def _mixed_block(inputs, depths, scope, branch_2_conv_scope='Conv2d_0b_3x3'):
    """An Inception module: four parallel branches concatenated along channels.

    depths: output channels of (Branch_0 1x1, Branch_1 1x1, Branch_1 3x3, Branch_2 1x1,
    Branch_2 3x3, Branch_3 1x1 after a 3x3 max pool). Strides are 1 and padding SAME
    (the arg scope of `inception_v1`), so every branch keeps the spatial size.
    branch_2_conv_scope: the name of Branch_2's 3x3 conv, which the checkpoint spells
    'Conv2d_0a_3x3' in Mixed_5b.
    """
    (branch_0_depth, branch_1_reduce_depth, branch_1_depth,
     branch_2_reduce_depth, branch_2_depth, branch_3_depth) = depths
    with tf.compat.v1.variable_scope(scope):
        with tf.compat.v1.variable_scope('Branch_0'):
            branch_0 = slim.conv2d(inputs, branch_0_depth, [1, 1], scope='Conv2d_0a_1x1')
        with tf.compat.v1.variable_scope('Branch_1'):
            branch_1 = slim.conv2d(inputs, branch_1_reduce_depth, [1, 1], scope='Conv2d_0a_1x1')
            branch_1 = slim.conv2d(branch_1, branch_1_depth, [3, 3], scope='Conv2d_0b_3x3')
        with tf.compat.v1.variable_scope('Branch_2'):
            branch_2 = slim.conv2d(inputs, branch_2_reduce_depth, [1, 1], scope='Conv2d_0a_1x1')
            branch_2 = slim.conv2d(branch_2, branch_2_depth, [3, 3], scope=branch_2_conv_scope)
        with tf.compat.v1.variable_scope('Branch_3'):
            branch_3 = slim.max_pool2d(inputs, [3, 3], scope='MaxPool_0a_3x3')
            branch_3 = slim.conv2d(branch_3, branch_3_depth, [1, 1], scope='Conv2d_0b_1x1')
        return tf.concat([branch_0, branch_1, branch_2, branch_3], 3)


# Factories for the table below: each returns a layer called as layer(net, scope=...).
def _conv(depth, kernel_size, **kwargs):
    return functools.partial(slim.conv2d, num_outputs=depth, kernel_size=kernel_size, **kwargs)


def _max_pool(kernel_size):
    return functools.partial(slim.max_pool2d, kernel_size=kernel_size, stride=2)


def _mixed(depths, **kwargs):
    return functools.partial(_mixed_block, depths=depths, **kwargs)


# The base, in order: each end point and its layer, called as layer(net, scope=end_point).
_BASE_LAYERS = (
    ('Conv2d_1a_7x7', _conv(64, [7, 7], stride=2)),
    ('MaxPool_2a_3x3', _max_pool([3, 3])),
    ('Conv2d_2b_1x1', _conv(64, [1, 1])),
    ('Conv2d_2c_3x3', _conv(192, [3, 3])),
    ('MaxPool_3a_3x3', _max_pool([3, 3])),
    ('Mixed_3b', _mixed((64, 96, 128, 16, 32, 32))),
    ('Mixed_3c', _mixed((128, 128, 192, 32, 96, 64))),
    ('MaxPool_4a_3x3', _max_pool([3, 3])),
    ('Mixed_4b', _mixed((192, 96, 208, 16, 48, 64))),
    ('Mixed_4c', _mixed((160, 112, 224, 24, 64, 64))),
    ('Mixed_4d', _mixed((128, 128, 256, 24, 64, 64))),
    ('Mixed_4e', _mixed((112, 144, 288, 32, 64, 64))),
    ('Mixed_4f', _mixed((256, 160, 320, 32, 128, 128))),
    ('MaxPool_5a_2x2', _max_pool([2, 2])),
    ('Mixed_5b', _mixed((256, 160, 320, 32, 128, 128), branch_2_conv_scope='Conv2d_0a_3x3')),
    ('Mixed_5c', _mixed((384, 192, 384, 48, 128, 128))),
)


def inception_v1(inputs, num_classes=1001, is_training=False, dropout_keep_prob=0.8,
                 spatial_squeeze=True, reuse=None, scope='InceptionV1', global_pool=False,
                 attention=None):
    """InceptionV1 on `inputs` ([batch, height, width, 3]; 224x224 for the checkpoint).

    num_classes: outputs of the last 1x1 conv (1001 for the slim checkpoint: 0 = background).
    is_training: batch norm uses batch statistics and dropout is active.
    spatial_squeeze: logits are [batch, num_classes] rather than [batch, 1, 1, num_classes].
    reuse, scope: of the network's variable scope.
    global_pool: average the last feature map over all its positions instead of a 7x7
        window, so that images of any size give one prediction.
    attention: called as attention(end_point, net) after each end point of the base (an
        `attention_filter.AttentionFilter`), or None for no filters.

    Returns (logits, end_points). end_points maps each base end point (Conv2d_1a_7x7 ...
    Mixed_5c, after its filter) and 'AvgPool_0a_7x7' (the pooled features [batch, 1, 1, C],
    whichever pooling), 'PreLogits' (the same, [batch, C]), 'Logits' and 'Predictions'.
    """
    end_points = {}
    with tf.compat.v1.variable_scope(scope, 'InceptionV1', [inputs], reuse=reuse):
        with slim.arg_scope([slim.batch_norm, slim.dropout], is_training=is_training), \
                slim.arg_scope([slim.conv2d, slim.max_pool2d], stride=1, padding='SAME'):
            net = inputs
            for end_point, layer in _BASE_LAYERS:
                net = layer(net, scope=end_point)
                net = attention_filter.apply(attention, end_point, net)
                end_points[end_point] = net

            with tf.compat.v1.variable_scope('Logits'):
                if global_pool:
                    net = tf.reduce_mean(net, [1, 2], keepdims=True, name='global_pool')
                else:
                    net = slim.avg_pool2d(net, [7, 7], stride=1, scope='AvgPool_0a_7x7')
                end_points['AvgPool_0a_7x7'] = net
                end_points['PreLogits'] = tf.squeeze(net, [1, 2], name='PreLogits')
                net = slim.dropout(net, dropout_keep_prob, scope='Dropout_0b')
                logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None,
                                     normalizer_fn=None, scope='Conv2d_0c_1x1')
                if spatial_squeeze:
                    logits = tf.squeeze(logits, [1, 2], name='SpatialSqueeze')
                end_points['Logits'] = logits
                end_points['Predictions'] = slim.softmax(logits, scope='Predictions')
    return logits, end_points


inception_v1.default_image_size = 224


def inception_v1_arg_scope(weight_decay=4e-5, use_batch_norm=True, batch_norm_decay=0.9997,
                           batch_norm_epsilon=0.001):
    """The arg scope InceptionV1 was trained in: ReLU convs, batch norm, L2 weight decay.

    Batch norm has no scale (gamma), as in the checkpoint: a ReLU follows every batch norm,
    so the next conv's weights can take the scale.
    """
    batch_norm_params = {
        'decay': batch_norm_decay,
        'epsilon': batch_norm_epsilon,
        'updates_collections': tf.compat.v1.GraphKeys.UPDATE_OPS,
    }
    with slim.arg_scope([slim.conv2d, slim.fully_connected],
                        weights_regularizer=slim.l2_regularizer(weight_decay)):
        with slim.arg_scope([slim.conv2d],
                            weights_initializer=slim.variance_scaling_initializer(),
                            activation_fn=tf.nn.relu,
                            normalizer_fn=slim.batch_norm if use_batch_norm else None,
                            normalizer_params=batch_norm_params if use_batch_norm else {}) as sc:
            return sc
