"""A tf-slim network (l2caf.networks) with an attention filter at one layer: its graph,
session and checkpoint."""
import collections
import contextlib
from typing import TYPE_CHECKING, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from l2caf import filters, networks, preprocessing
from l2caf.errors import ConfigError
from l2caf.models import checkpoints
from l2caf.models.base import (ExplainableModel, Prediction, labels_of, prepare_images,
                               rows_of)
from nets.attention_filter import FILTER_COLLECTION, AttentionFilter
from nets.tf_slim_compat import quiet_stderr, slim, tf
from tensorflow.python.ops import control_flow_util_v2  # after tf_slim_compat: quiet import

if TYPE_CHECKING:
    from l2caf.heads import Head
    from l2caf.optimize import Loop, SessionProgram

EXPLAINED_OUTPUTS = ("logits", "embedding")


def session_config(gpu: Optional[int]) -> "tf.compat.v1.ConfigProto":
    """Session options: the GPU `gpu` with memory growth, or the CPU only for gpu < 0.

    On a machine without a GPU both run on the CPU.
    """
    if gpu is None or gpu < 0:
        return tf.compat.v1.ConfigProto(device_count={"GPU": 0})
    options = tf.compat.v1.GPUOptions(allow_growth=True, visible_device_list=str(gpu))
    return tf.compat.v1.ConfigProto(gpu_options=options, allow_soft_placement=True)


@contextlib.contextmanager
def building(graph: "tf.Graph") -> Iterator["tf.Graph"]:
    """Makes `graph` the default graph while a model is built in it. Its conds (the filter's
    gate) then export their intermediate values, so that gradients through them can still
    be added after the session has run; the switch is TensorFlow-wide, so it is restored
    afterwards."""
    switch = tf.compat.v1.experimental.output_all_intermediates
    previous = control_flow_util_v2._EXPERIMENTAL_OUTPUT_ALL_INTERMEDIATES_OVERRIDE  # no getter
    switch(True)
    try:
        with graph.as_default():
            yield graph
    finally:
        switch(previous)


def build_network(network: networks.Network, images: "tf.Tensor", num_classes: int,
                  attention: Optional[Callable[[str, "tf.Tensor"], "tf.Tensor"]] = None,
                  is_training: bool = False) -> Tuple["tf.Tensor", Dict[str, "tf.Tensor"]]:
    """`network`'s definition on RGB `images` (float 0..255) in the current graph:
    (logits, end_points). attention: called after each spatial end point (see nets)."""
    with slim.arg_scope(networks.resolve(network.arg_scope)()):
        return networks.resolve(network.definition)(
            preprocessing.preprocess(images, network.preprocessing), num_classes=num_classes,
            is_training=is_training, scope=network.scope, attention=attention,
            **network.options)


class _SpatialEndPoints(object):
    """An attention callable that records the spatial end points with their (H, W) sizes and
    passes them on to `inner`."""

    def __init__(self, inner: Optional[Callable[[str, "tf.Tensor"], "tf.Tensor"]] = None):
        self.inner = inner
        self.sizes: Dict[str, Tuple[int, int]] = collections.OrderedDict()

    def __call__(self, end_point: str, net: "tf.Tensor") -> "tf.Tensor":
        self.sizes[end_point] = (int(net.shape[1]), int(net.shape[2]))
        return net if self.inner is None else self.inner(end_point, net)

    def filterable(self) -> Dict[str, Tuple[int, int]]:
        """{end point: (H, W)} of the maps a filter can go on (larger than 1x1)."""
        return collections.OrderedDict((name, size) for name, size in self.sizes.items()
                                       if size[0] * size[1] > 1)


def list_layers(network: networks.Network,
                num_classes: Optional[int] = None) -> List[Tuple[str, Tuple[int, int]]]:
    """[(end point, (H, W))] of `network` where a filter can go, in order: its spatial end
    points, 1x1 maps left out."""
    recorder = _SpatialEndPoints()
    with tf.Graph().as_default():
        size = network.image_size
        build_network(network, tf.compat.v1.placeholder(tf.float32, [1, size, size, 3]),
                      num_classes or network.num_classes or 1, recorder)
    return list(recorder.filterable().items())


def checkpoint_num_classes(network: networks.Network, checkpoint: str) -> int:
    """The number of outputs of `network`'s checkpoint (its logits biases)."""
    name = "%s/%s/biases" % (network.scope, network.head.logits_scope)
    shapes = checkpoints.checkpoint_variable_shapes(
        checkpoints.resolve_checkpoint(checkpoint, network.name))
    if name not in shapes:
        raise ConfigError("checkpoint %s holds no %s: not a %s checkpoint"
                          % (checkpoint, name, network.name))
    return shapes[name][0]


class Model(ExplainableModel):
    """`network` with an attention filter of `rows` rows at `layer`, in its own graph and
    session (`Model.load` also restores a checkpoint).

    network: a name or an l2caf.networks.Network. num_classes: the network's outputs.
    layer: the end point whose map is filtered (empty: the last conv layer). explain: the
    outputs the losses see: 'logits', or 'embedding' (the pooled pre-logits features).
    gpu: GPU index, -1 for the CPU. rows, or by its other name batch_size: the (image, class)
    pairs explained at once (default 1). labels: the class names (a list, by class id, or
    the path of a label list, one name a line) that the Explanations carry, or None.

    images: placeholder of RGB images, float 0..255, [N, size, size, 3]. logits,
    probabilities, outputs (the explained ones): of the network, gate closed. filter: the
    nets.attention_filter.AttentionFilter at the layer (atten_var [rows, ...], its
    atten_var_gate, the activation before it). heatmap: the heatmap of each filter row.
    """

    def __init__(self, network: Union[str, networks.Network], num_classes: int, layer: str = "",
                 filter_type: str = "l2norm", rows: Optional[int] = None,
                 explain: str = "logits", gpu: int = 0, batch_size: Optional[int] = None,
                 labels: Optional[Union[str, Sequence[str]]] = None):
        self.network = networks.get_network(network) if isinstance(network, str) else network
        if explain not in EXPLAINED_OUTPUTS:
            raise ConfigError("explain must be one of %s, got %r"
                              % (", ".join(EXPLAINED_OUTPUTS), explain))
        self.num_classes, self.filter_type = num_classes, filter_type
        self.rows = rows_of(rows, batch_size)
        self.labels = labels_of(labels, num_classes - self.network.label_offset,
                                self.network.name)
        self.explain = explain
        self.layer = layer or self.network.last_conv
        self.graph = tf.Graph()
        with building(self.graph):
            size = self.network.image_size
            self.images = tf.compat.v1.placeholder(tf.float32, [None, size, size, 3], "images")
            self._root_scope = tf.compat.v1.get_variable_scope()
            self.filter = AttentionFilter.create(self.layer, self._filter_shape, self._normalize)
            recorder = _SpatialEndPoints(self.filter)
            self.logits, self.end_points = build_network(self.network, self.images,
                                                         num_classes, recorder)
            if self.filter.activation is None:
                raise ConfigError("network %s has no layer %s; layers where a filter can go: %s"
                                  % (self.network.name, self.layer,
                                     ", ".join(recorder.filterable())))
            self.heatmap = filters.heatmap(self.filter.atten_var, filter_type,
                                           self.filter_size[0])
            self.outputs = self.end_points["PreLogits"] if explain == "embedding" \
                else self.logits
            self.probabilities = tf.nn.softmax(self.logits)
            filter_variables = set(tf.compat.v1.get_collection(FILTER_COLLECTION))
            self.model_variables = [v for v in tf.compat.v1.global_variables()
                                    if v not in filter_variables]
            self._gate = {state: self.filter.atten_var_gate.assign(state)
                          for state in (True, False)}
            initializer = tf.compat.v1.global_variables_initializer()
        with quiet_stderr():
            self.session = tf.compat.v1.Session(graph=self.graph, config=session_config(gpu))
        self.session.run(initializer)

    @classmethod
    def load(cls, network: Union[str, networks.Network], checkpoint: str, layer: str = "",
             filter_type: str = "l2norm", rows: Optional[int] = None, explain: str = "logits",
             gpu: int = 0, batch_size: Optional[int] = None,
             labels: Optional[Union[str, Sequence[str]]] = None) -> "Model":
        """The Model of `network` restored from `checkpoint`, with the checkpoint's number
        of classes."""
        network = networks.get_network(network) if isinstance(network, str) else network
        num_classes = network.num_classes or checkpoint_num_classes(network, checkpoint)
        model = cls(network, num_classes, layer, filter_type, rows, explain, gpu, batch_size,
                    labels)
        model.restore(checkpoint)
        return model

    def _filter_shape(self, height, width):
        filters.check_fits(self.filter_type, self.layer, height, width)
        return filters.filter_shape(self.filter_type, self.rows, height, width)

    def _normalize(self, raw):
        return filters.normalize(raw, self.filter_type, self.filter_size[0])

    @property
    def filter_size(self) -> Tuple[int, int]:
        """(H, W) of the filtered map."""
        return tuple(int(d) for d in self.filter.activation.shape[1:3])

    @property
    def name(self) -> str:
        """The network's name."""
        return self.network.name

    @property
    def image_size(self) -> int:
        """The side of the square images the network takes."""
        return self.network.image_size

    @property
    def input_shape(self) -> Tuple[int, int, int]:
        """(height, width, channels) of the images the network takes."""
        return (self.network.image_size, self.network.image_size, 3)

    @property
    def preprocessing(self) -> str:
        """The network's preprocessing (see l2caf.preprocessing)."""
        return self.network.preprocessing

    @property
    def num_outputs(self) -> int:
        """How many outputs the losses see (classes, or the embedding's size)."""
        return int(self.outputs.shape[-1])

    @property
    def linear_head_layer(self) -> Optional[str]:
        """The layer whose map goes straight into a spatial mean and a linear layer (the
        logits), or None."""
        linear = isinstance(self.network.head, networks.LinearHead)
        return self.network.last_conv if linear else None

    @property
    def relu_head_layer(self) -> Optional[str]:
        """The layer whose map goes into batch norm, ReLU, a spatial mean and a linear layer,
        or None."""
        relu = isinstance(self.network.head, networks.ReluHead)
        return self.network.last_conv if relu else None

    @property
    def num_labels(self) -> int:
        """Class ids run 0..num_labels-1 (the background output of 1001-class networks is
        not a class)."""
        return self.num_classes - self.network.label_offset

    def restore(self, checkpoint_path: str) -> None:
        """Loads the network's weights; errors name the file or the variables at fault."""
        checkpoints.restore_variables(self.session, checkpoint_path, self.model_variables,
                                      network_name=self.network.name)

    def prepare(self, pictures: Union[np.ndarray, Sequence[np.ndarray]]) -> np.ndarray:
        """RGB images -> the network's input batch (see prepare_images)."""
        return prepare_images(pictures, self.network.image_size)

    def predict(self, images: np.ndarray) -> Prediction:
        """The unfiltered network on an input batch (see `prepare`)."""
        return Prediction(*self.session.run(
            [self.probabilities, self.outputs, self.filter.activation], {self.images: images}))

    def class_probabilities(self, images: np.ndarray) -> np.ndarray:
        """The unfiltered network's softmax probabilities [N, num_classes] on an input batch
        (see `prepare`): what the many forward passes of Score-CAM and the faithfulness
        metrics need, and nothing more."""
        return self.session.run(self.probabilities, {self.images: images})

    def filtered_outputs(self, factor: "tf.Tensor", images: Optional["tf.Tensor"] = None,
                         activation: Optional["tf.Tensor"] = None) -> "tf.Tensor":
        """The explained outputs with the layer's map multiplied by `factor` [rows, H, W],
        built anew in the current graph (a loop body) on the network's variables: from
        `activation`, the map at the layer (the layers before it are then never run), or
        from `images`."""
        def attention(end_point, net):
            if end_point != self.layer:
                return net
            return (net if activation is None else activation) * factor[..., None]

        with tf.compat.v1.variable_scope(self._root_scope, reuse=True):
            logits, end_points = build_network(
                self.network, self.images if images is None else images, self.num_classes,
                attention)
        return end_points["PreLogits"] if self.explain == "embedding" else logits

    def logits_of(self, images: "tf.Tensor") -> "tf.Tensor":
        """The unfiltered network's logits on `images` (RGB 0..255), built anew in the
        current graph (a loop body) on the network's variables."""
        with tf.compat.v1.variable_scope(self._root_scope, reuse=True):
            logits, _ = build_network(self.network, images, self.num_classes)
        return logits

    def source_shape(self, source: str) -> List[int]:
        """The shape of one row of 'images' or of the 'activation' at the layer."""
        tensor = self.images if source == "images" else self.filter.activation
        return tensor.shape.as_list()[1:]

    def network_head_sources(self, cache_activation: bool) -> Tuple[str, ...]:
        """What the network's layers after the filter start from: the activation at the
        layer (the layers after it form a chain in every slim network), or the image."""
        return ("activation",) if cache_activation else ("images",)

    def optimization_program(self, head: "Head", loop: "Loop") -> "SessionProgram":
        """The head's optimisation by `loop`'s update and stopping rule in this model's graph
        and session (l2caf.optimize.SessionProgram)."""
        from l2caf.optimize import SessionProgram
        return SessionProgram(self, head, loop)

    def linear_head(self) -> Tuple["tf.Tensor", "tf.Tensor"]:
        """(weights [C, K], biases [K]) of the linear layer after the spatial mean that
        follows linear_head_layer, as tensors of the graph being built."""
        scope = self.network.head.logits_scope
        return self.variable(scope + "/weights")[0, 0], self.variable(scope + "/biases")

    def linear_head_weights(self) -> np.ndarray:
        """The weights of `linear_head`, [C, K], as an array."""
        return self.session.run(self.variable(self.network.head.logits_scope + "/weights"))[0, 0]

    def relu_head(self) -> Tuple["tf.Tensor", "tf.Tensor", "tf.Tensor", "tf.Tensor"]:
        """(scale [C], shift [C], weights [C, K], biases [K]) of the inference batch norm
        (x * scale + shift), ReLU, spatial mean and linear layer after relu_head_layer, as
        tensors of the graph being built."""
        head = self.network.head
        norm = head.batch_norm_scope
        epsilon = networks.resolve(head.batch_norm_epsilon)
        scale = self.variable(norm + "/gamma") / tf.sqrt(
            self.variable(norm + "/moving_variance") + epsilon)
        shift = self.variable(norm + "/beta") - self.variable(norm + "/moving_mean") * scale
        return (scale, shift, self.variable(head.logits_scope + "/weights")[0, 0],
                self.variable(head.logits_scope + "/biases"))

    def output_gradients(self, images: np.ndarray, activations: np.ndarray,
                         output_weights: np.ndarray) -> np.ndarray:
        """d(sum of output_weights * logits)/d(activation at the layer) of each row, at the
        activations [rows, H, W, C] of the images."""
        if not hasattr(self, "_output_gradients"):
            with self.graph.as_default(), tf.compat.v1.name_scope("output_gradients"):
                self._output_weights = tf.compat.v1.placeholder(
                    tf.float32, self.logits.shape, "output_weights")
                self._output_gradients = tf.gradients(
                    tf.reduce_sum(self._output_weights * self.logits), self.filter.activation)[0]
        return self.session.run(self._output_gradients, {
            self.filter.activation: activations, self._output_weights: output_weights})

    def variable(self, name: str) -> "tf.Variable":
        """The network variable `name`, relative to the network scope (e.g. 'logits/weights')."""
        full_name = "%s/%s" % (self.network.scope, name)
        for variable in self.model_variables:
            if variable.op.name == full_name:
                return variable
        raise KeyError("network %s has no variable %s" % (self.network.name, full_name))

    def set_gate(self, is_open: bool) -> None:
        """Opens or closes the filter's gate: the network's outputs are then filtered or not."""
        self.session.run(self._gate[bool(is_open)])

    def class_output(self, class_id: int) -> int:
        """Output index of class id `class_id` (0..num_labels-1)."""
        return class_id + self.network.label_offset

    def top_classes(self, probabilities: np.ndarray, k: int) -> List[int]:
        """Class ids (label offset removed) of the k most probable classes, best first."""
        scores = np.asarray(probabilities)[self.network.label_offset:]
        return [int(i) for i in np.argsort(-scores, kind="stable")[:k]]

    def close(self) -> None:
        """Closes the model's session."""
        self.session.close()

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
