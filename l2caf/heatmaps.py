"""Heatmaps as pictures: at the image's size (`upsample`), overlays on the image, GIFs.

`upsample` is the interpolation the evaluation uses (`resize_heatmap`: OpenCV's bilinear,
pixel centres aligned as in cv2.resize, a flat map kept exactly flat), so that a map looked
at is the map that was scored. Overlays take OpenCV's colour maps and
matplotlib's (imported only then); the default is the original's blue-white-red.
"""
from typing import IO, TYPE_CHECKING, Optional, Sequence, Union

import cv2
import numpy as np
from PIL import Image

from l2caf.errors import ConfigError
from l2caf.images import size_pair
from l2caf.settings import check_number

if TYPE_CHECKING:
    import numpy.typing as npt


def _blue_white_red():
    """256-entry RGB lookup table of matplotlib's 'bwr' map (blue, white, red), the original's."""
    ramp = np.linspace(0.0, 1.0, 256)
    low = np.clip(2.0 * ramp, 0.0, 1.0)          # 0 at blue, 1 from white on
    high = np.clip(2.0 - 2.0 * ramp, 0.0, 1.0)   # 1 up to white, 0 at red
    return (np.stack([low, np.minimum(low, high), high], axis=1) * 255).round().astype(np.uint8)


BLUE_WHITE_RED = _blue_white_red()

# OpenCV's colour maps by name: cv2.COLORMAP_JET is "jet".
OPENCV_COLORMAPS = {name[len("COLORMAP_"):].lower(): getattr(cv2, name)
                    for name in dir(cv2) if name.startswith("COLORMAP_")}


def check_finite_2d(heatmap: "npt.ArrayLike") -> np.ndarray:
    """The heatmap as a float64 array; ValueError if it is not a non-empty 2-D array of finite
    values."""
    heatmap = np.asarray(heatmap, dtype=np.float64)
    if heatmap.ndim != 2 or heatmap.size == 0:
        raise ValueError("a heatmap must be a non-empty 2-D array, got shape %s"
                         % (heatmap.shape,))
    if not np.all(np.isfinite(heatmap)):
        raise ValueError("the heatmap holds NaN or infinite values")
    return heatmap


def resize_heatmap(heatmap: "npt.ArrayLike", image_size: Sequence[int]) -> np.ndarray:
    """The heatmap bilinearly resized to image_size = (height, width), as float64.

    Raises ValueError for a map that is not 2-D or holds NaN or infinity. A flat map is
    returned exactly flat (interpolation could otherwise leave rounding ripples on it).
    """
    heatmap = check_finite_2d(heatmap)
    height, width = image_size
    if height < 1 or width < 1:
        raise ValueError("image_size must be a positive (height, width), got %s"
                         % (image_size,))
    if heatmap.min() == heatmap.max():
        return np.full((height, width), heatmap.flat[0])
    return cv2.resize(heatmap, (width, height), interpolation=cv2.INTER_LINEAR)


def upsample(heatmaps: Union[np.ndarray, Sequence[np.ndarray]],
             size: Union[int, Sequence[int]]) -> np.ndarray:
    """Heatmaps resized to size = (height, width) (one number for a square), as float64:
    one map [h, w] gives [height, width]; a stack [N, h, w] or a list of maps (any sizes)
    gives [N, height, width], e.g. for matplotlib's imshow. The evaluation's bilinear
    interpolation (`resize_heatmap`)."""
    try:
        height, width = size_pair(size)
    except (TypeError, ValueError):
        raise ConfigError("size must be one number or (height, width), got %r"
                          % (size,)) from None
    if height < 1 or width < 1:
        raise ConfigError("size must be positive, got %r" % (size,))
    single = isinstance(heatmaps, np.ndarray) and heatmaps.ndim == 2
    maps = [heatmaps] if single else list(heatmaps)
    if not maps:
        raise ConfigError("upsample got no heatmaps")
    resized = np.empty((len(maps), height, width), np.float64)
    for index, heatmap in enumerate(maps):
        try:
            resized[index] = resize_heatmap(heatmap, (height, width))
        except (TypeError, ValueError) as error:
            raise ConfigError("heatmap %d (shape %s): %s" % (index, np.shape(heatmap),
                                                            error)) from None
    return resized[0] if single else resized


def normalize(heatmap: "npt.ArrayLike") -> np.ndarray:
    """Min-max normalised to [0, 1]; a flat map becomes all zeros."""
    heatmap = np.asarray(heatmap, dtype=np.float64)
    low, high = heatmap.min(), heatmap.max()
    if high - low <= 0:
        return np.zeros_like(heatmap)
    return (heatmap - low) / (high - low)


def colormap_table(colormap: Optional[Union[int, str, object]] = None) -> np.ndarray:
    """The 256-entry RGB uint8 lookup table of a colour map: None (blue-white-red), an
    OpenCV colour map (cv2.COLORMAP_JET, or its name "jet"), or a matplotlib colour map by
    name ("viridis"; OpenCV's own names mean OpenCV's maps) or as a Colormap object."""
    if colormap is None:
        return BLUE_WHITE_RED
    ramp = np.arange(256, dtype=np.uint8)[:, None]
    if isinstance(colormap, str) and colormap.lower() in OPENCV_COLORMAPS:
        colormap = OPENCV_COLORMAPS[colormap.lower()]
    if isinstance(colormap, (int, np.integer)) and not isinstance(colormap, bool):
        if int(colormap) not in OPENCV_COLORMAPS.values():
            raise ConfigError("colormap %d is not one of OpenCV's (cv2.COLORMAP_*: %s)"
                              % (colormap, ", ".join(sorted(OPENCV_COLORMAPS))))
        return cv2.cvtColor(cv2.applyColorMap(ramp, int(colormap)), cv2.COLOR_BGR2RGB)[:, 0]
    if isinstance(colormap, str):
        import matplotlib  # only for its colour maps, and only when one is named
        try:
            colormap = matplotlib.colormaps[colormap]
        except KeyError:
            raise ConfigError("colormap %r is neither OpenCV's (%s) nor matplotlib's "
                              "(matplotlib.colormaps)"
                              % (colormap, ", ".join(sorted(OPENCV_COLORMAPS)))) from None
    if callable(colormap):  # a matplotlib Colormap: [0, 1] -> RGBA in [0, 1]
        rgba = np.asarray(colormap(np.linspace(0.0, 1.0, 256)), np.float64)
        if rgba.shape not in ((256, 3), (256, 4)):
            raise ConfigError("colormap %r gives colours of shape %s, not RGB(A) rows"
                              % (colormap, rgba.shape))
        return (rgba[:, :3] * 255).round().astype(np.uint8)
    raise ConfigError("colormap must be None, an OpenCV colour map (cv2.COLORMAP_JET or "
                      "'jet'), or a matplotlib colour map name or object, got %r"
                      % (colormap,))


def colorize(heatmap: np.ndarray, size: Sequence[int],
             colormap: Optional[Union[int, str, object]] = None) -> np.ndarray:
    """Heatmap upsampled to size = (height, width), min-max normalised, through the colour
    map (see colormap_table): RGB uint8 [height, width, 3]."""
    heatmap = np.asarray(heatmap)
    if heatmap.ndim != 2:
        raise ConfigError("a heatmap is a 2-D array, got shape %s" % (heatmap.shape,))
    indices = (normalize(upsample(heatmap, size)) * 255).round()
    return colormap_table(colormap)[indices.astype(np.uint8)]


def show_heatmap_on_image(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.6,
                          colormap: Optional[Union[int, str, object]] = None,
                          fade: bool = False) -> np.ndarray:
    """The RGB uint8 `image` with `heatmap` (any resolution) upsampled to its size, min-max
    normalised, coloured (colormap: None for blue-white-red, an OpenCV colour map such as
    cv2.COLORMAP_JET or "jet", or a matplotlib one by name or object) and blended on top
    with opacity `alpha` (a finite number in [0, 1]: 0 shows the image alone, 1 the heatmap
    alone; ConfigError otherwise). fade: the opacity grows with the heatmap's value, from 0
    at its minimum to alpha at its maximum, so that the image stays as it is where the map
    is low (instead of tinted by the colour map's low end)."""
    alpha = check_number("alpha", alpha, "in [0, 1]", lambda x: 0 <= x <= 1)
    colored = colorize(heatmap, image.shape[:2], colormap).astype(np.float32)
    if fade:
        alpha = alpha * normalize(upsample(heatmap, image.shape[:2])).astype(np.float32)
        alpha = alpha[..., None] if image.ndim == 3 else alpha
    blended = alpha * colored + (1.0 - alpha) * image.astype(np.float32)
    return blended.round().astype(np.uint8)


def write_png(stream: IO[bytes], rgb: np.ndarray) -> None:
    """Writes an RGB uint8 image to a binary stream as PNG."""
    stream.write(cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes())


def write_gif(stream: IO[bytes], frames: Sequence[np.ndarray], frame_seconds: float = 0.2) -> None:
    """Writes RGB uint8 frames to a binary stream as a looping GIF, frame_seconds per frame."""
    pictures = [Image.fromarray(frame) for frame in frames]
    pictures[0].save(stream, format="GIF", save_all=True, append_images=pictures[1:], loop=0,
                     duration=int(frame_seconds * 1000))
