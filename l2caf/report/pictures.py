"""Run folders as the pictures read them: a visualiser's config and results lines, the
heatmaps they name, the annotations of the images and the faithfulness scores, turned into
one `Entry` per heatmap with the evaluation's box and IoU.

The files are read through l2caf.runs (the same readers and the same box as the localisation
table); nothing here imports TensorFlow.
"""
import collections
import os
from typing import Optional

from l2caf import data, images
from l2caf.errors import RunError
from l2caf.evaluation import class_box
from l2caf.report.drawing import method_name
from l2caf.runs import localization, read
from l2caf.runs.folder import (folder_path, is_inside, kind_pattern, load_heatmap,
                               output_names)

Entry = collections.namedtuple(
    "Entry", ["name", "image", "line", "class_id", "class_name", "probability", "heatmap",
              "image_size", "gt_classes", "gt_boxes", "box", "faithfulness"])
Entry.__doc__ = """One heatmap of a run, ready to draw.

name: the image's name in the run (its file name without extension; see
l2caf.runs.folder.output_names). image: its path as the results line gives it. line: the results
line. class_id, class_name: the explained class (for cls_oblivious, None and None).
probability: the class's probability on the image, when it is among the line's top-5
predictions, else None. heatmap: the array. image_size: (height, width). gt_classes: the
image's ground-truth class ids (annotations, else the line's ground_truth; empty when
unknown). gt_boxes: the boxes the evaluation compares this heatmap with: its class's (for
cls_oblivious, every ground-truth box), at the image's size; empty without annotations.
box: the evaluation's l2caf.evaluation.ClassBox at the chosen threshold and protocol (its
iou None without boxes). faithfulness: the heatmap's line of faithfulness*.jsonl, or None."""


def box_fractions(box, frame_size) -> tuple:
    """An inclusive pixel box (xmin, ymin, xmax, ymax) in a frame of frame_size = (height,
    width) as the fractions of the frame its edges lie at (left, top, right, bottom): pixel
    x covers [x, x + 1) of the frame's width."""
    height, width = frame_size
    return (box[0] / width, box[1] / height, (box[2] + 1) / width, (box[3] + 1) / height)


class PictureRun(object):
    """A results folder of a visualiser run, for figures and reports.

    annotations: a folder of boxes (XMLs or wsolevaluation metadata) for every image of the
    run; None: the run's own config key `annotations` when it names one, else no boxes.
    RunError for a folder that is not a run, or annotations that do not fit it.
    """

    def __init__(self, results_dir: str, annotations: str = None):
        if not os.path.isdir(results_dir):
            raise RunError("%s: no such results folder" % results_dir)
        self.results_dir = results_dir
        self.config = read.read_config(results_dir)
        # The results lines and faithfulness scores, read once: the gallery, the table and
        # the curves of a report show the folder as it was at this moment.
        self.snapshot = localization.read_snapshot(results_dir)
        self.lines = self.snapshot.lines
        self.names = output_names(list(self.lines))
        self.by_name = {name: image for image, name in self.names.items()}
        first = next(iter(self.lines.values()))[0]
        self.method = method_name(self.config.method, self.config.caf_variant)
        self.layer = first["layer"]
        self.title = "%s, %s, %s" % (self.method, self.config.network, self.layer)
        self.annotations_dir = annotations or self.config.annotations or None
        self.annotations = self.class_ids = None
        if self.annotations_dir:
            self.annotations = localization.load_annotations(self.annotations_dir)
            self.class_ids = localization.class_ids_of(
                self.config, os.path.join(results_dir, kind_pattern("config")))
        self.faithfulness = self.snapshot.scores
        self.class_names = _class_names(self.lines)

    def class_label(self, class_id) -> str:
        """'3 circle': a class id and its name, as the run's lines name it."""
        if class_id is None:
            return "class-oblivious"
        if class_id not in self.class_names and self.config.labels:
            # A class no line names (a ground-truth class never predicted nor explained).
            try:
                self.class_names.update(enumerate(data.class_names(self.config.labels)))
            except (OSError, ValueError):
                pass  # the lines' names are all there is; the id is shown alone
        name = self.class_names.get(class_id)
        return "%d %s" % (class_id, name) if name else str(class_id)

    def image_paths(self) -> list:
        """The run's images, by name."""
        return sorted(self.lines, key=lambda image: self.names[image])

    def failures(self) -> list:
        """The failure lines of the images the run could not use (image, reason)."""
        return read.read_failures(self.results_dir, self.lines)

    def file_of(self, line: dict, key: str):
        """The path of the file a line names under key ('overlay', 'gif'), when the line
        names one and it is in the folder (not a link out of it); else None."""
        if not line.get(key):
            return None
        path = folder_path(self.results_dir, line[key])
        return path if os.path.isfile(path) and is_inside(self.results_dir, path) else None

    def _heatmap(self, line):
        # A RunError naming the file and the rerun that repairs it, if it cannot be used.
        return load_heatmap(line["heatmap"], self.results_dir)

    def _ground_truth(self, image, lines):
        """(gt classes, {class id: boxes}, the image's (height, width) as the run saw it)."""
        size = tuple(lines[0]["image_size"]) if lines[0].get("image_size") else None
        if self.annotations is None:
            return list(lines[0].get("ground_truth") or ()), {}, size
        stem = os.path.splitext(os.path.basename(image))[0]
        if stem not in self.annotations:
            raise RunError("%s has no annotation in %s; are these annotations of the run's "
                           "data set?" % (image, self.annotations_dir))
        # image_record checks that the annotation is this image's (size, classes).
        record = localization.image_record(lines[:1], self.annotations[stem], self.class_ids,
                                           self.results_dir)
        return list(record.gt_labels), record.gt_boxes, record.image_size

    def entries(self, image: str, threshold: float = 0.2, protocol: str = "cam") -> list:
        """The `Entry`s of an image's heatmaps, in the order of its results lines, with the
        evaluation's box at threshold under protocol."""
        lines = self.lines[image]
        gt_classes, gt_boxes, size = self._ground_truth(image, lines)
        if size is None:
            size = read_picture(image, self.results_dir).shape[:2]
        probabilities = {prediction["class_id"]: prediction["probability"]
                         for prediction in lines[0]["predictions"]}
        result = []
        for line in lines:
            class_id = line.get("class_id")
            boxes = gt_boxes.get(class_id, []) if class_id is not None else \
                [box for class_boxes in gt_boxes.values() for box in class_boxes]
            heatmap = self._heatmap(line)
            try:
                box = class_box(heatmap, size, boxes, threshold, protocol)
            except ValueError as error:
                raise RunError("heatmap %s of %s: %s" % (line["heatmap"], self.results_dir,
                                                          error)) from None
            result.append(Entry(
                name=self.names[image], image=image, line=line, class_id=class_id,
                class_name=line.get("class_name"), probability=probabilities.get(class_id),
                heatmap=heatmap, image_size=tuple(size), gt_classes=gt_classes,
                gt_boxes=boxes, box=box,
                faithfulness=self.faithfulness.get((image, class_id))))
        return result


def shown_entry(entries: list) -> Entry:
    """The heatmap a figure shows of an image (its `entries`): of its first ground-truth
    class that has one, else of its top-1 predicted class, else the first (a class-oblivious
    run has one)."""
    by_class = {entry.class_id: entry for entry in entries}
    top1 = entries[0].line["predictions"][0]["class_id"]
    for class_id in list(entries[0].gt_classes) + [top1]:
        if class_id in by_class:
            return by_class[class_id]
    return entries[0]


def shown_class(entry: Entry):
    """The class a figure's row is about: its shown entry's, or for a class-oblivious one the
    image's first ground-truth class, else its top-1 predicted class."""
    if entry.class_id is not None:
        return entry.class_id
    return (list(entry.gt_classes) or [entry.line["predictions"][0]["class_id"]])[0]


def matching_entry(entries: list, class_id):
    """The entry of class_id among an image's entries in another run, or that run's
    class-oblivious one; None when the run lacks both."""
    for entry in entries:
        if entry.class_id == class_id or entry.class_id is None:
            return entry
    return None


def _class_names(lines_by_image):
    """{class id: name} of every class the lines explain or predict."""
    names = {}
    for lines in lines_by_image.values():
        for line in lines:
            for prediction in line["predictions"]:
                if prediction.get("class_name"):
                    names[prediction["class_id"]] = prediction["class_name"]
            if line.get("class_id") is not None and line.get("class_name"):
                names[line["class_id"]] = line["class_name"]
    return names


def read_faithfulness(results_dir: str, lines_by_image: Optional[dict] = None) -> dict:
    """{(image, class_id): its faithfulness line} of the run folder's scores, read and checked
    by l2caf.runs.read.read_scores; empty without them. lines_by_image: the run's results
    lines, if read already."""
    if lines_by_image is None:
        lines_by_image = read.read_lines(results_dir)
    return read.read_scores(results_dir, lines_by_image)[0]


def read_picture(image: str, results_dir: str):
    """The RGB image a results line names; RunError when it cannot be read."""
    try:
        return images.read_image(image)
    except images.ImageError as error:
        raise RunError("the image of a results line of %s cannot be read (%s); image paths "
                       "are relative to the folder the run was started from"
                       % (results_dir, error)) from None
