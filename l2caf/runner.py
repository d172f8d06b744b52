"""Every run of both visualisers: images in, explanations out, for any batch size.

`Run(config)` checks everything (settings, network, labels, checkpoint, images, the output
folder's settings) before anything is written; `Run.execute` then takes the shard's lock (one
writer per folder and shard), keeps the finished results lines whose heatmaps can still be
read, builds the model, and goes through the images in batches: a thread pool decodes and
resizes the next batch while one forward pass gives the current batch's predictions and
activations, the classes to explain are chosen (those already in the folder skipped), the
explainer makes the heatmaps of all the batch's (image, class) pairs at once, and the
heatmaps, pictures and results lines are written (see l2caf.run_folder). An image that cannot
be used, or a pair whose loss or heatmap is not finite, is recorded in failures.jsonl and the
log; the others go on.
"""
import collections
import concurrent.futures
import contextlib
import logging
import os
import sys
import time

import numpy as np
from tqdm import tqdm

from l2caf import __version__, data, heatmaps, images, networks, run_folder
from l2caf.errors import ConfigError, ImageError
from l2caf.run_folder import RunFolder, heatmap_key

LOG = logging.getLogger("l2caf")
GIF_SIZE = 224

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

    def handleError(self, record):
        pass


class _TerminalHandler(logging.Handler):
    """Warnings and errors on stderr, above the progress bar."""

    def emit(self, record):
        tqdm.write("%s: %s" % (record.levelname.lower(), record.getMessage()), file=sys.stderr)


class _SlimSource(object):
    """A slim network of l2caf.networks, restored from its checkpoint."""

    def __init__(self, config):
        from l2caf import checkpoints, model  # TensorFlow, only once the config is right
        network = self.network = networks.get_network(config.network)
        if config.preprocess != "none" or config.image_size or config.output or \
                config.trust_model:
            raise ConfigError("preprocess, image_size, output and trust_model are for network "
                              "keras; %s has its own "
                              "preprocessing and takes %dx%d images"
                              % (network.name, network.image_size, network.image_size))
        self.num_classes = network.num_classes or model.checkpoint_num_classes(
            network, config.checkpoint)
        self.num_labels = self.num_classes - network.label_offset
        self.image_size = network.image_size
        self.layer = config.layer or network.last_conv
        self.fingerprint = checkpoints.fingerprint(config.checkpoint, network.name)

    def _model(self, config, rows):
        from l2caf.model import Model
        return Model(self.network, self.num_classes, config.layer, config.filter_type, rows,
                     config.explain, config.gpu)

    def explainer(self, config, rows):
        model = self._model(config, rows)
        explainer = _explainer(model, config)  # CAM checks the network before the restore
        model.restore(config.checkpoint)
        return explainer

    def model(self, config):
        """The network restored from its checkpoint (its filter, of one row, stays closed):
        for the forward passes of l2caf.faithfulness."""
        model = self._model(config, 1)
        model.restore(config.checkpoint)
        return model

    @staticmethod
    def layers(config):
        from l2caf.model import list_layers
        network = networks.get_network(config.network)
        return list_layers(network), network.last_conv


class _KerasSource(object):
    """A Keras model saved in a file or folder, or a keras.applications network by name
    (config.checkpoint)."""

    def __init__(self, config):
        self.keras_model, self.preprocess, self.own_size = self._load(config)
        with self._model(config, 1) as probe:  # checks the layer, sizes, output and head
            self.num_classes = self.num_labels = probe.num_classes
            self.image_size, self.layer = probe.image_size, probe.layer
            if not isinstance(self.image_size, int):
                self.image_size = list(self.image_size)  # (height, width), as YAML keeps it
        from l2caf import keras_applications
        self.fingerprint = keras_applications.weights_sha256(self.keras_model) \
            if keras_applications.is_application(config.checkpoint) \
            else run_folder.sha256(config.checkpoint)

    @staticmethod
    def _load(config, weights="imagenet"):
        """(the Keras model, its preprocessing, its image size: 0 for the model's own) of
        config.checkpoint."""
        from l2caf import keras_applications, keras_model
        if keras_applications.is_application(config.checkpoint):
            return keras_applications.build(config.checkpoint, config.preprocess, weights)
        return keras_model.load_keras_model(config.checkpoint, config.trust_model), \
            config.preprocess, 0

    def _model(self, config, rows):
        from l2caf.keras_model import KerasModel
        return KerasModel(self.keras_model, config.layer, config.filter_type, rows,
                          config.explain, self.preprocess, config.image_size or self.own_size,
                          config.gpu, output=config.output)

    def explainer(self, config, rows):
        return _explainer(self._model(config, rows), config)

    def model(self, config):
        """The model (its filter, of one row, stays closed): for l2caf.faithfulness."""
        return self._model(config, 1)

    @classmethod
    def layers(cls, config):
        from l2caf import keras_model
        loaded, _, own_size = cls._load(config, weights=None)  # the layers need no weights
        return keras_model.filter_layers(loaded, config.image_size or own_size, config.output)


def _source(config):
    return (_KerasSource if config.network == "keras" else _SlimSource)(config)


def _explainer(model, config):
    """The configured method on `model`."""
    from l2caf.methods import METHODS
    if config.method == "random":
        return METHODS["random"](model, config.seed)
    if config.method == "scorecam":
        return METHODS["scorecam"](model, progress=config.progress)
    if config.method != "l2caf":
        return METHODS[config.method](model)
    settings = {key: config[key] for key in ("learning_rate", "end_learning_rate", "max_iters",
                                             "tolerance", "check_every", "seed")}
    return METHODS["l2caf"](model, config.caf_variant, settings, config.cache_activation)


def class_names(labels, num_labels):
    """The class names of a run: the label list's; without one, ImageNet's for 1000 classes,
    else class_0, class_1, ..."""
    if labels or num_labels == 1000:
        try:
            return data.class_names(labels)
        except (OSError, ValueError) as error:
            raise ConfigError("labels: %s" % error) from None
    return ["class_%d" % index for index in range(num_labels)]


class Run(object):
    """A visualiser run of `config`, checked (ConfigError, CheckpointError, RunError) but
    not started; nothing is written until `execute`."""

    def __init__(self, config, overwrite=False):
        self.config, self.overwrite = config, overwrite
        self.shard = run_folder.parse_shard(config.shard)
        self.source = _source(config)
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
        listed = run_folder.list_images(config)
        # Named over all the images, so that every shard and --limit give the same names.
        self.names = run_folder.output_names([item.path for item in listed])
        self.items = run_folder.select(listed, config, self.shard)
        self.folder = RunFolder(config.output_dir, self.shard)
        self.made_with = collections.OrderedDict([
            ("l2caf_version", __version__), ("image_size", self.source.image_size),
            ("layer", self.source.layer), ("checkpoint_sha256", self.source.fingerprint),
            ("labels_sha256", run_folder.sha256(config.labels) if config.labels else "none")])
        if not overwrite:
            self.folder.check(config, self.made_with)

    def classes_per_image(self, items):
        """The most (image, class) pairs an image of `items` can need."""
        config = self.config
        if config.caf_variant == "cls_oblivious":
            return 1
        count = len(config.classes) or min(config.top_k, len(self.class_names))
        if config.explain_gt:
            count += max((len(item.ground_truth or ()) for item in items), default=0)
        return count

    def execute(self):
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
            run_folder.read_results(path)
        problems = run_folder.unreadable_heatmaps(records, self.config.output_dir)
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
        done_pairs = {run_folder.line_key(record) for record in finished}
        done = run_folder.by_image(finished)
        return [item for item in self.items if not run_folder.is_complete(
            self.config, len(self.class_names), done.get(run_folder.image_key(item.path)),
            item.ground_truth, lambda image, class_id: (run_folder.image_key(image), class_id)
            in done_pairs)]

    def _explainer(self, todo):
        """The configured method on a model with the rows `todo` needs, or None if none."""
        if not todo:
            return None
        config = self.config
        rows = min(config.batch_size, len(todo)) * self.classes_per_image(todo)
        return self.source.explainer(config, rows if config.method == "l2caf" else 1)

    def _explain(self, finished, todo, explainer):
        config, folder = self.config, self.folder
        folder.write_config(config, self.made_with)
        started = time.time()
        done_pairs = {run_folder.line_key(record) for record in finished}
        results = run_folder.LinesFile(folder.results_path, keep=lambda record: (
            run_folder.line_key(record) in done_pairs))
        # Failed images are tried again, so the failures file holds this run's.
        failures = run_folder.LinesFile(folder.failures_path, keep=False)
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


def _prefetched(items, batch_size, load, workers):
    """Yields the batches of `items` as lists of (item, future of load(item)). The next batch
    goes to the `workers` threads before a batch is yielded, so that decoding it overlaps the
    work on the current one."""
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        ahead = None
        for start in range(0, len(items), batch_size):
            batch = [(item, pool.submit(load, item)) for item in items[start:start + batch_size]]
            if ahead is not None:
                yield ahead
            ahead = batch
        if ahead is not None:
            yield ahead


class _Batches(object):
    """The batch loop of a Run: explains batches into `results`; unusable images go to
    `failures`."""

    def __init__(self, run, explainer, results, failures):
        self.run, self.config, self.explainer = run, run.config, explainer
        self.results, self.failures = results, failures
        if self.config.heatmap_format == "npz":
            self.store = run_folder.NpzChunks(self.config.output_dir, run.shard)
        else:
            self.store = run_folder.NpyFiles(self.config.output_dir)
        self.failed = []
        self.images_done = self.heatmaps_made = 0

    def load(self, item):
        """Runs in a worker thread: decodes and resizes one image."""
        image = images.read_image(item.path)
        keep = self.config.save_overlays or self.config.save_gif
        return LoadedImage(item, images.resize(image, self.run.source.image_size),
                           image.shape[:2], image if keep else None)

    def explain_all(self, items):
        config = self.config
        with tqdm(total=len(items), desc="images", unit="image", dynamic_ncols=True,
                  disable=not config.progress) as progress:
            for batch in _prefetched(items, config.batch_size, self.load, config.workers):
                self.explain_batch(batch)
                progress.update(len(batch))

    def explain_batch(self, batch):
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
        classes = [[class_id for class_id in run_folder.explained_classes(
                        config, model.top_classes(probabilities, config.top_k),
                        image.item.ground_truth)
                    if not self.results.is_done(image.item.path, class_id)]
                   for image, probabilities in zip(loaded, prediction.probabilities)]
        rows = [image for image, image_classes in zip(loaded, classes) for _ in image_classes]
        gif = _GifRecorder(config, rows) if config.save_gif else None
        explanations = self.explainer(network_inputs, classes,
                                      [os.path.basename(image.item.path) for image in loaded],
                                      prediction, gif and gif.on_check) if rows else []
        written = self.write(loaded, prediction.probabilities, explanations, gif)
        self.images_done += len(loaded)
        self.heatmaps_made += written
        LOG.info("batch of %d images: %d heatmaps in %.2f s", len(loaded), len(explanations),
                 time.time() - started)

    def write(self, loaded, probabilities, explanations, gif):
        """The batch's heatmaps and pictures, then its results lines, all at once; a pair
        whose loss or heatmap is not finite is a failure instead. Returns the number of
        lines written."""
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
                run_folder.write_atomically(os.path.join(config.output_dir, overlay),
                                            lambda s: heatmaps.write_png(s, picture))
            if gif is not None:
                gif_path = key + ".gif"
                frames = gif.frames(row, explanation)
                run_folder.write_atomically(os.path.join(config.output_dir, gif_path),
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

    def top5(self, probabilities):
        model = self.explainer.model
        return [{"class_id": c, "class_name": self.run.class_names[c],
                 "probability": float(probabilities[model.class_output(c)])}
                for c in model.top_classes(probabilities, 5)]

    def not_finite(self, path, explanation):
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

    def record_failure(self, path, reason, class_id=None):
        """An image (or one class of it) that could not be explained: in failures.jsonl,
        and on the terminal and in the log once."""
        LOG.warning("skipped %s", reason)
        record = {"image": path, "reason": str(reason)}
        if class_id is not None:
            record["class_id"] = class_id
        self.failures.write([record])
        self.failed.append((path, str(reason)))


class _GifRecorder(object):
    """The GIF frames of a batch's rows: the overlay at every check while the row runs, and
    its final heatmap."""

    def __init__(self, config, rows):
        self.alpha = config.overlay_alpha
        self.pictures = [images.resize(image.image, GIF_SIZE) for image in rows]
        self.rows = [[] for _ in rows]
        self.updates = [None] * len(rows)

    def on_check(self, updates, maps, running):
        for row, heatmap in enumerate(maps[:len(self.rows)]):
            if running[row]:
                self.rows[row].append(heatmaps.show_heatmap_on_image(
                    self.pictures[row], heatmap, self.alpha))
                self.updates[row] = updates

    def frames(self, row, explanation):
        if self.updates[row] != explanation.iterations:
            return self.rows[row] + [heatmaps.show_heatmap_on_image(
                self.pictures[row], explanation.heatmap, self.alpha)]
        return self.rows[row]


def layer_lines(config):
    """--list_layers: a line per layer where a filter can go, its map size (and, for a Keras
    model's token maps, "tokens"), the default marked."""
    layers, default = (_KerasSource if config.network == "keras" else _SlimSource).layers(config)
    width = max(len(name) for name, *_ in layers)
    lines = []
    for name, (height, map_width), *what in layers:  # what: Keras models only
        lines.append("%-*s %dx%d%s%s" % (width, name, height, map_width,
                                         "".join(" " + text for text in what if text),
                                         "  (default: the last conv layer)"
                                         if name == default else ""))
    return lines
