"""matplotlib for the pictures, without a display and without changing the user's matplotlib.

Figures are `matplotlib.figure.Figure`s on an Agg canvas: pyplot, which picks a backend for
the whole process and keeps every figure alive in a global list, is never imported. The one
setting changed is PDF's font type, inside an `rc_context` around the save only.
"""
import os

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from l2caf.errors import ConfigError, OutputError
from l2caf.files import write_atomically

DPI = 300
# Neither colour is in the colour maps people use for heatmaps (bwr, jet, viridis, inferno,
# hot, ...), so the boxes stand out on every overlay.
GROUND_TRUTH_COLOR = "#00ff00"
BOX_COLOR = "#ff00ff"
BOX_LINE_WIDTH = 1.2  # points
BOX_EDGE_COLOR = "#000000"  # drawn under a box's colour, wider: a box shows on any background
# TrueType fonts in the PDF (Type 42) rather than Type 3: what publishers ask for, and the
# text stays text (selectable, searchable).
_PDF_SETTINGS = {"pdf.fonttype": 42}

METHOD_NAMES = {"l2caf": "L2-CAF", "opticam": "Opti-CAM", "cam": "CAM", "gradcam": "Grad-CAM",
                "gradcampp": "Grad-CAM++", "scorecam": "Score-CAM", "layercam": "LayerCAM",
                "random": "random"}


def method_name(method: str, caf_variant: str = "cls_specific") -> str:
    """A method as papers write it ('Grad-CAM'), with '(cls_oblivious)' for that variant."""
    name = METHOD_NAMES.get(method, method)
    return name + " (cls_oblivious)" if caf_variant == "cls_oblivious" else name


def new_figure(width: float, height: float, dpi: int = DPI, layout: str = "constrained") \
        -> Figure:
    """A figure of width x height inches on its own Agg canvas."""
    figure = Figure(figsize=(width, height), dpi=dpi, layout=layout)
    FigureCanvasAgg(figure)
    return figure


def colormap(name: str):
    """The matplotlib colour map called name (what l2caf.heatmaps' overlays take, and the
    colour bars show); ConfigError naming a few if there is none."""
    try:
        return matplotlib.colormaps[name]
    except KeyError:
        raise ConfigError("--colormap %s is not a matplotlib colour map; try bwr (the run's "
                          "overlays), jet, viridis, inferno or turbo" % name) from None


def check_alpha(alpha: float) -> float:
    """alpha, or a ConfigError unless it is in [0, 1]."""
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError("--alpha is the heatmap's opacity in [0, 1], got %g" % alpha)
    return alpha


def save_figure(figure: Figure, prefix: str, dpi: int = DPI) -> list:
    """Writes prefix.png (at dpi) and prefix.pdf (vector: boxes, lines and text; images
    embedded), each whole or not at all; returns their paths."""
    folder = os.path.dirname(os.path.abspath(prefix))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise OutputError("cannot write %s: %s" % (prefix, error.strerror or error)) from None
    write_atomically(prefix + ".png", lambda stream: figure.savefig(stream, format="png",
                                                                    dpi=dpi))
    with matplotlib.rc_context(_PDF_SETTINGS):
        write_atomically(prefix + ".pdf", lambda stream: figure.savefig(stream, format="pdf",
                                                                        dpi=dpi))
    return [prefix + ".png", prefix + ".pdf"]
