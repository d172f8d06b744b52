"""A run's output folder: what made it, its results, failures and heatmaps, shards and merge.

The files of shard INDEX/COUNT carry the suffix _shard<INDEX>of<COUNT> (none for 0/1):

    config.yaml           the settings that made the results, and (made_with) the network's
                          image size, the checkpoint's and the label list's SHA-256 and the
                          layer; a rerun with other settings is refused (see RunFolder.check)
    results.jsonl         a line per heatmap, written (and synced) after its files
    failures.jsonl        a line per image that could not be used: image, reason (and
                          class_id when one class of it failed)
    run.log               what happened, with times
    <name>_c<class>.npy   heatmap_format npy: a heatmap per file (<name>_oblivious for
                          cls_oblivious), beside its overlay .png and .gif
    heatmaps_000000.npz   heatmap_format npz: a batch's heatmaps; a results line names one as
                          FILE.npz:KEY (`load_heatmap` reads both)
    .results.jsonl.lock   the lock of the process writing results.jsonl (FolderLock)

A folder is self-contained: its lines name its files relative to it (`x_c3.npy`,
`heatmaps_000000.npz:x_c3`), and every reader takes them from the folder it reads, by base
name (older lines, which named them as typed at run time, read the same way), so that a
copied or moved folder is read with its own files and `--overwrite` deletes nothing outside
it. Every file a line names is complete before the line is written (temporary name, synced,
renamed), a heatmap file is never overwritten while a line names it, and one process at a
time writes a shard (FolderLock): after Ctrl-C or kill -9 the same command continues where
it stopped, and remakes the heatmaps of finished pairs that have gone missing or cannot be
read. No TensorFlow here: the evaluation reads run folders with it.
"""
import collections
import contextlib
import errno
import fcntl
import glob
import hashlib
import json
import os
import re
import socket
import sys
import threading
import time
import zipfile
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


def reference_parts(reference):
    """(file name, npz key or None) of a file a results line names: FILE.npz:KEY (a batch's
    heatmaps), FILE.npy, FILE.png, ... The file name is the reference's base name: lines
    name files relative to their folder (older lines named them as typed at run time, but in
    the same folder), so that a folder copied or moved elsewhere reads its own files."""
    if not reference.endswith(".npy"):  # a key never ends in .npy (see heatmap_key)
        path, separator, key = reference.partition(".npz:")
        if separator:
            return os.path.basename(path + ".npz"), key
    return os.path.basename(reference), None


def folder_path(results_dir, reference):
    """The path of the file a results line names (heatmap, overlay, gif, curves): in
    results_dir, whatever folder the line was written in."""
    return os.path.join(results_dir, reference_parts(reference)[0])


class UnreadableHeatmap(RunError):
    """A heatmap file a results line names is missing, unreadable or not a heatmap. path:
    the file; reason: what is wrong with it."""

    def __init__(self, path, reason, results_dir):
        super().__init__("heatmap file %s cannot be used (%s); %s" % (
            path, reason, repair_command(results_dir)))
        self.path, self.reason = path, reason


def repair_command(results_dir):
    """How to remake the missing and unreadable heatmaps of a folder: the rerun of the
    command that made it (a rerun checks the heatmaps of the pairs it skips)."""
    rerun = "python scripts/visualize_attention.py --config %s --output_dir %s"
    if os.path.exists(os.path.join(results_dir, "config.yaml")):
        return "rerun %s to make it again" % (
            rerun % (os.path.join(results_dir, "config.yaml"), results_dir))
    if glob.glob(os.path.join(glob.escape(results_dir), "config_shard*of*.yaml")):
        return "rerun each shard (%s), then --merge %s, to make it again" % (
            rerun % (os.path.join(results_dir, "config_shard<INDEX>of<COUNT>.yaml"),
                     results_dir), results_dir)
    return "rerun the visualiser command that wrote %s to make it again" % results_dir


class HeatmapFiles(object):
    """Reads the heatmaps results lines name from their folder; `read` raises
    UnreadableHeatmap. Arrays are read with allow_pickle=False (a heatmap file never runs
    code) and must be 2-D (a heatmap [H, W], or a line's curves), numeric and finite. The
    last few .npz files stay open (lines come batch by batch). Use as a context manager, or
    close()."""

    OPEN_ARCHIVES = 8

    def __init__(self, results_dir):
        self.results_dir = results_dir
        self._archives = collections.OrderedDict()
        self._failed = {}  # path: its error again for every key of a file that failed

    def read(self, reference):
        name, key = reference_parts(reference)
        path = os.path.join(self.results_dir, name)
        try:
            array = np.load(path, allow_pickle=False) if key is None else \
                self._archive(path)[key]
        except FileNotFoundError:
            raise self._error(path, "no such file") from None
        except KeyError:
            raise self._error(path, "it holds no array %s" % key) from None
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError):
            # (numpy's own words on a file it cannot parse suggest loading it with pickle)
            raise self._error(path, "not a .npy array: truncated or corrupt" if key is None
                              else "not a whole .npz archive: truncated or corrupt") from None
        except OSError as error:
            raise self._error(path, error.strerror or str(error)) from None
        if not isinstance(array, np.ndarray) or array.ndim != 2 or array.dtype.kind not in "fiu":
            if isinstance(array, np.lib.npyio.NpzFile):  # an archive named as a .npy file
                array.close()
            raise self._error(path, "not a 2-D array of numbers%s" % (
                " (%s %s)" % (array.dtype, list(array.shape))
                if isinstance(array, np.ndarray) else ""))
        if not np.all(np.isfinite(array)):
            raise self._error(path, "%s holds NaN or infinite values" % (key or "it"))
        return array

    def _archive(self, path):
        if path in self._failed:
            raise self._failed[path]
        if path not in self._archives:
            try:
                archive = np.load(path, allow_pickle=False)
                if not isinstance(archive, np.lib.npyio.NpzFile):
                    raise ValueError("%s is not an .npz archive" % path)
            except Exception as error:
                self._failed[path] = error
                raise
            self._archives[path] = archive
            if len(self._archives) > self.OPEN_ARCHIVES:
                self._archives.popitem(last=False)[1].close()
        self._archives.move_to_end(path)
        return self._archives[path]

    def _error(self, path, reason):
        return UnreadableHeatmap(path, reason, self.results_dir)

    def close(self):
        for archive in self._archives.values():
            archive.close()
        self._archives.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def load_heatmap(reference, results_dir):
    """The heatmap (or other array) a results line of results_dir names, FILE.npz:KEY or
    FILE.npy, read from results_dir only (see reference_parts); UnreadableHeatmap, a
    RunError naming the file and the rerun that repairs it, if it cannot be used."""
    with HeatmapFiles(results_dir) as files:
        return files.read(reference)


def unreadable_heatmaps(records, results_dir):
    """{index in records: UnreadableHeatmap} of the results lines whose heatmap cannot be
    used (each file read once)."""
    problems = {}
    with HeatmapFiles(results_dir) as files:
        for index, record in enumerate(records):
            try:
                files.read(record["heatmap"])
            except UnreadableHeatmap as error:
                problems[index] = error
    return problems


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
    is whole or absent, and no temporary file stays behind whatever stops the write. OSError
    (a full disk, no permission) becomes an OutputError."""
    temporary = path + ".tmp"
    try:
        with open(temporary, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        try:
            os.remove(temporary)
        except OSError:
            pass  # never made, or renamed already
        if isinstance(error, OSError):
            raise OutputError("cannot write %s: %s" % (path, error.strerror or error)) \
                from None
        raise


class FolderLock(object):
    """Makes this process the only writer of the file `path` (a results or scores file) while
    the `with` block runs: an fcntl (POSIX) lock on dirname/.basename.lock, which holds this
    process's pid, host, start time and command line. A second writer gets a RunError naming
    the holder. The system releases the lock when its process ends, however it ends (kill
    -9 included), so a lock left by a killed process is simply taken over. On a file system
    without locks, `problem` says so and nothing is locked."""

    _held = set()  # lock files this process holds: taking one twice fails too
    _held_guard = threading.Lock()

    def __init__(self, path):
        self.path = path
        self.lock_path = os.path.join(os.path.dirname(path), "." + os.path.basename(path)
                                      + ".lock")
        self.problem = None
        self._stream = None

    def __enter__(self):
        key = os.path.realpath(self.lock_path)
        with self._held_guard:
            if key in self._held:  # a second fd would also drop the first's POSIX lock
                raise RunError("%s is being written by this process already; one writer per "
                               "file" % self.path)
            try:
                stream = open(self.lock_path, "a+")
            except OSError as error:
                raise OutputError("cannot write %s: %s"
                                  % (self.lock_path, error.strerror or error)) from None
            try:
                fcntl.lockf(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                stream.close()
                if error.errno not in (errno.EACCES, errno.EAGAIN):
                    self.problem = ("the file system of %s has no locks (%s): another "
                                    "process writing %s at the same time would not be "
                                    "noticed" % (self.lock_path, error.strerror, self.path))
                    return self
                raise RunError("%s is being written by another process (%s); wait for it "
                               "to end or stop it: two writers would overwrite each other's "
                               "files" % (self.path, self._holder())) from None
            self._stream = stream
            self._held.add(key)
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                  "command": " ".join(sys.argv)[:300]}
        try:
            stream.seek(0)
            stream.truncate()
            stream.write(json.dumps(holder) + "\n")
            stream.flush()
        except OSError:
            pass  # (a full disk) the holder is only for the message of a second writer
        return self

    def _holder(self):
        """What the lock file says of the process holding it (it may not have said yet)."""
        for _ in range(10):
            try:
                with open(self.lock_path) as stream:
                    holder = json.loads(stream.read() or "null")
            except (OSError, ValueError):
                holder = None
            if holder:
                return "pid %s on host %s since %s: %s" % (
                    holder.get("pid"), holder.get("host"), holder.get("since"),
                    holder.get("command"))
            time.sleep(0.05)
        return "it has not said which"

    def __exit__(self, *exc_info):
        if self._stream is not None:
            with self._held_guard:
                try:
                    self._stream.truncate(0)  # no holder; the file stays (see the README)
                except OSError:
                    pass
                self._stream.close()  # releases the lock
                self._stream = None
                self._held.discard(os.path.realpath(self.lock_path))


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


def image_key(path):
    """An image path as results lines are compared: ./x.jpg and x.jpg are one image."""
    return os.path.normpath(path)


def line_key(record):
    """The (image, class_id) pair a results (or failures) line is about."""
    return image_key(record["image"]), record.get("class_id")


class LinesFile(object):
    """Appends JSON lines to `path`, flushed and synced per write. Lines already there (from
    an interrupted run) are kept (keep=True; False: none; or a function of a record saying
    whether to keep it), a torn last line dropped; `done` holds the kept lines' (image,
    class_id) keys. OSError becomes an OutputError naming the file."""

    def __init__(self, path, keep=True):
        self.path = path
        self.done = set()
        self.records = []
        if keep and os.path.exists(path):
            self.records = [record for record in read_results(path)
                            if keep is True or keep(record)]
            self.done = {line_key(record) for record in self.records}
        try:
            write_atomically(path, lambda stream: stream.writelines(
                (json.dumps(record) + "\n").encode("utf-8") for record in self.records))
            self._stream = open(path, "a")
        except OSError as error:
            raise OutputError("cannot write %s: %s" % (path, error.strerror)) from None

    def is_done(self, image, class_id=None):
        return (image_key(image), class_id) in self.done

    def write(self, records):
        try:
            for record in records:
                self._stream.write(json.dumps(record) + "\n")
            self._stream.flush()
            os.fsync(self._stream.fileno())
        except OSError as error:
            raise OutputError("cannot write %s: %s" % (self.path, error.strerror)) from None
        self.done.update(line_key(record) for record in records)

    def close(self):
        self._stream.close()


class NpzChunks(object):
    """Arrays (heatmaps, or with stem faithfulness_curves a batch's curves) as one
    compressed .npz per batch: <stem><shard suffix>_<number>.npz, numbered on from the
    highest in the folder, so that no file a line names is ever overwritten."""

    def __init__(self, output_dir, shard, stem="heatmaps"):
        self.output_dir = output_dir
        self.prefix = os.path.basename(shard_file(output_dir, stem, shard, "_"))
        pattern = re.compile(re.escape(self.prefix) + r"(\d+)\.npz$")
        numbers = [int(match.group(1)) for match in map(pattern.match, os.listdir(output_dir))
                   if match]
        self.next_number = max(numbers, default=-1) + 1

    def write(self, heatmaps_by_key):
        """Writes the batch's file; returns {key: the reference a results line holds,
        FILE.npz:KEY relative to the folder}."""
        name = "%s%06d.npz" % (self.prefix, self.next_number)
        self.next_number += 1
        write_atomically(os.path.join(self.output_dir, name),
                         lambda stream: np.savez_compressed(stream, **heatmaps_by_key))
        return {key: "%s:%s" % (name, key) for key in heatmaps_by_key}


class NpyFiles(object):
    """Heatmaps as one .npy file each, output_dir/<key>.npy (named <key>.npy in the lines)."""

    def __init__(self, output_dir):
        self.output_dir = output_dir

    def write(self, heatmaps_by_key):
        references = {}
        for key, heatmap in heatmaps_by_key.items():
            references[key] = key + ".npy"
            write_atomically(os.path.join(self.output_dir, references[key]),
                             lambda stream: np.save(stream, heatmap))
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
    """{image_key of an image: its records}, in order."""
    grouped = collections.OrderedDict()
    for record in records:
        grouped.setdefault(image_key(record["image"]), []).append(record)
    return grouped


# What --overwrite deletes: the files of these kinds that a results line names in its folder,
# and the run's own files (faithfulness and localisation scores of the old heatmaps too).
_NAMED_FILES = {"heatmap": (".npy", ".npz"), "overlay": (".png",), "gif": (".gif",)}
_RUN_FILES = ("results*.jsonl", "failures*.jsonl", "config*.yaml", "run*.log", "heatmaps*.npz",
              "localization_*.csv", "localization_*.json", "faithfulness*.jsonl",
              "faithfulness_curves*.npz")


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

    def lock(self):
        """A FolderLock on this shard's results file: `with folder.lock():` the block runs as
        the shard's only writer (RunError if another process is writing it). The folder
        must exist."""
        return FolderLock(self.results_path)

    def make(self):
        """Makes the folder; OutputError if it cannot be (a file of that name, no
        permission)."""
        if os.path.exists(self.output_dir) and not os.path.isdir(self.output_dir):
            raise OutputError("output_dir %s is a file, not a folder; choose another "
                              "output_dir" % self.output_dir)
        with self._writing():
            os.makedirs(self.output_dir, exist_ok=True)

    def prepare(self, overwrite=False):
        """With overwrite, deletes the results the folder holds; checks that it can be
        written (OutputError otherwise). Call it holding the lock."""
        with self._writing():
            if overwrite:
                self._delete_results()
            write_atomically(os.path.join(self.output_dir, ".l2caf_write_test"),
                             lambda stream: stream.write(b"ok"))
            os.remove(os.path.join(self.output_dir, ".l2caf_write_test"))

    @contextlib.contextmanager
    def _writing(self):
        try:
            yield
        except OSError as error:
            raise OutputError("cannot write to output_dir %s: %s"
                              % (self.output_dir, error.strerror or error)) from None

    def _delete_results(self):
        """The run files of every shard (with their locks: none may be running) and the
        files their lines name inside the folder (see reference_parts); nothing else."""
        folder = glob.escape(self.output_dir)
        lines = glob.glob(os.path.join(folder, "results*.jsonl"))
        with contextlib.ExitStack() as locks:
            for path in lines:
                if os.path.basename(path) != os.path.basename(self.results_path):
                    locks.enter_context(FolderLock(path))
            named = set()
            for path in lines:
                for record in read_results(path):
                    for key, extensions in _NAMED_FILES.items():
                        name = reference_parts(record.get(key) or "")[0]
                        if name.endswith(extensions):
                            named.add(os.path.join(self.output_dir, name))
            for path in named | {found for pattern in _RUN_FILES
                                 for found in glob.glob(os.path.join(folder, pattern))}:
                if os.path.isfile(path) or os.path.islink(path):
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
    and their failures into failures.jsonl, as the only writer of results.jsonl (FolderLock);
    returns a MergeReport of the work still missing. The shards' own files stay: merging
    again (after rerunning a shard) makes both anew."""
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
    with FolderLock(merged_path):
        merged = collections.OrderedDict()
        inputs = _read_lines([shard_file(output_dir, "results", s, ".jsonl") for s in shards])
        for record in inputs:
            merged.setdefault(line_key(record), record)
        # In image order, as one unsharded run writes them.
        _write_lines(merged_path, sorted(merged.values(), key=lambda record: record["image"]))
        grouped = by_image(merged.values())
        # A failure stays unless its work was done since: an image that could not be used,
        # or one class of it (a row whose loss was not finite).
        failures = collections.OrderedDict(
            (line_key(record), record) for record in _read_lines(
                [shard_file(output_dir, "failures", s, ".jsonl") for s in shards])
            if (line_key(record) not in merged if "class_id" in record
                else image_key(record["image"]) not in grouped))
        _write_lines(os.path.join(output_dir, "failures.jsonl"), failures.values())
    failed = list(collections.OrderedDict.fromkeys(image for image, _ in failures))

    items = select(list_images(config), config, Shard(0, 1))
    num_labels = len(data.class_names(config.labels))
    missing, incomplete, to_rerun = [], [], set()
    for position, item in enumerate(items):
        records = grouped.get(image_key(item.path))
        if is_complete(config, num_labels, records, item.ground_truth,
                       lambda image, c: (image_key(image), c) in merged):
            continue
        if image_key(item.path) in failed:
            pass
        elif records:
            incomplete.append(item.path)
        else:
            missing.append(item.path)
        to_rerun.add(position % count)
    return MergeReport(merged_path, len(merged), len(inputs) - len(merged), len(items),
                       failed, missing, incomplete, sorted(to_rerun))


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
