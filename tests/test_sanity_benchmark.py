"""benchmarks/sanity.py's smoke run (--quick): a report of the check's cost against the run's
own, with the machine and the load."""
import json
import os

import pytest


@pytest.mark.slow
def test_the_quick_run_writes_its_report(tmp_path, capsys):
    from benchmarks import sanity
    assert sanity.main(["--quick", "--output", str(tmp_path)]) == 0
    with open(os.path.join(str(tmp_path), "sanity_quick.json")) as stream:
        report = json.load(stream)
    [result] = report["methods"]
    assert result["method"] == "gradcam" and result["blocks"] == 6
    assert result["explanations_per_heatmap"] == 2 * 6 + 1
    assert result["heatmaps"] >= 2 and result["own_seconds_per_heatmap"]["median"] > 0
    assert result["check_seconds_per_heatmap"]["median"] > \
        result["own_seconds_per_heatmap"]["median"]
    assert len(report["load_average"]) == 2 and report["machine"]["cores"] >= 1
    text = open(os.path.join(str(tmp_path), "sanity_quick.md")).read()
    assert text.startswith("| method | heatmaps | blocks |") and "| gradcam | " in text
    assert "load average" in capsys.readouterr().out
