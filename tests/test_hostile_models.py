"""Hostile model files (issue 24): a model file runs no code unless the command line that
loads it says --trust_model, whatever its name, its second format or the folder it comes
with says. Each model here writes a marker file when its code runs: the tests assert that
it is not written, and that the command stops with one line and exit status 2."""
import json
import os
import shutil
import subprocess
import sys
import zipfile

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from l2caf.cli import faithfulness, visualize
from l2caf.errors import CheckpointError
from l2caf.models.keras_loading import load_keras_model
from tests.helpers import REPO_ROOT

SIZE = 32


def tiny_model(api, marker=None):
    """A 32x32 CNN of 3 classes; with `marker`, a Lambda layer after its conv layer writes
    that file whenever it runs (its code, not a closure, holds the path: what a malicious
    file carries)."""
    inputs = api.Input((SIZE, SIZE, 3))
    features = api.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu",
                                 name="conv")(inputs)
    if marker is not None:
        features = api.layers.Lambda(eval("lambda x: (open(%r, 'w').write('ran'), x)[1]"
                                          % str(marker)), name="writes")(features)
    outputs = api.layers.Dense(3, name="logits")(api.layers.GlobalAveragePooling2D()(features))
    return api.Model(inputs, outputs)


def saved_with_code(folder, marker, name="model.h5"):
    """A legacy tf-keras .h5 file whose Lambda layer writes `marker` (saving runs it: the
    marker is removed)."""
    path = str(folder / name)
    tiny_model(tf_keras, marker).save(path)
    if marker.exists():
        marker.unlink()
    return path


def clean_keras_zip(folder):
    path = str(folder / "clean.keras")
    tiny_model(keras).save(path)
    with open(path, "rb") as stream:
        return stream.read()


def write_images(folder, count=2):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(count):
        cv2.imwrite(str(folder / ("image_%d.png" % index)),
                    rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
    return str(folder)


def one_error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def keras_args(checkpoint, images, output_dir, *extra):
    return ["--network", "keras", "--checkpoint", checkpoint, "--images", images,
            "--output_dir", output_dir, "--method", "gradcam", "--progress", "false"] + \
        list(extra)


# Case 1: a file that is HDF5 and zip at once.

def polyglot(tmp_path, marker, where="appended"):
    """(path, where its HDF5 signature is) of an .h5 file with a code-carrying Lambda that is
    also a clean .keras zip: the zip appended to the HDF5 file, or the zip first, in the
    HDF5 file's user block (the HDF5 signature then at a power of two from 512 on)."""
    evil = saved_with_code(tmp_path, marker, "evil.h5")
    clean = clean_keras_zip(tmp_path)
    with open(evil, "rb") as stream:
        hdf5 = stream.read()
    offset = 0
    if where == "appended":
        data = hdf5 + clean
    else:
        offset = 512
        while offset < len(clean):
            offset *= 2
        data = clean + b"\0" * (offset - len(clean)) + hdf5
    path = str(tmp_path / "model.h5")
    with open(path, "wb") as stream:
        stream.write(data)
    return path, offset


@pytest.mark.parametrize("where", ["appended", "user_block"])
def test_a_file_both_hdf5_and_zip_is_refused_even_when_trusted(where, tmp_path):
    marker = tmp_path / "written_by_the_model"
    path, offset = polyglot(tmp_path, marker, where)
    for trust in (False, True):
        with pytest.raises(CheckpointError) as refused:
            load_keras_model(path, trust=trust)
        assert str(refused.value) == (
            "cannot load the Keras model %s: it is both an HDF5 file (its signature at byte %d) "
            "and a zip archive, and each loader would read another model from it; l2caf "
            "refuses files of two formats at once" % (path, offset))
    assert not marker.exists()


@pytest.mark.parametrize("extra", [["--list_layers"], []], ids=["list_layers", "run"])
def test_the_visualiser_refuses_a_file_of_two_formats(extra, tmp_path, capsys):
    marker = tmp_path / "written_by_the_model"
    path, _ = polyglot(tmp_path, marker)
    images = write_images(tmp_path / "images")
    output_dir = str(tmp_path / "run")
    assert visualize.main(keras_args(path, images, output_dir, *extra)) == 2
    assert "it is both an HDF5 file (its signature at byte 0) and a zip archive" in \
        one_error_line(capsys)
    assert not marker.exists() and not os.path.exists(output_dir)


@pytest.mark.slow
def test_the_script_refuses_a_file_of_two_formats_in_one_line(tmp_path):
    marker = tmp_path / "written_by_the_model"
    path, _ = polyglot(tmp_path, marker)
    done = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "scripts",
                                                        "visualize_attention.py"),
                           "--network", "keras", "--checkpoint", path, "--list_layers"],
                          capture_output=True, text=True, cwd=str(tmp_path), timeout=300)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "error: cannot load the Keras model %s: it is both an HDF5 file (its signature at byte "
        "0) and a zip archive, and each loader would read another model from it; l2caf "
        "refuses files of two formats at once" % path]
    assert not marker.exists()


def test_a_keras_zip_is_read_as_a_zip_whatever_its_name(tmp_path):
    path = str(tmp_path / "named_as_hdf5.h5")
    with open(path, "wb") as stream:
        stream.write(clean_keras_zip(tmp_path))
    model = load_keras_model(path)
    assert [layer.name for layer in model.layers][-1] == "logits"


# Case 2: trust comes from the command line of the command that loads the model.

@pytest.fixture(scope="module")
def trusted_run(tmp_path_factory):
    """A Grad-CAM run of two images on a model whose Lambda writes a marker, made with
    --trust_model true (its config.yaml says trust_model: true): {"folder", "model",
    "marker", "images"}. Read only; the marker is removed."""
    folder = tmp_path_factory.mktemp("trusted_run")
    marker = folder / "written_by_the_model"
    model = saved_with_code(folder, marker)
    images = write_images(folder / "images")
    run = str(folder / "run")
    assert visualize.main(keras_args(model, images, run, "--trust_model", "true")) == 0
    assert marker.exists()  # trusted: the model's code ran
    marker.unlink()
    with open(os.path.join(run, "config.yaml")) as stream:
        assert "trust_model: true" in stream.read()
    return {"folder": run, "model": model, "marker": marker, "images": images}


def test_the_scorer_takes_trust_from_its_command_line_not_from_the_folder(trusted_run,
                                                                          tmp_path, capsys):
    folder = str(tmp_path / "received")
    shutil.copytree(trusted_run["folder"], folder)  # a run folder from someone else
    marker = trusted_run["marker"]
    common = ["--results", folder, "--steps", "2", "--progress", "false"]
    assert faithfulness.main(common) == 2
    assert one_error_line(capsys) == (
        "error: Keras model %s holds Python code (in layer writes (Lambda)), which loading it "
        "would run; load it only if you trust where it comes from, with --trust_model true on "
        "the command line (in Python: load_keras_model(path, trust=True))"
        % trusted_run["model"])
    assert not marker.exists()
    assert not os.path.exists(os.path.join(folder, "faithfulness.jsonl"))
    assert faithfulness.main(common + ["--trust_model"]) == 0
    assert marker.exists()  # loaded, and ran, because this command line said so
    marker.unlink()
    assert os.path.exists(os.path.join(folder, "faithfulness.jsonl"))


def test_a_config_file_cannot_give_trust(trusted_run, tmp_path, capsys):
    config = os.path.join(trusted_run["folder"], "config.yaml")
    marker = trusted_run["marker"]
    assert visualize.main(["--config", config, "--list_layers"]) == 2
    assert one_error_line(capsys) == (
        "error: config file %s sets trust_model: true, which only the command line can: give "
        "--trust_model true to load a model whose saved configuration runs code (a file, such "
        "as a run folder's config.yaml, cannot give that trust)" % config)
    assert not marker.exists()
    assert visualize.main(["--config", config, "--list_layers", "--trust_model", "false"]) == 2
    assert "holds Python code (in layer writes (Lambda))" in one_error_line(capsys)
    assert not marker.exists()
    assert visualize.main(["--config", config, "--list_layers", "--trust_model", "true"]) == 0
    assert "writes" in capsys.readouterr().out
    marker.unlink(missing_ok=True)  # (building the model ran the Lambda: trusted)


# Case 9 and SavedModels: TensorFlow graphs are code too.

def test_a_savedmodel_of_no_keras_model_is_one_clear_line(tmp_path, capsys):
    class Doubler(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, SIZE, SIZE, 3])])
        def __call__(self, images):
            return images * 2.0

    path = str(tmp_path / "module")
    tf.saved_model.save(Doubler(), path)
    expected = ("cannot load the Keras model %s: the SavedModel has no keras_metadata.pb, so it "
                "holds no Keras model (e.g. tf.saved_model.save of a tf.Module); l2caf expects "
                "a whole Keras model saved by model.save(): a .keras file (Keras 3 or "
                "tf-keras), an .h5 file or a tf-keras SavedModel folder" % path)
    for extra in (["--list_layers"], ["--trust_model", "true"]):
        assert visualize.main(keras_args(path, str(tmp_path), str(tmp_path / "run"),
                                         *extra)) == 2
        assert one_error_line(capsys) == "error: " + expected
    assert not os.path.exists(str(tmp_path / "run"))


class WritesFile(tf_keras.layers.Layer):
    """A layer that is no Keras class: a SavedModel keeps its call as a TensorFlow graph
    (which writes the marker), and tf-keras, without the class, revives the layer from it."""

    def __init__(self, marker, **kwargs):
        super().__init__(**kwargs)
        self.marker = str(marker)

    def call(self, inputs):
        tf.io.write_file(self.marker, tf.strings.as_string(tf.reduce_sum(inputs)))
        return inputs


class WritesOnLoad(tf.saved_model.experimental.TrackableResource):
    """A resource whose initialiser (a TensorFlow graph, run while the SavedModel loads)
    writes the marker."""

    def __init__(self, marker):
        self.marker = str(marker)
        super().__init__()

    def _create_resource(self):
        return tf.raw_ops.VarHandleOp(dtype=tf.float32, shape=[], shared_name="")

    def _initialize(self):
        tf.io.write_file(self.marker, "ran")


@pytest.mark.parametrize("graph", ["layer", "resource"])
def test_a_savedmodel_whose_graphs_would_run_is_refused_unless_trusted(graph, tmp_path,
                                                                        capsys):
    marker = tmp_path / "written_by_the_model"
    inputs = tf_keras.Input((SIZE, SIZE, 3))
    conv = tf_keras.layers.Conv2D(4, 3, strides=2, padding="same", name="conv")
    features = conv(inputs)
    if graph == "layer":
        features = WritesFile(marker, name="writes")(features)
    else:
        conv.on_load = WritesOnLoad(marker)
    outputs = tf_keras.layers.Dense(3)(tf_keras.layers.GlobalAveragePooling2D()(features))
    path = str(tmp_path / "saved_model")
    tf_keras.Model(inputs, outputs).save(path, save_format="tf")
    if marker.exists():
        marker.unlink()
    # (WritesFile is registered nowhere: tf-keras cannot find the class by its name.)
    images = write_images(tmp_path / "images")
    output_dir = str(tmp_path / "run")
    assert visualize.main(keras_args(path, images, output_dir)) == 2
    message = one_error_line(capsys)
    assert message.startswith("error: Keras model %s " % path)
    assert ("has a layer of a class that is not Keras's own (in layer writes (WritesFile)), "
            "rebuilt by tf-keras from the SavedModel's TensorFlow graph" if graph == "layer"
            else "holds a TensorFlow resource (in object ") in message
    assert message.endswith("with --trust_model true on the command line (in Python: "
                            "load_keras_model(path, trust=True))")
    assert not marker.exists() and not os.path.exists(output_dir)


def test_a_tensorflow_function_called_by_name_must_compute_only(tmp_path):
    inputs = tf_keras.Input((SIZE, SIZE, 3))
    features = tf_keras.layers.Conv2D(4, 3, name="conv")(inputs)
    features = tf.nn.relu(features * 2.0)  # TFOpLambda layers: computations, allowed
    features = tf.compat.v1.Print(features, [features], "LEAKED")  # prints: refused
    outputs = tf_keras.layers.Dense(3)(tf_keras.layers.GlobalAveragePooling2D()(features))
    path = str(tmp_path / "model.h5")
    tf_keras.Model(inputs, outputs).save(path)
    with pytest.raises(CheckpointError, match=r"calls the TensorFlow function compat.v1.Print "
                                              r"by name \(in layer tf.compat.v1.Print "
                                              r"\(TFOpLambda\)\), which running it would "
                                              r"call; load it only if you trust"):
        load_keras_model(path)
    load_keras_model(path, trust=True)


def test_a_configuration_naming_another_python_module_is_refused(tmp_path):
    """A .keras file whose configuration names a Python module other than Keras's: tf-keras,
    the loader l2caf falls back to for .keras files, imports the module a configuration
    names and takes the name from it; l2caf refuses the file before any loader reads it."""
    clean = str(tmp_path / "clean.keras")
    clean_keras_zip(tmp_path)
    path = str(tmp_path / "model.keras")
    with zipfile.ZipFile(clean) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "config.json":
                config = json.loads(data)
                layer = [layer for layer in config["config"]["layers"]
                         if layer["class_name"] == "Conv2D"][0]
                layer["config"]["kernel_initializer"]["module"] = "subprocess"
                data = json.dumps(config)
            target.writestr(info.filename, data)
    with pytest.raises(CheckpointError, match=r"names the Python module subprocess \(in layer "
                                              r"conv \(Conv2D\)\), which loading it would "
                                              r"import; load it only if you trust"):
        load_keras_model(path)
