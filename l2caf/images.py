"""Reading images in any common format as RGB, as people see them, and finding a run's images.

Pillow decodes the formats it knows (it applies the EXIF orientation of phone photos and
reports truncated files); OpenCV the others. An image over MAX_PIXELS is refused before it
is decoded (a PNG of a few kilobytes can hold a 40000 x 30000 image).
"""
import collections
import os
import re
import warnings
from typing import List, Sequence, Tuple, Union

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from l2caf.errors import ImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm",
                    ".pgm", ".jp2")
MAX_PIXELS = 150 * 10 ** 6
# Pillow warns about images over 89 megapixels; MAX_PIXELS is the limit here.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """Any OpenCV image (gray, BGR, BGRA; 8 or 16 bit or float) -> RGB uint8."""
    if image.dtype == np.uint16:
        image = (image / 257.0).round().astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image.astype(np.float64) * (255.0 if image.max() <= 1.0 else 1.0),
                        0, 255).round().astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        image = _on_white(image)
    return cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2RGB)


def _on_white(image):
    """Transparent pixels show as white, as image viewers do: 4 channels -> 3."""
    colour = image[:, :, :3].astype(np.float32)
    alpha = image[:, :, 3:].astype(np.float32) / 255.0
    return (colour * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)


def _from_pillow(picture):
    """A Pillow image, turned upright, -> RGB uint8."""
    picture = ImageOps.exif_transpose(picture)
    if picture.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):  # deep gray
        return to_rgb8(np.asarray(picture).astype(np.uint16 if picture.mode != "F"
                                                  else np.float32))
    if picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info:
        return _on_white(np.asarray(picture.convert("RGBA")))
    return np.asarray(picture if picture.mode == "RGB" else picture.convert("RGB"))


def read_image(path: str) -> np.ndarray:
    """The image at `path` as an RGB uint8 array [H, W, 3], upright. ImageError naming the
    file if it cannot be used, whatever the reason."""
    if not os.path.exists(path):
        raise ImageError("%s: no such file" % path)
    if os.path.isdir(path):
        raise ImageError("%s: is a folder, not an image" % path)
    too_large = "%s: the image has %s, over the limit of %g megapixels" % (
        path, "%s", MAX_PIXELS / 1e6)
    try:
        with Image.open(path) as picture:
            width, height = picture.size
            if width * height > MAX_PIXELS:
                raise ImageError(too_large % ("%dx%d pixels" % (width, height)))
            return _from_pillow(picture)
    except UnidentifiedImageError:
        pass  # a format Pillow does not know: OpenCV's turn
    except Image.DecompressionBombError as error:  # Pillow's own, higher limit
        pixels = re.search(r"\((\d+) pixels\)", str(error))
        raise ImageError(too_large % ("%d megapixels" % (int(pixels.group(1)) // 10 ** 6)
                                      if pixels else "too many pixels")) from None
    except ImageError:
        raise
    except Exception as error:  # any decoder error of any format: this image cannot be used
        raise ImageError("%s: not a readable image (%s)" % (path, error)) from None
    data = np.fromfile(path, dtype=np.uint8)
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error as error:
        raise ImageError("%s: not a readable image (%s)" % (path, error.err)) from None
    if image is None:
        raise ImageError("%s: not a readable image (corrupt, empty, or an unknown format)" % path)
    return to_rgb8(image)


def size_pair(size: Union[int, str, Sequence[int]]) -> Tuple[int, int]:
    """(height, width) of a size given as one number (a square), as (height, width), or as
    text: "N" or "HxW" (e.g. "224x160"; spaces and the x's case do not matter). ValueError for
    text that is not a size."""
    if isinstance(size, str):
        parts = size.lower().replace(" ", "").split("x")
        if len(parts) > 2 or not all(part.isdigit() for part in parts):
            raise ValueError("not a size: %r" % size)
        size = [int(part) for part in parts] if len(parts) == 2 else int(parts[0])
    # (mypy cannot narrow by np.ndim: a number in the first case, a pair in the second)
    if np.ndim(size) == 0:
        return int(size), int(size)  # type: ignore[arg-type]
    height, width = size  # type: ignore[misc]
    return int(height), int(width)


def resize(image: np.ndarray, size: Union[int, Sequence[int]]) -> np.ndarray:
    """The whole image resized to `size` (one number for a square, or (height, width);
    bilinear: the original resizes, it does not crop)."""
    height, width = size_pair(size)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def list_images(source: str) -> List[str]:
    """Image paths of a run: one image file, a folder's images (sorted), or a list file.

    A list file is a text file with one path per line (relative to the list's folder when
    not absolute); blank lines and lines starting with # are ignored. Paths are normalised
    (os.path.normpath): ./x.jpg and x.jpg are one image, listed once.
    """
    if os.path.isdir(source):
        paths = [os.path.join(source, name) for name in sorted(os.listdir(source))
                 if name.lower().endswith(IMAGE_EXTENSIONS)]
        if not paths:
            raise ImageError("%s: the folder holds no images (%s)"
                             % (source, " ".join(IMAGE_EXTENSIONS)))
    elif not os.path.exists(source):
        raise ImageError("%s: no such image, folder or list file" % source)
    elif source.lower().endswith((".txt", ".lst", ".list")):
        base = os.path.dirname(source)
        with open(source) as stream:
            lines = [line.strip() for line in stream]
        paths = [line if os.path.isabs(line) else os.path.join(base, line)
                 for line in lines if line and not line.startswith("#")]
        if not paths:
            raise ImageError("%s: the list file names no images" % source)
    else:
        paths = [source]  # an image (with an unusual extension, read_image will tell)
    return list(collections.OrderedDict.fromkeys(os.path.normpath(path) for path in paths))
