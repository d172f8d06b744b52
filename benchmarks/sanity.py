#!/usr/bin/env python
"""Benchmark: the sanity check (l2caf.runs.sanity: cascading and independent randomisation
and the random logit) against what it must at least cost, the run's own method made again
once per randomisation step.

On the demo model, in one process: `--images` synthetic images are explained by each of
`--methods` (a run folder each, configs/demo_fast.yaml's settings, `--max_iters` for L2-CAF);
then, per method,

  - the run's own cost per heatmap: the method's explainer on the run's images and classes,
    in one call, as the sanity check calls it (after a warm-up: median and min-max of
    `--repeats` runs);
  - the sanity check of the folder (--overwrite, after a warm-up: median of `--repeats`),
    whole and with --limit of half the images: the difference, per heatmap, is the check's
    cost per heatmap without what it pays once per folder and shard (the network and the
    method built, the gradients' graph, the trained weights read).

A sanity check explains every heatmap 2 x blocks + 1 times (each cascading step, each
independent step, the random logit); the issue's reference, (blocks + 1) x the run's own
cost, is the cascade and the random logit alone. The ratio (check per heatmap, without the
once-per-folder cost) / ((2 x blocks + 1) x own cost) is the cost of the randomisation, of
the similarities (SSIM at the input's size) and of the writes; the goal is 1.25 at most.

Writes sanity.json and sanity.md (sanity_quick.* with --quick) to --output and prints the
table. Examples:
  python benchmarks/sanity.py                    # gradcam, l2caf, random on 16 images
  python benchmarks/sanity.py --quick            # a smoke run
"""
import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import (REPO_ROOT, Stopwatch, add_report_options,  # noqa: E402
                               format_number, format_spread, log, parse_report_options, spread,
                               timed, write_report)

FULL_DEFAULTS = {"methods": "gradcam,l2caf,random", "images": 16, "repeats": 3,
                 "max_iters": 300}
QUICK_DEFAULTS = {"methods": "gradcam", "images": 2, "repeats": 1, "max_iters": 20}
GOAL = 1.25


def make_runs(folder, options):
    """The data set and a run folder per method in `folder`; returns {method: run folder}."""
    from l2caf.cli.visualize_fast import main as visualize
    from l2caf.synthetic import make_dataset
    data = os.path.join(folder, "data")
    make_dataset(data, options.images, seed=777, progress=False)
    runs = {}
    for method in options.methods.split(","):
        runs[method] = os.path.join(folder, method)
        status = visualize(["--config", os.path.join(REPO_ROOT, "configs", "demo_fast.yaml"),
                            "--checkpoint", os.path.join(REPO_ROOT, "l2caf", "demo_model",
                                                         "demo_densenet.ckpt"),
                            "--labels", os.path.join(REPO_ROOT, "l2caf", "demo_model",
                                                     "labels.txt"),
                            "--images", os.path.join(data, "images"),
                            "--annotations", os.path.join(data, "annotations"),
                            "--output_dir", runs[method], "--method", method,
                            "--max_iters", str(options.max_iters), "--gpu", str(options.gpu),
                            "--progress", "false"])
        if status != 0:
            raise SystemExit("the %s run failed (status %d)" % (method, status))
    return runs


def measure_method(method, folder, options):
    """The timings of one run folder: its own cost and its sanity check's, per heatmap."""
    import numpy as np
    from l2caf import images
    from l2caf.models.randomization import Randomizer
    from l2caf.models.sources import model_source
    from l2caf.runs import read, sanity
    from l2caf.settings import OPTIMIZED_METHODS

    config = read.read_config(folder).copy()
    config["gpu"], config["progress"] = options.gpu, False
    by_image = read.read_lines(folder)
    heatmaps = sum(len(lines) for lines in by_image.values())
    per_image = max(len(lines) for lines in by_image.values())
    rows = min(len(by_image), sanity.IMAGES_PER_CHUNK) * per_image

    explainer = model_source(config).explainer(
        config, rows if config.method in OPTIMIZED_METHODS else 1)
    randomizer = Randomizer(explainer.model, 0)
    try:
        pictures = explainer.model.prepare([images.read_image(image) for image in by_image])
        keys = [os.path.basename(image) for image in by_image]
        classes = [[line.get("class_id") for line in lines] for lines in by_image.values()]

        def own():  # as the check calls it: a chunk of images at a time
            chunk = sanity.IMAGES_PER_CHUNK
            for first in range(0, len(keys), chunk):
                explainer(pictures[first:first + chunk], classes[first:first + chunk],
                          keys[first:first + chunk])
        own_seconds = timed(own, options.repeats)
        blocks = len(randomizer.names)
    finally:
        explainer.model.close()
    half = len(by_image) // 2
    half_heatmaps = sum(len(by_image[image]) for image in sorted(by_image)[:half])

    def check(limit):
        job = sanity.SanityOptions(overwrite=True, progress=False, gpu=options.gpu, limit=limit)
        return sanity.FolderSanity(folder, job).run()
    whole = timed(lambda: check(0), options.repeats)
    halved = timed(lambda: check(half), options.repeats)
    own_per_heatmap = spread([seconds / heatmaps for seconds in own_seconds])
    check_per_heatmap = spread([seconds / heatmaps for seconds in whole])
    marginal = spread([(all_images - some) / (heatmaps - half_heatmaps)
                       for all_images, some in zip(whole, halved)])
    once = spread([all_images - marginal["median"] * heatmaps for all_images in whole])
    steps = 2 * blocks + 1
    ratio = marginal["median"] / (steps * own_per_heatmap["median"])
    log("%s: own %.4f s/heatmap, check %.4f s/heatmap (%.4f without the %.2f s per folder), "
        "ratio %.3f" % (method, own_per_heatmap["median"], check_per_heatmap["median"],
                        marginal["median"], once["median"], ratio))
    return {"method": method, "heatmaps": heatmaps, "images": len(by_image), "blocks": blocks,
            "explanations_per_heatmap": steps,
            "own_seconds_per_heatmap": own_per_heatmap,
            "check_seconds_per_heatmap": check_per_heatmap,
            "check_seconds_per_heatmap_after_start": marginal, "start_seconds": once,
            "ratio": ratio, "network_input": list(np.shape(pictures)[1:3])}


def markdown(report):
    """The report as a Markdown table and a line on the machine and load."""
    lines = ["| method | heatmaps | blocks | explanations per heatmap (2 x blocks + 1) | "
             "s/heatmap, the run's own | (blocks + 1) x own | (2 x blocks + 1) x own | "
             "s/heatmap, the sanity check | s/heatmap, without the once-per-folder cost | "
             "s per folder, once | ratio: without the once-per-folder cost / ((2 x blocks + "
             "1) x own) (goal <= %g) |" % GOAL, "|---|---|---|---|---|---|---|---|---|---|---|"]
    for result in report["methods"]:
        own = result["own_seconds_per_heatmap"]
        lines.append("| %s | %d | %d | %d | %s | %s | %s | %s | %s | %s | %.3f |" % (
            result["method"], result["heatmaps"], result["blocks"],
            result["explanations_per_heatmap"], format_spread(own),
            format_number((result["blocks"] + 1) * own["median"]),
            format_number(result["explanations_per_heatmap"] * own["median"]),
            format_spread(result["check_seconds_per_heatmap"]),
            format_spread(result["check_seconds_per_heatmap_after_start"]),
            format_spread(result["start_seconds"]), result["ratio"]))
    machine = report["machine"]
    lines += ["", "On the demo model (demo_densenet, 168x168, %d blocks), %d synthetic images; "
              "measured on %s (%d cores, %.1f GB, GPUs: %s), TensorFlow %s, Python %s; load "
              "average %.2f before, %.2f after; %d repeat(s) after a warm-up, median "
              "(min–max)." % (report["methods"][0]["blocks"], report["images"], machine["cpu"],
                              machine["cores"], machine["memory_gb"],
                              ", ".join(machine["gpus"]) or "none", machine["tensorflow"],
                              machine["python"], report["load_average"][0],
                              report["load_average"][1], report["repeats"])]
    return "\n".join(lines) + "\n"


def parse_options(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", help="comma-separated methods (default: %s)"
                                          % FULL_DEFAULTS["methods"])
    parser.add_argument("--images", type=int, metavar="N",
                        help="synthetic images of the runs (default: %d)"
                             % FULL_DEFAULTS["images"])
    parser.add_argument("--max_iters", type=int, metavar="N",
                        help="L2-CAF's iterations at most (default: %d, the config's)"
                             % FULL_DEFAULTS["max_iters"])
    add_report_options(parser, FULL_DEFAULTS, QUICK_DEFAULTS)
    return parse_report_options(parser, argv, FULL_DEFAULTS, QUICK_DEFAULTS,
                                ("images", "repeats", "max_iters"))


def main(argv=None):
    options = parse_options(argv)
    from benchmarks.measure import machine

    stopwatch = Stopwatch()
    folder = tempfile.mkdtemp(prefix="l2caf_sanity_benchmark_")
    try:
        runs = make_runs(folder, options)
        results = [measure_method(method, path, options) for method, path in runs.items()]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report = {"methods": results, "images": options.images, "repeats": options.repeats,
              "machine": machine(), "load_average": stopwatch.load_averages(),
              "seconds": stopwatch.seconds(), "argv": sys.argv[1:] if argv is None else argv}
    text = markdown(report)
    paths = write_report(options.output, "sanity_quick" if options.quick else "sanity", report,
                         text, indent=2)
    print(text)
    print("written: %s, %s" % paths)
    return 0


if __name__ == "__main__":
    sys.exit(main())
