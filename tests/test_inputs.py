"""The library's inputs and targets (l2caf.inputs), the same for every method: every form of
images and classes a user may have gives the same explanations, and every mistake is an
L2CAFError naming what was given and what is expected."""
import numpy as np
import pytest
import tensorflow as tf

from l2caf import inputs, preprocessing
from l2caf.errors import ConfigError, L2CAFError
from l2caf.methods import L2CAF, GradCAM, RandomMap
from l2caf.synthetic import generate_examples

SIZE = 168  # the demo model's input


@pytest.fixture(scope="module")
def model(demo_model):
    return demo_model  # conftest.py's, shared with other modules


@pytest.fixture(scope="module")
def images():
    """Three uint8 synthetic images at the input size."""
    return np.stack([image for image, _ in generate_examples(3, SIZE, seed=11)])


def pairs_and_maps(explanations):
    return [(e.image_index, e.class_id) for e in explanations], \
        np.stack([e.heatmap for e in explanations])


def test_every_form_of_images_gives_the_same_explanations(model, images):
    explainer = GradCAM(model)
    expected_pairs, expected = pairs_and_maps(explainer(images, [1, 2, 3]))
    assert expected_pairs == [(0, 1), (1, 2), (2, 3)]
    forms = {
        "list": list(images),
        "tuple of an image and a batch": (images[0], images[1:]),
        "float batch": images.astype(np.float32),
        "tensor": tf.constant(images),
        "dataset of batches": tf.data.Dataset.from_tensor_slices(images).batch(2),
        "dataset of images": tf.data.Dataset.from_tensor_slices(images),
        "generator": (image for image in images),
    }
    for name, form in forms.items():
        pairs, maps = pairs_and_maps(explainer(form, [1, 2, 3]))
        assert pairs == expected_pairs, name
        np.testing.assert_allclose(maps, expected, atol=1e-6, err_msg=name)
    # One image alone, not in a list.
    [(pair, heatmap)] = zip(*pairs_and_maps(explainer(images[1], 2)))
    assert pair == (0, 2)
    np.testing.assert_allclose(heatmap, expected[1], atol=1e-6)


def test_streams_go_through_in_chunks_with_indices_and_keys_running_on(model, images,
                                                                     monkeypatch):
    monkeypatch.setattr(inputs, "STREAM_IMAGES", 2)
    stream = RandomMap(model, seed=5)(iter(list(images)), [0, 1, 2])
    whole = RandomMap(model, seed=5)(images, [0, 1, 2])
    assert [(e.image_index, e.class_id) for e in stream] == [(0, 0), (1, 1), (2, 2)]
    for mine, theirs in zip(stream, whole):  # seeded by the default keys "0", "1", "2"
        np.testing.assert_array_equal(mine.heatmap, theirs.heatmap)
    with pytest.raises(ConfigError, match="classes has 2 entries for at least 3 images"):
        RandomMap(model)(iter(list(images)), [0, 1])
    with pytest.raises(ConfigError, match="classes has 4 entries for 3 images"):
        RandomMap(model)(iter(list(images)), [0, 1, 2, 3])


def test_every_form_of_classes_names_the_same_pairs(model, images):
    explainer = RandomMap(model)
    forms = {
        "one int for all": (3, [(0, 3), (1, 3), (2, 3)]),
        "a numpy integer for all": (np.int32(3), [(0, 3), (1, 3), (2, 3)]),
        "one per image": ([0, 4, 5], [(0, 0), (1, 4), (2, 5)]),
        "numpy, one per image": (np.array([0, 4, 5], np.int64), [(0, 0), (1, 4), (2, 5)]),
        "a list per image": ([[0, 1], [], [5]], [(0, 0), (0, 1), (2, 5)]),
        "numpy [N, k]": (np.array([[0, 1], [2, 3], [4, 5]], np.uint8),
                         [(0, 0), (0, 1), (1, 2), (1, 3), (2, 4), (2, 5)]),
        "a tensor": (tf.constant([0, 4, 5]), [(0, 0), (1, 4), (2, 5)]),
    }
    for name, (classes, expected) in forms.items():
        assert [(e.image_index, e.class_id) for e in explainer(images, classes)] == \
            expected, name
    top = [model.top_classes(p, 1)[0] for p in model.predict(images).probabilities]
    assert [e.class_id for e in explainer(images)] == top


@pytest.mark.parametrize("classes, message", [
    # xplique's convention, the case: one-hot rows (int and float).
    (np.eye(6, dtype=np.int64)[[1, 2, 3]], r"look like one-hot rows \(3x6 of 0s and one 1 "
                                           r"each\); give class ids, e.g. "
                                           r"np.argmax\(onehot, axis=1\)"),
    ([[0, 1, 0, 0, 0, 0]] * 3, "look like one-hot rows"),
    (np.eye(6)[[1, 2, 3]], r"they are floats \(float64, shape \(3, 6\)\); classes are "
                           r"integer class ids: classes.astype\(int\) \(one-hot rows\? "
                           r"np.argmax\(onehot, axis=1\)\)"),
    (2.0, r"GradCAM explains classes: 2.0 \(classes, for every image\) is a float"),
    ([1, 2.5, 3], r"2.5 \(classes\[1\], of image 1\) is a float"),
    (True, "True is a boolean, not a class id"),
    ("cat", "'cat' .* is a string; classes are class ids"),
    ([0, 1, 6], r"GradCAM explains classes: 6 is not a class id 0..5 of demo_densenet "
                r"\(classes\[2\], of image 2\)"),
    ([[0], [np.int64(-1)], [1]], r"-1 is not a class id 0..5 of demo_densenet "
                                 r"\(classes\[1\]\[0\], of image 1\)"),
    ([0, None, 1], "None is not a class id 0..5"),
    ([0, 1], r"classes has 2 entries for 3 images: give classes one per image \(or one int "
             r"for all images; a list per image for several classes, e.g. \[\[3, 5\]\] for "
             r"one image\)"),
    ([0, 1, 2, 3], "classes has 4 entries for 3 images"),
    (np.zeros((3, 1, 1), np.int64), r"an array of shape \(3, 1, 1\)"),
    (np.array(["a", "b", "c"]), "they have dtype <U1; classes are integer class ids"),
])
def test_bad_classes_are_clear_errors(model, images, classes, message):
    with pytest.raises(ConfigError, match=message):
        GradCAM(model)(images, classes)


@pytest.mark.parametrize("keys, message", [
    ("cat.jpg", r"keys must be a list of names, one per image \(e.g. keys=\[\"cat.jpg\"\]\)"),
    (["a", "b"], "keys has 2 entries for 3 images"),
    (["a", 1.5, "c"], r"keys\[1\] is 1.5; a key is a name \(str\) or a number \(int\)"),
])
def test_bad_keys_are_clear_errors(model, images, keys, message):
    with pytest.raises(ConfigError, match=message):
        RandomMap(model)(images, 0, keys)


def test_keys_may_be_names_or_numbers(model, images):
    named = RandomMap(model)(images, 0, [0, np.int64(1), "2"])
    default = RandomMap(model)(images, 0)
    for mine, theirs in zip(named, default):
        np.testing.assert_array_equal(mine.heatmap, theirs.heatmap)


def image_list(bad, at=2):
    """Three good images with `bad` at index `at`."""
    good = [np.full((40, 50, 3), 100, np.uint8)] * 3
    good[at] = bad
    return good


@pytest.mark.parametrize("images, message", [
    (None, "images is None: give an image, a list of images, a batch or a tf.data.Dataset"),
    ("cat.jpg", r"images is a path \('cat.jpg'\): read it with l2caf.read_image\(path\)"),
    ([], "images holds no image"),
    (image_list(None), "image 2 is None"),
    (image_list("cat.jpg"), r"image 2 is a path \('cat.jpg'\)"),
    (image_list(np.zeros((40, 50), np.uint8)),
     r"image 2 has 1 channel \(shape \(40, 50\)\); the model takes 3 \(RGB\): a gray image; "
     r"give it as RGB, np.stack\(\[image\] \* 3, axis=-1\)"),
    (image_list(np.zeros((40, 50, 4), np.uint8)),
     r"image 2 has 4 channels \(shape \(40, 50, 4\)\); the model takes 3 \(RGB\): drop the "
     r"alpha channel \(image\[..., :3\]\)"),
    (image_list(np.zeros((0, 50, 3), np.uint8)), r"image 2 is empty \(shape \(0, 50, 3\)\)"),
    (image_list(np.zeros((40, 50, 3), np.complex64)),
     "image 2 has dtype complex64; images are uint8 or float arrays of RGB values 0..255"),
    (image_list(np.zeros((40, 50, 3), bool)), "image 2 has dtype bool"),
    (image_list(np.full((40, 50, 3), np.nan, np.float32)), "image 2 holds NaN or infinite"),
    (image_list(np.linspace(0, 1, 6000).reshape(40, 50, 3).astype(np.float32)),
     r"image 2 has float values in 0..1 \(0..1\); images are RGB 0..255: pass images \* 255, "
     r"or preprocessed=True if it is the network's input already"),
    (image_list(np.full((40, 50, 3), -0.5, np.float32)),
     r"image 2 has values -0.5..-0.5 \(float32\), outside 0..255: images are RGB 0..255 \(if "
     r"it is the network's input already, pass preprocessed=True\)"),
    (image_list(np.full((40, 50, 3), 60000, np.uint16)),
     r"image 2 has values 60000..60000 \(uint16\), outside 0..255.*16-bit images: \(image / "
     r"257\).astype\(np.uint8\)"),
    (image_list(np.zeros((2, 2, 40, 50, 3), np.uint8)), r"image 2 has shape \(2, 2, 40, 50, 3\)"),
    (np.zeros((4, 40, 50, 3), np.uint8)[[0, 1]].tolist() + [[[1.5]]],
     r"image 2 has 1 channel \(shape \(1, 1\)\)"),
    (tf.data.Dataset.from_tensor_slices((np.zeros((2, 8, 8, 3), np.uint8), [0, 1])),
     r"gives tuple elements \(image 0 on\), e.g. \(images, labels\) pairs: give the images "
     r"alone \(for a tf.data.Dataset: dataset.map\(lambda images, labels: images\)\) and the "
     r"labels as classes"),
    (42, "images must be an image, a list of images, a batch or an iterable of them"),
])
def test_bad_images_are_clear_errors_naming_the_image(model, images, message):
    with pytest.raises(ConfigError, match=message):
        GradCAM(model)(images)


def test_a_bad_image_in_a_batch_is_named_by_its_index(model):
    batch = np.full((4, 30, 30, 3), 10.0, np.float32)
    batch[2, 0, 0, 0] = np.inf
    with pytest.raises(L2CAFError, match="image 3 holds NaN or infinite values"):
        GradCAM(model)([np.zeros((20, 20, 3), np.uint8), batch])  # images 0, then 1..4
    batch[2] = 0.5
    with pytest.raises(L2CAFError, match="image 3 has float values in 0..1"):
        GradCAM(model)([np.zeros((20, 20, 3), np.uint8), batch])


def test_float_images_are_0_to_255_whole_numbers_in_0_1_included(model):
    # A dark uint8 image as float (values 0 and 1 only) is 0..255, like its uint8 self.
    dark = np.random.default_rng(0).integers(0, 2, (SIZE, SIZE, 3)).astype(np.uint8)
    as_uint8 = GradCAM(model)(dark, 1)[0].heatmap
    np.testing.assert_array_equal(GradCAM(model)(dark.astype(np.float64), 1)[0].heatmap,
                                  as_uint8)
    np.testing.assert_array_equal(GradCAM(model)(np.zeros((SIZE, SIZE, 3)), 1)[0].heatmap,
                                  GradCAM(model)(np.zeros((SIZE, SIZE, 3), np.uint8), 1)[0]
                                  .heatmap)


def test_preprocessed_batches_are_the_network_input(model, images):
    network_input = preprocessing.preprocess(images.astype(np.float32), model.preprocessing)
    expected = GradCAM(model)(images, [1, 2, 3])
    given = GradCAM(model)(network_input, [1, 2, 3], preprocessed=True)
    for mine, theirs in zip(given, expected):
        np.testing.assert_allclose(mine.heatmap, theirs.heatmap, atol=1e-4)
    # Without the switch the network input is refused (a silently wrong map before).
    with pytest.raises(ConfigError, match=r"image 0 has values .*outside 0..255.*pass "
                                          r"preprocessed=True"):
        GradCAM(model)(network_input, [1, 2, 3])
    with pytest.raises(ConfigError, match=r"image 0 has shape \(100, 100, 3\); with "
                                          r"preprocessed=True images are the network's input, "
                                          r"\(168, 168, 3\)"):
        GradCAM(model)(np.zeros((1, 100, 100, 3), np.float32), preprocessed=True)
    prediction = GradCAM(model).predict(network_input, preprocessed=True)
    np.testing.assert_allclose(prediction.probabilities,
                               model.predict(model.prepare(images)).probabilities, atol=1e-5)


def test_class_oblivious_takes_no_classes_and_a_given_prediction_must_fit(model, images):
    oblivious = L2CAF(model, "cls_oblivious", {"max_iters": 2})
    assert [e.class_id for e in oblivious(images[:2])] == [None, None]
    assert [e.class_id for e in oblivious(images[:2], [[None], [None]])] == [None, None]
    with pytest.raises(ConfigError, match="L2CAF makes one class-free heatmap per image "
                                          r"\(cls_oblivious\): leave classes None"):
        oblivious(images[:2], [1, 2])
    prediction = GradCAM(model).predict(images[:2])
    with pytest.raises(ConfigError, match="prediction holds 2 images, but images hold 3"):
        GradCAM(model)(images, prediction=prediction)
