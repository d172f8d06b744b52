"""Keras models as l2caf models: any functional or Sequential model, Keras 3 or tf-keras
(Keras 2), with the filter at any layer.

Keras 3 runs eagerly and cannot live in a tf.compat.v1 session graph, so these models run
the shared filter, loss and optimisation functions (l2caf.filters, heads, optimize) as
tf.functions, and never touch the graph mode of the slim networks' sessions.

The filter goes inside the model: the chosen layer's call is wrapped so that, while one of
our functions runs the model, its output is multiplied by the filter (and, on the cached
path, replaced by the activation computed once per image); Keras runs the rest of the model,
skip connections and shared layers included. Layers before the filter whose results the
rest of the model does not use are pruned from the compiled functions, so starting from
the cached activation costs only the layers after it. The model's softmax, if its last
layer has one, is skipped while our functions run: the losses see the logits.
"""
import os

import numpy as np

from l2caf import filters, preprocessing
from l2caf.errors import CheckpointError, ConfigError
from l2caf.model import Prediction, prepare_images
from nets.tf_slim_compat import quiet_stderr, tf

PREPROCESSING = preprocessing.KERAS_PREPROCESSING
# Layers that pass their input on unchanged at inference, between a pooling and the logits.
_PASS_THROUGH = ("Dropout", "SpatialDropout1D", "Flatten", "Reshape", "Identity")


def load_keras_model(path):
    """The Keras model saved at `path`: a .keras file (Keras 3, else tf-keras), a .h5 file or
    a SavedModel folder (tf-keras)."""
    import keras
    import tf_keras
    if not os.path.exists(path):
        raise CheckpointError("no Keras model at %s (a .keras or .h5 file, or a SavedModel "
                              "folder)" % path)
    loaders = [keras.models.load_model, tf_keras.models.load_model]
    if os.path.isdir(path) or path.endswith(".h5"):
        loaders.reverse()
    errors = []
    for load in loaders:
        try:
            with quiet_stderr():  # TensorFlow's first eager operation looks for GPUs, loudly
                return load(path, compile=False)
        except Exception as error:  # each Keras says in its own way that it cannot read it
            errors.append(" ".join(str(error).split())[:200])
    raise CheckpointError("cannot load the Keras model %s: %s" % (path, " / ".join(errors)))


def _tensors(node, which):
    return tf.nest.flatten(getattr(node, which + "_tensors"))


def _output(layer):
    """The layer's output tensor (of its first call)."""
    return _tensors(layer._inbound_nodes[0], "output")[0]


def spatial_layers(keras_model):
    """[(layer name, (H, W))] of the layers with a 4-D output of more than 1x1, in order
    (the input image aside)."""
    layers = []
    for layer in keras_model.layers:
        is_layer = layer._inbound_nodes and type(layer).__name__ != "InputLayer"
        shape = tuple(_output(layer).shape) if is_layer else ()
        if len(shape) == 4 and shape[1] and shape[2] and shape[1] * shape[2] > 1:
            layers.append((layer.name, (int(shape[1]), int(shape[2]))))
    return layers


def default_layer(keras_model):
    """The spatial layer nearest to the output: the last conv layer, as for the slim nets."""
    sizes = dict(spatial_layers(keras_model))
    tensors, seen = list(keras_model.outputs), set()
    while tensors:
        tensor = tensors.pop(0)
        for layer in _producers(keras_model, tensor):
            if layer.name in sizes:
                return layer.name
            if layer.name not in seen:
                seen.add(layer.name)
                tensors += [t for node in layer._inbound_nodes for t in _tensors(node, "input")]
    return list(sizes)[-1]


def _producers(keras_model, tensor):
    return [layer for layer in keras_model.layers for node in layer._inbound_nodes
            if any(t is tensor for t in _tensors(node, "output"))]


def _consumers(keras_model, tensor):
    return [layer for layer in keras_model.layers for node in layer._inbound_nodes
            if any(t is tensor for t in _tensors(node, "input"))]


def _softmax_of(layer):
    """How `layer` ends in a softmax: 'activation' (a layer with activation=softmax),
    'layer' (a Softmax or Activation('softmax') layer), or None."""
    activation = getattr(layer, "activation", None)
    if getattr(activation, "__name__", "") == "softmax":
        return "layer" if type(layer).__name__ == "Activation" else "activation"
    return "layer" if type(layer).__name__ == "Softmax" else None


class _Hooks(object):
    """What our functions ask of the wrapped layers while they run the model."""

    def __init__(self):
        self.active = False
        self.factor = self.replacement = None
        self.recorded = {}


class KerasModel(object):
    """A Keras classifier with a filter of `rows` rows at `layer` (default: the last layer
    with a spatial map), the same interface as l2caf.model.Model.

    preprocess: what the model expects of RGB images 0..255: 'none' (as they are), 'tf'
    (-1..1), 'caffe' (BGR minus the ImageNet means), 'torch' (0..1, ImageNet mean and std)
    (keras.applications' conventions). image_size: of the model's input (0: the model's
    own, which must then be fixed). explain: 'logits', or 'embedding' (the input of the
    last Dense layer). gpu: GPU index, -1 for the CPU.
    """

    def __init__(self, keras_model, layer="", filter_type="l2norm", rows=1, explain="logits",
                 preprocess="none", image_size=0, gpu=0, name=None):
        self.keras_model = keras_model
        self.name = name or keras_model.name
        with quiet_stderr():  # the first look for GPUs is loud where there is none
            gpus = tf.config.list_logical_devices("GPU")
        self.device = gpus[gpu].name if gpu is not None and 0 <= gpu < len(gpus) else "/CPU:0"
        if preprocess not in PREPROCESSING:
            raise ConfigError("preprocess must be one of %s, got %r"
                              % (", ".join(PREPROCESSING), preprocess))
        if len(keras_model.inputs) != 1 or len(keras_model.outputs) != 1:
            raise ConfigError("Keras model %s has %d inputs and %d outputs; l2caf explains "
                              "models of one image input and one output"
                              % (self.name, len(keras_model.inputs), len(keras_model.outputs)))
        self.preprocessing, self.filter_type = preprocess, filter_type
        self.rows, self.explain = int(rows), explain
        self.image_size = self._input_size(image_size)
        sizes = dict(spatial_layers(keras_model))
        if not sizes:
            raise ConfigError("Keras model %s has no layer with a spatial map" % self.name)
        self.layer = layer or default_layer(keras_model)
        if self.layer not in sizes:
            raise ConfigError("Keras model %s has no layer %s with a spatial map; layers where "
                              "a filter can go: %s" % (self.name, self.layer, ", ".join(sizes)))
        self.filter_size = sizes[self.layer]
        filters.check_fits(filter_type, self.layer, *self.filter_size)
        self._find_head()
        if explain not in ("logits", "embedding"):
            raise ConfigError("explain must be logits or embedding, got %r" % (explain,))
        if explain == "embedding" and type(self._dense).__name__ != "Dense":
            raise ConfigError("explain: embedding is the input of the last Dense layer, and "
                              "Keras model %s does not end in one" % self.name)
        self.num_classes = int(_output(self._last).shape[-1])
        self.num_outputs = self.num_classes if explain == "logits" else int(
            _tensors(self._dense._inbound_nodes[0], "input")[0].shape[-1])
        self._hooks = _Hooks()
        self._wrapped = []
        self._wrap(keras_model.get_layer(self.layer), self._filter_call)
        self._wrap(self._last, self._logits_call)
        if explain == "embedding":
            self._wrap(self._dense, self._embedding_call)
        signature = [tf.TensorSpec([None, self.image_size, self.image_size, 3], tf.float32)]
        self._predict = tf.function(self._predict_fn, input_signature=signature)
        self._probabilities = tf.function(self._probabilities_fn, input_signature=signature)
        self._gradients = tf.function(self._gradients_fn)

    def _input_size(self, image_size):
        shape = tuple(self.keras_model.inputs[0].shape)
        if len(shape) != 4 or shape[3] != 3:
            raise ConfigError("Keras model %s takes inputs of shape %s, not RGB images"
                              % (self.name, shape))
        if shape[1] is not None and (shape[1] != shape[2] or image_size not in (0, shape[1])):
            if shape[1] != shape[2]:
                raise ConfigError("Keras model %s takes %dx%d images; l2caf resizes whole images "
                                  "to a square" % ((self.name,) + shape[1:3]))
            raise ConfigError("Keras model %s takes %dx%d images, not image_size %d"
                              % (self.name, shape[1], shape[2], image_size))
        size = image_size or shape[1]
        if not size:
            raise ConfigError("Keras model %s takes images of any size; give image_size"
                              % self.name)
        return int(size)

    def _find_head(self):
        """The output layer, the last Dense (or 1x1 conv) layer, and the layer whose map goes
        straight into global average pooling and that layer (the linear head), if any."""
        model = self.keras_model
        output = model.outputs[0]
        [self._last] = _producers(model, output)
        self._softmax = _softmax_of(self._last)
        self._dense = self._last
        if self._softmax == "layer":
            self._dense = self._producer(_tensors(self._last._inbound_nodes[0], "input")[0])
        self.linear_head_layer = None
        if type(self._dense).__name__ != "Dense" or len(self._dense._inbound_nodes) != 1:
            return
        pooling = self._producer(_tensors(self._dense._inbound_nodes[0], "input")[0])
        while pooling is not None and type(pooling).__name__ in _PASS_THROUGH:
            pooling = self._producer(_tensors(pooling._inbound_nodes[0], "input")[0])
        if pooling is None or type(pooling).__name__ != "GlobalAveragePooling2D" \
                or getattr(pooling, "keepdims", False):
            return
        source = self._producer(_tensors(pooling._inbound_nodes[0], "input")[0])
        if source is not None and len(source._inbound_nodes) == 1 and \
                len(_consumers(model, _output(source))) == 1:
            self.linear_head_layer = source.name

    def _producer(self, tensor):
        found = _producers(self.keras_model, tensor)
        return found[0] if len(found) == 1 else None

    def _wrap(self, layer, make_call):
        original = layer.call
        layer.call = make_call(layer, original)
        self._wrapped.append((layer, original))

    def _filter_call(self, layer, original):
        hooks = self._hooks

        def call(*args, **kwargs):
            output = original(*args, **kwargs)
            if not hooks.active:
                return output
            hooks.recorded.setdefault("activation", output)
            if hooks.replacement is not None:
                output = hooks.replacement
            if hooks.factor is not None:
                output = output * tf.cast(hooks.factor[..., None], output.dtype)
            return output
        return call

    def _logits_call(self, layer, original):
        hooks, softmax = self._hooks, self._softmax

        def call(*args, **kwargs):
            if not hooks.active or softmax is None:
                return original(*args, **kwargs)
            if softmax == "layer":
                return args[0]
            saved, layer.activation = layer.activation, (lambda x: x)
            try:
                return original(*args, **kwargs)
            finally:
                layer.activation = saved
        return call

    def _embedding_call(self, layer, original):
        hooks = self._hooks

        def call(*args, **kwargs):
            if hooks.active:
                hooks.recorded["embedding"] = args[0]
            return original(*args, **kwargs)
        return call

    def _run(self, images, factor=None, replacement=None):
        """(logits, recorded) of the model on images (float 0..255) with the hooks set."""
        hooks = self._hooks
        hooks.active, hooks.factor, hooks.replacement, hooks.recorded = \
            True, factor, replacement, {}
        try:
            logits = self.keras_model(preprocessing.preprocess(images, self.preprocessing),
                                      training=False)
            return logits, hooks.recorded
        finally:
            hooks.active, hooks.factor, hooks.replacement, hooks.recorded = \
                False, None, None, {}

    def _explained(self, logits, recorded):
        return recorded["embedding"] if self.explain == "embedding" else logits

    def _predict_fn(self, images):
        logits, recorded = self._run(images)
        return (tf.nn.softmax(logits), self._explained(logits, recorded),
                recorded["activation"])

    def _probabilities_fn(self, images):
        return tf.nn.softmax(self._run(images)[0])

    def _gradients_fn(self, images, activations, output_weights):
        with tf.GradientTape() as tape:
            tape.watch(activations)
            logits, _ = self._run(images, replacement=activations)
            score = tf.reduce_sum(output_weights * logits)
        return tape.gradient(score, activations)

    # The interface of l2caf.model.Model.

    num_labels = property(lambda self: self.num_classes)
    relu_head_layer = None

    def prepare(self, pictures):
        return prepare_images(pictures, self.image_size)

    @property
    def input_shape(self):
        return (self.image_size, self.image_size, 3)

    def predict(self, images):
        with tf.device(self.device):
            return Prediction(*(value.numpy() for value in self._predict(tf.constant(images))))

    def class_probabilities(self, images):
        with tf.device(self.device):
            return self._probabilities(tf.constant(images)).numpy()

    def source_shape(self, source):
        if source == "images":
            return [self.image_size, self.image_size, 3]
        return list(self.filter_size) + [int(_output(self.keras_model.get_layer(
            self.layer)).shape[-1])]

    def network_head_sources(self, cache_activation):
        # The images too: where skip connections cross the layer, the layers after it need
        # maps from before it (and where they do not, those layers are pruned).
        return ("images", "activation") if cache_activation else ("images",)

    def filtered_outputs(self, factor, images=None, activation=None):
        logits, recorded = self._run(images, factor=factor, replacement=activation)
        return self._explained(logits, recorded)

    def optimization_program(self, head):
        from l2caf.optimize import FunctionProgram
        return FunctionProgram(self, head)

    def linear_head(self):
        kernel = tf.convert_to_tensor(self._dense.kernel)
        bias = tf.zeros(kernel.shape[-1:]) if self._dense.bias is None \
            else tf.convert_to_tensor(self._dense.bias)
        return kernel, bias

    def linear_head_weights(self):
        return tf.convert_to_tensor(self._dense.kernel).numpy()

    def output_gradients(self, images, activations, output_weights):
        with tf.device(self.device):
            return self._gradients(tf.constant(images), tf.constant(activations),
                                   tf.constant(output_weights)).numpy()

    def class_output(self, class_id):
        return class_id

    def top_classes(self, probabilities, k):
        return [int(i) for i in np.argsort(-np.asarray(probabilities), kind="stable")[:k]]

    def close(self):
        """Gives the layers their own calls back."""
        for layer, original in reversed(self._wrapped):  # a layer may be wrapped twice
            layer.call = original
        self._wrapped = []

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
