"""The curves beside an evaluation table: the box accuracy at every threshold of the sweep
(l2caf.evaluation's box_accuracies) against a plain recomputation, the table's
PREFIX_maxboxacc and PREFIX_faithfulness figures, and the mean faithfulness curves they
draw, on run folders written without TensorFlow (tests/helpers.py's builders, over
conftest.py's `dataset`)."""
import csv
import json
import os

import cv2
import numpy as np
import pytest

from l2caf.cli.evaluate import main as evaluate_main
from l2caf.evaluation import V2_IOU_THRESHOLDS, ImageRecord, evaluate_records
from l2caf.report import curves
from l2caf.errors import RunError
from tests.helpers import (NUM_IMAGES, add_faithfulness, make_run, plain_cam_box, plain_iou,
                           read_lines, write_lines)

THRESHOLDS = np.round(np.arange(0.0, 1.0, 0.05), 10)


def plain_wsol_boxes(heatmap, threshold):
    """wsolevaluation's boxes of a heatmap at threshold, plainly: (largest, every contour's)."""
    resized = cv2.resize(heatmap.astype(np.float64), (224, 224), interpolation=cv2.INTER_CUBIC)
    scoremap = resized - resized.min()
    scoremap = scoremap / scoremap.max() if scoremap.max() > 0 else scoremap
    gray = (scoremap * 255).astype(np.uint8)
    _, binary = cv2.threshold(gray, int(threshold * gray.max()), 255, cv2.THRESH_BINARY)
    contours, _ = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return (0, 0, 0, 0), [(0, 0, 0, 0)]

    def box(contour):
        x, y, width, height = cv2.boundingRect(contour)
        return (x, y, min(x + width, 223), min(y + height, 223))
    return box(max(contours, key=cv2.contourArea)), [box(contour) for contour in contours]


def random_records(count, seed=0):
    """Records of 7x7 Gaussian-blob maps on images of random sizes, with one ground-truth
    box near the hottest cell, of random extent: some hit, some miss at each threshold."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:7, 0:7]
    records = []
    for index in range(count):
        height, width = int(rng.integers(60, 200)), int(rng.integers(60, 200))
        heatmap = sum(rng.uniform(0.3, 1.0) * np.exp(
            -((rows - rng.uniform(0, 7)) ** 2 + (columns - rng.uniform(0, 7)) ** 2)
            / (2 * rng.uniform(0.5, 2.0) ** 2)) for _ in range(int(rng.integers(1, 4))))
        peak_y, peak_x = np.unravel_index(np.argmax(heatmap), heatmap.shape)
        centre_x, centre_y = (peak_x + 0.5) * width / 7, (peak_y + 0.5) * height / 7
        half_width, half_height = rng.uniform(0.1, 0.45) * width, rng.uniform(0.1, 0.45) * height
        box = (int(max(0, centre_x - half_width)), int(max(0, centre_y - half_height)),
               int(min(width - 1, centre_x + half_width)),
               int(min(height - 1, centre_y + half_height)))
        records.append(ImageRecord("image%d" % index, (1,), {1: [box]}, [1], {1: heatmap},
                                   (height, width)))
    return records


def scaled(box, size):
    height, width = size
    return tuple(int(value * 224.0 / side) for value, side in zip(box, (width, height) * 2))


def test_the_accuracy_at_every_threshold_is_the_plain_one_and_peaks_at_max_box_acc():
    records = random_records(30)
    evaluation = evaluate_records(records, "cam", 0.2, THRESHOLDS)
    plain = [100.0 * np.mean([plain_iou(plain_cam_box(record.heatmaps[1], record.image_size,
                                                      threshold), record.gt_boxes[1][0]) >= 0.5
                              for record in records]) for threshold in THRESHOLDS]
    accuracies = evaluation.box_accuracies
    assert accuracies.thresholds == tuple(THRESHOLDS)
    assert accuracies.accuracies == pytest.approx(plain)
    assert max(plain) < 100 and len(set(plain)) > 5  # hits and misses: the curve says something
    assert accuracies.v2_accuracies is None
    best = int(np.argmax(plain))
    assert evaluation.max_box_acc == (pytest.approx(plain[best]), THRESHOLDS[best])


def test_under_wsol_every_iou_of_max_box_acc_v2_has_its_curve():
    records = random_records(30, seed=1)
    evaluation = evaluate_records(records, "wsol", 0.2, THRESHOLDS)
    largest, every = {}, {}
    for record in records:
        for threshold in THRESHOLDS:
            largest[record.image, threshold], every[record.image, threshold] = \
                plain_wsol_boxes(record.heatmaps[1], threshold)
    gt = {record.image: scaled(record.gt_boxes[1][0], record.image_size) for record in records}
    plain = [100.0 * np.mean([plain_iou(largest[record.image, threshold], gt[record.image])
                              >= 0.5 for record in records]) for threshold in THRESHOLDS]
    assert evaluation.box_accuracies.accuracies == pytest.approx(plain)
    for iou_threshold, curve in zip(V2_IOU_THRESHOLDS, evaluation.box_accuracies.v2_accuracies):
        expected = [100.0 * np.mean([max(plain_iou(box, gt[record.image])
                                         for box in every[record.image, threshold])
                                     >= iou_threshold for record in records])
                    for threshold in THRESHOLDS]
        assert curve == pytest.approx(expected)
    assert evaluation.max_box_acc_v2.accuracy == pytest.approx(np.mean(
        [max(curve) for curve in evaluation.box_accuracies.v2_accuracies]))


@pytest.fixture(scope="module")
def table(dataset, tmp_path_factory):
    """The table of an L2-CAF run with faithfulness scores and a Grad-CAM run without."""
    folder = tmp_path_factory.mktemp("curves")
    l2caf = make_run(str(folder / "l2caf"), dataset)
    curves_by_heatmap = add_faithfulness(l2caf)
    gradcam = make_run(str(folder / "gradcam"), dataset, "gradcam", displaced=())
    prefix = str(folder / "table" / "cam")
    assert evaluate_main(["--results", l2caf, gradcam, "--annotations",
                          os.path.join(dataset, "annotations"), "--thresholds", "0:1:0.05",
                          "--workers", "1", "--output", prefix]) == 0
    return prefix, (l2caf, gradcam), curves_by_heatmap


def test_the_table_writes_its_curves_beside_its_csv_and_json(table, capsys):
    prefix, _, _ = table
    for suffix in ("_maxboxacc.png", "_maxboxacc.pdf", "_faithfulness.png",
                   "_faithfulness.pdf"):
        assert os.path.getsize(prefix + suffix) > 1000
    with open(prefix + ".json") as stream:
        rows = json.load(stream)
    with open(prefix + ".csv") as stream:
        csv_rows = list(csv.DictReader(stream))
    for row, csv_row in zip(rows, csv_rows):
        curve = row["box_accuracies"]
        assert curve["thresholds"] == pytest.approx(list(THRESHOLDS))
        assert max(curve["max_box_acc"]) == pytest.approx(row["max_box_acc"])
        assert curve["thresholds"][int(np.argmax(curve["max_box_acc"]))] == \
            pytest.approx(row["max_box_acc_threshold"])
        assert curve["max_box_acc_v2"] is None
        assert json.loads(csv_row["box_accuracies"]) == curve


def test_the_curve_figures_draw_the_rows_and_the_mean_curves(table):
    prefix, folders, curves_by_heatmap = table
    with open(prefix + ".json") as stream:
        rows = json.load(stream)
    figure = curves.box_accuracy_figure(rows)
    [axes] = figure.axes
    drawn = [line for line in axes.lines if len(line.get_xdata()) > 1]
    assert [list(line.get_ydata()) for line in drawn] == \
        [row["box_accuracies"]["max_box_acc"] for row in rows]
    mean = curves.faithfulness_curves(folders[0])
    stacked = np.stack(list(curves_by_heatmap.values())).astype(np.float64)
    np.testing.assert_allclose(mean.deletion, stacked[:, 0].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(mean.insertion, stacked[:, 1].mean(axis=0), rtol=1e-6)
    assert mean.heatmaps == NUM_IMAGES and mean.fractions[-1] == 1.0
    assert curves.faithfulness_curves(folders[1]) is None


def test_under_wsol_the_figure_has_a_panel_per_iou_of_max_box_acc_v2(table):
    prefix, folders, _ = table
    with open(prefix + ".json") as stream:
        rows = [dict(row, protocol="wsol", box_accuracies={
            "thresholds": [0.1, 0.2], "max_box_acc": [10.0, 20.0],
            "max_box_acc_v2": {"0.3": [30.0, 40.0], "0.5": [20.0, 25.0], "0.7": [5.0, 0.0]}})
            for row in json.load(stream)]
    figure = curves.box_accuracy_figure(rows)
    assert len(figure.axes) == 4
    assert [list(figure.axes[3].lines[0].get_ydata())] == [[5.0, 0.0]]
    assert "IoU >= 0.7" in figure.axes[3].get_title()


def test_curves_of_other_lengths_in_one_folder_are_refused(dataset, tmp_path):
    run = make_run(str(tmp_path / "mixed"), dataset)
    add_faithfulness(run)
    path = os.path.join(run, "faithfulness.jsonl")
    lines = read_lines(path)
    np.savez(os.path.join(run, "other_curves.npz"), short=np.zeros((2, 5), np.float32))
    lines[0]["curves"] = "other_curves.npz:short"
    write_lines(path, lines)
    with pytest.raises(RunError, match=r"faithfulness curves have shapes \[\(2, 5\), \(2, 11\)\]"):
        curves.faithfulness_curves(run)


def test_a_corrupt_curves_file_names_the_command_that_scores_the_folder_again(dataset, tmp_path):
    run = make_run(str(tmp_path / "corrupt"), dataset)
    add_faithfulness(run)
    path = os.path.join(run, "faithfulness_curves_000000.npz")
    with open(path, "r+b") as stream:
        stream.truncate(100)
    with pytest.raises(RunError) as raised:
        curves.faithfulness_curves(run)
    message = str(raised.value)
    assert "faithfulness curves file %s cannot be used" % path in message
    assert "scripts/evaluate_faithfulness.py --overwrite --results %s" % run in message
    assert "visualize_attention" not in message  # a sweep does not make the curves again


def test_legends_name_what_differs_between_the_runs_and_the_rest_once():
    name = curves.RunName
    shared_net = [name("L2-CAF", "demo_densenet", "block4", "outputs/a"),
                  name("Grad-CAM", "demo_densenet", "block4", "outputs/b")]
    assert curves.run_labels(shared_net) == (["L2-CAF", "Grad-CAM"],
                                             "demo_densenet, layer block4")
    other_nets = [name("L2-CAF", "resnet_v2_50", "block4", "a"),
                  name("L2-CAF", "inception_v1", "block4", "b")]
    assert curves.run_labels(other_nets) == (["resnet_v2_50", "inception_v1"],
                                             "L2-CAF, layer block4")
    # Nothing but the folder tells them apart: the folder too.
    same = [name("L2-CAF", "n", "l", "outputs/seed0"), name("L2-CAF", "n", "l", "outputs/seed1")]
    assert curves.run_labels(same) == (["L2-CAF (outputs/seed0)", "L2-CAF (outputs/seed1)"],
                                       "n, layer l")
    assert curves.run_labels([name("Grad-CAM", "n", "l", "x")]) == (["Grad-CAM"], "n, layer l")


def legend_texts(figure):
    [legend] = figure.legends
    return [text.get_text() for text in legend.get_texts()], legend.get_title().get_text()


def test_the_tables_figures_label_each_line_by_its_method_and_say_the_rest_once(table):
    prefix, folders, _ = table
    with open(prefix + ".json") as stream:
        rows = json.load(stream)
    labels, title = legend_texts(curves.box_accuracy_figure(rows))
    assert labels == ["L2-CAF", "Grad-CAM"]
    assert title == "demo_densenet, layer %s" % rows[0]["layer"]
    lines = curves.read_faithfulness(folders[0])
    figure = curves.faithfulness_figure([("L2-CAF", curves.faithfulness_curves(folders[0],
                                                                                lines))],
                                        shared=title)
    labels, title_again = legend_texts(figure)
    assert labels[0].startswith("L2-CAF: deletion AUC") and title_again == title
    for text in labels:
        assert folders[0] not in text and "demo_densenet" not in text


@pytest.mark.parametrize("command", ["evaluate_localization", "make_report"])
def test_a_command_shows_the_scores_it_read_once_while_more_are_written(dataset, tmp_path,
                                                                        monkeypatch, command):
    """Scoring still writes faithfulness.jsonl while the command runs: the lines it reads
    first are those of its table and of its curves figure, never some of each."""
    from l2caf.cli.report import main as report_main
    from l2caf.runs import localization
    monkeypatch.chdir(tmp_path)
    run = make_run("l2caf", dataset)
    add_faithfulness(run)
    path = os.path.join(run, "faithfulness.jsonl")
    every_line = read_lines(path)
    write_lines(path, every_line[:2])  # two heatmaps scored so far
    boxing = localization.run_records

    def scored_meanwhile(*arguments):
        write_lines(path, every_line)  # the scoring goes on while the heatmaps are boxed
        return boxing(*arguments)
    monkeypatch.setattr(localization, "run_records", scored_meanwhile)
    tables, drawn = [], []
    making_table, drawing_curves = localization.table_of, curves.faithfulness_figure
    monkeypatch.setattr(localization, "table_of",
                        lambda *arguments: tables.append(making_table(*arguments)) or tables[-1])
    monkeypatch.setattr(curves, "faithfulness_figure",
                        lambda labelled, *rest: drawn.append(labelled) or drawing_curves(
                            labelled, *rest))
    annotations = os.path.join(dataset, "annotations")
    if command == "evaluate_localization":
        assert evaluate_main(["--results", run, "--annotations", annotations, "--thresholds",
                              "0.2,0.4", "--workers", "1", "--output", "table"]) == 0
    else:
        assert report_main(["--results", run, "--annotations", annotations, "--thresholds",
                            "0.2,0.4", "--workers", "1", "--output", "report", "--progress",
                            "false"]) == 0
    [table_made] = tables
    [[(_, mean)]] = drawn
    [row] = table_made.rows
    assert row["faithfulness_heatmaps"] == mean.heatmaps == 2
    assert row["deletion_auc"] == pytest.approx(mean.areas[0])
    assert len(read_lines(path)) == len(every_line) > 2  # the scores did change meanwhile
