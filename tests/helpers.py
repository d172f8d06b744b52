"""Shared test helpers, plain functions and constants (the fixtures are tests/conftest.py's):
reference variable lists and small random-weight models; small models whose answers are
computed in numpy too (TinyNetwork, SoftmaxModel); plain transcriptions of the scores
the evaluation computes (IoU, the CAM and wsolevaluation boxes, the pointing games); and run
folders written without TensorFlow, as the visualisers and the scoring commands write them.

This module imports no TensorFlow (the models' helpers import it when called), so that the
tests of the pictures and the evaluation, which never need it, do not load it either."""
import collections
import itertools
import json
import os
import re
import signal
import xml.etree.ElementTree as ElementTree

import cv2
import numpy as np
import yaml

from l2caf import preprocessing
from l2caf.annotations import read_annotation_folder
from l2caf.files import write_atomically
from l2caf.runs.folder import NpzChunks, Shard
from l2caf.synthetic import CLASS_NAMES

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Copies of ../shared/reference/*_variables.tsv: the public checkpoints' variable lists.
REFERENCE_DIR = os.path.join(REPO_ROOT, "tests", "reference")
DEMO_DIR = os.path.join(REPO_ROOT, "l2caf", "demo_model")
DEMO_CHECKPOINT = os.path.join(DEMO_DIR, "demo_densenet.ckpt")
DEMO_LABELS = os.path.join(DEMO_DIR, "labels.txt")


def reference_variables(network):
    """{name: shape tuple} of a public checkpoint, from ../shared/reference/<network>_variables.tsv."""
    with open(os.path.join(REFERENCE_DIR, network + "_variables.tsv")) as stream:
        rows = [line.rstrip("\n").split("\t") for line in stream if line.strip()]
    return {name: tuple(int(d) for d in shape.split(",") if d) for name, shape in rows}


def randomize_batch_norm(model, seed=0):
    """Gives BN moving statistics non-trivial values so that tests see them used."""
    rng = np.random.default_rng(seed)
    values = []
    for variable in model.model_variables:
        if "moving_variance" in variable.name:
            values.append((variable, rng.uniform(0.5, 2.0, variable.shape)))
        elif "moving_mean" in variable.name:
            values.append((variable, rng.normal(0, 0.1, variable.shape)))
    load_values(model, values)


def randomize_weights(model, seed=0):
    """Seeded He-scaled weights (so that activations keep their scale) and small biases,
    BN scales and shifts: the same random network in every run."""
    rng = np.random.default_rng(seed)
    values = []
    for variable in model.model_variables:
        shape = variable.shape.as_list()
        if variable.op.name.endswith("/weights"):
            values.append((variable, rng.standard_normal(shape)
                           * np.sqrt(2.0 / np.prod(shape[:-1]))))
        elif variable.op.name.endswith("/gamma"):
            values.append((variable, rng.uniform(0.5, 1.5, shape)))
        elif variable.op.name.endswith(("/beta", "/biases")):
            values.append((variable, rng.normal(0.0, 0.1, shape)))
    load_values(model, values)
    randomize_batch_norm(model, seed)


def load_values(model, values):
    """Sets the (variable, value) pairs of a Model's graph."""
    with model.graph.as_default():
        for variable, value in values:
            variable.load(np.asarray(value, variable.dtype.as_numpy_dtype), model.session)


def random_demo_checkpoint(directory, num_classes=3, seed=0):
    """A demo_densenet checkpoint with seeded random weights and a label list; returns both
    paths."""
    from l2caf.models import checkpoints
    from l2caf.models.slim import Model
    with Model("demo_densenet", num_classes) as model:
        randomize_weights(model, seed)
        checkpoint = os.path.join(str(directory), "random_demo.ckpt")
        checkpoints.save_variables(model.session, checkpoint, model.model_variables)
    labels = os.path.join(str(directory), "labels.txt")
    with open(labels, "w") as stream:
        stream.write("\n".join("class_%d" % i for i in range(num_classes)) + "\n")
    return checkpoint, labels


def demo_run_inputs(folder, image_shapes, num_classes=3, weights=None):
    """A random demo checkpoint, its label list and a folder of random images of the given
    {file name: shape} (shape (H, W) for gray): the paths, as a dict. weights: the
    (checkpoint, label list) to use (conftest.py's `random_demo`); by default a new
    random_demo_checkpoint in folder."""
    checkpoint, labels = weights or random_demo_checkpoint(folder, num_classes)
    images = folder / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name, shape in image_shapes.items():
        cv2.imwrite(str(images / name), rng.integers(0, 255, shape, dtype=np.uint8))
    return {"checkpoint": checkpoint, "labels": labels, "images": str(images)}


class FiltersAt(object):
    """Attention for the nets' tests: a filter of `filter_type` with `rows` rows, made by
    the network (AttentionFilter.create), at each of `points`; `filters[point]` is it."""

    def __init__(self, points, filter_type="l2norm", rows=1):
        from l2caf import filters
        from nets.attention_filter import AttentionFilter
        self.filters = {point: AttentionFilter.create(
            point, lambda height, width: filters.filter_shape(filter_type, rows, height, width),
            self._normalize(point, filter_type)) for point in points}

    def _normalize(self, point, filter_type):
        from l2caf import filters

        def normalize(raw):
            return filters.normalize(raw, filter_type,
                                     int(self.filters[point].activation.shape[1]))
        return normalize

    def __call__(self, end_point, net):
        return self.filters[end_point](end_point, net) if end_point in self.filters else net


# Small models whose answers are computed here too, for the tests of the methods and of the
# faithfulness scores.

TINY_INPUT = 13  # TinyNetwork's input: its 3x3 conv of stride 2 (valid) maps it to 6x6


def bilinear_matrix(source, target):
    """[target, source]: bilinear upsampling with half-pixel centres (OpenCV's resize, torch's
    interpolate with align_corners=False), from its definition."""
    position = np.clip((np.arange(target) + 0.5) * source / target - 0.5, 0, source - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, source - 1)
    matrix = np.zeros((target, source))
    matrix[np.arange(target), low] += 1 - (position - low)
    matrix[np.arange(target), high] += position - low
    return matrix


class TinyNetwork(object):
    """features: 3x3 conv, stride 2, no activation (signed maps: the layer explained);
    hidden: 1x1 conv + ReLU; global average pooling; Dense logits. A Keras model (seeded
    weights, preprocess 'tf': x / 127.5 - 1) and the same in numpy, float64, with the
    gradients of a logit with respect to the layer and to the image."""

    def __init__(self, seed=0):
        import keras
        rng = np.random.default_rng(seed)
        self.kernel = rng.normal(0, 0.4, (3, 3, 3, 4))
        self.bias = rng.normal(0, 0.1, 4)
        self.hidden = rng.normal(0, 0.6, (4, 5))
        self.hidden_bias = rng.normal(0, 0.2, 5)
        self.dense = rng.normal(0, 0.8, (5, 3))
        self.dense_bias = rng.normal(0, 0.1, 3)
        inputs = keras.Input((TINY_INPUT, TINY_INPUT, 3))
        features = keras.layers.Conv2D(4, 3, strides=2, name="features")(inputs)
        hidden = keras.layers.Conv2D(5, 1, activation="relu", name="hidden")(features)
        logits = keras.layers.Dense(3, name="logits")(
            keras.layers.GlobalAveragePooling2D()(hidden))
        self.keras_model = keras.Model(inputs, logits)
        for name, values in (("features", (self.kernel, self.bias)),
                             ("hidden", (self.hidden[None, None], self.hidden_bias)),
                             ("logits", (self.dense, self.dense_bias))):
            self.keras_model.get_layer(name).set_weights([v.astype(np.float32) for v in values])

    @staticmethod
    def network_input(image):
        """Preprocessing 'tf' of an RGB image (0..255)."""
        return image / 127.5 - 1.0

    def features(self, network_input):
        """The layer's map [6, 6, 4] of one network input [13, 13, 3]."""
        output = np.zeros((6, 6, 4)) + self.bias
        for dy in range(3):
            for dx in range(3):
                output += network_input[dy:dy + 11:2, dx:dx + 11:2] @ self.kernel[dy, dx]
        return output

    def logits_from(self, features):
        return _relu(features @ self.hidden + self.hidden_bias).mean(axis=(0, 1)) \
            @ self.dense + self.dense_bias

    def gradient(self, features, class_id):
        """d logit_class / d features, [6, 6, 4]."""
        active = (features @ self.hidden + self.hidden_bias) > 0
        return (active * self.dense[:, class_id]) @ self.hidden.T / (6 * 6)

    def probabilities(self, network_input):
        logits = self.logits_from(self.features(network_input))
        exponentials = np.exp(logits - logits.max())
        return exponentials / exponentials.sum()

    def logit_and_gradient(self, image, class_id):
        """(logit, d logit / d image [13, 13, 3]) of an RGB image (0..255): the gradient
        with respect to the layer taken back through the conv and the preprocessing."""
        features = self.features(self.network_input(image))
        to_features = self.gradient(features, class_id)
        to_input = np.zeros((TINY_INPUT, TINY_INPUT, 3))
        for dy in range(3):
            for dx in range(3):
                to_input[dy:dy + 11:2, dx:dx + 11:2] += to_features @ self.kernel[dy, dx].T
        return self.logits_from(features)[class_id], to_input / 127.5


def _relu(x):
    return np.maximum(x, 0.0)


class SoftmaxModel(object):
    """A small classifier with the four members l2caf.evaluation.faithfulness needs: the
    softmax of a fixed linear map of the network input; class ids shifted by one output,
    like the slim networks' background output; every batch is recorded."""

    def __init__(self, input_shape=(12, 10, 3), num_outputs=5, preprocessing_name="inception"):
        self.preprocessing, self.input_shape = preprocessing_name, input_shape
        self.weights = np.random.default_rng(3).normal(
            0, 0.3, (int(np.prod(input_shape)), num_outputs))
        self.batches = []

    def class_output(self, class_id):
        return class_id + 1

    def probabilities_of_input(self, network_input):
        logits = np.reshape(network_input, (-1, self.weights.shape[0])) @ self.weights
        logits -= logits.max(axis=1, keepdims=True)
        return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)

    def class_probabilities(self, images):
        self.batches.append(len(images))
        return self.probabilities_of_input(
            preprocessing.preprocess(np.asarray(images, np.float64), self.preprocessing))


# Plain transcriptions of the scores the evaluation computes, for the tests to check it against.

def read_xml(path):
    """((height, width), {object name: [box, ...]}) of an annotation file."""
    root = ElementTree.parse(path).getroot()
    boxes = {}
    for element in root.iter("object"):
        boxes.setdefault(element.find("name").text, []).append(tuple(
            int(element.find("bndbox/" + field).text)
            for field in ("xmin", "ymin", "xmax", "ymax")))
    return (int(root.find("size/height").text), int(root.find("size/width").text)), boxes


def plain_iou(box, other):
    """The IoU of two inclusive boxes (xmin, ymin, xmax, ymax)."""
    width = min(box[2], other[2]) - max(box[0], other[0]) + 1
    height = min(box[3], other[3]) - max(box[1], other[1]) + 1
    if width <= 0 or height <= 0:
        return 0.0

    def area(b):
        return (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return width * height / float(area(box) + area(other) - width * height)


def plain_cam_box(heatmap, size, threshold=0.2):
    """The CAM protocol's box, plainly: bilinear resize, keep >= threshold x max, the largest
    8-connected component's bounding box."""
    resized = cv2.resize(heatmap.astype(np.float64), (size[1], size[0]),
                         interpolation=cv2.INTER_LINEAR)
    mask = (resized >= threshold * resized.max()).astype(np.uint8)
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    label = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, width, height = (int(value) for value in stats[label, :4])
    return (x, y, x + width - 1, y + height - 1)


def plain_boxes(heatmap, threshold):
    """wsolevaluation's boxes, a plain transcription of the benchmark (resize, normalise,
    uint8, threshold, contours): (the largest contour's box, every contour's box) at
    threshold, step by step."""
    resized = cv2.resize(heatmap.astype(np.float64), (224, 224), interpolation=cv2.INTER_CUBIC)
    if resized.min() == resized.max():
        scoremap = np.zeros_like(resized)
    else:
        scoremap = resized - resized.min()
        scoremap /= scoremap.max()
    image = (scoremap * 255).astype(np.uint8)
    _, binary = cv2.threshold(image, int(threshold * np.max(image)), 255, cv2.THRESH_BINARY)
    contours, _ = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return (0, 0, 0, 0), [(0, 0, 0, 0)]

    def box(contour):
        x, y, width, height = cv2.boundingRect(contour)
        return (x, y, min(x + width, 223), min(y + height, 223))
    return box(max(contours, key=cv2.contourArea)), [box(contour) for contour in contours]


def in_any_box(x, y, boxes):
    return any(x0 <= x <= x1 and y0 <= y <= y1 for x0, y0, x1, y1 in boxes)


def disc_meets_boxes(point, boxes, radius=15):
    """Whether some pixel within `radius` of point (x, y), boundary included, is in a box:
    every pixel of the disc tried (the pointing game, plainly)."""
    x, y = point
    return any(dx * dx + dy * dy <= radius * radius and in_any_box(x + dx, y + dy, boxes)
               for dx, dy in itertools.product(range(-radius, radius + 1), repeat=2))


def mass_inside(resized, boxes):
    """The map's mass inside the boxes, pixel by pixel (the energy pointing game, plainly)."""
    height, width = resized.shape
    inside = sum(resized[y, x] for y in range(height) for x in range(width)
                 if in_any_box(x, y, boxes))
    return inside / resized.sum()


# Run folders written without TensorFlow: the report's synthetic data set (conftest.py's
# `dataset` fixture), heatmaps placed on its ground-truth boxes (or away from them, for
# misses), results lines as the visualisers write them, and the lines other helpers'
# commands add (loss_history, faithfulness.jsonl with its curves) in their promised formats.

NUM_IMAGES = 6
IMAGE_SIZE = 96
HEATMAP_SIZE = 48
HELD_OUT_SEED = 777
# Heatmaps of these images sit in the corner farthest from their object: missed.
DISPLACED = ("synth_00001", "synth_00004")


def object_heatmap(box, displaced=False, size=HEATMAP_SIZE, image_size=IMAGE_SIZE):
    """A heatmap whose hot cells cover box (xmin, ymin, xmax, ymax) of the image, or the same
    blob moved to the farthest corner; a faint gradient elsewhere."""
    rows, columns = np.mgrid[0:size, 0:size]
    heatmap = 0.05 * (rows + columns) / (2.0 * size)
    scale = size / float(image_size)
    x0, y0 = int(box[0] * scale), int(box[1] * scale)
    x1, y1 = int(np.ceil((box[2] + 1) * scale)), int(np.ceil((box[3] + 1) * scale))
    if displaced:
        width, height = x1 - x0, y1 - y0
        x0 = 0 if x0 + width / 2.0 > size / 2.0 else size - width
        y0 = 0 if y0 + height / 2.0 > size / 2.0 else size - height
        x1, y1 = x0 + width, y0 + height
    heatmap[y0:y1, x0:x1] = 1.0
    return heatmap.astype(np.float32)


def results_line(image, annotation, class_ids, reference, method, index, history):
    """A results line as the runner writes it (and loss_history, as helper C adds it)."""
    [box_object] = annotation.objects
    class_id = class_ids[box_object.name]
    others = [c for c in range(len(CLASS_NAMES)) if c != class_id][:4]
    probabilities = [0.9 - 0.1 * index] + [0.02] * 4
    predictions = [{"class_id": c, "class_name": CLASS_NAMES[c], "probability": p}
                   for c, p in zip([class_id] + others, probabilities)]
    optimised = method == "l2caf"
    return collections.OrderedDict([
        ("image", image), ("network", "demo_densenet"), ("layer", "dense_block2/conv_block2"),
        ("method", method), ("caf_variant", "cls_specific"),
        ("filter_type", "l2norm" if optimised else None), ("class_id", class_id),
        ("class_name", CLASS_NAMES[class_id]), ("iterations", 101 if optimised else 0),
        ("final_loss", -3.5 - index if optimised else None), ("seconds", 0.1),
        ("heatmap", reference), ("overlay", None), ("gif", None), ("predictions", predictions),
        ("ground_truth", [class_id]), ("image_size", [annotation.height, annotation.width]),
        ("loss_history", [[0, -1.0], [50, -3.0 - index], [100, -3.5 - index]]
         if optimised and history else None)])


def make_run(folder, dataset, method="l2caf", displaced=DISPLACED, history=True,
             annotations_key=True):
    """A run folder of `method` over the data set: config.yaml, heatmaps in an npz and
    results.jsonl. Returns its path."""
    os.makedirs(folder)
    annotations = read_annotation_folder(os.path.join(dataset, "annotations"))
    class_ids = {name: index for index, name in enumerate(CLASS_NAMES)}
    config = {"network": "demo_densenet", "labels": os.path.join(dataset, "labels.txt"),
              "images": os.path.join(dataset, "images"),
              "annotations": os.path.join(dataset, "annotations") if annotations_key else "",
              "output_dir": folder, "method": method, "heatmap_format": "npz"}
    with open(os.path.join(folder, "config.yaml"), "w") as stream:
        yaml.safe_dump(dict(config, made_with={"layer": "dense_block2/conv_block2"}), stream)
    stems = sorted(annotations)
    maps = collections.OrderedDict(
        ("%s_c%d" % (stem, class_ids[annotations[stem].objects[0].name]),
         object_heatmap(annotations[stem].objects[0].box, stem in displaced)) for stem in stems)
    references = NpzChunks(folder, Shard(0, 1)).write(maps)
    lines = [results_line(os.path.join(dataset, "images", stem + ".JPEG"), annotations[stem],
                          class_ids, reference, method, index, history)
             for index, (stem, reference) in enumerate(zip(stems, references.values()))]
    write_lines(os.path.join(folder, "results.jsonl"), lines)
    return folder


def make_oblivious_run(folder, dataset):
    """make_run's L2-CAF run as a cls_oblivious one: one class-free heatmap per image."""
    run = make_run(folder, dataset)
    with open(os.path.join(run, "config.yaml")) as stream:
        config = yaml.safe_load(stream)
    with open(os.path.join(run, "config.yaml"), "w") as stream:
        yaml.safe_dump(dict(config, caf_variant="cls_oblivious"), stream)
    lines = read_lines(os.path.join(run, "results.jsonl"))
    write_lines(os.path.join(run, "results.jsonl"),
                [dict(line, class_id=None, class_name=None, caf_variant="cls_oblivious")
                 for line in lines])
    return run


def write_lines(path, lines):
    """JSON lines, written whole or not at all (as the commands write theirs)."""
    write_atomically(path, lambda stream: stream.write(
        "".join(json.dumps(line) + "\n" for line in lines).encode("utf-8")))


def read_lines(path):
    with open(path) as stream:
        return [json.loads(line) for line in stream]


def add_faithfulness(folder, points=11, skip=()):
    """faithfulness.jsonl in helper D's promised format, for every heatmap but those of the
    images in skip, and the curves' npz: image i's deletion curve falls from 1 to i / 10,
    its insertion curve rises from 0 to 1 - i / 10. Returns {(image, class_id): curves}."""
    fractions = np.linspace(0.0, 1.0, points)
    lines, curves = [], {}
    for index, line in enumerate(read_lines(os.path.join(folder, "results.jsonl"))):
        if os.path.splitext(os.path.basename(line["image"]))[0] in skip:
            continue
        deletion = 1.0 - (1.0 - index / 10.0) * fractions
        insertion = (1.0 - index / 10.0) * fractions
        key = "c%d" % index
        curves[key] = np.stack([deletion, insertion]).astype(np.float32)
        lines.append({"image": line["image"], "class_id": line["class_id"],
                      "heatmap": line["heatmap"],
                      "deletion_auc": float(np.trapezoid(curves[key][0], fractions)),
                      "insertion_auc": float(np.trapezoid(curves[key][1], fractions)),
                      "average_drop": 0.1 * index, "increase_in_confidence": float(index % 2),
                      "steps": points - 1, "curves": "faithfulness_curves_000000.npz:" + key})
    np.savez_compressed(os.path.join(folder, "faithfulness_curves_000000.npz"), **curves)
    write_lines(os.path.join(folder, "faithfulness.jsonl"), lines)
    return {(line["image"], line["class_id"]): curves[line["curves"].split(":")[1]]
            for line in lines}


def gallery_data(report_html):
    """(the gallery's JSON blob, its heatmaps as dicts) of a report page; the values the
    blob writes as text (gt, box, gt_boxes, history) read back as lists."""
    blob = re.search(r'<script type="application/json" id="gallery-data">(.*?)</script>',
                     report_html, re.S).group(1)
    data = json.loads(blob)
    columns = data["columns"]

    def numbers(text):
        return [float(value) for value in text.split()]
    rows = []
    for index in range(data["count"]):
        row = {name: values[index] for name, values in columns.items()}
        row["gt"] = [int(value) for value in numbers(row["gt"])]
        row["box"] = numbers(row["box"])
        row["gt_boxes"] = [numbers(box) for box in row["gt_boxes"].split(";") if box]
        row["history"] = [[int(pair.split(":")[0]), float(pair.split(":")[1])]
                          for pair in row["history"].split()] or None
        rows.append(row)
    return data, rows


# The commands' error contract.

def assert_one_error_line(stderr, message):
    """stderr ends in one error line holding message (progress bars may come before it)."""
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], stderr
    assert stderr.rstrip().endswith(errors[0])


def exit_status(command, argv):
    """A command line's exit status, whether main returns it or argparse exits with it."""
    try:
        return command(argv)
    except SystemExit as exit:
        return exit.code


def default_sigint():
    """A subprocess's preexec_fn: Ctrl-C's default disposition in the child. A shell without
    job control starts background commands with SIGINT ignored, and a Python started so
    never raises KeyboardInterrupt: the tests that press Ctrl-C would then test nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
