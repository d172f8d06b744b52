"""Saved Keras models, loaded safely.

A file's format is decided from its bytes, not its name: an HDF5 file (the signature at byte
0, or at 512, 1024, 2048, ... after a user block), a zip archive (.keras: a local header at
byte 0, or an end-of-central-directory record anywhere zip readers look), or a folder with
saved_model.pb (a tf-keras SavedModel). A file that is both HDF5 and zip is refused: each
loader would read another model from it. Only that format's loaders run, given a path whose
name says the format, so the configuration l2caf checks is the one the loader builds.

Unless the model is trusted (`trust`, given on the command line of each command that loads a
model: `--trust_model true`; never read from a file), its configuration must not run code:
no Lambda layer (Python code, carried as bytecode or named), no Python module other than
Keras's and TensorFlow's (a loader would import it), no TensorFlow function called by name
beyond computations on tensors (tf-keras's TFOpLambda layers: `io.read_file`, `print`, ...
are refused), no layer that loads another saved model. A SavedModel must hold no object
whose TensorFlow graphs run while it loads (resources, objects with their own savers), and
no layer that tf-keras could not rebuild from a Keras class (it would run the file's graph
instead).
"""
import contextlib
import json
import os
import shutil
import tempfile
import zipfile
from typing import Any, Iterator, List, Optional, Tuple

from l2caf.errors import CheckpointError
from nets.tf_slim_compat import quiet_stderr

TRUST_SWITCH = ("--trust_model true on the command line (in Python: load_keras_model(path, "
                "trust=True))")
EXPECTED = ("l2caf expects a whole Keras model saved by model.save(): a .keras file (Keras 3 "
            "or tf-keras), an .h5 file or a tf-keras SavedModel folder")

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_LOCAL_HEADER = b"PK\x03\x04"
HDF5, ZIP, SAVED_MODEL = "HDF5 file", "zip archive (.keras)", "SavedModel folder"
# Per format: the file name suffix its loaders recognise, and the loaders, in order.
_SUFFIXES = {HDF5: (".h5", ".hdf5"), ZIP: (".keras",), SAVED_MODEL: ()}
_LOADERS = {HDF5: ("tf_keras", "keras"), ZIP: ("keras", "tf_keras"), SAVED_MODEL: ("tf_keras",)}
MAX_CONFIG_BYTES = 256 * 2 ** 20  # a .keras file's config.json (ResNet50's: 0.1 MB)

# (what the model does, what follows): the reasons a model is refused unless trusted.
PYTHON_CODE = ("holds Python code", "which loading it would run")
# Layers of Keras itself that run what their configuration names.
_CODE_LAYERS = {
    "Lambda": PYTHON_CODE, "TorchModuleWrapper": PYTHON_CODE, "JaxLayer": PYTHON_CODE,
    "FlaxLayer": PYTHON_CODE,
    "TFSMLayer": ("loads another saved model", "whose TensorFlow graphs it would run"),
    "KerasLayer": ("loads another saved model", "whose TensorFlow graphs it would run"),
    "ClassMethod": ("calls a TensorFlow method by name", "which running it would call"),
    "InstanceMethod": ("calls a TensorFlow method by name", "which running it would call"),
}
_OP_LAYERS = ("TFOpLambda", "SlicingOpLambda")
# The TensorFlow functions a tf-keras model may call by name without trust (its TFOpLambda
# layers, made where a model's code called tf.* on Keras tensors): computations on tensors.
# Everything else is refused: file and Python access (io.*, print, py_function, raw_ops.*,
# data.*, ...).
SAFE_TF_NAMESPACES = ("__operators__.", "math.", "nn.", "linalg.", "image.", "signal.",
                      "bitwise.")
SAFE_TF_FUNCTIONS = frozenset("""
    abs add add_n argmax argmin argsort boolean_mask broadcast_to cast clip_by_norm
    clip_by_value concat convert_to_tensor cos cumsum divide einsum equal exp expand_dims fill
    floor gather gather_nd greater greater_equal identity less less_equal linspace
    logical_and logical_not logical_or matmul maximum meshgrid minimum multiply negative norm
    not_equal one_hot ones ones_like pad pow range rank realdiv reduce_all reduce_any
    reduce_logsumexp reduce_max reduce_mean reduce_min reduce_prod reduce_sum repeat reshape
    reverse roll round shape sigmoid sign sin size slice sort split sqrt square squeeze stack
    stop_gradient strided_slice subtract tanh tensordot tile transpose truediv unstack where
    zeros zeros_like""".split())
# The packages whose modules a configuration may name (`module` keys; tf-keras imports the
# module a .keras file names, whatever it is): Keras's and TensorFlow's own, imported already
# (tf-keras's EfficientNetV2 names tensorflow.python.ops.init_ops_v2).
FRAMEWORK_PACKAGES = ("keras", "tf_keras", "tensorflow")


def load_keras_model(path: str, trust: bool = False) -> Any:
    """The Keras model saved at `path` (a keras.Model, or a tf_keras one): a .keras file
    (Keras 3, else tf-keras), an .h5 file (tf-keras, else Keras 3) or a SavedModel folder
    (tf-keras), the format decided from the file's bytes (see the module's docstring).

    CheckpointError (one line) for a path that is not such a model, a file of two formats, and,
    unless `trust` is true, a model whose configuration would run code (see
    `refusal`); untrusted models also load in Keras's safe mode."""
    import keras
    import tf_keras
    kind = check_model_file(path, trust)
    apis = {"keras": keras, "tf_keras": tf_keras}
    errors = []
    with _loadable_path(path, kind) as loadable:
        for api in _LOADERS[kind]:
            try:
                with quiet_stderr():  # TensorFlow's first eager operation looks for GPUs
                    model = apis[api].models.load_model(loadable, compile=False,
                                                        safe_mode=not trust)
                break
            except Exception as error:  # each Keras says in its own way that it cannot
                errors.append(" ".join(str(error).split())[:200])
        else:
            raise CheckpointError("cannot load the Keras model %s: %s"
                                  % (path, " / ".join(errors)))
    if not isinstance(model, (keras.Model, tf_keras.Model)):
        raise CheckpointError("cannot load the Keras model %s: it holds a %s, not a Keras "
                              "model; %s" % (path, type(model).__name__, EXPECTED))
    if not trust and kind == SAVED_MODEL:
        revived = _revived_layer(model)
        if revived:
            raise CheckpointError(_refusal_text(
                path, ("has a layer of a class that is not Keras's own", "rebuilt by tf-keras "
                       "from the SavedModel's TensorFlow graph, which running the model would "
                       "run"), revived))
    return model


def check_model_file(path: str, trust: bool = False) -> str:
    """The format of the saved Keras model at `path` (HDF5, ZIP or SAVED_MODEL), checked
    without loading it: CheckpointError (one line) for what load_keras_model refuses before
    loading (not a model, two formats at once, and, unless `trust`, code in its
    configuration or, in a SavedModel, graphs that run while it loads)."""
    kind = saved_format(path)
    configs = saved_configs(path, kind)
    if not trust:
        refused = refusal(path, kind, configs)
        if refused:
            raise CheckpointError(refused)
    return kind


def saved_format(path: str) -> str:
    """HDF5, ZIP or SAVED_MODEL: what `path` is, from its bytes (CheckpointError for
    anything else, and for a file that is both HDF5 and zip)."""
    if not os.path.exists(path):
        raise CheckpointError("no Keras model at %s (a .keras or .h5 file, or a SavedModel "
                              "folder)" % path)
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise CheckpointError("cannot load the Keras model %s: a folder without "
                                  "saved_model.pb is no SavedModel; %s" % (path, EXPECTED))
        return SAVED_MODEL
    try:
        hdf5_at = hdf5_offset(path)
        with open(path, "rb") as stream:
            is_zip = stream.read(4) == ZIP_LOCAL_HEADER or zipfile.is_zipfile(stream)
    except OSError as error:
        raise CheckpointError("cannot read the Keras model %s: %s"
                              % (path, error.strerror or error)) from None
    if hdf5_at is not None and is_zip:
        raise CheckpointError("cannot load the Keras model %s: it is both an HDF5 file (its "
                              "signature at byte %d) and a zip archive, and each loader would "
                              "read another model from it; l2caf refuses files of two formats "
                              "at once" % (path, hdf5_at))
    if hdf5_at is not None:
        return HDF5
    if is_zip:
        return ZIP
    raise CheckpointError("cannot load the Keras model %s: it is neither an HDF5 file nor a zip "
                          "archive (by its bytes); %s" % (path, EXPECTED))


def hdf5_offset(path: str) -> Optional[int]:
    """Where the HDF5 library finds the superblock of the file at `path` (byte 0, 512, 1024,
    2048, ...: a user block may come first), or None if it is not an HDF5 file."""
    size = os.path.getsize(path)
    with open(path, "rb") as stream:
        offset = 0
        while offset + len(HDF5_SIGNATURE) <= size:
            stream.seek(offset)
            if stream.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                return offset
            offset = 512 if offset == 0 else 2 * offset
    return None


def saved_configs(path: str, kind: str) -> List[Any]:
    """The saved configurations (JSON) that loading the model at `path` (of format `kind`)
    builds it from: a .keras archive's config.json (without its compile_config: l2caf loads
    without compiling), an HDF5 file's model_config, a SavedModel's keras_metadata.pb.
    CheckpointError where there is none (not a whole Keras model) or it cannot be read."""
    try:
        return list(_read_configs(path, kind))
    except CheckpointError:
        raise
    except Exception as error:  # a damaged file: h5py, zipfile, protobuf or JSON errors
        raise CheckpointError("cannot load the Keras model %s: its configuration cannot be "
                              "read (%s)" % (path, " ".join(str(error).split())[:200])) from None


def _read_configs(path, kind):
    if kind == SAVED_MODEL:
        metadata_path = os.path.join(path, "keras_metadata.pb")
        if not os.path.isfile(metadata_path):
            raise CheckpointError("cannot load the Keras model %s: the SavedModel has no "
                                  "keras_metadata.pb, so it holds no Keras model (e.g. "
                                  "tf.saved_model.save of a tf.Module); %s" % (path, EXPECTED))
        from tf_keras.protobuf import saved_metadata_pb2
        metadata = saved_metadata_pb2.SavedMetadata()
        with open(metadata_path, "rb") as stream:
            metadata.ParseFromString(stream.read())
        if not metadata.nodes:
            raise CheckpointError("cannot load the Keras model %s: its keras_metadata.pb "
                                  "describes no Keras object; %s" % (path, EXPECTED))
        for node in metadata.nodes:
            yield json.loads(node.metadata)
    elif kind == ZIP:
        with zipfile.ZipFile(path) as archive:
            count = archive.namelist().count("config.json")
            if count != 1:
                raise CheckpointError(
                    "cannot load the Keras model %s: the zip archive holds %s config.json; %s"
                    % (path, "no" if count == 0 else "%d files named" % count, EXPECTED))
            with archive.open("config.json") as stream:
                text = stream.read(MAX_CONFIG_BYTES + 1)
        if len(text) > MAX_CONFIG_BYTES:
            raise CheckpointError("cannot load the Keras model %s: its config.json is over %d "
                                  "MB" % (path, MAX_CONFIG_BYTES // 2 ** 20))
        config = json.loads(text)
        if isinstance(config, dict):
            config.pop("compile_config", None)  # both loaders drop it (compile=False)
        yield config
    else:
        import h5py
        with h5py.File(path, "r") as stream:
            config = stream.attrs.get("model_config")
        if config is None:
            raise CheckpointError("cannot load the Keras model %s: the HDF5 file has no "
                                  "model_config (weights only?); %s" % (path, EXPECTED))
        yield json.loads(config.decode("utf-8") if isinstance(config, bytes) else config)


def refusal(path: str, kind: str, configs: List[Any]) -> Optional[str]:
    """Why the model at `path` (of format `kind`, with its saved configurations) is refused
    unless trusted, in one line, or None: its configuration would run code (hazard), or,
    for a SavedModel, it holds objects whose graphs TensorFlow runs while loading it."""
    for config in configs:
        found = hazard(config)
        if found:
            reason, owner = found
            return _refusal_text(path, reason, owner)
    if kind == SAVED_MODEL:
        found = _graph_hazard(path)
        if found:
            return _refusal_text(path, *found)
    return None


def _refusal_text(path, reason, owner):
    return ("Keras model %s %s (in %s), %s; load it only if you trust where it comes from, "
            "with %s" % (path, reason[0], owner, reason[1], TRUST_SWITCH))


def code_carrier(path: str) -> Optional[str]:
    """What in the saved configuration of the Keras model at `path` would run code (e.g.
    "layer lambda_1 (Lambda)"; see `hazard`), or None, also for a path whose configuration
    cannot be read."""
    try:
        kind = saved_format(path)
        configs = saved_configs(path, kind)
    except CheckpointError:
        return None
    for config in configs:
        found = hazard(config)
        if found:
            return found[1]
    return None


def hazard(config: Any, owner: Optional[str] = None
           ) -> Optional[Tuple[Tuple[str, str], str]]:
    """((what, what follows), its owner: e.g. "layer writes (Lambda)") of the first thing in
    a saved configuration that would run code, or None: a serialised Python function (Keras 3's
    `__lambda__` objects, tf-keras's `function_type: lambda`), a layer of _CODE_LAYERS, a
    TFOpLambda layer calling a TensorFlow function outside SAFE_TF_NAMESPACES and
    SAFE_TF_FUNCTIONS, a Python module outside FRAMEWORK_PACKAGES."""
    if isinstance(config, dict):
        inner = config.get("config")
        class_name = config.get("class_name")
        if isinstance(inner, dict) and isinstance(inner.get("name"), str) and \
                isinstance(class_name, str):
            owner = "layer %s (%s)" % (inner["name"], class_name)
        # tf-keras resolves dotted names (module.Class) and registered names too.
        names = {name.rsplit(".", 1)[-1] for name in (class_name, config.get("registered_name"))
                 if isinstance(name, str)}
        where = owner or "the model's configuration"
        if "__lambda__" in names or "lambda" in (config.get("function_type"),
                                                 config.get("output_shape_type")):
            return PYTHON_CODE, where
        coded = sorted(names & set(_CODE_LAYERS))
        if coded:
            return _CODE_LAYERS[coded[0]], where
        if names & set(_OP_LAYERS) and isinstance(inner, dict) and \
                not _safe_tf_function(inner.get("function")):
            return (("calls the TensorFlow function %s by name" % inner.get("function"),
                     "which running it would call"), where)
        module = config.get("module")
        if isinstance(module, str) and module.split(".")[0] not in FRAMEWORK_PACKAGES:
            return (("names the Python module %s" % module, "which loading it would import"),
                    where)
        values = config.values()
    elif isinstance(config, list):
        values = config
    else:
        return None
    for value in values:
        found = hazard(value, owner)
        if found:
            return found
    return None


def _safe_tf_function(name):
    if not isinstance(name, str):
        return False
    name = name[len("compat.v1."):] if name.startswith("compat.v1.") else name
    return name in SAFE_TF_FUNCTIONS or name.startswith(SAFE_TF_NAMESPACES)


def _graph_hazard(path):
    """((what, what follows), where) of the first object of the SavedModel at `path` whose
    TensorFlow graphs TensorFlow runs while loading it (a resource's initialiser, an object's
    own restore function), or None; read as tf-keras and TensorFlow read it."""
    import tensorflow as tf
    try:
        with quiet_stderr():
            saved = tf.__internal__.saved_model.parse_saved_model(path)
    except Exception as error:  # a damaged saved_model.pb
        raise CheckpointError("cannot load the Keras model %s: its saved_model.pb cannot be "
                              "read (%s)" % (path, " ".join(str(error).split())[:200])) from None
    for meta_graph in saved.meta_graphs:
        for number, node in enumerate(meta_graph.object_graph_def.nodes):
            if node.WhichOneof("kind") == "resource":
                return (("holds a TensorFlow resource", "whose initialiser graph TensorFlow "
                         "runs while loading it"), "object %d of saved_model.pb" % number)
            if node.saveable_objects:
                return (("holds an object with its own saver", "whose restore graph "
                         "TensorFlow runs while loading it"),
                        "object %d of saved_model.pb" % number)
    return None


def _revived_layer(model):
    """"layer NAME (CLASS)" of the first layer of `model` (itself included) that tf-keras
    revived from a SavedModel's graph rather than from a Keras class, or None."""
    from tf_keras.src.saving.legacy.saved_model.load import RevivedLayer
    for layer in [model] + list(getattr(model, "submodules", ())):
        if isinstance(layer, RevivedLayer):
            return "layer %s (%s)" % (getattr(layer, "name", "?"), type(layer).__name__)
    return None


@contextlib.contextmanager
def _loadable_path(path: str, kind: str) -> Iterator[str]:
    """`path`, or, where its name does not end as its format's loaders expect (an HDF5 file
    named .keras, a zip named .h5 or .bin), a link to it with that name in a private
    temporary folder: so that the loaders read it as the format decided, not as its name
    says."""
    suffixes = _SUFFIXES[kind]
    if not suffixes or path.endswith(suffixes):  # (as Keras compares them: case counts)
        yield path
        return
    folder = tempfile.mkdtemp(prefix="l2caf-model-")
    try:
        link = os.path.join(folder, "model" + suffixes[0])
        os.symlink(os.path.abspath(path), link)
        yield link
    finally:
        shutil.rmtree(folder, ignore_errors=True)
