"""l2caf.cli.options: the shared options declared once, and `check`, which refuses the first
wrong value in one message and converts --thresholds and --shard."""
import argparse

import numpy as np
import pytest

from l2caf import config
from l2caf.cli import options
from l2caf.errors import ConfigError
from l2caf.parallel import default_workers
from l2caf.runs.folder import Shard


def parser(*extra, pictures=False):
    """A command taking the shared options (the pictures' ones with pictures)."""
    result = config.ArgumentParser()
    options.add_results(result, "runs")
    options.add_workers(result, "processes")
    options.add_progress(result)
    options.add_shard(result, "shard")
    options.add_gpu(result)
    if pictures:
        options.add_picture_options(result)
    else:
        options.add_annotations(result, "boxes")
        options.add_protocol(result, "protocol")
        options.add_threshold(result, "threshold")
    options.add_thresholds(result, "sweep")
    options.add_iou(result, "iou")
    return result


def checked(*argv, pictures=False):
    return options.check(parser(pictures=pictures).parse_args(["--results", "r"] + list(argv)))


def test_the_defaults_and_their_conversions():
    args = checked()
    assert (args.results, args.workers, args.progress, args.gpu, args.annotations,
            args.protocol, args.threshold, args.iou) == (
        ["r"], default_workers(), "true", 0, None, "cam", 0.2, 0.5)
    assert args.shard == Shard(0, 1)
    np.testing.assert_allclose(args.thresholds, np.arange(100) / 100.0)
    assert args.thresholds[30] == 0.3  # rounded: not 0.30000000000000004


@pytest.mark.parametrize("text, thresholds", [
    ("0:1:0.25", [0.0, 0.25, 0.5, 0.75]), ("0.2,0.5", [0.2, 0.5]), ("0.1:0.6:0.1",
                                                                    [0.1, 0.2, 0.3, 0.4, 0.5])])
def test_thresholds_become_the_sweeps_array(text, thresholds):
    args = checked("--thresholds", text)
    assert isinstance(args.thresholds, np.ndarray) and args.thresholds.tolist() == thresholds


def test_shard_becomes_a_shard_and_check_twice_changes_nothing():
    args = checked("--shard", " 1 / 3", "--thresholds", "0.5")
    assert args.shard == Shard(1, 3)
    again = options.check(args)
    assert again is args and again.shard == Shard(1, 3) and again.thresholds.tolist() == [0.5]


def test_shard_auto_reads_the_slurm_array(monkeypatch):
    for name, value in (("SLURM_ARRAY_TASK_ID", "4"), ("SLURM_ARRAY_TASK_MIN", "3"),
                        ("SLURM_ARRAY_TASK_COUNT", "2")):
        monkeypatch.setenv(name, value)
    assert checked("--shard", "auto").shard == Shard(1, 2)


@pytest.mark.parametrize("argv, message", [
    (["--threshold", "1"], "--threshold must be in [0, 1), got 1"),
    (["--threshold", "-0.1"], "--threshold must be in [0, 1), got -0.1"),
    (["--iou", "0"], "--iou must be in (0, 1], got 0"),
    (["--iou", "1.5"], "--iou must be in (0, 1], got 1.5"),
    (["--workers", "0"], "--workers must be at least 1, got 0"),
    (["--thresholds", "0:1"], "--thresholds must be START:STOP:STEP (e.g. 0:1:0.01, STEP > 0) "
                              "or a comma-separated list, got '0:1'"),
    (["--thresholds", "0:1:0"], "--thresholds must be START:STOP:STEP (e.g. 0:1:0.01, STEP > 0) "
                                "or a comma-separated list, got '0:1:0'"),
    (["--thresholds", "0.5,1"], "--thresholds must give thresholds in [0, 1), got '0.5,1'"),
    (["--thresholds", "2:3:1"], "--thresholds must give thresholds in [0, 1), got '2:3:1'"),
    (["--shard", "2/2"], "shard must be INDEX/COUNT with 0 <= INDEX < COUNT (e.g. 0/4) or auto, "
                         "got '2/2'"),
])
def test_a_wrong_value_is_one_message(argv, message):
    with pytest.raises(ConfigError) as caught:
        checked(*argv)
    assert str(caught.value) == message


@pytest.mark.parametrize("argv, message", [
    (["--colormap", "rainbowish"], "--colormap rainbowish is not a matplotlib colour map; try bwr "
                                   "(the run's overlays), jet, viridis, inferno or turbo"),
    (["--alpha", "1.5"], "--alpha is the heatmap's opacity in [0, 1], got 1.5"),
    (["--threshold", "1", "--colormap", "rainbowish"], "--threshold must be in [0, 1), got 1"),
    (["--colormap", "rainbowish", "--thresholds", "x"], "--colormap rainbowish is not a "
                                                        "matplotlib colour map; try bwr (the "
                                                        "run's overlays), jet, viridis, inferno "
                                                        "or turbo"),
])
def test_the_pictures_options_are_checked_in_turn(argv, message):
    with pytest.raises(ConfigError) as caught:
        checked(*argv, pictures=True)
    assert str(caught.value) == message
    args = checked("--colormap", "viridis", "--alpha", "0", pictures=True)
    assert (args.colormap, args.alpha, args.protocol, args.threshold) == ("viridis", 0.0, "cam",
                                                                         0.2)


@pytest.mark.parametrize("argv, message", [
    # The order of the checks: threshold, iou, workers, (pictures), thresholds, shard.
    (["--shard", "9/2", "--thresholds", "x", "--workers", "0", "--iou", "0", "--threshold", "2"],
     "--threshold must be in [0, 1), got 2"),
    (["--shard", "9/2", "--thresholds", "x", "--workers", "0", "--iou", "0"],
     "--iou must be in (0, 1], got 0"),
    (["--shard", "9/2", "--thresholds", "x", "--workers", "0"],
     "--workers must be at least 1, got 0"),
    (["--shard", "9/2", "--thresholds", "x"], "--thresholds must be START:STOP:STEP"),
])
def test_the_first_wrong_option_in_check_order_is_named(argv, message):
    with pytest.raises(ConfigError) as caught:
        checked(*argv)
    assert str(caught.value).startswith(message)


def test_check_takes_only_the_options_a_command_has():
    args = argparse.Namespace(results=["r"], shard="1/2")
    assert options.check(args) is args and vars(args) == {"results": ["r"], "shard": Shard(1, 2)}
    args = argparse.Namespace(workers=0, threshold=0.5)
    with pytest.raises(ConfigError, match="--workers must be at least 1, got 0"):
        options.check(args)
    assert vars(options.check(argparse.Namespace())) == {}


@pytest.mark.parametrize("text, value, message", [
    ("3", 3, None), ("1", 1, None), ("0", None, "must be at least 1, got 0"),
    ("-2", None, "must be at least 1, got -2"), ("x", None, "must be a whole number, got 'x'"),
    ("2.5", None, "must be a whole number, got '2.5'"),
])
def test_positive(text, value, message):
    if message is None:
        assert options.positive(text) == value
    else:
        with pytest.raises(argparse.ArgumentTypeError) as caught:
            options.positive(text)
        assert str(caught.value) == message


@pytest.mark.parametrize("argv, error", [
    (["--protocol", "voc"], "argument --protocol: invalid choice: 'voc' (choose from "),
    (["--progress", "maybe"], "argument --progress: invalid choice: 'maybe' (choose from "),
    (["--gpu", "first"], "argument --gpu: invalid int value: 'first'"),
    ([], "the following arguments are required: --results"),
])
def test_a_usage_error_is_one_line_and_exit_status_2(capsys, argv, error):
    with pytest.raises(SystemExit) as caught:
        parser().parse_args(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    # (How argparse quotes the choices depends on the Python version.)
    assert err.startswith("error: " + error) and err.endswith(" (see --help)\n")
    assert err.count("\n") == 1
