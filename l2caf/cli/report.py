"""scripts/make_report.py: the report page of run folders (see l2caf.report.page). No
TensorFlow."""
import argparse
import os

from l2caf import config
from l2caf.cli import (add_picture_options, check_picture_options, positive, run_command,
                       thresholds_option)
from l2caf.errors import ConfigError
from l2caf.evaluation import default_workers


def main(argv=None, description=__doc__):
    parser = config.ArgumentParser(description=description,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", nargs="+", required=True, metavar="DIR",
                        help="results folders of visualiser runs (sweeps, merged or not); "
                             "one table row each, and every heatmap in the gallery")
    parser.add_argument("--output", required=True, metavar="DIR",
                        help="folder for report.html, its curves and thumbs/ (the thumbnails); "
                             "keep it where it can reach the run folders by the same relative "
                             "paths (the page links to their GIFs and overlays)")
    add_picture_options(parser)
    parser.add_argument("--iou", type=float, default=0.5,
                        help="IoU with a ground-truth box that a box needs to be right, for "
                             "the table and the gallery's 'localised' (default: %(default)s)")
    parser.add_argument("--thresholds", default="0:1:0.01", metavar="SPEC",
                        help="the table's MaxBoxAcc sweep, as scripts/evaluate_localization.py "
                             "takes it (default: %(default)s)")
    parser.add_argument("--thumbnail_size", type=positive, default=192, metavar="PIXELS",
                        help="longer side of the gallery's thumbnails (default: %(default)s)")
    parser.add_argument("--workers", type=positive, default=default_workers(), metavar="N",
                        help="threads that read the images and make the thumbnails, and "
                             "processes that box the table's heatmaps (default: the cores "
                             "this process may use, here %(default)s)")
    parser.add_argument("--progress", choices=("true", "false"), default="true",
                        help="show progress bars (default: %(default)s)")
    args = parser.parse_args(argv)
    return run_command(lambda: make_report(args))


def make_report(args):
    """Writes the report; returns 0."""
    from l2caf.report.page import write_report
    from l2caf.report.runs import PictureRun
    check_picture_options(args)
    if not 0.0 < args.iou <= 1.0:
        raise ConfigError("--iou must be in (0, 1], got %g" % args.iou)
    thresholds = thresholds_option(args.thresholds)
    runs = [PictureRun(results_dir, args.annotations) for results_dir in args.results]
    summary = write_report(runs, args.output, args.threshold, args.protocol, args.iou,
                           thresholds, args.workers, args.colormap, args.alpha,
                           args.thumbnail_size, args.progress == "true")
    print("written: %s (%d heatmaps of %d runs, %d table rows; %d thumbnails made, %d kept "
          "from before); open it in a browser: file://%s"
          % (summary.path, summary.heatmaps, len(runs), summary.table_rows,
             summary.thumbnails_made, summary.thumbnails_kept,
             os.path.abspath(summary.path)))
    return 0
