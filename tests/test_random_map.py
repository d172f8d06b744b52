"""The random floor and the models' class probabilities."""
import numpy as np

from l2caf.models.keras import KerasModel
from l2caf.models.keras_loading import load_keras_model
from l2caf.methods import RandomMap
from tests.helpers import DEMO_DIR


def images_of(size, count=3, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count, size, size, 3)).astype(np.float32)


def test_random_maps_are_seeded_per_image_and_class_whatever_the_batch(demo_model):
    model = demo_model  # conftest.py's, built once
    images = images_of(168)
    maps = RandomMap(model, seed=3)(images, [[0, 1], [1], [2]], keys=["a", "b", "c"])
    assert [(e.image_index, e.class_id) for e in maps] == [(0, 0), (0, 1), (1, 1), (2, 2)]
    for explanation in maps:
        assert explanation.heatmap.shape == model.filter_size
        assert explanation.heatmap.max() == np.float32(1.0)
        assert explanation.heatmap.min() >= 0.0 and explanation.loss is None
    alone = RandomMap(model, seed=3)(images[1:2], [[1]], keys=["b"])
    np.testing.assert_array_equal(alone[0].heatmap, maps[2].heatmap)
    assert not np.array_equal(maps[0].heatmap, maps[1].heatmap)
    other_seed = RandomMap(model, seed=4)(images[1:2], [[1]], keys=["b"])
    assert not np.array_equal(other_seed[0].heatmap, maps[2].heatmap)
    np.testing.assert_allclose(model.class_probabilities(images),
                               model.predict(images).probabilities, rtol=1e-6)
    assert model.input_shape == (168, 168, 3) and model.preprocessing == "imagenet_mean_std"


def test_keras_class_probabilities_are_the_models_softmax():
    network = load_keras_model(f"{DEMO_DIR}/demo_keras.keras")
    with KerasModel(network) as model:
        images = images_of(model.input_shape[0])
        probabilities = model.class_probabilities(images)
        np.testing.assert_allclose(probabilities, network(images).numpy(), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
