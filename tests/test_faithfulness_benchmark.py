"""benchmarks/faithfulness.py: the --quick smoke run's report is complete and consistent.
Correctness only: no timing is asserted."""
import json

import pytest

from benchmarks import faithfulness as benchmark

# Marked slow: the quick run, which builds a network and times it.


@pytest.mark.slow
def test_quick_run_reports_both_timings_of_the_same_forward_passes(tmp_path):
    assert benchmark.main(["--quick", "--workers", "3", "--output", str(tmp_path)]) == 0
    with open(str(tmp_path / "faithfulness_quick.json")) as stream:
        report = json.load(stream)
    [result] = report["networks"]
    quick = benchmark.QUICK_DEFAULTS
    assert (result["network"], result["steps"], result["points"], result["heatmaps"]) == \
        (quick["networks"], quick["steps"], quick["steps"] + 1, quick["heatmaps"])
    # One all-zero input, each image and its blurred copy, and per heatmap the curves' inner
    # points, the 18 ROAD images and the masked image.
    assert result["forward_passes"] == 1 + 2 * 2 + 2 * (2 * (quick["steps"] - 1) + 18 + 1)
    for key in ("faithfulness_seconds", "forward_seconds"):
        assert len(result[key]) == quick["repeats"] and min(result[key]) > 0
    assert result["road_forward_passes_per_heatmap"] == 18
    imputation = result["road_imputation_seconds_per_heatmap"]["median"]
    passes = result["road_forward_seconds_per_heatmap"]["median"]
    assert imputation > 0 and passes > 0
    assert result["road_imputation_share"] == pytest.approx(imputation / (imputation + passes))
    assert result["ratio"] == pytest.approx(result["seconds_per_heatmap"]["median"]
                                            / result["forward_seconds_per_heatmap"]["median"])
    table = (tmp_path / "faithfulness_quick.md").read_text()
    assert table.count("| demo_densenet | 168x168 | 8 (9) | 16 |") == 1
    assert "load average" in table and report["machine"]["cores"] >= 1
    assert report["workers"] == 3 and "with 3 threads imputing ROAD's images" in table


def test_bad_options_are_clear_errors(capsys):
    with pytest.raises(SystemExit):
        benchmark.main(["--heatmaps", "0"])
    assert "--heatmaps must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        benchmark.main(["--workers", "0"])
    assert "--workers must be at least 1" in capsys.readouterr().err
