"""keras.applications networks by name: `checkpoint: keras.applications.ResNet50`.

The name is any application Keras 3 exports (ResNet50, MobileNetV2, EfficientNetB0,
ConvNeXtTiny, ...). The model is built with its ImageNet weights (Keras downloads them once
into its cache, $KERAS_HOME/models, by default ~/.keras/models), and the preprocessing is
the application's own: read from its family's `preprocess_input`, which is one of
keras.applications' modes (caffe: ResNet, VGG; tf: ResNetV2, MobileNet V1/V2, Inception,
Xception, NASNet; torch: DenseNet) or does nothing because the model rescales inside itself
(EfficientNet, EfficientNetV2, ConvNeXt, MobileNetV3): l2caf's 'none'.
"""
import collections
import hashlib
import os
import re
import sys
from typing import Any, Callable, List, Optional, Tuple

import numpy as np

from l2caf import preprocessing
from l2caf.errors import CheckpointError, ConfigError
from nets.tf_slim_compat import quiet_stderr

PREFIX = "keras.applications."
# The size an application without a fixed input (MobileNetV3) is explained at unless
# image_size says otherwise: the ImageNet size its weights were trained at.
TRAINED_SIZE = 224

Application = collections.namedtuple("Application", ["model", "preprocessing", "image_size"])
Application.__doc__ = """A keras.applications network built by name: the Keras model, its
preprocessing (a name of l2caf.preprocessing), and the image size to explain it at (0: the
model's own)."""


def is_application(checkpoint: str) -> bool:
    """Whether a checkpoint names a keras.applications network."""
    return str(checkpoint).startswith(PREFIX)


def names() -> List[str]:
    """The networks keras.applications exports, sorted."""
    import keras
    return sorted(name for name in dir(keras.applications)
                  if name[:1].isupper() and callable(getattr(keras.applications, name)))


def resolve(checkpoint: str) -> Tuple[Callable[..., Any], str]:
    """(the keras.applications function, its preprocessing: a name of l2caf.preprocessing)
    of `checkpoint` = keras.applications.NAME; a CheckpointError for an unknown name."""
    import keras
    name = checkpoint[len(PREFIX):]
    if name not in names():
        raise CheckpointError("%s is not a keras.applications network; they are: %s"
                              % (checkpoint, ", ".join(names())))
    function = getattr(keras.applications, name)
    return function, _preprocessing_of(sys.modules[function.__module__].preprocess_input)


def _preprocessing_of(preprocess_input):
    """The mode of l2caf.preprocessing that equals `preprocess_input` on a probe image."""
    probe = np.random.default_rng(0).uniform(0, 255, (1, 2, 2, 3)).astype(np.float32)
    expected = np.asarray(preprocess_input(probe.copy()), np.float32)
    for mode in preprocessing.KERAS_PREPROCESSING:
        if np.allclose(preprocessing.preprocess(probe, mode), expected, atol=1e-4):
            return mode
    raise CheckpointError("the application's preprocess_input is none of %s"
                          % ", ".join(preprocessing.KERAS_PREPROCESSING))


def cache_folder() -> str:
    """Where Keras keeps downloaded weights: $KERAS_HOME/models, by default
    ~/.keras/models (/tmp/.keras/models when the home folder is not writable)."""
    home = os.environ.get("KERAS_HOME")
    if not home:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    return os.path.join(home, "models")


def build(checkpoint: str, preprocess: str = "none",
          weights: Optional[str] = "imagenet") -> Application:
    """The Application of `checkpoint` = keras.applications.NAME, with `weights`
    ('imagenet', None for random ones, or a weights file). preprocess: a setting given
    beside it ('none': the application's own; another one that differs is a ConfigError).
    Offline without the weights in Keras's cache, a CheckpointError says how to give
    them."""
    function, own = resolve(checkpoint)
    if preprocess not in ("none", own):
        raise ConfigError("%s takes preprocess %s (its own preprocess_input), not %s; leave "
                          "preprocess out" % (checkpoint, own, preprocess))
    try:
        with quiet_stderr():
            model = function(weights=weights)
    except Exception as error:  # Keras's own errors: a failed download, a bad weights file
        message = " ".join(str(error).split())
        failed_download = re.search(r"URL fetch failure on (https?://\S+?):? ", message)
        if failed_download:
            url = failed_download.group(1)
            raise CheckpointError(
                "cannot download the ImageNet weights of %s (no internet?): put %s (from %s) "
                "in %s, or save %s(weights=\"path.h5\") as a .keras file and give that file "
                "as checkpoint" % (checkpoint, url.rsplit("/", 1)[-1], url, cache_folder(),
                                   checkpoint)) from None
        raise CheckpointError("cannot build %s: %s" % (checkpoint, message[:300])) from None
    fixed = None not in tuple(model.inputs[0].shape)[1:3]
    return Application(model, own, 0 if fixed else TRAINED_SIZE)


def weights_sha256(keras_model: Any) -> str:
    """The SHA-256 of a Keras model's weights (their values, in order): what a run folder records
    of a network built by name."""
    digest = hashlib.sha256()
    for weights in keras_model.get_weights():
        digest.update(np.ascontiguousarray(weights).tobytes())
    return digest.hexdigest()
