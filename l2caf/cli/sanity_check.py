"""scripts/sanity_check.py: the model parameter randomisation test (cascading and
independent) and the random-logit test of every heatmap of visualiser runs, into each run
folder (the job: l2caf.runs.sanity; the merge of its shards: l2caf.runs.merge)."""
import sys

from l2caf import config
from l2caf.cli import options, run_command


def main(argv=None, description=__doc__):
    parser = config.ArgumentParser(description=description)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--results", nargs="+", metavar="DIR",
                      help="results folders of visualiser runs (any method, slim or Keras "
                           "network, sweeps merged or not); each gets its own sanity checks")
    what.add_argument("--merge", nargs="+", metavar="DIR",
                      help="join the shards' sanity checks in each DIR into DIR/sanity.jsonl, "
                           "report the heatmaps still unchecked, and exit (status 1 if any)")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="seed of the random weights and of the random logits; a folder's "
                             "checks are all of one seed (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=0, metavar="N",
                        help="only the heatmaps of the first N images of each run, in sorted "
                             "order (0: all) (default: %(default)s)")
    options.add_shard(parser, "check every COUNT-th image from the INDEX-th, into "
                              "sanity_shard<INDEX>of<COUNT>.jsonl (join them with --merge); "
                              "auto: from a Slurm job array (SLURM_ARRAY_TASK_ID, _MIN and "
                              "_COUNT) (default: %(default)s)")
    options.add_gpu(parser)
    options.add_workers(parser, "threads reading and resizing the next images while the "
                                "network works (default: %(default)s)", default=4)
    parser.add_argument("--overwrite", action="store_true",
                        help="delete the folder's sanity checks (every shard's) first; "
                             "without it, checks made with another seed or on other blocks "
                             "are refused")
    options.add_trust_model(parser)
    options.add_progress(parser)
    args = parser.parse_args(argv)
    return run_command(lambda: check(args))


def check(args):
    """Checks (or, with --merge, joins the shards of) every folder; returns the exit status."""
    from l2caf.runs import merge, sanity
    if args.merge:
        status = 0
        for folder in args.merge:
            report = merge.merge_scores(folder, "sanity")
            print("%s: %d lines (%d duplicates dropped) for the %d heatmaps of the results; %d "
                  "unchecked" % (report.path, report.lines, report.duplicates, report.total,
                                 len(report.missing)))
            if report.shards_to_rerun:
                print("rerun shard(s) %s with the same command to finish them (a --limit "
                      "leaves the rest unchecked), then merge again"
                      % ", ".join(map(str, report.shards_to_rerun)))
                status = 1
        return status
    options.check(args)
    job_options = sanity.SanityOptions(
        seed=args.seed, limit=args.limit, shard=args.shard, gpu=args.gpu, workers=args.workers,
        overwrite=args.overwrite, progress=args.progress == "true",
        trust_model=args.trust_model == "true").check()
    # Every folder is checked before any is worked on.
    jobs = [sanity.FolderSanity(folder, job_options) for folder in args.results]
    status = 0
    for job in jobs:
        summary = job.run()
        print("%s: %d heatmaps checked in %.1f s, %d already checked, %d images failed; lines "
              "in %s" % (summary.results_dir, summary.checked, summary.seconds, summary.skipped,
                         len(summary.failures), summary.sanity_path))
        for reason in summary.failures[:20]:
            print("  %s" % reason, file=sys.stderr)
        status = max(status, 1 if summary.failures else 0)
    return status
