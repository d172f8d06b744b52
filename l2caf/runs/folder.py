"""A run folder's format: every file name (in one table, FILES), shards, the heatmap files
and the results lines, and what a run does to its folder (RunFolder: the settings check, the
lock, --overwrite). No TensorFlow: the evaluation and the pictures read run folders with it.

The files of shard INDEX/COUNT carry the suffix _shard<INDEX>of<COUNT> (none for 0/1); FILES
says what each kind of file holds. Heatmaps and their pictures are named by the image and
class (`heatmap_key`): <name>_c<class>.npy, .png, .gif (<name>_oblivious for cls_oblivious),
or a key of a batch's heatmaps_000000.npz, which a results line names as FILE.npz:KEY
(`load_heatmap` reads both).

A folder is self-contained: its lines name its files relative to it (`x_c3.npy`,
`heatmaps_000000.npz:x_c3`), and every reader takes them from the folder it reads, by base
name (older lines, which named them as typed at run time, read the same way), so that a
copied or moved folder is read with its own files and `--overwrite` deletes nothing outside
it. Every file a line names is complete before the line is written (temporary name, synced,
renamed: l2caf.files), a heatmap file is never overwritten while a line names it, and one
process at a time writes a shard (l2caf.files.FolderLock): after Ctrl-C or kill -9 the same
command continues where it stopped, and remakes the heatmaps of finished pairs that have gone
missing or cannot be read.
"""
import collections
import contextlib
import fnmatch
import glob
import json
import os
import re
import zipfile
import zlib
from typing import (Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Set,
                    Tuple, Union)

import numpy as np
import yaml

from l2caf import config as config_module
from l2caf.errors import ConfigError, OutputError, RunError
from l2caf.files import FolderLock, read_json_lines, write_atomically
from l2caf.runs.lines import read_lines_file

FileKind = collections.namedtuple("FileKind", ["stem", "extension", "patterns", "what"])
FileKind.__doc__ = """A kind of file of a run folder: shard INDEX/COUNT's is
<stem>_shard<INDEX>of<COUNT><extension> (<stem><extension> for 0/1; a file of numbered chunks
adds _<number>); patterns: globs of every shard's files of the kind; what: what it holds."""

# Every file a run folder holds, beside the heatmaps and pictures its results lines name.
FILES = collections.OrderedDict([
    ("config", FileKind("config", ".yaml", ("config*.yaml",),
                        "the settings that made the results, and (made_with) the network's "
                        "image size, the checkpoint's and the label list's SHA-256 and the "
                        "layer; a rerun with other settings is refused (RunFolder.check)")),
    ("results", FileKind("results", ".jsonl", ("results*.jsonl",),
                         "a line per heatmap, written (and synced) after its files")),
    ("failures", FileKind("failures", ".jsonl", ("failures.jsonl", "failures_shard*of*.jsonl"),
                          "a line per image that could not be used: image, reason (and "
                          "class_id when one class of it failed)")),
    ("log", FileKind("run", ".log", ("run*.log",), "what happened, with times")),
    ("heatmaps", FileKind("heatmaps", ".npz", ("heatmaps*.npz",),
                          "heatmap_format npz: a batch's heatmaps per numbered file")),
    ("scores", FileKind("faithfulness", ".jsonl",
                        ("faithfulness.jsonl", "faithfulness_shard*of*.jsonl"),
                        "scripts/evaluate_faithfulness.py: a line of scores per heatmap")),
    ("curves", FileKind("faithfulness_curves", ".npz", ("faithfulness_curves*.npz",),
                        "the deletion and insertion curves of a chunk of scored heatmaps")),
    # (Not faithfulness*.jsonl, which readers of the folder take for scores.)
    ("score_failures", FileKind("failures_faithfulness", ".jsonl",
                                ("failures_faithfulness*.jsonl",),
                                "the images the faithfulness scoring could not read")),
    ("sanity", FileKind("sanity", ".jsonl", ("sanity.jsonl", "sanity_shard*of*.jsonl"),
                        "scripts/sanity_check.py: a line of similarities per heatmap")),
    ("sanity_maps", FileKind("sanity_maps", ".npz", ("sanity_maps*.npz",),
                             "a chunk of checked heatmaps' maps as the cascade makes the "
                             "blocks random")),
    ("sanity_failures", FileKind("failures_sanity", ".jsonl", ("failures_sanity*.jsonl",),
                                 "the images the sanity check could not read")),
    ("localization", FileKind("localization_", "", ("localization_*.csv",
                                                    "localization_*.json",
                                                    "localization_*.png",
                                                    "localization_*.pdf"),
                              "scripts/evaluate_localization.py's table, by default: "
                              "localization_<protocol>.csv and .json, and its curves "
                              "localization_<protocol>_*.png and .pdf")),
])
# What a results line names in its folder: (its field, the files' extensions).
NAMED_FILES = (("heatmap", (".npy", ".npz")), ("overlay", (".png",)), ("gif", (".gif",)))
# What --overwrite deletes beside the files the lines name: the run's own files, the
# faithfulness and localisation scores of its old heatmaps included.
RUN_FILES = ("results", "failures", "config", "log", "heatmaps", "localization", "scores",
             "curves", "score_failures", "sanity", "sanity_maps", "sanity_failures")
SCORE_FILES = ("scores", "curves", "score_failures")
SANITY_FILES = ("sanity", "sanity_maps", "sanity_failures")

Shard = collections.namedtuple("Shard", ["index", "count"])
Shard.__doc__ = """This run takes every `count`-th image, from the `index`-th (0-based)."""

SLURM_VARIABLES = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT")


def parse_shard(text: str, environ: Mapping[str, str] = os.environ) -> Shard:
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


def shard_stem(kind: str, shard: Shard = Shard(0, 1)) -> str:
    """The name of shard's file of a kind of FILES without its extension:
    <stem>_shard<INDEX>of<COUNT>, or <stem> for 0/1."""
    return FILES[kind].stem + ("" if shard.count == 1 else "_shard%dof%d" % shard)


def shard_file(output_dir: str, kind: str, shard: Shard = Shard(0, 1)) -> str:
    """The path of shard's file of a kind of FILES: output_dir/<shard_stem><extension>."""
    return os.path.join(output_dir, shard_stem(kind, shard) + FILES[kind].extension)


def kind_files(output_dir: str, kind: str) -> List[str]:
    """The paths of every shard's files of a kind of FILES in output_dir, sorted."""
    folder = glob.escape(output_dir)
    return sorted(path for pattern in FILES[kind].patterns
                  for path in glob.glob(os.path.join(folder, pattern)))


def shard_files(output_dir: str, kind: str) -> List[Shard]:
    """The shards whose file of `kind` output_dir holds (the unsharded file left out), by
    count then index."""
    pattern = re.compile(re.escape(FILES[kind].stem) + r"_shard(\d+)of(\d+)"
                         + re.escape(FILES[kind].extension) + "$")
    found = sorted((int(match.group(2)), int(match.group(1)))
                   for match in map(pattern.match, sorted(os.listdir(output_dir)))
                   if match) if os.path.isdir(output_dir) else []
    return [Shard(index, count) for count, index in found]


def shard_pattern(kind: str) -> str:
    """How a message names the shards' files of a kind: results_shard<INDEX>of<COUNT>.jsonl."""
    return FILES[kind].stem + "_shard<INDEX>of<COUNT>" + FILES[kind].extension


def kind_of(path: str) -> Optional[str]:
    """The kind of FILES a file is, by its name (None for none of them)."""
    name = os.path.basename(path)
    return next((kind for kind, found in FILES.items()
                 if any(fnmatch.fnmatchcase(name, pattern) for pattern in found.patterns)),
                None)


def kind_pattern(kind: str) -> str:
    """How a message names every shard's files of a kind: config*.yaml, ..."""
    return FILES[kind].patterns[0]


def output_names(paths: Sequence[str]) -> Dict[str, str]:
    """{image path: the name of its output files}: the file name without extension, or, for
    images that share it with another image of the run, that name and a hash of the path."""
    stems = collections.Counter(_stem(path) for path in paths)
    return {path: _stem(path) if stems[_stem(path)] == 1
            else "%s-%08x" % (_stem(path), zlib.crc32(os.path.abspath(path).encode("utf-8")))
            for path in paths}


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def heatmap_key(name: str, class_id: Optional[int]) -> str:
    """The key of the heatmap of the image whose output files are called `name` (see
    output_names) for class_id (None for cls_oblivious): <name>_c<class> or <name>_oblivious."""
    return name + ("_oblivious" if class_id is None else "_c%d" % class_id)


def reference_parts(reference: str) -> Tuple[str, Optional[str]]:
    """(file name, npz key or None) of a file a results line names: FILE.npz:KEY (a batch's
    heatmaps), FILE.npy, FILE.png, ... The file name is the reference's base name: lines
    name files relative to their folder (older lines named them as typed at run time, but in
    the same folder), so that a folder copied or moved elsewhere reads its own files."""
    if not reference.endswith(".npy"):  # a key never ends in .npy (see heatmap_key)
        path, separator, key = reference.partition(".npz:")
        if separator:
            return os.path.basename(path + ".npz"), key
    return os.path.basename(reference), None


def is_inside(results_dir: str, path: str) -> bool:
    """Whether `path`, links followed, lies in results_dir (links within a folder are fine; a
    link that leads out of it is not the folder's file)."""
    folder = os.path.realpath(results_dir)
    return os.path.commonpath([folder, os.path.realpath(path)]) == folder


def folder_path(results_dir: str, reference: str) -> str:
    """The path of the file a results line names (heatmap, overlay, gif, curves): in
    results_dir, whatever folder the line was written in."""
    return os.path.join(results_dir, reference_parts(reference)[0])


class UnreadableHeatmap(RunError):
    """A heatmap file a results line names is missing, unreadable or not a heatmap. path:
    the file; reason: what is wrong with it."""

    def __init__(self, path: str, reason: str, results_dir: str):
        super().__init__("heatmap file %s cannot be used (%s); %s" % (
            path, reason, repair_command(results_dir)))
        self.path, self.reason = path, reason


def repair_command(results_dir: str) -> str:
    """How to remake the missing and unreadable heatmaps of a folder: the rerun of the
    command that made it (a rerun checks the heatmaps of the pairs it skips)."""
    rerun = "python scripts/visualize_attention.py --config %s --output_dir %s"
    if os.path.exists(shard_file(results_dir, "config")):
        return "rerun %s to make it again" % (
            rerun % (shard_file(results_dir, "config"), results_dir))
    if shard_files(results_dir, "config"):
        return "rerun each shard (%s), then --merge %s, to make it again" % (
            rerun % (os.path.join(results_dir, shard_pattern("config")), results_dir),
            results_dir)
    return "rerun the visualiser command that wrote %s to make it again" % results_dir


def heatmap_size_of(results_dir: str) -> Optional[Tuple[int, int]]:
    """The (height, width) of the run's heatmaps (its layer's map) as its config records it
    in made_with; None where no config records it (a folder made before l2caf recorded it)
    or a config cannot be read (its readers say so)."""
    for path in kind_files(results_dir, "config"):
        try:
            size = read_config_file(path)[1].get("heatmap_size")
        except ConfigError:
            return None
        if isinstance(size, list) and len(size) == 2 and all(
                isinstance(side, int) and not isinstance(side, bool) and side > 0
                for side in size):
            return size[0], size[1]
    return None


class HeatmapFiles(object):
    """Reads the heatmaps results lines name from their folder; `read` raises
    UnreadableHeatmap. Arrays are read with allow_pickle=False (a heatmap file never runs
    code) and must be 2-D (a heatmap [H, W], or a line's curves), not empty, numeric and
    finite; a heatmap must be of heatmap_size (the run's layer's map, default: as the
    folder's config records it); a file must lie in the folder (a link that leads out of it
    is refused, as are references that leave it). The last few .npz files stay open (lines
    come batch by batch). Use as a context manager, or close()."""

    OPEN_ARCHIVES = 8

    def __init__(self, results_dir: str, heatmap_size: Optional[Tuple[int, int]] = None):
        self.results_dir = results_dir
        self.heatmap_size = heatmap_size or heatmap_size_of(results_dir)
        self._archives: "collections.OrderedDict[str, np.lib.npyio.NpzFile]" = \
            collections.OrderedDict()
        # path: its error again for every key of a file that failed
        self._failed: Dict[str, Exception] = {}

    def read(self, reference: str) -> np.ndarray:
        """The array a results line names, FILE.npz:KEY or FILE.npy (see reference_parts),
        from results_dir; UnreadableHeatmap if it cannot be used."""
        name, key = reference_parts(reference)
        path = os.path.join(self.results_dir, name)
        if not is_inside(self.results_dir, path):
            raise self._error(path, "a link to %s, outside the folder" % os.path.realpath(path))
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
        if array.size == 0:
            raise self._error(path, "%s is empty (%s)" % (key or "it", list(array.shape)))
        if not np.all(np.isfinite(array)):
            raise self._error(path, "%s holds NaN or infinite values" % (key or "it"))
        if self.heatmap_size and kind_of(name) != "curves" and \
                array.shape != tuple(self.heatmap_size):
            raise self._error(path, "%s is a %dx%d map, not the run's %dx%d"
                              % ((key or "it",) + array.shape + tuple(self.heatmap_size)))
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

    def close(self) -> None:
        """Closes the .npz files left open."""
        for archive in self._archives.values():
            archive.close()
        self._archives.clear()

    def __enter__(self) -> "HeatmapFiles":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def load_heatmap(reference: str, results_dir: str) -> np.ndarray:
    """The heatmap (or other array) a results line of results_dir names, FILE.npz:KEY or
    FILE.npy, read from results_dir only (see reference_parts); UnreadableHeatmap, a
    RunError naming the file and the rerun that repairs it, if it cannot be used."""
    with HeatmapFiles(results_dir) as files:
        return files.read(reference)


def unreadable_heatmaps(records: Sequence[Mapping[str, Any]],
                        results_dir: str) -> Dict[int, UnreadableHeatmap]:
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


def image_key(path: str) -> str:
    """An image path as results lines are compared: ./x.jpg and x.jpg are one image."""
    return os.path.normpath(path)


def line_key(record: Mapping[str, Any]) -> Tuple[str, Optional[int]]:
    """The (image, class_id) pair a results (or failures) line is about."""
    return image_key(record["image"]), record.get("class_id")


class LinesFile(object):
    """Appends JSON lines to `path`, flushed and synced per write. Lines already there (from
    an interrupted run) are kept (keep=True; False: none; or a function of a record saying
    whether to keep it), a torn last line dropped; `done` holds the kept lines' (image,
    class_id) keys. OSError becomes an OutputError naming the file."""

    def __init__(self, path: str,
                 keep: Union[bool, Callable[[Dict[str, Any]], bool]] = True):
        self.path = path
        self.done: Set[Tuple[str, Optional[int]]] = set()
        self.records: List[Dict[str, Any]] = []
        if keep and os.path.exists(path):
            self.records = [record for record in read_lines_file(path, kind_of(path))
                            if keep is True or keep(record)]
            self.done = {line_key(record) for record in self.records}
        try:
            write_atomically(path, lambda stream: stream.writelines(
                (json.dumps(record) + "\n").encode("utf-8") for record in self.records))
            self._stream = open(path, "a")
        except OSError as error:
            raise OutputError("cannot write %s: %s" % (path, error.strerror)) from None

    def is_done(self, image: str, class_id: Optional[int] = None) -> bool:
        """Whether a kept or written line is about `image` and class_id."""
        return (image_key(image), class_id) in self.done

    def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Appends `records` (dicts of JSON values), a line each, and syncs the file."""
        try:
            for record in records:
                self._stream.write(json.dumps(record) + "\n")
            self._stream.flush()
            os.fsync(self._stream.fileno())
        except OSError as error:
            raise OutputError("cannot write %s: %s" % (self.path, error.strerror)) from None
        self.done.update(line_key(record) for record in records)

    def close(self) -> None:
        """Closes the file."""
        self._stream.close()


class NpzChunks(object):
    """Arrays (heatmaps, or of kind "curves" a chunk's faithfulness curves) as one compressed
    .npz per batch: <stem><shard suffix>_<number>.npz, numbered on from the highest in the
    folder, so that no file a line names is ever overwritten."""

    def __init__(self, output_dir: str, shard: Shard, kind: str = "heatmaps"):
        self.output_dir = output_dir
        self.prefix = shard_stem(kind, shard) + "_"
        pattern = re.compile(re.escape(self.prefix) + r"(\d+)\.npz$")
        numbers = [int(match.group(1)) for match in map(pattern.match, os.listdir(output_dir))
                   if match]
        self.next_number = max(numbers, default=-1) + 1

    def write(self, heatmaps_by_key: Mapping[str, np.ndarray]) -> Dict[str, str]:
        """Writes the batch's file; returns {key: the reference a results line holds,
        FILE.npz:KEY relative to the folder}."""
        name = "%s%06d.npz" % (self.prefix, self.next_number)
        self.next_number += 1
        # (mypy: a key could be savez's allow_pickle; a heatmap key never is, see heatmap_key)
        write_atomically(os.path.join(self.output_dir, name), lambda stream:
                         np.savez_compressed(stream, **heatmaps_by_key))  # type: ignore[arg-type]
        return {key: "%s:%s" % (name, key) for key in heatmaps_by_key}


class NpyFiles(object):
    """Heatmaps as one .npy file each, output_dir/<key>.npy (named <key>.npy in the lines)."""

    def __init__(self, output_dir: str):
        self.output_dir = output_dir

    def write(self, heatmaps_by_key: Mapping[str, np.ndarray]) -> Dict[str, str]:
        """Writes a file per heatmap; returns {key: the reference a results line holds,
        KEY.npy}."""
        references = {}
        for key, heatmap in heatmaps_by_key.items():
            references[key] = key + ".npy"
            write_atomically(os.path.join(self.output_dir, references[key]),
                             lambda stream: np.save(stream, heatmap))
        return references


def read_config_file(path: str, option_table: Optional[Mapping[str, config_module.Option]] = None
                     ) -> Tuple[config_module.Config, Dict[str, Any]]:
    """(the Config a run folder's config file at `path` describes, its made_with section):
    the keys it lacks (older than they) at their defaults in option_table (default: the fast
    visualiser's). ConfigError for a file that is not a config."""
    table = config_module.options(config_module.FAST_DEFAULTS) if option_table is None \
        else option_table
    keys, made_with = config_module.read_sections(path, table)
    config = config_module.defaults(table)
    config.update(keys)
    return config, made_with


def delete_files(output_dir: str, kinds: Iterable[str], locked_kind: str, holder_path: str,
                 named: Union[Iterable[str], Callable[[], Iterable[str]]] = ()) -> None:
    """Deletes every shard's files of `kinds` (of FILES) in output_dir, and the files
    `named` there (paths, or a function giving them once the locks are held), as the writer
    of holder_path: the other shards' files of locked_kind are
    locked first (RunError if any is being written: its process would go on writing)."""
    with contextlib.ExitStack() as locks:
        for path in kind_files(output_dir, locked_kind):
            if os.path.basename(path) != os.path.basename(holder_path):
                locks.enter_context(FolderLock(path))
        for path in set(named() if callable(named) else named) | {
                found for kind in kinds for found in kind_files(output_dir, kind)}:
            if os.path.isfile(path) or os.path.islink(path):
                os.remove(path)


class RunFolder(object):
    """The files of one shard of a visualiser run in output_dir (see FILES)."""

    def __init__(self, output_dir: str, shard: Shard = Shard(0, 1)):
        self.output_dir, self.shard = output_dir, shard
        self.config_path = shard_file(output_dir, "config", shard)
        self.results_path = shard_file(output_dir, "results", shard)
        self.failures_path = shard_file(output_dir, "failures", shard)
        self.log_path = shard_file(output_dir, "log", shard)

    def check(self, config: config_module.Config, made_with: Mapping[str, Any]) -> None:
        """A RunError, before any work, if the folder holds results of other settings: it
        names the keys that differ and what to do."""
        current = dict(config, **made_with)
        for path in kind_files(self.output_dir, "config"):
            try:
                # A key newer than the folder was at its default there.
                saved, saved_made_with = read_config_file(path, config_module.OPTIONS)
            except ConfigError as error:
                raise RunError("%s: use another output_dir, or --overwrite to clear the "
                               "folder's results" % error) from None
            saved.update(saved_made_with)
            differ = ["%s (%s there, %s now)" % (key, _shown(saved.get(key)), _shown(value))
                      for key, value in current.items()
                      if key not in config_module.FREE_KEYS and saved.get(key) != value]
            if differ:
                raise RunError("%s holds results made with other settings: %s; use another "
                               "output_dir, or --overwrite to delete those results first"
                               % (self.output_dir, "; ".join(differ)))

    def lock(self) -> FolderLock:
        """A FolderLock on this shard's results file: `with folder.lock():` the block runs as
        the shard's only writer (RunError if another process is writing it). The folder
        must exist."""
        return FolderLock(self.results_path)

    def make(self) -> None:
        """Makes the folder; OutputError if it cannot be (a file of that name, no
        permission)."""
        if os.path.exists(self.output_dir) and not os.path.isdir(self.output_dir):
            raise OutputError("output_dir %s is a file, not a folder; choose another "
                              "output_dir" % self.output_dir)
        with self._writing():
            os.makedirs(self.output_dir, exist_ok=True)

    def prepare(self, overwrite: bool = False) -> None:
        """With overwrite, deletes the results the folder holds (the run files of every
        shard, and the files their lines name inside the folder; nothing else); checks that
        it can be written (OutputError otherwise). Call it holding the lock."""
        with self._writing():
            if overwrite:
                delete_files(self.output_dir, RUN_FILES, "results", self.results_path,
                             self._named_files)
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

    def _named_files(self):
        """The files of NAMED_FILES that the folder's results lines name in it (see
        reference_parts)."""
        named = set()
        for path in kind_files(self.output_dir, "results"):
            for record in read_json_lines(path):
                for key, extensions in NAMED_FILES:
                    name = reference_parts(record.get(key) or "")[0]
                    if name.endswith(extensions):
                        named.add(os.path.join(self.output_dir, name))
        return named

    def write_config(self, config: config_module.Config, made_with: Mapping[str, Any]) -> None:
        """Writes config.yaml (this shard's): the config's keys and, as made_with, what else
        its results depend on."""
        text = yaml.dump(dict(config, **{config_module.MADE_WITH: dict(made_with)}),
                         Dumper=_PlainDumper, sort_keys=False)
        write_atomically(self.config_path, lambda stream: stream.write(text.encode("utf-8")))


class _PlainDumper(yaml.SafeDumper):
    """YAML without anchors and aliases (which the config reader refuses), even where one
    value appears twice."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _shown(value):
    return "none" if value is None else json.dumps(value) if isinstance(value, list) \
        else str(value)
