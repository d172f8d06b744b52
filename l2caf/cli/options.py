"""The options several commands share, each declared and validated here once: --results,
--workers, --progress, --shard, --gpu, the boxes' and pictures' --annotations,
--protocol, --threshold, --thresholds, --iou, --colormap and --alpha, and the table's
statistics' --bootstrap and --seed. A command adds the ones
it takes (with its own help where the option means more there) and calls `check` first
thing, inside run_command: a bad value is one line and exit status 2."""
import argparse

from l2caf.errors import ConfigError

PROGRESS_CHOICES = ("true", "false")


def positive(text):
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number, got %r" % text) from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1, got %d" % value)
    return value


def add_results(parser, help_text):
    parser.add_argument("--results", nargs="+", required=True, metavar="DIR", help=help_text)


def add_workers(parser, help_text, default=None):
    """--workers N; default: the cores this process may use (l2caf.parallel)."""
    from l2caf.parallel import default_workers
    parser.add_argument("--workers", type=int, metavar="N",
                        default=default_workers() if default is None else default,
                        help=help_text)


def add_progress(parser):
    parser.add_argument("--progress", default="true", choices=PROGRESS_CHOICES,
                        help="show progress bars (default: %(default)s)")


def add_trust_model(parser):
    """--trust_model: load a Keras run's model even if its configuration runs code."""
    parser.add_argument("--trust_model", nargs="?", const="true", default="false",
                        choices=("true", "false"),
                        help="load a Keras run's saved model even if its configuration runs "
                             "code (a Lambda layer; see docs/keras.md), for models whose "
                             "source you trust; a run folder's config.yaml never gives this "
                             "trust, whatever it says (default: %(default)s)")


def add_shard(parser, help_text):
    parser.add_argument("--shard", default="0/1", metavar="INDEX/COUNT", help=help_text)


def add_gpu(parser):
    parser.add_argument("--gpu", type=int, default=0,
                        help="GPU index (-1: the CPU); the CPU when there is no GPU (default: "
                             "%(default)s)")


def add_annotations(parser, help_text, required=False):
    parser.add_argument("--annotations", required=required, metavar="DIR", help=help_text)


def add_protocol(parser, help_text):
    from l2caf.evaluation import PROTOCOLS
    parser.add_argument("--protocol", default="cam", choices=PROTOCOLS, help=help_text)


def add_threshold(parser, help_text):
    parser.add_argument("--threshold", type=float, default=0.2, help=help_text)


def add_thresholds(parser, help_text):
    parser.add_argument("--thresholds", default="0:1:0.01", metavar="SPEC", help=help_text)


def add_iou(parser, help_text):
    parser.add_argument("--iou", type=float, default=0.5, help=help_text)


def add_bootstrap(parser, help_text=None):
    """--bootstrap N and --seed S: the table's intervals, comparisons and agreement
    (l2caf.evaluation.statistics and .comparisons). help_text: --bootstrap's, where the
    command shows them otherwise than scripts/evaluate_localization.py's files."""
    from l2caf.evaluation.statistics import DEFAULT_RESAMPLES, DEFAULT_SEED
    parser.add_argument("--bootstrap", type=int, default=DEFAULT_RESAMPLES, metavar="N",
                        help=help_text or
                        "bootstrap resamples of the images for every score's 95%% interval "
                        "(shown as 88.0 [81.0, 94.0]; the CSV and JSON gain <column>_ci_low "
                        "and _ci_high) and for the paired comparisons of the runs "
                        "(PREFIX_comparisons.csv, .json, .png, .pdf: each difference with its "
                        "interval, an exact McNemar or paired t-test, Holm's correction), "
                        "with, for three runs or more, the metrics' agreement (ranks, "
                        "Kendall's tau, Krippendorff's alpha: PREFIX_agreement.json); 0 turns "
                        "all of them off and gives the table alone (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, metavar="S",
                        help="seed of the bootstrap's resamples, 0 or more: the same seed gives "
                             "the same intervals to the digit (default: %(default)s)")


def add_picture_options(parser):
    """The options of the pictures (scripts/make_figure.py, scripts/make_report.py): the
    annotations, the box's protocol and threshold, the colour map and the opacity."""
    add_annotations(parser, "the images' boxes, as scripts/evaluate_localization.py takes "
                            "them (bounding-box XMLs named after the images, or "
                            "wsolevaluation metadata); default: each run's own config key "
                            "annotations, when it names one (paths relative to the folder "
                            "the run was started from); without boxes no IoU is shown")
    add_protocol(parser, "how a heatmap becomes the drawn box, as in "
                         "scripts/evaluate_localization.py: cam, adl (at the image's size) or "
                         "wsol (at 224x224, drawn scaled back onto the image) (default: "
                         "%(default)s)")
    add_threshold(parser, "fraction of a heatmap's maximum that the box keeps, in [0, 1) "
                          "(default: %(default)s)")
    parser.add_argument("--colormap", default="bwr",
                        help="matplotlib colour map of the overlays (default: %(default)s, the "
                             "runs' own overlays'; e.g. jet, viridis, inferno, turbo)")
    parser.add_argument("--alpha", type=float, default=0.5,
                        help="opacity of the heatmap on the image, 0..1 (default: %(default)s)")


def check(args):
    """Checks the shared options `args` holds, in this order, and converts two: --thresholds
    to the sweep's array (l2caf.evaluation.parse_thresholds) and --shard to a
    l2caf.runs.folder.Shard. ConfigError for the first that is wrong; returns args."""
    if "threshold" in args and not 0.0 <= args.threshold < 1.0:
        raise ConfigError("--threshold must be in [0, 1), got %g" % args.threshold)
    if "iou" in args and not 0.0 < args.iou <= 1.0:
        raise ConfigError("--iou must be in (0, 1], got %g" % args.iou)
    if "workers" in args and args.workers < 1:
        raise ConfigError("--workers must be at least 1, got %d" % args.workers)
    if "bootstrap" in args and args.bootstrap < 0:
        raise ConfigError("--bootstrap must be 0 (no intervals) or more resamples, got %d"
                          % args.bootstrap)
    if "bootstrap" in args and args.bootstrap == 1:
        raise ConfigError("--bootstrap 1 makes no interval: give 0 (none) or at least 2 "
                          "resamples (1000, the default, for two-digit percentiles)")
    if "seed" in args and "bootstrap" in args and args.seed < 0:
        raise ConfigError("--seed must be 0 or more, got %d" % args.seed)
    if "colormap" in args:
        from l2caf.report import drawing  # matplotlib, only for the pictures' commands
        drawing.colormap(args.colormap)
        drawing.check_alpha(args.alpha)
    if "thresholds" in args and isinstance(args.thresholds, str):
        from l2caf.evaluation import parse_thresholds
        try:
            args.thresholds = parse_thresholds(args.thresholds)
        except ValueError as error:
            raise ConfigError("--thresholds %s" % error) from None
    if "shard" in args and isinstance(args.shard, str):
        from l2caf.runs.folder import parse_shard
        args.shard = parse_shard(args.shard)
    return args
