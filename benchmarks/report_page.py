#!/usr/bin/env python
"""Benchmark: how fast a report page of a whole sweep opens in a browser.

Writes a synthetic report of --entries heatmaps with l2caf.report.page's own page (the
template, the gallery blob, the script), as scripts/make_report.py writes it for an
ImageNet-validation sweep: every row with boxes, scores, a loss history of 3 to 21 checks (an
L2-CAF run of up to 1000 iterations, checked every 50) and faithfulness scores, and
thumbnails of about 192 pixels (--thumbnails distinct JPEG files, shared round-robin by the
rows: only the first page's are ever loaded). Then opens it --repeats times in headless
Chromium (l2caf.report.browser, a fresh profile each time) and reads what the page records:

* drawn: milliseconds from the start of the navigation until the first page of cards is in
  the DOM (the HTML parsed, the JSON blob parsed, filtered, sorted and the cards made), as
  the page's script measures it with performance.now();
* sorted: the same with the gallery sorted by IoU (report.html#sort=iou), the costliest
  view to open;
* whether every image of the first page loaded;
* the wall time of each Chromium process (its start-up included), for reference.

Writes report_page.json and report_page.md (report_page_quick.* with --quick, which git
ignores) to --output and prints the table. Examples:
  python benchmarks/report_page.py                    # 50,000 heatmaps: the recorded results
  python benchmarks/report_page.py --quick            # 2,000 heatmaps, one load per view
"""
import argparse
import os
import platform
import re
import sys
import tempfile

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import (DEFAULT_OUTPUT, Stopwatch, fill_defaults,  # noqa: E402
                               load_average, write_report)
from l2caf.report import browser, page  # noqa: E402

THUMBNAIL = (192, 144)  # width, height: a 500 x 375 ImageNet image's thumbnail
WINDOW = (1280, 900)
FULL_DEFAULTS = {"entries": 50000, "repeats": 3}
QUICK_DEFAULTS = {"entries": 2000, "repeats": 1}


def synthetic_rows(count, thumbnails, seed=0):
    """Gallery rows (dicts of page.COLUMNS) of `count` heatmaps of 1000 classes."""
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(count):
        class_id = int(rng.integers(0, 1000))
        box = sorted(rng.uniform(0, 1, 2)), sorted(rng.uniform(0, 1, 2))
        truth = sorted(rng.uniform(0, 1, 2)), sorted(rng.uniform(0, 1, 2))
        checks = int(rng.integers(3, 22))
        losses = np.sort(rng.uniform(-30, 0, checks))[::-1]
        name = "ILSVRC2012_val_%08d" % (index + 1)
        rows.append({
            "run": 0, "name": name, "class_id": class_id,
            "probability": round(rng.uniform(), 4), "top1": class_id,
            "top1_probability": round(rng.uniform(), 4), "gt": [class_id],
            "correct": bool(rng.uniform() < 0.75), "iou": round(rng.uniform(), 4),
            "box": (box[0][0], box[1][0], box[0][1], box[1][1]),
            "gt_boxes": [(truth[0][0], truth[1][0], truth[0][1], truth[1][1])],
            "width": THUMBNAIL[0], "height": THUMBNAIL[1],
            # A real thumbnail's name is as long: the image, the class and a digest.
            "thumb": "thumbs/0/%d.jpg?%s_c%d_%016x" % (index % thumbnails, name, class_id, index),
            "overlay": None, "gif": None,
            "iterations": 50 * (checks - 1) + 1, "loss": round(float(losses[-1]), 4),
            "history": [[50 * check, float(loss)] for check, loss in enumerate(losses)],
            "deletion_auc": round(rng.uniform(0, 0.5), 4),
            "insertion_auc": round(rng.uniform(0.3, 0.9), 4),
            "average_drop": round(rng.uniform(), 4),
            "increase_in_confidence": float(rng.uniform() < 0.3)})
    return rows


def write_synthetic_report(folder, entries, thumbnails):
    """A report of `entries` synthetic heatmaps in folder; returns (path, bytes)."""
    os.makedirs(os.path.join(folder, "thumbs", "0"), exist_ok=True)
    rng = np.random.default_rng(1)
    for index in range(thumbnails):
        picture = rng.integers(0, 255, (THUMBNAIL[1], THUMBNAIL[0], 3), dtype=np.uint8)
        cv2.imwrite(os.path.join(folder, "thumbs", "0", "%d.jpg" % index),
                    cv2.GaussianBlur(picture, (0, 0), 3))
    classes = {str(class_id): "%d class %d" % (class_id, class_id) for class_id in range(1000)}
    data = page.gallery_blob([{"title": "L2-CAF, resnet_v2_50, postnorm", "annotated": True,
                               "folder": "outputs/resnet_v2_50_fast"}], classes,
                             synthetic_rows(entries, thumbnails), 0.2, "cam", 0.5)
    text = page.page_html("l2caf report: a synthetic sweep", "%d synthetic heatmaps" % entries,
                          "<p>(no table)</p>", "<p>(no curves)</p>", "", data)
    path = os.path.join(folder, "report.html")
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(text)
    return path, len(text.encode("utf-8"))


def open_page(path, fragment):
    """(milliseconds to the first drawn page, images on it, images loaded, wall seconds)."""
    stopwatch = Stopwatch()
    dom = browser.dump_dom(browser.file_url(path, fragment), WINDOW, budget_ms=10000)
    seconds = stopwatch.seconds()
    body = dict(re.findall(r'data-([\w-]+)="([^"]*)"', re.search(r"<body([^>]*)>",
                                                                 dom).group(1)))
    return (int(body["drawn-ms"]), int(body["images"]), int(body["images-loaded"]), seconds)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int,
                        help="heatmaps in the report (default: %d; with --quick: %d)"
                             % (FULL_DEFAULTS["entries"], QUICK_DEFAULTS["entries"]))
    parser.add_argument("--thumbnails", type=int, default=200,
                        help="distinct thumbnail files the rows share (default: %(default)s)")
    parser.add_argument("--repeats", type=int,
                        help="page loads per view (default: %d; with --quick: %d)"
                             % (FULL_DEFAULTS["repeats"], QUICK_DEFAULTS["repeats"]))
    parser.add_argument("--output", default=DEFAULT_OUTPUT,
                        help="folder for report_page.json and .md (report_page_quick.* with "
                             "--quick, which git ignores) (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: %s" % ", ".join(
                            "%s %s" % item for item in QUICK_DEFAULTS.items()))
    args = parser.parse_args(argv)
    fill_defaults(args, QUICK_DEFAULTS if args.quick else FULL_DEFAULTS)
    if args.entries < 1 or args.thumbnails < 1 or args.repeats < 1:
        parser.error("--entries, --thumbnails and --repeats must be at least 1")
    with tempfile.TemporaryDirectory(prefix="l2caf-report-page-") as folder:
        path, size = write_synthetic_report(folder, args.entries, args.thumbnails)
        views = {}
        for view, fragment in (("drawn", ""), ("sorted", "sort=iou")):
            loads = [dict(zip(("drawn_ms", "images", "images_loaded", "seconds"),
                              open_page(path, fragment)), load_average=load_average())
                     for _ in range(args.repeats)]
            views[view] = {"loads": loads,
                           "median_drawn_ms": float(np.median([load["drawn_ms"]
                                                               for load in loads])),
                           "all_images_loaded": all(load["images"] == load["images_loaded"]
                                                    for load in loads)}
    report = {"entries": args.entries, "page_megabytes": round(size / 1e6, 2),
              "views": views, "machine": {"platform": platform.platform(),
                                          "processor": platform.processor(),
                                          "cores": os.cpu_count(),
                                          "chromium": browser.find_chromium()}}
    lines = ["| heatmaps | page size (MB) | view | first page drawn (ms, median of %d) | "
             "images of the first page loaded | load average |" % args.repeats,
             "|---|---|---|---|---|---|"]
    for view, label in (("drawn", "as opened"), ("sorted", "sorted by IoU (#sort=iou)")):
        result = views[view]
        averages = [load["load_average"] for load in result["loads"]
                    if load["load_average"] is not None]
        lines.append("| %d | %.1f | %s | %.0f (%s) | %s | %s |" % (
            args.entries, size / 1e6, label, result["median_drawn_ms"],
            ", ".join(str(load["drawn_ms"]) for load in result["loads"]),
            "yes" if result["all_images_loaded"] else "no",
            "%.1f-%.1f" % (min(averages), max(averages)) if averages else "-"))
    write_report(args.output, "report_page_quick" if args.quick else "report_page", report,
                 "\n".join(lines) + "\n", indent=2)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
