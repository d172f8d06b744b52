"""L2-CAF must really localise: the shipped demo model on held-out synthetic images.

The images come from the synthetic generator with a seed that training never used; the
boxes are known. The project's bar is IoU >= 0.5 for 80% of single-object images and the
right object under the peak for 80% of two-object heatmaps; the thresholds below are set
from what the shipped model measured (87.5% of 40 and 100% of 40; run pytest with -s to
see the rates), a little under it for floating-point differences between machines.
"""
import numpy as np
import pytest

from l2caf import evaluation, synthetic
from l2caf.heatmaps import resize_heatmap
from l2caf.methods import L2CAF
from l2caf.models.slim import Model
from tests.helpers import DEMO_CHECKPOINT

pytestmark = pytest.mark.slow  # explains 80 images with the demo model

HELD_OUT_SEED = 777  # training used seeds 0 (training set) and 1 (validation)
SETTINGS = {"max_iters": 300}


def explain(examples):
    """Class-specific heatmaps of every object's class, all images in one batch."""
    rows = sum(len(objects) for _, objects in examples)
    with Model.load("demo_densenet", DEMO_CHECKPOINT, rows=rows) as model:
        classes = [[synthetic.CLASS_NAMES.index(o.name) for o in objects]
                   for _, objects in examples]
        return L2CAF(model, "cls_specific", SETTINGS)(
            [image for image, _ in examples], classes,
            ["held_out_%d" % i for i in range(len(examples))])


@pytest.fixture(scope="module")
def single_object():
    examples = list(synthetic.generate_examples(40, 224, HELD_OUT_SEED, 0.0))
    return examples, explain(examples)


@pytest.fixture(scope="module")
def two_objects():
    examples = list(synthetic.generate_examples(20, 224, HELD_OUT_SEED + 1, 1.0))
    return examples, explain(examples)


def test_the_model_classifies_held_out_images(single_object, demo_model):
    examples, _ = single_object
    predicted = demo_model.predict(demo_model.prepare([image for image, _ in examples])) \
        .probabilities.argmax(axis=1)
    truth = [synthetic.CLASS_NAMES.index(objects[0].name) for _, objects in examples]
    accuracy = np.mean(predicted == truth)
    print("\nheld-out classification accuracy: %.3f" % accuracy)
    assert accuracy >= 0.95


def test_class_specific_boxes_match_single_objects(single_object):
    examples, explanations = single_object
    ious = []
    for explanation in explanations:
        image, objects = examples[explanation.image_index]
        box = evaluation.heatmap_to_box(explanation.heatmap, image.shape[:2], threshold=0.2)
        ious.append(evaluation.iou(box, objects[0].box))
    rate = np.mean(np.array(ious) >= 0.5)
    print("\nsingle objects: IoU >= 0.5 in %.1f%% of %d images (mean IoU %.2f)"
          % (100 * rate, len(ious), np.mean(ious)))
    assert rate >= 0.85


def test_each_class_heatmap_peaks_on_its_own_object(two_objects):
    examples, explanations = two_objects
    hits = []
    for explanation in explanations:
        image, objects = examples[explanation.image_index]
        heatmap = resize_heatmap(explanation.heatmap, image.shape[:2])
        row, column = np.unravel_index(np.argmax(heatmap), heatmap.shape)
        [own] = [o for o in objects if synthetic.CLASS_NAMES.index(o.name) == explanation.class_id]
        xmin, ymin, xmax, ymax = own.box
        hits.append(xmin <= column <= xmax and ymin <= row <= ymax)
    rate = np.mean(hits)
    print("\ntwo objects: the heatmap peaks on its own object in %.1f%% of %d heatmaps"
          % (100 * rate, len(hits)))
    assert rate >= 0.95
