"""L2-CAF: constrained attention filters that show what a pretrained CNN looks at.

    from l2caf import Model, L2CAF, read_image, show_heatmap_on_image, upsample

    model = Model.load("demo_densenet", "l2caf/demo_model/demo_densenet.ckpt")
    image = read_image("input_imgs/shapes_1.jpg")
    [explanation] = L2CAF(model, settings={"max_iters": 300})(image)
    overlay = show_heatmap_on_image(image, explanation.heatmap)
    at_image_size = upsample(explanation.heatmap, image.shape[:2])

The methods (L2CAF, OptiCAM, CAM, GradCAM, GradCAMPlusPlus, LayerCAM, ScoreCAM, RandomMap)
are called alike; l2caf.inputs says what images, classes and keys may be. L2CAF(model,
preset="pytorch") runs the authors' PyTorch port's optimisation instead of their TensorFlow
one's. Faithfulness(model) scores heatmaps (deletion, insertion, Average Drop, Increase in
Confidence), load_keras_model loads a saved Keras model safely, and load_heatmap reads a
heatmap of a run folder.

The public names are imported on first use, so that the parts without TensorFlow (the
configuration, the evaluation, the results readers) stay light.
"""
import importlib
from typing import Any

__version__ = "0.2.0"

_PUBLIC = {
    "Model": "l2caf.models.slim", "KerasModel": "l2caf.models.keras",
    "load_keras_model": "l2caf.models.keras_loading",
    "Faithfulness": "l2caf.evaluation.faithfulness", "load_heatmap": "l2caf.runs.folder",
    "L2CAF": "l2caf.methods", "OptiCAM": "l2caf.methods", "CAM": "l2caf.methods",
    "GradCAM": "l2caf.methods", "GradCAMPlusPlus": "l2caf.methods", "LayerCAM": "l2caf.methods",
    "ScoreCAM": "l2caf.methods", "RandomMap": "l2caf.methods", "Explanation": "l2caf.methods",
    "Settings": "l2caf.settings", "read_image": "l2caf.images",
    "show_heatmap_on_image": "l2caf.heatmaps", "upsample": "l2caf.heatmaps",
    "L2CAFError": "l2caf.errors",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError("module 'l2caf' has no attribute %r" % name)
    return getattr(importlib.import_module(_PUBLIC[name]), name)
