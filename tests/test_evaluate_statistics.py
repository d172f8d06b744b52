"""scripts/evaluate_localization.py's intervals, comparisons and agreement, on run folders
written here without TensorFlow (tests/helpers.py make_run over conftest.py's data set):
--bootstrap 0 gives the table of before the intervals byte for byte (the files of
tests/reference/table_before_intervals/, written by the command before it had them, on the
same folders); the intervals leave every number of the table as it was; a seed gives the
same table to the digit; a single image, a column without values and runs that are not
paired give '-' and a note, never a traceback or a NaN; the report page shows it all as
text."""
import csv
import io
import json
import os
import shutil

import pytest
import yaml

from l2caf.annotations import read_annotations
from l2caf.cli.evaluate import main
from l2caf.evaluation.statistics import column_value
from l2caf.evaluation.table import COLUMNS, interval_keys, metrics, scores
from l2caf.report import page
from l2caf.runs.localization import score_run
from tests.helpers import add_faithfulness, assert_one_error_line, exit_status, make_run, \
    read_lines, write_lines

REFERENCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference",
                         "table_before_intervals")
RUNS = ["runs/l2caf", "runs/gradcam", "runs/random"]


@pytest.fixture()
def runs(dataset, tmp_path, monkeypatch):
    """The three runs the reference tables were made of, in tmp_path (the working folder):
    L2-CAF (two heatmaps displaced), Grad-CAM (one), random (four), faithfulness scores for
    the first two (all but one image for Grad-CAM's)."""
    monkeypatch.chdir(tmp_path)
    make_run(RUNS[0], dataset)
    make_run(RUNS[1], dataset, method="gradcam", displaced=("synth_00002",))
    make_run(RUNS[2], dataset, method="random",
             displaced=("synth_00000", "synth_00001", "synth_00003", "synth_00005"))
    for run, skip in ((RUNS[0], ()), (RUNS[1], ("synth_00003",))):
        add_faithfulness(run, skip=skip)
        with_every_metric(os.path.join(run, "faithfulness.jsonl"))
    return os.path.join(dataset, "annotations")


def with_every_metric(path):
    """Gives each faithfulness line the metrics the table has gained since the reference
    tables were written (as a scoring of today writes them), so that the table of before is
    the table of now without those columns."""
    lines = read_lines(path)
    for number, line in enumerate(lines):
        for metric in metrics("faithfulness"):
            line.setdefault(metric.key, 0.01 * (number + 1))
    write_lines(path, lines)


def evaluate(capsys, annotations, *extra, results=RUNS):
    code = main(["--results"] + list(results) + ["--annotations", annotations,
                                                 "--thresholds", "0.1:0.9:0.1",
                                                 "--workers", "1"] + list(extra))
    out, err = capsys.readouterr()
    return code, out, err


def without_later_columns(text, extension, reference):
    """A table file (text) with only the columns of the reference file's table: the columns
    added to the table since the reference was written (other issues' metrics) left out of
    each row, every other byte as it was."""
    if extension == ".json":
        keys = set(json.loads(reference)[0])
        rows = [{key: value for key, value in row.items() if key in keys}
                for row in json.loads(text)]
        return json.dumps(rows, indent=2) + "\n"
    if extension == ".csv":
        fields = next(csv.reader(io.StringIO(reference)))
        rows = list(csv.DictReader(io.StringIO(text)))
        written = io.StringIO()
        writer = csv.DictWriter(written, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        return written.getvalue()
    labels = reference.split("\n")[0].strip("|").split(" | ")
    lines = text.split("\n")
    keep = [index for index, label in enumerate(lines[0].strip("|").split(" | "))
            if label.strip() in [found.strip() for found in labels]]
    return "\n".join("|%s|" % "|".join(line.strip("|").split("|")[index] for index in keep)
                     if line.startswith("|") else line for line in lines)


@pytest.mark.parametrize("protocol", ["cam", "wsol"])
def test_bootstrap_0_gives_the_table_of_before_byte_for_byte(runs, capsys, protocol):
    """The reference files were written by the command before it had intervals; columns
    added to the table since (another issue's metrics) are left out of what it writes now
    before the comparison."""
    prefix = "table_" + protocol
    code, out, _ = evaluate(capsys, runs, "--protocol", protocol, "--output", prefix,
                            "--bootstrap", "0")
    assert code == 0
    with open(os.path.join(REFERENCE, prefix + ".md"), encoding="utf-8") as stream:
        reference = stream.read()
    assert without_later_columns(out, ".md", reference) == reference
    for extension in (".csv", ".json"):
        with open(prefix + extension, encoding="utf-8", newline="") as made, \
                open(os.path.join(REFERENCE, prefix + extension), encoding="utf-8",
                     newline="") as before:
            reference = before.read()
            assert without_later_columns(made.read(), extension, reference) == reference, \
                extension
    assert not os.path.exists(prefix + "_comparisons.csv")


def read_csv(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def test_the_intervals_leave_every_number_as_it_was_and_a_seed_repeats_them(runs, capsys):
    assert evaluate(capsys, runs, "--protocol", "wsol", "--output", "plain",
                    "--bootstrap", "0")[0] == 0
    code, out, _ = evaluate(capsys, runs, "--protocol", "wsol", "--output", "first",
                            "--bootstrap", "200", "--seed", "3")
    assert code == 0
    with open("plain.json") as stream:
        plain = json.load(stream)
    with open("first.json") as stream:
        text = stream.read()
    assert "NaN" not in text and "Infinity" not in text
    with_intervals = json.loads(text)
    for before, after in zip(plain, with_intervals):
        for key, value in before.items():
            if key != "notes":
                assert after[key] == value, key
        assert after["notes"][:len(before["notes"])] == before["notes"]
        assert (after["bootstrap_resamples"], after["bootstrap_seed"]) == (200, 3)
        for column in scores():
            low, high = (after[key] for key in interval_keys(column.key))
            if after[column.key] is None:
                assert low is None and high is None
            elif low is not None:
                assert low <= high
    l2caf = with_intervals[0]
    assert l2caf["gt_known_loc_accuracy_ci_low"] <= l2caf["gt_known_loc_accuracy"] <= \
        l2caf["gt_known_loc_accuracy_ci_high"]
    assert "nan" not in open("first.csv").read().lower()
    assert read_csv("first.csv")[2]["deletion_auc_ci_low"] == ""  # the random run: no scores
    assert "| runs/l2caf | l2caf | demo_densenet | wsol | 0.2 | 6 | 0.0 [0.0, 0.0] |" in out
    assert "Paired comparisons:" in out and "Metric agreement:" in out
    # the same seed: the same files and the same printout, to the digit
    code, again, _ = evaluate(capsys, runs, "--protocol", "wsol", "--output", "second",
                              "--bootstrap", "200", "--seed", "3")
    assert again.replace("second", "first") == out
    for suffix in (".csv", ".json", "_comparisons.csv", "_comparisons.json", "_agreement.json"):
        assert open("first" + suffix).read() == open("second" + suffix).read(), suffix
    code, other, _ = evaluate(capsys, runs, "--protocol", "wsol", "--output", "third",
                              "--bootstrap", "200", "--seed", "4")
    assert other.replace("third", "first") != out
    for suffix in ("_comparisons.png", "_comparisons.pdf"):
        assert os.path.getsize("first" + suffix) > 1000


def test_each_runs_samples_give_the_tables_numbers(runs):
    annotations = read_annotations(runs)
    for results_dir in RUNS:
        scored = score_run(results_dir, annotations, "wsol", thresholds=[0.1, 0.3, 0.5, 0.7])
        for column in scores():
            samples = scored.samples.samples.get(column.key)
            expected = scored.row[column.key]
            if samples is None:
                assert expected is None, column.key
            else:
                assert column_value(column, samples) == pytest.approx(expected, abs=1e-9)
        units = scored.samples.samples["gt_known_loc_accuracy"].units
        assert units == [("synth_%05d" % index, None) for index in range(6)]


def test_the_comparisons_files_and_the_agreement(runs, capsys):
    assert evaluate(capsys, runs, "--output", "table", "--bootstrap", "100")[0] == 0
    with open("table_comparisons.json") as stream:
        document = json.load(stream)
    records = document["comparisons"]
    assert {(record["run_a"], record["run_b"]) for record in records} == {
        (RUNS[0], RUNS[1]), (RUNS[0], RUNS[2]), (RUNS[1], RUNS[2])}
    assert all(record["verdict"] in ("A better", "B better", "no difference at 5%")
               for record in records)
    assert all(record["column"] in COLUMNS for record in records)
    assert [row["run_a"] for row in read_csv("table_comparisons.csv")] == \
        [record["run_a"] for record in records]
    with open("table_agreement.json") as stream:
        found = json.load(stream)
    assert found["runs"] == RUNS and len(found["kendall_tau_b"]) == len(found["kendall_columns"])
    assert found["alpha_images"] == 6


def test_a_single_image_and_runs_that_are_not_paired(runs, capsys):
    lines = read_lines(os.path.join(RUNS[1], "results.jsonl"))
    write_lines(os.path.join(RUNS[1], "results.jsonl"), lines[:1])
    os.remove(os.path.join(RUNS[1], "faithfulness.jsonl"))
    other = "runs/other"
    shutil.copytree(RUNS[2], other)
    with open(os.path.join(other, "config.yaml")) as stream:
        config = yaml.safe_load(stream)
    config["network"] = "resnet_v2_50"
    with open(os.path.join(other, "config.yaml"), "w") as stream:
        yaml.safe_dump(config, stream)
    code, out, err = evaluate(capsys, runs, "--output", "table", "--bootstrap", "100",
                              results=[RUNS[0], RUNS[1], other])
    assert code == 0, err
    [single] = [line for line in out.splitlines()
                if line.startswith("| runs/gradcam | gradcam | demo_densenet |")]
    assert "| 1 | 0.0 [-] | 0.0 [-] |" in single
    assert "runs/gradcam: no interval for top-1 cls err, top-5 cls err" in out
    assert "not compared: runs/l2caf and runs/other: other networks (demo_densenet, " \
           "resnet_v2_50)" in out
    assert "Krippendorff's alpha not computed: runs/l2caf and runs/other are not paired" in out
    for name in ("table.csv", "table_comparisons.csv", "table.json", "table_comparisons.json"):
        assert "nan" not in open(name).read().lower(), name
    assert "Traceback" not in err


@pytest.mark.parametrize("arguments, message", [
    (["--bootstrap", "-1"], "--bootstrap must be 0 (no intervals) or more resamples, got -1"),
    (["--bootstrap", "1"], "--bootstrap 1 makes no interval"),
    (["--seed", "-2"], "--seed must be 0 or more, got -2"),
])
def test_bad_statistics_options_are_one_line(runs, capsys, arguments, message):
    code, _, err = evaluate(capsys, runs, *arguments)
    assert code == 2
    assert_one_error_line(err, message)


def test_help_explains_the_statistics_options(capsys):
    assert exit_status(main, ["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--bootstrap N bootstrap resamples of the images for every score's 95% interval" in out
    assert "0 turns all of them off and gives the table alone (default: 1000)" in out
    assert "--seed S seed of the bootstrap's resamples" in out


def test_the_pages_statistics_are_text():
    hostile = "<script>alert(1)</script>"
    text = page.markdown_html("| A | B |\n|---|---|\n| %s | x |\n\nA sentence %s.\n\nNotes:\n"
                              "- %s" % (hostile, hostile, hostile))
    assert "<script>" not in text and text.count("&lt;script&gt;") == 3
    assert text.startswith('<div class="table-scroll"><table class="scores"><thead><tr>'
                           '<th><div>A</div></th><th><div>B</div></th>')
    assert '<ul class="notes"><li>&lt;script&gt;' in text
