"""Maps a network name to everything the project needs to know about it."""
import collections

from nets import densenet, inception_v1, resnet_v2
from nets.tf_slim_compat import slim, tf

NetworkSpec = collections.namedtuple("NetworkSpec", [
    "name", "network_fn", "arg_scope_fn", "preprocessing", "image_size", "num_classes",
    "label_offset", "last_conv_end_point", "default_attention_points", "checkpoint_file",
    "download_url", "linear_head_scope", "relu_head_scopes"])
NetworkSpec.__doc__ = """What the project knows about one network.

network_fn(inputs, num_classes, attention, is_training) -> (logits, end_points), inside
arg_scope_fn().
preprocessing: name of the input normalisation (see `preprocess`). num_classes: network
outputs (None: from the label list). label_offset: output index of class id 0 (1 for the
1001-class slim checkpoints, whose output 0 is background). linear_head_scope: scope of the
1x1 logits conv when the head after `last_conv_end_point` is a global mean followed by that
linear layer (its logits are then linear in the filter), else None. relu_head_scopes:
(batch norm scope, logits scope) when that head is batch norm, ReLU, global mean and a 1x1
conv (DenseNet), else None."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def preprocess(images, preprocessing):
    """RGB images, float 0..255, [N, H, W, 3] -> the network's input."""
    scaled = images / 255.0
    if preprocessing == "inception":
        return (scaled - 0.5) * 2.0
    if preprocessing == "imagenet_mean_std":
        return (scaled - tf.constant(IMAGENET_MEAN)) / tf.constant(IMAGENET_STD)
    raise ValueError("unknown preprocessing %r" % (preprocessing,))


# The demo model: a narrow, shallow DenseNet trained on the synthetic shapes data set.
# Two dense blocks give a stride of 8: a 21x21 last conv map at 168x168 input (fine enough
# for tight boxes, and odd, so the gauss filter works there too), small enough to train on
# a CPU in minutes.
DEMO_IMAGE_SIZE = 168
DEMO_DENSENET = dict(reduction=0.5, growth_rate=16, num_filters=24, num_layers=(2, 2))


def _network_fn(builder, **structure):
    """The uniform network_fn(inputs, num_classes, attention, is_training) of a builder."""
    def network_fn(inputs, num_classes, attention=None, is_training=False):
        return builder(inputs, num_classes=num_classes, attention=attention,
                       is_training=is_training, **structure)
    return network_fn


DENSENET_RELU_HEAD = ("final_block/BatchNorm", "logits")
_SLIM_CHECKPOINTS = "http://download.tensorflow.org/models/"
# pudae/tensorflow-densenet's archives live on Google Drive (tf-densenet<depth>.tar.gz).
_GOOGLE_DRIVE = "https://drive.google.com/file/d/%s/view"

NETWORKS = collections.OrderedDict((spec.name, spec) for spec in [
    NetworkSpec("inception_v1", _network_fn(inception_v1.inception_v1),
                inception_v1.inception_v1_arg_scope, "inception", 224, 1001, 1,
                inception_v1.LAST_CONV_END_POINT, inception_v1.DEFAULT_ATTENTION_POINTS,
                "inception_v1.ckpt", _SLIM_CHECKPOINTS + "inception_v1_2016_08_28.tar.gz",
                "Logits/Conv2d_0c_1x1", None),
] + [
    NetworkSpec(name, _network_fn(builder), resnet_v2.resnet_arg_scope, "inception", 224, 1001,
                1, resnet_v2.LAST_CONV_END_POINT, resnet_v2.DEFAULT_ATTENTION_POINTS,
                name + ".ckpt", _SLIM_CHECKPOINTS + name + "_2017_04_14.tar.gz", "logits",
                None)
    for name, builder in [("resnet_v2_50", resnet_v2.resnet_v2_50),
                          ("resnet_v2_101", resnet_v2.resnet_v2_101),
                          ("resnet_v2_152", resnet_v2.resnet_v2_152)]
] + [
    NetworkSpec(name, _network_fn(builder), densenet.densenet_arg_scope, "imagenet_mean_std", 224,
                1000, 0, densenet.last_conv_end_point(layers),
                densenet.default_attention_points(layers), checkpoint, url, None,
                DENSENET_RELU_HEAD)
    for name, builder, layers, checkpoint, url in [
        ("densenet121", densenet.densenet121, densenet.DENSENET121_LAYERS,
         "tf-densenet121.ckpt", _GOOGLE_DRIVE % "0B_fUSpodN0t0eW1sVk1aeWREaDA"),
        ("densenet161", densenet.densenet161, densenet.DENSENET161_LAYERS,
         "tf-densenet161.ckpt", _GOOGLE_DRIVE % "0B_fUSpodN0t0NmZvTnZZa2plaHc"),
        ("densenet169", densenet.densenet169, densenet.DENSENET169_LAYERS,
         "tf-densenet169.ckpt", _GOOGLE_DRIVE % "0B_fUSpodN0t0TDB5Ti1PeTZMM2c"),
    ]
] + [
    NetworkSpec("demo_densenet",
                _network_fn(densenet.densenet, scope="demo_densenet",
                             **DEMO_DENSENET),
                densenet.densenet_arg_scope, "imagenet_mean_std", DEMO_IMAGE_SIZE, None, 0,
                densenet.last_conv_end_point(DEMO_DENSENET["num_layers"]),
                densenet.default_attention_points(DEMO_DENSENET["num_layers"]),
                "demo_densenet.ckpt", "", None, DENSENET_RELU_HEAD),
])


class UnknownNetworkError(ValueError):
    pass


def get_network(name):
    """The NetworkSpec of `name`; an unknown name is an error listing the known ones."""
    try:
        return NETWORKS[name]
    except KeyError:
        raise UnknownNetworkError("unknown network %r; known networks: %s"
                                  % (name, ", ".join(NETWORKS))) from None


def build(spec, images, num_classes, attention=None, is_training=False):
    """Builds `spec`'s network on RGB `images` (float 0..255), for inference by default."""
    with slim.arg_scope(spec.arg_scope_fn()):
        return spec.network_fn(preprocess(images, spec.preprocessing), num_classes,
                               attention=attention, is_training=is_training)
