"""Hostile files and values (issue 24, cases 6, 7 and part of 9): impossible boxes and image
sizes in both annotation formats, YAML alias bombs and deep nesting in configs and run
folders' configs, label lists that are not label lists, settings of the wrong type, an
overlay's opacity out of range, and a figure too large to draw. Each is one clear error
naming the file (and line or object), never a traceback, a silent skip or a changed
number. No TensorFlow."""
import os
import time

import cv2
import numpy as np
import pytest
import yaml

from l2caf import config, data
from l2caf.annotations import (Annotation, BoxObject, read_annotations, read_voc_xml,
                               read_wsol_metadata)
from l2caf.cli.figure import main as make_figure
from l2caf.errors import ConfigError, RunError
from l2caf.heatmaps import show_heatmap_on_image
from l2caf.report import drawing
from l2caf.runs.folder import read_config_file
from l2caf.runs.localization import load_annotations
from l2caf.runs.plan import list_images
from l2caf.settings import Settings
from tests.helpers import assert_one_error_line, exit_status, make_run

# --- Boxes and image sizes (case 6) ---------------------------------------------------------

XML = ("<annotation><filename>a</filename><size><width>{width}</width><height>{height}"
       "</height></size><object><name>n01440764</name><bndbox><xmin>{0}</xmin><ymin>{1}</ymin>"
       "<xmax>{2}</xmax><ymax>{3}</ymax></bndbox></object></annotation>")


def write_xml(folder, box, width="100", height="80"):
    folder.mkdir(exist_ok=True)
    path = folder / "a.xml"
    path.write_text(XML.format(*box, width=width, height=height))
    return str(path)


@pytest.mark.parametrize("box, size, problem", [
    (("-5", "0", "10", "10"), ("100", "80"), "xmin -5 is negative"),
    (("1e30", "0", "10", "10"), ("100", "80"), "is beyond the image's width 100"),
    (("50", "0", "10", "10"), ("100", "80"), "xmin 50 is greater than xmax 10"),
    (("0", "40", "10", "20"), ("100", "80"), "ymin 40 is greater than ymax 20"),
    (("0", "0", "500", "10"), ("100", "80"), "xmax 500 is beyond the image's width 100"),
    (("0", "0", "10", "81"), ("100", "80"), "ymax 81 is beyond the image's height 80"),
    (("inf", "0", "10", "10"), ("100", "80"), "<xmin> is 'inf', not a finite number"),
    (("0", "nan", "10", "10"), ("100", "80"), "<ymin> is 'nan', not a finite number"),
    (("0", "0", "10", "10.5"), ("100", "80"), "<ymax> is '10.5', not a whole number"),
    (("0", "0", "10", "10"), ("0", "80"), "image size 0x80 is not a size"),
    (("0", "0", "10", "10"), ("-100", "80"), "image size -100x80 is not a size"),
    (("0", "0", "10", "10"), ("nan", "80"), "<width> is 'nan', not a finite number"),
    (("0", "0", "10", "10"), ("1e9", "1e9"), "over the 150 megapixels"),
])
def test_an_impossible_box_or_size_in_an_xml_names_the_file_and_object(tmp_path, box, size,
                                                                        problem):
    path = write_xml(tmp_path / "xmls", box, *size)
    with pytest.raises(ValueError) as caught:
        read_voc_xml(path)
    message = str(caught.value)
    assert message.startswith(path + ": ") and problem in message, message
    if size == ("100", "80"):  # a box's fault: the object is named too
        assert "object 1 (n01440764)" in message, message
    # What the evaluation and the pictures print: one line naming the file.
    with pytest.raises(RunError) as caught:
        load_annotations(str(tmp_path / "xmls"))
    assert "\n" not in str(caught.value) and path in str(caught.value)


def test_the_visualiser_reports_a_bad_box_as_one_line_naming_the_xml(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), np.zeros((80, 100, 3), np.uint8))
    path = write_xml(tmp_path / "xmls", ("0", "0", "10", "inf"))
    values = config.defaults()
    values.update(images=str(images), annotations=str(tmp_path / "xmls"))
    with pytest.raises(ConfigError, match="annotations: %s: object 1 .*<ymax> is 'inf'"
                                          % path):
        list_images(values)


@pytest.mark.parametrize("box", [("0", "0", "99", "79"), ("1", "1", "100", "80"),
                                 ("5", "6", "7.0", "8"), ("3", "3", "3", "3")])
def test_boxes_within_the_image_are_kept_as_given_and_one_pixel_beyond_is_not(tmp_path, box):
    """0-based (ILSVRC: up to width - 1) and 1-based (Pascal VOC: up to the width) boxes and
    one-pixel boxes are read unchanged: nothing is clipped. One pixel more is refused."""
    annotation = read_voc_xml(write_xml(tmp_path / "in", box))
    assert annotation == Annotation("a", 100, 80, [BoxObject("n01440764",
                                                             tuple(int(float(v)) for v in box))])
    beyond = (box[0], box[1], "101", box[3])
    with pytest.raises(ValueError, match="xmax 101 is beyond the image's width 100"):
        read_voc_xml(write_xml(tmp_path / "beyond", beyond))


METADATA = {
    "image_ids.txt": "val/a.JPEG\nval/b.JPEG\n",
    "class_labels.txt": "val/a.JPEG,65\nval/b.JPEG,970\n",
    "image_sizes.txt": "val/a.JPEG,500,375\nval/b.JPEG,300,200\n",
    "localization.txt": "val/a.JPEG,111,108,441,193\nval/b.JPEG,45,49,299,162\n",
}


def write_metadata(folder, **changed):
    folder.mkdir()
    for name, text in dict(METADATA, **changed).items():
        (folder / name).write_text(text)
    return str(folder)


@pytest.mark.parametrize("name, line, problem", [
    ("localization.txt", "val/b.JPEG,-1,49,299,162",
     "localization.txt:2: val/b.JPEG (its size from image_sizes.txt): box (-1, 49, 299, 162) "
     "on an image of 300x200: x0 -1 is negative"),
    ("localization.txt", "val/b.JPEG,45,163,299,162",
     "localization.txt:2: val/b.JPEG (its size from image_sizes.txt): box (45, 163, 299, "
     "162) on an image of 300x200: y0 163 is greater than y1 162"),
    ("localization.txt", "val/b.JPEG,45,49,301,162", "is beyond the image's width 300"),
    ("localization.txt", "val/b.JPEG,45,49,299,100000000000000000000000000000",
     "y1 100000... (30 digits) is beyond the image's height 200"),
    ("image_sizes.txt", "val/b.JPEG,0,200", "image_sizes.txt:2: val/b.JPEG: the image size "
                                            "0x200 is not a size"),
    ("image_sizes.txt", "val/b.JPEG,300000,300000", "image_sizes.txt:2: val/b.JPEG: the "
                                                    "image size 300000x300000 is over"),
])
def test_an_impossible_box_or_size_in_metadata_names_the_file_and_line(tmp_path, name, line,
                                                                       problem):
    first = METADATA[name].splitlines()[0]
    folder = write_metadata(tmp_path / "metadata", **{name: first + "\n" + line + "\n"})
    with pytest.raises(ValueError) as caught:
        read_wsol_metadata(folder)
    message = str(caught.value)
    assert os.path.join(folder, name) in message, message
    assert problem in message, message
    with pytest.raises(RunError, match="annotations: "):
        load_annotations(folder)


def test_a_metadata_box_ending_at_the_last_pixel_is_kept_and_one_beyond_is_not(tmp_path):
    folder = write_metadata(tmp_path / "metadata",
                            **{"localization.txt": "val/a.JPEG,0,0,499,374\n"
                                                   "val/b.JPEG,0,0,299,199\n"})
    assert read_annotations(folder)["b"].objects == [BoxObject(970, (0, 0, 299, 199))]
    folder = write_metadata(tmp_path / "beyond",
                            **{"localization.txt": "val/a.JPEG,0,0,499,374\n"
                                                   "val/b.JPEG,0,0,299,201\n"})
    with pytest.raises(ValueError, match="y1 201 is beyond the image's height 200"):
        read_annotations(folder)


# --- YAML (case 7) ------------------------------------------------------------------------

def write_yaml(tmp_path, text, name="c.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# A small alias bomb, all under one known key (the had 9 levels of 9): its last
# item is 4 x 4 x 4 x 4 leaves. (Read by older code, `classes` made an error message that
# spelled every leaf out, and `images` became the expanded list's text.)
BOMB = ("classes: [&a [1, 2, 3, 4], &b [*a, *a, *a, *a], &c [*b, *b, *b, *b],\n"
        "          [*c, *c, *c, *c]]\n")


@pytest.mark.parametrize("key", ["classes", "images"])
def test_an_alias_bomb_is_refused_before_it_is_expanded(tmp_path, monkeypatch, key):
    constructed = []
    original = yaml.constructor.SafeConstructor.construct_document

    def construct_document(self, node):
        constructed.append(node)
        return original(self, node)

    monkeypatch.setattr(yaml.constructor.SafeConstructor, "construct_document",
                        construct_document)
    path = write_yaml(tmp_path, BOMB.replace("classes", key))
    with pytest.raises(ConfigError) as caught:
        config.read_yaml(path)
    message = str(caught.value)
    assert message == ("config file %s, line 1: YAML anchors and aliases (&name, *name) are "
                       "not allowed in a config; write each value out" % path)
    assert not constructed  # refused while composing: no value was ever built


def test_an_alias_is_refused_in_a_run_folders_config(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    path = write_yaml(run, "network: demo_densenet\nimages: &i input_imgs\nannotations: *i\n",
                      "config.yaml")
    with pytest.raises(ConfigError, match="line 2: YAML anchors and aliases"):
        read_config_file(path)


DEEP = {
    "100,000 nested lists": lambda: "classes: " + "[" * 100000 + "]" * 100000 + "\n",
    "block lists": lambda: "made_with:\n" + "".join("  " * depth + "- \n"
                                                    for depth in range(1, 40)),
    "1000 nested mappings": lambda: "classes: " + "{a: " * 1000 + "1" + "}" * 1000 + "\n",
}


@pytest.mark.parametrize("case", sorted(DEEP))
def test_deep_nesting_is_one_line_not_a_recursion_error(tmp_path, case):
    path = write_yaml(tmp_path, DEEP[case]())
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"config file %s, line \d+: nesting deeper than "
                                          r"10 levels" % path):
        config.read_yaml(path)
    with pytest.raises(ConfigError, match="nesting deeper than"):
        read_config_file(path)
    assert time.monotonic() - started < 10


def test_a_config_file_over_the_size_bound_is_refused_unread(tmp_path):
    path = write_yaml(tmp_path, "network: inception_v1\n# padding\n" * 60000)
    assert os.path.getsize(path) > 1024 * 1024
    with pytest.raises(ConfigError, match="config file %s is over 1 MiB" % path):
        config.read_yaml(path)


def test_ordinary_configs_still_read_and_the_same_with_an_anchor_does_not(tmp_path):
    text = ("network: inception_v1\nclasses: [1, 2]\n"
            "made_with: {image_size: [224, 224], layer: Mixed_5c}\n")
    assert config.read_sections(write_yaml(tmp_path, text)) == (
        {"network": "inception_v1", "classes": [1, 2]},
        {"image_size": [224, 224], "layer": "Mixed_5c"})
    with pytest.raises(ConfigError, match="line 2: YAML anchors and aliases"):
        config.read_sections(write_yaml(tmp_path, text.replace("[1, 2]", "&c [1, 2]")))


# --- Label lists (case 7) -----------------------------------------------------------------

# Made when a test runs (not at collection): a few megabytes each.
NOT_LABEL_LISTS = {
    "a long line": (lambda: b"cat\n" + b"x" * 5000 + b"\ndog\n",
                    "line 2: 5000 characters, over the 1000"),
    "binary": (lambda: b"cat\ndog\n\x89PNG\r\n\x1a\n\x00\x00\xff\xd8", "line 3: not UTF-8 text"),
    "too many names": (lambda: b"a\n" * 1000001,
                       "holds over 1000000 names (line 1000001)"),
    "too large": (lambda: b"a" * 100 + b"\n" + b" " * (17 * 1024 * 1024), "is over 16 MiB"),
}


@pytest.mark.parametrize("case", sorted(NOT_LABEL_LISTS))
def test_a_file_that_is_not_a_label_list_is_one_line(tmp_path, case):
    content, problem = NOT_LABEL_LISTS[case]
    path = tmp_path / "labels.txt"
    path.write_bytes(content())
    with pytest.raises(ConfigError) as caught:
        data.class_names(str(path))
    message = str(caught.value)
    assert str(path) in message and problem in message and "\n" not in message, message


def test_label_lists_keep_their_numbering_within_the_bounds(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes(b"tench\r\ngoldfish\r\n\r\ngreat white shark\n" + b"x" * 1000 + b"\n")
    assert data.read_label_file(str(path)) == ["tench", "goldfish", "great white shark",
                                               "x" * 1000]
    path.write_bytes(b"tench\r\ngoldfish\r\n\r\ngreat white shark\n" + b"x" * 1001 + b"\n")
    with pytest.raises(ConfigError, match="line 5: 1001 characters"):
        data.read_label_file(str(path))


# --- Settings, opacity, figure (case 9) ---------------------------------------------------

@pytest.mark.parametrize("values, message", [
    ({"max_iters": "10"}, "max_iters must be a whole number, at least 1, got '10'"),
    ({"max_iters": 10.7}, "max_iters must be a whole number, at least 1, got 10.7"),
    ({"check_every": True}, "check_every must be a whole number, at least 1, got True"),
    ({"seed": "3"}, "seed must be a whole number, 0 or more, got '3'"),
    ({"seed": 1.5}, "seed must be a whole number, 0 or more, got 1.5"),
    ({"max_iters": float("nan")}, "max_iters must be a whole number"),
])
def test_settings_of_the_wrong_type_are_refused_not_converted(values, message):
    with pytest.raises(ConfigError) as caught:
        Settings.of(values)
    assert message in str(caught.value)


def test_whole_settings_are_ints():
    settings = Settings.of({"max_iters": 10.0, "seed": np.int64(3)})
    assert (settings.max_iters, settings.seed) == (10, 3)
    assert type(settings.max_iters) is int and type(settings.seed) is int


@pytest.mark.parametrize("alpha", [float("nan"), 5, -2, float("inf"), "0.5"])
def test_an_overlays_opacity_outside_0_to_1_is_refused(alpha):
    image = np.full((8, 8, 3), 128, np.uint8)
    with pytest.raises(ConfigError, match="alpha must be a finite number, in \\[0, 1\\]"):
        show_heatmap_on_image(image, np.eye(4), alpha)


@pytest.fixture
def one_run(dataset, tmp_path, monkeypatch):
    """A run folder for make_figure, which must refuse before it draws anything (code that
    does not would try to allocate gigabytes: drawing is stopped here)."""
    def new_figure(*args, **kwargs):
        raise AssertionError("the figure was drawn: %s" % (args,))

    monkeypatch.setattr(drawing, "new_figure", new_figure)
    return make_run(str(tmp_path / "run"), dataset)


def test_a_figure_too_large_to_draw_is_one_line(one_run, tmp_path, capsys):
    argv = ["--results", one_run, "--output", str(tmp_path / "figure"), "--dpi", "100000"]
    assert exit_status(make_figure, argv) == 2
    assert_one_error_line(capsys.readouterr().err, "at --dpi 100000 would be at least")
    assert not os.path.exists(str(tmp_path / "figure.png"))


def test_a_figure_of_too_many_rows_is_one_line(one_run, tmp_path, capsys):
    names = ",".join(["synth_00000"] * 3000)
    argv = ["--results", one_run, "--output", str(tmp_path / "figure"), "--images", names]
    assert exit_status(make_figure, argv) == 2
    assert_one_error_line(capsys.readouterr().err, "a figure of 3000 image(s) x 1 run(s)")


def test_a_negative_seed_is_one_line(one_run, tmp_path, capsys):
    argv = ["--results", one_run, "--output", str(tmp_path / "figure"), "--seed", "-1"]
    assert exit_status(make_figure, argv) == 2
    assert_one_error_line(capsys.readouterr().err, "--seed must be 0 or more")
