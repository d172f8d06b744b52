"""scripts/make_figure.py and l2caf.report.figure on run folders written without TensorFlow
(tests/helpers.py's builders, over conftest.py's `dataset`): the PNG's size and resolution,
boxes drawn where the evaluation put them (pixels of the box colours on the box's edges,
none inside), vector boxes and text in the PDF, and the choice of images by name, seed, IoU
and faithfulness."""
import os
import re
import zlib

import numpy as np
import pytest
from PIL import Image

from l2caf.cli.figure import main
from l2caf.annotations import read_annotation_folder
from l2caf.evaluation import heatmap_to_box, wsol
from l2caf.report import drawing
from l2caf.report.figure import Chooser, write_comparison
from l2caf.report.pictures import PictureRun
from tests.helpers import (DISPLACED, NUM_IMAGES, add_faithfulness, assert_one_error_line,
                           exit_status, make_oblivious_run, make_run, plain_iou)

SHOWN = ["synth_00000", "synth_00001", "synth_00003"]
GROUND_TRUTH = (0, 255, 0)
BOX = (255, 0, 255)


@pytest.fixture(scope="module")
def runs(dataset, tmp_path_factory):
    folder = tmp_path_factory.mktemp("figure_runs")
    l2caf = make_run(str(folder / "l2caf"), dataset)
    gradcam = make_run(str(folder / "gradcam"), dataset, "gradcam", displaced=())
    return [PictureRun(l2caf), PictureRun(gradcam)]


def drawn(runs, images, prefix, protocol, dpi):
    chooser = Chooser(runs[0], 0.2, protocol)
    return write_comparison(runs, [runs[0].by_name[name] for name in images], prefix,
                            protocol=protocol, dpi=dpi, chooser=chooser)


@pytest.fixture(scope="module")
def figure(runs, tmp_path_factory):
    return drawn(runs, SHOWN, str(tmp_path_factory.mktemp("figure") / "figure"), "cam", 300)


def has_colour(picture, x, y, colour, radius=3, tolerance=60):
    """Whether a pixel within radius of (x, y) is within tolerance of colour."""
    x, y = int(round(x)), int(round(y))
    patch = picture[max(0, y - radius):y + radius + 1, max(0, x - radius):x + radius + 1, :3]
    return bool(np.any(np.all(np.abs(patch.astype(int) - colour) <= tolerance, axis=-1)))


def edge_points(panel, fractions):
    """Points on the edges of a box given as fractions of its image (left, top, right,
    bottom), in the PNG's pixels: a third, half and two thirds along each edge."""
    left, top, right, bottom = panel.pixels
    x0, y0 = left + fractions[0] * (right - left), top + fractions[1] * (bottom - top)
    x1, y1 = left + fractions[2] * (right - left), top + fractions[3] * (bottom - top)
    along = (1 / 3.0, 0.5, 2 / 3.0)
    return ([(x0, y0 + t * (y1 - y0)) for t in along] + [(x1, y0 + t * (y1 - y0)) for t in along]
            + [(x0 + t * (x1 - x0), y0) for t in along] + [(x0 + t * (x1 - x0), y1) for t in along])


def shrunk(fractions, factor=0.6):
    centre_x, centre_y = (fractions[0] + fractions[2]) / 2, (fractions[1] + fractions[3]) / 2
    return (centre_x + (fractions[0] - centre_x) * factor, centre_y + (fractions[1] - centre_y)
            * factor, centre_x + (fractions[2] - centre_x) * factor,
            centre_y + (fractions[3] - centre_y) * factor)


def evaluation_box(run, name, protocol, size):
    """The box the evaluation makes of the run's heatmap of image `name`, as fractions of
    the image: l2caf.evaluation's own functions, not the figure's."""
    [line] = run.lines[run.by_name[name]]
    path, key = line["heatmap"].rsplit(":", 1)
    heatmap = np.load(os.path.join(run.results_dir, os.path.basename(path)))[key]
    if protocol == "wsol":
        box, frame = wsol.ScoreMap(heatmap).box(0.2), (224, 224)
    else:
        box, frame = heatmap_to_box(heatmap, size, 0.2, protocol), size
    return (box[0] / frame[1], box[1] / frame[0], (box[2] + 1) / frame[1],
            (box[3] + 1) / frame[0])


def check_boxes(result, runs, dataset, images, protocol):
    picture = np.asarray(Image.open(result.paths[0]).convert("RGB"))
    annotations = read_annotation_folder(os.path.join(dataset, "annotations"))
    panels = {(panel.row, panel.column): panel for panel in result.panels}
    assert sorted(panels) == [(row, column) for row in range(len(images))
                              for column in range(1 + len(runs))]
    for row, name in enumerate(images):
        annotation = annotations[name]
        size = (annotation.height, annotation.width)
        [box_object] = annotation.objects
        box = box_object.box
        truth = (box[0] / size[1], box[1] / size[0], (box[2] + 1) / size[1],
                 (box[3] + 1) / size[0])
        for column in range(1 + len(runs)):
            panel = panels[row, column]
            assert panel.image_size == size
            left, top, right, bottom = panel.pixels
            assert (right - left) == pytest.approx(bottom - top, abs=1.5)  # square images
            assert all(has_colour(picture, x, y, GROUND_TRUTH)
                       for x, y in edge_points(panel, truth)), (name, column)
            if column == 0:
                continue
            made = evaluation_box(runs[column - 1], name, protocol, size)
            assert all(has_colour(picture, x, y, BOX) for x, y in edge_points(panel, made)), \
                (name, column, made)
            # Nowhere inside: the colour is on the box's edges, not all over the picture.
            assert not any(has_colour(picture, x, y, BOX)
                           for x, y in edge_points(panel, shrunk(made))), (name, column)


def test_a_300_dpi_figure_draws_the_boxes_where_the_evaluation_put_them(runs, dataset,
                                                                         figure):
    check_boxes(figure, runs, dataset, SHOWN, "cam")
    with Image.open(figure.paths[0]) as png:
        assert png.size == (figure.size[1], figure.size[0])
        assert png.info["dpi"] == pytest.approx((300, 300), abs=0.01)
        # Three rows of 1.6-inch pictures at 300 dpi, and three columns.
        assert png.size[0] > 3 * 1.6 * 300 and png.size[1] > 3 * 1.6 * 300


def test_under_wsol_the_224_box_is_drawn_scaled_back_onto_the_image(runs, dataset, tmp_path):
    result = drawn(runs, ["synth_00002", "synth_00004"], str(tmp_path / "wsol"), "wsol", 150)
    check_boxes(result, runs, dataset, ["synth_00002", "synth_00004"], "wsol")


def pdf_content(path):
    """The PDF's bytes and its decompressed streams."""
    with open(path, "rb") as stream:
        data = stream.read()
    streams = []
    for raw in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            streams.append(zlib.decompress(raw))
        except zlib.error:
            pass  # an image stream of another filter
    return data, b"\n".join(streams)


def test_the_pdf_has_the_pngs_page_vector_boxes_and_text(figure):
    data, content = pdf_content(figure.paths[1])
    assert data.startswith(b"%PDF")
    [box] = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data)
    assert float(box[0]) == pytest.approx(figure.size[1] / 300.0 * 72, abs=1)
    assert float(box[1]) == pytest.approx(figure.size[0] / 300.0 * 72, abs=1)
    # Boxes are stroked paths in the box colours; text is text in an embedded TrueType font.
    assert content.count(b"1 0 1 RG") >= 1 and content.count(b"0 1 0 RG") >= 1
    assert re.search(rb"(\d+\.?\d* ){2}m\s+(\d+\.?\d* ){2}l", content)
    assert b"/FontFile2" in data and b"BT" in content


def names(run, images):
    return [run.names[image] for image in images]


def test_worst_and_best_by_iou(runs, dataset):
    annotations = read_annotation_folder(os.path.join(dataset, "annotations"))
    ious = {}
    for name, annotation in annotations.items():
        size = (annotation.height, annotation.width)
        box = evaluation_box(runs[0], name, "cam", size)
        pixels = (round(box[0] * size[1]), round(box[1] * size[0]),
                  round(box[2] * size[1]) - 1, round(box[3] * size[0]) - 1)
        ious[name] = plain_iou(pixels, annotation.objects[0].box)
    by_iou = sorted(ious, key=lambda name: (ious[name], name))
    chooser = Chooser(runs[0], 0.2, "cam")
    worst, notes = chooser.ranked(2, "iou", best=False)
    assert names(runs[0], worst) == by_iou[:2] and sorted(by_iou[:2]) == sorted(DISPLACED)
    best, _ = chooser.ranked(3, "iou", best=True)
    assert names(runs[0], best) == by_iou[::-1][:3] and notes == []


def test_best_and_worst_by_faithfulness_leave_out_images_without_scores(dataset, tmp_path):
    # Image i's insertion AUC falls with i, its deletion AUC rises with it.
    run = make_run(str(tmp_path / "scored"), dataset)
    add_faithfulness(run, skip=("synth_00000",))
    chooser = Chooser(PictureRun(run), 0.2, "cam")
    best, notes = chooser.ranked(3, "insertion_auc", best=True)
    assert names(chooser.run, best) == ["synth_00001", "synth_00002", "synth_00003"]
    assert notes == ["1 of the %d images of %s have no insertion_auc for their shown heatmap "
                     "and were not ranked" % (NUM_IMAGES, run)]
    worst, _ = chooser.ranked(2, "deletion_auc", best=False)
    assert names(chooser.run, worst) == ["synth_00005", "synth_00004"]
    best, _ = chooser.ranked(2, "average_drop", best=True)
    assert names(chooser.run, best) == ["synth_00001", "synth_00002"]


def test_random_images_are_seeded_and_shown_by_name(runs):
    chooser = Chooser(runs[0], 0.2, "cam")
    first = chooser.at_random(3, 0)
    assert first == chooser.at_random(3, 0) == sorted(first)
    assert {tuple(chooser.at_random(3, seed)) for seed in range(6)} != {tuple(first)}
    assert sorted(chooser.at_random(NUM_IMAGES + 5, 1)) == runs[0].image_paths()


def test_the_command_writes_png_and_pdf(runs, tmp_path, capsys):
    prefix = str(tmp_path / "figures" / "worst")
    assert main(["--results", runs[0].results_dir, runs[1].results_dir, "--worst", "2",
                 "--output", prefix, "--dpi", "60", "--colormap", "jet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("written: %s.png, %s.pdf (2 images x 2 runs, " % (prefix, prefix))
    with Image.open(prefix + ".png") as png:
        assert png.info["dpi"] == pytest.approx((60, 60), abs=0.01)
    assert os.path.getsize(prefix + ".pdf") > 1000


def test_a_class_oblivious_run_beside_a_class_specific_one(runs, dataset, tmp_path):
    oblivious = PictureRun(make_oblivious_run(str(tmp_path / "oblivious"), dataset))
    assert oblivious.title.startswith("L2-CAF (cls_oblivious), demo_densenet")
    # Either way round: the row's class is the class-specific run's, or the ground truth.
    for pair in ([oblivious, runs[1]], [runs[1], oblivious]):
        result = drawn(pair, ["synth_00001", "synth_00002"], str(tmp_path / "mixed"), "cam", 150)
        check_boxes(result, pair, dataset, ["synth_00001", "synth_00002"], "cam")


def test_a_panel_of_a_run_without_the_image_says_so(runs, dataset, tmp_path):
    partial = make_run(str(tmp_path / "partial"), dataset, "gradcam")
    lines = [line for line in open(os.path.join(partial, "results.jsonl"))
             if "synth_00000" not in line]
    with open(os.path.join(partial, "results.jsonl"), "w") as stream:
        stream.writelines(lines)
    result = drawn([runs[0], PictureRun(partial)], ["synth_00000", "synth_00002"],
                   str(tmp_path / "partial_figure"), "cam", 60)
    assert len(result.panels) == 6 and os.path.exists(result.paths[0])


@pytest.mark.parametrize("arguments, message", [
    (["--worst", "2", "--by", "iou", "--results", "PLAIN"],
     "--by iou needs the images' boxes: give --annotations"),
    (["--best", "2", "--by", "insertion_auc"], "holds no faithfulness scores (faithfulness.jsonl); "
                                               "make them with scripts/evaluate_faithfulness.py"),
    (["--best", "2", "--seed", "3"], "--seed is the seed of --random"),
    (["--by", "iou"], "--by ranks the images of --best N or --worst N"),
    (["--images", "synth_00000,nothing"], "--images: nothing is not an image of"),
    (["--best", "0"], "argument --best: must be at least 1, got 0"),
    (["--random", "2", "--best", "2"], "argument --best: not allowed with argument --random"),
])
def test_mistakes_are_one_line_and_status_2(runs, dataset, tmp_path, capsys, arguments,
                                            message):
    if "PLAIN" in arguments:
        plain = make_run(str(tmp_path / "plain"), dataset, annotations_key=False)
        arguments = [plain if argument == "PLAIN" else argument for argument in arguments]
    else:
        arguments = arguments + ["--results", runs[0].results_dir]
    assert exit_status(main, arguments + ["--output", str(tmp_path / "f")]) == 2
    assert_one_error_line(capsys.readouterr().err, message)
    assert not os.path.exists(str(tmp_path / "f.png"))


def test_the_box_colours_are_not_in_the_overlays_colour_map():
    table = (drawing.colormap("bwr")(np.linspace(0, 1, 256))[:, :3] * 255).astype(int)
    for colour in (GROUND_TRUTH, BOX):
        assert np.abs(table - colour).max(axis=1).min() > 100


# What a paper needs of a figure (issue 28): its own column titles, the scene visible under the
# heatmap, boxes visible on any background.

def test_titles_name_the_columns_and_must_be_one_per_folder(runs, tmp_path, capsys):
    from l2caf.report.figure import comparison_figure
    chooser = Chooser(runs[0], 0.2, "cam")
    figure, axes, _ = comparison_figure(runs, chooser, [runs[0].by_name["synth_00000"]], 0.2,
                                        "cam", dpi=60, titles=["L2-CAF", "Grad-CAM"])
    assert [axes[0, column].get_title() for column in (1, 2)] == ["L2-CAF", "Grad-CAM"]
    assert exit_status(main, ["--results", runs[0].results_dir, runs[1].results_dir,
                              "--output", str(tmp_path / "f"), "--titles", "only one"]) == 2
    assert_one_error_line(capsys.readouterr().err, "--titles names 1 column(s) for 2 results "
                                                   "folder(s); give one title per folder")
    assert not os.listdir(str(tmp_path))


def test_the_boxes_have_a_dark_edge_so_that_green_shows_on_green(runs):
    from l2caf.report.figure import comparison_figure
    chooser = Chooser(runs[0], 0.2, "cam")
    _, axes, _ = comparison_figure(runs, chooser, [runs[0].by_name["synth_00000"]], 0.2,
                                   "cam", dpi=60)
    patches = axes[0, 1].patches
    edges = [patch for patch in patches if patch.get_zorder() == 2]
    boxes = [patch for patch in patches if patch.get_zorder() == 3]
    assert len(edges) == len(boxes) == 2  # the ground truth's and the evaluation's
    for edge, box in zip(edges, boxes):
        assert edge.get_bbox().bounds == box.get_bbox().bounds
        assert edge.get_edgecolor()[:3] == (0.0, 0.0, 0.0)
        assert edge.get_linewidth() > box.get_linewidth()


def test_the_fade_overlay_leaves_the_image_where_the_heatmap_is_lowest():
    from l2caf.heatmaps import show_heatmap_on_image
    image = np.full((4, 4, 3), 90, np.uint8)
    heatmap = np.zeros((4, 4))
    heatmap[0, 0] = 1.0
    faded = show_heatmap_on_image(image, heatmap, 0.5, "jet", fade=True)
    blended = show_heatmap_on_image(image, heatmap, 0.5, "jet")
    assert np.array_equal(faded[3, 3], image[3, 3])  # opacity 0 where the map is lowest
    assert not np.array_equal(blended[3, 3], image[3, 3])  # tinted by the map's low end
    assert np.array_equal(faded[0, 0], blended[0, 0])  # alpha at the map's highest
