"""Saved Keras models, loaded safely: a model whose saved configuration holds Python code (a
Lambda layer, a lambda anywhere), which loading would run, is refused before Keras reads it,
in every format (.keras, .h5, SavedModel), unless it is trusted."""
import json
import os
import zipfile
from typing import Any, Optional

from l2caf.errors import CheckpointError
from nets.tf_slim_compat import quiet_stderr

TRUST_SWITCH = "trust_model: true (--trust_model true; in Python load_keras_model(path, " \
               "trust=True))"


def load_keras_model(path: str, trust: bool = False) -> Any:
    """The Keras model saved at `path` (a keras.Model, or a tf_keras one): a .keras file
    (Keras 3, else tf-keras), a .h5 file or a SavedModel folder (tf-keras, else Keras 3).

    A model whose saved configuration holds Python code (a Lambda layer, a lambda anywhere),
    which loading would run, is refused with a CheckpointError unless `trust` is true;
    untrusted models also load in Keras's safe mode."""
    import keras
    import tf_keras
    if not os.path.exists(path):
        raise CheckpointError("no Keras model at %s (a .keras or .h5 file, or a SavedModel "
                              "folder)" % path)
    if not trust:
        carrier = code_carrier(path)
        if carrier:
            raise CheckpointError(
                "Keras model %s holds Python code (in %s), which loading it would run; load "
                "it only if you trust where it comes from, with %s" % (path, carrier,
                                                                       TRUST_SWITCH))
    loaders = [keras.models.load_model, tf_keras.models.load_model]
    if os.path.isdir(path) or path.endswith((".h5", ".hdf5")):
        loaders.reverse()
    errors = []
    for load in loaders:
        try:
            with quiet_stderr():  # TensorFlow's first eager operation looks for GPUs, loudly
                return load(path, compile=False, safe_mode=not trust)
        except Exception as error:  # each Keras says in its own way that it cannot read it
            errors.append(" ".join(str(error).split())[:200])
    raise CheckpointError("cannot load the Keras model %s: %s" % (path, " / ".join(errors)))


def code_carrier(path: str) -> Optional[str]:
    """What holds Python code in the saved configuration of the Keras model at `path` (e.g.
    "layer lambda_1 (Lambda)"), or None: read from the file without Keras, in each format
    (a .keras zip's config.json, a .h5 file's model_config, a SavedModel's
    keras_metadata.pb). A file whose configuration cannot be read is left to the loaders."""
    try:
        configs = list(_saved_configs(path))
    except Exception:  # not a readable model file: the loaders say why
        return None
    for config in configs:
        found = _code_in(config, None)
        if found:
            return found
    return None


def _saved_configs(path):
    if os.path.isdir(path):
        metadata_path = os.path.join(path, "keras_metadata.pb")
        if os.path.exists(metadata_path):
            from tf_keras.protobuf import saved_metadata_pb2
            metadata = saved_metadata_pb2.SavedMetadata()
            with open(metadata_path, "rb") as stream:
                metadata.ParseFromString(stream.read())
            for node in metadata.nodes:
                yield json.loads(node.metadata)
        return
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            yield json.loads(archive.read("config.json"))
        return
    import h5py
    with h5py.File(path, "r") as stream:
        config = stream.attrs.get("model_config")
    if config is not None:
        yield json.loads(config.decode("utf-8") if isinstance(config, bytes) else config)


def _code_in(config, owner):
    """The owner (layer) of the first serialised Python function in `config`, or None:
    Keras 3's `__lambda__` objects, tf-keras's `function_type: lambda` (Lambda layers)."""
    if isinstance(config, dict):
        inner = config.get("config")
        if isinstance(inner, dict) and isinstance(inner.get("name"), str) and \
                isinstance(config.get("class_name"), str):
            owner = "layer %s (%s)" % (inner["name"], config["class_name"])
        if config.get("class_name") == "__lambda__" or "lambda" in (
                config.get("function_type"), config.get("output_shape_type")):
            return owner or "the model's configuration"
        values = config.values()
    elif isinstance(config, list):
        values = config
    else:
        return None
    for value in values:
        found = _code_in(value, owner)
        if found:
            return found
    return None
