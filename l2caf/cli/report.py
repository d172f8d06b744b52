"""scripts/make_report.py: the report page of run folders (see l2caf.report.page). No
TensorFlow."""
import os

from l2caf import config
from l2caf.cli import options, run_command
from l2caf.cli.options import positive


def main(argv=None, description=__doc__):
    parser = config.ArgumentParser(description=description)
    options.add_results(parser, "results folders of visualiser runs (sweeps, merged or not); "
                                "one table row each, and every heatmap in the gallery")
    parser.add_argument("--output", required=True, metavar="DIR",
                        help="folder for report.html, its curves and thumbs/ (the thumbnails); "
                             "keep it where it can reach the run folders by the same relative "
                             "paths (the page links to their GIFs and overlays)")
    options.add_picture_options(parser)
    options.add_iou(parser, "IoU with a ground-truth box that a box needs to be right, for the "
                            "table and the gallery's 'localised' (default: %(default)s)")
    options.add_thresholds(parser, "the table's MaxBoxAcc sweep, as "
                                   "scripts/evaluate_localization.py takes it (default: "
                                   "%(default)s)")
    parser.add_argument("--thumbnail_size", type=positive, default=192, metavar="PIXELS",
                        help="longer side of the gallery's thumbnails (default: %(default)s)")
    options.add_bootstrap(parser, "bootstrap resamples of the images for the table's 95%% "
                                  "intervals (in each cell and as error bars), the paired "
                                  "comparisons of the runs (a table and a forest plot) and, "
                                  "for three runs or more, the metrics' agreement, as "
                                  "scripts/evaluate_localization.py makes them; 0 turns them "
                                  "off (default: %(default)s)")
    options.add_workers(parser, "threads that read the images and make the thumbnails, and "
                                "processes that box the table's heatmaps (default: the cores "
                                "this process may use, here %(default)s)")
    options.add_progress(parser)
    args = parser.parse_args(argv)
    return run_command(lambda: make_report(args))


def make_report(args):
    """Writes the report; returns 0."""
    from l2caf.report.page import write_report
    from l2caf.report.pictures import PictureRun
    options.check(args)
    runs = [PictureRun(results_dir, args.annotations) for results_dir in args.results]
    summary = write_report(runs, args.output, args.threshold, args.protocol, args.iou,
                           args.thresholds, args.workers, args.colormap, args.alpha,
                           args.thumbnail_size, args.progress == "true", args.bootstrap,
                           args.seed)
    print("written: %s (%d heatmaps of %d runs, %d table rows; %d thumbnails made, %d kept "
          "from before); open it in a browser: file://%s"
          % (summary.path, summary.heatmaps, len(runs), summary.table_rows,
             summary.thumbnails_made, summary.thumbnails_kept,
             os.path.abspath(summary.path)))
    return 0
