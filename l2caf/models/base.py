"""What every model offers the methods and the metrics (`ExplainableModel`), which both
l2caf.models.slim.Model and l2caf.models.keras.KerasModel declare, with the pieces they
share: the forward pass's `Prediction` and the input batch (`prepare_images`). No
TensorFlow here."""
import collections
from typing import TYPE_CHECKING, Any, Optional, Protocol, Sequence, Tuple, Union

import numpy as np

from l2caf import images as image_io

if TYPE_CHECKING:  # (TensorFlow)
    from l2caf.heads import Head
    from l2caf.optimize import FunctionProgram, SessionProgram

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
    layer, or None.
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

    def optimization_program(self, head: "Head") -> Union["SessionProgram", "FunctionProgram"]:
        """The head's optimisation on this model (l2caf.optimize's SessionProgram or
        FunctionProgram)."""

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
