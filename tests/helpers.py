"""Shared test helpers: reference variable lists and small random-weight models."""
import os

import numpy as np

from l2caf import checkpoints
from l2caf.model import Model
from nets import nets_factory

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Copies of ../shared/reference/*_variables.tsv: the public checkpoints' variable lists.
REFERENCE_DIR = os.path.join(REPO_ROOT, "tests", "reference")


def reference_variables(network):
    """{name: shape tuple} of a public checkpoint, from ../shared/reference/<network>_variables.tsv."""
    with open(os.path.join(REFERENCE_DIR, network + "_variables.tsv")) as stream:
        rows = [line.rstrip("\n").split("\t") for line in stream if line.strip()]
    return {name: tuple(int(d) for d in shape.split(",") if d) for name, shape in rows}


def randomize_batch_norm(model, seed=0):
    """Gives BN moving statistics non-trivial values so that tests see them used."""
    rng = np.random.default_rng(seed)
    for variable in model.model_variables:
        if "moving_variance" in variable.name:
            variable.load(rng.uniform(0.5, 2.0, variable.shape).astype(np.float32), model.session)
        elif "moving_mean" in variable.name:
            variable.load(rng.normal(0, 0.1, variable.shape).astype(np.float32), model.session)


def random_demo_checkpoint(directory, num_classes=3):
    """A demo_densenet checkpoint with random weights and a label list; returns both paths."""
    spec = nets_factory.get_network("demo_densenet")
    model = Model(spec, num_classes)
    randomize_batch_norm(model)
    checkpoint = os.path.join(str(directory), "random_demo.ckpt")
    checkpoints.save_variables(model.session, checkpoint, model.model_variables)
    model.close()
    labels = os.path.join(str(directory), "labels.txt")
    with open(labels, "w") as stream:
        stream.write("\n".join("class_%d" % i for i in range(num_classes)) + "\n")
    return checkpoint, labels
