"""Bounding-box annotations in the Pascal-VOC / ILSVRC XML layout.

One XML file per image:

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

Box coordinates are inclusive pixel coordinates, stored exactly as the file gives them.
"""
import collections
import os
import xml.etree.ElementTree as ElementTree

BoxObject = collections.namedtuple("BoxObject", ["name", "box"])
BoxObject.__doc__ = """One annotated object: its class name and its box (xmin, ymin, xmax, ymax),
inclusive pixel coordinates as ints."""

Annotation = collections.namedtuple("Annotation", ["filename", "width", "height", "objects"])
Annotation.__doc__ = """The annotation of one image: its file name as written in the XML, its
size in pixels and its list of `BoxObject`s."""

_BOX_FIELDS = ("xmin", "ymin", "xmax", "ymax")


def _text(element, field, path):
    """The stripped text of the child `field` of `element`; a ValueError naming `path` if absent."""
    child = element.find(field)
    if child is None or child.text is None or not child.text.strip():
        raise ValueError("%s: missing <%s> in <%s>" % (path, field, element.tag))
    return child.text.strip()


def _integer(element, field, path):
    text = _text(element, field, path)
    try:
        value = float(text)
    except ValueError:
        raise ValueError("%s: <%s> is %r, not a number" % (path, field, text)) from None
    # A few Pascal-VOC files write whole pixel coordinates as "273.0".
    if value != int(value):
        raise ValueError("%s: <%s> is %r, not a whole number" % (path, field, text))
    return int(value)


def read_voc_xml(path):
    """The `Annotation` in the XML file at `path`; a ValueError naming the file if it is
    malformed or lacks a field."""
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as error:
        raise ValueError("%s: malformed XML (%s)" % (path, error)) from None
    if root.tag != "annotation":
        raise ValueError("%s: the root element is <%s>, not <annotation>" % (path, root.tag))
    size = root.find("size")
    if size is None:
        raise ValueError("%s: missing <size> in <annotation>" % path)
    objects = []
    for element in root.findall("object"):
        bndbox = element.find("bndbox")
        if bndbox is None:
            raise ValueError("%s: missing <bndbox> in <object>" % path)
        box = tuple(_integer(bndbox, field, path) for field in _BOX_FIELDS)
        objects.append(BoxObject(_text(element, "name", path), box))
    return Annotation(filename=_text(root, "filename", path),
                      width=_integer(size, "width", path),
                      height=_integer(size, "height", path),
                      objects=objects)


def _add_child(parent, tag, text):
    child = ElementTree.SubElement(parent, tag)
    child.text = str(text)
    return child


def write_voc_xml(path, annotation, folder=""):
    """Writes `annotation` (an `Annotation`, 3-channel image) to `path` in the ILSVRC layout."""
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


def read_annotation_folder(folder):
    """{image stem: `Annotation`} for every *.xml file in `folder` (ILSVRC names each XML
    file after its image, e.g. ILSVRC2012_val_00000001.xml)."""
    if not os.path.isdir(folder):
        raise FileNotFoundError("%s: no such annotation folder" % folder)
    return {os.path.splitext(name)[0]: read_voc_xml(os.path.join(folder, name))
            for name in sorted(os.listdir(folder)) if name.lower().endswith(".xml")}
