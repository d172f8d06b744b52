"""l2caf.models.randomization: the blocks of a slim and a Keras model from the output down,
the weights a randomisation touches (and only those), the seed, and the files on disk."""
import os

import numpy as np
import pytest

from l2caf.files import sha256
from l2caf.models import randomization
from tests.helpers import DEMO_CHECKPOINT, DEMO_DIR

DEMO_BLOCKS = ["Logits", "final_block", "dense_block2", "transition_block1", "dense_block1",
               "conv1"]
KERAS_DEMO = os.path.join(DEMO_DIR, "demo_keras.keras")


@pytest.fixture(scope="module")
def slim_model():
    from l2caf.models.slim import Model
    model = Model.load("demo_densenet", DEMO_CHECKPOINT)
    yield model
    model.close()


def slim_values(model):
    """{variable name: value} of every variable of the network."""
    return dict(zip((variable.op.name for variable in model.model_variables),
                    model.session.run(model.model_variables)))


def test_the_slim_blocks_are_its_end_points_from_the_output_down(slim_model):
    found = randomization.blocks(slim_model)
    assert [block.name for block in found] == DEMO_BLOCKS
    names = [weight.op.name for block in found for weight in block.weights]
    assert len(names) == len(set(names))
    # Every trainable weight, in its end point's block; no moving statistics.
    assert not [name for name in names if "moving_" in name]
    trainable = [variable.op.name for variable in slim_model.model_variables
                 if "moving_" not in variable.op.name]
    assert sorted(names) == sorted(trainable)
    for block in found:
        for weight in block.weights:
            scope = weight.op.name.split("/")[1]
            # conv1's batch norm is the top scope BatchNorm: it belongs to conv1
            assert scope.lower() == block.name.lower() or (block.name, scope) == ("conv1",
                                                                                   "BatchNorm")


def test_a_randomisation_touches_only_the_weights_it_names(slim_model):
    randomizer = randomization.Randomizer(slim_model, seed=0)
    trained = slim_values(slim_model)
    randomizer.randomize(["final_block", "dense_block1"])
    named = {weight.op.name for block in randomizer.blocks
             if block.name in ("final_block", "dense_block1") for weight in block.weights}
    now = slim_values(slim_model)
    for name, value in now.items():
        if name in named:
            assert not np.array_equal(value, trained[name]), name
        else:
            assert np.array_equal(value, trained[name]), name  # bit-equal
    randomizer.restore()
    assert all(np.array_equal(value, trained[name])
               for name, value in slim_values(slim_model).items())


def test_a_block_is_drawn_from_the_seed_and_its_place_whatever_else_is_random(slim_model):
    randomizer = randomization.Randomizer(slim_model, seed=5)
    position = DEMO_BLOCKS.index("dense_block2")
    names = [weight.op.name for weight in randomizer.blocks[position].weights]
    randomizer.randomize(DEMO_BLOCKS[:position + 1])  # cascading, down to it
    cascading = {name: slim_values(slim_model)[name] for name in names}
    randomizer.randomize(["dense_block2"])  # independent
    independent = {name: slim_values(slim_model)[name] for name in names}
    randomizer.restore()
    again = randomization.Randomizer(slim_model, seed=5).random_weights(position)
    other_seed = randomization.Randomizer(slim_model, seed=6).random_weights(position)
    for name, value, drawn, other in zip(names, cascading.values(), again, other_seed):
        assert np.array_equal(value, independent[name])
        assert np.array_equal(value, drawn)
        assert not np.array_equal(value, other)


def test_the_random_network_predicts_otherwise_and_the_checkpoint_is_untouched(slim_model):
    before = {name: sha256(os.path.join(DEMO_DIR, name)) for name in os.listdir(DEMO_DIR)}
    images = np.random.default_rng(0).uniform(0, 255, (2, 168, 168, 3)).astype(np.float32)
    trained = slim_model.class_probabilities(images)
    randomizer = randomization.Randomizer(slim_model, seed=0)
    randomizer.randomize(DEMO_BLOCKS)
    random = slim_model.class_probabilities(images)
    randomizer.restore()
    assert np.all(np.isfinite(random)) and np.abs(random - trained).max() > 0.1
    assert np.array_equal(slim_model.class_probabilities(images), trained)
    assert before == {name: sha256(os.path.join(DEMO_DIR, name))
                      for name in os.listdir(DEMO_DIR)}


def test_an_unknown_block_is_refused_naming_the_blocks(slim_model):
    with pytest.raises(ValueError, match="no block Mixed_5c; the blocks are Logits, "):
        randomization.Randomizer(slim_model).randomize(["Mixed_5c"])


def test_the_keras_blocks_are_its_layers_with_weights_and_only_the_named_one_changes():
    from l2caf.models import keras_loading
    from l2caf.models.keras import KerasModel
    keras_model = keras_loading.load_keras_model(KERAS_DEMO, False)
    with KerasModel(keras_model) as model:
        randomizer = randomization.Randomizer(model, seed=0)
        layers = [layer.name for layer in keras_model.layers if layer.trainable_weights]
        assert randomizer.names == layers[::-1]
        trained = [weight.numpy() for weight in keras_model.weights]
        randomizer.randomize([randomizer.names[1]])
        changed = {id(weight) for weight in randomizer.blocks[1].weights}
        for weight, value in zip(keras_model.weights, trained):
            assert np.array_equal(weight.numpy(), value) != (id(weight) in changed)
        randomizer.restore()
        assert all(np.array_equal(weight.numpy(), value)
                   for weight, value in zip(keras_model.weights, trained))


def test_truncated_normal_values_stay_within_two_deviations_of_their_fan_in():
    values = randomization.truncated_normal((3, 3, 16, 32), np.random.default_rng(0))
    limit = randomization.TRUNCATION / np.sqrt(3 * 3 * 16)
    assert values.dtype == np.float32 and values.shape == (3, 3, 16, 32)
    assert np.abs(values).max() <= limit
    # the truncated standard normal's deviation is 0.880
    assert np.std(values) * np.sqrt(3 * 3 * 16) == pytest.approx(0.88, abs=0.03)
    vector = randomization.truncated_normal((64,), np.random.default_rng(0))
    assert np.abs(vector).max() <= randomization.TRUNCATION
