"""The localisation job (l2caf.runs.localization.evaluate_run) on run folders written here
with their XMLs: a table row checked against a hand computation (errors, GT-known accuracy,
MaxBoxAcc, the pointing games, the faithfulness means in the table's units), scores marked
as bounds where ground-truth heatmaps lack, the notes, and inputs that do not fit."""
import os

import cv2
import numpy as np
import pytest

from l2caf.annotations import Annotation, BoxObject, read_annotations, write_voc_xml
from l2caf.errors import RunError
from l2caf.evaluation.table import COLUMNS, cell, markdown_table
from l2caf.runs.folder import NpzChunks, Shard
from l2caf.runs.localization import default_table_name, evaluate_run, faithfulness_columns
from l2caf.runs.read import read_lines
from tests.run_builders import results_line, write_config, write_lines

LABELS = ("cat", "dog", "fox", "owl", "bee", "ant")
SIDE = 100
BOX = (10, 10, 29, 29)  # every object's box (inclusive)
THRESHOLDS = np.array([0.2, 0.5])


def blob(at):
    """A SIDE x SIDE heatmap: 1 on the 20 x 20 square from (at, at), 0 elsewhere."""
    heatmap = np.zeros((SIDE, SIDE), np.float32)
    heatmap[at:at + 20, at:at + 20] = 1.0
    return heatmap


HIT, MISS = blob(10), blob(70)  # MISS: IoU 0, its peak 58 pixels from the box

# (stem, ground-truth class, top-5 predictions, {class: heatmap}) of the run's images:
# a is right and localised; b is localised but ranked 2nd; c is right but missed; d's
# ground-truth class (ranked 2nd) has no heatmap, only its top-1 class has (a top-1 sweep).
IMAGES = [("a", 0, (0, 1, 2, 3, 4), {0: HIT}), ("b", 1, (0, 1, 2, 3, 4), {1: HIT}),
          ("c", 2, (2, 0, 1, 3, 4), {2: MISS}), ("d", 3, (0, 3, 1, 2, 4), {0: HIT})]


def annotate(folder, stems_and_classes, width=SIDE, height=SIDE):
    folder.mkdir(exist_ok=True)
    for stem, classes in stems_and_classes:
        write_voc_xml(str(folder / (stem + ".xml")), Annotation(
            stem + ".jpg", width, height, [BoxObject(LABELS[c], BOX) for c in classes]))
    return read_annotations(str(folder))


def write_run(folder, images, labels, **keys):
    """A run folder of `images` (as IMAGES); returns its results lines."""
    write_config(folder, labels=labels, method="gradcam", network="demo_densenet", **keys)
    maps = {"%s_c%s" % (stem, class_id): heatmap for stem, _, _, heatmaps in images
            for class_id, heatmap in heatmaps.items()}
    references = NpzChunks(str(folder), Shard(0, 1)).write(maps)
    lines = [results_line("/data/%s.jpg" % stem, class_id, references["%s_c%s" % (stem, class_id)],
                          predictions=ranked, image_size=[SIDE, SIDE], ground_truth=[truth])
             for stem, truth, ranked, heatmaps in images for class_id in heatmaps]
    write_lines(folder / "results.jsonl", lines)
    return lines


@pytest.fixture
def labels(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("\n".join(LABELS) + "\n")
    return str(path)


@pytest.fixture
def run(tmp_path, labels):
    """The run of IMAGES, its lines, and the XMLs of its images and of one more (e)."""
    folder = tmp_path / "run"
    lines = write_run(folder, IMAGES, labels)
    annotations = annotate(tmp_path / "xmls", [(stem, [truth]) for stem, truth, _, _ in IMAGES]
                           + [("e", [4])])
    return str(folder), lines, annotations


def scores_line(line, deletion, insertion, drop, increase, steps=4, gain=0.0, morf=0.5,
                lerf=0.5):
    return {"image": line["image"], "class_id": line["class_id"], "heatmap": line["heatmap"],
            "deletion_auc": deletion, "insertion_auc": insertion, "average_drop": drop,
            "increase_in_confidence": increase, "average_gain": gain, "road_morf_auc": morf,
            "road_lerf_auc": lerf, "steps": steps, "input_size": [8, 8],
            "curves": "faithfulness_curves_000000.npz:x"}


def sanity_line(line, randomized, random_logit):
    """A sanity check's line (l2caf.runs.sanity) of a results line, of two blocks: the
    Spearman values of the absolute maps at full randomisation and for the random logit."""
    similarities = {"%s_%s" % (randomisation, measure): [0.9, value]
                    for randomisation in ("cascading", "independent")
                    for measure in ("spearman_abs", "spearman", "ssim")
                    for value in [randomized]}
    return dict({"image": line["image"], "class_id": line["class_id"],
                 "heatmap": line["heatmap"], "seed": 0, "blocks": ["Logits", "conv1"],
                 "random_logit_class_id": 1, "random_logit_spearman_abs": random_logit,
                 "random_logit_spearman": random_logit, "random_logit_ssim": 0.5,
                 "maps": "sanity_maps_000000.npz:x"}, **similarities)


def test_a_row_is_the_hand_computed_scores_with_bounds_and_notes(run):
    folder, lines, annotations = run
    write_lines(os.path.join(folder, "faithfulness.jsonl"), [
        scores_line(lines[0], 0.2, 0.6, 0.1, 1.0, gain=0.25, morf=0.1, lerf=0.9),
        scores_line(lines[1], 0.4, 0.8, 0.3, 0.0, gain=0.0, morf=0.3, lerf=0.7)])
    # Three heatmaps checked; the third's random-logit map is constant (no rank correlation).
    write_lines(os.path.join(folder, "sanity.jsonl"), [
        sanity_line(lines[0], 0.1, -0.2), sanity_line(lines[1], 0.3, 0.4),
        sanity_line(lines[2], 0.5, None)])
    row = evaluate_run(folder, annotations, thresholds=THRESHOLDS)
    numbers = {
        "threshold": 0.2, "iou_threshold": 0.5, "images": 4, "images_annotated": 5,
        # a and c are right at top-1, all four within the top 5; a's and b's boxes hit
        # (IoU 1), c's misses (IoU 0), d's ground-truth heatmap lacks.
        "top1_cls_error": 50.0, "top5_cls_error": 0.0, "top1_loc_error": 75.0,
        "top5_loc_error": 50.0, "gt_known_loc_accuracy": 50.0, "max_box_acc": 50.0,
        "max_box_acc_threshold": 0.2,
        "images_lacking_top1_heatmap": 0, "images_lacking_top5_heatmap": 1,
        "images_lacking_gt_heatmap": 1,
        # Peaks: a's and b's in their box, c's 58 pixels away; all the mass of a's and b's
        # heatmaps in the box, none of c's.
        "pointing_game": 200.0 / 3, "energy_pointing_game": 200.0 / 3, "pointing_heatmaps": 3,
        "ground_truth_pairs": 4,
        # Means over the two heatmaps scored: AUCs as they are, the others in percent.
        "deletion_auc": 0.3, "insertion_auc": 0.7, "average_drop": 20.0,
        "increase_in_confidence": 50.0, "average_gain": 12.5, "road_morf_auc": 0.2,
        "road_lerf_auc": 0.8, "faithfulness_heatmaps": 2, "heatmaps": 4,
        "faithfulness_steps": 4,
        # Means over the heatmaps checked where the correlation is defined.
        "sanity_spearman_randomized": 0.3, "sanity_spearman_random_logit": 0.1,
        "sanity_heatmaps": 3}
    assert list(row) == [
        "run", "method", "caf_variant", "network", "layer", "protocol", "threshold",
        "iou_threshold", "images", "images_annotated", "top1_cls_error", "top5_cls_error",
        "top1_loc_error", "top5_loc_error", "gt_known_loc_accuracy", "max_box_acc",
        "max_box_acc_threshold", "max_box_acc_v2", "max_box_acc_v2_thresholds",
        "box_accuracies", "images_lacking_top1_heatmap", "images_lacking_top5_heatmap",
        "images_lacking_gt_heatmap", "pointing_game", "energy_pointing_game",
        "pointing_heatmaps", "ground_truth_pairs", "deletion_auc", "insertion_auc",
        "average_drop", "increase_in_confidence", "average_gain", "road_morf_auc",
        "road_lerf_auc", "faithfulness_missing", "faithfulness_heatmaps", "heatmaps",
        "faithfulness_steps", "faithfulness_input_size", "sanity_spearman_randomized",
        "sanity_spearman_random_logit", "sanity_heatmaps", "notes"]
    for key, value in numbers.items():
        assert row[key] == pytest.approx(value, abs=1e-9), key
    assert (row["run"], row["method"], row["caf_variant"], row["network"], row["layer"],
            row["protocol"], row["max_box_acc_v2"], row["max_box_acc_v2_thresholds"],
            row["faithfulness_input_size"]) == (
        folder, "gradcam", "cls_specific", "demo_densenet", "conv1", "cam", None, None, [8, 8])
    assert row["box_accuracies"] == {"thresholds": [0.2, 0.5], "max_box_acc": [50.0, 50.0],
                                     "max_box_acc_v2": None}
    assert row["notes"] == [
        "partial run: 4 of the 5 annotated images",
        "missing heatmaps count as not localised; 1 image(s) lack the heatmap of a "
        "ground-truth class among their top-5: top-5 loc err is an upper bound; 1 image(s) "
        "lack the heatmap of a ground-truth class: GT-known loc acc, MaxBoxAcc and MaxBoxAccV2 "
        "are lower bounds (sweep with explain_gt true for the heatmaps of every ground-truth "
        "class)",
        "pointing games over the 3 of the 4 (image, ground-truth class) pairs that have a "
        "heatmap",
        "faithfulness scores cover 2 of the 4 heatmaps (scripts/evaluate_faithfulness.py "
        "--results %s scores the rest)" % folder,
        "deletion and insertion curves of 4 steps, not the protocol's 8 (one row of pixels "
        "per step)",
        "sanity checks cover 3 of the 4 heatmaps (scripts/sanity_check.py --results %s checks "
        "the rest)" % folder]
    cells = {key: cell(row, key) for key in COLUMNS}
    assert [cells[key] for key in ("top1_loc_error", "top5_loc_error", "gt_known_loc_accuracy",
                                   "max_box_acc", "max_box_acc_v2", "pointing_game",
                                   "deletion_auc", "average_drop")] == [
        "75.0", "<=50.0", ">=50.0", ">=50.0 (0.2)", "-", "66.7", "0.300", "20.0"]
    assert markdown_table([row]).splitlines()[2] == "| %s |" % " | ".join(cells.values())


def test_a_complete_run_of_the_protocols_recipe_has_no_bounds_and_no_notes(tmp_path, labels):
    folder = tmp_path / "run"
    images = [("a", 0, (0, 1, 2, 3, 4), {0: HIT}), ("c", 2, (1, 2, 0, 3, 4), {2: MISS, 1: HIT})]
    write_run(folder, images, labels)
    annotations = annotate(tmp_path / "xmls", [("a", [0]), ("c", [2])])
    row = evaluate_run(str(folder), annotations, threshold=0.5, thresholds=THRESHOLDS,
                       iou_threshold=0.9)
    assert (row["top1_cls_error"], row["top5_cls_error"], row["top1_loc_error"],
            row["top5_loc_error"], row["gt_known_loc_accuracy"]) == (50.0, 0.0, 50.0, 50.0, 50.0)
    assert (row["threshold"], row["iou_threshold"], row["pointing_game"]) == (0.5, 0.9, 50.0)
    assert [row[key] for key in ("images_lacking_top1_heatmap", "images_lacking_top5_heatmap",
                                 "images_lacking_gt_heatmap")] == [0, 0, 0]
    assert [row[key] for key in ("deletion_auc", "insertion_auc", "average_drop",
                                 "increase_in_confidence", "faithfulness_steps",
                                 "faithfulness_input_size")] == [None] * 6
    assert (row["faithfulness_heatmaps"], row["heatmaps"]) == (0, 3)
    assert row["notes"] == []
    assert [cell(row, key) for key in ("top5_loc_error", "gt_known_loc_accuracy", "deletion_auc",
                                       "faithfulness_heatmaps")] == ["50.0", "50.0", "-", "0"]


def test_the_wsol_protocol_fills_max_box_acc_v2(run):
    folder, _, annotations = run
    row = evaluate_run(folder, annotations, protocol="wsol", thresholds=THRESHOLDS)
    assert row["protocol"] == "wsol"
    assert row["max_box_acc_v2"] == pytest.approx(50.0)
    assert row["max_box_acc_v2_thresholds"] == {"0.3": 0.2, "0.5": 0.2, "0.7": 0.2}
    assert list(row["box_accuracies"]["max_box_acc_v2"]) == ["0.3", "0.5", "0.7"]
    assert cell(row, "max_box_acc_v2") == ">=50.0 (0.2/0.2/0.2)"


def test_a_class_oblivious_heatmap_serves_every_ground_truth_class(tmp_path, labels):
    """(Lines without image_size and ground_truth, as the slow visualiser's cls_oblivious
    runs wrote them: the image's size is read from the image.)"""
    folder = tmp_path / "oblivious"
    write_config(folder, labels=labels, caf_variant="cls_oblivious")
    references = NpzChunks(str(folder), Shard(0, 1)).write({"x_oblivious": HIT})
    image = str(tmp_path / "x.png")
    cv2.imwrite(image, np.zeros((SIDE, SIDE, 3), np.uint8))
    write_lines(folder / "results.jsonl", [results_line(
        image, None, references["x_oblivious"], predictions=(1, 0, 2, 3, 4))])
    (tmp_path / "xmls").mkdir()
    write_voc_xml(str(tmp_path / "xmls" / "x.xml"), Annotation("x.png", SIDE, SIDE, [
        BoxObject("cat", BOX), BoxObject("dog", (60, 60, 90, 90))]))
    row = evaluate_run(str(folder), read_annotations(str(tmp_path / "xmls")),
                       thresholds=THRESHOLDS)
    # The map hits the cat's box, not the dog's (top-1): GT-known but not top-1 localised.
    assert (row["top1_cls_error"], row["top1_loc_error"], row["top5_loc_error"],
            row["gt_known_loc_accuracy"]) == (0.0, 100.0, 0.0, 100.0)
    assert (row["pointing_heatmaps"], row["ground_truth_pairs"], row["pointing_game"],
            row["energy_pointing_game"]) == (2, 2, 50.0, 50.0)
    assert row["images_lacking_gt_heatmap"] == 0 and row["notes"] == []
    assert cell(row, "method") == "l2caf (cls_oblivious)"
    os.remove(image)
    with pytest.raises(RunError) as caught:
        evaluate_run(str(folder), read_annotations(str(tmp_path / "xmls")), thresholds=THRESHOLDS)
    assert str(caught.value) == ("the results lines give no image_size and the image cannot be "
                                 "read: %s: no such file" % image)


def test_faithfulness_columns_are_means_in_the_tables_units(run):
    folder, lines, _ = run
    write_lines(os.path.join(folder, "faithfulness_shard0of2.jsonl"), [
        scores_line(lines[0], 0.25, 0.5, 0.0, 0.0, steps=8),
        scores_line(lines[2], 0.75, 0.25, 0.5, 1.0, steps=8)])
    write_lines(os.path.join(folder, "faithfulness_shard1of2.jsonl"), [
        scores_line(lines[1], 0.5, 0.75, 0.25, 1.0, steps=8),
        scores_line(lines[3], 0.0, 1.0, 0.75, 0.0, steps=8)])
    columns = faithfulness_columns(folder, read_lines(folder))
    assert dict(columns) == {"deletion_auc": 0.375, "insertion_auc": 0.625,
                             "average_drop": 37.5, "increase_in_confidence": 50.0,
                             "average_gain": 0.0, "road_morf_auc": 0.5, "road_lerf_auc": 0.5,
                             "faithfulness_missing": [], "faithfulness_heatmaps": 4, "heatmaps": 4,
                             "faithfulness_steps": 8, "faithfulness_input_size": [8, 8]}


def test_stale_scores_stop_the_row_before_the_boxes(run):
    folder, lines, annotations = run
    write_lines(os.path.join(folder, "faithfulness.jsonl"), [
        dict(scores_line(lines[0], 0.2, 0.6, 0.1, 1.0), heatmap="heatmaps_000009.npz:a_c0")])
    with pytest.raises(RunError, match="scores heatmap heatmaps_000009.npz:a_c0, which the "
                                       "results of .* do not hold"):
        evaluate_run(folder, annotations, thresholds=THRESHOLDS)


def test_inputs_that_do_not_fit_are_refused_naming_what_and_where(tmp_path, labels):
    folder = tmp_path / "run"
    lines = write_run(folder, IMAGES, labels)
    xmls = tmp_path / "xmls"
    truths = [(stem, [truth]) for stem, truth, _, _ in IMAGES]

    def refusal(annotations, results=str(folder)):
        with pytest.raises(RunError) as caught:
            evaluate_run(results, annotations, thresholds=THRESHOLDS)
        return str(caught.value)

    assert refusal(annotate(xmls, truths[1:])) == (
        "1 of the 4 images of %s have no annotation (e.g. /data/a.jpg); are these annotations "
        "of the run's data set?" % folder)
    assert refusal(annotate(tmp_path / "narrow", truths, width=80)) == (
        "/data/a.jpg is 100x100 pixels but its annotation says 100x80; are these annotations "
        "of the run's data set?")
    assert refusal(annotate(tmp_path / "swapped", [("a", [1])] + truths[1:])) == (
        "/data/a.jpg: the run recorded classes [0] but its annotation has [1]; are these "
        "annotations of the run's data set?")
    wnids = annotate(tmp_path / "wnids", truths)
    wnids["a"] = wnids["a"]._replace(objects=[BoxObject("n01440764", BOX)])
    assert refusal(wnids) == ("annotation of a.jpg names object class 'n01440764', which has no "
                              "class id; are these annotations of the run's data set?")
    annotations = annotate(xmls, truths)
    assert refusal(annotations, str(tmp_path / "absent")) == (
        "%s: no such results folder" % (tmp_path / "absent"))
    write_config(folder, labels=str(tmp_path / "gone.txt"), method="gradcam",
                 network="demo_densenet")
    assert refusal(annotations) == (
        "labels: label list %s does not exist (named by %s; paths in it are relative to the "
        "folder the run was started from)" % (tmp_path / "gone.txt",
                                               folder / "config*.yaml"))
    write_config(folder, labels=labels, method="gradcam", network="demo_densenet")
    os.remove(str(folder / "heatmaps_000000.npz"))
    assert refusal(annotations) == (
        "heatmap file %s cannot be used (no such file); rerun python "
        "scripts/visualize_attention.py --config %s --output_dir %s to make it again"
        % (folder / "heatmaps_000000.npz", folder / "config.yaml", folder))
    assert len(lines) == 4
    assert default_table_name("cam") == "localization_cam"
    assert default_table_name("wsol") == "localization_wsol"


def test_an_empty_sweep_is_a_row_without_max_box_acc_or_a_clear_refusal(run):
    folder, _, annotations = run
    try:
        row = evaluate_run(folder, annotations, thresholds=())
    except (RunError, ValueError):
        return  # refused, with a message: as good
    assert (row["max_box_acc"], row["max_box_acc_threshold"], row["box_accuracies"]) == (
        None, None, None)
    assert (row["top1_loc_error"], cell(row, "max_box_acc")) == (75.0, "-")
