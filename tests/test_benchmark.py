"""benchmarks/run.py: the --quick smoke run's report is complete and consistent, and bad
options are clear errors. Correctness only: no timing is asserted."""
import json

import pytest

from benchmarks import measure, run
from l2caf import networks

# Marked slow: the tests that run the benchmark's processes (the others parse options).

# In the order they run: the one-image ones in one process, then each batched one in its own.
MEASUREMENTS = ["forward_single", "slow_naive_last", "slow_cached_last",
                "slow_naive_intermediate", "slow_cached_intermediate", "forward_batched",
                "gradcam_batched", "gradcampp_batched", "layercam_batched", "scorecam_single",
                "fast_batched", "forward_backward_batched", "opticam_batched"]
OPTIMIZING = {"slow_naive_last", "slow_cached_last", "slow_naive_intermediate",
              "slow_cached_intermediate", "fast_batched"}
SPREADS = ["seconds_per_image", "images_per_second"]
ITERATION_SPREADS = ["seconds_per_iteration", "seconds_per_image_at_1000",
                     "images_per_second_at_1000"]


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    output = tmp_path_factory.mktemp("benchmark")
    assert run.main(["--quick", "--output", str(output)]) == 0
    with open(output / "benchmark_quick.json") as stream:
        report = json.load(stream)
    return report, (output / "benchmark_quick.md").read_text()


def _check_spread(values):
    assert 0 < values["min"] <= values["median"] <= values["max"]


@pytest.mark.slow
def test_quick_run_measures_every_mode_with_positive_numbers(quick_report):
    report, _ = quick_report
    network = report["networks"]["demo_densenet"]
    spec = networks.get_network("demo_densenet")
    assert network["layers"] == {"last": spec.last_conv,
                                 "intermediate": run.INTERMEDIATE_LAYERS["demo_densenet"]}
    assert network["device"] in ("CPU", "GPU")
    assert list(network["measurements"]) == MEASUREMENTS
    settings = report["settings"]
    for key, measurement in network["measurements"].items():
        repeats = measurement["batch_seconds"]
        assert len(repeats) == settings["repeats"] and all(s > 0 for s in repeats), key
        for field in SPREADS:
            _check_spread(measurement[field])
        if key in OPTIMIZING:
            expected = settings["naive_iterations"] if "naive" in key \
                else settings["iterations"]
            assert measurement["iterations"] == expected, key
            for field in ITERATION_SPREADS:
                _check_spread(measurement[field])
        elif key == "opticam_batched":  # its own iterations, extrapolated to its 100
            assert measurement["iterations"] == settings["opticam_iterations"]
            for field in ("seconds_per_iteration", "seconds_per_image_at_100",
                          "images_per_second_at_100"):
                _check_spread(measurement[field])
        else:
            assert measurement["iterations"] is None, key
            assert not set(ITERATION_SPREADS) & set(measurement), key
    batched = settings["batch_size"]
    assert [m["batch"] for m in network["measurements"].values()] == \
        [1] * 5 + [batched] * 4 + [1, batched] + [min(batched, run.OPTICAM_BATCH)] * 2
    assert network["measurements"]["scorecam_single"]["masked_batch"] == batched
    assert network["measurements"]["slow_naive_intermediate"]["layer"] == \
        run.INTERMEDIATE_LAYERS["demo_densenet"]
    assert report["total_seconds"] > 0


@pytest.mark.slow
def test_peak_memory_grows_in_the_shared_process_and_is_own_in_the_others(quick_report):
    report, _ = quick_report
    measurements = report["networks"]["demo_densenet"]["measurements"]
    shared = [measurements[key] for key in MEASUREMENTS[:5]]
    previous = shared[0]["baseline_rss_mb"]
    assert shared[0]["new_peak"]  # a process's first measurement has its own peak
    for measurement in shared:
        assert measurement["baseline_rss_mb"] == shared[0]["baseline_rss_mb"]
        assert measurement["peak_rss_mb"] >= previous > 0
        if measurement is not shared[0]:
            assert measurement["new_peak"] == (measurement["peak_rss_mb"] > previous)
        previous = measurement["peak_rss_mb"]
    for key in MEASUREMENTS[5:]:  # each in a fresh process
        assert measurements[key]["new_peak"], key
        assert measurements[key]["peak_rss_mb"] >= measurements[key]["baseline_rss_mb"] > 0


@pytest.mark.slow
def test_derived_numbers_follow_from_the_raw_timings(quick_report):
    report, _ = quick_report
    for key, measurement in report["networks"]["demo_densenet"]["measurements"].items():
        [seconds] = measurement["batch_seconds"]  # --quick: one repeat
        batch = measurement["batch"]
        assert measurement["seconds_per_image"]["median"] == pytest.approx(seconds / batch)
        assert measurement["images_per_second"]["median"] == pytest.approx(batch / seconds)
        if measurement["iterations"]:
            [per_iteration] = measurement["iteration_seconds"]
            target = 100 if key == "opticam_batched" else 1000
            at_target = seconds + (target - measurement["iterations"]) * per_iteration
            assert measurement["seconds_per_image_at_%d" % target]["median"] == \
                pytest.approx(at_target / batch)
            assert measurement["seconds_per_iteration"]["median"] == \
                pytest.approx(per_iteration)


@pytest.mark.slow
def test_ratios_are_the_quotients_of_their_measurements(quick_report):
    report, _ = quick_report
    network = report["networks"]["demo_densenet"]
    m = {key: {field: values["median"] for field, values in measurement.items()
               if isinstance(values, dict)}
         for key, measurement in network["measurements"].items()}
    expected = {
        "fast_vs_forward": (
            m["fast_batched"]["images_per_second"] / m["forward_batched"]["images_per_second"],
            m["fast_batched"]["images_per_second_at_1000"]
            / m["forward_batched"]["images_per_second"]),
        "batched_vs_single": (
            m["fast_batched"]["images_per_second"] / m["slow_cached_last"]["images_per_second"],
            m["fast_batched"]["images_per_second_at_1000"]
            / m["slow_cached_last"]["images_per_second_at_1000"]),
    }
    for position in ("last", "intermediate"):
        naive, cached = m["slow_naive_" + position], m["slow_cached_" + position]
        expected["cached_vs_naive_" + position] = (
            naive["seconds_per_iteration"] / cached["seconds_per_iteration"],
            naive["seconds_per_image_at_1000"] / cached["seconds_per_image_at_1000"])
    assert set(network["ratios"]) == set(expected)
    for name, (measured, at_1000) in expected.items():
        assert network["ratios"][name]["measured"] == pytest.approx(measured), name
        assert network["ratios"][name]["at_1000"] == pytest.approx(at_1000), name


@pytest.mark.slow
def test_method_ratios_compare_with_gradcam_and_with_the_forward_passes(quick_report):
    report, _ = quick_report
    network = report["networks"]["demo_densenet"]
    m = {key: measurement["seconds_per_image"]["median"]
         for key, measurement in network["measurements"].items()}
    channels = network["measurements"]["scorecam_single"]["channels"]
    assert channels == 60  # the demo model's last conv layer
    ratios = {name: ratio["measured"] for name, ratio in network["method_ratios"].items()}
    assert ratios == pytest.approx({
        "gradcampp_vs_gradcam": m["gradcampp_batched"] / m["gradcam_batched"],
        "layercam_vs_gradcam": m["layercam_batched"] / m["gradcam_batched"],
        "scorecam_vs_forward_passes": m["scorecam_single"]
        / ((channels + 1) * m["forward_batched"]),
        "opticam_iteration_vs_forward_backward":
        network["measurements"]["opticam_batched"]["seconds_per_iteration"]["median"]
        / (m["forward_backward_batched"] * network["measurements"]["opticam_batched"]["batch"])})


@pytest.mark.slow
def test_markdown_has_a_row_per_measurement_and_per_network_ratios(quick_report):
    report, text = quick_report
    network = report["networks"]["demo_densenet"]
    rows = [line for line in text.splitlines() if line.startswith("| demo_densenet |")]
    # The measurements, then the ratios, then the one-pass methods' ratios.
    assert len(rows) == len(MEASUREMENTS) + 2
    for row, measurement in zip(rows, network["measurements"].values()):
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[1] == measurement["label"]
        assert cells[3] == str(measurement["batch"])
        assert cells[4] == str(measurement["iterations"] or "—")
        assert cells[-1] == ("" if measurement["new_peak"] else "≤ ") + \
            "%.0f" % measurement["peak_rss_mb"]
    ratio_cells = [cell.strip() for cell in rows[-2].strip("|").split("|")][1:]
    assert len(ratio_cells) == len(network["ratios"])
    method_cells = [cell.strip() for cell in rows[-1].strip("|").split("|")][1:]
    assert method_cells[0] == str(network["measurements"]["scorecam_single"]["channels"])
    assert len(method_cells) == len(network["method_ratios"]) + 1
    assert report["machine"]["description"] in text and report["command"] in text


def test_every_network_has_an_intermediate_layer():
    assert set(run.INTERMEDIATE_LAYERS) == set(networks.NETWORKS) | set(measure.KERAS_NETWORKS)


def test_quick_changes_the_defaults_and_given_options_win():
    full = run.parse_options([])
    assert (full.networks, full.iterations, full.repeats, full.batch_size) == (
        ["inception_v1", "resnet_v2_50", "densenet161", "keras_resnet50"], 100, 3, 64)
    quick = run.parse_options(["--quick", "--iterations", "5", "--networks", "resnet_v2_50"])
    assert (quick.networks, quick.iterations, quick.repeats) == (["resnet_v2_50"], 5, 1)


@pytest.mark.parametrize("argv, message", [
    (["--iterations", "1"], "--iterations: must be at least 2"),
    (["--naive_iterations", "0"], "--naive_iterations: must be at least 2"),
    (["--repeats", "0"], "--repeats: must be at least 1"),
    (["--batch_size", "many"], "--batch_size: must be an integer, got 'many'"),
    (["--networks", "vgg16,inception_v1"], "unknown network(s) vgg16; known networks:"),
    (["--networks", " , "], "give at least one network name"),
    (["--networks", "inception_v1,inception_v1"], "listed twice"),
    (["--only", "opticam_batched,opticam"], "unknown measurement(s) opticam; the measurements: "
                                            "forward_single, "),
])
def test_bad_options_are_clear_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run.parse_options(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_output_must_be_a_folder(tmp_path, capsys):
    not_a_folder = tmp_path / "results.txt"
    not_a_folder.write_text("")
    with pytest.raises(SystemExit):
        run.parse_options(["--output", str(not_a_folder)])
    assert "is not a folder" in capsys.readouterr().err


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run.parse_options(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--networks", "--iterations", "--naive_iterations", "--opticam_iterations",
                   "--repeats", "--batch_size", "--only", "--gpu", "--output", "--quick"):
        assert option in text


@pytest.mark.slow
def test_a_failing_network_process_is_reported():
    task = {"network": "no_such_network", "gpu": -1, "repeats": 1, "measurements": []}
    with pytest.raises(run.BenchmarkError, match="measuring no_such_network failed"):
        run.measure_in_process(task)


def test_only_runs_the_named_measurements_and_the_ratios_they_allow():
    options = run.parse_options(["--only", "opticam_batched, forward_backward_batched"])
    assert [[m["key"] for m in group] for group in run.plan(options, "densenet161")] == [
        ["forward_backward_batched"], ["opticam_batched"]]
    everything = run.plan(run.parse_options([]), "densenet161")
    assert [m["key"] for group in everything for m in group] == MEASUREMENTS
    # Per-image and per-iteration medians of a batch of 4: an iteration is 3 passes' time.
    measured = {"forward_backward_batched": {"seconds_per_image": {"median": 0.5}},
                "opticam_batched": {"batch": 4, "seconds_per_iteration": {"median": 6.0}}}
    assert run.ratios(measured) == {}
    ratios = run.method_ratios(measured)
    assert list(ratios) == ["opticam_iteration_vs_forward_backward"]
    assert ratios["opticam_iteration_vs_forward_backward"]["measured"] == pytest.approx(3.0)
