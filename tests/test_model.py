"""The Model and the public API: layers, clear errors, classes from the checkpoint, no
global TensorFlow switches, the README's Library example."""
import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from l2caf import networks
from l2caf.errors import ConfigError, L2CAFError
from l2caf.models.base import rows_of
from l2caf.models.slim import Model, list_layers
from tests.helpers import DEMO_CHECKPOINT, DEMO_LABELS, REPO_ROOT

DEMO_LAYERS = [("conv1", (84, 84)), ("pool1", (42, 42)), ("dense_block1/conv_block1", (42, 42)),
               ("dense_block1/conv_block2", (42, 42)), ("dense_block1", (42, 42)),
               ("transition_block1", (21, 21)), ("dense_block2/conv_block1", (21, 21)),
               ("dense_block2/conv_block2", (21, 21)), ("dense_block2", (21, 21)),
               ("final_block", (21, 21))]


def test_list_layers_gives_the_spatial_end_points_and_their_sizes():
    assert list_layers(networks.get_network("demo_densenet")) == DEMO_LAYERS
    layers = dict(list_layers(networks.get_network("resnet_v2_50")))
    assert layers["postnorm"] == (7, 7) and layers["block1"] == (28, 28)
    assert "global_pool" not in layers  # 1x1


@pytest.mark.parametrize("name", ["inception_v1", pytest.param("densenet121", marks=pytest.mark.slow),
                                  "demo_densenet"])
def test_the_last_conv_layer_is_one_of_the_networks_layers(name):
    network = networks.get_network(name)
    assert network.last_conv in dict(list_layers(network))


@pytest.mark.parametrize("layer, filter_type, message", [
    ("Mixed_4f", "l2norm", "network demo_densenet has no layer Mixed_4f; layers where a "
                           "filter can go: conv1, pool1, dense_block1/conv_block1"),
    ("global_pool", "l2norm", "layer global_pool has a 1x1 map, where a filter can only scale "
                              "the whole map; choose a layer with a spatial map"),
    ("dense_block1/conv_block2", "gauss", "filter_type gauss needs a square feature map of "
                                          "odd size, but layer dense_block1/conv_block2 is 42x42"),
    ("", "box", "unknown filter_type 'box'; choose one of l2norm, softmax, gauss"),
])
def test_a_layer_that_cannot_take_the_filter_is_a_clear_error(layer, filter_type, message):
    with pytest.raises(ConfigError) as caught:
        Model("demo_densenet", 6, layer, filter_type)
    assert message in str(caught.value)
    assert isinstance(caught.value, L2CAFError)


def test_load_takes_the_number_of_classes_from_the_checkpoint_and_prepares_any_image():
    with Model.load("demo_densenet", DEMO_CHECKPOINT, rows=2) as model:
        assert (model.num_classes, model.num_labels, model.filter_size) == (6, 6, (21, 21))
        batch = model.prepare([np.zeros((50, 80, 3), np.uint8), np.full((300, 200, 3), 255)])
        assert batch.shape == (2, 168, 168, 3) and batch.dtype == np.float32
        prediction = model.predict(batch)
        assert prediction.probabilities.shape == (2, 6)
        assert prediction.activation.shape[:3] == (2, 21, 21)
    unsized = dataclasses.replace(networks.get_network("resnet_v2_50"), num_classes=None)
    with pytest.raises(ConfigError, match="holds no resnet_v2_50/logits/biases: not a "
                                          "resnet_v2_50 checkpoint"):
        Model.load(unsized, DEMO_CHECKPOINT)


@pytest.mark.slow
def test_importing_and_building_change_no_global_tensorflow_setting():
    code = ("import nets.inception_v1, nets.resnet_v2, nets.densenet, l2caf.models.slim\n"
            "from nets.tf_slim_compat import tf\n"
            "from tensorflow.python.ops import control_flow_util_v2 as flow\n"
            "def state():\n"
            "    return (tf.executing_eagerly(),\n"
            "            flow._EXPERIMENTAL_OUTPUT_ALL_INTERMEDIATES_OVERRIDE)\n"
            "print(state())\n"
            "l2caf.models.slim.Model('demo_densenet', 6)\n"
            "print(state())\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["(True, None)", "(True, None)"]


def test_load_takes_batch_size_for_rows_and_the_class_names():
    with open(DEMO_LABELS) as stream:
        names = stream.read().split()
    with Model.load("demo_densenet", DEMO_CHECKPOINT, batch_size=3, labels=DEMO_LABELS) as model:
        assert model.rows == 3 and model.labels == names and len(names) == 6
    with pytest.raises(ConfigError, match=r"rows \(1\) and batch_size \(2\) are two names"):
        Model("demo_densenet", 6, rows=1, batch_size=2)


@pytest.mark.parametrize("rows, batch_size, expected", [
    (None, None, 1), (None, 3, 3), (3, None, 3), (5, 5, 5)])
def test_rows_of_takes_rows_or_batch_size_and_defaults_to_one(rows, batch_size, expected):
    """rows_of: batch_size is another name of rows; both given and equal is that number;
    neither gives one row."""
    assert rows_of(rows, batch_size) == expected


@pytest.mark.parametrize("rows, batch_size", [(2, 3), (4, 1)])
def test_rows_and_batch_size_that_differ_are_an_error_naming_both(rows, batch_size):
    """Two different numbers for one setting: a ConfigError naming both arguments and
    their values, not one of them chosen silently."""
    with pytest.raises(ConfigError) as caught:
        rows_of(rows, batch_size)
    message = str(caught.value)
    assert "rows (%d)" % rows in message and "batch_size (%d)" % batch_size in message
    assert "give one of them" in message


def test_a_slim_model_takes_batch_size_as_its_rows():
    """A slim Model built with batch_size=3 has 3 filter rows (its filter variable too);
    rows and batch_size both 2 gives 2; neither gives 1."""
    for arguments, rows in (({"batch_size": 3}, 3), ({"rows": 2, "batch_size": 2}, 2), ({}, 1)):
        with Model("demo_densenet", 6, **arguments) as model:
            assert model.rows == rows, arguments
            assert model.filter.atten_var.shape[0] == rows, arguments
