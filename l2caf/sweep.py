"""The fast, batched visualiser behind scripts/visualize_attention_fast.py: sweeps over
thousands of images (all 50,000 ImageNet validation images), resumable and shardable.

Images go through in batches. One forward pass gives each image's predictions and the
activation at the filter layer; L2CAF then optimises the filters of all the batch's
(image, class) rows at once on that cached activation, each row stopping when its own loss
settles. Losses, initialisation (seeded per image name and class), schedule and stopping rule
are the slow visualiser's, so each heatmap is the one the slow visualiser makes. Meanwhile a
thread pool decodes and resizes the next batch. With `method` cam or gradcam, the baselines of
l2caf.methods make each batch's heatmaps in one pass instead (one gradient run for Grad-CAM).

The output files of shard INDEX/COUNT carry the suffix _shard<INDEX>of<COUNT> (none for 0/1):

    results.jsonl         a line per heatmap: the slow visualiser's fields, plus method,
                          ground_truth (class ids, or null) and image_size ([height, width]);
                          the baselines' lines have final_loss and filter_type null and
                          iterations 0
    heatmaps_000000.npz   a batch's heatmaps (heatmap_format npz): the heatmap field of a line
                          is FILE.npz:KEY; `load_heatmap` reads both forms
    failures.jsonl        a line per image that could not be read: image, reason
    config.yaml, run.log  the effective configuration, the log

A batch's heatmap file is complete (written under a temporary name, then renamed) before its
lines are written, and the lines are synced to disk per batch: after Ctrl-C or kill -9 the
same command continues where it stopped, skipping the (image, class) pairs already done.
"""
import argparse
import collections
import concurrent.futures
import json
import os
import re
import time

import numpy as np
from tqdm import tqdm

from l2caf import data, images
from l2caf.config import (FAST_OPTIONS, Config, ConfigError, add_arguments, from_arguments,
                          read_yaml)
from l2caf.methods import METHODS
from l2caf.model import Model
from l2caf.results import ResultsFile, read_results
from l2caf.visualize import (GIF_SIZE, LOG, RunError, classes_to_explain, gif_recorder,
                             load_explainer, output_stem, prepare, print_layers, report_failures,
                             result_record, run_command, setup_logging, write_outputs,
                             write_pictures)

Shard = collections.namedtuple("Shard", ["index", "count"])
Shard.__doc__ = """This run takes every `count`-th image, from the `index`-th (0-based)."""

LoadedImage = collections.namedtuple("LoadedImage", ["item", "network_input", "size", "image"])
LoadedImage.__doc__ = """A decoded image: its data.LabeledImage, the RGB image resized to the
network's input, its own (height, width), and the image itself when overlays or GIFs need it
(else None)."""

MergeReport = collections.namedtuple(
    "MergeReport", ["path", "lines", "duplicates", "images", "failed", "missing", "incomplete",
                    "shards_to_rerun"])
MergeReport.__doc__ = """What `merge_shards` did and found. path: the merged results.jsonl.
lines: its number of lines; duplicates: lines dropped as repeats. images: how many images the
sweep covers; failed, missing (no line), incomplete (some class without a line): their paths.
shards_to_rerun: the shard indices that hold missing or failed work."""

_SHARD_RESULTS = re.compile(r"results_shard(\d+)of(\d+)\.jsonl$")


def parse_shard(text):
    """'INDEX/COUNT' -> Shard; a ConfigError unless 0 <= INDEX < COUNT."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not match or int(match.group(1)) >= int(match.group(2)):
        raise ConfigError("shard must be INDEX/COUNT with 0 <= INDEX < COUNT (e.g. 0/4), got %r"
                          % (text,))
    return Shard(int(match.group(1)), int(match.group(2)))


def shard_file(output_dir, stem, shard, extension):
    """output_dir/<stem>_shard<INDEX>of<COUNT><extension>, or <stem><extension> for 0/1."""
    suffix = "" if shard.count == 1 else "_shard%dof%d" % shard
    return os.path.join(output_dir, stem + suffix + extension)


def load_heatmap(reference):
    """The heatmap named by a results line's `heatmap` field: FILE.npz:KEY, or FILE.npy."""
    path, separator, key = reference.rpartition(":")
    if separator and path.endswith(".npz"):
        with np.load(path) as archive:
            return archive[key]
    return np.load(reference)


def explained_classes(config, ranked_classes, ground_truth):
    """The classes explained for an image: `classes_to_explain`, plus with explain_gt
    (cls_specific) its ground-truth classes that are not among them."""
    classes = classes_to_explain(config, ranked_classes)
    if config.explain_gt and config.caf_variant == "cls_specific":
        classes += [c for c in ground_truth or () if c not in classes]
    return classes


def recorded_classes(config, num_labels, record, ground_truth):
    """`explained_classes` of an image known from one of its results lines (whose predictions
    are its top 5), or None when those do not tell (top_k beyond them)."""
    ranked = [prediction["class_id"] for prediction in record["predictions"]]
    if config.caf_variant == "cls_specific" and not config.classes and \
            len(ranked) < min(config.top_k, num_labels):
        return None
    return explained_classes(config, ranked, ground_truth)


def classes_per_image(config, num_labels, items):
    """The most (image, class) rows an image of `items` can need."""
    if config.caf_variant == "cls_oblivious":
        return 1
    count = len(config.classes) or min(config.top_k, num_labels)
    if config.explain_gt:
        count += max((len(item.ground_truth or ()) for item in items), default=0)
    return count


def check_sweep_settings(config):
    """Value checks of the sweep keys; returns the Shard."""
    for key in ("batch_size", "workers"):
        if config[key] < 1:
            raise ConfigError("%s must be at least 1, got %d" % (key, config[key]))
    if config.limit < 0:
        raise ConfigError("limit must be 0 (all images) or more, got %d" % config.limit)
    if config.annotations and not os.path.isdir(config.annotations):
        raise ConfigError("annotations: %s is not a folder of XML files" % config.annotations)
    if config.method != "l2caf":
        if config.caf_variant != "cls_specific":
            raise ConfigError("method %s explains classes: it needs caf_variant cls_specific"
                              % config.method)
        if config.save_gif:
            raise ConfigError("save_gif shows an optimisation, and method %s has none; set "
                              "save_gif false" % config.method)
    return parse_shard(config.shard)


def load_method(config, spec, num_classes, rows):
    """The configured explainer: L2CAF with `rows` filter rows, or a baseline (whose filter
    stays closed: one row of the default type)."""
    if config.method == "l2caf":
        return load_explainer(config, spec, num_classes, rows)
    model = Model(spec, num_classes, config.layer, gpu=config.gpu)
    explainer = METHODS[config.method](model)  # checks the network before the restore
    model.restore(config.checkpoint)
    return explainer


def select_images(config, shard):
    """The data.LabeledImages of a run: sorted, the first config.limit, then the shard's."""
    try:
        labeled = data.list_labeled_images(config.images, config.annotations, config.labels)
    except images.ImageError:
        raise  # a ValueError too, but it already names the image at fault
    except (OSError, ValueError) as error:
        raise ConfigError("annotations: %s" % error) from None
    seen = {}
    for item in labeled:
        stem = os.path.splitext(os.path.basename(item.path))[0]
        if stem in seen:
            raise ConfigError("images %s and %s have the same name %s; outputs are named after "
                              "the image, give each image its own name"
                              % (seen[stem], item.path, stem))
        seen[stem] = item.path
    selected = labeled[:config.limit] if config.limit else labeled
    return selected[shard.index::shard.count]


def prefetched_batches(items, batch_size, load, workers):
    """Yields the batches of `items` as lists of (item, future of load(item)). The next batch
    is handed to the `workers` threads before a batch is yielded, so that decoding and
    resizing it overlap the work on the current one."""
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        ahead = None
        for start in range(0, len(items), batch_size):
            batch = [(item, pool.submit(load, item)) for item in items[start:start + batch_size]]
            if ahead is not None:
                yield ahead
            ahead = batch
        if ahead is not None:
            yield ahead


class HeatmapChunks(object):
    """The npz heatmap files of one shard: heatmaps<shard suffix>_<number>.npz, numbered on
    from the highest in the folder, so that a rerun never overwrites a file a line names."""

    def __init__(self, output_dir, shard):
        self.prefix = shard_file(output_dir, "heatmaps", shard, "_")
        pattern = re.compile(re.escape(os.path.basename(self.prefix)) + r"(\d+)\.npz$")
        numbers = [int(match.group(1)) for match in map(pattern.match, os.listdir(output_dir))
                   if match]
        self.next_number = max(numbers, default=-1) + 1

    def write(self, heatmaps_by_key):
        """Writes the next file, whole or not at all (temporary name, synced, renamed);
        returns its path."""
        path = "%s%06d.npz" % (self.prefix, self.next_number)
        self.next_number += 1
        with open(path + ".tmp", "wb") as stream:
            np.savez_compressed(stream, **heatmaps_by_key)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(path + ".tmp", path)
        return path


class Sweep(object):
    """Explains batches of images into `results` (a ResultsFile); unreadable images go to
    `failures` (a text stream, one JSON line each). chunks: the HeatmapChunks that store the
    heatmaps, or None for one .npy file per heatmap."""

    def __init__(self, config, explainer, names, results, failures, chunks):
        self.config = config
        self.explainer = explainer
        self.names = names
        self.results = results
        self.failures = failures
        self.chunks = chunks
        self.failed = []
        self.images_done = 0
        self.heatmaps_made = 0
        self.seconds = 0.0

    def load(self, item):
        """Runs in a worker thread: decodes and resizes one image."""
        image = images.read_image(item.path)
        keep = self.config.save_overlays or self.config.save_gif
        return LoadedImage(item, images.resize(image, self.explainer.model.network.image_size),
                           image.shape[:2], image if keep else None)

    def run(self, items):
        """Explains every (image, class) pair of `items` that is not done yet."""
        started = time.time()
        batches = prefetched_batches(items, self.config.batch_size, self.load,
                                     self.config.workers)
        with tqdm(total=len(items), desc="images", unit="image", dynamic_ncols=True) as progress:
            for batch in batches:
                self.explain_batch(batch)
                progress.update(len(batch))
        self.seconds = time.time() - started

    def explain_batch(self, batch):
        loaded = []
        for item, future in batch:
            try:
                loaded.append(future.result())
            except (images.ImageError, OSError) as error:
                self.record_failure(item.path, error)
        if not loaded:
            return
        config, model = self.config, self.explainer.model
        started = time.time()
        network_inputs = np.stack([image.network_input for image in loaded]).astype(np.float32)
        prediction = self.explainer.predict(network_inputs)
        classes = [[class_id for class_id in explained_classes(
                        config, model.top_classes(probabilities, config.top_k),
                        image.item.ground_truth)
                    if not self.results.is_done(image.item.path, class_id)]
                   for image, probabilities in zip(loaded, prediction.probabilities)]
        rows = [image for image, image_classes in zip(loaded, classes) for _ in image_classes]
        frames, on_check = [[] for _ in rows], None
        if config.save_gif:
            frames, on_check = gif_recorder(
                config, [images.resize(image.image, GIF_SIZE) for image in rows])
        explanations = []
        if rows:
            keys = [os.path.basename(image.item.path) for image in loaded]
            explanations = self.explainer(network_inputs, classes, keys, prediction, on_check)
        self.write(loaded, prediction.probabilities, explanations, frames)
        self.images_done += len(loaded)
        self.heatmaps_made += len(explanations)
        LOG.info("batch of %d images: %d heatmaps in %.2f s", len(loaded), len(explanations),
                 time.time() - started)

    def write(self, loaded, probabilities, explanations, frames):
        """The batch's heatmaps, pictures and then results lines (all of them at once)."""
        config, model = self.config, self.explainer.model
        stems = [output_stem(loaded[e.image_index].item.path, e.class_id) for e in explanations]
        if self.chunks is not None and explanations:
            chunk = self.chunks.write({stem: explanation.heatmap.astype(np.float32)
                                       for stem, explanation in zip(stems, explanations)})
        records = []
        for explanation, stem, row_frames in zip(explanations, stems, frames):
            image = loaded[explanation.image_index]
            if self.chunks is not None:
                paths = dict(heatmap="%s:%s" % (chunk, stem), **write_pictures(
                    config, os.path.join(config.output_dir, stem), image.image, explanation,
                    row_frames))
            else:
                paths = write_outputs(config, image.item.path, image.image, explanation,
                                      row_frames)
            record = result_record(config, model, self.names, image.item.path, explanation,
                                   probabilities[explanation.image_index], paths)
            record.update(method=config.method, ground_truth=image.item.ground_truth,
                          image_size=list(image.size))
            if config.method != "l2caf":
                record.update(filter_type=None)
            records.append(record)
        self.results.write(records)

    def record_failure(self, path, error):
        LOG.error("skipped %s", error)
        self.failures.write(json.dumps({"image": path, "reason": str(error)}) + "\n")
        self.failures.flush()
        self.failed.append((path, str(error)))


def _by_image(records):
    grouped = collections.OrderedDict()
    for record in records:
        grouped.setdefault(record["image"], []).append(record)
    return grouped


def _is_complete(config, num_labels, item, records, is_done):
    """Whether the results lines `records` of `item` hold all its classes (False when
    they cannot tell)."""
    if not records:
        return False
    classes = recorded_classes(config, num_labels, records[0], item.ground_truth)
    return classes is not None and all(is_done(item.path, c) for c in classes)


def run(config):
    """Sweeps the shard's images; returns the list of (image, reason) failures."""
    spec, names, num_classes = prepare(config)
    shard = check_sweep_settings(config)
    items = select_images(config, shard)
    os.makedirs(config.output_dir, exist_ok=True)
    setup_logging(config.output_dir, shard_file("", "run", shard, ".log"))
    config.save(shard_file(config.output_dir, "config", shard, ".yaml"))
    results_path = shard_file(config.output_dir, "results", shard, ".jsonl")
    # Failed images are tried again, so the failures file holds this run's.
    with ResultsFile(results_path) as results, \
            open(shard_file(config.output_dir, "failures", shard, ".jsonl"), "w") as failures:
        done = _by_image(read_results(results_path))
        todo = [item for item in items if not _is_complete(
            config, len(names), item, done.get(item.path), results.is_done)]
        sweep = None
        if todo:
            rows = min(config.batch_size, len(todo)) * classes_per_image(config, len(names), todo)
            chunks = HeatmapChunks(config.output_dir, shard) \
                if config.heatmap_format == "npz" else None
            sweep = Sweep(config, load_method(config, spec, num_classes, rows), names,
                          results, failures, chunks)
            sweep.run(todo)
    images_done, made, seconds, failed = (
        (sweep.images_done, sweep.heatmaps_made, sweep.seconds, sweep.failed) if sweep
        else (0, 0, 0.0, []))
    summary = ("%d images done (%d heatmaps, %.2f heatmaps/s, %.2f images/s), %d skipped as "
               "already done, %d failed; results in %s" % (
                   images_done, made, made / max(seconds, 1e-9), images_done / max(seconds, 1e-9),
                   len(items) - len(todo), len(failed), results_path))
    LOG.info(summary)
    print(summary)
    return failed


def read_config(path):
    """The effective Config of a fast run from its saved config file."""
    config = Config((key, option.default) for key, option in FAST_OPTIONS.items())
    config.update(read_yaml(path, FAST_OPTIONS))
    return config


def _read_jsonl(paths):
    return [record for path in paths if os.path.exists(path) for record in read_results(path)]


def _write_jsonl(path, records):
    """Replaces `path` with `records`, whole or not at all."""
    with open(path + ".tmp", "w") as stream:
        stream.writelines(json.dumps(record) + "\n" for record in records)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(path + ".tmp", path)


def merge_shards(output_dir):
    """Joins the shards' results in output_dir into results.jsonl (each (image, class) once)
    and their failures into failures.jsonl; returns a MergeReport of the work still missing.

    The shards' own files stay: merging again (after rerunning a shard) makes both anew.
    """
    found = sorted((int(match.group(2)), int(match.group(1)))
                   for match in map(_SHARD_RESULTS.match, sorted(os.listdir(output_dir)))
                   if match) if os.path.isdir(output_dir) else []
    if not found:
        raise RunError("%s holds no shard results (results_shard<INDEX>of<COUNT>.jsonl); run "
                       "the sweep with --shard INDEX/COUNT first" % output_dir)
    count = found[0][0]
    if any(shard_count != count for shard_count, _ in found):
        raise RunError("%s holds shards of different counts (%s); merge one sharding at a time"
                       % (output_dir, ", ".join("%d/%d" % (i, c) for c, i in found)))
    shards = [Shard(index, count) for _, index in found]
    config = read_config(shard_file(output_dir, "config", shards[0], ".yaml"))
    _, names, _ = prepare(config)

    merged_path = os.path.join(output_dir, "results.jsonl")
    merged = collections.OrderedDict()
    inputs = _read_jsonl([shard_file(output_dir, "results", s, ".jsonl") for s in shards])
    for record in inputs:
        merged.setdefault((record["image"], record.get("class_id")), record)
    # In image order, as one unsharded run writes them.
    _write_jsonl(merged_path, sorted(merged.values(), key=lambda record: record["image"]))

    by_image = _by_image(merged.values())
    failures = collections.OrderedDict(
        (record["image"], record) for record in _read_jsonl(
            [shard_file(output_dir, "failures", s, ".jsonl") for s in shards])
        if record["image"] not in by_image)
    _write_jsonl(os.path.join(output_dir, "failures.jsonl"), failures.values())

    items = select_images(config, Shard(0, 1))
    missing, incomplete, to_rerun = [], [], set()
    for position, item in enumerate(items):
        records = by_image.get(item.path)
        if _is_complete(config, len(names), item, records, lambda image, c: (image, c) in merged):
            continue
        if records:
            incomplete.append(item.path)
        elif item.path not in failures:
            missing.append(item.path)
        to_rerun.add(position % count)
    return MergeReport(merged_path, len(merged), len(inputs) - len(merged), len(items),
                       list(failures), missing, incomplete, sorted(to_rerun))


def print_merge_report(report):
    """Prints a MergeReport; returns the exit code: 1 if work is missing or failed, else 0."""
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


def main(argv=None, description=__doc__):
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, FAST_OPTIONS)
    parser.add_argument("--merge", metavar="DIR",
                        help="join the shards' results_shard*.jsonl and failures_shard*.jsonl in "
                             "DIR into DIR/results.jsonl and DIR/failures.jsonl, report the "
                             "images still missing, and exit (status 1 if any)")
    args = parser.parse_args(argv)

    def command():
        if args.merge:
            return print_merge_report(merge_shards(args.merge))
        config = from_arguments(args, FAST_OPTIONS)
        if args.list_layers:
            return print_layers(config)
        return report_failures(run(config))
    return run_command(command)
