"""The faithfulness job (scripts/evaluate_faithfulness.py): deletion and insertion AUC,
Average Drop, Increase in Confidence, Average Gain and ROAD's MoRF and LeRF AUC of every
heatmap of a visualiser run (l2caf.evaluation.faithfulness), into its run folder.

Per results folder, from its own config and results lines (l2caf.runs.read): the network is
rebuilt from the checkpoint that made the heatmaps (its SHA-256 must match), the images are
read again and resized to the network's input, and each heatmap's scores become a line of
faithfulness.jsonl (faithfulness_shard<I>of<N>.jsonl for a shard), its curves two arrays of a
compressed faithfulness_curves_<number>.npz written before the line (l2caf.runs.folder's
FILES): KEY, [2, steps + 1], the deletion and insertion curves; KEY_road, [2, fractions + 1],
the ROAD MoRF and LeRF curves (the line's road_curves). A heatmap's ROAD noise is seeded by the
CRC-32 of its key, so that its scores do not depend on the shard or chunk it is scored in.
Lines are written whole and synced; the same job continues after Ctrl-C or kill -9, skipping
the heatmaps scored. Scores made with other settings are refused unless overwritten; scores
made before ROAD and Average Gain existed too (--overwrite scores every metric again). Its
shards are joined by l2caf.runs.merge.merge_scores.
"""
import collections
import dataclasses
import os
import time
import zlib
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
from tqdm import tqdm

from l2caf import images, preprocessing
from l2caf.errors import ConfigError, ImageError, RunError
from l2caf.evaluation import faithfulness, imputation
from l2caf.evaluation.table import metrics
from l2caf.files import FolderLock
from l2caf.parallel import prefetched
from l2caf.runs import read
from l2caf.runs.folder import (SCORE_FILES, HeatmapFiles, LinesFile, NpzChunks, Shard,
                               UnreadableHeatmap, delete_files, kind_files, line_key,
                               load_heatmap, reference_parts, shard_file)
from l2caf.runs.lines import check_line_settings, read_lines_file

# Forward passes per chunk of images (the images read ahead, the batches shared by their
# heatmaps): with the write interval below, this bounds the number of curves files (50,000
# ImageNet heatmaps at 224 x 224 on a GPU: about 5,500; on a CPU, one per 10 s of scoring).
FORWARD_PASSES_PER_CHUNK = 4096
MAX_IMAGES_PER_CHUNK = 64
# Within a chunk, the heatmaps scored are written (a curves file and their lines) at least this
# often, and all at once at the chunk's end and on Ctrl-C: a kill -9 loses at most this much of
# scoring (a heatmap takes 20 to 100 s on a CPU at 224 x 224), a Ctrl-C nothing.
WRITE_EVERY_SECONDS = 10.0

Summary = collections.namedtuple("Summary", ["results_dir", "scores_path", "scored", "skipped",
                                             "failures", "seconds"])
Summary.__doc__ = """What a scoring did: its folder and scores file, heatmaps scored and
skipped as scored already, the reasons of the images that could not be read, seconds."""


@dataclasses.dataclass(frozen=True)
class ScoringOptions:
    """How the faithfulness job scores a folder.

    steps: steps of the deletion and insertion curves (0: the protocol's, one row of the
    input's pixels per step). road_fractions: ROAD's removal fractions (increasing, in (0,
    1)); road_noise: its imputation's noise (on images in [0, 1]). batch_size: perturbed
    images per forward pass. limit: only the heatmaps of the first `limit` images, in sorted
    order (0: all). shard: score every shard.count-th image from the shard.index-th. gpu: GPU
    index (-1: the CPU). workers: threads reading the next images and heatmaps, and making the
    next heatmaps' ROAD images. overwrite: delete the folder's scores (every shard's) first.
    progress: show a progress bar. trust_model: load a Keras model whose saved configuration
    runs code (l2caf.models.keras_loading): given by whoever scores, never taken from the run
    folder's config.yaml.
    """

    steps: int = 0
    road_fractions: Tuple[float, ...] = faithfulness.DEFAULT_ROAD_FRACTIONS
    road_noise: float = imputation.DEFAULT_NOISE
    batch_size: int = faithfulness.DEFAULT_BATCH_SIZE
    limit: int = 0
    shard: Shard = Shard(0, 1)
    gpu: int = 0
    workers: int = 4
    overwrite: bool = False
    progress: bool = True
    trust_model: bool = False

    def check(self) -> "ScoringOptions":
        """The options, or a ConfigError naming the first that is out of range."""
        for name in ("batch_size", "workers"):
            if getattr(self, name) < 1:
                raise ConfigError("--%s must be at least 1, got %d" % (name, getattr(self, name)))
        for name in ("steps", "limit"):
            if getattr(self, name) < 0:
                raise ConfigError("--%s must be 0 or more, got %d" % (name, getattr(self, name)))
        try:
            faithfulness.check_road_fractions(self.road_fractions)
        except ValueError as error:
            raise ConfigError("--road_fractions: %s" % error) from None
        if not self.road_noise >= 0:
            raise ConfigError("--road_noise must be 0 or more, got %r" % (self.road_noise,))
        return self


def curves_key(heatmap_reference: str) -> str:
    """The key of a heatmap's curves: its key in its .npz file, or its .npy file's name."""
    name, key = reference_parts(heatmap_reference)
    return key or os.path.splitext(name)[0]


def road_curves_key(key: str) -> str:
    """The key of a heatmap's ROAD curves beside its curves' key (a heatmap's key ends in
    _c<class> or _oblivious, so no heatmap's key is another's ROAD key)."""
    return key + "_road"


def noise_seed(line: Dict[str, Any]) -> int:
    """The seed of a results line's heatmap's ROAD noise: the CRC-32 of its curves key."""
    return zlib.crc32(curves_key(line["heatmap"]).encode("utf-8"))


class FolderScores(object):
    """The scoring of one results folder's shard, checked (RunError, ConfigError) but not
    started: the run's config and results, the protocol's settings against the scores
    already there."""

    def __init__(self, results_dir: str, options: ScoringOptions):
        self.results_dir, self.options, self.shard = results_dir, options, options.shard
        # references: scores of another heatmap than the results' (made again since) are stale.
        self.config, self.made_with, self.references, self.lines = read.read_shard(
            results_dir, options.limit, self.shard)
        size = self.made_with.get("image_size")
        if not size:
            raise RunError("%s: config.yaml has no made_with image_size; rerun the visualiser "
                           "into the folder to record it" % results_dir)
        height, width = images.size_pair(size)
        self.steps = options.steps or faithfulness.default_steps((height, width))
        if self.steps > height * width:
            raise ConfigError("--steps must be at most %d (the %dx%d input's pixels), got %d"
                              % (height * width, height, width, self.steps))
        self.settings = faithfulness.protocol_settings(
            self.steps, (height, width), options.road_fractions, options.road_noise)
        self.scores_path = shard_file(results_dir, "scores", self.shard)
        if not options.overwrite:
            self._check_settings()
        self._check_model()

    def _check_model(self):
        """A Keras model file that cannot be loaded, or not without trust (which only
        options.trust_model gives), is refused here, before anything is written (a missing
        one only when a heatmap needs it, as before)."""
        config = self.config
        if config.network != "keras" or not os.path.exists(config.checkpoint):
            return
        from l2caf.models import keras_applications, keras_loading  # (TensorFlow)
        if not keras_applications.is_application(config.checkpoint):
            keras_loading.check_model_file(config.checkpoint, self.options.trust_model)

    def _check_settings(self):
        for path in kind_files(self.results_dir, "scores"):
            for record in read_lines_file(path, "scores"):
                if "road_fractions" not in record:
                    raise RunError("%s holds scores made before ROAD and Average Gain existed; "
                                   "give --overwrite to score the folder again with every "
                                   "metric (the table shows '-' for those until then)" % path)
                check_line_settings(path, record, self.settings, "scores")

    def _usable(self, record, files):
        """Whether a line of the scores file is kept by a rerun: a score of the heatmap the
        results name, whose curves can be read (else it is scored again)."""
        if reference_parts(record["heatmap"]) != self.references.get(line_key(record)):
            return False
        try:
            files.read(record["curves"])
            files.read(record["road_curves"])
        except (UnreadableHeatmap, KeyError):
            return False
        return True

    def run(self) -> Summary:
        """Scores the shard's heatmaps not scored yet; returns a Summary."""
        started = time.time()
        with FolderLock(self.scores_path):
            if self.options.overwrite:
                # Every shard's scores, curves and failures, each scores file locked (none
                # may be being written).
                delete_files(self.results_dir, SCORE_FILES, "scores", self.scores_path)
            with HeatmapFiles(self.results_dir) as files:
                scores = LinesFile(self.scores_path,
                                   keep=lambda record: self._usable(record, files))
            failures = LinesFile(shard_file(self.results_dir, "score_failures", self.shard),
                                 keep=False)
            try:
                todo: Dict[str, List[Dict[str, Any]]] = collections.OrderedDict()
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

    def __init__(self, job: FolderScores, scores: LinesFile, failures: LinesFile):
        from l2caf.models.sources import model_source  # TensorFlow from here on
        self.job, self.scores, self.failures = job, scores, failures
        config = job.config.copy()
        config["gpu"] = job.options.gpu  # the run's settings, on this machine's device
        # Trust is the scorer's to give: a folder (perhaps someone else's) cannot give it.
        config["trust_model"] = job.options.trust_model and config.network == "keras"
        source = model_source(config)
        expected = job.made_with.get("checkpoint_sha256")
        if expected and source.fingerprint != expected:
            raise RunError("checkpoint %s is not the one that made the heatmaps of %s (its "
                           "SHA-256 differs from the one config.yaml records); give the run's "
                           "checkpoint at that path" % (config.checkpoint, job.results_dir))
        self.model = source.model(config)
        self.scorer = faithfulness.Faithfulness(self.model, job.steps, job.options.batch_size,
                                                job.options.road_fractions,
                                                job.options.road_noise, job.options.workers)
        self.curves = NpzChunks(job.results_dir, job.shard, "curves")

    def load(self, item: Tuple[str, List[Dict[str, Any]]]
             ) -> Tuple[np.ndarray, List[np.ndarray]]:
        """Runs in a worker thread: the network input of an image and the heatmaps of its
        lines, of item = (image, lines)."""
        image, lines = item
        # As the run saw it: resized whole (and made gray for a gray model).
        network_input = preprocessing.preprocess(
            self.model.prepare([images.read_image(image)])[0], self.model.preprocessing)
        # (UnreadableHeatmap, a RunError naming the file and the rerun that repairs it.)
        return network_input, [load_heatmap(line["heatmap"], self.job.results_dir)
                               for line in lines]

    def score(self, todo: Dict[str, List[Dict[str, Any]]], count: int) -> List[Tuple[str, str]]:
        """Scores the lines of `todo` ({image: lines}; count: how many); returns the (image,
        reason) of the images that could not be read."""
        failed = []
        per_chunk = int(np.clip(FORWARD_PASSES_PER_CHUNK // self.scorer.forward_passes, 1,
                                MAX_IMAGES_PER_CHUNK))
        try:
            with tqdm(total=count, desc="faithfulness of %s" % self.job.results_dir,
                      unit="heatmap", dynamic_ncols=True,
                      disable=not self.job.options.progress) as progress:
                for chunk in prefetched(list(todo.items()), per_chunk, self.load,
                                        self.job.options.workers):
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

    def score_chunk(self, loaded: List[Tuple[str, List[Dict[str, Any]], np.ndarray,
                                             List[np.ndarray]]],
                    progress: Callable[[int], object]) -> None:
        """One chunk: [(image, lines, network input, heatmaps)] -> curves files, then lines,
        written as the heatmaps are scored (see write); progress(n) after each n heatmaps
        scored."""
        lines = [line for _, image_lines, _, _ in loaded for line in image_lines]
        heatmaps = [heatmap for _, _, _, image_heatmaps in loaded for heatmap in image_heatmaps]
        indices = [index for index, (_, image_lines, _, _) in enumerate(loaded)
                   for _ in image_lines]
        # A class-oblivious heatmap is scored on the network's top-1 class, as RISE scores
        # every heatmap.
        classes = [line["predictions"][0]["class_id"] if line.get("class_id") is None
                   else line["class_id"] for line in lines]
        scored: List[Tuple[Dict[str, Any], int, faithfulness.Scores]] = []
        written = [time.time()]

        def keep(number: int, result: faithfulness.Scores) -> None:
            scored.append((lines[number], classes[number], result))
            if time.time() - written[0] >= WRITE_EVERY_SECONDS:
                self.write(scored)
                scored.clear()
                written[0] = time.time()
        try:
            self.scorer(np.stack([network_input for _, _, network_input, _ in loaded]),
                        heatmaps, classes, indices, progress, keep,
                        [noise_seed(line) for line in lines])
        except ValueError as error:
            raise RunError("%s: %s" % (self.job.results_dir, error)) from None
        finally:  # at the chunk's end, and on Ctrl-C: no heatmap scored is lost
            if scored:
                self.write(scored)

    def write(self, scored: List[Tuple[Dict[str, Any], int, faithfulness.Scores]]) -> None:
        """The scores of heatmaps [(results line, class scored, Scores)]: their curves in one
        .npz file, then their lines."""
        arrays: Dict[str, np.ndarray] = collections.OrderedDict()
        for line, _, result in scored:
            key = curves_key(line["heatmap"])
            arrays[key] = np.stack([result.deletion, result.insertion]).astype(np.float32)
            arrays[road_curves_key(key)] = np.stack(
                [result.road_morf, result.road_lerf]).astype(np.float32)
        references = self.curves.write(arrays)
        records = []
        for line, class_id, result in scored:
            key = curves_key(line["heatmap"])
            records.append(collections.OrderedDict(
                [("image", line["image"]), ("class_id", line.get("class_id")),
                 ("scored_class_id", class_id), ("heatmap", line["heatmap"]),
                 ("method", self.job.config.method)]
                + [(metric.key, getattr(result, metric.key))
                   for metric in metrics("faithfulness")]
                + [("probability", result.probability),
                   ("masked_probability", result.masked_probability)]
                + list(self.job.settings.items())
                + [("curves", references[key]),  # relative to the folder
                   ("road_curves", references[road_curves_key(key)])]))
        self.scores.write(records)
