"""Bounding-box annotations: Pascal-VOC / ILSVRC XMLs, and wsolevaluation's metadata.

Two layouts of a folder, read into the same {image stem: `Annotation`} (`read_annotations`
tells them apart by the files present). The XML layout, one file per image:

    <annotation>
      <folder>val</folder>
      <filename>ILSVRC2012_val_00000001</filename>
      <size><width>500</width><height>375</height><depth>3</depth></size>
      <object>
        <name>n01751748</name>
        <bndbox><xmin>111</xmin><ymin>108</ymin><xmax>441</xmax><ymax>351</ymax></bndbox>
      </object>
      ...
    </annotation>

Box coordinates are inclusive pixel coordinates, stored exactly as the file gives them,
and checked as they are read (`check_box`): whole numbers with 0 <= xmin <= xmax <= width and
0 <= ymin <= ymax <= height, the image's size whole numbers >= 1 of at most
images.MAX_PIXELS pixels. (ILSVRC counts pixels from 0, so its boxes end at width - 1 at
most; Pascal VOC counts them from 1, so its boxes may end at the width itself.) Nothing is
clipped: CAM's and wsolevaluation's code use ground-truth boxes as given, and
wsolevaluation refuses negative coordinates and reversed boxes as here; a box beyond the
image is a ValueError naming the file (and line or object), not a changed number.

wsolevaluation's metadata (Choe et al. 2020, github.com/clovaai/wsolevaluation, metadata/ILSVRC/
test and the like): four text files for a whole split, one line per image or per box, the
image named by its path in the data set:

    image_ids.txt      val/ILSVRC2012_val_00000001.JPEG
    class_labels.txt   val/ILSVRC2012_val_00000001.JPEG,65
    image_sizes.txt    val/ILSVRC2012_val_00000001.JPEG,500,375      (width, height)
    localization.txt   val/ILSVRC2012_val_00000001.JPEG,111,108,441,193   (x0, y0, x1, y1)

Its class labels are class ids (for ILSVRC the ImageNet index of sorted WordNet ids, ours),
so its objects carry the class id where an XML names the class. Every box of an image is of
the image's one class. Images are matched to results by file name without its extension,
as the XMLs are.
"""
import collections
import math
import os
import xml.etree.ElementTree as ElementTree
from typing import Dict, List, Sequence, Tuple

from l2caf.images import MAX_PIXELS

BoxObject = collections.namedtuple("BoxObject", ["name", "box"])
BoxObject.__doc__ = """One annotated object: its class (a name from an XML, a class id from
wsolevaluation's metadata) and its box (xmin, ymin, xmax, ymax), inclusive pixel coordinates
as ints."""

Annotation = collections.namedtuple("Annotation", ["filename", "width", "height", "objects"])
Annotation.__doc__ = """The annotation of one image: its file name as the annotations write it
(an XML's <filename>, a metadata image id), its size in pixels and its list of `BoxObject`s."""

WSOL_METADATA_FILES = ("image_ids.txt", "class_labels.txt", "image_sizes.txt", "localization.txt")

_BOX_FIELDS = ("xmin", "ymin", "xmax", "ymax")


def _text(element, field, path):
    """The stripped text of the child `field` of `element`; a ValueError naming `path` if absent."""
    child = element.find(field)
    if child is None or child.text is None or not child.text.strip():
        raise ValueError("%s: missing <%s> in <%s>" % (path, field, element.tag))
    return child.text.strip()


def _whole_number(text):
    """The whole number a text holds ("273" or "273.0", as a few Pascal-VOC files write
    whole pixel coordinates), or a ValueError saying what it is instead."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError("is %r, not a number" % text) from None
    if not math.isfinite(value):
        raise ValueError("is %r, not a finite number" % text)
    if value != int(value):
        raise ValueError("is %r, not a whole number" % text)
    return int(value)


def _integer(element, field, path, where=""):
    text = _text(element, field, path)
    try:
        return _whole_number(text)
    except ValueError as error:
        raise ValueError("%s: %s<%s> %s; sizes and box coordinates are whole pixels"
                         % (path, where, field, error)) from None


def _shown(value):
    """A coordinate or size for a message: whole, or its first digits when it is absurdly
    long."""
    text = str(value)
    digits = len(text.lstrip("-"))
    return text if digits <= 12 else "%s... (%d digits)" % (text[:6], digits)


def check_image_size(width: int, height: int) -> None:
    """A ValueError saying what is wrong unless (width, height) is an image's size: whole
    numbers >= 1 of at most images.MAX_PIXELS pixels in all."""
    if width < 1 or height < 1:
        raise ValueError("the image size %sx%s is not a size: width and height must be at "
                         "least 1" % (_shown(width), _shown(height)))
    if width * height > MAX_PIXELS:
        raise ValueError("the image size %sx%s is over the %d megapixels an image may have"
                         % (_shown(width), _shown(height), MAX_PIXELS // 10 ** 6))


def check_box(box: Sequence[int], width: int, height: int,
              fields: Sequence[str] = _BOX_FIELDS) -> None:
    """A ValueError saying what is wrong unless box (xmin, ymin, xmax, ymax) lies in an image
    of width x height pixels: 0 <= xmin <= xmax <= width, 0 <= ymin <= ymax <= height. (A
    coordinate may equal the width or height: Pascal VOC counts pixels from 1.) Nothing is
    clipped. fields: the coordinates' names in the message (the metadata's x0, y0, x1, y1)."""
    values = dict(zip(fields, box))
    xmin, ymin, xmax, ymax = fields
    problems = ["%s %s is negative" % (name, _shown(values[name]))
                for name in fields if values[name] < 0]
    for low, high in ((xmin, xmax), (ymin, ymax)):
        if values[low] > values[high]:
            problems.append("%s %s is greater than %s %s" % (low, _shown(values[low]), high,
                                                             _shown(values[high])))
    for name, limit, side in ((xmax, width, "width"), (xmin, width, "width"),
                              (ymax, height, "height"), (ymin, height, "height")):
        if values[name] > limit:
            problems.append("%s %s is beyond the image's %s %d" % (name, _shown(values[name]),
                                                                  side, limit))
    if problems:
        raise ValueError("box (%s) on an image of %dx%d: %s; correct it: a box is (%s) in whole "
                         "pixels with 0 <= %s <= %s <= width and 0 <= %s <= %s <= height (see "
                         "docs/localization.md)"
                         % (", ".join(map(_shown, box)), width, height, ", ".join(problems[:2]),
                            ", ".join(fields), xmin, xmax, ymin, ymax))


def read_voc_xml(path: str) -> Annotation:
    """The `Annotation` in the XML file at `path`; a ValueError naming the file (and the
    object) if it is malformed, lacks a field, or holds a box that is not in the image (see
    `check_box`)."""
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as error:
        raise ValueError("%s: malformed XML (%s)" % (path, error)) from None
    if root.tag != "annotation":
        raise ValueError("%s: the root element is <%s>, not <annotation>" % (path, root.tag))
    size = root.find("size")
    if size is None:
        raise ValueError("%s: missing <size> in <annotation>" % path)
    width = _integer(size, "width", path, "<size> ")
    height = _integer(size, "height", path, "<size> ")
    try:
        check_image_size(width, height)
    except ValueError as error:
        raise ValueError("%s: <size>: %s" % (path, error)) from None
    objects = []
    for number, element in enumerate(root.findall("object"), 1):
        name = _text(element, "name", path)
        where = "object %d (%s): " % (number, name)
        bndbox = element.find("bndbox")
        if bndbox is None:
            raise ValueError("%s: %smissing <bndbox> in <object>" % (path, where))
        box = tuple(_integer(bndbox, field, path, where) for field in _BOX_FIELDS)
        try:
            check_box(box, width, height)
        except ValueError as error:
            raise ValueError("%s: %s%s" % (path, where, error)) from None
        objects.append(BoxObject(name, box))
    return Annotation(filename=_text(root, "filename", path), width=width, height=height,
                      objects=objects)


def _add_child(parent, tag, text):
    child = ElementTree.SubElement(parent, tag)
    child.text = str(text)
    return child


def write_voc_xml(path: str, annotation: Annotation, folder: str = "") -> None:
    """Writes `annotation` (an `Annotation`, 3-channel image) to `path` in the ILSVRC layout,
    with `folder` as its <folder>."""
    root = ElementTree.Element("annotation")
    _add_child(root, "folder", folder)
    _add_child(root, "filename", annotation.filename)
    size = ElementTree.SubElement(root, "size")
    _add_child(size, "width", annotation.width)
    _add_child(size, "height", annotation.height)
    _add_child(size, "depth", 3)
    for box_object in annotation.objects:
        element = ElementTree.SubElement(root, "object")
        _add_child(element, "name", box_object.name)
        bndbox = ElementTree.SubElement(element, "bndbox")
        for field, value in zip(_BOX_FIELDS, box_object.box):
            _add_child(bndbox, field, int(value))
    tree = ElementTree.ElementTree(root)
    ElementTree.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=False)


def read_annotation_folder(folder: str) -> Dict[str, Annotation]:
    """{image stem: `Annotation`} for every *.xml file in `folder` (ILSVRC names each XML
    file after its image, e.g. ILSVRC2012_val_00000001.xml)."""
    if not os.path.isdir(folder):
        raise FileNotFoundError("%s: no such annotation folder" % folder)
    return {os.path.splitext(name)[0]: read_voc_xml(os.path.join(folder, name))
            for name in sorted(os.listdir(folder)) if name.lower().endswith(".xml")}


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def _metadata_lines(folder, name, fields):
    """(line number, image id, [int, ...]) of each non-empty line of a metadata file: the
    image id, then len(fields) - 1 integers; a ValueError naming the file and line if one is
    malformed."""
    path = os.path.join(folder, name)
    with open(path) as stream:
        for number, line in enumerate(stream, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            parts = line.split(",")
            try:
                if len(parts) != len(fields):
                    raise ValueError
                yield number, parts[0], [int(part) for part in parts[1:]]
            except ValueError:
                raise ValueError("%s:%d: expected %s, got %r"
                                 % (path, number, ",".join(fields), line)) from None


def read_wsol_metadata(folder: str) -> Dict[str, Annotation]:
    """{image stem: `Annotation`} of a wsolevaluation metadata folder (see the module
    docstring); a ValueError naming the file (and line) if one is missing, malformed, or
    lacks an image's label, size or boxes, if an image size is not a size or a box is not in
    its image (see `check_box`), or if two images share a file name (results are matched to
    annotations by file name)."""
    for name in WSOL_METADATA_FILES:
        if not os.path.isfile(os.path.join(folder, name)):
            raise ValueError("%s: no %s; a wsolevaluation metadata folder holds %s"
                             % (folder, name, ", ".join(WSOL_METADATA_FILES)))
    image_ids = [image_id for _, image_id, _ in _metadata_lines(folder, "image_ids.txt",
                                                                ["path"])]
    labels = {image_id: values for _, image_id, values
              in _metadata_lines(folder, "class_labels.txt", ["path", "label"])}
    sizes = {}
    sizes_path = os.path.join(folder, "image_sizes.txt")
    for number, image_id, (width, height) in _metadata_lines(
            folder, "image_sizes.txt", ["path", "width", "height"]):
        try:
            check_image_size(width, height)
        except ValueError as error:
            raise ValueError("%s:%d: %s: %s" % (sizes_path, number, image_id, error)) from None
        sizes[image_id] = (width, height)
    boxes: Dict[str, List[Tuple[int, Tuple[int, ...]]]] = collections.defaultdict(list)
    for number, image_id, box in _metadata_lines(folder, "localization.txt",
                                                 ["path", "x0", "y0", "x1", "y1"]):
        boxes[image_id].append((number, tuple(box)))
    annotations: Dict[str, Annotation] = collections.OrderedDict()
    for image_id in image_ids:
        for name, table in (("class_labels.txt", labels), ("image_sizes.txt", sizes),
                            ("localization.txt", boxes)):
            if image_id not in table:
                raise ValueError("%s has no line for %s, listed in image_ids.txt"
                                 % (os.path.join(folder, name), image_id))
        stem = _stem(image_id)
        if stem in annotations:
            raise ValueError("%s: %s and %s share the file name %s; results are matched to "
                             "annotations by file name" % (os.path.join(folder, "image_ids.txt"),
                                                           annotations[stem].filename,
                                                           image_id, stem))
        [label], (width, height) = labels[image_id], sizes[image_id]
        for number, box in boxes[image_id]:
            try:
                check_box(box, width, height, ("x0", "y0", "x1", "y1"))
            except ValueError as error:
                raise ValueError("%s:%d: %s (its size from image_sizes.txt): %s"
                                 % (os.path.join(folder, "localization.txt"), number, image_id,
                                    error)) from None
        annotations[stem] = Annotation(
            filename=image_id, width=width, height=height,
            objects=[BoxObject(label, box) for _, box in boxes[image_id]])
    return annotations


def read_annotations(folder: str) -> Dict[str, Annotation]:
    """{image stem: `Annotation`} of a folder of XMLs or of wsolevaluation metadata, told
    apart by the files present: any of `WSOL_METADATA_FILES` makes it metadata (and all four
    must be there). Raises FileNotFoundError for a missing folder, ValueError (naming the
    folder or file) for a folder that holds neither or a malformed file."""
    if not os.path.isdir(folder):
        raise FileNotFoundError("%s: no such annotation folder" % folder)
    if any(os.path.isfile(os.path.join(folder, name)) for name in WSOL_METADATA_FILES):
        return read_wsol_metadata(folder)
    annotations = read_annotation_folder(folder)
    if not annotations:
        raise ValueError("%s holds no annotation XMLs and no wsolevaluation metadata (%s)"
                         % (folder, ", ".join(WSOL_METADATA_FILES)))
    return annotations
