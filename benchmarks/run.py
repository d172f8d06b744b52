#!/usr/bin/env python
"""Benchmark: how fast each explanation mode is, against the network's forward pass.

Per network, with random weights (speed does not depend on them) at the network's full input
size, one network at a time:
  forward pass      the network alone, batch 1 and batch B: images/s
  slow mode         L2-CAF (cls_specific, l2norm) on one image and one class, at the last
                    conv layer and at an intermediate one, naive (the whole network every
                    iteration) and with the cached activation: s/image. The cached run at the
                    last layer is also the fast mode's batch 1 (the original's fast mode: one
                    image at a time)
  fast mode         L2-CAF on a batch of B images, one filter row each: images/s
  Grad-CAM          at the last conv layer, batch B: images/s; and beside it Grad-CAM++ and
                    LayerCAM (batch B), and Score-CAM on one image, its masked inputs (one
                    per channel of the layer) in batches of B, against (channels + 1) forward
                    passes at batch B
  Opti-CAM          at the last conv layer, batch O = min(B, 16) (every iteration runs the
                    whole network forwards and backwards on O masked images, whose memory
                    a training step's is), its rows run --opticam_iterations iterations,
                    extrapolated to its default 100; against the forward and backward pass
                    of the whole network down to its input at batch O, which it needs at
                    every iteration
Every L2-CAF and one-pass method's time includes the forward pass that computes the
predictions and the cached activation: it is the whole cost per image of a run. Convergence
is off, so every filter runs the given iterations; the time per iteration is measured between
convergence checks, and each L2-CAF time is also extrapolated to 1000 iterations (the
visualisers' max_iters; Opti-CAM's to 100, its paper's): batch time + (1000 - iterations)
x time per iteration. Each
measurement runs once to warm up (Score-CAM: one forward pass of a masked batch), then
--repeats times: median and min-max. Memory: the peak resident memory of the measuring
process. It only grows (TensorFlow keeps what it has allocated): each batched
measurement runs in a fresh process, the one-image ones share one, by growing need, and one
that did not raise the peak shows "<=".

Writes benchmark.json and benchmark.md (benchmark_quick.* with --quick) to --output, and
prints the Markdown tables. The same command runs on a GPU when there is one (--gpu).
Examples:
  python benchmarks/run.py                   # inception_v1, resnet_v2_50, densenet161,
                                             # keras_resnet50 (keras.applications)
  python benchmarks/run.py --quick           # a smoke run, two to three minutes
  python benchmarks/run.py --networks resnet_v2_50 --iterations 200 --repeats 5
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import (DEFAULT_OUTPUT, REPO_ROOT, Stopwatch, at_least,  # noqa: E402
                               command_line, describe_machine, fill_defaults, format_number,
                               format_spread, spread, write_report)

EXTRAPOLATED_ITERATIONS = 1000
# Every measurement, in the order `plan` makes them (--only picks some).
MEASUREMENTS = ("forward_single", "slow_naive_last", "slow_cached_last",
                "slow_naive_intermediate", "slow_cached_intermediate", "forward_batched",
                "gradcam_batched", "gradcampp_batched", "layercam_batched", "scorecam_single",
                "fast_batched", "forward_backward_batched", "opticam_batched")
OPTICAM_ITERATIONS = 100  # Opti-CAM's default max_iters (l2caf.settings.OPTICAM_DEFAULTS)
# Opti-CAM's batch at most: each of its iterations back-propagates through the whole network
# for every row, which keeps every layer's activations (DenseNet-161 needs several GB at 16).
OPTICAM_BATCH = 16

# The filter layer of the intermediate-layer measurements: the last end point before the
# network's last stage, so that a whole stage lies between the filter and the logits.
INTERMEDIATE_LAYERS = {
    "inception_v1": "Mixed_4f",
    "resnet_v2_50": "block3",
    "resnet_v2_101": "block3",
    "resnet_v2_152": "block3",
    "densenet121": "dense_block3/conv_block24",
    "densenet161": "dense_block3/conv_block36",
    "densenet169": "dense_block3/conv_block32",
    "demo_densenet": "dense_block1/conv_block2",
    "keras_resnet50": "conv4_block6_out",
    "keras_mobilenet_v2": "block_13_expand_relu",
}

FULL_DEFAULTS = {"networks": "inception_v1,resnet_v2_50,densenet161,keras_resnet50",
                 "iterations": 100,
                 "naive_iterations": 20, "opticam_iterations": 10, "repeats": 3,
                 "batch_size": 64}
QUICK_DEFAULTS = {"networks": "demo_densenet", "iterations": 2, "naive_iterations": 2,
                  "opticam_iterations": 2, "repeats": 1, "batch_size": 2}


class BenchmarkError(Exception):
    """A network's measurements failed; the message says which."""


def _network_list(text):
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one network name")
    unknown = [name for name in names if name not in INTERMEDIATE_LAYERS]
    if unknown:
        raise argparse.ArgumentTypeError("unknown network(s) %s; known networks: %s"
                                         % (", ".join(unknown), ", ".join(INTERMEDIATE_LAYERS)))
    if len(set(names)) < len(names):
        raise argparse.ArgumentTypeError("a network is listed twice in %r" % text)
    return names


def _measurement_list(text):
    keys = [key.strip() for key in text.split(",") if key.strip()]
    unknown = [key for key in keys if key not in MEASUREMENTS]
    if not keys or unknown:
        raise argparse.ArgumentTypeError("unknown measurement(s) %s; the measurements: %s"
                                         % (", ".join(unknown) or "(none given)",
                                            ", ".join(MEASUREMENTS)))
    return keys


def parse_options(argv=None):
    """The benchmark's options: --quick changes the defaults, given options win."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)

    def default(key):
        return " (default: %s; with --quick: %s)" % (FULL_DEFAULTS[key], QUICK_DEFAULTS[key])

    parser.add_argument("--networks", type=_network_list, metavar="NAMES",
                        help="comma-separated network names, from: %s%s"
                             % (", ".join(INTERMEDIATE_LAYERS), default("networks")))
    iteration_count = at_least(2, " (the time per iteration is measured between two checks)")
    parser.add_argument("--iterations", metavar="N", type=iteration_count,
                        help="L2-CAF iterations per filter, fixed (convergence off), for the "
                             "cached slow mode and the fast mode" + default("iterations"))
    parser.add_argument("--naive_iterations", metavar="N", type=iteration_count,
                        help="iterations of the naive slow mode, which runs the whole network "
                             "each iteration (its time is extrapolated to 1000 like the "
                             "others)" + default("naive_iterations"))
    parser.add_argument("--opticam_iterations", metavar="N", type=iteration_count,
                        help="Opti-CAM's iterations per row (each a forward and backward pass "
                             "of the whole network; its time is extrapolated to its default "
                             "%d)%s" % (OPTICAM_ITERATIONS, default("opticam_iterations")))
    parser.add_argument("--repeats", metavar="N", type=at_least(1),
                        help="timed runs per measurement, after one warm-up run; the report "
                             "gives their median and min-max" + default("repeats"))
    parser.add_argument("--batch_size", metavar="N", type=at_least(1),
                        help="images per batch of the batched forward pass, fast mode, "
                             "Grad-CAM, Grad-CAM++ and LayerCAM, and Score-CAM's masked "
                             "inputs per batch; Opti-CAM's batch is the smaller of it and %d"
                             % OPTICAM_BATCH + default("batch_size"))
    parser.add_argument("--only", metavar="KEYS", type=_measurement_list,
                        help="comma-separated measurements to run, the others left out (and "
                             "the ratios that need them), written to benchmark_partial.* (with "
                             "--quick: benchmark_quick.*), e.g. forward_batched,"
                             "forward_backward_batched,opticam_batched; the measurements: %s "
                             "(default: all)" % ", ".join(MEASUREMENTS))
    parser.add_argument("--gpu", type=int, default=0, metavar="INDEX",
                        help="GPU index to run on; -1: the CPU. Without a GPU the CPU is used "
                             "(default: 0)")
    parser.add_argument("--output", metavar="DIR", default=DEFAULT_OUTPUT,
                        help="folder for benchmark.json and benchmark.md (benchmark_quick.* "
                             "with --quick) (default: benchmarks/results in the repository)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run of two to three minutes (mostly TensorFlow's start-up "
                             "in each of its 9 processes): checks that every measurement runs; "
                             "its numbers mean nothing (demo_densenet, batch 2, 2 iterations, "
                             "1 repeat)")
    options = parser.parse_args(argv)
    fill_defaults(options, QUICK_DEFAULTS if options.quick else FULL_DEFAULTS,
                  {"networks": _network_list})
    if os.path.exists(options.output) and not os.path.isdir(options.output):
        parser.error("argument --output: %s exists and is not a folder" % options.output)
    return options


def plan(options, network):
    """The measurements of `network` (layer '' is the last conv layer), grouped by the process
    they run in. A process's peak memory only grows: the one-image measurements share one,
    in order of growing memory need, and each batched one, which needs far more, has its
    own, so that its peak is its own."""
    single = [dict(key="forward_single", label="forward pass", mode="forward", layer="",
                   batch=1)]
    for position, layer in (("last", ""), ("intermediate", INTERMEDIATE_LAYERS[network])):
        single += [
            dict(key="slow_naive_" + position, label="slow, naive", mode="slow", layer=layer,
                 batch=1, cache_activation=False, iterations=options.naive_iterations),
            dict(key="slow_cached_" + position, mode="slow", layer=layer, batch=1,
                 label="slow, cached" + (" (= fast, batch 1)" if position == "last" else ""),
                 cache_activation=True, iterations=options.iterations)]
    batch = options.batch_size
    batched = [
        dict(key="forward_batched", label="forward pass", mode="forward", layer="",
             batch=batch),
        dict(key="gradcam_batched", label="Grad-CAM", mode="gradcam", layer="", batch=batch),
        dict(key="gradcampp_batched", label="Grad-CAM++", mode="gradcampp", layer="",
             batch=batch),
        dict(key="layercam_batched", label="LayerCAM", mode="layercam", layer="", batch=batch),
        dict(key="scorecam_single", label="Score-CAM (masked inputs in batches of %d)" % batch,
             mode="scorecam", layer="", batch=1, masked_batch=batch),
        dict(key="fast_batched", label="fast (sweep)", mode="fast", layer="", batch=batch,
             cache_activation=True, iterations=options.iterations),
        dict(key="forward_backward_batched", label="forward and backward pass (to the input)",
             mode="forward_backward", layer="", batch=min(batch, OPTICAM_BATCH)),
        dict(key="opticam_batched", label="Opti-CAM", mode="opticam", layer="",
             batch=min(batch, OPTICAM_BATCH), iterations=options.opticam_iterations,
             extrapolate_to=OPTICAM_ITERATIONS),
    ]
    for measurement in single + batched:
        measurement.setdefault("cache_activation", None)
        measurement.setdefault("iterations", None)
        measurement.setdefault("masked_batch", None)
        if measurement["iterations"]:
            measurement.setdefault("extrapolate_to", EXTRAPOLATED_ITERATIONS)
    groups = [single] + [[measurement] for measurement in batched]
    if options.only:
        groups = [[m for m in group if m["key"] in options.only] for group in groups]
    return [group for group in groups if group]


def measure_in_process(task):
    """Runs benchmarks.measure on `task` in a fresh Python process; returns its result."""
    with tempfile.TemporaryDirectory() as scratch:
        result_path = os.path.join(scratch, "result.json")
        # -m with the repository as working directory: its packages, not an installed copy.
        status = subprocess.run([sys.executable, "-m", "benchmarks.measure", json.dumps(task),
                                 result_path], cwd=REPO_ROOT).returncode
        if status != 0:
            raise BenchmarkError("measuring %s failed (%s); its messages are above" % (
                task["network"], "killed by signal %d" % -status if status < 0
                else "exit status %d" % status))
        with open(result_path) as stream:
            return json.load(stream)


def summarize(raw):
    """A measurement's raw result with per-image figures (median, min, max over repeats),
    and extrapolated ones for L2-CAF (to 1000 iterations) and Opti-CAM (to 100)."""
    summary = dict(raw)
    batch, iterations = raw["batch"], raw["iterations"]
    summary["seconds_per_image"] = spread([seconds / batch for seconds in raw["batch_seconds"]])
    summary["images_per_second"] = spread([batch / seconds for seconds in raw["batch_seconds"]])
    if iterations:
        target = raw["extrapolate_to"]
        summary["seconds_per_iteration"] = spread(raw["iteration_seconds"])
        extrapolated = [seconds + (target - iterations) * per_iteration
                        for seconds, per_iteration in zip(raw["batch_seconds"],
                                                          raw["iteration_seconds"])]
        summary["seconds_per_image_at_%d" % target] = spread(
            [seconds / batch for seconds in extrapolated])
        summary["images_per_second_at_%d" % target] = spread(
            [batch / seconds for seconds in extrapolated])
    return summary


def _median(measurement, field):
    return measurement[field]["median"]


RATIO_MEASUREMENTS = ("fast_batched", "forward_batched", "slow_cached_last", "slow_naive_last",
                      "slow_cached_intermediate", "slow_naive_intermediate")
METHOD_RATIOS = ("gradcampp_vs_gradcam", "layercam_vs_gradcam", "scorecam_vs_forward_passes",
                 "opticam_iteration_vs_forward_backward")


def ratios(measurements):
    """The headline ratios of a network's summarised measurements (by key), from medians:
    `measured` at the measured iterations, `at_1000` with L2-CAF extrapolated; none where
    their measurements were left out (--only)."""
    if not set(RATIO_MEASUREMENTS) <= set(measurements):
        return {}
    fast, forward = measurements["fast_batched"], measurements["forward_batched"]
    single = measurements["slow_cached_last"]
    at_1000 = "images_per_second_at_%d" % EXTRAPOLATED_ITERATIONS
    result = {
        "fast_vs_forward": {
            "definition": "images/s of fast_batched / images/s of forward_batched",
            "measured": _median(fast, "images_per_second") / _median(forward, "images_per_second"),
            "at_1000": _median(fast, at_1000) / _median(forward, "images_per_second")},
        "batched_vs_single": {
            "definition": "images/s of fast_batched / images/s of slow_cached_last (fast, "
                          "batch 1)",
            "measured": _median(fast, "images_per_second") / _median(single, "images_per_second"),
            "at_1000": _median(fast, at_1000) / _median(single, at_1000)},
    }
    for position in ("last", "intermediate"):
        naive = measurements["slow_naive_" + position]
        cached = measurements["slow_cached_" + position]
        result["cached_vs_naive_" + position] = {
            "definition": "naive / cached: seconds per iteration (measured), seconds per "
                          "image (at_1000)",
            "measured": (_median(naive, "seconds_per_iteration")
                         / _median(cached, "seconds_per_iteration")),
            "at_1000": _median(naive, "seconds_per_image_at_%d" % EXTRAPOLATED_ITERATIONS)
            / _median(cached, "seconds_per_image_at_%d" % EXTRAPOLATED_ITERATIONS)}
    return result


def method_ratios(measurements):
    """The other methods against their goals, from medians (s/image): Grad-CAM++ and
    LayerCAM against Grad-CAM, Score-CAM against (channels + 1) forward passes at the
    batch size of its masked inputs, an Opti-CAM iteration against a forward and backward
    pass at its batch size. A ratio whose measurements were left out (--only) is left out."""
    def seconds(key):
        return _median(measurements[key], "seconds_per_image")

    def scorecam_vs_passes():
        scorecam = measurements["scorecam_single"]
        return seconds("scorecam_single") / ((scorecam["channels"] + 1)
                                             * seconds("forward_batched"))

    def opticam_vs_passes():
        opticam = measurements["opticam_batched"]
        return _median(opticam, "seconds_per_iteration") / (
            seconds("forward_backward_batched") * opticam["batch"])
    definitions = [
        ("gradcampp_vs_gradcam", "s/image of gradcampp_batched / s/image of gradcam_batched",
         ("gradcampp_batched", "gradcam_batched"),
         lambda: seconds("gradcampp_batched") / seconds("gradcam_batched")),
        ("layercam_vs_gradcam", "s/image of layercam_batched / s/image of gradcam_batched",
         ("layercam_batched", "gradcam_batched"),
         lambda: seconds("layercam_batched") / seconds("gradcam_batched")),
        ("scorecam_vs_forward_passes", "s/image of scorecam_single / ((channels + 1) x "
                                       "s/image of forward_batched)",
         ("scorecam_single", "forward_batched"), scorecam_vs_passes),
        ("opticam_iteration_vs_forward_backward", "s/iteration of opticam_batched / s/batch "
                                                  "of forward_backward_batched",
         ("opticam_batched", "forward_backward_batched"), opticam_vs_passes)]
    return {name: {"definition": definition, "measured": measured()}
            for name, definition, needed, measured in definitions
            if all(key in measurements for key in needed)}


def markdown(report):
    """The report's measurement table and ratio table, with what they were measured on."""
    settings = report["settings"]
    extrapolated = ("s/image at %d iterations (extrapolated; Opti-CAM: at %d)"
                    % (EXTRAPOLATED_ITERATIONS, OPTICAM_ITERATIONS))
    lines = [
        "Machine: %s." % report["machine"]["description"],
        "",
        "Settings: random weights, full input size, cls_specific, l2norm filter, convergence "
        "off; L2-CAF run for %d iterations (naive slow mode: %d) and extrapolated to %d; "
        "Opti-CAM (every row to the end) for %d, extrapolated to its %d; "
        "batch %d (Opti-CAM: %d); median (min–max) of %d repeat(s) after a warm-up. Every "
        "L2-CAF, Opti-CAM and Grad-CAM time includes the forward pass. Peak memory: the peak "
        "resident memory of "
        "the measuring process. Each batched measurement has a fresh process; the one-image "
        "ones share one, where the peak only grows: one that did not raise it shows ≤ (it "
        "needed at most that)."
        % (settings["iterations"], settings["naive_iterations"], EXTRAPOLATED_ITERATIONS,
           settings["opticam_iterations"], OPTICAM_ITERATIONS, settings["batch_size"],
           min(settings["batch_size"], OPTICAM_BATCH), settings["repeats"]),
        "",
        "| network | measurement | layer | batch | iterations | s/image (measured) "
        "| images/s (measured) | %s | peak memory (MB) |" % extrapolated,
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for network in report["networks"].values():
        for measurement in network["measurements"].values():
            target = measurement.get("extrapolate_to")
            at_target = "—" if not target else format_spread(
                measurement["seconds_per_image_at_%d" % target]) + (
                "" if target == EXTRAPOLATED_ITERATIONS else " (at %d)" % target)
            lines.append("| %s | %s | %s | %d | %s | %s | %s | %s | %s |" % (
                network["network"], measurement["label"], measurement["layer"] or "—",
                measurement["batch"], measurement["iterations"] or "—",
                format_spread(measurement["seconds_per_image"]),
                format_number(measurement["images_per_second"]["median"]),
                at_target,
                ("%.0f" if measurement["new_peak"] else "≤ %.0f") % measurement["peak_rss_mb"]))
    with_ratios = [network for network in report["networks"].values() if network["ratios"]]
    if with_ratios:  # (none when --only left their measurements out)
        lines += [
            "",
            "Ratios (medians), measured / at %d iterations:" % EXTRAPOLATED_ITERATIONS,
            "",
            "| network | fast (batch %d) / forward (batch %d), images/s | fast batch %d / "
            "batch 1 speed-up | cached / naive speed-up, last layer | cached / naive "
            "speed-up, intermediate layer |" % ((settings["batch_size"],) * 3),
            "|---|---|---|---|---|",
        ]
    for network in with_ratios:
        cells = ["%s / %s" % (format_number(ratio["measured"]), format_number(ratio["at_1000"]))
                 for ratio in network["ratios"].values()]
        lines.append("| %s | %s |" % (network["network"], " | ".join(cells)))
    lines += [
        "",
        "The other methods (medians, s/image): Grad-CAM++ and LayerCAM against Grad-CAM "
        "(batch %d), Score-CAM against (channels + 1) forward passes at batch %d, an "
        "Opti-CAM iteration against a forward and backward pass of the whole network at "
        "batch %d:" % ((settings["batch_size"],) * 2 + (min(settings["batch_size"],
                                                              OPTICAM_BATCH),)),
        "",
        "| network | channels | Grad-CAM++ / Grad-CAM | LayerCAM / Grad-CAM | Score-CAM / "
        "(channels + 1) forward passes | Opti-CAM iteration / forward and backward pass |",
        "|---|---|---|---|---|---|",
    ]
    for network in report["networks"].values():
        found = network["method_ratios"]
        lines.append("| %s | %d | %s |" % (
            network["network"], next(iter(network["measurements"].values()))["channels"],
            " | ".join(format_number(found[name]["measured"]) if name in found else "—"
                       for name in METHOD_RATIOS)))
    baselines = [measurement["baseline_rss_mb"] for network in report["networks"].values()
                 for measurement in network["measurements"].values()]
    lines += ["", "The cached / naive speed-ups compare the time per iteration (measured) and "
                  "the time per image at %d iterations." % EXTRAPOLATED_ITERATIONS,
              "", "Memory of a process before its first model (Python and TensorFlow "
                  "imported): %.0f–%.0f MB; it is part of every peak." % (min(baselines),
                                                                         max(baselines))]
    lines += ["", "Total run time: %.0f s (load average %.1f at the start, %.1f at the end). "
                  "Command: `%s`" % (report["total_seconds"], report["load_average"][0],
                                     report["load_average"][1], report["command"])]
    return "\n".join(lines) + "\n"


def run(options, argv):
    # Other processes on the machine slow the measurements down: the report shows the load.
    stopwatch = Stopwatch()
    settings = dict({key: getattr(options, key) for key in FULL_DEFAULTS}, only=options.only)
    print("benchmark of %s: %d iterations (naive: %d, Opti-CAM: %d), batch %d, %d repeat(s) "
          "after a warm-up; each network in fresh processes"
          % (", ".join(options.networks), options.iterations, options.naive_iterations,
             options.opticam_iterations, options.batch_size, options.repeats), flush=True)
    networks = {}
    for network in options.networks:
        network_stopwatch = Stopwatch()
        groups = plan(options, network)
        first_number, measurements = 1, {}
        for group in groups:
            raw = measure_in_process({
                "network": network, "gpu": options.gpu, "repeats": options.repeats,
                "measurements": group, "first_number": first_number,
                "count": sum(map(len, groups))})
            first_number += len(group)
            previous_peak = None
            for measurement in raw["measurements"]:
                # A process's first peak is its own; after that, where the peak did not
                # rise, the measurement needed at most that much.
                measurements[measurement["key"]] = dict(
                    summarize(measurement), baseline_rss_mb=raw["baseline_rss_mb"],
                    new_peak=previous_peak is None or measurement["peak_rss_mb"] > previous_peak)
                previous_peak = measurement["peak_rss_mb"]
        # The processes of a network all ran on the same machine and device.
        machine = raw["machine"]
        networks[network] = {
            "network": network, "image_size": raw["image_size"],
            "num_classes": raw["num_classes"], "device": raw["device"],
            "layers": {"last": raw["last_conv_layer"],
                       "intermediate": INTERMEDIATE_LAYERS[network]},
            "measurements": measurements, "ratios": ratios(measurements),
            "method_ratios": method_ratios(measurements),
            "seconds": network_stopwatch.seconds()}
        print("%s done in %.0f s" % (network, networks[network]["seconds"]), flush=True)
    devices = sorted({network["device"] for network in networks.values()})
    report = {"command": command_line("run.py", argv),
              "machine": dict(machine, description=describe_machine(machine, devices)),
              "settings": dict(settings, gpu=options.gpu, quick=options.quick,
                               extrapolated_iterations=EXTRAPOLATED_ITERATIONS),
              "networks": networks, "total_seconds": stopwatch.seconds(),
              "load_average": stopwatch.load_averages()}
    return report


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    options = parse_options(argv)
    try:
        report = run(options, argv)
    except BenchmarkError as error:
        print("error: %s" % error, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: nothing written", file=sys.stderr)
        return 130
    text = markdown(report)
    stem = "benchmark_quick" if options.quick else \
        "benchmark_partial" if options.only else "benchmark"
    paths = write_report(options.output, stem, report, text)
    print()
    print(text)
    print("wrote %s and %s" % paths)
    return 0


if __name__ == "__main__":
    sys.exit(main())
