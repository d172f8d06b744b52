"""A synthetic localisation data set in the ILSVRC layout, for tests and small experiments.

Each image shows one (sometimes two) objects of `CLASS_NAMES` on a cluttered background.
A class is a shape, a colour and a texture together (a red striped disc, a blue checkered
square, ...), so no single cue names it, and neither does the background: it is a colour
gradient with noise, lines and blobs in all colours, under 1-3 smaller distractor shapes
that belong to no class. Objects are drawn last and never overlap, so each annotated box
is the tight box of the object's visible pixels.

On disk (`make_dataset`):

    OUT/images/synth_00000.JPEG ...       RGB images
    OUT/annotations/synth_00000.xml ...   one ILSVRC-style XML per image (l2caf.annotations)
    OUT/labels.txt                        one class name per line; class index = line number
    OUT/dataset.json                      the options the data set was made with

Every image is drawn from its own random generator, seeded by (seed, image index), so the
same seed gives byte-identical files, and `generate_examples` gives the same images
without writing them.
"""
import collections
import json
import os

import cv2
import numpy as np
from tqdm import tqdm

from l2caf.annotations import Annotation, BoxObject, write_voc_xml

MIN_IMAGE_SIZE = 32
OBJECT_SIZE_RANGE = (0.2, 0.5)  # object side as a fraction of the image side
DISTRACTOR_SIZE_RANGE = (0.06, 0.15)
_JPEG_QUALITY = 95
# Pixel coordinates are passed to OpenCV in fixed point with this many fractional bits.
_SHIFT_BITS = 4


def _regular_polygon(corners, phase=0.0):
    angles = phase + 2.0 * np.pi * np.arange(corners) / corners
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _star(points, inner_radius):
    outline = _regular_polygon(2 * points, phase=-np.pi / 2)
    outline[1::2] *= inner_radius
    return outline


def _plus(arm_half_width):
    w = arm_half_width
    return np.array([(w, 1), (w, w), (1, w), (1, -w), (w, -w), (w, -1),
                     (-w, -1), (-w, -w), (-1, -w), (-1, w), (-w, w), (-w, 1)], dtype=np.float64)


_CIRCLE = _regular_polygon(72)

# A shape is a filled outline minus optional holes, in unit coordinates: the outline
# reaches radius 1 from the centre, so a shape of size s fits in an s x s square.
_SHAPES = {
    "disc": [_CIRCLE],
    "square": [_regular_polygon(4, phase=np.pi / 4)],
    "triangle": [_regular_polygon(3, phase=-np.pi / 2)],
    "ring": [_CIRCLE, 0.55 * _CIRCLE],
    "plus": [_plus(0.3) / np.hypot(1.0, 0.3)],
    "star": [_star(5, 0.45)],
    # Distractor shapes, unlike any class shape.
    "ellipse": [_CIRCLE * (1.0, 0.45)],
    "bar": [np.array([(1, 0.2), (-1, 0.2), (-1, -0.2), (1, -0.2)]) / np.hypot(1.0, 0.2)],
    "crescent": [_CIRCLE, 0.8 * _CIRCLE + (0.45, 0.0)],
}


# Textures: which pixels take the dark shade of the object's colour, given the pixel
# coordinates (u, v) along the texture's own axes and the pattern period, in pixels.
def _striped(u, v, period):
    return np.floor(u / period) % 2 == 1


def _checkered(u, v, period):
    return (np.floor(u / period) + np.floor(v / period)) % 2 == 1


def _dotted(u, v, period):
    return np.hypot(u / period - np.round(u / period), v / period - np.round(v / period)) < 0.3


def _concentric(u, v, period):
    return np.floor(np.hypot(u, v) / period) % 2 == 1


def _crosshatched(u, v, period):
    return ((u / period) % 1 < 0.3) | ((v / period) % 1 < 0.3)


def _wavy(u, v, period):
    return np.floor((u + 0.6 * period * np.sin(v / period * 2.0)) / period) % 2 == 1


ObjectClass = collections.namedtuple("ObjectClass", ["name", "shape", "rgb", "texture"])

CLASSES = [
    ObjectClass("red_striped_disc", "disc", (220, 35, 35), _striped),
    ObjectClass("blue_checkered_square", "square", (35, 70, 225), _checkered),
    ObjectClass("green_dotted_triangle", "triangle", (40, 175, 50), _dotted),
    ObjectClass("yellow_concentric_ring", "ring", (235, 210, 30), _concentric),
    ObjectClass("purple_crosshatched_plus", "plus", (145, 45, 205), _crosshatched),
    ObjectClass("cyan_wavy_star", "star", (30, 200, 215), _wavy),
]
CLASS_NAMES = [object_class.name for object_class in CLASSES]

DISTRACTOR_SHAPES = ("ellipse", "bar", "crescent")
# White, greys, brown, pink and orange: no class has these colours.
DISTRACTOR_RGB = ((245, 245, 240), (150, 150, 150), (60, 60, 60), (120, 75, 35),
                  (250, 160, 195), (245, 135, 20))


def _shape_mask(image_size, shape, centre, size, angle):
    """Boolean [image_size, image_size] mask of `shape` of side `size` at `centre`, rotated."""
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    masks = []
    for outline in _SHAPES[shape]:
        points = np.asarray(centre) + 0.5 * size * outline @ rotation.T
        mask = np.zeros((image_size, image_size), np.uint8)
        fixed_point = np.round(points * (1 << _SHIFT_BITS)).astype(np.int32)
        cv2.fillPoly(mask, [fixed_point], 1, lineType=cv2.LINE_8, shift=_SHIFT_BITS)
        masks.append(mask.astype(bool))
    outline_mask = masks[0]
    for hole in masks[1:]:
        outline_mask &= ~hole
    return outline_mask


def _jittered(rng, rgb, amount=20):
    return np.clip(np.asarray(rgb) + rng.integers(-amount, amount + 1, 3), 0, 255)


def _background(rng, image_size):
    """A colour gradient with coarse and fine noise, crossed by random lines and blobs."""
    rows, cols = np.mgrid[0:image_size, 0:image_size] / float(image_size)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = cols * np.cos(angle) + rows * np.sin(angle)
    ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min())
    start, end = rng.uniform(0, 255, (2, 3))
    image = start + ramp[:, :, None] * (end - start)
    coarse_cells = rng.integers(3, 9)
    coarse_noise = rng.normal(0, 35, (coarse_cells, coarse_cells, 3))
    image += cv2.resize(coarse_noise, (image_size, image_size), interpolation=cv2.INTER_CUBIC)
    image += rng.normal(0, 8, image.shape)
    image = np.clip(image, 0, 255).astype(np.uint8)

    max_thickness = max(1, image_size // 56)
    for _ in range(rng.integers(5, 15)):
        start_point, end_point = rng.integers(0, image_size, (2, 2))
        cv2.line(image, tuple(map(int, start_point)), tuple(map(int, end_point)),
                 tuple(map(int, rng.integers(0, 256, 3))), int(rng.integers(1, max_thickness + 1)))
    for _ in range(rng.integers(4, 10)):
        centre = tuple(map(int, rng.integers(0, image_size, 2)))
        axes = tuple(map(int, rng.integers(1, max(2, image_size // 8), 2)))
        cv2.ellipse(image, centre, axes, float(rng.uniform(0, 180)), 0, 360,
                    tuple(map(int, rng.integers(0, 256, 3))), -1)
    return cv2.GaussianBlur(image, (3, 3), 0)


def _draw_distractor(rng, image):
    image_size = image.shape[0]
    size = image_size * rng.uniform(*DISTRACTOR_SIZE_RANGE)
    centre = rng.uniform(0, image_size, 2)
    shape = DISTRACTOR_SHAPES[rng.integers(len(DISTRACTOR_SHAPES))]
    mask = _shape_mask(image_size, shape, centre, size, rng.uniform(0, 2 * np.pi))
    image[mask] = _jittered(rng, DISTRACTOR_RGB[rng.integers(len(DISTRACTOR_RGB))], amount=10)


def _draw_object(rng, image, object_class, region):
    """Draws `object_class` at a random place, size and angle inside `region` (see
    `_object_regions`), its texture at a random period and angle; returns its mask."""
    x0, y0, x1, y1 = region
    largest = min(x1 - x0, y1 - y0, OBJECT_SIZE_RANGE[1] * image.shape[0])
    size = rng.uniform(OBJECT_SIZE_RANGE[0] * image.shape[0], largest)
    centre = rng.uniform((x0 + size / 2, y0 + size / 2), (x1 - size / 2, y1 - size / 2))
    mask = _shape_mask(image.shape[0], object_class.shape, centre, size, rng.uniform(0, 2 * np.pi))

    rows, cols = np.nonzero(mask)
    texture_angle = rng.uniform(0, 2 * np.pi)
    x, y = cols - centre[0], rows - centre[1]
    u = x * np.cos(texture_angle) + y * np.sin(texture_angle)
    v = -x * np.sin(texture_angle) + y * np.cos(texture_angle)
    period = max(3.0, size * rng.uniform(0.1, 0.18))
    dark = object_class.texture(u, v, period)

    rgb = _jittered(rng, object_class.rgb)
    image[rows, cols] = np.where(dark[:, None], np.round(0.45 * rgb), rgb)
    return mask


def _object_regions(rng, image_size, num_objects):
    """One region (x0, y0, x1, y1) of pixel coordinates, both ends inclusive, per object: the
    whole image, or two halves split along a random axis with an empty line of pixels
    between them, so two objects never touch."""
    last = image_size - 1
    if num_objects == 1:
        return [(0, 0, last, last)]
    half = image_size // 2
    if rng.random() < 0.5:
        return [(0, 0, half - 1, last), (half + 1, 0, last, last)]
    return [(0, 0, last, half - 1), (0, half + 1, last, last)]


def _tight_box(mask):
    rows, cols = np.nonzero(mask)
    return (int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max()))


def render_scene(rng, image_size, num_objects):
    """Like `render_example`, plus the list of the objects' boolean masks [H, W]."""
    if num_objects not in (1, 2):
        raise ValueError("num_objects must be 1 or 2, not %r" % (num_objects,))
    image = _background(rng, image_size)
    for _ in range(rng.integers(1, 4)):
        _draw_distractor(rng, image)
    class_indices = rng.choice(len(CLASSES), size=num_objects, replace=False)
    objects, masks = [], []
    for class_index, region in zip(class_indices, _object_regions(rng, image_size, num_objects)):
        mask = _draw_object(rng, image, CLASSES[class_index], region)
        objects.append(BoxObject(CLASSES[class_index].name, _tight_box(mask)))
        masks.append(mask)
    return image, objects, masks


def render_example(rng, image_size, num_objects):
    """One synthetic image, drawn with the numpy Generator `rng`.

    num_objects: 1, or 2 (of different classes). Returns (RGB uint8 [image_size, image_size, 3],
    list of `BoxObject`), each box the inclusive tight box of the object's pixels.
    """
    image, objects, _ = render_scene(rng, image_size, num_objects)
    return image, objects


def _check_options(num_images, image_size, two_object_fraction):
    if num_images < 1:
        raise ValueError("num_images must be at least 1, not %r" % (num_images,))
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError("image_size must be at least %d pixels, not %r"
                         % (MIN_IMAGE_SIZE, image_size))
    if not 0.0 <= two_object_fraction <= 1.0:
        raise ValueError("two_object_fraction must be in [0, 1], not %r" % (two_object_fraction,))


def _example(seed, index, image_size, two_object_fraction):
    rng = np.random.default_rng([seed, index])
    num_objects = 2 if rng.random() < two_object_fraction else 1
    return render_example(rng, image_size, num_objects)


def generate_examples(num, image_size=224, seed=0, two_object_fraction=0.25):
    """Yields `num` (image, objects) pairs (as `render_example` returns them): the images
    `make_dataset` writes with the same options."""
    _check_options(num, image_size, two_object_fraction)
    for index in range(num):
        yield _example(seed, index, image_size, two_object_fraction)


def make_dataset(output_dir, num_images, image_size=224, seed=0, two_object_fraction=0.25,
                 progress=True):
    """Writes a synthetic data set to `output_dir` (layout in the module doc string).

    two_object_fraction: the probability that an image holds two objects. Refuses a folder
    that already holds images or annotations, so two data sets are never mixed. Returns the
    paths of the images written.
    """
    _check_options(num_images, image_size, two_object_fraction)
    image_dir = os.path.join(output_dir, "images")
    annotation_dir = os.path.join(output_dir, "annotations")
    for folder in (image_dir, annotation_dir):
        if os.path.isdir(folder) and os.listdir(folder):
            raise FileExistsError("%s already holds files; give an empty or new output folder"
                                  % folder)
        os.makedirs(folder, exist_ok=True)
    with open(os.path.join(output_dir, "labels.txt"), "w") as labels:
        labels.write("".join(name + "\n" for name in CLASS_NAMES))
    with open(os.path.join(output_dir, "dataset.json"), "w") as options:
        json.dump({"num_images": num_images, "image_size": image_size, "seed": seed,
                   "two_object_fraction": two_object_fraction, "class_names": CLASS_NAMES},
                  options, indent=2)

    image_paths = []
    examples = generate_examples(num_images, image_size, seed, two_object_fraction)
    for index, (image, objects) in enumerate(tqdm(examples, total=num_images, disable=not progress,
                                                  desc="synthetic images", unit="image")):
        stem = "synth_%05d" % index
        image_path = os.path.join(image_dir, stem + ".JPEG")
        if not cv2.imwrite(image_path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY]):
            raise OSError("%s: could not write the image" % image_path)
        write_voc_xml(os.path.join(annotation_dir, stem + ".xml"),
                      Annotation(stem + ".JPEG", image_size, image_size, objects), folder="images")
        image_paths.append(image_path)
    return image_paths
