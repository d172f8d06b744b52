"""Re-initialising named blocks of a model's weights in memory, for the model parameter
randomisation test of Adebayo et al. ("Sanity Checks for Saliency Maps", NeurIPS 2018).

A block is what a reader recognises of the network, from the output down: for a slim network
(l2caf.models.slim.Model) the variables under one top scope, named as its end point (`Logits`,
`Mixed_5c`, `dense_block2`, ...; a scope that is no end point, such as the batch norm right
after `conv1`, belongs to the block before it); for a Keras model (l2caf.models.keras.
KerasModel) each layer with trainable weights. Only the trainable weights are re-initialised
(kernels, biases, batch norm's scale and offset; not its moving statistics), each from a
truncated normal (at most two standard deviations from 0, as tf.random.truncated_normal) of
standard deviation 1 / sqrt(fan-in) (the kernel's inputs per output; 1 for a vector), which
keeps the activations' scale through the random layers. The values are drawn by numpy from
(seed, the block's place from the output): a block gets the same values whichever blocks are
random with it, and the same seed gives the same network. The weights are changed in the
model's memory (the session's variables, the Keras layers'); the files it was loaded from are
never written.
"""
import collections
from typing import Any, List, Sequence

import numpy as np

Block = collections.namedtuple("Block", ["name", "weights"])
Block.__doc__ = """A block of a model: its name and its trainable weights (TensorFlow
variables), in the model's order."""

TRUNCATION = 2.0  # standard deviations, as tf.random.truncated_normal


def blocks(model: Any) -> List[Block]:
    """The blocks of a slim Model or a KerasModel with trainable weights, from the output
    down (see the module docstring)."""
    if hasattr(model, "keras_model"):
        found = [Block(layer.name, list(layer.trainable_weights))
                 for layer in model.keras_model.layers if layer.trainable_weights]
    else:
        found = _slim_blocks(model)
    return found[::-1]


def _slim_blocks(model):
    from nets.tf_slim_compat import tf
    trainable = {variable.op.name for variable in
                 model.graph.get_collection(tf.compat.v1.GraphKeys.TRAINABLE_VARIABLES)}
    prefix = model.network.scope + "/"
    # An end point's name as a scope spells it (resnet's end points carry the network's scope).
    end_points = {name.split("/")[-1].lower(): name.split("/")[-1] for name in model.end_points}
    found: "collections.OrderedDict[str, list]" = collections.OrderedDict()
    for variable in model.model_variables:
        name = variable.op.name
        if name not in trainable:
            continue
        scope = name[len(prefix):].split("/")[0] if name.startswith(prefix) else name
        block = end_points.get(scope.lower())
        if block is None:
            block = next(reversed(found)) if found else scope
        found.setdefault(block, []).append(variable)
    return [Block(name, weights) for name, weights in found.items()]


def truncated_normal(shape: Sequence[int], generator: np.random.Generator) -> np.ndarray:
    """Values of a normal of mean 0 and standard deviation 1 / sqrt(fan-in), those further
    than TRUNCATION standard deviations drawn again, float32 of `shape`; fan-in: the product
    of every dimension but the last (1 for a vector)."""
    shape = tuple(int(side) for side in shape)
    fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    values = generator.standard_normal(shape)
    outside = np.abs(values) > TRUNCATION
    while outside.any():
        values[outside] = generator.standard_normal(int(outside.sum()))
        outside = np.abs(values) > TRUNCATION
    return (values / np.sqrt(fan_in)).astype(np.float32)


class Randomizer(object):
    """Sets a model's blocks (see `blocks`) to random or to their trained weights.

    model: a slim Model or a KerasModel, its weights loaded. seed: what the random weights
    are drawn from. `blocks` lists the block names, from the output down. The trained
    weights are read once, here, and written back by `randomize` for the blocks not named.
    """

    def __init__(self, model: Any, seed: int = 0):
        self.model, self.seed = model, int(seed)
        self.blocks = blocks(model)
        if not self.blocks:
            raise ValueError("%s has no trainable weights to randomise" % model.name)
        self.names = [block.name for block in self.blocks]
        self._trained = [self._read(block.weights) for block in self.blocks]
        self._random = set()  # the blocks random now

    def random_weights(self, position: int) -> List[np.ndarray]:
        """The random values of the block at `position` from the output (its weights'
        shapes), seeded by (seed, position)."""
        generator = np.random.default_rng([self.seed, position])
        return [truncated_normal(values.shape, generator) for values in self._trained[position]]

    def randomize(self, names: Sequence[str]) -> None:
        """Makes the blocks `names` random and every other block trained (only the blocks
        whose state changes are written)."""
        unknown = [name for name in names if name not in self.names]
        if unknown:
            raise ValueError("no block %s; the blocks are %s"
                             % (", ".join(unknown), ", ".join(self.names)))
        wanted = {self.names.index(name) for name in names}
        for position in sorted(wanted ^ self._random):
            values = self.random_weights(position) if position in wanted \
                else self._trained[position]
            self._write(self.blocks[position].weights, values)
        self._random = wanted

    def restore(self) -> None:
        """Every block trained again."""
        self.randomize([])

    def _read(self, weights):
        if hasattr(self.model, "session"):
            return self.model.session.run(weights)
        return [weight.numpy() for weight in weights]

    def _write(self, weights, values):
        if hasattr(self.model, "session"):
            # Each variable's initializer, its initial value fed: no op added to the graph.
            self.model.session.run([weight.initializer for weight in weights],
                                   {weight.initializer.inputs[1]: value
                                    for weight, value in zip(weights, values)})
        else:
            for weight, value in zip(weights, values):
                weight.assign(value)
