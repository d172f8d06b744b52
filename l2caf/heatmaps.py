"""Heatmaps as pictures: overlays on the image and GIF animations."""
import cv2
import numpy as np
from PIL import Image


def _blue_white_red():
    """256-entry RGB lookup table of matplotlib's 'bwr' map (blue, white, red), the original's."""
    ramp = np.linspace(0.0, 1.0, 256)
    low = np.clip(2.0 * ramp, 0.0, 1.0)          # 0 at blue, 1 from white on
    high = np.clip(2.0 - 2.0 * ramp, 0.0, 1.0)   # 1 up to white, 0 at red
    return (np.stack([low, np.minimum(low, high), high], axis=1) * 255).round().astype(np.uint8)


BLUE_WHITE_RED = _blue_white_red()


def normalize(heatmap):
    """Min-max normalised to [0, 1]; a flat map becomes all zeros."""
    heatmap = np.asarray(heatmap, dtype=np.float64)
    low, high = heatmap.min(), heatmap.max()
    if high - low <= 0:
        return np.zeros_like(heatmap)
    return (heatmap - low) / (high - low)


def colormap_table(colormap=None) -> np.ndarray:
    """The 256-entry RGB uint8 lookup table of a colour map: None (blue-white-red) or a
    matplotlib Colormap object ([0, 1] -> RGBA in [0, 1])."""
    if colormap is None:
        return BLUE_WHITE_RED
    rgba = np.asarray(colormap(np.linspace(0.0, 1.0, 256)), np.float64)
    return (rgba[:, :3] * 255).round().astype(np.uint8)


def colorize(heatmap, size, colormap=None):
    """Heatmap resized to size = (height, width), normalised, through the colour map (see
    colormap_table; default blue-white-red)."""
    resized = cv2.resize(np.asarray(heatmap, np.float32), (size[1], size[0]),
                         interpolation=cv2.INTER_LINEAR)
    indices = (normalize(resized) * 255).round().astype(np.uint8)
    return colormap_table(colormap)[indices]


def show_heatmap_on_image(image, heatmap, alpha=0.6, colormap=None):
    """The RGB uint8 `image` with `heatmap` (any resolution) blended on top, at the image's
    size, coloured by `colormap` (None: blue-white-red; or a matplotlib Colormap object)."""
    colored = colorize(heatmap, image.shape[:2], colormap).astype(np.float32)
    blended = alpha * colored + (1.0 - alpha) * image.astype(np.float32)
    return blended.round().astype(np.uint8)


def write_png(stream, rgb):
    """Writes an RGB uint8 image to a binary stream as PNG."""
    stream.write(cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes())


def write_gif(stream, frames, frame_seconds=0.2):
    """Writes RGB uint8 frames to a binary stream as a looping GIF."""
    pictures = [Image.fromarray(frame) for frame in frames]
    pictures[0].save(stream, format="GIF", save_all=True, append_images=pictures[1:], loop=0,
                     duration=int(frame_seconds * 1000))
