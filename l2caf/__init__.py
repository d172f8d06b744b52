"""L2-CAF: constrained attention filters that show what a pretrained CNN looks at.

    from l2caf import Model, L2CAF, read_image, show_heatmap_on_image

    model = Model.load("demo_densenet", "l2caf/demo_model/demo_densenet.ckpt")
    image = read_image("input_imgs/shapes_1.jpg")
    [explanation] = L2CAF(model, settings={"max_iters": 300})([image])
    overlay = show_heatmap_on_image(image, explanation.heatmap)

The public names are imported on first use, so that the parts without TensorFlow (the
configuration, the evaluation, the results readers) stay light.
"""
import importlib

__version__ = "0.2.0"

_PUBLIC = {
    "Model": "l2caf.model", "L2CAF": "l2caf.methods", "CAM": "l2caf.methods",
    "GradCAM": "l2caf.methods", "Explanation": "l2caf.methods", "Settings": "l2caf.settings",
    "show_heatmap_on_image": "l2caf.heatmaps", "read_image": "l2caf.images",
    "L2CAFError": "l2caf.errors", "KerasModel": "l2caf.keras_model",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError("module 'l2caf' has no attribute %r" % name)
    return getattr(importlib.import_module(_PUBLIC[name]), name)
