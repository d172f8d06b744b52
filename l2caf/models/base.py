"""What every model offers the methods and the metrics (`ExplainableModel`), which both
l2caf.models.slim.Model and l2caf.models.keras.KerasModel declare, with the pieces they
share: the forward pass's `Prediction` and the input batch (`prepare_images`). No
TensorFlow here."""
import collections
from typing import TYPE_CHECKING, Any, List, Optional, Protocol, Sequence, Tuple, Union

import numpy as np

from l2caf import data
from l2caf import images as image_io
from l2caf.errors import ConfigError
from l2caf.settings import check_whole_number

if TYPE_CHECKING:  # (TensorFlow)
    from l2caf.heads import Head
    from l2caf.optimize import FunctionProgram, Loop, SessionProgram

Prediction = collections.namedtuple("Prediction", ["probabilities", "outputs", "activation"])
Prediction.__doc__ = """The unfiltered network on a batch: class probabilities, the explained
outputs (logits, or the embedding) and the activation at the filter's layer."""


class ExplainableModel(Protocol):
    """A classifier with a filter of `rows` rows at one layer: what the methods (l2caf.methods,
    l2caf.heads, l2caf.optimize) and the metrics (l2caf.evaluation.faithfulness) use of it.

    name: the network's name in messages. layer: the layer whose map is filtered;
    filter_size: its (H, W). filter_type: l2norm, softmax or gauss. rows: the filter's rows
    (the (image, class) pairs optimised at once). explain: the outputs the losses see,
    'logits' or 'embedding'. num_classes: the network's outputs; num_labels: its class ids
    (0..num_labels-1; a 1001-class slim network's background is not a class); num_outputs:
    the explained outputs' size. input_shape: (height, width, channels) of its input;
    image_size: one number for a square input, else (height, width). preprocessing: what it
    does to RGB images 0..255 (l2caf.preprocessing). linear_head_layer: the layer whose map
    goes straight into a spatial mean and a linear layer (CAM, the closed form), or None;
    relu_head_layer: the layer followed by batch norm, ReLU, a spatial mean and a linear
    layer, or None. labels: the class names by class id (0..num_labels-1), or None.
    """

    name: str
    layer: str
    filter_size: Tuple[int, int]
    filter_type: str
    rows: int
    explain: str
    num_classes: int
    num_labels: int
    num_outputs: int
    input_shape: Tuple[int, int, int]
    image_size: Union[int, Tuple[int, int]]
    preprocessing: str
    linear_head_layer: Optional[str]
    relu_head_layer: Optional[str]
    labels: Optional[List[str]]

    def prepare(self, pictures: Union[np.ndarray, Sequence[np.ndarray]]) -> np.ndarray:
        """RGB images (arrays [H, W, 3], 0..255, any size) -> the input batch, float32."""

    def predict(self, images: np.ndarray) -> Prediction:
        """The unfiltered network on an input batch (see `prepare`)."""

    def class_probabilities(self, images: np.ndarray) -> np.ndarray:
        """The softmax probabilities [N, num_classes] on an input batch."""

    def class_output(self, class_id: int) -> int:
        """The output index of class id `class_id`."""

    def top_classes(self, probabilities: np.ndarray, k: int) -> list:
        """The k most probable class ids, best first."""

    def source_shape(self, source: str) -> list:
        """The shape of one row of 'images' or of the 'activation' at the layer."""

    def network_head_sources(self, cache_activation: bool) -> tuple:
        """What the layers after the filter start from: ('activation',), ('images',), ..."""

    def filtered_outputs(self, factor: Any, images: Any = None, activation: Any = None) -> Any:
        """The explained outputs with the layer's map multiplied by `factor` [rows, H, W],
        from `activation` at the layer or from `images` (in a graph or function being
        built): TensorFlow tensors, all four."""

    def logits_of(self, images: Any) -> Any:
        """The unfiltered network's logits [N, num_classes] on `images` (RGB 0..255 at the
        input size, the network's preprocessing inside), in a graph or function being built:
        TensorFlow tensors (Opti-CAM's masked images)."""

    def optimization_program(self, head: "Head", loop: "Loop"
                             ) -> Union["SessionProgram", "FunctionProgram"]:
        """The head's optimisation by `loop`'s update and stopping rule on this model
        (l2caf.optimize's SessionProgram or FunctionProgram)."""

    def linear_head(self) -> Tuple[Any, Any]:
        """(weights [C, K], biases [K]) of the linear head after linear_head_layer, as
        tensors."""

    def linear_head_weights(self) -> np.ndarray:
        """The weights of `linear_head`, [C, K], as an array."""

    def output_gradients(self, images: np.ndarray, activations: np.ndarray,
                         output_weights: np.ndarray) -> np.ndarray:
        """d(sum of output_weights * logits)/d(activation at the layer) of each row."""

    def close(self) -> None:
        """Gives back what the model holds (a session)."""


def rows_of(rows: Optional[int], batch_size: Optional[int]) -> int:
    """A model's filter rows from its `rows` or `batch_size` argument (two names of one
    thing: the (image, class) pairs explained at once; default 1)."""
    if rows is not None and batch_size is not None and rows != batch_size:
        raise ConfigError("rows (%r) and batch_size (%r) are two names of one number, the "
                          "(image, class) pairs explained at once: give one of them"
                          % (rows, batch_size))
    name, value = ("batch_size", batch_size) if batch_size is not None else ("rows", rows)
    return check_whole_number(name, 1 if value is None else value, "at least 1", 1)


def labels_of(labels: Optional[Union[str, Sequence[str]]], num_labels: int,
              name: str) -> Optional[List[str]]:
    """A model's class names from its `labels` argument: None (no names), the path of a
    label list (one class name a line), or the names, num_labels of them (model `name`)."""
    if labels is None:
        return None
    names = data.read_label_file(labels) if isinstance(labels, str) else list(labels)
    if len(names) != num_labels or not all(isinstance(n, str) for n in names):
        raise ConfigError("labels: model %s has %d classes, and %d label names were given "
                          "(%s); give one name (a str) per class, in class id order"
                          % (name, num_labels, len(names), labels if isinstance(labels, str)
                             else "a list"))
    return names


def prepare_images(pictures: Union[np.ndarray, Sequence[np.ndarray]],
                   size: Union[int, Sequence[int]]) -> np.ndarray:
    """RGB images -> a network's input batch, float32 [N, height, width, 3]: an array
    already at the input size, or any images (arrays [H, W, 3], 0..255), resized whole.
    size: (height, width), or one number for a square."""
    height, width = image_io.size_pair(size)
    if isinstance(pictures, np.ndarray) and pictures.shape[1:] == (height, width, 3):
        return pictures.astype(np.float32, copy=False)
    return np.stack([image_io.resize(_uint8_or_float32(picture), (height, width))
                     for picture in pictures]).astype(np.float32)


def _uint8_or_float32(picture):
    """An image as OpenCV resizes it: uint8 pictures as they are, others as float32."""
    picture = np.asarray(picture)
    return picture if picture.dtype == np.uint8 else picture.astype(np.float32)
