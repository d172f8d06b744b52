"""scripts/evaluate_faithfulness.py: deletion and insertion AUC, Average Drop and Increase in
Confidence of every heatmap of visualiser runs (l2caf.faithfulness), into each run folder.

Per results folder, from its own config*.yaml and results*.jsonl: the network is rebuilt from
the checkpoint that made the heatmaps (its SHA-256 must match), the images are read again and
resized to the network's input, and each heatmap's scores become a line of
faithfulness.jsonl (faithfulness_shard<I>of<N>.jsonl for a shard), its curves an array of a
compressed faithfulness_curves_<number>.npz written before the line. Lines are written whole
and synced; the same command continues after Ctrl-C or kill -9, skipping the heatmaps scored.
"""
import argparse
import collections
import contextlib
import glob
import json
import os
import re
import sys
import time

import numpy as np
import yaml
from tqdm import tqdm

from l2caf import config as config_module, faithfulness, images, preprocessing, run_folder
from l2caf.cli import run_command
from l2caf.errors import ConfigError, ImageError, RunError
from l2caf.evaluation import runs

SCORES_STEM = "faithfulness"
CURVES_STEM = "faithfulness_curves"
# Not faithfulness*.jsonl, which are score files to readers of the folder.
FAILURES_STEM = "failures_faithfulness"
# Forward passes per chunk of images: each chunk's curves are one .npz file and its lines are
# written together, so this bounds both the work an interruption loses (a few seconds to a
# few minutes on a CPU) and the number of files (50,000 ImageNet heatmaps at 224 x 224: about
# 5,500).
FORWARD_PASSES_PER_CHUNK = 4096
MAX_IMAGES_PER_CHUNK = 64
_SHARD_SCORES = re.compile(r"faithfulness_shard(\d+)of(\d+)\.jsonl$")

Summary = collections.namedtuple("Summary", ["results_dir", "scores_path", "scored", "skipped",
                                             "failures", "seconds"])


def main(argv=None, description=__doc__):
    parser = config_module.ArgumentParser(description=description,
                                          formatter_class=argparse.RawDescriptionHelpFormatter)
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
    parser.add_argument("--batch_size", type=int, default=faithfulness.DEFAULT_BATCH_SIZE,
                        metavar="N", help="perturbed images per forward pass; the curves of "
                                          "several heatmaps share a batch (default: "
                                          "%(default)s)")
    parser.add_argument("--limit", type=int, default=0, metavar="N",
                        help="only the heatmaps of the first N images of each run, in sorted "
                             "order (0: all) (default: %(default)s)")
    parser.add_argument("--shard", default="0/1", metavar="INDEX/COUNT",
                        help="score every COUNT-th image from the INDEX-th, into "
                             "faithfulness_shard<INDEX>of<COUNT>.jsonl (join them with "
                             "--merge); auto: from a Slurm job array (SLURM_ARRAY_TASK_ID, "
                             "_MIN and _COUNT) (default: %(default)s)")
    parser.add_argument("--gpu", type=int, default=0,
                        help="GPU index (-1: the CPU); the CPU when there is no GPU (default: "
                             "%(default)s)")
    parser.add_argument("--workers", type=int, default=4, metavar="N",
                        help="threads reading and resizing the next images and their heatmaps "
                             "while the network works (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete the folder's faithfulness scores (every shard's) first; "
                             "without it, scores made with other settings are refused")
    parser.add_argument("--progress", default="true", choices=("true", "false"),
                        help="show progress bars (default: %(default)s)")
    args = parser.parse_args(argv)
    return run_command(lambda: evaluate(args))


def evaluate(args):
    """Scores (or, with --merge, joins the shards of) every folder; returns the exit status."""
    if args.merge:
        return max(print_merge_report(merge(folder)) for folder in args.merge)
    for name in ("batch_size", "workers"):
        if getattr(args, name) < 1:
            raise ConfigError("--%s must be at least 1, got %d" % (name, getattr(args, name)))
    for name in ("steps", "limit"):
        if getattr(args, name) < 0:
            raise ConfigError("--%s must be 0 or more, got %d" % (name, getattr(args, name)))
    shard = run_folder.parse_shard(args.shard)
    # Every folder is checked before any is scored.
    jobs = [FolderScores(folder, args, shard) for folder in args.results]
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


def curves_key(heatmap_reference):
    """The key of a heatmap's curves: its key in its .npz file, or its .npy file's name."""
    name, key = run_folder.reference_parts(heatmap_reference)
    return key or os.path.splitext(name)[0]


def made_with(results_dir):
    """The made_with section of a run folder's config*.yaml (image size, checkpoint SHA-256)."""
    path = sorted(glob.glob(os.path.join(glob.escape(results_dir), "config*.yaml")))[0]
    try:
        with open(path) as stream:
            return (yaml.safe_load(stream) or {}).get(config_module.MADE_WITH) or {}
    except (OSError, yaml.YAMLError) as error:
        raise RunError("%s cannot be read: %s" % (path, error)) from None


def _differences(saved, settings):
    return ["%s (%s there, %s now)" % (key, saved.get(key), value)
            for key, value in settings.items() if saved.get(key) != value]


class FolderScores(object):
    """The scoring of one results folder's shard, checked (RunError, ConfigError) but not
    started: the run's config and results, the protocol's settings against the scores
    already there."""

    def __init__(self, results_dir, args, shard):
        if not os.path.isdir(results_dir):
            raise RunError("%s: no such results folder" % results_dir)
        self.results_dir, self.args, self.shard = results_dir, args, shard
        self.config = runs.read_run_config(results_dir)
        self.made_with = made_with(results_dir)
        by_image = runs.read_run_lines(results_dir)
        # The heatmap of each (image, class) of the results: scores of another (a heatmap
        # made again since) are stale.
        self.references = {run_folder.line_key(line): run_folder.reference_parts(line["heatmap"])
                           for lines in by_image.values() for line in lines}
        selected = sorted(by_image)
        selected = selected[:args.limit] if args.limit else selected
        self.lines = collections.OrderedDict(
            (image, by_image[image]) for image in selected[shard.index::shard.count])
        size = self.made_with.get("image_size")
        if not size:
            raise RunError("%s: config.yaml has no made_with image_size; rerun the visualiser "
                           "into the folder to record it" % results_dir)
        height, width = images.size_pair(size)
        self.steps = args.steps or faithfulness.default_steps((height, width))
        if self.steps > height * width:
            raise ConfigError("--steps must be at most %d (the %dx%d input's pixels), got %d"
                              % (height * width, height, width, self.steps))
        self.settings = faithfulness.protocol_settings(self.steps, (height, width))
        self.scores_path = run_folder.shard_file(results_dir, SCORES_STEM, shard, ".jsonl")
        if not args.overwrite:
            self._check_settings()

    def _check_settings(self):
        for path in runs.faithfulness_files(self.results_dir):
            for record in run_folder.read_results(path):
                differ = _differences(record, self.settings)
                if differ:
                    raise RunError("%s holds scores made with other settings: %s; give the "
                                   "same settings, or --overwrite to delete the folder's "
                                   "scores first" % (path, "; ".join(differ)))

    def _usable(self, record, files):
        """Whether a line of the scores file is kept by a rerun: a score of the heatmap the
        results name, whose curves can be read (else it is scored again)."""
        if run_folder.reference_parts(record["heatmap"]) != \
                self.references.get(run_folder.line_key(record)):
            return False
        try:
            files.read(record["curves"])
        except run_folder.UnreadableHeatmap:
            return False
        return True

    def _delete_scores(self):
        """--overwrite: every shard's scores, curves and failures, each scores file locked
        (none may be being written)."""
        folder = glob.escape(self.results_dir)
        with contextlib.ExitStack() as locks:
            for path in runs.faithfulness_files(self.results_dir):
                if os.path.basename(path) != os.path.basename(self.scores_path):
                    locks.enter_context(run_folder.FolderLock(path))
            for pattern in (SCORES_STEM + "*.jsonl", CURVES_STEM + "*.npz",
                            FAILURES_STEM + "*.jsonl"):
                for path in glob.glob(os.path.join(folder, pattern)):
                    os.remove(path)

    def run(self):
        """Scores the shard's heatmaps not scored yet; returns a Summary."""
        started = time.time()
        with run_folder.FolderLock(self.scores_path):
            if self.args.overwrite:
                self._delete_scores()
            with run_folder.HeatmapFiles(self.results_dir) as files:
                scores = run_folder.LinesFile(self.scores_path,
                                              keep=lambda record: self._usable(record, files))
            failures = run_folder.LinesFile(run_folder.shard_file(
                self.results_dir, FAILURES_STEM, self.shard, ".jsonl"), keep=False)
            try:
                todo = collections.OrderedDict()
                for image, lines in self.lines.items():
                    left = [line for line in lines
                            if not scores.is_done(image, line.get("class_id"))]
                    if left:
                        todo[image] = left
                count = sum(len(lines) for lines in todo.values())
                skipped = sum(len(lines) for lines in self.lines.values()) - count
                failed = _Scoring(self, scores, failures).score(todo, count) if todo else []
            finally:
                scores.close()
                failures.close()
        unscored = sum(len(todo[image]) for image, _ in failed)
        return Summary(self.results_dir, self.scores_path, count - unscored, skipped,
                       [reason for _, reason in failed], time.time() - started)


class _Scoring(object):
    """The network and the chunk loop of a FolderScores run."""

    def __init__(self, job, scores, failures):
        from l2caf import runner  # TensorFlow from here on
        self.job, self.scores, self.failures = job, scores, failures
        config = job.config.copy()
        config["gpu"] = job.args.gpu  # the run's settings, on this machine's device
        source = runner._source(config)
        expected = job.made_with.get("checkpoint_sha256")
        if expected and source.fingerprint != expected:
            raise RunError("checkpoint %s is not the one that made the heatmaps of %s (its "
                           "SHA-256 differs from the one config.yaml records); give the run's "
                           "checkpoint at that path" % (config.checkpoint, job.results_dir))
        self.model = source.model(config)
        self.scorer = faithfulness.Faithfulness(self.model, job.steps, job.args.batch_size)
        self.curves = run_folder.NpzChunks(job.results_dir, job.shard, CURVES_STEM)

    def load(self, item):
        """Runs in a worker thread: an image's network input and its lines' heatmaps."""
        image, lines = item
        # As the run saw it: resized whole (and made gray for a gray model).
        network_input = preprocessing.preprocess(
            self.model.prepare([images.read_image(image)])[0], self.model.preprocessing)
        # (UnreadableHeatmap, a RunError naming the file and the rerun that repairs it.)
        return network_input, [run_folder.load_heatmap(line["heatmap"], self.job.results_dir)
                               for line in lines]

    def score(self, todo, count):
        """Scores the lines of `todo` ({image: lines}); returns the (image, reason) of the
        images that could not be read."""
        from l2caf.runner import _prefetched
        failed = []
        points = 2 * self.scorer.points + 1
        per_chunk = int(np.clip(FORWARD_PASSES_PER_CHUNK // points, 1, MAX_IMAGES_PER_CHUNK))
        try:
            with tqdm(total=count, desc="faithfulness of %s" % self.job.results_dir,
                      unit="heatmap", dynamic_ncols=True,
                      disable=self.job.args.progress == "false") as progress:
                for chunk in _prefetched(list(todo.items()), per_chunk, self.load,
                                         self.job.args.workers):
                    loaded = []
                    for (image, lines), future in chunk:
                        try:
                            loaded.append((image, lines) + future.result())
                        except ImageError as error:
                            self.failures.write([{"image": image, "reason": str(error)}])
                            failed.append((image, str(error)))
                            progress.update(len(lines))
                    if loaded:
                        self.score_chunk(loaded, progress.update)
        finally:
            self.model.close()
        return failed

    def score_chunk(self, loaded, progress):
        """One chunk: [(image, lines, network input, heatmaps)] -> curves file, then lines."""
        lines = [line for _, image_lines, _, _ in loaded for line in image_lines]
        heatmaps = [heatmap for _, _, _, image_heatmaps in loaded for heatmap in image_heatmaps]
        indices = [index for index, (_, image_lines, _, _) in enumerate(loaded)
                   for _ in image_lines]
        # A class-oblivious heatmap is scored on the network's top-1 class, as RISE scores
        # every heatmap.
        classes = [line["predictions"][0]["class_id"] if line.get("class_id") is None
                   else line["class_id"] for line in lines]
        try:
            results = self.scorer(np.stack([network_input for _, _, network_input, _ in loaded]),
                                  heatmaps, classes, indices, progress)
        except ValueError as error:
            raise RunError("%s: %s" % (self.job.results_dir, error)) from None
        references = self.curves.write(collections.OrderedDict(
            (curves_key(line["heatmap"]),
             np.stack([result.deletion, result.insertion]).astype(np.float32))
            for line, result in zip(lines, results)))
        records = []
        for line, class_id, result in zip(lines, classes, results):
            reference = references[curves_key(line["heatmap"])]
            records.append(collections.OrderedDict([
                ("image", line["image"]), ("class_id", line.get("class_id")),
                ("scored_class_id", class_id), ("heatmap", line["heatmap"]),
                ("method", self.job.config.method),
                ("deletion_auc", result.deletion_auc), ("insertion_auc", result.insertion_auc),
                ("average_drop", result.average_drop),
                ("increase_in_confidence", result.increase_in_confidence),
                ("probability", result.probability),
                ("masked_probability", result.masked_probability)]
                + list(self.job.settings.items())
                + [("curves", reference)]))  # relative to the folder
        self.scores.write(records)


MergeReport = collections.namedtuple(
    "MergeReport", ["path", "lines", "duplicates", "heatmaps", "missing", "shards_to_rerun"])


def merge(results_dir):
    """Joins the shards' scores in results_dir into faithfulness.jsonl (each heatmap once, in
    image order); returns a MergeReport of the results' heatmaps still unscored. The shards'
    files stay, so merging again after rerunning a shard makes the file anew."""
    found = sorted((int(match.group(2)), int(match.group(1)))
                   for match in map(_SHARD_SCORES.match, sorted(os.listdir(results_dir)))
                   if match) if os.path.isdir(results_dir) else []
    if not found:
        raise RunError("%s holds no shard scores (faithfulness_shard<INDEX>of<COUNT>.jsonl); "
                       "run scripts/evaluate_faithfulness.py with --shard INDEX/COUNT first"
                       % results_dir)
    count = found[0][0]
    if any(shard_count != count for shard_count, _ in found):
        raise RunError("%s holds scores of shards of different counts (%s); merge one sharding "
                       "at a time" % (results_dir, ", ".join("%d/%d" % (i, c) for c, i in found)))
    merged_path = os.path.join(results_dir, SCORES_STEM + ".jsonl")
    inputs = [record for _, index in found for record in run_folder.read_results(
        run_folder.shard_file(results_dir, SCORES_STEM, run_folder.Shard(index, count),
                              ".jsonl"))]
    merged = collections.OrderedDict()
    for record in inputs:
        merged.setdefault(run_folder.line_key(record), record)
    with run_folder.FolderLock(merged_path):
        text = "".join(json.dumps(record) + "\n"
                       for record in sorted(merged.values(), key=lambda r: r["image"]))
        run_folder.write_atomically(merged_path, lambda stream: stream.write(text.encode()))
    by_image = runs.read_run_lines(results_dir)
    missing, to_rerun = [], set()
    for position, image in enumerate(sorted(by_image)):
        left = [line for line in by_image[image] if run_folder.line_key(line) not in merged]
        if left:
            missing += left
            to_rerun.add(position % count)
    return MergeReport(merged_path, len(merged), len(inputs) - len(merged),
                       sum(len(lines) for lines in by_image.values()), missing,
                       sorted(to_rerun))


def print_merge_report(report):
    """Prints a MergeReport; returns 1 if heatmaps are unscored, else 0."""
    print("%s: %d lines (%d duplicates dropped) for the %d heatmaps of the results; %d unscored"
          % (report.path, report.lines, report.duplicates, report.heatmaps,
             len(report.missing)))
    if report.shards_to_rerun:
        print("rerun shard(s) %s with the same command to finish them (a --limit leaves the "
              "rest unscored), then merge again" % ", ".join(map(str, report.shards_to_rerun)))
        return 1
    return 0
