"""benchmarks/imputation.py: every solver it times solves ROAD's systems, and the report says
which were not installed. Correctness only: no timing is asserted."""
import json

import numpy as np
import pytest

from benchmarks import imputation as benchmark
from l2caf.evaluation import imputation


def test_masks_are_roads_eighteen_systems_per_heatmap():
    masks = benchmark.road_masks(10, heatmaps=2)
    assert len(masks) == 36
    removed = [int((~known).sum()) for known in masks[:18]]
    # MoRF then LeRF, each at 10%, ..., 90% of the 100 pixels.
    assert removed == [10, 20, 30, 40, 50, 60, 70, 80, 90] * 2
    # LeRF removes the other end of the same ranking as MoRF.
    assert not np.any(~masks[0] & ~masks[9])


@pytest.mark.parametrize("name", ["superlu_colamd", "superlu_float32"])
def test_scipy_solvers_solve_the_same_system_as_l2cafs(name):
    known = benchmark.road_masks(12, heatmaps=1)[8]
    image = np.random.default_rng(3).random((12, 12, 3))
    matrix, neighbours, removed = imputation.linear_system(known)
    right = -(neighbours @ image.reshape(-1, 3))
    solution = benchmark.SOLVERS[name][1](matrix, right)
    # The solution satisfies the system; float32 to its precision.
    tolerance = 1e-5 if name == "superlu_float32" else 1e-12
    np.testing.assert_allclose(matrix @ solution, right, atol=tolerance)
    np.testing.assert_allclose(solution, imputation.impute(image, known, noise=0)
                               .reshape(-1, 3)[removed], atol=tolerance * 10)


def test_report_names_every_solver_and_each_solves_the_systems(tmp_path, capsys):
    assert benchmark.main(["--size", "16", "--heatmaps", "1", "--repeats", "1",
                           "--output", str(tmp_path)]) == 0
    with open(str(tmp_path / "imputation.json")) as stream:
        report = json.load(stream)
    assert list(report["solvers"]) == list(benchmark.SOLVERS)
    assert report["unknowns"] == [int(16 * 16 * step / 10) for step in range(1, 10)] * 2
    for name, result in report["solvers"].items():
        if "missing" in result:
            # Only the optional solvers may be missing: scipy is a dependency.
            assert result["missing"] == benchmark.SOLVERS[name][0] != "scipy"
            continue
        assert len(result["seconds"]) == 1 and result["seconds"][0] > 0
        assert result["difference"] < (1e-4 if name == "superlu_float32" else 1e-6)
    assert report["solvers"]["superlu_symmetric"]["difference"] == 0
    table = (tmp_path / "imputation.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("|")]
    assert len(rows) == 2 + len(benchmark.SOLVERS)
    assert "16x16 images, 1 heatmaps" in table and "load average" in table


def test_bad_options_are_clear_errors(capsys):
    with pytest.raises(SystemExit):
        benchmark.main(["--size", "4"])
    assert "must be at least 8" in capsys.readouterr().err
