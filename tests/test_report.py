"""scripts/make_report.py and l2caf.report.page on run folders written here without
TensorFlow: synthetic images with their XMLs, heatmaps placed on the ground-truth boxes (or
away from them, for misses), results lines as the visualisers write them, and the lines
other helpers' commands add (loss_history, faithfulness.jsonl with its curves) in their
promised formats. The browser's view of a real sweep's report is tests/test_report_browser.py.

The builders here are shared with test_figures.py and test_report_curves.py."""
import collections
import json
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import yaml

from l2caf.cli.report import main
from l2caf.annotations import read_annotation_folder
from l2caf.report import page
from l2caf.files import write_atomically
from l2caf.runs.folder import NpzChunks, Shard
from l2caf.synthetic import CLASS_NAMES, make_dataset
# plain_iou: also for the other picture tests
from tests.test_evaluate_localization import overlap as plain_iou

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_IMAGES = 6
IMAGE_SIZE = 96
HEATMAP_SIZE = 48
HELD_OUT_SEED = 777
# Heatmaps of these images sit in the corner farthest from their object: missed.
DISPLACED = ("synth_00001", "synth_00004")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Synthetic images of one object each, with their XMLs and label list."""
    folder = str(tmp_path_factory.mktemp("report_data"))
    make_dataset(folder, NUM_IMAGES, image_size=IMAGE_SIZE, seed=HELD_OUT_SEED,
                 two_object_fraction=0.0, progress=False)
    return folder


def object_heatmap(box, displaced=False, size=HEATMAP_SIZE, image_size=IMAGE_SIZE):
    """A heatmap whose hot cells cover box (xmin, ymin, xmax, ymax) of the image, or the same
    blob moved to the farthest corner; a faint gradient elsewhere."""
    rows, columns = np.mgrid[0:size, 0:size]
    heatmap = 0.05 * (rows + columns) / (2.0 * size)
    scale = size / float(image_size)
    x0, y0 = int(box[0] * scale), int(box[1] * scale)
    x1, y1 = int(np.ceil((box[2] + 1) * scale)), int(np.ceil((box[3] + 1) * scale))
    if displaced:
        width, height = x1 - x0, y1 - y0
        x0 = 0 if x0 + width / 2.0 > size / 2.0 else size - width
        y0 = 0 if y0 + height / 2.0 > size / 2.0 else size - height
        x1, y1 = x0 + width, y0 + height
    heatmap[y0:y1, x0:x1] = 1.0
    return heatmap.astype(np.float32)


def results_line(image, annotation, class_ids, reference, method, index, history):
    """A results line as the runner writes it (and loss_history, as helper C adds it)."""
    [box_object] = annotation.objects
    class_id = class_ids[box_object.name]
    others = [c for c in range(len(CLASS_NAMES)) if c != class_id][:4]
    probabilities = [0.9 - 0.1 * index] + [0.02] * 4
    predictions = [{"class_id": c, "class_name": CLASS_NAMES[c], "probability": p}
                   for c, p in zip([class_id] + others, probabilities)]
    optimised = method == "l2caf"
    return collections.OrderedDict([
        ("image", image), ("network", "demo_densenet"), ("layer", "dense_block2/conv_block2"),
        ("method", method), ("caf_variant", "cls_specific"),
        ("filter_type", "l2norm" if optimised else None), ("class_id", class_id),
        ("class_name", CLASS_NAMES[class_id]), ("iterations", 101 if optimised else 0),
        ("final_loss", -3.5 - index if optimised else None), ("seconds", 0.1),
        ("heatmap", reference), ("overlay", None), ("gif", None), ("predictions", predictions),
        ("ground_truth", [class_id]), ("image_size", [annotation.height, annotation.width]),
        ("loss_history", [[0, -1.0], [50, -3.0 - index], [100, -3.5 - index]]
         if optimised and history else None)])


def make_run(folder, dataset, method="l2caf", displaced=DISPLACED, history=True,
             annotations_key=True):
    """A run folder of `method` over the data set: config.yaml, heatmaps in an npz and
    results.jsonl. Returns its path."""
    os.makedirs(folder)
    annotations = read_annotation_folder(os.path.join(dataset, "annotations"))
    class_ids = {name: index for index, name in enumerate(CLASS_NAMES)}
    config = {"network": "demo_densenet", "labels": os.path.join(dataset, "labels.txt"),
              "images": os.path.join(dataset, "images"),
              "annotations": os.path.join(dataset, "annotations") if annotations_key else "",
              "output_dir": folder, "method": method, "heatmap_format": "npz"}
    with open(os.path.join(folder, "config.yaml"), "w") as stream:
        yaml.safe_dump(dict(config, made_with={"layer": "dense_block2/conv_block2"}), stream)
    stems = sorted(annotations)
    maps = collections.OrderedDict(
        ("%s_c%d" % (stem, class_ids[annotations[stem].objects[0].name]),
         object_heatmap(annotations[stem].objects[0].box, stem in displaced)) for stem in stems)
    references = NpzChunks(folder, Shard(0, 1)).write(maps)
    lines = [results_line(os.path.join(dataset, "images", stem + ".JPEG"), annotations[stem],
                          class_ids, reference, method, index, history)
             for index, (stem, reference) in enumerate(zip(stems, references.values()))]
    write_lines(os.path.join(folder, "results.jsonl"), lines)
    return folder


def write_lines(path, lines):
    write_atomically(path, lambda stream: stream.write(
        "".join(json.dumps(line) + "\n" for line in lines).encode("utf-8")))


def read_lines(path):
    with open(path) as stream:
        return [json.loads(line) for line in stream]


def add_faithfulness(folder, points=11, skip=()):
    """faithfulness.jsonl in helper D's promised format, for every heatmap but those of the
    images in skip, and the curves' npz: image i's deletion curve falls from 1 to i / 10,
    its insertion curve rises from 0 to 1 - i / 10. Returns {(image, class_id): curves}."""
    fractions = np.linspace(0.0, 1.0, points)
    lines, curves = [], {}
    for index, line in enumerate(read_lines(os.path.join(folder, "results.jsonl"))):
        if os.path.splitext(os.path.basename(line["image"]))[0] in skip:
            continue
        deletion = 1.0 - (1.0 - index / 10.0) * fractions
        insertion = (1.0 - index / 10.0) * fractions
        key = "c%d" % index
        curves[key] = np.stack([deletion, insertion]).astype(np.float32)
        lines.append({"image": line["image"], "class_id": line["class_id"],
                      "heatmap": line["heatmap"],
                      "deletion_auc": float(np.trapezoid(curves[key][0], fractions)),
                      "insertion_auc": float(np.trapezoid(curves[key][1], fractions)),
                      "average_drop": 0.1 * index, "increase_in_confidence": float(index % 2),
                      "steps": points - 1, "curves": "faithfulness_curves_000000.npz:" + key})
    np.savez_compressed(os.path.join(folder, "faithfulness_curves_000000.npz"), **curves)
    write_lines(os.path.join(folder, "faithfulness.jsonl"), lines)
    return {(line["image"], line["class_id"]): curves[line["curves"].split(":")[1]]
            for line in lines}


@pytest.fixture(scope="module")
def runs(dataset, tmp_path_factory):
    """An L2-CAF run with faithfulness scores and a failed image, and a Grad-CAM run whose
    heatmaps all sit on their objects."""
    folder = tmp_path_factory.mktemp("report_runs")
    l2caf = make_run(str(folder / "l2caf"), dataset)
    add_faithfulness(l2caf)
    write_lines(os.path.join(l2caf, "failures.jsonl"),
                [{"image": "broken.jpg", "reason": "broken.jpg: not a readable image"}])
    gradcam = make_run(str(folder / "gradcam"), dataset, "gradcam", displaced=())
    return l2caf, gradcam


def gallery_data(report_html):
    """(the gallery's JSON blob, its heatmaps as dicts) of a report page; the values the
    blob writes as text (gt, box, gt_boxes, history) read back as lists."""
    blob = re.search(r'<script type="application/json" id="gallery-data">(.*?)</script>',
                     report_html, re.S).group(1)
    data = json.loads(blob)
    columns = data["columns"]

    def numbers(text):
        return [float(value) for value in text.split()]
    rows = []
    for index in range(data["count"]):
        row = {name: values[index] for name, values in columns.items()}
        row["gt"] = [int(value) for value in numbers(row["gt"])]
        row["box"] = numbers(row["box"])
        row["gt_boxes"] = [numbers(box) for box in row["gt_boxes"].split(";") if box]
        row["history"] = [[int(pair.split(":")[0]), float(pair.split(":")[1])]
                          for pair in row["history"].split()] or None
        rows.append(row)
    return data, rows


def plain_cam_box(heatmap, size, threshold=0.2):
    """The CAM protocol's box, plainly: bilinear resize, keep >= threshold x max, the largest
    8-connected component's bounding box."""
    resized = cv2.resize(heatmap.astype(np.float64), (size[1], size[0]),
                         interpolation=cv2.INTER_LINEAR)
    mask = (resized >= threshold * resized.max()).astype(np.uint8)
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    label = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, width, height = (int(value) for value in stats[label, :4])
    return (x, y, x + width - 1, y + height - 1)


@pytest.fixture(scope="module")
def report(runs, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("report") / "out")
    assert main(["--results"] + list(runs) + ["--output", output, "--workers", "2",
                                               "--progress", "false"]) == 0
    with open(os.path.join(output, "report.html"), encoding="utf-8") as stream:
        return output, stream.read()


def test_the_gallery_holds_every_heatmap_with_the_evaluations_box_and_iou(runs, dataset,
                                                                          report):
    output, text = report
    data, rows = gallery_data(text)
    assert [run["folder"] for run in data["runs"]] == list(runs)
    assert len(rows) == 2 * NUM_IMAGES
    annotations = read_annotation_folder(os.path.join(dataset, "annotations"))
    for row in rows:
        run = runs[row["run"]]
        annotation = annotations[row["name"]]
        [box_object] = annotation.objects
        size = (annotation.height, annotation.width)
        line = next(line for line in read_lines(os.path.join(run, "results.jsonl"))
                    if line["image"].endswith(row["name"] + ".JPEG"))
        path, key = line["heatmap"].rsplit(":", 1)
        heatmap = np.load(os.path.join(run, os.path.basename(path)))[key]
        box = plain_cam_box(heatmap, size)
        assert row["iou"] == pytest.approx(plain_iou(box, box_object.box), abs=1e-4)
        assert row["box"] == pytest.approx([box[0] / size[1], box[1] / size[0],
                                            (box[2] + 1) / size[1], (box[3] + 1) / size[0]],
                                           abs=1e-4)
        assert row["gt_boxes"] == [pytest.approx(
            [box_object.box[0] / size[1], box_object.box[1] / size[0],
             (box_object.box[2] + 1) / size[1], (box_object.box[3] + 1) / size[0]], abs=1e-4)]
        missed = row["run"] == 0 and row["name"] in DISPLACED
        assert (row["iou"] < 0.5) == missed, row
        assert data["classes"][str(row["class_id"])] == "%d %s" % (row["class_id"],
                                                                  box_object.name)
        assert row["correct"] is True
        assert row["probability"] == pytest.approx(line["predictions"][0]["probability"])
        thumbnail = os.path.join(output, row["thumb"])
        picture = cv2.imread(thumbnail)
        assert picture is not None and picture.shape[:2] == (row["height"], row["width"])
        assert max(picture.shape[:2]) <= 192
    assert not re.search(r"\{\{\w+\}\}", text)  # every placeholder filled


def test_loss_history_and_faithfulness_are_joined_where_the_run_has_them(report):
    _, rows = gallery_data(report[1])
    l2caf = [row for row in rows if row["run"] == 0]
    gradcam = [row for row in rows if row["run"] == 1]
    assert all(row["history"] == [[0, -1.0], [50, -3.0 - index], [100, -3.5 - index]]
               for index, row in enumerate(l2caf))
    assert all(row["history"] is None and row["iterations"] == 0 for row in gradcam)
    assert [row["average_drop"] for row in l2caf] == pytest.approx(
        [0.1 * index for index in range(NUM_IMAGES)])
    assert [row["increase_in_confidence"] for row in l2caf] == [0, 1, 0, 1, 0, 1]
    assert all(row["deletion_auc"] is None for row in gradcam)


def test_the_page_shows_the_table_its_curves_and_the_failures(runs, report):
    output, text = report
    assert text.count("<tr><td>%s</td><td>l2caf</td>" % runs[0]) == 1
    assert text.count("<tr><td>%s</td><td>gradcam</td>" % runs[1]) == 1
    # 4 of 6 L2-CAF boxes hit at threshold 0.2: a GT-known loc acc of 66.7.
    assert "<td>66.7</td>" in text
    for name in ("curves_maxboxacc.png", "curves_maxboxacc.pdf", "curves_faithfulness.png",
                 "curves_faithfulness.pdf"):
        assert os.path.getsize(os.path.join(output, name)) > 1000
        assert 'href="%s"' % name in text or 'src="%s"' % name in text
    assert "Images that could not be used (1)" in text
    assert "broken.jpg: not a readable image" in text


def test_a_second_report_keeps_its_thumbnails_and_removes_the_stale_ones(runs, tmp_path,
                                                                           capsys):
    output = str(tmp_path / "out")
    arguments = ["--results", runs[1], "--output", output, "--progress", "false",
                 "--workers", "1", "--thresholds", "0:1:0.1"]
    assert main(arguments) == 0
    assert "6 thumbnails made, 0 kept" in capsys.readouterr().out
    assert main(arguments) == 0
    assert "0 thumbnails made, 6 kept" in capsys.readouterr().out
    before = sorted(os.listdir(os.path.join(output, "thumbs", "0")))
    assert main(arguments + ["--colormap", "jet"]) == 0
    assert "6 thumbnails made, 0 kept" in capsys.readouterr().out
    after = sorted(os.listdir(os.path.join(output, "thumbs", "0")))
    assert len(after) == 6 and not set(before) & set(after)


def test_the_json_blob_cannot_end_its_script_element():
    text = page.json_for_script({"name": "</script><script>alert(1)</script>"})
    assert "</" not in text and json.loads(text)["name"].startswith("</script>")
    assert page.render("a {{x}} b", {"x": "{{x}}"}) == "a {{x}} b"


def test_runs_without_annotations_have_no_table_and_no_iou(dataset, tmp_path, capsys):
    run = make_run(str(tmp_path / "plain"), dataset, annotations_key=False)
    assert main(["--results", run, "--output", str(tmp_path / "out"), "--progress",
                 "false"]) == 0
    with open(str(tmp_path / "out" / "report.html"), encoding="utf-8") as stream:
        text = stream.read()
    assert "No table: no run has annotations" in text
    _, rows = gallery_data(text)
    assert len(rows) == NUM_IMAGES and all(row["iou"] is None and row["gt_boxes"] == []
                                           for row in rows)
    # The line's ground truth still tells right from wrong classifications.
    assert all(row["correct"] is True for row in rows)


@pytest.mark.parametrize("arguments, status, message", [
    (["--results", "/nonexistent/run"], 2, "/nonexistent/run: no such results folder"),
    (["--threshold", "1.5"], 2, "--threshold must be in [0, 1), got 1.5"),
    (["--colormap", "rainbowish"], 2, "--colormap rainbowish is not a matplotlib colour map"),
    (["--alpha", "2"], 2, "--alpha is the heatmap's opacity in [0, 1], got 2"),
])
def test_mistakes_are_one_line_and_status_2(runs, tmp_path, capsys, arguments, status,
                                            message):
    base = ["--results", runs[1], "--output", str(tmp_path / "out"), "--progress", "false"]
    assert exit_status(main, base + arguments) == status
    assert_one_error_line(capsys.readouterr().err, message)


def assert_one_error_line(stderr, message):
    """stderr ends in one error line holding message (progress bars may come before it)."""
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], stderr
    assert stderr.rstrip().endswith(errors[0])


def exit_status(command, argv):
    """A command line's exit status, whether main returns it or argparse exits with it."""
    try:
        return command(argv)
    except SystemExit as exit:
        return exit.code


def test_an_output_that_is_a_file_is_status_3(runs, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["--results", runs[1], "--output", str(tmp_path / "file"), "--progress",
                 "false"]) == 3
    assert "cannot write to %s" % (tmp_path / "file") in capsys.readouterr().err


def make_oblivious_run(folder, dataset):
    """make_run's L2-CAF run as a cls_oblivious one: one class-free heatmap per image."""
    run = make_run(folder, dataset)
    with open(os.path.join(run, "config.yaml")) as stream:
        config = yaml.safe_load(stream)
    with open(os.path.join(run, "config.yaml"), "w") as stream:
        yaml.safe_dump(dict(config, caf_variant="cls_oblivious"), stream)
    lines = read_lines(os.path.join(run, "results.jsonl"))
    write_lines(os.path.join(run, "results.jsonl"),
                [dict(line, class_id=None, class_name=None, caf_variant="cls_oblivious")
                 for line in lines])
    return run


def test_a_class_oblivious_run_is_boxed_against_every_ground_truth_box(dataset, tmp_path):
    run = make_oblivious_run(str(tmp_path / "oblivious"), dataset)
    output = str(tmp_path / "out")
    assert main(["--results", run, "--output", output, "--progress", "false", "--workers",
                 "1"]) == 0
    with open(os.path.join(output, "report.html"), encoding="utf-8") as stream:
        _, rows = gallery_data(stream.read())
    assert [row["class_id"] for row in rows] == [None] * NUM_IMAGES
    assert [row["iou"] < 0.5 for row in rows] == [row["name"] in DISPLACED for row in rows]
    assert all(len(row["gt_boxes"]) == 1 for row in rows)
    assert all(name.endswith(".jpg") and "_oblivious_" in name
               for name in os.listdir(os.path.join(output, "thumbs", "0")))


def test_the_pictures_never_import_tensorflow():
    code = ("import sys\n"
            "sys.modules['tensorflow'] = None  # any import of it now fails\n"
            "import l2caf.cli.figure, l2caf.cli.report, l2caf.cli.evaluate\n"
            "import l2caf.report.browser, l2caf.report.curves, l2caf.report.figure\n"
            "import l2caf.report.page, l2caf.report.pictures\n"
            "print(sorted(name for name in sys.modules if name.split('.')[0] in "
            "('nets', 'tf_slim', 'keras', 'tf_keras')))\n")
    finished = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "[]"
