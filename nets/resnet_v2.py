"""ResNet V2 (pre-activation) 50, 101 and 152, with L2-CAF attention filters.

Structure and variable names equal tf-slim's `resnet_v2`, so the public slim checkpoints
(`resnet_v2_50_2017_04_14` and its 101/152 siblings) restore into these networks:

  Kaiming He, Xiangyu Zhang, Shaoqing Ren, Jian Sun,
  Identity Mappings in Deep Residual Networks. arXiv:1603.05027

As in slim, a block subsamples in its last unit (not its first), and with `output_stride`
the later units switch to atrous convolution to keep the feature map denser.

End points, short names relative to the network scope (tf-slim's are the full scope names,
such as 'resnet_v2_50/block1/unit_1/bottleneck_v2'): 'conv1', 'pool1', every unit
'block<b>/unit_<u>', every block 'block<b>', 'postnorm' (the final BN + ReLU: the last conv
feature map, 7x7x2048 at 224x224), 'global_pool', 'PreLogits', 'Logits', 'Predictions'.
Every spatial end point (up to 'global_pool') can take an attention filter.

Typical use:

  with slim.arg_scope(resnet_v2.resnet_arg_scope()):
    logits, end_points = resnet_v2.resnet_v2_50(images, attention=AttentionFilter.create(
        'postnorm', lambda height, width: [1, height, width]))
"""
import collections

from nets import attention_filter
from nets.tf_slim_compat import slim, tf
from tf_slim.nets import resnet_utils

# The root block (conv1 and pool1) subsamples by this factor before the residual blocks.
ROOT_BLOCK_STRIDE = 4

Block = collections.namedtuple('Block', ['scope', 'base_depth', 'num_units', 'stride'])
Block.__doc__ = """A block of bottleneck units of depth 4 * base_depth.

Every unit's bottleneck convolutions have base_depth channels; the last unit has stride
`stride` and the others 1."""


def resnet_arg_scope(weight_decay=1e-4,
                     batch_norm_decay=0.997,
                     batch_norm_epsilon=1e-5,
                     batch_norm_scale=True):
    """Defaults for the ResNet layers: conv + BN + ReLU, L2 weight decay.

    The BN values suit the public checkpoints (converted from He et al.'s models).
    """
    batch_norm_params = {
        'decay': batch_norm_decay,
        'epsilon': batch_norm_epsilon,
        'scale': batch_norm_scale,
        'updates_collections': tf.compat.v1.GraphKeys.UPDATE_OPS,
    }
    with slim.arg_scope(
            [slim.conv2d],
            weights_regularizer=slim.l2_regularizer(weight_decay),
            weights_initializer=slim.variance_scaling_initializer(),
            activation_fn=tf.nn.relu,
            normalizer_fn=slim.batch_norm,
            normalizer_params=batch_norm_params):
        with slim.arg_scope([slim.batch_norm], **batch_norm_params):
            # SAME padding for pool1 gives 56x56 after it at 224x224, as in the checkpoints.
            with slim.arg_scope([slim.max_pool2d], padding='SAME') as arg_sc:
                return arg_sc


@slim.add_arg_scope
def bottleneck(inputs, depth, depth_bottleneck, stride, rate=1, scope=None):
    """Pre-activation bottleneck unit: BN + ReLU first, then 1x1, 3x3, 1x1 convolutions.

    The shortcut is the input itself (subsampled by `stride`) when the depth is unchanged,
    else a 1x1 convolution of the pre-activation. Returns shortcut + residual, without a
    final BN or ReLU (the next unit's pre-activation, or 'postnorm', does that).
    """
    with tf.compat.v1.variable_scope(scope, 'bottleneck_v2', [inputs]):
        depth_in = inputs.shape[-1]
        preact = slim.batch_norm(inputs, activation_fn=tf.nn.relu, scope='preact')
        if depth == depth_in:
            shortcut = resnet_utils.subsample(inputs, stride, 'shortcut')
        else:
            shortcut = slim.conv2d(preact, depth, [1, 1], stride=stride, normalizer_fn=None,
                                   activation_fn=None, scope='shortcut')
        residual = slim.conv2d(preact, depth_bottleneck, [1, 1], stride=1, scope='conv1')
        residual = resnet_utils.conv2d_same(residual, depth_bottleneck, 3, stride, rate=rate,
                                            scope='conv2')
        residual = slim.conv2d(residual, depth, [1, 1], stride=1, normalizer_fn=None,
                               activation_fn=None, scope='conv3')
        return shortcut + residual


def resnet_v2(inputs,
              blocks,
              num_classes=1001,
              is_training=False,
              global_pool=True,
              output_stride=None,
              spatial_squeeze=True,
              reuse=None,
              scope='resnet_v2',
              attention=None):
    """Builds a ResNet V2 of the given blocks; see resnet_v2_50 for the other arguments.

    blocks: the residual `Block`s, in order (see resnet_v2_blocks).
    Returns (net, end_points): net is the logits, or without num_classes the features
    after 'postnorm' (and the global pool).
    Raises ValueError if output_stride cannot be reached by the blocks' strides.
    """
    if output_stride is not None and output_stride % ROOT_BLOCK_STRIDE != 0:
        raise ValueError('output_stride must be a multiple of %d' % ROOT_BLOCK_STRIDE)
    end_points = collections.OrderedDict()

    def add_end_point(name, net):
        net = attention_filter.apply(attention, name, net)
        end_points[name] = net
        return net

    with tf.compat.v1.variable_scope(scope, 'resnet_v2', [inputs], reuse=reuse):
        with slim.arg_scope([slim.batch_norm], is_training=is_training):
            # No BN or ReLU after conv1: the first unit's pre-activation applies them.
            with slim.arg_scope([slim.conv2d], activation_fn=None, normalizer_fn=None):
                net = resnet_utils.conv2d_same(inputs, 64, 7, stride=2, scope='conv1')
            net = add_end_point('conv1', net)
            net = slim.max_pool2d(net, [3, 3], stride=2, scope='pool1')
            net = add_end_point('pool1', net)

            # Strides are relative to the root block's output.
            target_stride = None if output_stride is None else output_stride // ROOT_BLOCK_STRIDE
            current_stride = 1
            rate = 1
            for block in blocks:
                for unit in range(1, block.num_units + 1):
                    stride = block.stride if unit == block.num_units else 1
                    unit_name = '%s/unit_%d' % (block.scope, unit)
                    if current_stride == target_stride:
                        # Dense enough: keep the resolution, dilate the later units instead.
                        unit_stride, unit_rate = 1, rate
                        rate *= stride
                    else:
                        unit_stride, unit_rate = stride, 1
                        current_stride *= stride
                    with tf.compat.v1.variable_scope(unit_name, values=[net]):
                        net = bottleneck(net, 4 * block.base_depth, block.base_depth,
                                         stride=unit_stride, rate=unit_rate)
                    net = add_end_point(unit_name, net)
                net = add_end_point(block.scope, net)
            if target_stride is not None and current_stride != target_stride:
                raise ValueError('output_stride %d cannot be reached' % output_stride)

            # The units end without BN and ReLU (pre-activation design), so apply them here.
            net = slim.batch_norm(net, activation_fn=tf.nn.relu, scope='postnorm')
            net = add_end_point('postnorm', net)
            if global_pool:
                net = tf.reduce_mean(net, [1, 2], name='pool5', keepdims=True)
                net = add_end_point('global_pool', net)

            # The head's end points have no spatial map, so they take no filter.
            if global_pool:
                end_points['PreLogits'] = tf.squeeze(net, [1, 2], name='PreLogits')
            if num_classes:
                net = slim.conv2d(net, num_classes, [1, 1], activation_fn=None,
                                  normalizer_fn=None, scope='logits')
                if spatial_squeeze:
                    net = tf.squeeze(net, [1, 2], name='SpatialSqueeze')
                end_points['Logits'] = net
                end_points['Predictions'] = slim.softmax(net, scope='predictions')
    return net, end_points


def resnet_v2_blocks(units_per_block):
    """The four blocks of ResNet V2 with these numbers of units: depths 256 to 2048."""
    return [
        Block('block1', base_depth=64, num_units=units_per_block[0], stride=2),
        Block('block2', base_depth=128, num_units=units_per_block[1], stride=2),
        Block('block3', base_depth=256, num_units=units_per_block[2], stride=2),
        Block('block4', base_depth=512, num_units=units_per_block[3], stride=1),
    ]


def resnet_v2_50(inputs,
                 num_classes=1001,
                 is_training=False,
                 global_pool=True,
                 output_stride=None,
                 spatial_squeeze=True,
                 reuse=None,
                 scope='resnet_v2_50',
                 attention=None):
    """ResNet-50 V2.

    inputs: [batch, height, width, 3] images, preprocessed to -1..1.
    num_classes: outputs of the logits layer (1001 for the slim checkpoints: 0 is
      background); None or 0 to stop after the features.
    is_training: whether batch norm uses batch statistics (and updates its averages).
    global_pool: average the last feature map to 1x1 before the logits.
    output_stride: ratio of input to 'postnorm' resolution (None: the nominal 32); smaller
      values use atrous convolution in the later units.
    spatial_squeeze: drop the 1x1 spatial axes of the logits.
    reuse: whether to reuse the variables of `scope`.
    scope: the variable scope, as in the checkpoint.
    attention: called as attention(end_point, net) after each spatial end point (an
      `attention_filter.AttentionFilter`), or None for no filters.
    Returns (logits, end_points).
    """
    return resnet_v2(inputs, resnet_v2_blocks([3, 4, 6, 3]), num_classes=num_classes,
                     is_training=is_training, global_pool=global_pool,
                     output_stride=output_stride, spatial_squeeze=spatial_squeeze,
                     reuse=reuse, scope=scope, attention=attention)


resnet_v2_50.default_image_size = 224


def resnet_v2_101(inputs,
                  num_classes=1001,
                  is_training=False,
                  global_pool=True,
                  output_stride=None,
                  spatial_squeeze=True,
                  reuse=None,
                  scope='resnet_v2_101',
                  attention=None):
    """ResNet-101 V2; see resnet_v2_50 for the arguments."""
    return resnet_v2(inputs, resnet_v2_blocks([3, 4, 23, 3]), num_classes=num_classes,
                     is_training=is_training, global_pool=global_pool,
                     output_stride=output_stride, spatial_squeeze=spatial_squeeze,
                     reuse=reuse, scope=scope, attention=attention)


resnet_v2_101.default_image_size = 224


def resnet_v2_152(inputs,
                  num_classes=1001,
                  is_training=False,
                  global_pool=True,
                  output_stride=None,
                  spatial_squeeze=True,
                  reuse=None,
                  scope='resnet_v2_152',
                  attention=None):
    """ResNet-152 V2; see resnet_v2_50 for the arguments."""
    return resnet_v2(inputs, resnet_v2_blocks([3, 8, 36, 3]), num_classes=num_classes,
                     is_training=is_training, global_pool=global_pool,
                     output_stride=output_stride, spatial_squeeze=spatial_squeeze,
                     reuse=reuse, scope=scope, attention=attention)


resnet_v2_152.default_image_size = 224
