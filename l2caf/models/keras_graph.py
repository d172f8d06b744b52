"""The layer graph of a Keras model, walked by l2caf itself.

A functional or Sequential model (Keras 3 or tf-keras) is a graph of layer calls: Keras
records one node per call when the model is built on symbolic inputs. `LayerGraph` reads
those nodes once, nested models flattened into their own layers (named
`outer/inner`), and runs them on real tensors the way Keras's own `Functional.call` does
(Keras 3's `Functional._run_through_graph`, tf-keras's `_run_internal_graph`): in order of
depth, each layer called on the values its node names, with `training=False`. Calling a
layer on real tensors creates no Keras node, so walking the graph leaves the model as it
was. What l2caf changes (the filter at one layer, the logits before a softmax) are edits
of single steps of the walk, inside l2caf's own tf.functions.
"""
import collections
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Optional, Sequence, Tuple

import keras

from l2caf.errors import ConfigError
from nets.tf_slim_compat import tf


def functional_graph(layer: Any) -> Any:
    """The functional graph inside `layer`: a Keras 3 functional model, a built Keras 3
    Sequential's functional model, a tf-keras graph network, or None (a plain layer, a
    subclassed model)."""
    functional = getattr(layer, "_functional", None)  # a built Keras 3 Sequential
    if functional is not None:
        return functional
    if getattr(layer, "_is_graph_network", False):  # tf-keras functional and Sequential
        return layer
    if hasattr(layer, "_nodes_by_depth") and hasattr(layer, "_run_through_graph"):
        return layer  # Keras 3 functional
    return None


def _static_shape(tensor):
    shape = tensor.shape
    return tuple(shape.as_list()) if isinstance(shape, tf.TensorShape) else tuple(shape)


def _merged(known, shape):
    """Two static shapes of one value (a nested model's output seen inside and outside):
    each dimension known in either."""
    if known is None or len(known) != len(shape):
        return shape
    return tuple(a if a is not None else b for a, b in zip(known, shape))


class Step(object):
    """One layer call of the graph: `name` (nested models' names first, `/` between),
    the layer (or Keras 3 operation), and the values (ints) it reads and makes."""

    def __init__(self, name: str, operation: Any, node: Any, inputs: Iterable[int],
                 outputs: Iterable[int]):
        self.name, self.operation, self.node = name, operation, node
        self.inputs, self.outputs = tuple(inputs), tuple(outputs)
        self._keras3 = hasattr(node, "operation")
        self._symbols = list(node.input_tensors if self._keras3 else node.keras_inputs)

    def __call__(self, values: dict) -> list:
        """The step's outputs (a flat list) from `values` {value: tensor}."""
        if self._keras3:
            args, kwargs = self.node.arguments.fill_in(
                {id(symbol): values[value] for symbol, value in zip(self._symbols, self.inputs)})
            # As Keras 3's Functional.call: the call context's training flag overrides.
            if "training" in getattr(self.operation, "_call_context_args", ()) or \
                    getattr(self.operation, "_call_has_training_arg", False):
                kwargs["training"] = False
            return keras.tree.flatten(self.operation(*args, **kwargs))
        listed = collections.defaultdict(list)  # tf-keras pops one value per use
        for symbol, value in zip(self._symbols, self.inputs):
            listed[str(id(symbol))].append(values[value])
        args, kwargs = self.node.map_arguments(listed)
        spec = getattr(self.operation, "_call_spec", None)
        if spec is not None and spec.expects_training_arg:
            # As tf-keras: a training flag given at the call stays, else the context's.
            kwargs.setdefault("training", False)
        return tf.nest.flatten(self.operation(*args, **kwargs))


class LayerGraph(object):
    """The layer calls of a functional or Sequential Keras model, nested models flattened,
    in an order that computes every value before its use.

    inputs, outputs: the model's input and output values (ints, flat); input_dtype: the
    first input's dtype; output_names: the
    outputs' names; steps: the Steps; shapes: {value: static shape}; producer: {value:
    index of the step that makes it}; consumers: {value: indices of the steps that read it}.
    """

    def __init__(self, model: Any, name: str):
        graph = functional_graph(model)
        if graph is None:
            if type(model).__name__ == "Sequential":
                raise ConfigError("Keras model %s is not built: build it first, e.g. with "
                                  "model.build((None, height, width, channels))" % name)
            raise ConfigError("Keras model %s is a subclassed model, whose layer graph Keras "
                              "does not record; l2caf explains functional and Sequential "
                              "models (wrap its layers in keras.Model(inputs, outputs))" % name)
        self.steps: List[Step] = []
        self.shapes: Dict[int, Tuple[Optional[int], ...]] = {}
        # id of a Keras tensor -> (the tensor, kept alive; its value)
        self._symbols: Dict[int, Tuple[Any, int]] = {}
        self.inputs = [self._new_value(symbol) for symbol in graph.inputs]
        self.input_dtype = tf.as_dtype(graph.inputs[0].dtype) if graph.inputs else tf.float32
        self.outputs = self._add(graph, "", self.inputs)
        self.producer = {value: index for index, step in enumerate(self.steps)
                         for value in step.outputs}
        self.output_names = list(getattr(model, "output_names", None) or [])
        if len(self.output_names) != len(self.outputs):
            self.output_names = [self.steps[self.producer[value]].name
                                 for value in self.outputs]
        self.consumers = collections.defaultdict(list)
        for index, step in enumerate(self.steps):
            for value in set(step.inputs):
                self.consumers[value].append(index)
        self._plans: Dict[Tuple[Tuple[int, ...], FrozenSet[int], FrozenSet[int]], List[int]] = {}

    def _new_value(self, symbol, value=None):
        if value is None:
            value = len(self.shapes)
        self._symbols[id(symbol)] = (symbol, value)
        self.shapes[value] = _merged(self.shapes.get(value), _static_shape(symbol))
        return value

    def _value(self, symbol):
        return self._symbols[id(symbol)][1]

    def _add(self, graph, prefix, input_values):
        """Adds the steps of `graph` (a functional model) whose inputs are `input_values`;
        returns its output values."""
        for symbol, value in zip(graph.inputs, input_values):
            self._new_value(symbol, value)
        for depth in sorted(graph._nodes_by_depth, reverse=True):
            for node in graph._nodes_by_depth[depth]:
                operation = getattr(node, "operation", None) or getattr(node, "layer", None)
                symbols = list(node.input_tensors if hasattr(node, "operation")
                               else node.keras_inputs)
                if operation is None or node.is_input or \
                        any(id(symbol) not in self._symbols for symbol in symbols):
                    continue  # an input, or not computable from the inputs (as Keras)
                outputs = tf.nest.flatten(node.outputs)
                inner = functional_graph(operation)
                if inner is not None:
                    if len(symbols) != len(inner.inputs):
                        raise ConfigError("the nested model %s%s is called on %d tensors but "
                                          "takes %d inputs" % (prefix, operation.name,
                                                               len(symbols), len(inner.inputs)))
                    made = self._add(inner, prefix + operation.name + "/",
                                     [self._value(symbol) for symbol in symbols])
                    for symbol, value in zip(outputs, made):
                        self._new_value(symbol, value)
                    continue
                self.steps.append(Step(prefix + operation.name, operation, node,
                                       [self._value(symbol) for symbol in symbols],
                                       [self._new_value(symbol) for symbol in outputs]))
        return [self._value(symbol) for symbol in graph.outputs]

    def plan(self, targets: Sequence[int], given: Iterable[int] = (),
             cut: Iterable[int] = ()) -> List[int]:
        """Indices of the steps that compute `targets` from the values `given`, in order;
        the inputs of the steps in `cut` are not computed for them."""
        key = (tuple(targets), frozenset(given), frozenset(cut))
        if key not in self._plans:
            needed, pending, seen = set(), list(targets), set(given)
            while pending:
                value = pending.pop()
                if value in seen:
                    continue
                seen.add(value)
                index = self.producer.get(value)
                if index is None:
                    raise ValueError("value %d is neither given nor computed" % value)
                if index not in needed:
                    needed.add(index)
                    if index not in cut:
                        pending.extend(self.steps[index].inputs)
            self._plans[key] = sorted(needed)
        return self._plans[key]

    def run(self, feeds: Dict[int, "tf.Tensor"], targets: Sequence[int],
            edits: Optional[Dict[int, Callable[[Callable[[], List["tf.Tensor"]]],
                                               List["tf.Tensor"]]]] = None,
            cut: Iterable[int] = ()) -> List["tf.Tensor"]:
        """The tensors of `targets` from `feeds` {value: tensor}, running only the steps they
        need. edits: {step index: edit(compute) -> the step's outputs}, where compute() runs
        the step; cut: steps whose edit does not call compute (their inputs are then not
        computed for them)."""
        edits = edits or {}
        values = dict(feeds)
        for index in self.plan(targets, feeds, cut):
            step = self.steps[index]
            compute = lambda step=step: step(values)
            made = edits[index](compute) if index in edits else compute()
            values.update(zip(step.outputs, made))
        return [values[value] for value in targets]

    def traced_shapes(self, input_shape: Sequence[int],
                      dtype: "tf.DType") -> Dict[int, Tuple[Optional[int], ...]]:
        """{value: static shape} of every value when the model runs on [None, *input_shape]
        inputs: the shapes a model without a fixed input size has at that size (traced, not
        run)."""
        shapes = {}

        def trace(images):
            values = {self.inputs[0]: images}
            for step in self.steps:
                if all(value in values for value in step.inputs):
                    values.update(zip(step.outputs, step(values)))
            shapes.update((value, _static_shape(tensor)) for value, tensor in values.items())
            return tf.constant(0)

        tf.function(trace).get_concrete_function(
            tf.TensorSpec((None,) + tuple(input_shape), dtype))
        return shapes
