"""scripts/visualize_attention.py: the slow visualiser, the visualisation job
(l2caf.runs.visualize) one image at a time with every picture (overlays, optionally GIFs) and
a .npy file per heatmap. The fast visualiser (l2caf.cli.visualize_fast) is the same command
with other defaults."""
import sys

from l2caf import config
from l2caf.cli import print_merge_report, run_command

OPTIONS = config.options()


def main(argv=None, description=__doc__):
    return visualizer_main(description, OPTIONS, argv)


def visualizer_main(description, option_table, argv=None):
    """A visualiser's main: --merge, --list_layers, or a run."""
    def command():
        run_config, args = config.parse(description, option_table, argv)
        if args.merge:
            from l2caf.runs.merge import merge_results
            return print_merge_report(merge_results(args.merge))
        from l2caf.models.sources import layer_lines
        from l2caf.runs.visualize import Run  # TensorFlow once a model is built
        if args.list_layers:
            print("\n".join(layer_lines(run_config)))
            return 0
        return print_summary(Run(run_config, args.overwrite).execute())
    return run_command(command)


def print_summary(summary):
    """Prints an l2caf.runs.visualize.Summary; returns 1 if an image failed, else 0. The
    failures were printed as they happened (and are in failures.jsonl): the summary counts
    them."""
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
