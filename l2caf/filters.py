"""The L2-CAF filter f and its constraint n(f), one row per (image, class) being explained.

l2norm (the paper's): n(f) = f / ||f||_2 over the H x W entries. softmax: n(f) = softmax of
the H x W entries. gauss: f is a mean mu (row, column offsets from the centre) and n(f) the
2-D Gaussian density with identity covariance on the grid -r..r, normalised to sum 1 (odd,
square maps only). The final heatmap is n(|f|) for l2norm (the paper's figures show the
magnitude), n(f) otherwise.
"""
import zlib

import numpy as np

from l2caf.errors import ConfigError
from nets.tf_slim_compat import tf

FILTER_TYPES = ("l2norm", "softmax", "gauss")


def check_fits(filter_type, layer, height, width):
    """A ConfigError unless a filter of `filter_type` can go on `layer`'s height x width map."""
    if filter_type not in FILTER_TYPES:
        raise ConfigError("unknown filter_type %r; choose one of %s"
                          % (filter_type, ", ".join(FILTER_TYPES)))
    if height * width == 1:
        raise ConfigError("layer %s has a 1x1 map, where a filter can only scale the whole "
                          "map; choose a layer with a spatial map (see --list_layers)" % layer)
    if filter_type == "gauss" and (height != width or height % 2 == 0):
        raise ConfigError("filter_type gauss needs a square feature map of odd size, but layer "
                          "%s is %dx%d; use l2norm or softmax there, or another layer"
                          % (layer, height, width))


def filter_shape(filter_type, rows, height, width):
    """Shape of the raw filter of `rows` rows for a height x width map."""
    return [rows, 2] if filter_type == "gauss" else [rows, height, width]


def random_generator(seed, image_key, class_id):
    """A numpy generator fixed by (seed, image key, class id or None)."""
    class_code = 0 if class_id is None else class_id + 1
    return np.random.default_rng([seed, zlib.crc32(image_key.encode("utf-8")), class_code])


def initial_filter(filter_type, height, width, seed, image_key, class_id, kind="normal"):
    """A filter row: kind normal (the original's): from N(0, 1), fixed by (seed, image key,
    class) whatever the batch around it (gauss: the mean, as in the original); kind ones
    (the PyTorch port's): every entry 1 (gauss: the mean at (1, 1))."""
    shape = filter_shape(filter_type, 1, height, width)[1:]
    if kind == "ones":
        return np.ones(shape, np.float32)
    rng = random_generator(seed, image_key, class_id)
    return rng.standard_normal(shape).astype(np.float32)


def gaussian_kernel(mu, size):
    """[rows, size, size] Gaussian densities (identity covariance) at the means mu [rows, 2],
    on the grid -r..r (size = 2 r + 1), each summing to 1."""
    radius = (size - 1) // 2
    grid = tf.range(-radius, radius + 1, dtype=mu.dtype)
    d_row = grid[None, :, None] - mu[:, 0, None, None]
    d_col = grid[None, None, :] - mu[:, 1, None, None]
    density = tf.exp(-0.5 * (tf.square(d_row) + tf.square(d_col)))
    return density / tf.reduce_sum(density, axis=[1, 2], keepdims=True)


def normalize(raw, filter_type, size):
    """n(f) of each row of `raw`: the factor that multiplies the map. size: the map's height
    (the gauss grid)."""
    if filter_type == "gauss":
        return gaussian_kernel(raw, size)
    flat = tf.reshape(raw, [tf.shape(raw)[0], -1])
    if filter_type == "l2norm":
        return raw / tf.norm(flat, axis=1)[:, None, None]
    return tf.reshape(tf.nn.softmax(flat, axis=1), tf.shape(raw))


def heatmap(raw, filter_type, size):
    """The heatmap of each row of `raw`, [rows, H, W]."""
    return normalize(tf.abs(raw) if filter_type == "l2norm" else raw, filter_type, size)
