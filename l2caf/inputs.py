"""What every method takes: images, the classes to explain and the images' keys, checked in
one place, so that the rules are the same for L2CAF, CAM, Grad-CAM and the others.

Images (`ImageBatches`):
  - one image: an array or tensor [H, W, 3]; for a model of one channel also [H, W] or
    [H, W, 1];
  - a batch: [N, H, W, C];
  - a list or tuple of images (and batches), of any sizes;
  - any other iterable of images or batches (a tf.data.Dataset, a generator), read
    STREAM_IMAGES images at a time.
  Values are RGB 0..255: uint8 (or another integer type), or floats 0..255. A float image
  whose values all lie in 0..1 and are not all whole numbers is refused (it is a 0..1 image,
  or a network input; a uint8 image converted to float has whole numbers and passes).
  `preprocessed=True`: the batches are the network's input already (l2caf.preprocessing's
  `preprocess` applied, at the model's input size); they are converted back with
  `unpreprocess`. Every other image is resized whole to the input size (`model.prepare`).

Classes (`Targets`): None (the top-1 predicted class of each image), one int for all
images, one int per image, a list of ints per image, or numpy integer arrays of those shapes
([N] or [N, k]). Floats, booleans, strings, one-hot rows and ids outside 0..num_labels-1
are refused, as are fewer or more entries than images. Keys (the names that seed L2-CAF's
filters and the random maps): None (each image's index) or one str or int per image.

Every mistake is an l2caf.errors.ConfigError that names the image (its index, shape,
channels, dtype) or the argument, and says what is expected.
"""
import numbers
import os
from typing import Iterator, List, Optional

import numpy as np

from l2caf import preprocessing
from l2caf.errors import ConfigError

# Images of a stream (an iterable other than an array or a list) go through the network this
# many at a time (or the model's rows, when more).
STREAM_IMAGES = 64


def _is_tensor(value):
    """A TensorFlow (or other framework's) eager tensor: it converts itself with .numpy()."""
    return callable(getattr(value, "numpy", None)) and not isinstance(value, np.ndarray)


def _as_array(item, index):
    """One image or batch of a user's input as a numpy array, or a ConfigError naming it."""
    if item is None:
        raise ConfigError("image %d is None" % index)
    if isinstance(item, (str, bytes, os.PathLike)):
        raise ConfigError("image %d is a path (%r), not an image: read it with "
                          "l2caf.read_image(path)" % (index, item))
    if _is_tensor(item):
        item = item.numpy()
    try:
        array = np.asarray(item)
    except ValueError:  # ragged nested lists
        raise ConfigError("image %d is not an array of numbers (%s)"
                          % (index, type(item).__name__)) from None
    if array.dtype == np.float16:
        return array.astype(np.float32)
    if array.dtype.kind not in "uif":
        raise ConfigError("image %d has dtype %s; images are uint8 or float arrays of RGB "
                          "values 0..255" % (index, array.dtype))
    return array


def _whole_numbers(array):
    return bool(np.all(array == np.round(array)))


class ImageBatches(object):
    """The network-input batches (float32 [n, H, W, C], RGB 0..255 at the model's input size)
    of the images a user gave, checked image by image; `count` is their number, or None for a
    stream (known once it is read)."""

    def __init__(self, images, model, preprocessed: bool = False):
        self.model, self.preprocessed = model, bool(preprocessed)
        self.height, self.width, self.channels = model.input_shape
        self.count: Optional[int] = None
        if images is None:
            raise ConfigError("images is None: give an image, a list of images, a batch or a "
                              "tf.data.Dataset of them")
        if isinstance(images, (str, bytes, os.PathLike)):
            raise ConfigError("images is a path (%r): read it with l2caf.read_image(path)"
                              % (images,))
        if isinstance(images, dict):
            raise ConfigError("images is a dict; give an image, a list of images or a batch")
        if _is_tensor(images):
            images = images.numpy()
        if isinstance(images, np.ndarray) and images.dtype != object:
            self._in_memory = [self._checked(_as_array(images, 0), 0)]
        elif isinstance(images, (list, tuple, np.ndarray)):
            self._in_memory, start = [], 0
            for item in images:
                batch = self._checked(_as_array(item, start), start)
                self._in_memory.append(batch)
                start += len(batch)
        else:
            try:
                self._stream = iter(images)
            except TypeError:
                raise ConfigError("images must be an image, a list of images, a batch or an "
                                  "iterable of them (a tf.data.Dataset), got %s"
                                  % type(images).__name__) from None
            self._in_memory = None
            return
        self.count = sum(len(batch) for batch in self._in_memory)
        if self.count == 0:
            raise ConfigError("images holds no image")

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._in_memory is not None:
            if len(self._in_memory) == 1:  # one array: prepared as it is (no copy at size)
                yield self._prepared(self._in_memory[0])
            else:
                yield self._prepared([image for batch in self._in_memory for image in batch])
            return
        chunk, count = [], 0
        size = max(STREAM_IMAGES, getattr(self.model, "rows", 1))
        for item in self._stream:
            if isinstance(item, (tuple, dict)):
                raise ConfigError("the iterable of images gives %s elements (image %d on), "
                                  "e.g. (images, labels) pairs: give the images alone (for a "
                                  "tf.data.Dataset: dataset.map(lambda images, labels: "
                                  "images)) and the labels as classes"
                                  % (type(item).__name__, count))
            batch = self._checked(_as_array(item, count), count)
            chunk += list(batch)
            count += len(batch)
            while len(chunk) >= size:
                yield self._prepared(chunk[:size])
                chunk = chunk[size:]
        if chunk:
            yield self._prepared(chunk)
        if count == 0:
            raise ConfigError("images holds no image")
        self.count = count

    def _prepared(self, images):
        if self.preprocessed:
            rgb = preprocessing.unpreprocess(np.stack(images), self.model.preprocessing)
            return rgb.astype(np.float32, copy=False)
        return self.model.prepare(images)

    def _checked(self, array, first):
        """`array` as a batch [n, H, W, C] of images that pass the rules (image indices from
        `first`), gray images given RGB channels for a one-channel model."""
        if array.ndim == 4:
            batch = array
        elif array.ndim in (2, 3):
            batch = array[None]
        else:
            raise ConfigError("image %d has shape %s: an image is [height, width, channels] "
                              "and a batch [images, height, width, channels]"
                              % (first, array.shape))
        if batch.size == 0:
            raise ConfigError("image %d is empty (shape %s)" % (first, array.shape))
        shape = array.shape[1:] if array.ndim == 4 else array.shape
        if self.preprocessed:
            expected = (self.height, self.width, self.channels)
            if tuple(shape) != expected:
                raise ConfigError("image %d has shape %s; with preprocessed=True images are "
                                  "the network's input, %s" % (first, tuple(shape), expected))
        if batch.ndim == 3:  # one 2-D image
            batch = batch[..., None]
        channels = batch.shape[-1]
        if self.channels == 1 and channels in (1, 3) and not self.preprocessed:
            # RGB for `prepare`, which makes gray of it: a gray image's three equal channels
            # give back its own values.
            batch = np.repeat(batch, 3, axis=-1) if channels == 1 else batch
        elif channels != self.channels:
            raise ConfigError(self._channel_message(first, shape, channels))
        if batch.dtype == np.uint8:
            return batch
        # Each image's extremes in two passes over the batch (NaN and infinity show in them);
        # only the images they flag are looked at again.
        flat = batch.reshape(len(batch), -1)
        lows, highs = flat.min(axis=1), flat.max(axis=1)
        if batch.dtype.kind == "f":
            infinite = ~(np.isfinite(lows) & np.isfinite(highs))
            if infinite.any():
                raise ConfigError("image %d holds NaN or infinite values"
                                  % (first + int(np.flatnonzero(infinite)[0])))
        if not self.preprocessed:
            doubtful = (lows < 0) | (highs > 255) | ((highs <= 1) & (batch.dtype.kind == "f"))
            for row in np.flatnonzero(doubtful):
                self._check_range(batch[row], first + int(row))
        return batch

    def _channel_message(self, index, shape, channels):
        message = "image %d has %d channel%s (shape %s); the model takes %d (RGB)" % (
            index, channels, "" if channels == 1 else "s", shape, self.channels)
        if len(shape) == 2 or channels == 1:
            return message + ": a gray image; give it as RGB, np.stack([image] * 3, axis=-1)"
        if channels == 4:
            return message + (": drop the alpha channel (image[..., :3]), or read the file "
                              "with l2caf.read_image, which shows transparency as white")
        return message

    def _check_range(self, image, index):
        low, high = float(image.min()), float(image.max())
        kind = image.dtype
        if low < 0 or high > 255:
            hint = ("16-bit images: (image / 257).astype(np.uint8)" if kind.kind in "ui"
                    else "if it is the network's input already, pass preprocessed=True")
            raise ConfigError("image %d has values %g..%g (%s), outside 0..255: images are "
                              "RGB 0..255 (%s)" % (index, low, high, kind, hint))
        if kind.kind == "f" and high <= 1.0 and not _whole_numbers(image):
            raise ConfigError("image %d has float values in 0..1 (%g..%g); images are RGB "
                              "0..255: pass images * 255, or preprocessed=True if it is the "
                              "network's input already" % (index, low, high))


def _is_integer(value):
    return isinstance(value, (numbers.Integral, np.integer)) and \
        not isinstance(value, (bool, np.bool_))


class Targets(object):
    """The classes to explain of each image and each image's key (see the module docstring).

    method: the explainer's name, for the messages. explains_classes: False for a method
    that makes one class-free heatmap per image (cls_oblivious L2-CAF): classes must then be
    None (or per image None or [None], as the visualisation job gives them).
    """

    def __init__(self, classes, keys, model, method: str, explains_classes: bool = True):
        self.model, self.method = model, method
        self.explains_classes = explains_classes
        self._for_all = self._per_image = None
        if _is_tensor(classes):
            classes = classes.numpy()
        if not explains_classes:
            self._per_image = self._oblivious(classes)
        elif classes is None:
            pass
        elif isinstance(classes, (list, tuple)) or (isinstance(classes, np.ndarray) and
                                                    classes.ndim > 0):
            self._per_image = self._classes_per_image(classes)
        else:
            self._for_all = [self._class_id(classes, "classes, for every image")]
        self._keys = self._checked_keys(keys)

    # Classes.

    def _oblivious(self, classes):
        if classes is None:
            return None
        entries = list(classes) if isinstance(classes, (list, tuple)) else None
        if entries is not None and all(
                entry is None or (isinstance(entry, (list, tuple)) and
                                  all(c is None for c in entry)) for entry in entries):
            return [[None] if entry is None else list(entry) for entry in entries]
        raise ConfigError("%s makes one class-free heatmap per image (cls_oblivious): leave "
                          "classes None" % self.method)

    def _invalid(self, value, where):
        return ConfigError("%s explains classes: %r is not a class id 0..%d of %s (%s)"
                           % (self.method, value, self.model.num_labels - 1, self.model.name,
                              where))

    def _class_id(self, value, where):
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value[()]
        if _is_integer(value):
            value = int(value)  # numpy's integers print as np.int64(3)
        if isinstance(value, (bool, np.bool_)):
            raise ConfigError("%s explains classes: %r is a boolean, not a class id (%s)"
                              % (self.method, value, where))
        if isinstance(value, (numbers.Real, np.floating)) and not _is_integer(value):
            raise ConfigError("%s explains classes: %r (%s) is a float; classes are integer "
                              "class ids: int(c), or for one-hot or probability rows "
                              "np.argmax(rows, axis=1)" % (self.method, value, where))
        if isinstance(value, str):
            raise ConfigError("%s explains classes: %r (%s) is a string; classes are class "
                              "ids (l2caf.data.class_names() gives ImageNet's names in id "
                              "order)" % (self.method, value, where))
        if not _is_integer(value) or not 0 <= value < self.model.num_labels:
            raise self._invalid(value, where)
        return int(value)

    def _one_hot_error(self, shape):
        return ConfigError("%s explains classes: they look like one-hot rows (%s of 0s and "
                           "one 1 each); give class ids, e.g. np.argmax(onehot, axis=1)"
                           % (self.method, "x".join(map(str, shape))))

    def _looks_one_hot(self, rows):
        """Rows of 0 and 1 with a single 1 each, num_labels long (3 or more classes: with two,
        [0, 1] is as likely both class ids)."""
        width = self.model.num_labels
        try:
            values = np.asarray(rows, dtype=np.float64)
        except (TypeError, ValueError):
            return False
        return width >= 3 and values.ndim == 2 and values.shape[1] == width and \
            bool(np.all((values == 0) | (values == 1))) and \
            bool(np.all(values.sum(axis=1) == 1))

    def _classes_per_image(self, classes):
        if isinstance(classes, np.ndarray) and classes.dtype != object:
            if classes.dtype.kind == "f":
                hint = " (one-hot rows? np.argmax(onehot, axis=1))" if classes.ndim == 2 else ""
                raise ConfigError("%s explains classes: they are floats (%s, shape %s); "
                                  "classes are integer class ids: classes.astype(int)%s"
                                  % (self.method, classes.dtype, classes.shape, hint))
            if classes.dtype.kind not in "iu":
                raise ConfigError("%s explains classes: they have dtype %s; classes are "
                                  "integer class ids" % (self.method, classes.dtype))
            if classes.ndim > 2:
                raise ConfigError("%s explains classes: an array of shape %s; give [images] "
                                  "or [images, classes per image]"
                                  % (self.method, classes.shape))
        if self._looks_one_hot(classes):
            raise self._one_hot_error(np.shape(classes))
        per_image = []
        for index, entry in enumerate(classes):
            if _is_tensor(entry):
                entry = entry.numpy()
            if isinstance(entry, (list, tuple)) or (isinstance(entry, np.ndarray) and
                                                    entry.ndim == 1):
                per_image.append([self._class_id(c, "classes[%d][%d], of image %d"
                                                 % (index, position, index))
                                  for position, c in enumerate(entry)])
            elif np.ndim(entry) == 0 or entry is None:
                per_image.append([self._class_id(entry, "classes[%d], of image %d"
                                                 % (index, index))])
            else:
                raise ConfigError("%s explains classes: classes[%d] has shape %s; give a class "
                                  "id or a list of them per image"
                                  % (self.method, index, np.shape(entry)))
        return per_image

    def classes_of(self, index: int, probabilities) -> List[Optional[int]]:
        """The classes to explain of image `index` (None: class-free), given its predicted
        probabilities (the default is the top-1 class)."""
        if self._per_image is not None:
            return self._per_image[index]
        if not self.explains_classes:
            return [None]
        if self._for_all is not None:
            return self._for_all
        return self.model.top_classes(probabilities, 1)

    # Keys.

    def _checked_keys(self, keys):
        if keys is None:
            return None
        if isinstance(keys, (str, bytes)) or not isinstance(keys, (list, tuple, np.ndarray)):
            raise ConfigError("keys must be a list of names, one per image (e.g. "
                              "keys=[\"cat.jpg\"]), got %s" % type(keys).__name__)
        checked = []
        for index, key in enumerate(keys):
            if isinstance(key, (np.str_, str)):
                checked.append(str(key))
            elif _is_integer(key):
                checked.append(str(int(key)))
            else:
                raise ConfigError("keys[%d] is %r; a key is a name (str) or a number (int)"
                                  % (index, key))
        return checked

    def key_of(self, index: int) -> str:
        """Image `index`'s key (its index when no keys were given)."""
        return str(index) if self._keys is None else self._keys[index]

    def check_count(self, count: int, final: bool = True):
        """ConfigError unless the per-image classes and keys cover `count` images (exactly,
        when `final`; at least, while a stream is still being read)."""
        for name, entries in (("classes", self._per_image), ("keys", self._keys)):
            if entries is None:
                continue
            if len(entries) < count or (final and len(entries) != count):
                raise ConfigError(
                    "%s has %d entr%s for %s%d image%s: give %s one per image%s"
                    % (name, len(entries), "y" if len(entries) == 1 else "ies",
                       "" if final else "at least ", count, "" if count == 1 else "s",
                       name, " (or one int for all images; a list per image for several "
                             "classes, e.g. [[3, 5]] for one image)" if name == "classes"
                       else ""))
