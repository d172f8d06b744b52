"""Tests of the VOC/ILSVRC XML annotations and of the synthetic localisation data set."""
import hashlib
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from l2caf import synthetic
from l2caf.annotations import (Annotation, BoxObject, read_annotation_folder,
                                          read_voc_xml, write_voc_xml)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO_ROOT, "scripts", "make_synthetic_dataset.py")


def _file_hashes(folder):
    """{path relative to folder: sha256} of every file under folder."""
    hashes = {}
    for directory, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                hashes[os.path.relpath(path, folder)] = hashlib.sha256(handle.read()).hexdigest()
    return hashes


def _hue(rgb_pixels):
    """OpenCV hues (0..179) of an [N, 3] array of RGB uint8 pixels."""
    return cv2.cvtColor(np.asarray(rgb_pixels, np.uint8)[None], cv2.COLOR_RGB2HSV)[0, :, 0]


@pytest.fixture(scope="module")
def dataset_dirs(tmp_path_factory):
    """Three small data sets: two with seed 0, one with seed 1."""
    root = tmp_path_factory.mktemp("synthetic")
    dirs = {}
    for name, seed in (("first", 0), ("again", 0), ("other_seed", 1)):
        dirs[name] = str(root / name)
        synthetic.make_dataset(dirs[name], num_images=12, image_size=64, seed=seed,
                               two_object_fraction=0.5, progress=False)
    return dirs


def test_xml_round_trip_keeps_every_object(tmp_path):
    annotation = Annotation("ILSVRC2012_val_00000001", 500, 375, [
        BoxObject("n01751748", (111, 108, 441, 351)),
        BoxObject("n01751748", (0, 0, 20, 30)),
        BoxObject("n02123045", (250, 10, 499, 374)),
    ])
    path = str(tmp_path / "ILSVRC2012_val_00000001.xml")
    write_voc_xml(path, annotation, folder="val")
    assert read_voc_xml(path) == annotation
    assert read_annotation_folder(str(tmp_path)) == {"ILSVRC2012_val_00000001": annotation}


def test_reads_an_ilsvrc_file_with_extra_fields(tmp_path):
    path = tmp_path / "a.xml"
    path.write_text("""<annotation><folder>val</folder><filename>a</filename>
        <source><database>ILSVRC_2012</database></source>
        <size><width>500</width><height>333</height><depth>3</depth></size><segmented>0</segmented>
        <object><name>n01440764</name><pose>Unspecified</pose><truncated>0</truncated>
        <difficult>0</difficult><bndbox><xmin>5</xmin><ymin>6</ymin><xmax>7.0</xmax>
        <ymax>8</ymax></bndbox></object></annotation>""")
    expected = Annotation("a", 500, 333, [BoxObject("n01440764", (5, 6, 7, 8))])
    assert read_voc_xml(str(path)) == expected


@pytest.mark.parametrize("content, reason", [
    ("<annotation><filename>a</filename><size><width>4", "malformed XML"),
    ("<annotation><filename>a</filename></annotation>", "<size>"),
    ("<annotation><filename>a</filename><size><width>4</width><height>4</height></size>"
     "<object><name>x</name><bndbox><xmin>0</xmin><ymin>0</ymin><xmax>1</xmax></bndbox>"
     "</object></annotation>", "<ymax>"),
    ("<annotation><filename>a</filename><size><width>four</width><height>4</height></size>"
     "</annotation>", "<width>"),
])
def test_bad_xml_error_names_the_file_and_the_fault(tmp_path, content, reason):
    path = tmp_path / "broken.xml"
    path.write_text(content)
    with pytest.raises(ValueError) as error:
        read_voc_xml(str(path))
    assert str(path) in str(error.value)
    assert reason in str(error.value)


def test_classes_differ_in_shape_colour_and_texture():
    assert len(synthetic.CLASSES) >= 6
    for attribute in ("shape", "rgb", "texture"):
        values = [getattr(object_class, attribute) for object_class in synthetic.CLASSES]
        assert len(set(values)) == len(values), attribute
    class_shapes = {object_class.shape for object_class in synthetic.CLASSES}
    assert not class_shapes & set(synthetic.DISTRACTOR_SHAPES)
    class_colours = {object_class.rgb for object_class in synthetic.CLASSES}
    assert not class_colours & set(synthetic.DISTRACTOR_RGB)


def test_same_seed_writes_identical_files_and_another_seed_differs(dataset_dirs):
    first = _file_hashes(dataset_dirs["first"])
    assert len([path for path in first if path.endswith(".JPEG")]) == 12
    assert len([path for path in first if path.endswith(".xml")]) == 12
    assert _file_hashes(dataset_dirs["again"]) == first
    other = _file_hashes(dataset_dirs["other_seed"])
    assert other.keys() == first.keys()
    assert all(other[path] != first[path] for path in first if path.endswith(".JPEG"))


def test_written_annotations_match_the_images_and_the_generator(dataset_dirs):
    folder = dataset_dirs["first"]
    with open(os.path.join(folder, "labels.txt")) as labels:
        assert labels.read().splitlines() == synthetic.CLASS_NAMES
    annotations = read_annotation_folder(os.path.join(folder, "annotations"))
    examples = synthetic.generate_examples(12, image_size=64, seed=0, two_object_fraction=0.5)
    for index, (image, objects) in enumerate(examples):
        stem = "synth_%05d" % index
        annotation = annotations[stem]
        assert annotation == Annotation(stem + ".JPEG", 64, 64, objects)
        written = cv2.imread(os.path.join(folder, "images", annotation.filename))
        assert written.shape == image.shape
        # Only the JPEG compression differs.
        assert np.abs(written[:, :, ::-1].astype(int) - image).mean() < 8
    assert {len(annotation.objects) for annotation in annotations.values()} == {1, 2}


@pytest.mark.parametrize("image_size", [64, 224])
def test_boxes_are_the_tight_boxes_of_visible_object_pixels(image_size):
    for index in range(10):
        rng = np.random.default_rng([7, index])
        image, objects, masks = synthetic.render_scene(rng, image_size, num_objects=1 + index % 2)
        assert image.shape == (image_size, image_size, 3) and image.dtype == np.uint8
        for box_object, mask in zip(objects, masks):
            xmin, ymin, xmax, ymax = box_object.box
            assert 0 <= xmin < xmax < image_size and 0 <= ymin < ymax < image_size
            side = max(xmax - xmin, ymax - ymin) + 1
            assert 0.1 * image_size <= side <= 0.5 * image_size + 1
            rows, cols = np.nonzero(mask)
            assert (cols.min(), rows.min(), cols.max(), rows.max()) == box_object.box
            # The mask's pixels show the object (light and dark shades of its hue), not
            # something drawn over it.
            class_rgb = synthetic.CLASSES[synthetic.CLASS_NAMES.index(box_object.name)].rgb
            hue_gap = np.abs(_hue(image[mask]).astype(int) - int(_hue([class_rgb])[0]))
            hue_gap = np.minimum(hue_gap, 180 - hue_gap)
            assert np.mean(hue_gap <= 12) > 0.95, box_object.name


def test_two_object_images_hold_two_classes_apart():
    for image, objects in synthetic.generate_examples(8, image_size=64, seed=3,
                                                      two_object_fraction=1.0):
        assert len(objects) == 2
        assert objects[0].name != objects[1].name
        (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = objects[0].box, objects[1].box
        assert ax1 < bx0 or bx1 < ax0 or ay1 < by0 or by1 < ay0
    for image, objects in synthetic.generate_examples(8, image_size=64, seed=3,
                                                      two_object_fraction=0.0):
        assert len(objects) == 1


@pytest.mark.parametrize("options, message", [
    (dict(num_images=0), "num_images"),
    (dict(image_size=8), "image_size"),
    (dict(two_object_fraction=1.5), "two_object_fraction"),
])
def test_bad_options_are_refused(tmp_path, options, message):
    arguments = dict(num_images=2, image_size=64, progress=False)
    arguments.update(options)
    with pytest.raises(ValueError, match=message):
        synthetic.make_dataset(str(tmp_path), **arguments)
    assert not os.listdir(str(tmp_path))


def test_refuses_to_mix_two_data_sets(dataset_dirs):
    with pytest.raises(FileExistsError, match="images"):
        synthetic.make_dataset(dataset_dirs["first"], num_images=2, image_size=64, progress=False)


def _run_script(*arguments):
    return subprocess.run([sys.executable, SCRIPT] + list(arguments), cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)


def test_script_writes_a_data_set(tmp_path):
    output = str(tmp_path / "tmp")
    result = _run_script("--output", output, "--num_images", "5", "--image_size", "64")
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(os.path.join(output, "images"))) == [
        "synth_%05d.JPEG" % index for index in range(5)]
    assert len(read_annotation_folder(os.path.join(output, "annotations"))) == 5


def test_script_help_explains_every_option():
    result = _run_script("--help")
    assert result.returncode == 0
    for option in ("--output", "--num_images", "--image_size", "--seed", "--two_object_fraction"):
        assert option in result.stdout


def test_script_reports_a_bad_value(tmp_path):
    result = _run_script("--output", str(tmp_path / "tmp"), "--two_object_fraction", "2")
    assert result.returncode == 2
    assert "two_object_fraction must be in [0, 1]" in result.stderr
