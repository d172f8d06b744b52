"""scripts/evaluate_faithfulness.py: deletion and insertion AUC, Average Drop, Increase in
Confidence, Average Gain and ROAD's MoRF and LeRF AUC of every heatmap of visualiser runs, into
each run folder (the job:
l2caf.runs.faithfulness; the merge of its shards: l2caf.runs.merge)."""
import sys

from l2caf import config
from l2caf.cli import options, print_merge_report, run_command
from l2caf.errors import ConfigError
from l2caf.evaluation.faithfulness import DEFAULT_BATCH_SIZE, DEFAULT_ROAD_FRACTIONS
from l2caf.evaluation.imputation import DEFAULT_NOISE


def road_fractions(text: str) -> tuple:
    """--road_fractions' value: comma-separated fractions ("0.1,0.2"), as floats; the job
    checks their range."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ConfigError("--road_fractions must be comma-separated numbers such as "
                          "0.1,0.5,0.9, got %r" % text) from None


def main(argv=None, description=__doc__):
    parser = config.ArgumentParser(description=description)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--results", nargs="+", metavar="DIR",
                      help="results folders of visualiser runs (any method, slim or Keras "
                           "network, sweeps merged or not); each gets its own scores")
    what.add_argument("--merge", nargs="+", metavar="DIR",
                      help="join the shards' scores in each DIR into DIR/faithfulness.jsonl, "
                           "report the heatmaps still unscored, and exit (status 1 if any)")
    parser.add_argument("--steps", type=int, default=0, metavar="N",
                        help="steps of the deletion and insertion curves (N + 1 points); 0: "
                             "the protocol's, one row of the input's pixels per step (224 at "
                             "224x224, RISE's); fewer are faster but not the protocol "
                             "(default: %(default)s)")
    parser.add_argument("--road_fractions", default=",".join(
                            "%g" % fraction for fraction in DEFAULT_ROAD_FRACTIONS),
                        metavar="P,P,...",
                        help="ROAD's removal fractions, increasing, each in (0, 1): the most "
                             "(MoRF) or least (LeRF) relevant pixels removed and imputed; "
                             "other fractions are not the protocol's (default: %(default)s)")
    parser.add_argument("--road_noise", type=float, default=DEFAULT_NOISE, metavar="SIGMA",
                        help="standard deviation of the noise ROAD's linear imputation adds, on "
                             "images in [0, 1] (default: %(default)s, the reference's)")
    parser.add_argument("--batch_size", type=int, default=DEFAULT_BATCH_SIZE, metavar="N",
                        help="perturbed images per forward pass; the curves of several "
                             "heatmaps share a batch (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=0, metavar="N",
                        help="only the heatmaps of the first N images of each run, in sorted "
                             "order (0: all) (default: %(default)s)")
    options.add_shard(parser, "score every COUNT-th image from the INDEX-th, into "
                              "faithfulness_shard<INDEX>of<COUNT>.jsonl (join them with "
                              "--merge); auto: from a Slurm job array (SLURM_ARRAY_TASK_ID, "
                              "_MIN and _COUNT) (default: %(default)s)")
    options.add_gpu(parser)
    options.add_workers(parser, "threads reading and resizing the next images and their "
                                "heatmaps, and imputing the next heatmaps' ROAD images, while "
                                "the network works (default: %(default)s)",
                        default=4)
    parser.add_argument("--overwrite", action="store_true",
                        help="delete the folder's faithfulness scores (every shard's) first; "
                             "without it, scores made with other settings are refused")
    options.add_trust_model(parser)
    options.add_progress(parser)
    args = parser.parse_args(argv)
    return run_command(lambda: evaluate(args))


def evaluate(args):
    """Scores (or, with --merge, joins the shards of) every folder; returns the exit status."""
    from l2caf.runs import faithfulness, merge
    if args.merge:
        return max(print_merge_report(merge.merge_scores(folder)) for folder in args.merge)
    options.check(args)
    job_options = faithfulness.ScoringOptions(
        steps=args.steps, road_fractions=road_fractions(args.road_fractions),
        road_noise=args.road_noise, batch_size=args.batch_size, limit=args.limit, shard=args.shard,
        gpu=args.gpu, workers=args.workers, overwrite=args.overwrite,
        progress=args.progress == "true", trust_model=args.trust_model == "true").check()
    # Every folder is checked before any is scored.
    jobs = [faithfulness.FolderScores(folder, job_options) for folder in args.results]
    status = 0
    for job in jobs:
        summary = job.run()
        print("%s: %d heatmaps scored in %.1f s, %d already scored, %d images failed; scores in "
              "%s" % (summary.results_dir, summary.scored, summary.seconds, summary.skipped,
                      len(summary.failures), summary.scores_path))
        for reason in summary.failures[:20]:
            print("  %s" % reason, file=sys.stderr)
        status = max(status, 1 if summary.failures else 0)
    return status
