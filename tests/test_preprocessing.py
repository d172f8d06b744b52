"""Each network's preprocessing: the formulas, the inverse, and one function for numpy and
TensorFlow."""
import numpy as np
import pytest

from l2caf import preprocessing
from nets.tf_slim_compat import tf

ALL = preprocessing.SLIM_PREPROCESSING + preprocessing.KERAS_PREPROCESSING


def rgb(count=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count, 5, 4, 3)).astype(np.float32)


def test_the_formulas():
    images = rgb()
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    expected = {
        "inception": images / 127.5 - 1.0, "tf": images / 127.5 - 1.0,
        "imagenet_mean_std": (images / 255.0 - mean) / std,
        "torch": (images / 255.0 - mean) / std, "none": images,
        "caffe": images[..., ::-1] - np.array([103.939, 116.779, 123.68])}
    for name, values in expected.items():
        np.testing.assert_allclose(preprocessing.preprocess(images, name), values, rtol=1e-5,
                                   atol=1e-4, err_msg=name)


@pytest.mark.parametrize("name", ALL)
def test_unpreprocess_inverts_and_tensors_give_the_numpy_values(name):
    images = rgb()
    inputs = preprocessing.preprocess(images, name)
    np.testing.assert_allclose(preprocessing.unpreprocess(inputs, name), images, atol=1e-3)
    tensor = preprocessing.preprocess(tf.constant(images), name)
    np.testing.assert_array_equal(np.asarray(tensor), inputs)


def test_the_zero_of_the_network_input():
    grey = np.full((1, 1, 1, 3), 127.5, np.float32)
    np.testing.assert_allclose(preprocessing.unpreprocess(np.zeros((1, 1, 1, 3)), "inception"),
                               grey)
    np.testing.assert_allclose(
        preprocessing.unpreprocess(np.zeros((1, 1, 1, 3)), "caffe")[0, 0, 0],
        [123.68, 116.779, 103.939], rtol=1e-6)


def test_an_unknown_preprocessing_is_an_error():
    with pytest.raises(ValueError, match="unknown preprocessing 'bgr'"):
        preprocessing.preprocess(rgb(), "bgr")
