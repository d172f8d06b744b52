"""Shared test helpers: reference variable lists and small random-weight models."""
import os

import cv2
import numpy as np

from l2caf import filters
from l2caf.models import checkpoints
from l2caf.models.slim import Model
from nets.attention_filter import AttentionFilter

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
    with Model("demo_densenet", num_classes) as model:
        randomize_weights(model, seed)
        checkpoint = os.path.join(str(directory), "random_demo.ckpt")
        checkpoints.save_variables(model.session, checkpoint, model.model_variables)
    labels = os.path.join(str(directory), "labels.txt")
    with open(labels, "w") as stream:
        stream.write("\n".join("class_%d" % i for i in range(num_classes)) + "\n")
    return checkpoint, labels


def demo_run_inputs(folder, image_shapes, num_classes=3):
    """A random demo checkpoint, its label list and a folder of random images of the given
    {file name: shape} (shape (H, W) for gray): the paths, as a dict."""
    checkpoint, labels = random_demo_checkpoint(folder, num_classes)
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
        self.filters = {point: AttentionFilter.create(
            point, lambda height, width: filters.filter_shape(filter_type, rows, height, width),
            self._normalize(point, filter_type)) for point in points}

    def _normalize(self, point, filter_type):
        def normalize(raw):
            return filters.normalize(raw, filter_type,
                                     int(self.filters[point].activation.shape[1]))
        return normalize

    def __call__(self, end_point, net):
        return self.filters[end_point](end_point, net) if end_point in self.filters else net
