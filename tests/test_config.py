import pytest

from l2caf.config import COMMON_OPTIONS, ConfigError, parse, read_yaml
from tests.helpers import REPO_ROOT


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return str(path)


def test_defaults_then_file_then_command_line(tmp_path):
    path = write(tmp_path, "network: inception_v1\nmax_iters: 20\nlayer: Mixed_4f\n")
    config, _ = parse("", COMMON_OPTIONS, ["--config", path, "--max_iters", "7",
                                           "--classes", "207,323", "--save_gif", "true",
                                           "--tolerance", "1e-4"])
    assert config.network == "inception_v1" and config.layer == "Mixed_4f"
    assert config.max_iters == 7 and config.classes == [207, 323]
    assert config.save_gif is True and config.tolerance == 1e-4
    assert config.learning_rate == 0.5  # default


def test_unknown_key_in_file_lists_valid_keys(tmp_path):
    path = write(tmp_path, "netwrok: densenet161\n")
    with pytest.raises(ConfigError, match="unknown key.*netwrok.*valid keys: network"):
        read_yaml(path, COMMON_OPTIONS)


def test_wrong_type_names_key_and_value(tmp_path):
    path = write(tmp_path, "max_iters: many\n")
    with pytest.raises(ConfigError, match="max_iters must be an integer, got 'many'"):
        read_yaml(path, COMMON_OPTIONS)
    with pytest.raises(ConfigError, match="--save_gif must be true or false"):
        parse("", COMMON_OPTIONS, ["--save_gif", "maybe"])


def test_choice_is_checked():
    with pytest.raises(ConfigError, match="filter_type must be one of l2norm, softmax, gauss"):
        parse("", COMMON_OPTIONS, ["--filter_type", "box"])


def test_unknown_command_line_option_is_an_error(capsys):
    with pytest.raises(SystemExit):
        parse("", COMMON_OPTIONS, ["--no_such_key", "1"])
    assert "unrecognized arguments: --no_such_key" in capsys.readouterr().err


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_yaml(str(tmp_path / "none.yaml"), COMMON_OPTIONS)
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_yaml(write(tmp_path, "a: [1,\n"), COMMON_OPTIONS)


@pytest.mark.parametrize("name", ["densenet", "inception_v1", "resnet50_v2", "demo"])
def test_shipped_configs_are_valid(name):
    read_yaml("%s/configs/%s.yaml" % (REPO_ROOT, name), COMMON_OPTIONS)


def test_saved_config_reads_back(tmp_path):
    config, _ = parse("", COMMON_OPTIONS, ["--classes", "1,2"])
    config.save(str(tmp_path / "saved.yaml"))
    assert read_yaml(str(tmp_path / "saved.yaml"), COMMON_OPTIONS) == dict(config)
