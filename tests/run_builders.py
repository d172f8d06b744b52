"""Builders of small run folders written without a network (a run's config, results lines,
a second process holding a folder's lock), for the tests of l2caf.runs."""
import json
import os
import subprocess
import sys

from l2caf import config as config_module
from l2caf.runs.folder import RunFolder, Shard

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKPOINT_SHA256 = "ab" * 32
MADE_WITH = {"image_size": 8, "checkpoint_sha256": CHECKPOINT_SHA256, "labels_sha256": "cd" * 32,
             "layer": "conv1"}


def run_config(**keys):
    """A fast visualiser's Config (every key at its default) with `keys` changed."""
    config = config_module.defaults(config_module.options(config_module.FAST_DEFAULTS))
    for key, value in keys.items():
        assert key in config, key
        config[key] = value
    return config


def write_config(folder, shard=Shard(0, 1), made_with=None, **keys):
    """The config file a visualiser's shard writes into folder; returns its Config."""
    os.makedirs(str(folder), exist_ok=True)
    config = run_config(output_dir=str(folder), **keys)
    RunFolder(str(folder), shard).write_config(config, MADE_WITH if made_with is None
                                               else made_with)
    return config


def results_line(image, class_id, heatmap, predictions=None, **extra):
    """A results line as the visualisers write it (the fields the readers use)."""
    ranked = list(predictions) if predictions is not None else \
        [class_id if class_id is not None else 0]
    line = {"image": image, "network": "demo_densenet", "layer": "conv1", "method": "l2caf",
            "caf_variant": "cls_specific" if class_id is not None else "cls_oblivious",
            "class_id": class_id, "heatmap": heatmap,
            "predictions": [{"class_id": c, "probability": 0.5 / (1 + rank)}
                            for rank, c in enumerate(ranked)]}
    line.update(extra)
    return line


def score_line(image, class_id, heatmap, **extra):
    """A faithfulness scores line as the scoring job writes it (the fields the readers use)."""
    line = {"image": image, "class_id": class_id, "heatmap": heatmap, "steps": 8,
            "input_size": [8, 8], "curves": "faithfulness_curves_000000.npz:x",
            "deletion_auc": 0.5, "insertion_auc": 0.5, "average_drop": 0.5,
            "increase_in_confidence": 0.0, "average_gain": 0.0, "road_morf_auc": 0.5,
            "road_lerf_auc": 0.5, "road_curves": "faithfulness_curves_000000.npz:x_road",
            "road_fractions": [0.5], "road_noise": 0.01}
    line.update(extra)
    return line


def write_lines(path, lines, torn=""):
    """A file of JSON lines (and, with torn, the start of a line a kill cut short)."""
    with open(str(path), "w") as stream:
        stream.writelines(json.dumps(line) + "\n" for line in lines)
        stream.write(torn)


def names(folder):
    """The file names in folder, lock files left out."""
    return sorted(name for name in os.listdir(str(folder)) if not name.endswith(".lock"))


HOLD_LOCK = """
import sys
from l2caf.files import FolderLock
with FolderLock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.read()
"""


class LockHolder(object):
    """Another process holding l2caf.files.FolderLock(path) while the `with` block runs."""

    def __init__(self, path):
        self.path = str(path)

    def __enter__(self):
        self.process = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, self.path],
                                        cwd=REPO_ROOT, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline() == "locked\n"
        return self.process

    def __exit__(self, *exc_info):
        self.process.stdin.close()  # it ends, releasing the lock
        self.process.stdout.close()
        self.process.wait(timeout=10)
