"""scripts/evaluate_localization.py on run folders written here without TensorFlow, as the
visualisers write them (config.yaml, results.jsonl, heatmaps in an npz) over held-out
synthetic images: heatmaps on the objects, of spreads that make some boxes too large at low
thresholds, a few displaced (missed) and a few top-1 predictions wrong. The table is checked
against scores recomputed here from the heatmaps and the XMLs with plain numpy (flood fill,
IoU and the ILSVRC rules written out again; for the 'wsol' protocol the benchmark's recipe,
transcribed in tests/helpers.py). End to end, the table of a real sweep of the shipped demo
model (conftest.py's `demo_sweep`) against the same computation."""
import collections
import csv
import json
import os
import pathlib
import shutil

import cv2
import numpy as np
import pytest
import yaml

from l2caf.annotations import read_annotation_folder
from l2caf.cli.evaluate import main
from l2caf.runs.folder import NpzChunks, Shard
from l2caf.synthetic import make_dataset
from tests.helpers import DEMO_CHECKPOINT, DEMO_LABELS, REPO_ROOT, plain_boxes, plain_iou, read_xml

DEMO_DIR = os.path.join(REPO_ROOT, "l2caf", "demo_model")
NUM_IMAGES = 12
IMAGE_SIZE = 128
HELD_OUT_SEED = 777  # training used seeds 0 and 1
THRESHOLD = 0.2
THRESHOLDS = "0.1:0.6:0.1"
HEADERS = {"top1_cls_error": "top-1 cls err", "top5_cls_error": "top-5 cls err",
           "top1_loc_error": "top-1 loc err", "top5_loc_error": "top-5 loc err",
           "gt_known_loc_accuracy": "GT-known loc acc", "max_box_acc": "MaxBoxAcc (threshold)",
           "max_box_acc_v2": "MaxBoxAccV2 (thresholds at IoU 0.3/0.5/0.7)"}
V2_IOUS = (0.3, 0.5, 0.7)

# The synthetic runs: the demo model's heatmap size at its last conv block, and which images
# (their index in the sorted listing) have their heatmaps displaced or their top-1 wrong.
HEATMAP_SIZE = 21
DISPLACED = (4, 9)
WRONG_TOP1 = (2, 7)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("evaluation")
    make_dataset(str(folder / "data"), NUM_IMAGES, image_size=IMAGE_SIZE, seed=HELD_OUT_SEED,
                 progress=False)
    return folder


def blob_heatmap(box, spread, image_size, displaced=False):
    """A HEATMAP_SIZE heatmap of a Gaussian blob on box (xmin, ymin, xmax, ymax) of an image of
    image_size (height, width), its standard deviations `spread` times the box's half sides
    (above about 0.56 its region at the threshold 0.2 outgrows the box), or moved to the
    image's farthest corner."""
    height, width = image_size
    centre_x, centre_y = (box[0] + box[2] + 1) / 2.0, (box[1] + box[3] + 1) / 2.0
    half_width, half_height = (box[2] + 1 - box[0]) / 2.0, (box[3] + 1 - box[1]) / 2.0
    if displaced:
        centre_x = half_width if centre_x > width / 2.0 else width - half_width
        centre_y = half_height if centre_y > height / 2.0 else height - half_height
    cells = (np.arange(HEATMAP_SIZE) + 0.5) / HEATMAP_SIZE
    rows, columns = np.meshgrid(cells * height, cells * width, indexing="ij")
    heatmap = np.exp(-0.5 * (((columns - centre_x) / (spread * half_width)) ** 2 +
                             ((rows - centre_y) / (spread * half_height)) ** 2))
    return heatmap.astype(np.float32)


def write_run(folder, data, images=None, classes=None, explain_gt=True):
    """A run folder of the fast visualiser's L2-CAF sweep over the data set, written without
    a network: config.yaml, one npz of heatmaps and results.jsonl, a line per (image, class)
    in the visualiser's order. images: how many of the listing's images (all by default);
    classes: the classes explained (else the top-1, and with explain_gt the ground-truth
    ones). As from one model, an image has the same predictions and an (image, class) the
    same heatmap in every run: the top-5 hold the ground-truth classes (but for WRONG_TOP1,
    whose top-1 is another class); a ground-truth class's heatmap is a blob on its first
    object, displaced for DISPLACED; another class's, a blob on a random box. Returns its
    path."""
    folder = pathlib.Path(folder)
    folder.mkdir()
    with open(DEMO_LABELS) as stream:
        labels = [name.strip() for name in stream if name.strip()]
    annotations = read_annotation_folder(str(data / "annotations"))
    stems = sorted(annotations)[:images]
    config = {"network": "demo_densenet", "checkpoint": DEMO_CHECKPOINT, "labels": DEMO_LABELS,
              "images": str(data / "images"), "annotations": str(data / "annotations"),
              "output_dir": str(folder), "layer": "", "filter_type": "l2norm",
              "caf_variant": "cls_specific", "method": "l2caf", "max_iters": 60, "top_k": 1,
              "classes": list(classes or []), "explain_gt": explain_gt,
              "heatmap_format": "npz", "batch_size": NUM_IMAGES, "limit": images or 0,
              "made_with": {"image_size": 168, "layer": "dense_block2/conv_block2"}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    heatmaps, lines = collections.OrderedDict(), []
    for index, stem in enumerate(stems):
        annotation = annotations[stem]
        size = (annotation.height, annotation.width)
        ground_truth = list(collections.OrderedDict.fromkeys(
            labels.index(box_object.name) for box_object in annotation.objects))
        rng = np.random.default_rng(index)
        others = [int(c) for c in rng.permutation(len(labels)) if c not in ground_truth]
        top5 = (others[:1] + ground_truth if index in WRONG_TOP1 else ground_truth) + others
        top5 = list(collections.OrderedDict.fromkeys(top5))[:5]
        probabilities = np.sort(rng.dirichlet(np.ones(len(labels))))[::-1][:5]
        predictions = [{"class_id": c, "class_name": labels[c], "probability": float(p)}
                       for c, p in zip(top5, probabilities)]
        explained = classes or [top5[0]] + [c for c in ground_truth
                                            if explain_gt and c != top5[0]]
        for class_id in explained:
            rng = np.random.default_rng([index, class_id])
            objects = [o for o in annotation.objects if labels.index(o.name) == class_id]
            if objects:
                box = objects[0].box
            else:
                x0, y0 = rng.integers(0, size[1] // 2), rng.integers(0, size[0] // 2)
                box = (x0, y0, x0 + rng.integers(10, size[1] // 2),
                       y0 + rng.integers(10, size[0] // 2))
            key = "%s_c%d" % (stem, class_id)
            heatmaps[key] = blob_heatmap(box, rng.uniform(0.4, 0.9), size,
                                         bool(objects) and index in DISPLACED)
            lines.append(collections.OrderedDict([
                ("image", str(data / "images" / (stem + ".JPEG"))), ("network", "demo_densenet"),
                ("layer", "dense_block2/conv_block2"), ("method", "l2caf"),
                ("caf_variant", "cls_specific"), ("filter_type", "l2norm"),
                ("class_id", class_id), ("class_name", labels[class_id]), ("iterations", 60),
                ("final_loss", float(-rng.uniform(2, 5))), ("loss_history", None),
                ("seconds", 0.05), ("heatmap", key), ("overlay", None), ("gif", None),
                ("predictions", predictions), ("ground_truth", ground_truth),
                ("image_size", list(size))]))
    references = NpzChunks(str(folder), Shard(0, 1)).write(heatmaps)
    with open(str(folder / "results.jsonl"), "w") as stream:
        for line in lines:
            line["heatmap"] = references[line["heatmap"]]
            stream.write(json.dumps(line) + "\n")
    return str(folder)


@pytest.fixture(scope="module")
def full_run(dataset):
    """Every image, the top-1 and the ground-truth classes (explain_gt true)."""
    return write_run(dataset / "full", dataset / "data")


@pytest.fixture(scope="module")
def partial_run(dataset):
    """The first 5 images, heatmaps of classes 0 and 1 only: most ground-truth ones lack."""
    return write_run(dataset / "partial", dataset / "data", images=5, classes=[0, 1],
                     explain_gt=False)


def evaluate(capsys, results, annotations, *extra):
    """Runs the command (the table alone, --bootstrap 0, unless extra says otherwise: its
    intervals and comparisons are tests/test_evaluate_statistics.py's); returns its exit
    code, stdout and stderr."""
    bootstrap = [] if "--bootstrap" in extra else ["--bootstrap", "0"]
    code = main(["--results"] + list(results) + ["--annotations", str(annotations)] +
                list(extra) + bootstrap)
    out, err = capsys.readouterr()
    return code, out, err


# The independent computation.

def largest_region_box(mask):
    """(xmin, ymin, xmax, ymax) of the largest 8-connected region of True pixels (the first
    found in row-major order among equals), by flood fill."""
    height, width = mask.shape
    seen = np.zeros_like(mask)
    best_size, best_box = 0, None
    for y, x in zip(*np.nonzero(mask)):
        if seen[y, x]:
            continue
        seen[y, x] = True
        stack, pixels = [(y, x)], []
        while stack:
            row, column = stack.pop()
            pixels.append((row, column))
            for next_row in (row - 1, row, row + 1):
                for next_column in (column - 1, column, column + 1):
                    if 0 <= next_row < height and 0 <= next_column < width and \
                            mask[next_row, next_column] and not seen[next_row, next_column]:
                        seen[next_row, next_column] = True
                        stack.append((next_row, next_column))
        if len(pixels) > best_size:
            rows, columns = zip(*pixels)
            best_size, best_box = len(pixels), (min(columns), min(rows), max(columns), max(rows))
    return best_box


def cam_boxes(heatmap, size, threshold):
    """(the box, [the box]) of the CAM protocol."""
    resized = cv2.resize(heatmap.astype(np.float64), (size[1], size[0]),
                         interpolation=cv2.INTER_LINEAR)
    assert resized.max() > resized.min()
    box = largest_region_box(resized >= threshold * resized.max())
    return box, [box]


def scaled_to_224(box, size):
    height, width = size
    return tuple(int(value * 224.0 / side) for value, side in zip(box, (width, height) * 2))


# protocol: (boxes of a heatmap on an image of a size at a threshold, its boxes' frame)
PROTOCOL_RECIPES = {
    "cam": (cam_boxes, lambda box, size: box),
    "wsol": (lambda heatmap, size, threshold: plain_boxes(heatmap, threshold), scaled_to_224),
}


def expected_row(run, annotations, threshold=THRESHOLD, thresholds=(0.1, 0.2, 0.3, 0.4, 0.5),
                 protocol="cam"):
    """The scores of a run, recomputed from its results.jsonl, heatmaps and the XMLs, under
    the 'cam' or 'wsol' protocol (MaxBoxAccV2 for 'wsol' only)."""
    boxes_of, frame = PROTOCOL_RECIPES[protocol]
    with open(os.path.join(DEMO_DIR, "labels.txt")) as stream:
        class_ids = {name.strip(): index for index, name in enumerate(stream) if name.strip()}
    images = {}
    with open(os.path.join(run, "results.jsonl")) as stream:
        for line in map(json.loads, stream):
            # FILE.npz:KEY, FILE relative to the run's folder, or (older lines) a path to it
            path, key = line["heatmap"].rsplit(":", 1)
            images.setdefault(line["image"], (line["predictions"], {}))[1][line["class_id"]] = \
                np.load(os.path.join(run, os.path.basename(path)))[key]
    counts = dict.fromkeys(["top1_cls", "top5_cls", "top1_loc", "top5_loc", "lacking_top1",
                            "lacking_top5", "lacking_gt"], 0)
    gt_known_hits = np.zeros(len(thresholds))
    v2_hits = np.zeros((len(V2_IOUS), len(thresholds)))
    for image, (predictions, heatmaps) in images.items():
        stem = os.path.splitext(os.path.basename(image))[0]
        size, boxes_by_name = read_xml(os.path.join(str(annotations), stem + ".xml"))
        truth = {class_ids[name]: [frame(box, size) for box in boxes]
                 for name, boxes in boxes_by_name.items()}
        top5 = [prediction["class_id"] for prediction in predictions[:5]]

        # A class-oblivious heatmap (class_id None) is every class's.
        heatmaps = {c: heatmaps[None] for c in truth} if None in heatmaps else heatmaps

        boxes = {}  # (class, threshold): the boxes, each made once

        def best_iou(class_id, at, every_contour=False):
            if class_id not in truth or class_id not in heatmaps:
                return 0.0
            if (class_id, at) not in boxes:
                boxes[class_id, at] = boxes_of(heatmaps[class_id], size, at)
            largest, every = boxes[class_id, at]
            return max(plain_iou(box, gt_box) for box in (every if every_contour else [largest])
                       for gt_box in truth[class_id])

        def right(class_id, at):
            return best_iou(class_id, at) >= 0.5
        counts["top1_cls"] += top5[0] in truth
        counts["top5_cls"] += any(c in truth for c in top5)
        counts["top1_loc"] += right(top5[0], threshold)
        counts["top5_loc"] += any(right(c, threshold) for c in top5)
        gt_known_hits += [any(right(c, at) for c in truth) for at in thresholds]
        for row, iou in enumerate(V2_IOUS):
            v2_hits[row] += [any(best_iou(c, at, True) >= iou for c in truth)
                             for at in thresholds]
        lacking = set(truth) - set(heatmaps)
        counts["lacking_top1"] += top5[0] in lacking
        counts["lacking_top5"] += bool(lacking & set(top5))
        counts["lacking_gt"] += bool(lacking)
    percent = 100.0 / len(images)
    best = int(np.argmax(gt_known_hits))
    row = {"images": len(images),
           "top1_cls_error": 100 - counts["top1_cls"] * percent,
           "top5_cls_error": 100 - counts["top5_cls"] * percent,
           "top1_loc_error": 100 - counts["top1_loc"] * percent,
           "top5_loc_error": 100 - counts["top5_loc"] * percent,
           "gt_known_loc_accuracy": gt_known_hits[thresholds.index(threshold)] * percent,
           "max_box_acc": gt_known_hits[best] * percent,
           "max_box_acc_threshold": thresholds[best],
           "images_lacking_top1_heatmap": counts["lacking_top1"],
           "images_lacking_top5_heatmap": counts["lacking_top5"],
           "images_lacking_gt_heatmap": counts["lacking_gt"]}
    if protocol == "wsol":
        row["max_box_acc_v2"] = np.mean(v2_hits.max(axis=1)) * percent
        row["max_box_acc_v2_thresholds"] = {"%g" % iou: thresholds[int(np.argmax(hits))]
                                            for iou, hits in zip(V2_IOUS, v2_hits)}
    return row


def printed_rows(out):
    """The rows of the Markdown table in `out`, as {header: cell}."""
    lines = [line for line in out.splitlines() if line.startswith("|")]
    headers = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert set(lines[1].strip("|").split("|")) == {"---"}
    return [dict(zip(headers, (cell.strip() for cell in line.strip("|").split("|"))))
            for line in lines[2:]]


def assert_scores_match(row, expected):
    for key, value in expected.items():
        assert row[key] == pytest.approx(value, abs=1e-9), key
    if "max_box_acc_v2" not in expected:
        assert row["max_box_acc_v2"] is None and row["max_box_acc_v2_thresholds"] is None


def test_table_matches_an_independent_computation(dataset, full_run, capsys):
    annotations = dataset / "data" / "annotations"
    prefix = str(dataset / "tables" / "full")
    code, out, _ = evaluate(capsys, [full_run], annotations, "--thresholds", THRESHOLDS,
                            "--output", prefix)
    assert code == 0
    with open(prefix + ".json") as stream:
        [row] = json.load(stream)
    expected = expected_row(full_run, annotations)
    print("\n" + out)
    assert_scores_match(row, expected)
    assert (row["method"], row["network"], row["protocol"], row["threshold"]) == \
        ("l2caf", "demo_densenet", "cam", THRESHOLD)
    assert row["images"] == row["images_annotated"] == NUM_IMAGES and row["notes"] == []

    [printed] = printed_rows(out)
    assert (printed["run"], printed["method"], printed["images"]) == \
        (full_run, "l2caf", str(NUM_IMAGES))
    for key, header in HEADERS.items():
        if key != "max_box_acc_v2":
            assert printed[header].split()[0] == "%.1f" % row[key]  # no bound marks
    assert printed["MaxBoxAcc (threshold)"].endswith("(%g)" % row["max_box_acc_threshold"])
    assert printed[HEADERS["max_box_acc_v2"]] == "-"  # the wsol protocol's only
    assert "Notes" not in out
    assert_csv_holds(prefix + ".csv", row)


@pytest.mark.slow
def test_the_table_of_a_demo_sweep_matches_an_independent_computation(demo_sweep, capsys,
                                                                      tmp_path):
    """End to end: a real sweep of the shipped demo model (conftest.py's `demo_sweep`, the
    top-1 and ground-truth classes), its table written elsewhere."""
    run, annotations = demo_sweep["l2caf"], pathlib.Path(demo_sweep["data"]) / "annotations"
    prefix = str(tmp_path / "table")
    code, out, _ = evaluate(capsys, [run], annotations, "--thresholds", THRESHOLDS,
                            "--output", prefix)
    assert code == 0
    with open(prefix + ".json") as stream:
        [row] = json.load(stream)
    print("\n" + out)
    assert_scores_match(row, expected_row(run, annotations))
    assert (row["method"], row["network"], row["protocol"], row["threshold"]) == \
        ("l2caf", "demo_densenet", "cam", THRESHOLD)
    assert row["images"] == row["images_annotated"] == len(os.listdir(str(annotations)))
    assert row["notes"] == []
    [printed] = printed_rows(out)
    assert (printed["run"], printed["method"]) == (run, "l2caf")
    assert_csv_holds(prefix + ".csv", row)


def assert_csv_holds(path, row):
    """The CSV's one row has the JSON row's fields and values (None: an empty cell; the V2
    thresholds as JSON)."""
    with open(path) as stream:
        [csv_row] = list(csv.DictReader(stream))
    assert list(csv_row) == list(row)
    for key, value in row.items():
        if value is None:
            assert csv_row[key] == ""
        elif isinstance(value, dict):
            assert json.loads(csv_row[key]) == value
        elif isinstance(value, (int, float)):
            assert float(csv_row[key]) == pytest.approx(value)
        elif key in ("notes", "faithfulness_missing"):  # lists, joined by "; "
            assert csv_row[key] == "; ".join(value)
        else:
            assert csv_row[key] == str(value)


def test_partial_run_reports_its_images_and_marks_scores_missing_heatmaps_bound(
        dataset, full_run, partial_run, capsys):
    annotations = dataset / "data" / "annotations"
    code, out, _ = evaluate(capsys, [full_run, partial_run], annotations,
                            "--thresholds", THRESHOLDS)
    assert code == 0
    print("\n" + out)
    # Written beside the first run by default.
    with open(os.path.join(full_run, "localization_cam.json")) as stream:
        full, partial = json.load(stream)
    assert_scores_match(full, expected_row(full_run, annotations))
    expected = expected_row(partial_run, annotations)
    assert_scores_match(partial, expected)
    assert (partial["images"], partial["images_annotated"]) == (5, NUM_IMAGES)
    assert expected["images_lacking_gt_heatmap"] > 0  # the data set's classes are 0..5

    printed = printed_rows(out)[1]
    assert printed["images"] == "5"
    assert "- %s: partial run: 5 of the 12 annotated images" % partial_run in out
    for key, count, mark in [("top1_loc_error", "images_lacking_top1_heatmap", "<="),
                             ("top5_loc_error", "images_lacking_top5_heatmap", "<="),
                             ("gt_known_loc_accuracy", "images_lacking_gt_heatmap", ">="),
                             ("max_box_acc", "images_lacking_gt_heatmap", ">=")]:
        cell = printed[HEADERS[key]]
        assert cell.startswith(mark) == (expected[count] > 0), key
        assert cell.lstrip("<>=").split()[0] == "%.1f" % partial[key]
    assert "%d image(s) lack the heatmap of a ground-truth class: GT-known loc acc, " \
        "MaxBoxAcc and MaxBoxAccV2 are lower bounds" % expected["images_lacking_gt_heatmap"] in out
    assert "sweep with explain_gt true" in out
    assert not any(full[count] for count in ("images_lacking_top1_heatmap",
                                            "images_lacking_top5_heatmap",
                                            "images_lacking_gt_heatmap"))


def test_another_threshold_gives_the_independent_scores_too(dataset, full_run, capsys):
    annotations = dataset / "data" / "annotations"
    code, _, _ = evaluate(capsys, [full_run], annotations, "--threshold", "0.1",
                          "--thresholds", THRESHOLDS)
    assert code == 0
    with open(os.path.join(full_run, "localization_cam.json")) as stream:
        [row] = json.load(stream)
    assert_scores_match(row, expected_row(full_run, annotations, threshold=0.1))
    # At 0.1 some boxes are too large and others right, so the IoUs really were scored.
    assert 0 < row["gt_known_loc_accuracy"] < 100


def test_shards_beside_their_merge_in_a_moved_folder_count_once(dataset, full_run, capsys,
                                                                tmp_path):
    """A copy of the run as two shards plus their merged results.jsonl, whose heatmap
    references point to where the folder used to be (as lines of older releases did)."""
    moved = tmp_path / "moved"
    shutil.copytree(full_run, str(moved))
    with open(os.path.join(full_run, "results.jsonl")) as stream:
        lines = [json.loads(line) for line in stream]
    for line in lines:
        line["heatmap"] = os.path.join("/gone", os.path.basename(line["heatmap"]))
    for name, part in [("results.jsonl", lines), ("results_shard0of2.jsonl", lines[::2]),
                       ("results_shard1of2.jsonl", lines[1::2])]:
        (moved / name).write_text("".join(json.dumps(line) + "\n" for line in part))
    shutil.copy(str(moved / "config.yaml"), str(moved / "config_shard0of2.yaml"))
    annotations = dataset / "data" / "annotations"
    code, _, _ = evaluate(capsys, [str(moved)], annotations, "--thresholds", THRESHOLDS)
    assert code == 0
    with open(str(moved / "localization_cam.json")) as stream:
        [row] = json.load(stream)
    assert_scores_match(row, expected_row(full_run, annotations))


def copy_heatmaps(run, folder):
    """The run's heatmap files into folder, whose lines name them (relative to it)."""
    for name in os.listdir(run):
        if name.startswith("heatmaps_"):
            shutil.copy(os.path.join(run, name), str(folder))


def test_class_oblivious_heatmaps_serve_every_class_and_missing_sizes_are_read(
        dataset, full_run, capsys, tmp_path):
    """A run made like the slow visualiser's cls_oblivious one: a heatmap per image with
    class_id null, no image_size or ground_truth in its lines."""
    oblivious = tmp_path / "oblivious"
    oblivious.mkdir()
    config = (pathlib.Path(full_run) / "config.yaml").read_text()
    (oblivious / "config.yaml").write_text(
        config.replace("caf_variant: cls_specific", "caf_variant: cls_oblivious"))
    lines = {}
    with open(os.path.join(full_run, "results.jsonl")) as stream:
        for line in map(json.loads, stream):
            for key in ("image_size", "ground_truth"):
                del line[key]
            lines.setdefault(line["image"], dict(line, class_id=None, class_name=None))
    (oblivious / "results.jsonl").write_text("".join(json.dumps(line) + "\n"
                                                     for line in lines.values()))
    copy_heatmaps(full_run, oblivious)
    annotations = dataset / "data" / "annotations"
    code, out, _ = evaluate(capsys, [str(oblivious)], annotations, "--thresholds", THRESHOLDS)
    assert code == 0
    with open(str(oblivious / "localization_cam.json")) as stream:
        [row] = json.load(stream)
    assert_scores_match(row, expected_row(str(oblivious), annotations))
    assert row["caf_variant"] == "cls_oblivious"
    assert printed_rows(out)[0]["method"] == "l2caf (cls_oblivious)"


def test_adl_protocol_names_its_outputs(dataset, full_run, capsys):
    code, out, _ = evaluate(capsys, [full_run], dataset / "data" / "annotations",
                            "--protocol", "adl", "--threshold", "0.3")
    assert code == 0
    with open(os.path.join(full_run, "localization_adl.json")) as stream:
        [row] = json.load(stream)
    assert (row["protocol"], row["threshold"]) == ("adl", 0.3)
    assert printed_rows(out)[0]["protocol"] == "adl"


def test_wsol_protocol_matches_the_benchmarks_recipe(dataset, full_run, capsys):
    annotations = dataset / "data" / "annotations"
    prefix = str(dataset / "tables" / "wsol")
    code, out, _ = evaluate(capsys, [full_run], annotations, "--protocol", "wsol",
                            "--thresholds", "0:1:0.05", "--output", prefix)
    assert code == 0
    with open(prefix + ".json") as stream:
        [row] = json.load(stream)
    print("\n" + out)
    thresholds = list(np.round(np.arange(0, 1, 0.05), 10))
    assert_scores_match(row, expected_row(full_run, annotations, thresholds=thresholds,
                                          protocol="wsol"))
    assert list(row["max_box_acc_v2_thresholds"]) == ["0.3", "0.5", "0.7"]
    [printed] = printed_rows(out)
    assert printed[HEADERS["max_box_acc_v2"]] == "%.1f (%s)" % (row["max_box_acc_v2"], "/".join(
        "%g" % value for value in row["max_box_acc_v2_thresholds"].values()))
    assert_csv_holds(prefix + ".csv", row)


def test_one_process_gives_the_numbers_of_the_pool(dataset, full_run, capsys, tmp_path):
    rows = []
    for workers in ("1", "2"):
        prefix = str(tmp_path / workers)
        code, _, _ = evaluate(capsys, [full_run], dataset / "data" / "annotations", "--protocol",
                              "wsol", "--workers", workers, "--output", prefix)
        assert code == 0
        with open(prefix + ".json") as stream:
            rows.append(json.load(stream))
    assert rows[0] == rows[1]


def single_class_copy(full_run, annotations, folder):
    """A copy of the run restricted to its images of one class (wsolevaluation's metadata has
    one class per image), with their XMLs and their metadata written here by hand."""
    with open(os.path.join(DEMO_DIR, "labels.txt")) as stream:
        class_ids = {name.strip(): index for index, name in enumerate(stream) if name.strip()}
    run, xmls, metadata = folder / "run", folder / "xmls", folder / "metadata"
    for path in (run, xmls, metadata):
        path.mkdir()
    shutil.copy(os.path.join(full_run, "config.yaml"), str(run))
    files = {name: [] for name in ("image_ids", "class_labels", "image_sizes", "localization")}
    kept = set()
    for name in sorted(os.listdir(str(annotations))):
        (height, width), boxes_by_name = read_xml(str(annotations / name))
        if len(boxes_by_name) != 1:
            continue
        shutil.copy(str(annotations / name), str(xmls))
        stem = os.path.splitext(name)[0]
        image_id = "val/%s.JPEG" % stem
        [(class_name, boxes)] = boxes_by_name.items()
        files["image_ids"].append(image_id)
        files["class_labels"].append("%s,%d" % (image_id, class_ids[class_name]))
        files["image_sizes"].append("%s,%d,%d" % (image_id, width, height))
        files["localization"] += ["%s,%d,%d,%d,%d" % ((image_id,) + box) for box in boxes]
        kept.add(stem)
    for name, lines in files.items():
        (metadata / (name + ".txt")).write_text("".join(line + "\n" for line in lines))
    with open(os.path.join(full_run, "results.jsonl")) as stream:
        lines = [line for line in stream
                 if os.path.splitext(os.path.basename(json.loads(line)["image"]))[0] in kept]
    (run / "results.jsonl").write_text("".join(lines))
    copy_heatmaps(full_run, run)
    assert 2 <= len(kept) < NUM_IMAGES
    return str(run), xmls, metadata


@pytest.mark.parametrize("protocol", ["cam", "wsol"])
def test_wsol_metadata_gives_the_numbers_of_the_xmls(dataset, full_run, capsys, tmp_path,
                                                      protocol):
    run, xmls, metadata = single_class_copy(full_run, dataset / "data" / "annotations", tmp_path)
    rows = []
    for annotations in (xmls, metadata):
        prefix = str(tmp_path / annotations.name)
        code, _, err = evaluate(capsys, [run], annotations, "--protocol", protocol,
                                "--thresholds", THRESHOLDS, "--output", prefix)
        assert code == 0, err
        with open(prefix + ".json") as stream:
            rows.append(json.load(stream))
    assert rows[0] == rows[1]
    assert_scores_match(rows[1][0], expected_row(run, xmls, protocol=protocol))


def test_help_explains_the_options(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in ("--protocol {cam,adl,wsol}", "wsolevaluation's own default step is 0.001",
                 "image_ids.txt, class_labels.txt, image_sizes.txt, localization.txt",
                 "--workers N", "MaxBoxAccV2 always averages IoU 0.3, 0.5, 0.7"):
        assert text in out


def write_xmls(folder, source, count, rename=None):
    """Copies of the first `count` XMLs of `source`, object names mapped by `rename`."""
    folder.mkdir()
    for name in sorted(os.listdir(str(source)))[:count]:
        text = (source / name).read_text()
        for old, new in (rename or {}).items():
            text = text.replace("<name>%s</name>" % old, "<name>%s</name>" % new)
        (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize("case, message", [
    ("no_folder", "no such results folder"),
    ("empty_folder", "holds no config*.yaml: not a folder a visualiser wrote"),
    ("no_results", "holds no results (results*.jsonl with heatmap lines)"),
    ("no_annotations", "no such annotation folder"),
    ("other_data_set", "is 128x128 pixels but its annotation says 96x96; are these "
                       "annotations of the run's data set?"),
    ("other_classes", "the run recorded classes"),
    ("wordnet_ids", "names object class 'n01440764', which has no class id; are these "
                    "annotations of the run's data set?"),
    ("missing_xmls", "7 of the 12 images of"),
    ("bad_thresholds", "--thresholds must be START:STOP:STEP"),
    ("threshold_out_of_range", "--threshold must be in [0, 1), got 1"),
    ("no_workers", "--workers must be at least 1, got 0"),
    ("neither_xmls_nor_metadata", "holds no annotation XMLs and no wsolevaluation metadata "
                                  "(image_ids.txt, class_labels.txt, image_sizes.txt, "
                                  "localization.txt)"),
    ("incomplete_metadata", "no localization.txt; a wsolevaluation metadata folder holds"),
    ("metadata_of_other_classes", "names class id 7, which is not one of the 6 classes; are "
                                  "these annotations of the run's data set?"),
])
def test_bad_inputs_are_clear_errors(dataset, full_run, capsys, tmp_path, case, message):
    annotations = dataset / "data" / "annotations"
    results, extra = full_run, []
    if case == "no_folder":
        results = str(tmp_path / "nowhere")
    elif case == "empty_folder":
        results = str(tmp_path)
    elif case == "no_results":
        shutil.copy(os.path.join(full_run, "config.yaml"), str(tmp_path))
        results = str(tmp_path)
    elif case == "no_annotations":
        annotations = tmp_path / "nowhere"
    elif case == "other_data_set":
        make_dataset(str(tmp_path / "other"), NUM_IMAGES, image_size=96, progress=False)
        annotations = tmp_path / "other" / "annotations"
    elif case == "other_classes":
        # Every object of class 0 named as class 1 and the other way round.
        with open(os.path.join(DEMO_DIR, "labels.txt")) as stream:
            first, second = [line.strip() for line in stream][:2]
        annotations = write_xmls(tmp_path / "swapped", annotations, NUM_IMAGES,
                                 {first: "swap", second: first})
        for path in annotations.iterdir():
            path.write_text(path.read_text().replace("<name>swap</name>",
                                                     "<name>%s</name>" % second))
    elif case == "wordnet_ids":
        with open(os.path.join(DEMO_DIR, "labels.txt")) as stream:
            annotations = write_xmls(tmp_path / "wnids", annotations, NUM_IMAGES, {
                line.strip(): "n01440764" for line in stream})
    elif case == "missing_xmls":
        annotations = write_xmls(tmp_path / "five", annotations, 5)
    elif case == "bad_thresholds":
        extra = ["--thresholds", "0:1"]
    elif case == "threshold_out_of_range":
        extra = ["--threshold", "1"]
    elif case == "no_workers":
        extra = ["--workers", "0"]
    elif case == "neither_xmls_nor_metadata":
        annotations = tmp_path / "empty"
        annotations.mkdir()
    elif case in ("incomplete_metadata", "metadata_of_other_classes"):
        results, _, annotations = single_class_copy(full_run, annotations, tmp_path)
        if case == "incomplete_metadata":
            (annotations / "localization.txt").unlink()
        else:
            path = annotations / "class_labels.txt"
            path.write_text("".join(line.rsplit(",", 1)[0] + ",7\n"
                                    for line in path.read_text().splitlines()))
    code, out, err = evaluate(capsys, [results], annotations, *extra)
    assert code == 2
    # One line (the progress bar, on stderr too, ends in carriage returns).
    [line] = [line for line in err.replace("\r", "\n").splitlines() if message in line]
    assert line.startswith("error: ")
    assert "Traceback" not in err and out == ""
