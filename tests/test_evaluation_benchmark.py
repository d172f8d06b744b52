"""benchmarks/evaluation.py on a tiny size: the report is complete and holds the scores of
what it timed, and the synthetic records are as described. Correctness only: no timing is
asserted."""
import argparse
import json
import re

import numpy as np
import pytest

from benchmarks import common
from benchmarks import evaluation as benchmark
from l2caf.evaluation import PROTOCOLS, evaluate_records, parse_thresholds

IMAGES = 24


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    output = tmp_path_factory.mktemp("benchmark")
    assert benchmark.main(["--images", str(IMAGES), "--thresholds", "0:1:0.1", "--workers", "2",
                           "--output", str(output)]) == 0
    with open(output / "evaluation.json") as stream:
        report = json.load(stream)
    return report, (output / "evaluation.md").read_text()


def test_every_protocol_is_timed_and_reported(tiny_report):
    report, text = tiny_report
    assert [row["protocol"] for row in report["measurements"]] == list(PROTOCOLS)
    assert report["settings"] == {"images": IMAGES, "thresholds": 10, "thresholds_spec": "0:1:0.1",
                                  "threshold": 0.2, "workers": 2, "seed": 0,
                                  "bootstrap": 1000}
    assert report["machine"]["cores"] >= 1 and report["machine"]["opencv"]
    for row in report["measurements"]:
        assert (row["images"], row["thresholds"], row["workers"]) == (IMAGES, 10, 2)
        assert row["seconds"] > 0
        assert row["images_per_second"] == pytest.approx(IMAGES / row["seconds"])
        assert len(row["load_average"]) == 2
        assert "| %s | %d | 10 | 2 | " % (row["protocol"], IMAGES) in text
    assert "Command: `python benchmarks/evaluation.py --images %d" % IMAGES in text


def test_the_report_holds_the_scores_of_the_records_it_timed(tiny_report):
    report, _ = tiny_report
    records = benchmark.make_records(IMAGES, seed=0)
    for row in report["measurements"]:
        evaluation = evaluate_records(records, row["protocol"], 0.2, parse_thresholds("0:1:0.1"))
        assert (row["max_box_acc"], row["max_box_acc_threshold"]) == tuple(evaluation.max_box_acc)
        assert row["gt_known_loc_accuracy"] == evaluation.metrics.gt_known_loc_accuracy
        v2 = evaluation.max_box_acc_v2
        assert row["max_box_acc_v2"] == (v2.accuracy if v2 else None)


def test_records_are_imagenet_like_and_seeded():
    records = benchmark.make_records(300, seed=3)
    top1_right = 0
    for record in records:
        [label] = record.gt_labels
        height, width = record.image_size
        assert 400 <= max(height, width) <= 640 and 0.6 * max(height, width) - 1 <= \
            min(height, width)
        assert record.heatmaps[label].shape == (7, 7)
        assert record.heatmaps[label].dtype == np.float32
        assert 1 <= len(record.gt_boxes[label]) <= 2
        for x0, y0, x1, y1 in record.gt_boxes[label]:
            assert 0 <= x0 < x1 < width and 0 <= y0 < y1 < height
        assert len(record.predictions) == 5 and len(set(record.predictions)) == 5
        top1_right += record.predictions[0] == label
    assert 0.65 < top1_right / len(records) < 0.85  # three in four
    assert sum(height < width for height, width in (r.image_size for r in records)) > 200
    again = benchmark.make_records(5, seed=3)
    assert all(np.array_equal(a.heatmaps[a.gt_labels[0]], b.heatmaps[b.gt_labels[0]]) and
               a.gt_boxes == b.gt_boxes for a, b in zip(records, again))


@pytest.mark.parametrize("argv, message", [
    (["--images", "0"], "argument --images: must be at least 1, got 0"),
    (["--protocol", "cam,grabcut"], "unknown protocol grabcut; choose from cam,adl,wsol"),
    (["--thresholds", "0:1"], "argument --thresholds: must be START:STOP:STEP"),
])
def test_bad_options_are_clear_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_spread_and_how_a_report_writes_it():
    assert common.spread([3.0, 1.0, 2.0, 10.0]) == {"median": 2.5, "min": 1.0, "max": 10.0}
    assert common.spread([0.5]) == {"median": 0.5, "min": 0.5, "max": 0.5}
    # Three significant digits, whole numbers from 100 on; or the given format.
    assert common.format_spread({"median": 0.012345, "min": 99.94, "max": 1234.5}) == \
        "0.0123 (99.9–1234)"
    assert common.format_spread({"median": 1234.5, "min": 0.5, "max": 2e4},
                                lambda value: "%.3g" % value) == "1.23e+03 (0.5–2e+04)"


def test_at_least_and_fill_defaults_as_the_options_use_them():
    parse = common.at_least(2, " (two checks)")
    assert parse("2") == 2
    for text, message in (("1", "must be at least 2 (two checks), got 1"),
                          ("two", "must be an integer, got 'two'")):
        with pytest.raises(argparse.ArgumentTypeError, match=re.escape(message)):
            parse(text)
    options = argparse.Namespace(networks=None, repeats=5, steps=None)
    common.fill_defaults(options, {"networks": "a,b", "repeats": 1, "steps": 0},
                         {"networks": lambda text: text.split(",")})
    assert vars(options) == {"networks": ["a", "b"], "repeats": 5, "steps": 0}


def test_write_report_writes_the_json_and_the_markdown(tmp_path):
    folder = str(tmp_path / "new")
    paths = common.write_report(folder, "stem", {"a": [1]}, "| table |\n", indent=2,
                                json_newline=True)
    assert paths == (folder + "/stem.json", folder + "/stem.md")
    assert open(paths[0]).read() == '{\n  "a": [\n    1\n  ]\n}\n'
    assert open(paths[1]).read() == "| table |\n"
