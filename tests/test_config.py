"""Configuration: defaults, files, the command line, clear errors, and every shipped config."""
import glob
import os

import pytest
import yaml

from l2caf import config, networks
from l2caf.models import checkpoints
from l2caf.cli import visualize, visualize_fast
from l2caf.errors import ConfigError
from l2caf.settings import Settings
from tests.helpers import REPO_ROOT

SLOW, FAST = visualize.OPTIONS, visualize_fast.OPTIONS


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return str(path)


def parse(argv, option_table=SLOW):
    return config.parse("", option_table, argv)[0]


def test_defaults_then_file_then_command_line(tmp_path):
    path = write(tmp_path, "network: inception_v1\nmax_iters: 20\nlayer: Mixed_4f\n")
    values = parse(["--config", path, "--max_iters", "7", "--classes", "207,323",
                    "--save_gif", "true", "--tolerance", "1e-4"])
    assert values.network == "inception_v1" and values.layer == "Mixed_4f"
    assert values.max_iters == 7 and values.classes == [207, 323]
    assert values.save_gif is True and values.tolerance == 1e-4
    assert values.learning_rate == 0.5  # default


def test_the_visualisers_differ_only_in_defaults():
    assert list(SLOW) == list(FAST)
    differ = {key for key in SLOW if SLOW[key] != FAST[key]}
    assert differ == {"batch_size", "tolerance", "save_overlays", "heatmap_format"}
    assert (SLOW["batch_size"].default, FAST["batch_size"].default) == (1, 64)
    assert (SLOW["tolerance"].default, FAST["tolerance"].default) == (1e-6, 1e-4)


def test_unknown_key_in_file_lists_valid_keys(tmp_path):
    path = write(tmp_path, "netwrok: densenet161\n")
    with pytest.raises(ConfigError, match="unknown key.*netwrok.*valid keys: network"):
        config.read_yaml(path)


@pytest.mark.parametrize("argv, message", [
    (["--max_iters", "abc"], "command line: --max_iters must be an integer, got 'abc'"),
    (["--max_iters", "2.5"], "--max_iters must be an integer, got '2.5'"),
    (["--save_gif", "maybe"], "--save_gif must be true or false, got 'maybe'"),
    (["--classes", "1,x"], "--classes must be comma-separated integers"),
    (["--filter_type", "box"], "--filter_type must be one of l2norm, softmax, gauss"),
    (["--max_iters", "0"], "max_iters must be at least 1, got 0"),
    (["--batch_size", "0"], "batch_size must be at least 1"),
    (["--limit", "-1"], "limit must be 0 or more"),
    (["--overlay_alpha", "2"], "overlay_alpha must be a finite number, in [0, 1], got 2.0"),
    (["--overlay_alpha", "nan"], "overlay_alpha must be a finite number, in [0, 1], got nan"),
    (["--learning_rate", "nan"], "learning_rate must be a finite number, positive, got nan"),
    (["--learning_rate", "inf"], "learning_rate must be a finite number, positive, got inf"),
    (["--learning_rate", "0"], "learning_rate must be a finite number, positive, got 0.0"),
    (["--end_learning_rate", "nan"], "end_learning_rate must be a finite number, 0 or more, "
                                     "got nan"),
    (["--end_learning_rate", "-0.001"], "end_learning_rate must be a finite number, 0 or more"),
    (["--tolerance=-inf"], "tolerance must be a finite number, 0 or more, got -inf"),
    (["--tolerance", "nan"], "tolerance must be a finite number, 0 or more, got nan"),
    (["--classes", "-3"], "classes must be class ids (0 or more), got -3"),
    (["--explain", "embedding"], "explain: embedding works with caf_variant cls_oblivious"),
    (["--method", "gradcam", "--caf_variant", "cls_oblivious"],
     "method gradcam explains classes: it needs caf_variant cls_specific"),
    (["--method", "gradcam", "--save_gif", "true"], "set save_gif false"),
])
def test_bad_values_are_clear_errors(argv, message):
    with pytest.raises(ConfigError) as caught:
        parse(argv)
    assert message in str(caught.value)


@pytest.mark.parametrize("values", [
    {"learning_rate": float("nan")}, {"learning_rate": float("inf")},
    {"end_learning_rate": float("nan")}, {"tolerance": float("inf")},
    {"learning_rate": "0.5"}, {"tolerance": True}])
def test_the_librarys_settings_are_finite_numbers_in_range(values):
    [key] = values
    with pytest.raises(ConfigError, match="%s must be a finite number" % key):
        Settings.of(values)


def test_nan_in_a_config_file_is_refused(tmp_path):
    path = write(tmp_path, "learning_rate: .nan\nend_learning_rate: .inf\n")
    with pytest.raises(ConfigError, match="learning_rate must be a finite number, positive, "
                                          "got nan"):
        parse(["--config", path])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.read_yaml(str(tmp_path / "none.yaml"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.read_yaml(write(tmp_path, "a: [1,\n"))
    with pytest.raises(ConfigError, match="must hold key: value pairs"):
        config.read_yaml(write(tmp_path, "- a\n- b\n"))


def test_a_usage_error_is_one_line(capsys):
    with pytest.raises(SystemExit) as caught:
        parse(["--no_such_key", "1"])
    assert caught.value.code == 2
    assert capsys.readouterr().err == \
        "error: unrecognized arguments: --no_such_key 1 (see --help)\n"


def test_a_run_folders_config_reads_back_without_its_made_with_section(tmp_path):
    values = parse(["--classes", "1,2"])
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(dict(values, made_with={"image_size": 224})))
    assert config.read_yaml(str(path)) == dict(values)


CONFIGS = sorted(glob.glob(os.path.join(REPO_ROOT, "configs", "*.yaml")))


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_every_shipped_config_is_valid_for_its_visualiser(path):
    fast = path.endswith("_fast.yaml")
    values = config.defaults(FAST if fast else SLOW)
    values.update(config.read_yaml(path, FAST if fast else SLOW))
    config.check(values)
    assert values.caf_variant == "cls_specific" and values.filter_type == "l2norm"
    assert values.tolerance == (1e-4 if fast else 1e-6)
    if values.network == "keras":  # a model shipped here
        assert os.path.exists(os.path.join(REPO_ROOT, values.checkpoint))
        assert values.layer == "" and values.preprocess == "none"
        return
    network = networks.get_network(values.network)
    assert values.layer in ("", network.last_conv)
    if network.url:  # a public checkpoint: the config names its file, as downloaded
        assert values.checkpoint == os.path.join(checkpoints.DEFAULT_DEST,
                                                 network.checkpoint_file)
    else:
        assert os.path.exists(os.path.join(REPO_ROOT, values.checkpoint + ".index"))
        assert os.path.exists(os.path.join(REPO_ROOT, values.labels))
    if fast:
        assert values.explain_gt and values.annotations and values.batch_size == 64
    else:
        assert values.images == "input_imgs"


def test_every_network_has_configs_for_both_visualisers():
    names = {os.path.basename(path) for path in CONFIGS}
    assert names == {"demo.yaml", "demo_fast.yaml", "demo_keras.yaml", "densenet.yaml",
                     "densenet_fast.yaml",
                     "inception_v1.yaml", "inception_v1_fast.yaml", "resnet50_v2.yaml",
                     "resnet50_v2_fast.yaml"}
