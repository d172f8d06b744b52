"""What the library knows about each network: its definition in nets/, image size and
preprocessing, class numbering, last conv layer, public checkpoint, and the head after that
layer (which decides the loss shortcuts of l2caf.heads and whether CAM applies).

No TensorFlow here: the definitions are named ("module:function") and imported only when a
model is built, so that configuration checks and the evaluation stay light.
"""
import collections
import dataclasses
import importlib
from typing import Optional

from l2caf.errors import ConfigError

LinearHead = collections.namedtuple("LinearHead", ["logits_scope"])
LinearHead.__doc__ = """After the last conv layer: a spatial mean, then a linear layer (the
1x1 conv at `logits_scope`): the logits are linear in the filter."""

ReluHead = collections.namedtuple("ReluHead", ["batch_norm_scope", "batch_norm_epsilon",
                                               "logits_scope"])
ReluHead.__doc__ = """After the last conv layer: batch norm (at `batch_norm_scope`; its epsilon
is the definition's constant named by `batch_norm_epsilon`, "module:NAME"), ReLU, a spatial
mean, then the linear layer at `logits_scope`."""


@dataclasses.dataclass(frozen=True)
class Network:
    """One network. definition and arg_scope: "module:function" of nets/; options: keyword
    arguments of the definition. preprocessing: 'inception' (x / 127.5 - 1) or
    'imagenet_mean_std'. num_classes: outputs of the public checkpoint (None: any, read from
    the checkpoint). label_offset: output index of class id 0 (1 for the 1001-class slim
    checkpoints, whose output 0 is background). checkpoint_file, url: the public checkpoint
    (url empty: none is published). scope: the network's variable scope (the checkpoint's
    top scope). head: LinearHead, ReluHead or None."""
    name: str
    scope: str
    definition: str
    arg_scope: str
    preprocessing: str
    last_conv: str
    image_size: int = 224
    num_classes: Optional[int] = None
    label_offset: int = 0
    checkpoint_file: str = ""
    url: str = ""
    head: object = None
    options: dict = dataclasses.field(default_factory=dict)



def resolve(name):
    """The object named "module:name" (imports the module)."""
    module, attribute = name.split(":")
    return getattr(importlib.import_module(module), attribute)


_SLIM = "http://download.tensorflow.org/models/"
# pudae/tensorflow-densenet's archives live on Google Drive (tf-densenet<depth>.tar.gz).
_DRIVE = "https://drive.google.com/file/d/%s/view"
_DENSENET_HEAD = ReluHead("final_block/BatchNorm", "nets.densenet:BATCH_NORM_EPSILON",
                          "logits")

NETWORKS = collections.OrderedDict((network.name, network) for network in [
    Network("inception_v1", "InceptionV1", "nets.inception_v1:inception_v1",
            "nets.inception_v1:inception_v1_arg_scope", "inception", "Mixed_5c",
            num_classes=1001, label_offset=1, checkpoint_file="inception_v1.ckpt",
            url=_SLIM + "inception_v1_2016_08_28.tar.gz",
            head=LinearHead("Logits/Conv2d_0c_1x1")),
] + [
    Network(name, name, "nets.resnet_v2:" + name, "nets.resnet_v2:resnet_arg_scope", "inception",
            "postnorm", num_classes=1001, label_offset=1, checkpoint_file=name + ".ckpt",
            url=_SLIM + name + "_2017_04_14.tar.gz", head=LinearHead("logits"))
    for name in ("resnet_v2_50", "resnet_v2_101", "resnet_v2_152")
] + [
    Network(name, name, "nets.densenet:" + name, "nets.densenet:densenet_arg_scope",
            "imagenet_mean_std", last_conv, num_classes=1000,
            checkpoint_file="tf-%s.ckpt" % name, url=_DRIVE % drive_id, head=_DENSENET_HEAD)
    for name, last_conv, drive_id in [
        ("densenet121", "dense_block4/conv_block16", "0B_fUSpodN0t0eW1sVk1aeWREaDA"),
        ("densenet161", "dense_block4/conv_block24", "0B_fUSpodN0t0NmZvTnZZa2plaHc"),
        ("densenet169", "dense_block4/conv_block32", "0B_fUSpodN0t0TDB5Ti1PeTZMM2c"),
    ]
] + [
    # The demo model: a narrow, shallow DenseNet trained on the synthetic shapes. Two dense
    # blocks give a stride of 8: a 21x21 last conv map at 168x168 (fine enough for tight
    # boxes, and odd, so the gauss filter works there too), small enough to train on a CPU.
    Network("demo_densenet", "demo_densenet", "nets.densenet:densenet",
            "nets.densenet:densenet_arg_scope", "imagenet_mean_std", "dense_block2/conv_block2",
            image_size=168,
            checkpoint_file="demo_densenet.ckpt", head=_DENSENET_HEAD,
            options=dict(reduction=0.5, growth_rate=16, num_filters=24, num_layers=(2, 2))),
])


# The Keras demo model's file (scripts/train_demo_model.py --kind keras; configs/demo_keras.yaml),
# beside the slim one's checkpoint_file above.
KERAS_DEMO_FILE = "demo_keras.keras"


def get_network(name):
    """The Network called `name`; a ConfigError listing the known ones otherwise."""
    try:
        return NETWORKS[name]
    except KeyError:
        raise ConfigError("unknown network %r; known networks: %s"
                          % (name, ", ".join(NETWORKS))) from None
