"""scripts/make_report.py and l2caf.report.page on run folders written here without
TensorFlow: synthetic images with their XMLs, heatmaps placed on the ground-truth boxes (or
away from them, for misses), results lines as the visualisers write them, and the lines
other helpers' commands add (loss_history, faithfulness.jsonl with its curves) in their
promised formats (tests/helpers.py's builders, shared with test_figures.py and
test_report_curves.py; the data set is conftest.py's `dataset`). The browser's view of a real
sweep's report is tests/test_report_browser.py."""
import json
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from l2caf.cli.report import main
from l2caf.annotations import read_annotation_folder
from l2caf.report import page
from tests.helpers import (DISPLACED, NUM_IMAGES, REPO_ROOT, add_faithfulness,
                           assert_one_error_line, exit_status, gallery_data, make_oblivious_run,
                           make_run, plain_cam_box, plain_iou, read_lines, write_lines)


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
    # 4 of 6 L2-CAF boxes hit at threshold 0.2: a GT-known loc acc of 66.7 (with its interval).
    assert "<td>66.7 [" in text
    for name in ("curves_maxboxacc.png", "curves_maxboxacc.pdf", "curves_faithfulness.png",
                 "curves_faithfulness.pdf", "curves_comparisons.png", "curves_comparisons.pdf"):
        assert os.path.getsize(os.path.join(output, name)) > 1000
        assert 'href="%s"' % name in text or 'src="%s"' % name in text
    assert "Images that could not be used (1)" in text
    assert "broken.jpg: not a readable image" in text


def test_the_page_has_contents_error_bars_and_the_comparisons_with_their_forest_plot(report):
    output, text = report
    contents = re.search(r'<nav id="contents">(.*?)</nav>', text).group(1)
    targets = re.findall(r'href="#([\w-]+)"', contents)
    assert targets == ["localisation", "statistics", "curves", "failures", "gallery"]
    for target in targets:
        assert text.count('id="%s"' % target) == 1
    assert "gallery of the %d heatmaps" % (2 * NUM_IMAGES) in contents
    # A bar per score with an interval, inside the table's cells; the table scrolls in its box.
    table = text[text.index('id="localisation"'):text.index('id="statistics"')]
    assert table.count('<div class="table-scroll">') == 1
    bars = re.findall(r'<span class="bar" title="95% interval ([\d.]+) to ([\d.]+)">'
                      r'<span class="range" style="left:([\d.]+)%;width:([\d.]+)%"></span>'
                      r'<span class="value" style="left:([\d.]+)%"></span></span>', table)
    assert len(bars) >= 2
    for low, high, left, width, value in bars:
        assert float(low) <= float(high)
        assert 0 <= float(left) and float(left) + float(width) <= 100.05
        assert 0 <= float(value) <= 100
    # The forest plot beside the comparisons, at its size (its text as large as the page's).
    statistics = text[text.index('id="statistics"'):text.index('id="curves"')]
    assert "Paired comparisons" in statistics and "Metric agreement" in statistics
    width, height = page.png_size(os.path.join(output, "curves_comparisons.png"))
    assert '<img src="curves_comparisons.png" width="%d" height="%d"' % (
        round(width * 96 / 300.0), round(height * 96 / 300.0)) in statistics


def test_bootstrap_0_makes_the_page_without_intervals_or_comparisons(runs, tmp_path):
    output = str(tmp_path / "plain")
    assert main(["--results"] + list(runs) + ["--output", output, "--workers", "1",
                                               "--progress", "false", "--bootstrap", "0"]) == 0
    with open(os.path.join(output, "report.html"), encoding="utf-8") as stream:
        text = stream.read()
    assert "<td>66.7</td>" in text and 'class="bar"' not in text
    assert 'id="statistics"' not in text and not os.path.exists(
        os.path.join(output, "curves_comparisons.png"))


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


def test_an_output_that_is_a_file_is_status_3(runs, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["--results", runs[1], "--output", str(tmp_path / "file"), "--progress",
                 "false"]) == 3
    assert "cannot write to %s" % (tmp_path / "file") in capsys.readouterr().err


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


def test_thumbnails_fade_the_heatmap_so_the_scene_shows_where_the_map_is_low(runs, report):
    """A thumbnail is the faded overlay (l2caf.heatmaps.show_heatmap_on_image with fade),
    not the blend that tints the whole image with the colour map's low end."""
    from l2caf import heatmaps
    from l2caf.runs.folder import load_heatmap
    from l2caf.runs.read import read_lines
    output, text = report
    _, rows = gallery_data(text)
    row = next(row for row in rows if row["run"] == 0)
    lines = [line for found in read_lines(runs[0]).values() for line in found
             if os.path.splitext(os.path.basename(line["image"]))[0] == row["name"]
             and line.get("class_id") == row["class_id"]]
    heatmap = load_heatmap(lines[0]["heatmap"], runs[0])
    picture = cv2.cvtColor(cv2.imread(lines[0]["image"]), cv2.COLOR_BGR2RGB)
    small = cv2.resize(picture, (row["width"], row["height"]), interpolation=cv2.INTER_AREA)
    thumbnail = cv2.cvtColor(cv2.imread(os.path.join(output, row["thumb"])),
                             cv2.COLOR_BGR2RGB).astype(np.float64)
    faded, blended = (heatmaps.show_heatmap_on_image(small, heatmap, 0.5, "bwr", fade=fade)
                      for fade in (True, False))
    error = np.abs(thumbnail - faded).mean()
    assert error < 8, error  # JPEG's loss at THUMBNAIL_QUALITY
    assert np.abs(thumbnail - blended).mean() > 3 * error, np.abs(thumbnail - blended).mean()
