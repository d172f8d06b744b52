"""Keras models as l2caf models: functional and Sequential models, Keras 3 or tf-keras
(Keras 2), nested models included, with the filter at any layer with a spatial map or a
square grid of tokens.

Keras 3 runs eagerly and cannot live in a tf.compat.v1 session graph, so these models run
the shared filter, loss and optimisation functions (l2caf.filters, heads, optimize) as
tf.functions, and never touch the graph mode of the slim networks' sessions.

The user's model stays theirs. l2caf never changes it: it reads the model's layer graph
once (l2caf.models.keras_graph) and, inside its own tf.functions, runs that graph itself, calling
each layer on real tensors as Keras's own functional call does; at the filter's layer the
walk multiplies the layer's output by the filter (and, on the cached path, puts the
activation computed once per image in its place). Why a walk rather than wrapping the
layers' calls (what l2caf did before): a wrapped call is a change to the user's objects that
lasts until close(), shows in any other use of the model meanwhile (another thread, another
explainer on the same model), and is lost or kept by accident when the model is copied or
saved; the walk changes nothing, two explainers on one model are two walks, and the steps a
run does not need (the layers before a cached activation, the other outputs of a model with
several) are not even traced. Skip connections across the layer, layers called more than
once (the filter goes on the first call) and nested models run as Keras wires them.

The model's softmax, if the explained output ends in one, is left out of our functions: the
losses see the logits (a Softmax or Activation layer is skipped; a layer with
activation="softmax" gives the logits its activation function records).

Saved models are loaded by l2caf.models.keras_loading (safely: no code from the file).
"""
import collections
import math
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from l2caf import filters, preprocessing
from l2caf.images import size_pair
from l2caf.errors import ConfigError
from l2caf.models.base import (ExplainableModel, Prediction, labels_of, prepare_images,
                               rows_of)
from l2caf.models.keras_graph import LayerGraph
from nets.tf_slim_compat import quiet_stderr, tf

if TYPE_CHECKING:
    from l2caf.heads import Head
    from l2caf.optimize import FunctionProgram, Loop

PREPROCESSING = preprocessing.KERAS_PREPROCESSING
# Layers that pass their input on unchanged at inference, between a pooling and the logits.
_PASS_THROUGH = ("Dropout", "SpatialDropout1D", "Flatten", "Reshape", "Identity")
# ITU-R BT.601 luma, as OpenCV's and Pillow's RGB -> gray conversions.
GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)
_Map = collections.namedtuple("_Map", ["step", "size", "channels", "class_token", "tokens"])
_Map.__doc__ = """A layer's output where a filter can go: its step, (H, W), channels, whether
a class token comes first, and whether it is a token map [N, tokens, C] (else [N, H, W, C])."""


def _map_of(step, shape):
    """The _Map of a step's first output of static `shape`, or None: a spatial map
    [N, H, W, C] of more than 1x1, or tokens [N, T, C] with T = g * g or 1 + g * g, g >= 2."""
    if len(shape) == 4 and None not in shape[1:] and shape[1] * shape[2] > 1:
        return _Map(step, (int(shape[1]), int(shape[2])), int(shape[3]), False, False)
    if len(shape) == 3 and None not in shape[1:]:
        for class_token in (False, True):
            side = math.isqrt(shape[1] - class_token)
            if side >= 2 and side * side == shape[1] - class_token:
                return _Map(step, (side, side), int(shape[2]), class_token, True)
    return None


def _softmax_of(layer):
    """How `layer` ends in a softmax: 'activation' (a layer with activation=softmax),
    'layer' (a Softmax or Activation('softmax') layer), or None."""
    activation = getattr(layer, "activation", None)
    if getattr(activation, "__name__", "") == "softmax":
        return "layer" if type(layer).__name__ == "Activation" else "activation"
    return "layer" if type(layer).__name__ == "Softmax" else None


def _logits_before_softmax(probabilities):
    """The logits a softmax activation made `probabilities` of, in the graph being traced:
    what Keras's softmax records for its losses, else the Softmax operation's input."""
    logits = getattr(probabilities, "_keras_logits", None)
    tensor = probabilities
    while logits is None and getattr(tensor, "op", None) is not None:
        if tensor.op.type == "Softmax":
            logits = tensor.op.inputs[0]
        elif tensor.op.type in ("Identity", "Cast") and tensor.op.inputs:
            tensor = tensor.op.inputs[0]
        else:
            break
    if logits is None:
        raise ConfigError("cannot find the logits before the softmax of layer producing %s"
                          % getattr(probabilities, "name", "the output"))
    return logits


class _Structure(object):
    """What l2caf reads of a Keras model: its layer graph, the input shape at the chosen
    image size, the explained output and its logits, and the layers where a filter can go
    (each layer's first call; only layers that feed the output)."""

    def __init__(self, keras_model: Any, image_size: Union[int, str, Sequence[int]] = 0,
                 output: Optional[Union[str, int]] = None, name: Optional[str] = None):
        self.name = name or keras_model.name
        self.graph = graph = LayerGraph(keras_model, self.name)
        if len(graph.inputs) != 1:
            raise ConfigError("Keras model %s has %d inputs; l2caf explains models of one "
                              "image input" % (self.name, len(graph.inputs)))
        [self.input_value] = graph.inputs
        self.input_shape = self._input_shape(image_size)
        self.input_dtype = graph.input_dtype
        self.output_value, self.output_name = self._output(output)
        shapes = graph.shapes
        if any(None in shape[1:] for value, shape in shapes.items()
               if len(shape) in (3, 4) and value != self.input_value) or \
                any(dimension is None for dimension in shapes[self.input_value][1:]):
            shapes = graph.traced_shapes(self.input_shape, self.input_dtype)
        self.shapes = shapes
        output_shape = shapes[self.output_value]
        if len(output_shape) != 2 or output_shape[1] is None:
            raise ConfigError("output %s of Keras model %s has shape %s; l2caf explains "
                              "class scores [N, classes]" % (self.output_name, self.name,
                                                            output_shape))
        last = graph.steps[graph.producer[self.output_value]]
        self.softmax = _softmax_of(last.operation)
        self.logits_value = last.inputs[0] if self.softmax == "layer" else self.output_value
        self.logits_step = graph.producer[self.logits_value]
        feeding = set(graph.plan([self.logits_value], graph.inputs))
        first_calls: Dict[str, int] = {}
        for index, step in enumerate(graph.steps):
            first_calls.setdefault(step.name, index)
        self.maps = collections.OrderedDict()
        for name, index in first_calls.items():
            found = _map_of(index, shapes[graph.steps[index].outputs[0]])
            if found is not None and index in feeding:
                self.maps[name] = found

    def _input_shape(self, image_size):
        shape = self.graph.shapes[self.input_value]
        if len(shape) != 4 or shape[3] not in (1, 3):
            raise ConfigError("Keras model %s takes inputs of shape %s, not images [N, "
                              "height, width, 3 or 1 channels]" % (self.name, shape))
        wanted = size_pair(image_size) if image_size else None
        wanted = None if wanted == (0, 0) else wanted  # the model's own
        own = tuple(shape[1:3])
        if wanted is None:
            if None in own:
                raise ConfigError("Keras model %s takes images of any size; give image_size "
                                  "(e.g. 224, or 224x160 for height 224 and width 160)"
                                  % self.name)
            return own + (shape[3],)
        if any(mine is not None and mine != given for mine, given in zip(own, wanted)):
            raise ConfigError("Keras model %s takes %s images, not image_size %s"
                              % (self.name, "x".join(str(d or "any") for d in own),
                                 wanted[0] if wanted[0] == wanted[1] else "%dx%d" % wanted))
        return tuple(wanted) + (shape[3],)

    def _output(self, output):
        outputs, names = self.graph.outputs, self.graph.output_names
        if output in (None, ""):
            if len(outputs) > 1:
                raise ConfigError("Keras model %s has %d outputs (%s); choose the explained "
                                  "one with output (a name or an index)"
                                  % (self.name, len(outputs), ", ".join(names)))
            return outputs[0], names[0]
        if isinstance(output, str) and output in names:
            index = names.index(output)
        else:
            try:
                index = int(output)
            except (TypeError, ValueError):
                index = None
            if index is None or not 0 <= index < len(outputs):
                raise ConfigError("Keras model %s has no output %r; its outputs: %s (or their "
                                  "indices 0..%d)" % (self.name, output, ", ".join(names),
                                                      len(outputs) - 1))
        return outputs[index], names[index]

    def default_layer(self) -> str:
        """The layer nearest to the output with a map: the last conv layer."""
        by_step = {found.step: name for name, found in self.maps.items()}
        pending, seen = [self.logits_value], set()
        while pending:
            value = pending.pop(0)
            index = self.graph.producer.get(value)
            if index is None or index in seen:
                continue
            if index in by_step:
                return by_step[index]
            seen.add(index)
            pending += list(self.graph.steps[index].inputs)
        return next(iter(self.maps))

    def listing(self) -> List[Tuple[str, Tuple[int, int], str]]:
        """[(layer, (H, W), what)] of the layers where a filter can go, in graph order."""
        return [(name, found.size, "tokens" + (", class token first" if found.class_token
                                               else "") if found.tokens else "")
                for name, found in self.maps.items()]


def filter_layers(keras_model: Any, image_size: Union[int, str, Sequence[int]] = 0,
                  output: Optional[Union[str, int]] = None
                  ) -> Tuple[List[Tuple[str, Tuple[int, int], str]], str]:
    """([(layer, (H, W), what)], default layer) of `keras_model`: the layers where a filter
    can go, in graph order (what: "" for a spatial map, "tokens" or "tokens, class token
    first" for a grid of tokens), and the one KerasModel takes by default. image_size and
    output as for KerasModel."""
    structure = _Structure(keras_model, image_size, output)
    if not structure.maps:
        raise ConfigError("Keras model %s has no layer with a spatial map or a square grid "
                          "of tokens" % structure.name)
    return structure.listing(), structure.default_layer()


class KerasModel(ExplainableModel):
    """A Keras classifier with a filter of `rows` rows at `layer`, the same interface as
    l2caf.models.slim.Model (ExplainableModel). The Keras model itself is never changed (see
    the module docstring).

    keras_model: a functional or Sequential model (Keras 3 or tf-keras) of one image input,
    nested models included (their layers are named `outer/inner`). layer: a layer whose
    output is a spatial map [N, H, W, C] or a square grid of tokens [N, T, C] (T = g * g, or
    1 + g * g with a class token first, which the filter leaves alone); default: the one
    nearest to the output (the last conv layer). A layer called more than once is filtered
    at its first call. filter_type: l2norm, softmax or gauss. explain: 'logits', or
    'embedding' (the input of the last Dense layer). preprocess: what the model expects of
    RGB images 0..255: 'none' (as they are), 'tf' (-1..1), 'caffe' (BGR minus the ImageNet
    means), 'torch' (0..1, ImageNet mean and std) (keras.applications' conventions;
    one-channel models take gray images 0..255, with 'none' or 'tf'). image_size: the input
    size, one number or (height, width) (or "HxW"); 0: the model's own, which must then be
    fixed. output: the explained output of a model with several, by name or index. gpu:
    GPU index, -1 for the CPU. name: the model's name in messages (default: Keras's). rows,
    or by its other name batch_size: the (image, class) pairs explained at once (default 1).
    labels: the class names (a list, by class id, or the path of a label list, one name a
    line) that the Explanations carry, or None.
    """

    def __init__(self, keras_model: Any, layer: str = "", filter_type: str = "l2norm",
                 rows: Optional[int] = None, explain: str = "logits", preprocess: str = "none",
                 image_size: Union[int, str, Sequence[int]] = 0, gpu: int = 0,
                 name: Optional[str] = None, output: Optional[Union[str, int]] = None,
                 batch_size: Optional[int] = None,
                 labels: Optional[Union[str, Sequence[str]]] = None):
        self.keras_model = keras_model
        structure = self._structure = _Structure(keras_model, image_size, output, name)
        self.name, self.graph = structure.name, structure.graph
        with quiet_stderr():  # the first look for GPUs is loud where there is none
            gpus = tf.config.list_logical_devices("GPU")
        self.device = gpus[gpu].name if gpu is not None and 0 <= gpu < len(gpus) else "/CPU:0"
        if preprocess not in PREPROCESSING:
            raise ConfigError("preprocess must be one of %s, got %r"
                              % (", ".join(PREPROCESSING), preprocess))
        if structure.input_shape[2] == 1 and preprocess not in ("none", "tf"):
            raise ConfigError("Keras model %s takes one-channel (gray) images; preprocess %s "
                              "is for RGB images: use none or tf" % (self.name, preprocess))
        if explain not in ("logits", "embedding"):
            raise ConfigError("explain must be logits or embedding, got %r" % (explain,))
        self.preprocessing, self.filter_type = preprocess, filter_type
        self.rows, self.explain = rows_of(rows, batch_size), explain
        self.output = structure.output_name
        if not structure.maps:
            raise ConfigError("Keras model %s has no layer with a spatial map or a square "
                              "grid of tokens" % self.name)
        self.layer = layer or structure.default_layer()
        if self.layer not in structure.maps:
            raise ConfigError("Keras model %s has no layer %s with a spatial map%s; layers "
                              "where a filter can go: %s"
                              % (self.name, self.layer, " that feeds output %s" % self.output
                                 if len(self.graph.outputs) > 1 else "",
                                 ", ".join(structure.maps)))
        self._map = structure.maps[self.layer]
        self.filter_size = self._map.size
        filters.check_fits(filter_type, self.layer, *self.filter_size)
        self._find_head()
        if explain == "embedding" and self._dense is None:
            raise ConfigError("explain: embedding is the input of the last Dense layer, and "
                              "Keras model %s does not end in one" % self.name)
        self.num_classes = int(structure.shapes[structure.output_value][1])
        self.labels = labels_of(labels, self.num_classes, self.name)
        self.num_outputs = self.num_classes if explain == "logits" else int(
            structure.shapes[self._embedding_value][-1])
        # The filter's step need not run when the activation is given: unless a class token
        # (which the activation leaves out) or another output of the layer is needed.
        step = self.graph.steps[self._map.step]
        self._cuttable = len(step.outputs) == 1 and not self._map.class_token
        signature = [tf.TensorSpec((None,) + self.input_shape, tf.float32)]
        self._predict = tf.function(self._predict_fn, input_signature=signature)
        self._probabilities = tf.function(self._probabilities_fn, input_signature=signature)
        self._gradients = tf.function(self._gradients_fn)

    def _find_head(self):
        """The last Dense layer (the logits' layer, if a Dense one) and the layer whose map
        goes straight into a global average pooling and that layer (the linear head), if
        any."""
        structure, graph = self._structure, self.graph
        dense = graph.steps[structure.logits_step]
        self._dense = dense.operation if type(dense.operation).__name__ == "Dense" else None
        self._embedding_value = dense.inputs[0] if self._dense is not None else None
        self.linear_head_layer = None
        if self._dense is None or sum(step.operation is self._dense
                                      for step in graph.steps) != 1:
            return
        pooling = graph.producer.get(dense.inputs[0])
        while pooling is not None and \
                type(graph.steps[pooling].operation).__name__ in _PASS_THROUGH:
            pooling = graph.producer.get(graph.steps[pooling].inputs[0])
        if pooling is None:
            return
        layer, source = graph.steps[pooling].operation, graph.steps[pooling].inputs[0]
        if getattr(layer, "keepdims", False) or graph.consumers[source] != [pooling] or \
                getattr(layer, "data_format", "channels_last") != "channels_last":
            return
        for name, found in structure.maps.items():
            if found.step == graph.producer.get(source) and not found.class_token and \
                    type(layer).__name__ == ("GlobalAveragePooling1D" if found.tokens
                                             else "GlobalAveragePooling2D"):
                self.linear_head_layer = name

    # The model run by our functions.

    def _run(self, images, factor=None, replacement=None):
        """(logits, embedding or None, the activation at the layer or None) of the model on
        images (float 0..255), the layer's map multiplied by `factor` [rows, H, W] and, if
        given, replaced by `replacement` [rows, H, W, C] first."""
        structure, found = self._structure, self._map
        recorded = {}

        def filter_step(compute):
            outputs = list(compute()) if replacement is None or not self._cuttable else [None]
            original = outputs[0]
            if original is not None:
                recorded["activation"] = self._as_map(original)
            if factor is None and replacement is None:
                return outputs
            activation = recorded["activation"] if replacement is None else replacement
            if factor is not None:
                activation = activation * tf.cast(factor[..., None], activation.dtype)
            outputs[0] = self._as_layer_output(activation, original)
            return outputs

        edits = {found.step: filter_step}
        if structure.softmax == "activation":
            edits[structure.logits_step] = lambda compute: [
                _logits_before_softmax(tensor) if index == 0 else tensor
                for index, tensor in enumerate(compute())]
        targets = [structure.logits_value]
        if self.explain == "embedding":
            targets.append(self._embedding_value)
        inputs = preprocessing.preprocess(images, self.preprocessing)
        if structure.input_dtype.is_floating and structure.input_dtype != inputs.dtype:
            inputs = tf.cast(inputs, structure.input_dtype)
        cut = (found.step,) if replacement is not None and self._cuttable else ()
        results = self.graph.run({structure.input_value: inputs}, targets, edits, cut)
        results = [tf.cast(result, tf.float32) for result in results]
        return results[0], results[1] if len(results) > 1 else None, \
            recorded.get("activation")

    def _as_map(self, output):
        """The layer's output as the map the filter multiplies, [N, H, W, C]: token maps as
        the grid of their patch tokens."""
        if not self._map.tokens:
            return output
        patches = output[:, 1:] if self._map.class_token else output
        return tf.reshape(patches, (-1,) + self.filter_size + (self._map.channels,))

    def _as_layer_output(self, activation, original):
        """A map [N, H, W, C] back as the layer's output (tokens: the class token of
        `original` first)."""
        if not self._map.tokens:
            return activation
        height, width = self.filter_size
        tokens = tf.reshape(activation, (-1, height * width, self._map.channels))
        return tf.concat([original[:, :1], tokens], axis=1) if self._map.class_token \
            else tokens

    def _explained(self, logits, embedding):
        return embedding if self.explain == "embedding" else logits

    def _predict_fn(self, images):
        logits, embedding, activation = self._run(images)
        return tf.nn.softmax(logits), self._explained(logits, embedding), activation

    def _probabilities_fn(self, images):
        return tf.nn.softmax(self._run(images)[0])

    def _gradients_fn(self, images, activations, output_weights):
        with tf.GradientTape() as tape:
            tape.watch(activations)
            logits = self._run(images, replacement=activations)[0]
            score = tf.reduce_sum(output_weights * logits)
        return tape.gradient(score, activations)

    # The interface every model offers (l2caf.models.base.ExplainableModel).

    num_labels = property(lambda self: self.num_classes)
    relu_head_layer = None

    @property
    def input_shape(self) -> tuple:
        """(height, width, channels) of the images the model takes (channels 3, or 1 for a
        gray model)."""
        return self._structure.input_shape

    @property
    def image_size(self) -> Union[int, Tuple[int, int]]:
        """The input's size: one number for a square, else (height, width)."""
        height, width = self.input_shape[:2]
        return height if height == width else (height, width)

    def prepare(self, pictures: Union[np.ndarray, Sequence[np.ndarray]]) -> np.ndarray:
        """RGB images (arrays [H, W, 3], 0..255, any size; or a batch at the input size) ->
        the model's input batch, float32 [N, height, width, channels], 0..255: each image
        resized whole to the input size, and turned gray (BT.601 luma) for a one-channel
        model."""
        height, width, channels = self.input_shape
        if channels == 3:
            return prepare_images(pictures, (height, width))
        if isinstance(pictures, np.ndarray) and pictures.shape[1:] == (height, width, 1):
            return pictures.astype(np.float32, copy=False)
        return (prepare_images(pictures, (height, width)) @ GRAY_WEIGHTS)[..., None]

    def predict(self, images: np.ndarray) -> Prediction:
        """The unfiltered model on an input batch (see `prepare`): Prediction(probabilities,
        explained outputs, activation at the layer [N, H, W, C])."""
        with tf.device(self.device):
            return Prediction(*(value.numpy() for value in self._predict(tf.constant(images))))

    def class_probabilities(self, images: np.ndarray) -> np.ndarray:
        """The softmax probabilities [N, num_classes] on an input batch (see `prepare`)."""
        with tf.device(self.device):
            return self._probabilities(tf.constant(images)).numpy()

    def source_shape(self, source: str) -> List[int]:
        """The shape of one row of 'images' or of the 'activation' at the layer."""
        if source == "images":
            return list(self.input_shape)
        return list(self.filter_size) + [self._map.channels]

    def network_head_sources(self, cache_activation: bool) -> Tuple[str, ...]:
        """What the layers after the filter start from: the activation and the images, or
        the images."""
        # The images too: where skip connections (or a class token) cross the layer, the
        # layers after it need values from before it (and where they do not, the layers
        # before it are not run).
        return ("images", "activation") if cache_activation else ("images",)

    def filtered_outputs(self, factor: "tf.Tensor", images: Optional["tf.Tensor"] = None,
                         activation: Optional["tf.Tensor"] = None) -> "tf.Tensor":
        """The explained outputs with the layer's map multiplied by `factor` [rows, H, W]
        (in a function being traced): from `activation` [rows, H, W, C] at the layer, or
        from `images`."""
        logits, embedding, _ = self._run(images, factor=factor, replacement=activation)
        return self._explained(logits, embedding)

    def logits_of(self, images: "tf.Tensor") -> "tf.Tensor":
        """The model's logits on `images` (RGB 0..255, in a function being traced)."""
        return self._run(images)[0]

    def optimization_program(self, head: "Head", loop: "Loop") -> "FunctionProgram":
        """The head's optimisation by `loop`'s update and stopping rule as tf.functions
        (l2caf.optimize.FunctionProgram)."""
        from l2caf.optimize import FunctionProgram
        return FunctionProgram(self, head, loop)

    def linear_head(self) -> Tuple["tf.Tensor", "tf.Tensor"]:
        """(weights [C, K], biases [K]) of the Dense layer after the global average pooling
        that follows linear_head_layer, as tensors."""
        kernel = tf.convert_to_tensor(self._dense.kernel)
        bias = tf.zeros(kernel.shape[-1:]) if self._dense.bias is None \
            else tf.convert_to_tensor(self._dense.bias)
        return kernel, bias

    def linear_head_weights(self) -> np.ndarray:
        """The weights of `linear_head`, [C, K], as an array."""
        return tf.convert_to_tensor(self._dense.kernel).numpy()

    def output_gradients(self, images: np.ndarray, activations: np.ndarray,
                         output_weights: np.ndarray) -> np.ndarray:
        """d(sum of output_weights * logits)/d(activation at the layer) of each row, at the
        activations [rows, H, W, C] of the images."""
        with tf.device(self.device):
            return self._gradients(tf.constant(images), tf.constant(activations),
                                   tf.constant(output_weights)).numpy()

    def class_output(self, class_id: int) -> int:
        """Output index of class id `class_id`: the same."""
        return class_id

    def top_classes(self, probabilities: np.ndarray, k: int) -> List[int]:
        """The k most probable class ids, best first (ties: the lower id)."""
        return [int(i) for i in np.argsort(-np.asarray(probabilities), kind="stable")[:k]]

    def close(self) -> None:
        """Nothing to give back (the model was never changed); kept for `with` blocks and
        the interface of every model."""

    def __enter__(self) -> "KerasModel":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
