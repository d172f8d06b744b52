"""Loading Keras models: no code from a model file unless trusted (every format, the command
line included), keras.applications networks by name (the name, the preprocessing, offline),
and the config keys of Keras models."""
import os
import urllib.error

import keras
import pytest
import tf_keras
import yaml

from l2caf import config, images
from l2caf.models import keras_applications
from l2caf.cli import visualize
from l2caf.errors import CheckpointError, ConfigError, RunError
from l2caf.models.keras import KerasModel
from l2caf.models.keras_loading import code_carrier, load_keras_model
from l2caf.runs.folder import RunFolder
from tests.helpers import REPO_ROOT


def model_with_code(api, marker):
    """A model whose Lambda layer writes the file `marker` whenever it runs (the Lambda's
    code, not a closure, holds the path: what a malicious file would carry)."""
    inputs = api.Input((8, 8, 3))
    features = api.layers.Conv2D(2, 1, name="conv")(inputs)
    features = api.layers.Lambda(eval("lambda x: (open(%r, 'w').write('ran'), x)[1]"
                                      % str(marker)), name="writes")(features)
    outputs = api.layers.Dense(3)(api.layers.GlobalAveragePooling2D()(features))
    return api.Model(inputs, outputs)


@pytest.mark.parametrize("api, name", [(tf_keras, "model.h5"), (tf_keras, "saved_model"),
                                       (keras, "model.keras"), (keras, "model.h5")],
                         ids=["h5", "saved_model", "keras", "keras3_h5"])
def test_a_model_file_with_code_is_refused_unless_trusted(api, name, tmp_path, capsys):
    marker = tmp_path / "written_by_the_model"
    path = str(tmp_path / name)
    model = model_with_code(api, marker)
    if name == "saved_model":
        model.save(path, save_format="tf")
    else:
        model.save(path)
    marker.unlink()  # building and saving ran the Lambda; loading must not
    assert code_carrier(path) == "layer writes (Lambda)"
    with pytest.raises(CheckpointError) as refused:
        load_keras_model(path)
    message = str(refused.value)
    assert "\n" not in message
    assert message == ("Keras model %s holds Python code (in layer writes (Lambda)), which "
                       "loading it would run; load it only if you trust where it comes from, "
                       "with --trust_model true on the command line (in Python: "
                       "load_keras_model(path, trust=True))" % path)
    assert visualize.main(["--network", "keras", "--checkpoint", path, "--list_layers"]) == 2
    assert capsys.readouterr().err.strip() == "error: " + message
    assert not marker.exists()
    loaded = load_keras_model(path, trust=True)
    assert [layer.name for layer in loaded.layers if type(layer).__name__ == "Lambda"] == [
        "writes"]
    assert visualize.main(["--network", "keras", "--checkpoint", path, "--list_layers",
                           "--trust_model", "true"]) == 0
    assert "writes" in capsys.readouterr().out


def test_a_model_without_code_has_no_carrier(tmp_path):
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(
        keras.layers.Conv2D(2, 1, activation="relu")(inputs)))
    keras.Model(inputs, outputs).save(str(tmp_path / "plain.keras"))
    assert code_carrier(str(tmp_path / "plain.keras")) is None
    (tmp_path / "junk.h5").write_bytes(b"not a model")
    assert code_carrier(str(tmp_path / "junk.h5")) is None
    with pytest.raises(CheckpointError, match="cannot load the Keras model"):
        load_keras_model(str(tmp_path / "junk.h5"))


# Each family's preprocess_input in Keras's source (keras/src/applications/*.py).
APPLICATION_PREPROCESSING = {
    "ResNet50": "caffe", "ResNet101": "caffe", "ResNet152": "caffe", "VGG16": "caffe",
    "VGG19": "caffe", "ResNet50V2": "tf", "MobileNet": "tf", "MobileNetV2": "tf",
    "InceptionV3": "tf", "InceptionResNetV2": "tf", "Xception": "tf", "NASNetMobile": "tf",
    "NASNetLarge": "tf", "DenseNet121": "torch", "DenseNet201": "torch",
    "EfficientNetB0": "none", "EfficientNetV2S": "none", "ConvNeXtTiny": "none",
    "MobileNetV3Small": "none", "MobileNetV3Large": "none"}


def test_keras_applications_by_name_and_their_preprocessing():
    assert set(APPLICATION_PREPROCESSING) < set(keras_applications.names())
    for name in keras_applications.names():
        function, preprocess = keras_applications.resolve("keras.applications." + name)
        assert function is getattr(keras.applications, name)
        if name in APPLICATION_PREPROCESSING:
            assert preprocess == APPLICATION_PREPROCESSING[name], name
    with pytest.raises(CheckpointError, match="keras.applications.ResNet51 is not a "
                                              "keras.applications network; they are: "
                                              "ConvNeXtBase, "):
        keras_applications.resolve("keras.applications.ResNet51")
    with pytest.raises(ConfigError, match="keras.applications.ResNet50 takes preprocess caffe "
                                          "\\(its own preprocess_input\\), not tf"):
        keras_applications.build("keras.applications.ResNet50", "tf", weights=None)


@pytest.mark.slow
def test_a_keras_application_is_built_by_name(capsys):
    model, preprocess, image_size = keras_applications.build(
        "keras.applications.MobileNetV3Small", weights=None)
    assert (model.name, preprocess, image_size) == ("MobileNetV3Small", "none", 224)
    with KerasModel(model, preprocess=preprocess, image_size=image_size) as explained:
        assert (explained.input_shape, explained.num_classes) == ((224, 224, 3), 1000)
        assert explained.filter_size == (7, 7)
    assert visualize.main(["--network", "keras", "--checkpoint",
                           "keras.applications.MobileNetV3Small", "--list_layers"]) == 0
    assert "(default: the last conv layer)" in capsys.readouterr().out


def test_offline_a_keras_application_says_how_to_give_its_weights(tmp_path, monkeypatch,
                                                                  capsys):
    from keras.src.backend import config as keras_config
    from keras.src.utils import file_utils

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "urlretrieve", no_network)
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path))  # an empty cache
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    url = ("https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/"
           "weights_mobilenet_v3_small_224_1.0_float.h5")
    expected = ("cannot download the ImageNet weights of keras.applications.MobileNetV3Small "
                "(no internet?): put weights_mobilenet_v3_small_224_1.0_float.h5 (from %s) in "
                "%s, or save keras.applications.MobileNetV3Small(weights=\"path.h5\") as a "
                ".keras file and give that file as checkpoint"
                % (url, os.path.join(str(tmp_path), "models")))
    with pytest.raises(CheckpointError) as offline:
        keras_applications.build("keras.applications.MobileNetV3Small")
    assert str(offline.value) == expected
    assert visualize.main(["--network", "keras", "--checkpoint",
                           "keras.applications.MobileNetV3Small", "--images",
                           os.path.join(REPO_ROOT, "input_imgs"), "--output_dir",
                           str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip() == "error: " + expected
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("text, value", [("0", 0), ("64", 64), (64, 64), ("64x64", 64),
                                         ("64x48", "64x48"), (" 64 X 48 ", "64x48")])
def test_image_size_is_one_number_or_height_x_width(text, value):
    assert config._parse_size(text) == value
    assert images.size_pair(value) == ((0, 0) if value == 0 else (
        (64, 48) if value == "64x48" else (64, 64)))


@pytest.mark.parametrize("text", ["-3", "64x", "x48", "64x0", "64x48x3", "big", "6.5", True])
def test_a_wrong_image_size_is_a_config_error(text, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("image_size: %s\n" % ("true" if text is True else repr(text)))
    with pytest.raises(ConfigError, match="image_size must be a size: one number or "
                                          "HEIGHTxWIDTH"):
        config.read_yaml(str(path))


def test_the_keras_keys_are_checked_and_trust_model_is_free():
    assert (config.OPTIONS["output"].default, config.OPTIONS["trust_model"].default) == (
        "", False)
    assert "trust_model" in config.FREE_KEYS and "output" not in config.FREE_KEYS
    with pytest.raises(ConfigError, match="--trust_model must be true or false"):
        config.parse("test", config.OPTIONS, ["--trust_model", "maybe"])


def test_a_folder_written_before_the_keras_keys_existed_is_still_the_same_run(tmp_path):
    made_with = {"image_size": 168, "layer": "dense_block2/conv_block2"}
    older = {key: value for key, value in config.defaults().items()
             if key not in ("output", "trust_model")}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(dict(older, made_with=made_with)))
    folder = RunFolder(str(tmp_path))
    folder.check(config.defaults(), made_with)  # the new keys at their defaults: accepted
    with pytest.raises(RunError, match="output \\( there, box now\\)"):
        folder.check(dict(config.defaults(), output="box"), made_with)
