#!/usr/bin/env python
"""Benchmark: the faithfulness metrics (l2caf.evaluation.faithfulness: deletion + insertion curves,
the Average Drop / Increase in Confidence / Average Gain pass and ROAD's curves) against the
network's forward passes.

Per network, with random weights (speed does not depend on them) at its full input size, in
one process: `--heatmaps` heatmaps (one per random image) scored at the protocol's steps
(one row of pixels per step: 224 at 224x224) and `--batch_size`; then the limit, the same
number of forward passes in batches of the same sizes on inputs made beforehand. Each runs
once to warm up, then `--repeats` times: median and min-max. The ratio (faithfulness /
forward passes) is the cost of building the perturbed images and of the bookkeeping; the goal
is 1.25 at most. ROAD apart: per heatmap, its CPU work (the ranking and the 2 x 9 noisy linear
imputations, l2caf.evaluation.imputation) and the forward passes of its 18 images alone, and
the imputation's share of the two.

Writes faithfulness.json and faithfulness.md (faithfulness_quick.* with --quick) to
--output and prints the table. Examples:
  python benchmarks/faithfulness.py                 # inception_v1, resnet_v2_50, densenet161
  python benchmarks/faithfulness.py --quick         # a smoke run on the demo model
  python benchmarks/faithfulness.py --networks resnet_v2_50 --heatmaps 8 --repeats 5
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import (Stopwatch, add_report_options, format_spread,  # noqa: E402
                               log, parse_report_options, spread, timed, write_report)
from l2caf.parallel import default_workers  # noqa: E402 (no TensorFlow)

FULL_DEFAULTS = {"networks": "inception_v1,resnet_v2_50,densenet161", "heatmaps": 4,
                 "steps": 0, "repeats": 3, "batch_size": 64}
QUICK_DEFAULTS = {"networks": "demo_densenet", "heatmaps": 2, "steps": 8, "repeats": 1,
                  "batch_size": 16}
GOAL = 1.25


class _CountingModel(object):
    """A model's four members that l2caf.evaluation.faithfulness uses, recording each
    batch's size."""

    def __init__(self, model):
        self.model, self.batches = model, []
        self.preprocessing, self.input_shape = model.preprocessing, model.input_shape
        self.class_output = model.class_output

    def class_probabilities(self, images):
        self.batches.append(len(images))
        return self.model.class_probabilities(images)


def measure_network(network, options, log):
    """The timings of one network: faithfulness and its forward-pass limit, per heatmap."""
    import numpy as np
    from benchmarks.measure import build_model
    from l2caf import preprocessing
    from l2caf.evaluation import faithfulness

    model = build_model(network, "", 1, options.gpu)
    try:
        counting = _CountingModel(model)
        height, width = model.input_shape[:2]
        rng = np.random.default_rng(0)
        pictures = rng.uniform(0, 255, (options.heatmaps, height, width, 3)).astype(np.float32)
        inputs = preprocessing.preprocess(pictures, model.preprocessing)
        layer = model.filter_size
        # ReLU'd maps at the layer's resolution: ties among zeros, as real ones have.
        heatmaps = [np.maximum(rng.normal(0, 1, layer), 0) for _ in range(options.heatmaps)]
        classes = [index % model.num_labels for index in range(options.heatmaps)]
        scorer = faithfulness.Faithfulness(counting, options.steps or None, options.batch_size,
                                           workers=options.workers)
        log("  %s: %d heatmaps, %d steps, batch %d" % (network, options.heatmaps,
                                                       scorer.steps, options.batch_size))
        scored = timed(lambda: scorer(inputs, heatmaps, classes), options.repeats)
        # Every call makes the same batches: those of one.
        batches = counting.batches[:len(counting.batches) // (options.repeats + 1)]
        rows = sum(batches)
        feeds = {size: pictures[np.arange(size) % len(pictures)] for size in set(batches)}
        forward = timed(lambda: [model.class_probabilities(feeds[size]) for size in batches],
                        options.repeats)
        road = measure_road(model, scorer, pictures, heatmaps, options)
    finally:
        model.close()
    per_heatmap = spread([seconds / options.heatmaps for seconds in scored])
    limit = spread([seconds / options.heatmaps for seconds in forward])
    result = {"network": network, "input_size": [int(height), int(width)],
              "steps": scorer.steps, "points": scorer.points, "heatmaps": options.heatmaps,
              "batch_size": options.batch_size, "forward_passes": rows,
              "forward_passes_per_heatmap": rows / float(options.heatmaps),
              "faithfulness_seconds": scored, "forward_seconds": forward,
              "seconds_per_heatmap": per_heatmap, "forward_seconds_per_heatmap": limit,
              "ratio": per_heatmap["median"] / limit["median"]}
    result.update(road)
    log("    %.3f s per heatmap, forward passes alone %.3f s: ratio %.3f"
        % (result["seconds_per_heatmap"]["median"],
           result["forward_seconds_per_heatmap"]["median"], result["ratio"]))
    return result


def measure_road(model, scorer, pictures, heatmaps, options):
    """ROAD's two costs per heatmap: its imputation (CPU) and its images' forward passes, in
    batches of options.batch_size, and the imputation's share of their sum."""
    import numpy as np
    from l2caf.evaluation import faithfulness

    def impute_all():
        made = []
        for number, (picture, heatmap) in enumerate(zip(pictures, heatmaps)):
            rng = np.random.default_rng(number)
            order = faithfulness.road_order(heatmap, scorer.size, rng)
            made.append(faithfulness.road_images(picture, order, scorer.road_fractions,
                                                 scorer.road_noise, rng))
        return made
    imputed = impute_all()
    images = np.concatenate([np.concatenate(pair) for pair in imputed])
    starts = range(0, len(images), options.batch_size)
    imputing = timed(impute_all, options.repeats)
    forward = timed(lambda: [model.class_probabilities(images[start:start + options.batch_size])
                             for start in starts], options.repeats)
    imputation = spread([seconds / len(heatmaps) for seconds in imputing])
    passes = spread([seconds / len(heatmaps) for seconds in forward])
    share = imputation["median"] / (imputation["median"] + passes["median"])
    log("    ROAD: imputation %.3f s per heatmap, its %d forward passes %.3f s: imputation %.0f%%"
        % (imputation["median"], len(images) // len(heatmaps), passes["median"], 100 * share))
    return {"road_fractions": list(scorer.road_fractions),
            "road_forward_passes_per_heatmap": len(images) // len(heatmaps),
            "road_imputation_seconds_per_heatmap": imputation,
            "road_forward_seconds_per_heatmap": passes, "road_imputation_share": share}


def _cell(values):
    """A spread of seconds as 'median (min–max)', three significant digits each."""
    return format_spread(values, lambda value: "%.3g" % value)


def markdown(report):
    lines = ["| network | input | steps (points) | batch | forward passes per heatmap | "
             "s/heatmap, every score (deletion, insertion, Average Drop and Gain, ROAD) | "
             "s/heatmap, the same forward passes alone | ratio (goal <= %g) | ROAD: "
             "imputation s/heatmap | ROAD: its forward passes alone, s/heatmap | ROAD: "
             "imputation's share |" % GOAL, "|---|---|---|---|---|---|---|---|---|---|---|"]
    for result in report["networks"]:
        lines.append("| %s | %dx%d | %d (%d) | %d | %.1f | %s | %s | %.3f | %s | %s (%d) | "
                     "%.0f%% |" % (
                         result["network"], result["input_size"][0], result["input_size"][1],
                         result["steps"], result["points"], result["batch_size"],
                         result["forward_passes_per_heatmap"],
                         _cell(result["seconds_per_heatmap"]),
                         _cell(result["forward_seconds_per_heatmap"]), result["ratio"],
                         _cell(result["road_imputation_seconds_per_heatmap"]),
                         _cell(result["road_forward_seconds_per_heatmap"]),
                         result["road_forward_passes_per_heatmap"],
                         100 * result["road_imputation_share"]))
    machine = report["machine"]
    lines += ["", "Measured on %s (%d cores, %s GB, GPUs: %s), TensorFlow %s, Python %s; load "
              "average %.2f before, %.2f after; %d repeat%s after a warm-up, median (min–max); "
              "every score with %d thread%s imputing ROAD's images."
              % (machine["cpu"], machine["cores"], machine["memory_gb"],
                 ", ".join(machine["gpus"]) or "none", machine["tensorflow"],
                 machine["python"], report["load_average"][0], report["load_average"][1],
                 report["repeats"], "" if report["repeats"] == 1 else "s", report["workers"],
                 "" if report["workers"] == 1 else "s")]
    return "\n".join(lines) + "\n"


def parse_options(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", help="comma-separated networks (slim names, or "
                                           "keras_resnet50, keras_mobilenet_v2) (default: %s)"
                                           % FULL_DEFAULTS["networks"])
    parser.add_argument("--heatmaps", type=int, metavar="N",
                        help="heatmaps scored per repeat, one per random image (default: %d)"
                             % FULL_DEFAULTS["heatmaps"])
    parser.add_argument("--steps", type=int, metavar="N",
                        help="curve steps; 0: the protocol's, one row of pixels per step "
                             "(default: 0)")
    parser.add_argument("--batch_size", type=int, metavar="N",
                        help="images per forward pass (default: %d)"
                             % FULL_DEFAULTS["batch_size"])
    parser.add_argument("--workers", type=int, default=default_workers(), metavar="N",
                        help="threads imputing the next heatmaps' ROAD images while the network "
                             "works (default: the cores this process may use, %(default)s)")
    add_report_options(parser, FULL_DEFAULTS, QUICK_DEFAULTS)
    options = parse_report_options(parser, argv, FULL_DEFAULTS, QUICK_DEFAULTS,
                                   ("heatmaps", "repeats", "batch_size", "workers"))
    if options.steps < 0:
        parser.error("--steps must be 0 or more")
    return options


def main(argv=None):
    options = parse_options(argv)
    from benchmarks.measure import machine

    stopwatch = Stopwatch()
    results = [measure_network(network, options, log)
               for network in options.networks.split(",")]
    report = {"networks": results, "repeats": options.repeats, "workers": options.workers,
              "machine": machine(),
              "load_average": stopwatch.load_averages(),
              "seconds": stopwatch.seconds(), "argv": sys.argv[1:] if argv is None else argv}
    text = markdown(report)
    paths = write_report(options.output, "faithfulness_quick" if options.quick
                         else "faithfulness", report, text, indent=2)
    print(text)
    print("written: %s, %s" % paths)
    return 0


if __name__ == "__main__":
    sys.exit(main())
