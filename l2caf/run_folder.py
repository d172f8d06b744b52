"""A run's output folder: what made it, its results, failures and heatmaps, shards and merge.

The files of shard INDEX/COUNT carry the suffix _shard<INDEX>of<COUNT> (none for 0/1):

    config.yaml           the settings that made the results, and (made_with) the network's
                          image size, the checkpoint's and the label list's SHA-256 and the
                          layer; a rerun with other settings is refused (see RunFolder.check)
    results.jsonl         a line per heatmap, written (and synced) after its files
    failures.jsonl        a line per image that could not be used: image, reason
    run.log               what happened, with times
    <name>_c<class>.npy   heatmap_format npy: a heatmap per file (<name>_oblivious for
                          cls_oblivious), beside its overlay .png and .gif
    heatmaps_000000.npz   heatmap_format npz: a batch's heatmaps; a results line names one as
                          FILE.npz:KEY (`load_heatmap` reads both)

Every file a line names is complete before the line is written (temporary name, synced,
renamed), and heatmap files are never overwritten: after Ctrl-C or kill -9 the same command
continues where it stopped. No TensorFlow here: the evaluation reads run folders with it.
"""
import collections
import glob
import hashlib
import json
import os
import re
import zlib

import numpy as np
import yaml

from l2caf import config as config_module, data, images
from l2caf.errors import ConfigError, OutputError, RunError

Shard = collections.namedtuple("Shard", ["index", "count"])
Shard.__doc__ = """This run takes every `count`-th image, from the `index`-th (0-based)."""

SLURM_VARIABLES = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT")


def parse_shard(text, environ=os.environ):
    """'INDEX/COUNT' -> Shard (0 <= INDEX < COUNT); 'auto': the task of a Slurm job array
    (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT)."""
    if str(text).strip() == "auto":
        if not all(name in environ for name in SLURM_VARIABLES):
            raise ConfigError("shard auto takes INDEX/COUNT from a Slurm job array (sbatch "
                              "--array), but %s are not set; give --shard INDEX/COUNT instead"
                              % ", ".join(name for name in SLURM_VARIABLES if name not in environ))
        try:
            task, first, count = (int(environ[name]) for name in SLURM_VARIABLES)
        except ValueError:
            raise ConfigError("shard auto: %s must be integers, got %s" % (
                ", ".join(SLURM_VARIABLES),
                ", ".join(repr(environ[name]) for name in SLURM_VARIABLES))) from None
        text = "%d/%d" % (task - first, count)
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not match or int(match.group(1)) >= int(match.group(2)):
        raise ConfigError("shard must be INDEX/COUNT with 0 <= INDEX < COUNT (e.g. 0/4) or auto, "
                          "got %r" % (text,))
    return Shard(int(match.group(1)), int(match.group(2)))


def shard_file(output_dir, stem, shard, extension):
    """output_dir/<stem>_shard<INDEX>of<COUNT><extension>, or <stem><extension> for 0/1."""
    suffix = "" if shard.count == 1 else "_shard%dof%d" % shard
    return os.path.join(output_dir, stem + suffix + extension)


def output_names(paths):
    """{image path: the name of its output files}: the file name without extension, or, for
    images that share it with another image of the run, that name and a hash of the path."""
    stems = collections.Counter(_stem(path) for path in paths)
    return {path: _stem(path) if stems[_stem(path)] == 1
            else "%s-%08x" % (_stem(path), zlib.crc32(os.path.abspath(path).encode("utf-8")))
            for path in paths}


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def heatmap_key(name, class_id):
    return name + ("_oblivious" if class_id is None else "_c%d" % class_id)


def load_heatmap(reference, results_dir=None):
    """The heatmap a results line names: FILE.npz:KEY or FILE.npy. With results_dir, a
    folder that has moved is looked up there by file name."""
    path, separator, key = reference.partition(".npz:")
    path = path + ".npz" if separator else reference
    if results_dir and not os.path.exists(path):
        path = os.path.join(results_dir, os.path.basename(path))
    if not separator:
        return np.load(path)
    with np.load(path) as archive:
        return archive[key]


def sha256(path):
    """The SHA-256 of a file, or of every file of a folder with its relative name (a
    SavedModel): what a run folder records of its checkpoint and label list."""
    digest = hashlib.sha256()
    paths = [path] if os.path.isfile(path) else sorted(
        os.path.join(folder, name) for folder, _, names in os.walk(path) for name in names)
    for file_path in paths:
        digest.update(os.path.relpath(file_path, path).encode("utf-8"))
        with open(file_path, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def write_atomically(path, write):
    """Calls write(stream) on a temporary file, syncs it and renames it to `path`: the file
    is whole or absent. OSError (a full disk, no permission) becomes an OutputError."""
    try:
        with open(path + ".tmp", "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(path + ".tmp", path)
    except OSError as error:
        raise OutputError("cannot write %s: %s" % (path, error.strerror or error)) from None


def read_results(path):
    """All records of a results (or failures) file; torn lines (a kill during a write) are
    skipped."""
    records = []
    with open(path) as stream:
        for line in stream:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


def _line_key(record):
    return record["image"], record.get("class_id")


class LinesFile(object):
    """Appends JSON lines to `path`, flushed and synced per write. Lines already there (from
    an interrupted run) are kept, a torn last line dropped; `done` holds their (image,
    class_id) keys. OSError becomes an OutputError naming the file."""

    def __init__(self, path, keep=True):
        self.path = path
        self.done = set()
        self.records = []
        if keep and os.path.exists(path):
            self.records = read_results(path)
            self.done = {_line_key(record) for record in self.records}
        try:
            write_atomically(path, lambda stream: stream.writelines(
                (json.dumps(record) + "\n").encode("utf-8") for record in self.records))
            self._stream = open(path, "a")
        except OSError as error:
            raise OutputError("cannot write %s: %s" % (path, error.strerror)) from None

    def is_done(self, image, class_id=None):
        return (image, class_id) in self.done

    def write(self, records):
        try:
            for record in records:
                self._stream.write(json.dumps(record) + "\n")
            self._stream.flush()
            os.fsync(self._stream.fileno())
        except OSError as error:
            raise OutputError("cannot write %s: %s" % (self.path, error.strerror)) from None
        self.done.update(_line_key(record) for record in records)

    def close(self):
        self._stream.close()


class NpzChunks(object):
    """Heatmaps as one compressed .npz per batch: heatmaps<shard suffix>_<number>.npz,
    numbered on from the highest in the folder, so that no file a line names is ever
    overwritten."""

    def __init__(self, output_dir, shard):
        self.prefix = shard_file(output_dir, "heatmaps", shard, "_")
        pattern = re.compile(re.escape(os.path.basename(self.prefix)) + r"(\d+)\.npz$")
        numbers = [int(match.group(1)) for match in map(pattern.match, os.listdir(output_dir))
                   if match]
        self.next_number = max(numbers, default=-1) + 1

    def write(self, heatmaps_by_key):
        """Writes the batch's file; returns {key: the reference a results line holds}."""
        path = "%s%06d.npz" % (self.prefix, self.next_number)
        self.next_number += 1
        write_atomically(path, lambda stream: np.savez_compressed(stream, **heatmaps_by_key))
        return {key: "%s:%s" % (path, key) for key in heatmaps_by_key}


class NpyFiles(object):
    """Heatmaps as one .npy file each, output_dir/<key>.npy."""

    def __init__(self, output_dir):
        self.output_dir = output_dir

    def write(self, heatmaps_by_key):
        references = {}
        for key, heatmap in heatmaps_by_key.items():
            references[key] = os.path.join(self.output_dir, key + ".npy")
            write_atomically(references[key], lambda stream: np.save(stream, heatmap))
        return references


def explained_classes(config, ranked_classes, ground_truth):
    """The classes a run explains for an image: one class-free heatmap (None) for
    cls_oblivious; else config.classes, or the top_k of ranked_classes (class ids, best
    first), plus with explain_gt the image's ground-truth classes not among them."""
    if config.caf_variant == "cls_oblivious":
        return [None]
    classes = list(config.classes) or list(ranked_classes[:config.top_k])
    if config.explain_gt:
        classes += [c for c in ground_truth or () if c not in classes]
    return classes


def is_complete(config, num_labels, records, ground_truth, is_done):
    """Whether an image's results lines `records` hold all its classes (False when they
    cannot tell: top_k beyond the top 5 the lines record)."""
    if not records:
        return False
    ranked = [prediction["class_id"] for prediction in records[0]["predictions"]]
    if config.caf_variant == "cls_specific" and not config.classes and \
            len(ranked) < min(config.top_k, num_labels):
        return False
    return all(is_done(records[0]["image"], class_id)
               for class_id in explained_classes(config, ranked, ground_truth))


def by_image(records):
    grouped = collections.OrderedDict()
    for record in records:
        grouped.setdefault(record["image"], []).append(record)
    return grouped


class RunFolder(object):
    """The files of one shard of a run in output_dir (see the module docstring)."""

    def __init__(self, output_dir, shard=Shard(0, 1)):
        self.output_dir, self.shard = output_dir, shard
        self.config_path = shard_file(output_dir, "config", shard, ".yaml")
        self.results_path = shard_file(output_dir, "results", shard, ".jsonl")
        self.failures_path = shard_file(output_dir, "failures", shard, ".jsonl")
        self.log_path = shard_file(output_dir, "run", shard, ".log")

    def _saved_configs(self):
        configs = []
        for path in sorted(glob.glob(os.path.join(glob.escape(self.output_dir), "config*.yaml"))):
            try:
                with open(path) as stream:
                    saved = yaml.safe_load(stream)
            except (OSError, yaml.YAMLError) as error:
                raise RunError("%s cannot be read (%s): use another output_dir, or --overwrite "
                               "to clear the folder's results" % (path, error)) from None
            if isinstance(saved, dict):
                configs.append((path, saved))
        return configs

    def check(self, config, made_with):
        """A RunError, before any work, if the folder holds results of other settings: it
        names the keys that differ and what to do."""
        current = dict(config, **made_with)
        for path, saved in self._saved_configs():
            saved = dict(saved, **saved.pop(config_module.MADE_WITH, None) or {})
            # A key newer than the folder was at its default there.
            saved = dict(config_module.defaults(), **saved)
            differ = ["%s (%s there, %s now)" % (key, _shown(saved.get(key)), _shown(value))
                      for key, value in current.items()
                      if key not in config_module.FREE_KEYS and saved.get(key) != value]
            if differ:
                raise RunError("%s holds results made with other settings: %s; use another "
                               "output_dir, or --overwrite to delete those results first"
                               % (self.output_dir, "; ".join(differ)))

    def open(self, overwrite=False):
        """Makes the folder (or, with overwrite, deletes the results it holds) and checks
        that it can be written; OutputError otherwise."""
        if os.path.exists(self.output_dir) and not os.path.isdir(self.output_dir):
            raise OutputError("output_dir %s is a file, not a folder; choose another "
                              "output_dir" % self.output_dir)
        try:
            os.makedirs(self.output_dir, exist_ok=True)
            if overwrite:
                self._delete_results()
            write_atomically(os.path.join(self.output_dir, ".l2caf_write_test"),
                             lambda stream: stream.write(b"ok"))
            os.remove(os.path.join(self.output_dir, ".l2caf_write_test"))
        except OSError as error:
            raise OutputError("cannot write to output_dir %s: %s"
                              % (self.output_dir, error.strerror or error)) from None

    def _delete_results(self):
        """The run files of every shard and the heatmap files their lines name; nothing
        else in the folder."""
        folder = glob.escape(self.output_dir)
        lines = glob.glob(os.path.join(folder, "results*.jsonl"))
        named = set()
        for path in lines:
            for record in read_results(path):
                for key in ("heatmap", "overlay", "gif"):
                    if record.get(key):
                        named.add(record[key].partition(".npz:")[0])
        patterns = ["results*.jsonl", "failures*.jsonl", "config*.yaml", "run*.log",
                    "heatmaps*.npz", "localization_*.csv", "localization_*.json"]
        for path in named | {found for pattern in patterns
                             for found in glob.glob(os.path.join(folder, pattern))}:
            if os.path.exists(path):
                os.remove(path)

    def write_config(self, config, made_with):
        text = yaml.safe_dump(dict(config, **{config_module.MADE_WITH: dict(made_with)}),
                              sort_keys=False)
        write_atomically(self.config_path, lambda stream: stream.write(text.encode("utf-8")))


def _shown(value):
    return "none" if value is None else json.dumps(value) if isinstance(value, list) \
        else str(value)


def read_run_config(path):
    """The Config a run folder's config*.yaml at `path` describes."""
    config = config_module.defaults(config_module.options(config_module.FAST_DEFAULTS))
    config.update(config_module.read_yaml(path))
    return config


MergeReport = collections.namedtuple(
    "MergeReport", ["path", "lines", "duplicates", "images", "failed", "missing", "incomplete",
                    "shards_to_rerun"])
MergeReport.__doc__ = """What `merge` did and found. path: the merged results.jsonl. lines: its
number of lines; duplicates: lines dropped as repeats. images: how many images the sweep
covers; failed, missing (no line), incomplete (some class without a line): their paths.
shards_to_rerun: the shard indices that hold missing or failed work."""

_SHARD_RESULTS = re.compile(r"results_shard(\d+)of(\d+)\.jsonl$")


def _read_lines(paths):
    return [record for path in paths if os.path.exists(path) for record in read_results(path)]


def _write_lines(path, records):
    write_atomically(path, lambda stream: stream.writelines(
        (json.dumps(record) + "\n").encode("utf-8") for record in records))


def merge(output_dir):
    """Joins the shards' results in output_dir into results.jsonl (each (image, class) once)
    and their failures into failures.jsonl; returns a MergeReport of the work still missing.
    The shards' own files stay: merging again (after rerunning a shard) makes both anew."""
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
    config = read_run_config(shard_file(output_dir, "config", shards[0], ".yaml"))

    merged_path = os.path.join(output_dir, "results.jsonl")
    merged = collections.OrderedDict()
    inputs = _read_lines([shard_file(output_dir, "results", s, ".jsonl") for s in shards])
    for record in inputs:
        merged.setdefault(_line_key(record), record)
    # In image order, as one unsharded run writes them.
    _write_lines(merged_path, sorted(merged.values(), key=lambda record: record["image"]))
    grouped = by_image(merged.values())
    failures = collections.OrderedDict(
        (record["image"], record) for record in _read_lines(
            [shard_file(output_dir, "failures", s, ".jsonl") for s in shards])
        if record["image"] not in grouped)
    _write_lines(os.path.join(output_dir, "failures.jsonl"), failures.values())

    items = select(list_images(config), config, Shard(0, 1))
    num_labels = len(data.class_names(config.labels))
    missing, incomplete, to_rerun = [], [], set()
    for position, item in enumerate(items):
        records = grouped.get(item.path)
        if is_complete(config, num_labels, records, item.ground_truth,
                       lambda image, c: (image, c) in merged):
            continue
        if records:
            incomplete.append(item.path)
        elif item.path not in failures:
            missing.append(item.path)
        to_rerun.add(position % count)
    return MergeReport(merged_path, len(merged), len(inputs) - len(merged), len(items),
                       list(failures), missing, incomplete, sorted(to_rerun))


def list_images(config):
    """All the data.LabeledImages of a run's images and annotations, sorted."""
    try:
        return data.list_labeled_images(config.images, config.annotations, config.labels)
    except images.ImageError as error:
        raise ConfigError("images: %s" % error) from None
    except (OSError, ValueError) as error:
        raise ConfigError("annotations: %s" % error) from None


def select(labeled, config, shard):
    """The images of a run's shard: the first config.limit of `labeled`, then every
    shard.count-th from the shard.index-th."""
    selected = labeled[:config.limit] if config.limit else labeled
    return selected[shard.index::shard.count]
