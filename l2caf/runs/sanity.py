"""The sanity-check job (scripts/sanity_check.py): does a run's heatmap depend on what the
network learned? The model parameter randomisation test of Adebayo et al. ("Sanity Checks for
Saliency Maps", NeurIPS 2018) and the random-logit test (Sixt et al., ICML 2020), for every
heatmap of a visualiser run, into its run folder.

Per results folder, from its own config and results lines (l2caf.runs.read): the run's
method is built again with its settings on its network (the checkpoint's SHA-256 must match
the one the run recorded), in memory; the network's blocks, from the output down
(l2caf.models.randomization), are then made random

  - cascading: the top block, then the top two, ..., then all of them;
  - independent: one block at a time, the others trained;

and after each step the same (image, class) pairs are explained again (the same image keys,
which seed L2-CAF's filters and the random maps) and compared with the run's heatmaps
(l2caf.evaluation.similarity: Spearman of the absolute maps and of the maps, SSIM). With
every block trained again, each class heatmap is also explained for a seeded random other
class (the random logit) and compared the same way. Each heatmap's values become a line of
sanity.jsonl (sanity_shard<I>of<N>.jsonl for a shard), its cascading maps an array of a
compressed sanity_maps_<number>.npz written before the line (l2caf.runs.folder's FILES).
Lines are written whole and synced, a chunk of images at a time; the same job continues after
Ctrl-C or kill -9, skipping the heatmaps checked. Checks made with another seed or on other
blocks are refused unless overwritten. Its shards are joined by l2caf.runs.merge.merge_scores.

`read_sanity` reads a folder's lines back, `sanity_values` gives a line's values for the
table's columns (no TensorFlow).
"""
import collections
import concurrent.futures
import dataclasses
import os
import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from tqdm import tqdm

from l2caf import images
from l2caf.errors import ConfigError, ImageError, RunError
from l2caf.evaluation.similarity import Reference
from l2caf.files import FolderLock
from l2caf.parallel import prefetched
from l2caf.runs import read
from l2caf.runs.folder import (SANITY_FILES, HeatmapFiles, LinesFile, NpzChunks, Shard,
                               delete_files, kind_files, line_key, reference_parts, shard_file)
from l2caf.runs.lines import check_line_settings, read_lines_file
from l2caf.settings import OPTIMIZED_METHODS

# The randomisations, in the order they run and a line holds them.
CASCADING, INDEPENDENT, RANDOM_LOGIT = "cascading", "independent", "random_logit"
MEASURES = ("spearman_abs", "spearman", "ssim")
# Images per chunk: every randomisation step explains the chunk's heatmaps together, and a
# chunk's lines are written at its end (a kill -9 loses at most a chunk's work).
IMAGES_PER_CHUNK = 8

Summary = collections.namedtuple("Summary", ["results_dir", "sanity_path", "checked", "skipped",
                                             "failures", "seconds"])
Summary.__doc__ = """What a sanity check did: its folder and lines file, heatmaps checked and
skipped as checked already, the reasons of the images that could not be read, seconds."""


def field(randomisation: str, measure: str) -> str:
    """The field of a sanity line holding a measure of a randomisation: cascading_ssim,
    independent_spearman_abs, random_logit_spearman, ..."""
    return "%s_%s" % (randomisation, measure)


@dataclasses.dataclass(frozen=True)
class SanityOptions:
    """How the sanity-check job checks a folder.

    seed: what the random weights and the random logits are drawn from. limit: only the
    heatmaps of the first `limit` images, in sorted order (0: all). shard: check every
    shard.count-th image from the shard.index-th. gpu: GPU index (-1: the CPU). workers:
    threads reading the next images. overwrite: delete the folder's sanity checks (every
    shard's) first. progress: show a progress bar. trust_model: load a Keras model whose
    saved configuration runs code (l2caf.models.keras_loading): given by whoever checks,
    never taken from the run folder's config.yaml.
    """

    seed: int = 0
    limit: int = 0
    shard: Shard = Shard(0, 1)
    gpu: int = 0
    workers: int = 4
    overwrite: bool = False
    progress: bool = True
    trust_model: bool = False

    def check(self) -> "SanityOptions":
        """The options, or a ConfigError naming the first that is out of range."""
        if self.workers < 1:
            raise ConfigError("--workers must be at least 1, got %d" % self.workers)
        for name in ("seed", "limit"):
            if getattr(self, name) < 0:
                raise ConfigError("--%s must be 0 or more, got %d" % (name, getattr(self, name)))
        return self


class FolderSanity(object):
    """The sanity check of one results folder's shard, checked (RunError, ConfigError) but
    not started: the run's config and results, the seed against the checks already there."""

    def __init__(self, results_dir: str, options: SanityOptions):
        self.results_dir, self.options, self.shard = results_dir, options, options.shard
        self.config, self.made_with, self.references, self.lines = read.read_shard(
            results_dir, options.limit, self.shard)
        self.sanity_path = shard_file(results_dir, "sanity", self.shard)
        if not options.overwrite:
            self.check_settings({"seed": options.seed})
        if self.config.network == "keras" and os.path.exists(self.config.checkpoint):
            # A model file that cannot be loaded (or not without trust) is refused before
            # anything is written.
            from l2caf.models import keras_applications, keras_loading  # (TensorFlow)
            if not keras_applications.is_application(self.config.checkpoint):
                keras_loading.check_model_file(self.config.checkpoint, options.trust_model)

    def check_settings(self, settings: Dict[str, Any]) -> None:
        """A RunError if the folder's sanity lines were made with other `settings` ({field:
        value}: the seed, the blocks)."""
        for path in kind_files(self.results_dir, "sanity"):
            for record in read_lines_file(path, "sanity"):
                check_line_settings(path, record, settings, "sanity checks")

    def usable(self, record: Dict[str, Any]) -> bool:
        """Whether a line of the sanity file is kept by a rerun: one of the heatmap the results
        name (else the heatmap, made again since, is checked again)."""
        return reference_parts(record["heatmap"]) == self.references.get(line_key(record))

    def run(self) -> Summary:
        """Checks the shard's heatmaps not checked yet; returns a Summary."""
        started = time.time()
        with FolderLock(self.sanity_path):
            if self.options.overwrite:
                delete_files(self.results_dir, SANITY_FILES, "sanity", self.sanity_path)
            checked = LinesFile(self.sanity_path, keep=self.usable)
            failures = LinesFile(shard_file(self.results_dir, "sanity_failures", self.shard),
                                 keep=False)
            try:
                todo: Dict[str, List[Dict[str, Any]]] = collections.OrderedDict()
                for image, lines in self.lines.items():
                    left = [line for line in lines
                            if not checked.is_done(image, line.get("class_id"))]
                    if left:
                        todo[image] = left
                count = sum(len(lines) for lines in todo.values())
                skipped = sum(len(lines) for lines in self.lines.values()) - count
                failed = _Checking(self, checked, failures, todo).check(count) if todo else []
            finally:
                checked.close()
                failures.close()
        unchecked = sum(len(todo[image]) for image, _ in failed)
        return Summary(self.results_dir, self.sanity_path, count - unchecked, skipped,
                       [reason for _, reason in failed], time.time() - started)


class _Checking(object):
    """The run's method on its network, the randomiser and the chunk loop of a FolderSanity
    run."""

    def __init__(self, job: FolderSanity, checked: LinesFile, failures: LinesFile,
                 todo: Dict[str, List[Dict[str, Any]]]):
        from l2caf.models.randomization import Randomizer  # TensorFlow from here on
        from l2caf.models.sources import model_source
        self.job, self.checked, self.failures, self.todo = job, checked, failures, todo
        config = job.config.copy()
        config["gpu"] = job.options.gpu  # the run's settings, on this machine's device
        config["progress"] = False  # (Score-CAM's own bar) the job has one
        config["trust_model"] = job.options.trust_model and config.network == "keras"
        source = model_source(config)
        expected = job.made_with.get("checkpoint_sha256")
        if expected and source.fingerprint != expected:
            raise RunError("checkpoint %s is not the one that made the heatmaps of %s (its "
                           "SHA-256 differs from the one config.yaml records); give the run's "
                           "checkpoint at that path" % (config.checkpoint, job.results_dir))
        per_image = max(len(lines) for lines in todo.values())
        rows = min(len(todo), IMAGES_PER_CHUNK) * per_image
        self.explainer = source.explainer(
            config, rows if config.method in OPTIMIZED_METHODS else 1)
        self.model = self.explainer.model
        try:
            self.randomizer = Randomizer(self.model, job.options.seed)
        except ValueError as error:
            self.model.close()
            raise RunError("%s: %s" % (job.results_dir, error)) from None
        if not job.options.overwrite:
            job.check_settings({"blocks": self.randomizer.names})
        self.steps = [(CASCADING, self.randomizer.names[:count])
                      for count in range(1, len(self.randomizer.names) + 1)] + \
            [(INDEPENDENT, [name]) for name in self.randomizer.names]
        self.maps = NpzChunks(job.results_dir, job.shard, "sanity_maps")

    def load(self, item: Tuple[str, List[Dict[str, Any]]]) -> Tuple[np.ndarray, List[Reference]]:
        """Runs in a worker thread: the network input of an image (RGB, resized whole, as the
        run saw it) and the run's heatmaps of its lines, of item = (image, lines), as
        References: each is compared 2 x blocks + 1 times, ranked and resized once, here."""
        image, lines = item
        size = self.model.input_shape[:2]
        with HeatmapFiles(self.job.results_dir) as files:
            return (self.model.prepare([images.read_image(image)])[0],
                    [Reference(files.read(line["heatmap"]), size) for line in lines])

    def check(self, count: int) -> List[Tuple[str, str]]:
        """Checks the heatmaps of `todo` (count: how many); returns the (image, reason) of the
        images that could not be read."""
        failed = []
        # The similarities of a step are measured in this thread while the main thread makes
        # the next step's maps (TensorFlow and most of NumPy's and OpenCV's work let go of
        # the GIL): for the one-pass methods they cost about as much as the maps.
        self.measuring = concurrent.futures.ThreadPoolExecutor(1)
        try:
            with tqdm(total=count * (len(self.steps) + 1),
                      desc="sanity check of %s" % self.job.results_dir, unit="map",
                      dynamic_ncols=True, disable=not self.job.options.progress) as progress:
                for chunk in prefetched(list(self.todo.items()), IMAGES_PER_CHUNK, self.load,
                                        self.job.options.workers):
                    loaded = []
                    for (image, lines), future in chunk:
                        try:
                            loaded.append((image, lines) + future.result())
                        except ImageError as error:
                            self.failures.write([{"image": image, "reason": str(error)}])
                            failed.append((image, str(error)))
                            progress.update(len(lines) * (len(self.steps) + 1))
                    if loaded:
                        self.check_chunk(loaded, progress.update)
        finally:
            self.measuring.shutdown()
            self.model.close()
        return failed

    def explain(self, network_inputs: np.ndarray, keys: List[str],
                classes: List[List[Optional[int]]]) -> List[np.ndarray]:
        """The heatmaps of the images' classes on the network as it is now, image by image,
        class by class."""
        return [explanation.heatmap for explanation in
                self.explainer(network_inputs, classes, keys)]

    def check_chunk(self, loaded: List[Tuple[str, List[Dict[str, Any]], np.ndarray,
                                             List[Reference]]], progress: Any) -> None:
        """One chunk, [(image, lines, network input, the run's heatmaps)]: every step, then the
        random logit, then the maps file and the lines. The similarities are measured in
        self.measuring's thread and read back in the steps' order (a line's fields keep
        theirs)."""
        network_inputs = np.stack([network_input for _, _, network_input, _ in loaded])
        keys = [os.path.basename(image) for image, _, _, _ in loaded]
        classes = [[line.get("class_id") for line in lines] for _, lines, _, _ in loaded]
        lines = [line for _, image_lines, _, _ in loaded for line in image_lines]
        references = [reference for _, _, _, image_references in loaded
                      for reference in image_references]
        values: List[Dict[str, Any]] = [collections.defaultdict(list) for _ in lines]
        cascading_maps: List[List[np.ndarray]] = [[] for _ in lines]
        steps = []
        try:
            for kind, names in self.steps:
                self.randomizer.randomize(names)
                others = self.explain(network_inputs, keys, classes)
                steps.append((kind, self.measuring.submit(_compared, references, others)))
                if kind == CASCADING:
                    for number, other in enumerate(others):
                        cascading_maps[number].append(other.astype(np.float32))
                progress(len(lines))
        finally:
            self.randomizer.restore()
        others = [[self.random_class(key, class_id) for class_id in image_classes]
                  for key, image_classes in zip(keys, classes)]
        flat_others = [other for image_others in others for other in image_others]
        # (the class-free heatmaps of cls_oblivious have no other class)
        wanted = [[other for other in image_others if other is not None] for image_others in others]
        logit_maps = iter(self.explain(network_inputs, keys, wanted) if any(wanted) else [])
        explained = [number for number, other_class in enumerate(flat_others)
                     if other_class is not None]
        logit_measured = self.measuring.submit(
            _compared, [references[number] for number in explained],
            [next(logit_maps) for _ in explained])
        for kind, measured in steps:
            for number, step_values in enumerate(measured.result()):
                for measure, value in step_values.items():
                    values[number][field(kind, measure)].append(value)
        logit_values = dict(zip(explained, logit_measured.result()))
        for number, other_class in enumerate(flat_others):
            values[number]["random_logit_class_id"] = other_class
            measured = logit_values.get(number, dict.fromkeys(MEASURES))
            for measure, value in measured.items():
                values[number][field(RANDOM_LOGIT, measure)] = value
        progress(len(lines))
        self.write(lines, values, cascading_maps)

    def random_class(self, key: str, class_id: Optional[int]) -> Optional[int]:
        """The random other class of an image's class heatmap: uniform over the network's
        other classes, seeded by (seed, image key, class); None for a class-free heatmap."""
        from l2caf import filters  # (TensorFlow, loaded by now)
        if class_id is None:
            return None
        drawn = int(filters.random_generator(self.job.options.seed, key, class_id).integers(
            self.model.num_labels - 1))
        return drawn + (drawn >= class_id)

    def write(self, lines: List[Dict[str, Any]], values: List[Dict[str, Any]],
              cascading_maps: List[List[np.ndarray]]) -> None:
        """The chunk's cascading maps in one .npz file, then its lines."""
        references = self.maps.write(collections.OrderedDict(
            (_maps_key(line["heatmap"]), np.stack(maps))
            for line, maps in zip(lines, cascading_maps)))
        records = []
        for line, measured in zip(lines, values):
            records.append(collections.OrderedDict(
                [("image", line["image"]), ("class_id", line.get("class_id")),
                 ("heatmap", line["heatmap"]), ("method", self.job.config.method),
                 ("seed", self.job.options.seed), ("blocks", self.randomizer.names)]
                + list(measured.items())
                + [("maps", references[_maps_key(line["heatmap"])])]))  # relative to the folder
        self.checked.write(records)


def _compared(references: List[Reference], others: List[np.ndarray]
              ) -> List[Dict[str, Optional[float]]]:
    """The similarities of each of the run's heatmaps and the map made again in its place;
    None for each where the new map is not finite (a random network can overflow)."""
    return [reference.similarities(other) if np.all(np.isfinite(other))
            else dict.fromkeys(MEASURES) for reference, other in zip(references, others)]


def _maps_key(heatmap_reference: str) -> str:
    name, key = reference_parts(heatmap_reference)
    return key or os.path.splitext(name)[0]


def read_sanity(results_dir: str) -> Dict[Tuple[str, Optional[int]], Dict[str, Any]]:
    """{(image, class_id): its sanity line} of a run folder, every shard's files together,
    each (image, class) once; {} where it has none. RunError for a line of a heatmap the
    results do not hold (one made again since) or lines of different seeds or blocks."""
    by_image = read.read_lines(results_dir)
    heatmaps = {line_key(line): reference_parts(line["heatmap"])
                for lines in by_image.values() for line in lines}
    found: Dict[Tuple[str, Optional[int]], Dict[str, Any]] = collections.OrderedDict()
    settings = None
    for path in kind_files(results_dir, "sanity"):
        for record in read_lines_file(path, "sanity"):
            key = line_key(record)
            if key in found:
                continue
            if reference_parts(record["heatmap"]) != heatmaps.get(key):
                raise RunError("%s checks heatmap %s, which the results of %s do not hold; run "
                               "scripts/sanity_check.py --results %s to check it again"
                               % (path, record["heatmap"], results_dir, results_dir))
            made_with = (record["seed"], record["blocks"])
            if settings is not None and made_with != settings:
                raise RunError("%s holds sanity checks of different seeds or blocks; run "
                               "scripts/sanity_check.py --overwrite --results %s"
                               % (results_dir, results_dir))
            settings = made_with
            found[key] = record
    return found


def sanity_values(record: Dict[str, Any]) -> Dict[str, Optional[float]]:
    """A sanity line's values for the table (l2caf.evaluation.table's "sanity" columns):
    the Spearman rank correlation of the absolute maps with every block random (the
    cascade's last step) and for the random logit; None where it is undefined."""
    return {"sanity_spearman_randomized": record[field(CASCADING, "spearman_abs")][-1],
            "sanity_spearman_random_logit": record[field(RANDOM_LOGIT, "spearman_abs")]}


def read_cascading_maps(results_dir: str, record: Dict[str, Any]) -> np.ndarray:
    """The maps [blocks, H, W] a sanity line names (its heatmap explained again as the cascade
    makes block after block random); RunError if they cannot be read."""
    name, key = reference_parts(record["maps"])
    path = os.path.join(results_dir, name)
    try:
        with np.load(path, allow_pickle=False) as archive:
            maps = archive[key]
    except (OSError, KeyError, ValueError) as error:
        raise RunError("%s cannot be read (%s); run scripts/sanity_check.py --overwrite "
                       "--results %s" % (path, error, results_dir)) from None
    if maps.ndim != 3 or maps.shape[0] != len(record["blocks"]):
        raise RunError("%s: %s is not a map per block; run scripts/sanity_check.py --overwrite "
                       "--results %s" % (path, key, results_dir))
    return maps
