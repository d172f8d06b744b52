"""Import tf-slim on current TensorFlow, quietly.

Every module of this project takes `tf` and `slim` from here, so that the two fixes
below happen once, before tf-slim is imported anywhere:

* TensorFlow is noisy on import and when it first looks for devices (session creation:
  "failed call to cuInit" on machines without a GPU): its C++ lines (oneDNN, CUDA, absl)
  ignore TF_CPP_MIN_LOG_LEVEL on current releases, so both run with the process's stderr
  sent to /dev/null (`quiet_stderr`). Set L2CAF_TF_VERBOSE=1 to see them. Python errors
  are unaffected.
* On TF >= 2.16, `slim.batch_norm` builds a `tf.compat.v1.layers` layer, and TensorFlow
  looks it up under `tf_keras.legacy_tf_layers`, a module path that tf-keras moved to
  `tf_keras.src.legacy_tf_layers`. We register the moved modules under the old names.
"""
import contextlib
import importlib
import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def quiet_stderr():
    """Sends what C++ code writes to the process's stderr to /dev/null meanwhile (nothing
    is hidden with L2CAF_TF_VERBOSE=1)."""
    if os.environ.get("L2CAF_TF_VERBOSE") == "1":
        yield
        return
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(devnull)


with quiet_stderr():
    tf = importlib.import_module("tensorflow")

tf.get_logger().setLevel("ERROR")


def _alias_tf_keras_legacy_layers():
    """Make `tf_keras.legacy_tf_layers[.x]` importable where tf-keras hides it in `src`."""
    try:
        importlib.import_module("tf_keras.legacy_tf_layers")
        return
    except ImportError:
        pass
    legacy = importlib.import_module("tf_keras.src.legacy_tf_layers")
    sys.modules["tf_keras.legacy_tf_layers"] = legacy
    for name in ("base", "core", "convolutional", "normalization", "pooling",
                 "variable_scope_shim"):
        try:
            sys.modules["tf_keras.legacy_tf_layers." + name] = importlib.import_module(
                "tf_keras.src.legacy_tf_layers." + name)
        except ImportError:  # not every tf-keras release has every submodule
            continue


_alias_tf_keras_legacy_layers()

import tf_slim as slim  # noqa: E402

# tf-slim builds tf.compat.v1.layers with `layer.apply`, which warns on every layer.
warnings.filterwarnings("ignore", message="`layer.apply` is deprecated")

__all__ = ["tf", "slim", "quiet_stderr"]
