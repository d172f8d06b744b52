"""The command lines. Each script in scripts/ calls `launch`, which imports its module and
runs its `main`; errors become one line on stderr and an exit status:

    0    done
    1    done, but some images could not be used (failures.jsonl says which and why), or
         --merge found work still missing
    2    a usage or configuration error (a bad key or value, a missing checkpoint, an output
         folder holding results of other settings or written by another process, a heatmap
         the evaluation cannot use): nothing was written
    3    the results cannot be written (output folder not a folder, not writable, disk
         full): the finished results are kept
    130  interrupted (Ctrl-C): the finished results are kept; the same command continues

TensorFlow is imported only once the command line is understood, so that --help and
mistakes are answered at once.
"""
import argparse
import importlib
import sys

from l2caf.errors import ConfigError, L2CAFError, OutputError

INTERRUPTED = ("interrupted: the finished results are kept; run the same command again to "
               "continue")


def run_command(command, interrupted=INTERRUPTED):
    """command()'s exit status, with the library's errors and Ctrl-C (one line,
    `interrupted`) as described above."""
    try:
        return command()
    except OutputError as error:
        print("error: %s" % error, file=sys.stderr)
        return 3
    except L2CAFError as error:
        print("error: %s" % error, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130


def positive(text):
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number, got %r" % text) from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1, got %d" % value)
    return value


def box_threshold(text):
    """argparse type: a box threshold, a fraction of a heatmap's maximum in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a number in [0, 1), got %r" % text) from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError("must be in [0, 1), got %g" % value)
    return value


def thresholds_option(text):
    """The --thresholds sweep (l2caf.evaluation.parse_thresholds); ConfigError if malformed."""
    from l2caf.evaluation import parse_thresholds
    try:
        return parse_thresholds(text)
    except ValueError as error:
        raise ConfigError("--thresholds %s" % error) from None


def add_picture_options(parser):
    """The options of the pictures (scripts/make_figure.py, scripts/make_report.py): the
    annotations, the box's protocol and threshold, the colour map and the opacity."""
    from l2caf.evaluation import PROTOCOLS
    parser.add_argument("--annotations", metavar="DIR",
                        help="the images' boxes, as scripts/evaluate_localization.py takes "
                             "them (bounding-box XMLs named after the images, or "
                             "wsolevaluation metadata); default: each run's own config key "
                             "annotations, when it names one (paths relative to the folder the "
                             "run was started from); without boxes no IoU is shown")
    parser.add_argument("--protocol", default="cam", choices=PROTOCOLS,
                        help="how a heatmap becomes the drawn box, as in "
                             "scripts/evaluate_localization.py: cam, adl (at the image's size) "
                             "or wsol (at 224x224, drawn scaled back onto the image) "
                             "(default: %(default)s)")
    parser.add_argument("--threshold", type=box_threshold, default=0.2,
                        help="fraction of a heatmap's maximum that the box keeps, in [0, 1) "
                             "(default: %(default)s)")
    parser.add_argument("--colormap", default="bwr",
                        help="matplotlib colour map of the overlays (default: %(default)s, the "
                             "runs' own overlays'; e.g. jet, viridis, inferno, turbo)")
    parser.add_argument("--alpha", type=float, default=0.5,
                        help="opacity of the heatmap on the image, 0..1 (default: %(default)s)")


def check_picture_options(args):
    """ConfigError for a colour map or opacity of add_picture_options that cannot be drawn:
    mistakes first, before any work."""
    from l2caf.report import drawing
    drawing.colormap(args.colormap)
    drawing.check_alpha(args.alpha)


def launch(module, description):
    """What a script runs: `module`'s main(description=...), Ctrl-C included while Python
    imports it."""
    try:
        main = importlib.import_module(module).main
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    return main(description=description)


def visualizer_main(description, option_table, argv=None):
    """A visualiser's main: --merge, --list_layers, or a run of the runner."""
    from l2caf import config as configuration

    def command():
        config, args = configuration.parse(description, option_table, argv)
        from l2caf import run_folder, runner  # TensorFlow from here on
        if args.merge:
            return print_merge_report(run_folder.merge(args.merge))
        if args.list_layers:
            print("\n".join(runner.layer_lines(config)))
            return 0
        return print_summary(runner.Run(config, args.overwrite).execute())
    return run_command(command)


def print_summary(summary):
    """Prints a runner.Summary; returns 1 if an image failed, else 0. The failures were
    printed as they happened (and are in failures.jsonl): the summary counts them. (Not
    called report: l2caf.cli.report is the report command's module.)"""
    rate = summary.heatmaps / max(summary.seconds, 1e-9)
    print("%d images done (%d heatmaps, %.2f heatmaps/s), %d skipped as already done, %d "
          "failed; results in %s" % (summary.images_done, summary.heatmaps, rate,
                                     summary.skipped, len(summary.failures),
                                     summary.results_path))
    if not summary.failures:
        return 0
    print("%d image(s) or class(es) could not be explained (see above; failures.jsonl says "
          "why); the same command tries them again" % len(summary.failures), file=sys.stderr)
    return 1


def print_merge_report(report):
    """Prints a run_folder.MergeReport; returns 1 if work is missing or failed, else 0."""
    print("%s: %d lines (%d duplicates dropped) for %d images; %d failed, %d missing, "
          "%d incomplete" % (report.path, report.lines, report.duplicates, report.images,
                             len(report.failed), len(report.missing), len(report.incomplete)))
    for label, paths in (("failed", report.failed), ("missing", report.missing),
                         ("incomplete", report.incomplete)):
        if paths:
            print("  %s: %s%s" % (label, ", ".join(paths[:5]),
                                  " ..." if len(paths) > 5 else ""))
    if report.shards_to_rerun:
        print("rerun shard(s) %s with the same command to finish them, then merge again"
              % ", ".join(map(str, report.shards_to_rerun)))
        return 1
    return 0
