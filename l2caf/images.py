"""Reading images in any common format as RGB, and finding the images of a run."""
import os

import cv2
import numpy as np

from l2caf.errors import ImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm",
                    ".pgm", ".jp2")


def to_rgb8(image):
    """Any OpenCV image (gray, BGR, BGRA; 8 or 16 bit or float) -> RGB uint8."""
    if image.dtype == np.uint16:
        image = (image / 257.0).round().astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image.astype(np.float64) * (255.0 if image.max() <= 1.0 else 1.0),
                        0, 255).round().astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        # Transparent pixels show as white, as image viewers do.
        rgb = image[:, :, :3].astype(np.float32)
        alpha = image[:, :, 3:].astype(np.float32) / 255.0
        image = (rgb * alpha + 255.0 * (1.0 - alpha)).round().astype(np.uint8)
    return cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2RGB)


def read_image(path):
    """The image at `path` as an RGB uint8 array [H, W, 3]."""
    if not os.path.exists(path):
        raise ImageError("%s: no such file" % path)
    if os.path.isdir(path):
        raise ImageError("%s: is a folder, not an image" % path)
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise ImageError("%s: not a readable image (corrupt, empty, or an unknown format)" % path)
    return to_rgb8(image)


def resize(image, size):
    """The whole image resized to size x size (the original resizes, it does not crop)."""
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)


def list_images(source):
    """Image paths of a run: one image file, a folder's images (sorted), or a list file.

    A list file is a text file with one path per line (relative to the list's folder when
    not absolute); blank lines and lines starting with # are ignored.
    """
    if os.path.isdir(source):
        paths = [os.path.join(source, name) for name in sorted(os.listdir(source))
                 if name.lower().endswith(IMAGE_EXTENSIONS)]
        if not paths:
            raise ImageError("%s: the folder holds no images (%s)"
                             % (source, " ".join(IMAGE_EXTENSIONS)))
        return paths
    if not os.path.exists(source):
        raise ImageError("%s: no such image, folder or list file" % source)
    if source.lower().endswith(IMAGE_EXTENSIONS):
        return [source]
    if source.lower().endswith((".txt", ".lst", ".list")):
        base = os.path.dirname(source)
        with open(source) as stream:
            lines = [line.strip() for line in stream]
        paths = [line if os.path.isabs(line) else os.path.join(base, line)
                 for line in lines if line and not line.startswith("#")]
        if not paths:
            raise ImageError("%s: the list file names no images" % source)
        return paths
    return [source]  # an image with an unusual extension: read_image will tell
