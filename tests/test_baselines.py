"""The CAM and Grad-CAM baselines: their known identities, a numpy Grad-CAM, clear errors, and
the fast visualiser's --method switch."""
import os

import numpy as np
import pytest

from l2caf.errors import ConfigError
from l2caf.methods import CAM, GradCAM
from l2caf.models.slim import Model
from l2caf.cli.visualize_fast import main
from l2caf.files import read_json_lines as read_results
from l2caf.runs.folder import load_heatmap
from l2caf.synthetic import CLASS_NAMES, generate_examples, make_dataset
from nets.tf_slim_compat import tf
from tests.helpers import DEMO_CHECKPOINT, DEMO_DIR, randomize_weights

# Marked slow: the tests that build InceptionV1 or run the visualisers end to end.


def random_images(count, size, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count, size, size, 3)).astype(np.float32)


def scaled_to_max_1(maps):
    maps = np.maximum(maps, 0.0)
    return maps / maps.max(axis=(1, 2), keepdims=True)


@pytest.fixture(scope="module")
def inception():
    """InceptionV1 with seeded random weights (He-scaled, so that activations keep their
    scale): its head is a 7x7 mean and a linear 1x1 conv."""
    model = Model("inception_v1", 1001)
    randomize_weights(model)
    yield model
    model.close()


@pytest.mark.slow
def test_cam_is_the_head_weighted_last_activation_and_equals_gradcam(inception):
    images = random_images(2, 224)
    activation = inception.session.run(inception.filter.activation, {inception.images: images})
    [weights] = [v for v in inception.model_variables
                 if v.op.name == "InceptionV1/Logits/Conv2d_0c_1x1/weights"]
    weights = inception.session.run(weights)[0, 0]
    # By hand: the head's weights of the class's output (class id + 1: output 0 is background).
    raw_maps = np.einsum("nhwc,ck->nkhw", activation, weights[:, 1:])
    # Classes whose maps are partly negative, so that the ReLU matters.
    negative_share = np.mean(raw_maps < 0, axis=(2, 3))
    mixed = [np.flatnonzero((share > 0.2) & (share < 0.8))[:2] for share in negative_share]
    classes = [[int(c) for c in mixed[0]], [int(mixed[1][0])]]
    cam = CAM(inception)(images, classes)
    gradcam = GradCAM(inception)(images, classes)
    pairs = [(0, classes[0][0]), (0, classes[0][1]), (1, classes[1][0])]
    assert [(e.image_index, e.class_id) for e in cam] == pairs
    assert [(e.image_index, e.class_id) for e in gradcam] == pairs

    expected = scaled_to_max_1(np.stack([raw_maps[index, class_id] for index, class_id in pairs]))
    assert np.all(np.count_nonzero(expected, axis=(1, 2)) < 49)
    np.testing.assert_allclose(np.stack([e.heatmap for e in cam]), expected, atol=1e-5)
    # Grad-CAM at the last layer of such a head: the same map, scaled by 1 / (H W).
    np.testing.assert_allclose(np.stack([e.heatmap for e in gradcam]), expected, atol=1e-5)
    for explanation in cam + gradcam:
        assert explanation.heatmap.shape == (7, 7)
        assert (explanation.loss, explanation.iterations) == (None, 0)


@pytest.mark.slow
def test_gradcam_at_an_inner_layer_equals_numpy_from_each_rows_gradient():
    num_classes = len(CLASS_NAMES)
    # The shipped model, whose maps are not all cut by the ReLU (random weights' may be).
    model = Model.load("demo_densenet", DEMO_CHECKPOINT, layer="dense_block1/conv_block2")
    assert model.num_classes == num_classes  # read from the checkpoint
    images = model.prepare([image for image, _ in generate_examples(2, 168, seed=5)])
    classes = [[0, 4], [4]]
    explanations = GradCAM(model)(images, classes)

    with model.graph.as_default():
        gradients = [tf.gradients(model.logits[:, class_id], model.filter.activation)[0]
                     for class_id in range(num_classes)]
    for explanation in explanations:
        image = images[explanation.image_index:explanation.image_index + 1]
        activation, gradient = model.session.run(
            [model.filter.activation, gradients[explanation.class_id]], {model.images: image})
        weights = gradient[0].mean(axis=(0, 1))
        expected = scaled_to_max_1((activation[0] * weights).sum(axis=2)[None])[0]
        np.testing.assert_allclose(explanation.heatmap, expected, rtol=1e-4, atol=1e-5)
        assert explanation.heatmap.shape == model.filter_size
    # The two classes of image 0 differ, and class 4 differs between the images.
    assert not np.allclose(explanations[0].heatmap, explanations[1].heatmap)
    assert not np.allclose(explanations[1].heatmap, explanations[2].heatmap)
    model.close()


@pytest.mark.slow
def test_cam_without_a_linear_head_or_off_the_last_layer_is_a_clear_error():
    densenet = Model("demo_densenet", len(CLASS_NAMES))
    with pytest.raises(ConfigError, match="CAM needs a head that is a global mean followed by "
                                          "a linear layer, and demo_densenet has none; use "
                                          "method gradcam"):
        CAM(densenet)
    densenet.close()
    inner = Model("inception_v1", 1001, layer="Mixed_4f")
    with pytest.raises(ConfigError, match="CAM maps the layer Mixed_5c, which feeds "
                                          "inception_v1's linear head, not Mixed_4f; use "
                                          "method gradcam"):
        CAM(inner)
    inner.close()


def test_the_top_class_by_default_and_bad_class_ids_are_clear_errors(demo_model):
    model = demo_model  # conftest.py's, built once
    images = random_images(2, 168, seed=3)
    top = [model.top_classes(p, 1)[0] for p in model.predict(images).probabilities]
    explainer = GradCAM(model)
    assert [(e.image_index, e.class_id) for e in explainer(images)] == [(0, top[0]),
                                                                        (1, top[1])]
    for bad in (6, -1, None):
        with pytest.raises(ConfigError, match="GradCAM explains classes: %r is not a class id "
                                              "0..5 of demo_densenet" % (bad,)):
            explainer(images, [[0], [bad]])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Fast visualiser arguments: the shipped demo model, four synthetic images."""
    folder = tmp_path_factory.mktemp("baselines")
    make_dataset(str(folder / "data"), 4, image_size=64, progress=False)
    return ["--network", "demo_densenet", "--checkpoint", DEMO_CHECKPOINT,
            "--labels", os.path.join(DEMO_DIR, "labels.txt"),
            "--images", str(folder / "data" / "images"),
            "--annotations", str(folder / "data" / "annotations"), "--explain_gt", "true",
            "--max_iters", "10", "--check_every", "5", "--batch_size", "3"]


@pytest.mark.slow
def test_fast_visualiser_method_gradcam_writes_the_same_results(dataset, tmp_path):
    assert main(dataset + ["--output_dir", str(tmp_path / "l2caf")]) == 0
    assert main(dataset + ["--output_dir", str(tmp_path / "gradcam"), "--method", "gradcam"]) == 0
    l2caf = read_results(str(tmp_path / "l2caf" / "results.jsonl"))
    gradcam = read_results(str(tmp_path / "gradcam" / "results.jsonl"))
    assert [(r["image"], r["class_id"]) for r in gradcam] == \
        [(r["image"], r["class_id"]) for r in l2caf]
    assert all(r["method"] == "l2caf" for r in l2caf)
    filter_size = load_heatmap(l2caf[0]["heatmap"], str(tmp_path / "l2caf")).shape
    for mine, theirs in zip(gradcam, l2caf):
        assert list(mine) == list(theirs)  # the same fields, in the same order
        assert (mine["method"], mine["iterations"], mine["final_loss"], mine["filter_type"]) \
            == ("gradcam", 0, None, None)
        assert mine["predictions"] == theirs["predictions"]
        assert (mine["ground_truth"], mine["image_size"]) == \
            (theirs["ground_truth"], theirs["image_size"])
        heatmap = load_heatmap(mine["heatmap"], str(tmp_path / "gradcam"))
        assert heatmap.shape == filter_size and heatmap.max() == pytest.approx(1.0)


@pytest.mark.parametrize("extra, message", [
    (["--method", "cam"], "CAM needs a head that is a global mean followed by a linear layer"),
    (["--method", "gradcam", "--caf_variant", "cls_oblivious"],
     "method gradcam explains classes: it needs caf_variant cls_specific"),
    (["--method", "gradcam", "--save_gif", "true"], "set save_gif false"),
    (["--method", "gradient"], "--method must be one of l2caf, opticam, cam, gradcam"),
])
def test_bad_method_settings_are_clear_errors(dataset, tmp_path, capsys, extra, message):
    assert main(dataset + ["--output_dir", str(tmp_path)] + extra) == 2
    assert message in capsys.readouterr().err
