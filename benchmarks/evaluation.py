#!/usr/bin/env python
"""Benchmark: how long the localisation evaluation takes at ImageNet's scale.

Makes --images synthetic records like those of an ImageNet-validation run: per image a 7x7
heatmap (one to three Gaussian blobs over a little noise, like a network's last conv
layer's) and one or two ground-truth boxes around its blobs, with an error of a few cells,
on an image of an ImageNet-like size (long side 400-640 pixels, mostly landscape, about
500x375); a prediction list whose top-1 is right three times in four. Then times
l2caf.evaluation.evaluate_records for each --protocol, as scripts/evaluate_localization.py
calls it: the errors at threshold 0.2 and MaxBoxAcc over --thresholds (wsol: MaxBoxAccV2
too), with --workers processes. Making the records is not timed; starting the pool is.

With --bootstrap N (default 1000; 0: none) it also times what the table's statistics add,
as scripts/evaluate_localization.py computes them (l2caf.evaluation.statistics and
.comparisons): the 95% bootstrap intervals of every column of the row (the localisation
columns from each image's outcomes, and one synthetic value per image for each pointing and
faithfulness column, so that every score of the row is resampled), and one paired
comparison with a second run (the same outcomes given to other images), each with N
resamples; the report gives their seconds and their share of the table's.

The time depends on the heatmaps (how many thresholds a sweep can skip, how many
components a threshold leaves) and on what else runs on the machine: the report gives the
load average before and after each measurement.

Writes evaluation.json and evaluation.md to --output and prints the table. Examples:
  python benchmarks/evaluation.py                     # 50,000 images, cam, adl and wsol
  python benchmarks/evaluation.py --images 2000 --protocol wsol --thresholds 0:1:0.001
"""
import argparse
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # noqa: E402
from l2caf.parallel import default_workers  # noqa: E402
from l2caf.evaluation import (PROTOCOLS, ImageRecord,  # noqa: E402
                              evaluate_records, parse_thresholds)
from l2caf.evaluation.comparisons import compare_pair  # noqa: E402
from l2caf.evaluation.statistics import RunSamples, Samples, run_intervals  # noqa: E402
from l2caf.evaluation.table import metrics  # noqa: E402
from l2caf.runs.localization import localization_samples  # noqa: E402

HEATMAP_SIZE = 7
THRESHOLD = 0.2
NUM_CLASSES = 1000


def _blob(rng, rows, columns):
    """(row, column, sigma) of a blob and its map, in heatmap cells."""
    row, column = rng.uniform(0.5, HEATMAP_SIZE - 0.5, 2)
    sigma = rng.uniform(0.6, 1.8)
    values = np.exp(-((rows - row) ** 2 + (columns - column) ** 2) / (2 * sigma ** 2))
    return (row, column, sigma), values


def _box_around(rng, blob, image_size):
    """A ground-truth box about a blob's extent (2.5 sigma), off by a few cells' worth."""
    row, column, sigma = blob
    height, width = image_size
    cell_height, cell_width = height / float(HEATMAP_SIZE), width / float(HEATMAP_SIZE)
    half_height = 2.5 * sigma * cell_height * rng.uniform(0.6, 1.4) / 2
    half_width = 2.5 * sigma * cell_width * rng.uniform(0.6, 1.4) / 2
    center_y = (row + rng.normal(0, 0.4)) * cell_height
    center_x = (column + rng.normal(0, 0.4)) * cell_width
    x0 = int(np.clip(center_x - half_width, 0, width - 2))
    y0 = int(np.clip(center_y - half_height, 0, height - 2))
    return (x0, y0, int(np.clip(center_x + half_width, x0 + 1, width - 1)),
            int(np.clip(center_y + half_height, y0 + 1, height - 1)))


def make_records(count, seed=0):
    """`count` synthetic ImageRecords (see the module docstring), the same for a seed."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:HEATMAP_SIZE, 0:HEATMAP_SIZE]
    records = []
    for index in range(count):
        long_side, short_side = int(rng.integers(400, 641)), rng.uniform(0.6, 1.0)
        size = (int(long_side * short_side), long_side)
        image_size = size if rng.random() < 0.75 else size[::-1]
        heatmap = rng.uniform(0, 0.05, (HEATMAP_SIZE, HEATMAP_SIZE))
        blobs = []
        for amplitude in [1.0] + list(rng.uniform(0.3, 0.9, int(rng.integers(0, 3)))):
            blob, values = _blob(rng, rows, columns)
            heatmap += amplitude * values
            blobs.append(blob)
        label = int(rng.integers(NUM_CLASSES))
        boxes = [_box_around(rng, blob, image_size) for blob in blobs[:int(rng.integers(1, 3))]]
        others = [int(other) for other in rng.choice(NUM_CLASSES, 5, replace=False)
                  if other != label][:4]
        rank = 0 if rng.random() < 0.75 else int(rng.integers(1, 6))
        predictions = (others[:rank] + [label] + others[rank:])[:5]
        records.append(ImageRecord("synthetic_%05d" % index, (label,), {label: boxes},
                                   predictions, {label: heatmap.astype(np.float32)}, image_size))
    return records


def machine():
    """The hardware and software the times were measured on (common.machine), with the
    versions of numpy and OpenCV."""
    return common.machine(cpu_fallback="unknown CPU", numpy=np.__version__,
                          opencv=cv2.__version__)


class _Progress(object):
    """Prints how many records are done, on stderr, every tenth of them."""

    def __init__(self, label, total):
        self.label, self.total, self.done, self.shown = label, total, 0, 0

    def __call__(self, count):
        self.done += count
        if self.done * 10 // self.total > self.shown:
            self.shown = self.done * 10 // self.total
            common.log("  %s: %d of %d images" % (self.label, self.done, self.total))


def run_samples(records, outcomes, seed, name="run"):
    """A run's samples for the statistics: the localisation columns from each image's
    outcomes, and a seeded uniform value (for right/wrong columns 0 or 1) per image and
    ground-truth class for every pointing and faithfulness column."""
    stems = [record.image for record in records]
    samples = dict(localization_samples(stems, outcomes))
    rng = np.random.default_rng(seed)
    units = [(record.image, record.gt_labels[0]) for record in records]
    for column in metrics("pointing") + metrics("faithfulness"):
        values = rng.random(len(units))
        samples[column.key] = Samples(units, np.round(values) if column.outcome ==
                                      "right/wrong" else values)
    return RunSamples(name, "synthetic", {}, samples)


def shuffled(run, seed):
    """A second run of the same images: every column's values given to other images."""
    order = np.random.default_rng(seed).permutation(len(next(iter(run.samples.values())).units))
    return run._replace(run="other", samples={
        key: Samples(found.units, np.asarray(found.values)[order])
        for key, found in run.samples.items()})


def measure(records, protocol, thresholds, workers, bootstrap=0, seed=0):
    """The time and the scores of evaluate_records on records under protocol, and with
    bootstrap resamples, the time of the row's intervals and of a paired comparison."""
    stopwatch = common.Stopwatch()
    evaluation = evaluate_records(records, protocol, THRESHOLD, thresholds, workers=workers,
                                  progress=_Progress(protocol, len(records)),
                                  outcomes=bootstrap > 0)
    seconds = stopwatch.seconds()
    v2 = evaluation.max_box_acc_v2
    found = {"protocol": protocol, "images": len(records), "thresholds": len(thresholds),
             "workers": workers, "seconds": seconds, "images_per_second": len(records) / seconds,
             "load_average": stopwatch.load_averages(),
             "max_box_acc": evaluation.max_box_acc.accuracy,
             "max_box_acc_threshold": evaluation.max_box_acc.threshold,
             "max_box_acc_v2": v2.accuracy if v2 else None,
             "gt_known_loc_accuracy": evaluation.metrics.gt_known_loc_accuracy,
             "bootstrap": bootstrap}
    if bootstrap:
        run = run_samples(records, evaluation.outcomes, seed)
        stopwatch = common.Stopwatch()
        intervals, _ = run_intervals(run.samples, bootstrap, seed)
        found["intervals_seconds"] = stopwatch.seconds()
        found["intervals_share"] = found["intervals_seconds"] / seconds
        found["intervals_load_average"] = stopwatch.load_averages()
        found["max_box_acc_interval"] = list(intervals["max_box_acc"])
        other = shuffled(run, seed + 1)
        stopwatch = common.Stopwatch()
        comparisons, _ = compare_pair(run, other, bootstrap, seed)
        found["comparison_seconds"] = stopwatch.seconds()
        found["comparison_columns"] = len(comparisons)
    return found


def markdown(report):
    settings = report["settings"]
    lines = [
        "Machine: {cpu}, {cores} cores, {memory_gb} GB memory; Python {python}, numpy {numpy}, "
        "OpenCV {opencv}; {system}.".format(**report["machine"]), "",
        "Settings: {images:,} synthetic images (7x7 heatmaps, ImageNet-like image sizes and "
        "boxes), {thresholds} thresholds ({thresholds_spec}), errors at threshold {threshold}, "
        "IoU 0.5, {workers} worker process(es), seed {seed}.".format(**settings), "",
        "| protocol | images | thresholds | workers | seconds | images/s | MaxBoxAcc "
        "(threshold) | MaxBoxAccV2 | load average before / after |",
        "|---|---|---|---|---|---|---|---|---|"]
    for row in report["measurements"]:
        v2 = "-" if row["max_box_acc_v2"] is None else "%.1f" % row["max_box_acc_v2"]
        lines.append("| %s | %d | %d | %d | %.1f | %.1f | %.1f (%g) | %s | %.2f / %.2f |" % (
            row["protocol"], row["images"], row["thresholds"], row["workers"], row["seconds"],
            row["images_per_second"], row["max_box_acc"], row["max_box_acc_threshold"], v2,
            row["load_average"][0], row["load_average"][1]))
    with_bootstrap = [row for row in report["measurements"] if row.get("bootstrap")]
    if with_bootstrap:
        lines += ["", "The table's statistics, %d resamples: the 95%% intervals of every score "
                  "of the row, and one paired comparison of two runs (every column):"
                  % with_bootstrap[0]["bootstrap"], "",
                  "| protocol | images | table seconds | intervals seconds | intervals' share "
                  "of the table | MaxBoxAcc's interval | paired comparison seconds | load "
                  "average before / after the intervals |", "|---|---|---|---|---|---|---|---|"]
        for row in with_bootstrap:
            lines.append("| %s | %d | %.1f | %.2f | %.1f%% | [%.1f, %.1f] | %.2f | %.2f / %.2f |"
                         % (row["protocol"], row["images"], row["seconds"],
                            row["intervals_seconds"], 100 * row["intervals_share"],
                            row["max_box_acc_interval"][0], row["max_box_acc_interval"][1],
                            row["comparison_seconds"], row["intervals_load_average"][0],
                            row["intervals_load_average"][1]))
    lines += ["", "Command: `%s`" % report["command"]]
    return "\n".join(lines) + "\n"


def _protocols(text):
    protocols = text.split(",")
    unknown = [protocol for protocol in protocols if protocol not in PROTOCOLS]
    if unknown:
        raise argparse.ArgumentTypeError("unknown protocol %s; choose from %s"
                                         % (", ".join(unknown), ",".join(PROTOCOLS)))
    return protocols


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=common.at_least(1), default=50000, metavar="N",
                        help="synthetic images (default: %(default)s, ImageNet's validation "
                             "set)")
    parser.add_argument("--thresholds", default="0:1:0.01", metavar="SPEC",
                        help="MaxBoxAcc's threshold sweep, as scripts/evaluate_localization.py "
                             "takes it (default: %(default)s, 100 thresholds; wsolevaluation's "
                             "own step is 0.001)")
    parser.add_argument("--workers", type=common.at_least(1), default=default_workers(),
                        metavar="N",
                        help="processes (default: the cores this process may use, here "
                             "%(default)s)")
    parser.add_argument("--protocol", type=_protocols, default=list(PROTOCOLS),
                        metavar="LIST", help="comma-separated protocols to time (default: %s)"
                                             % ",".join(PROTOCOLS))
    parser.add_argument("--seed", type=int, default=0, help="of the synthetic records and of "
                                                            "the bootstrap (default: "
                                                            "%(default)s)")
    parser.add_argument("--bootstrap", type=common.at_least(0), default=1000, metavar="N",
                        help="resamples of the intervals and the paired comparison timed after "
                             "each table (default: %(default)s; 0: the table alone)")
    parser.add_argument("--output", default=common.DEFAULT_OUTPUT, metavar="DIR",
                        help="folder of evaluation.json and evaluation.md (default: "
                             "benchmarks/results)")
    args = parser.parse_args(argv)
    try:
        thresholds = parse_thresholds(args.thresholds)
    except ValueError as error:
        parser.error("argument --thresholds: %s" % error)
    common.log("making %d synthetic records" % args.images)
    records = make_records(args.images, args.seed)
    measurements = []
    for protocol in args.protocol:
        measurements.append(measure(records, protocol, thresholds, args.workers,
                                    args.bootstrap, args.seed))
        common.log("%s: %.1f s, %.1f images/s" % (protocol, measurements[-1]["seconds"],
                                                  measurements[-1]["images_per_second"]))
        if args.bootstrap:
            common.log("%s: intervals %.2f s (%.1f%% of the table), a paired comparison %.2f s"
                       % (protocol, measurements[-1]["intervals_seconds"],
                          100 * measurements[-1]["intervals_share"],
                          measurements[-1]["comparison_seconds"]))
    report = {"command": common.command_line("evaluation.py", argv),
              "machine": machine(),
              "settings": {"images": args.images, "thresholds": len(thresholds),
                           "thresholds_spec": args.thresholds, "threshold": THRESHOLD,
                           "workers": args.workers, "seed": args.seed,
                           "bootstrap": args.bootstrap},
              "measurements": measurements}
    text = markdown(report)
    common.write_report(args.output, "evaluation", report, text, json_newline=True)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
