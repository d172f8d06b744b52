"""The one shard merge: the shards' results lines of a sweep (and their failures), or the
shards' faithfulness scores of a folder, joined into the unsharded file, each (image, class)
once, in image order, with a report of the work still missing. The shards' own files stay:
merging again (after rerunning a shard) makes the merged files anew. No TensorFlow."""
import collections
import contextlib
import json
import os
from typing import Any, Dict, Iterator, List, Optional, Tuple

from l2caf import data
from l2caf.errors import ConfigError, RunError
from l2caf.files import FolderLock, write_atomically
from l2caf.runs import plan, read
from l2caf.runs.folder import (Shard, image_key, line_key, read_config_file, shard_file,
                               shard_files, shard_pattern)
from l2caf.runs.lines import read_lines_file

MergeReport = collections.namedtuple(
    "MergeReport", ["path", "kind", "lines", "duplicates", "total", "failed", "missing",
                    "incomplete", "shards_to_rerun"])
MergeReport.__doc__ = """What a merge did and found. path: the merged file; kind: "results",
"scores" or "sanity" (treated as "scores"). lines: its number of lines; duplicates: lines
dropped as repeats. total: how many images the sweep covers (results), or how many heatmaps
the results hold (scores).
failed: the images that could not be used; missing: the images without a line (results),
or the results lines without a score (scores); incomplete: the images with some class
without a line (results). shards_to_rerun: the shard indices that hold missing or failed
work."""

# kind: (what its shards are called in a message, how to make them).
_MADE_BY = {"results": ("shard results", "the sweep"),
            "scores": ("shard scores", "scripts/evaluate_faithfulness.py"),
            "sanity": ("shard sanity checks", "scripts/sanity_check.py")}


def _shards(output_dir: str, kind: str) -> List[Shard]:
    """The shards whose files of kind ("results" or "scores") output_dir holds, all of one
    count (RunError otherwise)."""
    shards = shard_files(output_dir, kind)
    what, made_by = _MADE_BY[kind]
    if not shards:
        raise RunError("%s holds no %s (%s); run %s with --shard INDEX/COUNT first"
                       % (output_dir, what, shard_pattern(kind), made_by))
    if any(shard.count != shards[0].count for shard in shards):
        raise RunError("%s holds %sshards of different counts (%s); merge one sharding at a "
                       "time" % (output_dir, "scores of " if kind == "scores" else "",
                                 ", ".join("%d/%d" % shard for shard in shards)))
    return shards


def _join(output_dir: str, kind: str, shards: List[Shard]) -> Tuple[Dict, int]:
    """Joins the shards' files of a kind into the unsharded file, each (image, class) once,
    in image order (call it holding the file's FolderLock); returns ({line key: line}, the
    number of lines read)."""
    inputs = [record for shard in shards
              for record in _lines_of(shard_file(output_dir, kind, shard), kind)]
    merged: Dict[Tuple[str, Optional[int]], Dict[str, Any]] = collections.OrderedDict()
    for record in inputs:
        merged.setdefault(line_key(record), record)
    _write_lines(shard_file(output_dir, kind),
                 sorted(merged.values(), key=lambda record: record["image"]))
    return merged, len(inputs)


def _lines_of(path: str, kind: str) -> List[Dict[str, Any]]:
    return read_lines_file(path, kind) if os.path.exists(path) else []


@contextlib.contextmanager
def _merging(output_dir: str, kind: str, shards: List[Shard]) -> Iterator[None]:
    """Holds the locks of the merged file and of every shard's file of the kind: a shard
    still being written is refused (RunError naming the process that writes it), as its
    lines are not all there yet."""
    with contextlib.ExitStack() as locks:
        locks.enter_context(FolderLock(shard_file(output_dir, kind)))
        for shard in shards:
            locks.enter_context(FolderLock(shard_file(output_dir, kind, shard)))
        yield


def _write_lines(path, records):
    write_atomically(path, lambda stream: stream.writelines(
        (json.dumps(record) + "\n").encode("utf-8") for record in records))


def merge_results(output_dir: str) -> MergeReport:
    """Joins the shards' results in output_dir into results.jsonl and their failures into
    failures.jsonl; the report says which images are still missing, incomplete or failed,
    and which shards to rerun."""
    shards = _shards(output_dir, "results")
    count = shards[0].count
    config_path = shard_file(output_dir, "config", shards[0])
    if not os.path.isfile(config_path):
        raise RunError("%s is missing: rerun shard %d/%d (the same command with --shard %d/%d) "
                       "to write it, then merge again" % ((config_path,) + shards[0] * 2))
    config, _ = read_config_file(config_path)
    merged_path = shard_file(output_dir, "results")
    with _merging(output_dir, "results", shards):
        merged, read_count = _join(output_dir, "results", shards)
        grouped = plan.by_image(merged.values())
        # A failure stays unless its work was done since: an image that could not be used,
        # or one class of it (a row whose loss was not finite).
        failures = collections.OrderedDict(
            (line_key(record), record) for shard in shards
            for record in _lines_of(shard_file(output_dir, "failures", shard), "failures")
            if (line_key(record) not in merged if "class_id" in record
                else image_key(record["image"]) not in grouped))
        _write_lines(shard_file(output_dir, "failures"), failures.values())
    failed = list(collections.OrderedDict.fromkeys(image for image, _ in failures))

    items = plan.select(plan.list_images(config), config, Shard(0, 1))
    try:
        num_labels = len(data.class_names(config.labels))
    except (OSError, ValueError) as error:
        raise ConfigError("labels: %s" % error) from None
    missing, incomplete, to_rerun = [], [], set()
    for position, item in enumerate(items):
        records = grouped.get(image_key(item.path))
        if plan.is_complete(config, num_labels, records, item.ground_truth,
                            lambda image, c: (image_key(image), c) in merged):
            continue
        if image_key(item.path) in failed:
            pass
        elif records:
            incomplete.append(item.path)
        else:
            missing.append(item.path)
        to_rerun.add(position % count)
    return MergeReport(merged_path, "results", len(merged), read_count - len(merged),
                       len(items), failed, missing, incomplete, sorted(to_rerun))


def merge_scores(results_dir: str, kind: str = "scores") -> MergeReport:
    """Joins the shards' faithfulness scores in results_dir into faithfulness.jsonl (kind
    "sanity": their sanity checks into sanity.jsonl); the report says which heatmaps of the
    results are still without a line, and which shards to rerun."""
    shards = _shards(results_dir, kind)
    merged_path = shard_file(results_dir, kind)
    with _merging(results_dir, kind, shards):
        merged, read_count = _join(results_dir, kind, shards)
    by_image = read.read_lines(results_dir)
    missing, to_rerun = [], set()
    for position, image in enumerate(sorted(by_image)):
        left = [line for line in by_image[image] if line_key(line) not in merged]
        if left:
            missing += left
            to_rerun.add(position % shards[0].count)
    return MergeReport(merged_path, kind, len(merged), read_count - len(merged),
                       sum(len(lines) for lines in by_image.values()), [], missing, [],
                       sorted(to_rerun))
