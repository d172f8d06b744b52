"""The fixtures several test modules share (plain helpers and constants: tests/helpers.py).

Session-scoped fixtures are built once for the whole run and must be read only: a test that
changes a run folder copies it first (shutil.copytree into its tmp_path)."""
import os

import pytest

from l2caf.synthetic import make_dataset
from tests.helpers import (DEMO_CHECKPOINT, DEMO_LABELS, HELD_OUT_SEED, IMAGE_SIZE, NUM_IMAGES,
                           REPO_ROOT, random_demo_checkpoint)


@pytest.fixture(scope="session")
def blocked_tensorflow(tmp_path_factory):
    """A folder to put first on PYTHONPATH: in it, `import tensorflow` fails."""
    folder = tmp_path_factory.mktemp("blocked_tensorflow")
    package = folder / "tensorflow"
    package.mkdir()
    (package / "__init__.py").write_text("raise ImportError('tensorflow is blocked here')\n")
    return str(folder)


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    """The pictures' synthetic data set: NUM_IMAGES images of one object each, with their
    XMLs and label list (tests.helpers.make_run writes run folders over it)."""
    folder = str(tmp_path_factory.mktemp("report_data"))
    make_dataset(folder, NUM_IMAGES, image_size=IMAGE_SIZE, seed=HELD_OUT_SEED,
                 two_object_fraction=0.0, progress=False)
    return folder


@pytest.fixture(scope="session")
def demo_model():
    """The shipped slim demo model (one row, its last conv layer), built once for the tests
    that only predict and explain with it; read only: a test that loads values into its
    variables or needs other rows, layers or labels builds its own."""
    from l2caf.models.slim import Model
    with Model.load("demo_densenet", DEMO_CHECKPOINT) as model:
        yield model


@pytest.fixture(scope="session")
def random_demo(tmp_path_factory):
    """(checkpoint, label list) of a demo_densenet of 3 classes with seeded random weights
    (tests.helpers.random_demo_checkpoint, seed 0), made once; read only."""
    return random_demo_checkpoint(tmp_path_factory.mktemp("random_demo"), num_classes=3)


# The demo sweep: the shipped demo model's on NUM_IMAGES held-out synthetic images of 128
# pixels, a convergence check every 20 iterations.
DEMO_SWEEP_IMAGE_SIZE = 128
DEMO_SWEEP_CHECK_EVERY = 20


def demo_sweep_into(data, output_dir, *extra):
    """configs/demo_fast.yaml on the data set, 60 iterations, a check every 20."""
    from l2caf.cli.visualize_fast import main
    assert main([
        "--config", os.path.join(REPO_ROOT, "configs", "demo_fast.yaml"),
        "--checkpoint", DEMO_CHECKPOINT, "--labels", DEMO_LABELS,
        "--images", os.path.join(data, "images"), "--annotations",
        os.path.join(data, "annotations"), "--output_dir", output_dir, "--max_iters", "60",
        "--check_every", str(DEMO_SWEEP_CHECK_EVERY), "--batch_size", str(NUM_IMAGES),
        "--progress", "false"] + list(extra)) == 0
    return output_dir


@pytest.fixture(scope="session")
def demo_sweep(tmp_path_factory):
    """The shipped demo model swept over NUM_IMAGES held-out synthetic images (seed 777, 128
    pixels): {"data": the data set's folder (images, annotations), "l2caf": an
    L2-CAF run with GIFs (the top-1 and ground-truth classes), "gradcam": a Grad-CAM run}.
    Read only: copy a folder before changing it."""
    folder = tmp_path_factory.mktemp("demo_sweep")
    data = str(folder / "data")
    make_dataset(data, NUM_IMAGES, image_size=DEMO_SWEEP_IMAGE_SIZE, seed=HELD_OUT_SEED,
                 progress=False)
    return {"data": data,
            "l2caf": demo_sweep_into(data, str(folder / "l2caf"), "--save_gif", "true"),
            "gradcam": demo_sweep_into(data, str(folder / "gradcam"), "--method", "gradcam")}
