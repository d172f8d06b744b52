"""The one reader of run folders: a run's config (and what made its results), its results
lines, its faithfulness scores and its failures, every shard's files together (see
l2caf.runs.folder for the format). No TensorFlow."""
import collections
import json
import os
from typing import Any, Dict, List, Optional, Set, Tuple

from l2caf.config import Config
from l2caf.errors import RunError
from l2caf.runs.lines import read_lines_file
from l2caf.runs.folder import (image_key, kind_files, kind_pattern, line_key, read_config_file,
                               reference_parts)

# The fields of the faithfulness lines that must be the same in all the scores a table
# averages (l2caf.evaluation.faithfulness.protocol_settings; the others follow the release).
SCORE_SETTINGS = ("steps", "input_size")
# What makes the shards of a folder one run: the keys on which they must agree (as the
# visualiser checks them: see l2caf.runs.folder.RunFolder.check). The layer and the label
# list are compared as made_with records them (the layer resolved, the list by its
# contents), so that `layer: ""` and the layer it names, or one list at two paths, agree.
RUN_KEYS = ("network", "labels", "method", "layer", "caf_variant")
_MADE_WITH_KEYS = {"layer": "layer", "labels": "labels_sha256"}


def _compared(key: str, config: Config, made_with: Dict[str, Any],
              other_made_with: Dict[str, Any]) -> Any:
    """What of a config is compared on `key`: made_with's record when both configs have it
    (older folders may lack it), else the key's value."""
    recorded = _MADE_WITH_KEYS.get(key)
    if recorded in made_with and recorded in other_made_with:
        return made_with[recorded]
    return config[key]


def read_configs(results_dir: str) -> List[Tuple[str, Config, Dict[str, Any]]]:
    """[(path, Config, made_with)] of every config file of the run in results_dir, sorted
    (config.yaml, then the shards'); RunError if there is none or they disagree on which
    run they are (RUN_KEYS)."""
    paths = kind_files(results_dir, "config")
    if not paths:
        raise RunError("%s holds no %s: not a folder a visualiser wrote"
                       % (results_dir, kind_pattern("config")))
    configs = [(path,) + read_config_file(path) for path in paths]
    first_path, first, first_made_with = configs[0]
    for path, config, made_with in configs[1:]:
        for key in RUN_KEYS:
            ours = _compared(key, first, first_made_with, made_with)
            theirs = _compared(key, config, made_with, first_made_with)
            if ours != theirs:
                raise RunError("%s and %s disagree on %s (%r, %r): one results folder per run"
                               % (first_path, path, key, ours, theirs))
    return configs


def read_config(results_dir: str) -> Config:
    """The Config of the run in results_dir (see read_configs)."""
    return read_configs(results_dir)[0][1]


def read_lines(results_dir: str) -> Dict[str, List[Dict[str, Any]]]:
    """{image path: its results lines}, each (image, class) once, from every shard's results
    file; RunError if there are none."""
    by_image: Dict[str, List[Dict[str, Any]]] = collections.OrderedDict()
    seen: Set[Tuple[str, Optional[int]]] = set()
    for path in kind_files(results_dir, "results"):
        for record in read_lines_file(path, "results"):
            key = line_key(record)
            if key not in seen:
                seen.add(key)
                by_image.setdefault(key[0], []).append(record)
    if not by_image:
        raise RunError("%s holds no results (%s with heatmap lines); run a visualiser into it "
                       "first" % (results_dir, kind_pattern("results")))
    return by_image


ShardLines = collections.namedtuple("ShardLines", ["config", "made_with", "references",
                                                   "lines"])
ShardLines.__doc__ = """What a job over a run folder's shard reads first: the run's config and
made_with, references ({(image, class_id): the parts of its heatmap's reference}: a line of
another heatmap, made again since, is stale) and lines ({image: its results lines} of the
shard's images, in sorted order)."""


def read_shard(results_dir: str, limit: int, shard) -> ShardLines:
    """The `ShardLines` of a results folder for a job (scoring, sanity check) over the first
    `limit` images in sorted order (0: all), every shard.count-th from the shard.index-th;
    RunError if the folder does not exist or holds no results."""
    if not os.path.isdir(results_dir):
        raise RunError("%s: no such results folder" % results_dir)
    _, config, made_with = read_configs(results_dir)[0]
    by_image = read_lines(results_dir)
    references = {line_key(line): reference_parts(line["heatmap"])
                  for lines in by_image.values() for line in lines}
    selected = sorted(by_image)
    selected = selected[:limit] if limit else selected
    lines = collections.OrderedDict(
        (image, by_image[image]) for image in selected[shard.index::shard.count])
    return ShardLines(config, made_with, references, lines)


def read_scores(results_dir: str, by_image: Dict[str, List[Dict[str, Any]]]
                ) -> Tuple[Dict[Tuple[str, Optional[int]], Dict[str, Any]],
                           Optional[Dict[str, Any]]]:
    """({(image, class_id): its faithfulness line}, the SCORE_SETTINGS they share or None) of
    the heatmaps of a run's results lines `by_image`, each (image, class) once, from every
    shard's scores file (shards and their merge may lie side by side). RunError for lines
    of other heatmaps than the results name (older results) or of mixed settings."""
    heatmaps = {line_key(line): reference_parts(line["heatmap"])
                for lines in by_image.values() for line in lines}
    scores, settings = collections.OrderedDict(), None
    for path in kind_files(results_dir, "scores"):
        for record in read_lines_file(path, "scores"):
            key = line_key(record)
            if key in scores:
                continue
            if reference_parts(record["heatmap"]) != heatmaps.get(key):
                raise RunError("%s scores heatmap %s, which the results of %s do not hold (for "
                               "%s, class %s); the scores are of other results (a heatmap made "
                               "again since): rerun scripts/evaluate_faithfulness.py --results "
                               "%s to score it again (each shard, then --merge)"
                               % (path, record["heatmap"], results_dir, key[0], key[1],
                                  results_dir))
            protocol = {key: record.get(key) for key in SCORE_SETTINGS}
            if settings is not None and protocol != settings:
                raise RunError("%s holds faithfulness scores of different settings (%s and "
                               "%s); run scripts/evaluate_faithfulness.py --overwrite --results "
                               "%s" % (results_dir, json.dumps(settings), json.dumps(protocol),
                                       results_dir))
            settings = protocol
            scores[key] = record
    return scores, settings


def read_failures(results_dir: str,
                  by_image: Dict[str, List[Dict[str, Any]]]) -> List[Dict[str, Any]]:
    """The failure lines of the images the run could not use (image, reason): every
    shard's, one per image, leaving out the images `by_image` (its results lines) holds."""
    failed: Dict[str, Dict[str, Any]] = collections.OrderedDict()
    for path in kind_files(results_dir, "failures"):
        for record in read_lines_file(path, "failures"):
            if image_key(record["image"]) not in by_image:
                failed.setdefault(record["image"], record)
    return list(failed.values())
