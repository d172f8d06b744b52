"""Every run of both visualisers: images in, explanations out, for any batch size.

`Run(config)` checks everything (settings, network, labels, checkpoint, images, the output
folder's settings) before anything is written; `Run.execute` then takes the shard's lock (one
writer per folder and shard), keeps the finished results lines whose heatmaps can still be
read, builds the model, and goes through the images in batches: a thread pool decodes and
resizes the next batch while one forward pass gives the current batch's predictions and
activations, the classes to explain are chosen (those already in the folder skipped), the
explainer makes the heatmaps of all the batch's (image, class) pairs at once, and the
heatmaps, pictures and results lines are written (see l2caf.runs.folder). An image that cannot
be used, or a pair whose loss or heatmap is not finite, is recorded in failures.jsonl and the
log; the others go on.
"""
import collections
import contextlib
import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from tqdm import tqdm

from l2caf import __version__, data, heatmaps, images
from l2caf.config import Config
from l2caf.errors import ConfigError, ImageError
from l2caf.files import sha256, write_atomically
from l2caf.models.sources import model_source
from l2caf.parallel import prefetched
from l2caf.runs import plan
from l2caf.runs.folder import (LinesFile, NpyFiles, NpzChunks, RunFolder, heatmap_key,
                               heatmap_size_of, image_key, line_key, output_names, parse_shard,
                               unreadable_heatmaps)
from l2caf.runs.lines import read_lines_file
from l2caf.settings import OPTIMIZED_METHODS

if TYPE_CHECKING:  # (TensorFlow: only once a run builds its model)
    import concurrent.futures

    from l2caf.methods import Explainer, Explanation

LOG = logging.getLogger("l2caf")
GIF_SIZE = 224  # a GIF frame's longer side: the image's aspect ratio is kept

Summary = collections.namedtuple(
    "Summary", ["images_done", "heatmaps", "skipped", "failures", "seconds", "results_path"])
Summary.__doc__ = """What a run did: images explained, heatmaps made, images skipped as
already done, (image, reason) failures, seconds, and its results file."""

LoadedImage = collections.namedtuple("LoadedImage", ["item", "network_input", "size", "image"])
LoadedImage.__doc__ = """A decoded image: its data.LabeledImage, the RGB image resized to the
network's input, its own (height, width), and the image itself when pictures need it."""


class _QuietFileHandler(logging.FileHandler):
    """run.log; a failed log write (a full disk) is not reported here: the next results
    write reports it, as an OutputError naming the file."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


class _TerminalHandler(logging.Handler):
    """Warnings and errors on stderr, above the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write("%s: %s" % (record.levelname.lower(), record.getMessage()), file=sys.stderr)


def class_names(labels: str, num_labels: int) -> List[str]:
    """The class names of a run: the label list's (labels: its path, or "" for none); without
    one, ImageNet's for num_labels 1000, else class_0, class_1, ..."""
    if labels or num_labels == 1000:
        try:
            return data.class_names(labels)
        except (OSError, ValueError) as error:
            raise ConfigError("labels: %s" % error) from None
    return ["class_%d" % index for index in range(num_labels)]


class Run(object):
    """A visualiser run of `config`, checked (ConfigError, CheckpointError, RunError) but
    not started; nothing is written until `execute`."""

    def __init__(self, config: Config, overwrite: bool = False):
        self.config, self.overwrite = config, overwrite
        self.shard = parse_shard(config.shard)
        self.source = model_source(config)
        num_labels = self.source.num_labels
        self.class_names = class_names(config.labels, num_labels)
        if num_labels != len(self.class_names):
            raise ConfigError("network %s has %d classes but the label list %s has %d names"
                              % (config.network, num_labels, config.labels or "(ImageNet)",
                                 len(self.class_names)))
        bad = [c for c in config.classes if c >= num_labels]
        if bad:
            raise ConfigError("classes %s are not class ids 0..%d of this network"
                              % (",".join(map(str, bad)), num_labels - 1))
        listed = plan.list_images(config)
        # Named over all the images, so that every shard and --limit give the same names.
        self.names = output_names([item.path for item in listed])
        self.items = plan.select(listed, config, self.shard)
        self.folder = RunFolder(config.output_dir, self.shard)
        self.made_with = collections.OrderedDict([
            ("l2caf_version", __version__), ("image_size", self.source.image_size),
            ("layer", self.source.layer), ("checkpoint_sha256", self.source.fingerprint),
            ("labels_sha256", sha256(config.labels) if config.labels else "none")])
        if not overwrite:
            self.folder.check(config, self.made_with)

    def classes_per_image(self, items: Sequence[data.LabeledImage]) -> int:
        """The most (image, class) pairs an image of `items` can need."""
        config = self.config
        if config.caf_variant == "cls_oblivious":
            return 1
        count = len(config.classes) or min(config.top_k, len(self.class_names))
        if config.explain_gt:
            count += max((len(item.ground_truth or ()) for item in items), default=0)
        return count

    def execute(self) -> Summary:
        """Explains every (image, class) pair of the shard not done yet, as the only writer
        of the shard's files (RunError, at once, if another process is writing them);
        returns a Summary."""
        config, folder = self.config, self.folder
        with contextlib.ExitStack() as held:
            # An existing folder is locked before the model is built, a new one once made:
            # a mistake found while building the model leaves no folder behind.
            lock = held.enter_context(folder.lock()) if os.path.isdir(config.output_dir) \
                else None
            finished, unusable = self._finished_lines()
            todo = self._todo(finished)
            explainer = self._explainer(todo)
            folder.make()
            if lock is None:
                lock = held.enter_context(folder.lock())
                finished, unusable = self._finished_lines()  # written meanwhile, if any
                todo = self._todo(finished)
                explainer = explainer or self._explainer(todo)
            folder.prepare(self.overwrite)
            self._start_log()
            if lock.problem:
                LOG.warning(lock.problem)
            self._log_unusable(unusable)
            return self._explain(finished, todo, explainer)

    def _finished_lines(self):
        """(the shard's results lines whose heatmaps can be used, [(line, UnreadableHeatmap)]
        of the others, whose pairs are explained again)."""
        path = self.folder.results_path
        records = [] if self.overwrite or not os.path.exists(path) else \
            read_lines_file(path, "results")
        problems = unreadable_heatmaps(records, self.config.output_dir)
        return ([record for index, record in enumerate(records) if index not in problems],
                [(records[index], problem) for index, problem in problems.items()])

    def _log_unusable(self, unusable):
        for record, problem in unusable:
            LOG.info("%s, class %s: heatmap %s cannot be used (%s): explaining it again",
                     record["image"], record.get("class_id"), problem.path, problem.reason)
        if unusable:
            problem = unusable[0][1]
            LOG.warning("%d finished heatmap(s) of %s are missing or cannot be used (e.g. %s: "
                        "%s): explaining them again", len(unusable), self.folder.results_path,
                        problem.path, problem.reason)

    def _todo(self, finished):
        """The items of the shard that `finished` lines do not complete."""
        done_pairs = {line_key(record) for record in finished}
        done = plan.by_image(finished)
        return [item for item in self.items if not plan.is_complete(
            self.config, len(self.class_names), done.get(image_key(item.path)),
            item.ground_truth, lambda image, class_id: (image_key(image), class_id)
            in done_pairs)]

    def _explainer(self, todo):
        """The configured method on a model with the rows `todo` needs, or None if none."""
        if not todo:
            return None
        config = self.config
        rows = min(config.batch_size, len(todo)) * self.classes_per_image(todo)
        return self.source.explainer(config, rows if config.method in OPTIMIZED_METHODS else 1)

    def _explain(self, finished, todo, explainer):
        config, folder = self.config, self.folder
        # The size of the heatmaps, which the readers check every heatmap against: the
        # model's layer's map (a run with nothing left to do keeps the one recorded).
        size = explainer.model.filter_size if explainer is not None \
            else heatmap_size_of(config.output_dir)
        folder.write_config(config, dict(self.made_with, **(
            {"heatmap_size": [int(side) for side in size]} if size else {})))
        started = time.time()
        done_pairs = {line_key(record) for record in finished}
        results = LinesFile(folder.results_path,
                            keep=lambda record: line_key(record) in done_pairs)
        # Failed images are tried again, so the failures file holds this run's.
        failures = LinesFile(folder.failures_path, keep=False)
        try:
            batches = _Batches(self, explainer, results, failures)
            if todo:
                batches.explain_all(todo)
        finally:
            results.close()
            failures.close()
        summary = Summary(batches.images_done, batches.heatmaps_made,
                          len(self.items) - len(todo), batches.failed, time.time() - started,
                          folder.results_path)
        LOG.info("%d images done (%d heatmaps) in %.1f s, %d skipped as already done, %d "
                 "failed", summary.images_done, summary.heatmaps, summary.seconds,
                 summary.skipped, len(summary.failures))
        return summary

    def _start_log(self):
        LOG.setLevel(logging.INFO)
        LOG.propagate = False
        for handler in LOG.handlers[:]:
            LOG.removeHandler(handler)
            handler.close()
        to_file = _QuietFileHandler(self.folder.log_path)
        to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        to_terminal = _TerminalHandler(logging.WARNING)
        LOG.addHandler(to_file)
        LOG.addHandler(to_terminal)


class _Batches(object):
    """The batch loop of a Run: explains batches into `results`; unusable images go to
    `failures`."""

    def __init__(self, run: Run, explainer: "Explainer", results: LinesFile, failures: LinesFile):
        self.run, self.config, self.explainer = run, run.config, explainer
        self.results, self.failures = results, failures
        if self.config.heatmap_format == "npz":
            self.store: Union[NpzChunks, NpyFiles] = NpzChunks(self.config.output_dir, run.shard)
        else:
            self.store = NpyFiles(self.config.output_dir)
        self.failed: List[Tuple[str, str]] = []
        self.images_done = self.heatmaps_made = 0

    def load(self, item: data.LabeledImage) -> LoadedImage:
        """Runs in a worker thread: decodes and resizes one image."""
        image = images.read_image(item.path)
        keep = self.config.save_overlays or self.config.save_gif
        return LoadedImage(item, images.resize(image, self.run.source.image_size),
                           image.shape[:2], image if keep else None)

    def explain_all(self, items: Sequence[data.LabeledImage]) -> None:
        """Explains `items` (data.LabeledImages) batch by batch."""
        config = self.config
        with tqdm(total=len(items), desc="images", unit="image", dynamic_ncols=True,
                  disable=not config.progress) as progress:
            for batch in prefetched(items, config.batch_size, self.load, config.workers):
                self.explain_batch(batch)
                progress.update(len(batch))

    def explain_batch(self, batch: List[Tuple[data.LabeledImage,
                                              "concurrent.futures.Future[LoadedImage]"]]
                      ) -> None:
        """Explains a batch of (item, future of its LoadedImage) and writes what it made."""
        loaded = []
        for item, future in batch:
            try:
                loaded.append(future.result())
            except ImageError as error:
                self.record_failure(item.path, error)
        if not loaded:
            return
        config, model = self.config, self.explainer.model
        started = time.time()
        network_inputs = np.stack([image.network_input for image in loaded]).astype(np.float32)
        prediction = self.explainer.predict(network_inputs)
        classes = [[class_id for class_id in plan.explained_classes(
                        config, model.top_classes(probabilities, config.top_k),
                        image.item.ground_truth)
                    if not self.results.is_done(image.item.path, class_id)]
                   for image, probabilities in zip(loaded, prediction.probabilities)]
        rows = [image for image, image_classes in zip(loaded, classes) for _ in image_classes]
        gif = _GifRecorder(config, rows) if config.save_gif else None
        # (mypy: gif may be a falsy _GifRecorder; it never is, it has no __bool__ or __len__)
        explanations = self.explainer(
            network_inputs, classes, [os.path.basename(image.item.path) for image in loaded],
            prediction, gif and gif.on_check) if rows else []  # type: ignore[arg-type]
        written = self.write(loaded, prediction.probabilities, explanations, gif)
        self.images_done += len(loaded)
        self.heatmaps_made += written
        LOG.info("batch of %d images: %d heatmaps in %.2f s", len(loaded), len(explanations),
                 time.time() - started)

    def write(self, loaded: List[LoadedImage], probabilities: np.ndarray,
              explanations: List["Explanation"], gif: Optional["_GifRecorder"]) -> int:
        """The batch's heatmaps and pictures, then its results lines, all at once; a pair
        whose loss or heatmap is not finite is a failure instead. probabilities: the
        network's, per image of `loaded`. Returns the number of lines written."""
        config, model = self.config, self.explainer.model
        rows = []
        for row, explanation in enumerate(explanations):
            path = loaded[explanation.image_index].item.path
            problem = self.not_finite(path, explanation)
            if problem:
                self.record_failure(path, problem, explanation.class_id)
            else:
                rows.append(row)
        keys = {row: heatmap_key(self.run.names[loaded[explanations[row].image_index].item.path],
                                 explanations[row].class_id) for row in rows}
        references = self.store.write(collections.OrderedDict(
            (keys[row], explanations[row].heatmap.astype(np.float32)) for row in rows)) \
            if rows else {}
        records = []
        for row in rows:
            explanation, key = explanations[row], keys[row]
            image = loaded[explanation.image_index]
            overlay = gif_path = None
            if config.save_overlays:
                overlay = key + ".png"
                picture = heatmaps.show_heatmap_on_image(image.image, explanation.heatmap,
                                                         config.overlay_alpha)
                write_atomically(os.path.join(config.output_dir, overlay),
                                 lambda s: heatmaps.write_png(s, picture))
            if gif is not None:
                gif_path = key + ".gif"
                frames = gif.frames(row, explanation)
                write_atomically(os.path.join(config.output_dir, gif_path),
                                 lambda s: heatmaps.write_gif(s, frames))
            class_id = explanation.class_id
            records.append(collections.OrderedDict([
                ("image", image.item.path), ("network", config.network),
                ("layer", model.layer), ("method", config.method),
                ("caf_variant", config.caf_variant),
                ("filter_type", config.filter_type if config.method == "l2caf" else None),
                ("class_id", class_id),
                ("class_name", None if class_id is None else self.run.class_names[class_id]),
                ("iterations", explanation.iterations), ("final_loss", explanation.loss),
                ("loss_history", explanation.loss_history),
                ("seconds", round(explanation.seconds, 4)), ("heatmap", references[key]),
                ("overlay", overlay), ("gif", gif_path),
                ("predictions", self.top5(probabilities[explanation.image_index])),
                ("ground_truth", image.item.ground_truth), ("image_size", list(image.size))]))
        self.results.write(records)
        return len(records)

    def top5(self, probabilities: np.ndarray) -> List[Dict[str, Any]]:
        """The predictions a results line records: the 5 most probable classes of an image."""
        model = self.explainer.model
        return [{"class_id": c, "class_name": self.run.class_names[c],
                 "probability": float(probabilities[model.class_output(c)])}
                for c in model.top_classes(probabilities, 5)]

    def not_finite(self, path: str, explanation: "Explanation") -> Optional[str]:
        """Why an explanation cannot be written (its loss or heatmap is NaN or infinite),
        or None."""
        class_id = explanation.class_id
        pair = "%s, %s" % (path, "class-oblivious" if class_id is None else "class %d (%s)" % (
            class_id, self.run.class_names[class_id]))
        if explanation.loss is not None and not np.isfinite(explanation.loss):
            return ("%s: the loss became %s within %d update%s; no heatmap written (a "
                    "smaller learning_rate than %g may help)"
                    % (pair, explanation.loss, explanation.iterations,
                       "" if explanation.iterations == 1 else "s", self.config.learning_rate))
        if not np.all(np.isfinite(explanation.heatmap)):
            return "%s: the heatmap holds NaN or infinite values; no heatmap written" % pair
        return None

    def record_failure(self, path: str, reason: object, class_id: Optional[int] = None) -> None:
        """An image (or one class of it) that could not be explained, for `reason` (an error
        or a message): in failures.jsonl, and on the terminal and in the log once."""
        LOG.warning("skipped %s", reason)
        record: Dict[str, Any] = {"image": path, "reason": str(reason)}
        if class_id is not None:
            record["class_id"] = class_id
        self.failures.write([record])
        self.failed.append((path, str(reason)))


def gif_frame_size(height: int, width: int) -> Tuple[int, int]:
    """(height, width) of the GIF frames of an image of that size: its longer side GIF_SIZE,
    its aspect ratio kept (the overlay's shape, smaller)."""
    scale = GIF_SIZE / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


class _GifRecorder(object):
    """The GIF frames of a batch's rows: the overlay at every check while the row runs, and
    its final heatmap."""

    def __init__(self, config: Config, rows: List[LoadedImage]):
        self.alpha = config.overlay_alpha
        self.pictures = [images.resize(image.image, gif_frame_size(*image.image.shape[:2]))
                         for image in rows]
        self.rows: List[List[np.ndarray]] = [[] for _ in rows]
        self.updates: List[Optional[int]] = [None] * len(rows)

    def on_check(self, updates: int, maps: np.ndarray, running: np.ndarray) -> None:
        """FilterOptimizer.run's on_check: a frame of each row still running."""
        for row, heatmap in enumerate(maps[:len(self.rows)]):
            if running[row]:
                self.rows[row].append(heatmaps.show_heatmap_on_image(
                    self.pictures[row], heatmap, self.alpha))
                self.updates[row] = updates

    def frames(self, row: int, explanation: "Explanation") -> List[np.ndarray]:
        """The frames of a row's GIF, its final heatmap last."""
        if self.updates[row] != explanation.iterations:
            return self.rows[row] + [heatmaps.show_heatmap_on_image(
                self.pictures[row], explanation.heatmap, self.alpha)]
        return self.rows[row]
