#!/usr/bin/env python
"""Benchmark: ROAD's noisy linear imputation (l2caf.evaluation.imputation) with other solvers
of the same sparse systems, to tell whether a faster one exists on this machine.

Per heatmap ROAD solves 18 systems (MoRF and LeRF at 10%, ..., 90%; the removed pixels are
the unknowns: up to 90% of the image). The heatmaps are those of benchmarks/faithfulness.py:
ReLU'd random maps at 7x7 (InceptionV1's last layer), resized bilinearly to --size and ranked
as ROAD ranks them. Each solver builds and solves every system of `--heatmaps` heatmaps for
the three channels; the seconds per heatmap (the 18 systems, assembly included) are the median
of `--repeats` runs after a warm-up, and each solver's largest difference from l2caf's (on
images in [0, 1]) shows that it solves the same systems. Solvers:
  superlu_colamd      SuperLU with its default column ordering: the reference's spsolve
  superlu_symmetric   l2caf's (imputation.solve): SuperLU in its symmetric mode (MMD on
                      A + A^T, no pivoting)
  superlu_float32     the same in single precision
  pyamg_ruge_stuben   algebraic multigrid (pyamg) as CG's preconditioner, to 1e-10
  pyamg_aggregation   smoothed-aggregation multigrid, likewise
  cholmod             CHOLMOD's supernodal Cholesky (through cvxopt)
  qdldl               QDLDL's LDL^T with AMD ordering
pyamg, cvxopt and qdldl are not l2caf's dependencies: each is measured when importable
(`pip install pyamg cvxopt qdldl` beside l2caf) and reported as not installed otherwise.

Writes imputation.json and imputation.md to --output and prints the table. Examples:
  python benchmarks/imputation.py
  python benchmarks/imputation.py --size 112 --heatmaps 1 --repeats 1
"""
import argparse
import importlib
import importlib.metadata
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import (DEFAULT_OUTPUT, Stopwatch, at_least, format_spread,  # noqa: E402
                               log, machine, spread, timed, write_report)

LAYER_SIZE = (7, 7)
FRACTIONS = tuple(step / 10 for step in range(1, 10))


def _l2cafs(matrix, right):
    from l2caf.evaluation import imputation
    return imputation.solve(matrix, right)


def _superlu_default(matrix, right):
    import scipy.sparse.linalg
    return scipy.sparse.linalg.splu(matrix).solve(right)


def _float32(matrix, right):
    """l2caf's solver in single precision."""
    import numpy as np
    from l2caf.evaluation import imputation
    return imputation.solve(matrix.astype(np.float32), right.astype(np.float32)).astype(float)


def _pyamg(build):
    """A solver with a pyamg hierarchy (`build`: its constructor's name) as CG's
    preconditioner; the system is negated to be positive definite."""
    def solve(matrix, right):
        import numpy as np
        import pyamg
        positive = (-matrix).tocsr()
        hierarchy = getattr(pyamg, build)(positive)
        return np.column_stack([hierarchy.solve(-right[:, channel], tol=1e-10, accel="cg")
                                for channel in range(right.shape[1])])
    return solve


def _cholmod(matrix, right):
    import cvxopt
    import cvxopt.cholmod
    import numpy as np
    positive = (-matrix).tocoo()
    system = cvxopt.spmatrix(positive.data, positive.row.tolist(), positive.col.tolist(),
                             positive.shape)
    solution = cvxopt.matrix(-right)
    cvxopt.cholmod.linsolve(system, solution)
    return np.array(solution)


def _qdldl(matrix, right):
    import numpy as np
    import qdldl
    import scipy.sparse
    factors = qdldl.Solver(scipy.sparse.triu(-matrix, format="csc"))
    return np.column_stack([factors.solve(-right[:, channel])
                            for channel in range(right.shape[1])])


# name: (the module it needs, the solver)
SOLVERS = {
    "superlu_colamd": ("scipy", _superlu_default),
    "superlu_symmetric": ("scipy", _l2cafs),
    "superlu_float32": ("scipy", _float32),
    "pyamg_ruge_stuben": ("pyamg", _pyamg("ruge_stuben_solver")),
    "pyamg_aggregation": ("pyamg", _pyamg("smoothed_aggregation_solver")),
    "cholmod": ("cvxopt", _cholmod),
    "qdldl": ("qdldl", _qdldl),
}


def road_masks(size, heatmaps, seed=0):
    """The `known` masks [size, size] of ROAD's 18 systems for each of `heatmaps` random
    heatmaps, as l2caf.evaluation.faithfulness ranks the pixels."""
    import numpy as np
    from l2caf.evaluation import faithfulness

    rng = np.random.default_rng(seed)
    masks = []
    for _ in range(heatmaps):
        order = faithfulness.road_order(np.maximum(rng.normal(0, 1, LAYER_SIZE), 0),
                                        (size, size), rng)
        for removed_first in (True, False):
            for fraction in FRACTIONS:
                removed = int(size * size * fraction)
                known = np.ones(size * size, dtype=bool)
                known[order[:removed] if removed_first else order[size * size - removed:]] = 0
                masks.append(known.reshape(size, size))
    return masks


def measure(solve, masks, image, repeats):
    """(seconds of each timed run, the solutions of every system)."""
    from l2caf.evaluation import imputation

    flat = image.reshape(-1, image.shape[2])
    solutions = []

    def run():
        solutions.clear()
        for known in masks:
            matrix, neighbours, _ = imputation.linear_system(known)
            solutions.append(solve(matrix, -(neighbours @ flat)))
    return timed(run, repeats), list(solutions)


def markdown(report):
    lines = ["| solver | s/heatmap (%d systems) | x l2caf's | largest difference from l2caf's |"
             % (2 * len(FRACTIONS)), "|---|---|---|---|"]
    ours = report["solvers"]["superlu_symmetric"]["seconds_per_heatmap"]["median"]
    for name, result in report["solvers"].items():
        if "missing" in result:
            lines.append("| %s | not installed (%s) | | |" % (name, result["missing"]))
            continue
        seconds = result["seconds_per_heatmap"]
        lines.append("| %s | %s | %.2f | %.1e |" % (
            name, format_spread(seconds), seconds["median"] / ours, result["difference"]))
    described = report["machine"]
    lines += ["", "%dx%d images, %d heatmaps; %s (%d cores, %s GB), Python %s, %s; load average "
              "%.2f before, %.2f after; %d repeat%s after a warm-up, median (min–max)."
              % (report["size"], report["size"], report["heatmaps"], described["cpu"],
                 described["cores"], described["memory_gb"], described["python"],
                 ", ".join("%s %s" % item for item in report["versions"].items()),
                 report["load_average"][0], report["load_average"][1], report["repeats"],
                 "" if report["repeats"] == 1 else "s")]
    return "\n".join(lines) + "\n"


def parse_options(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=at_least(8), default=224, metavar="PIXELS",
                        help="the images' height and width (default: %(default)s)")
    parser.add_argument("--heatmaps", type=at_least(1), default=2, metavar="N",
                        help="heatmaps, 18 systems each (default: %(default)s)")
    parser.add_argument("--repeats", type=at_least(1), default=3, metavar="N",
                        help="timed runs after the warm-up (default: %(default)s)")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, metavar="DIR",
                        help="folder of the report files (default: benchmarks/results)")
    return parser.parse_args(argv)


def main(argv=None):
    options = parse_options(argv)
    import numpy as np

    stopwatch = Stopwatch()
    masks = road_masks(options.size, options.heatmaps)
    image = np.random.default_rng(1).random((options.size, options.size, 3))
    results, versions = {}, {}
    for name, (module, solve) in SOLVERS.items():
        try:
            importlib.import_module(module)
        except ImportError:
            results[name] = {"missing": module}
            log("  %s: %s is not installed" % (name, module))
            continue
        versions[module] = importlib.metadata.version(module)
        seconds, solutions = measure(solve, masks, image, options.repeats)
        results[name] = {"seconds": seconds,
                         "seconds_per_heatmap": spread([value / options.heatmaps
                                                        for value in seconds]),
                         "solutions": solutions}
        log("  %s: %.3f s per heatmap" % (name, results[name]["seconds_per_heatmap"]["median"]))
    ours = results["superlu_symmetric"]["solutions"]
    for result in results.values():
        if "solutions" in result:
            result["difference"] = float(max(np.abs(mine - theirs).max() for mine, theirs
                                             in zip(result.pop("solutions"), ours)))
    report = {"size": options.size, "heatmaps": options.heatmaps, "repeats": options.repeats,
              "unknowns": [int((~known).sum()) for known in masks[:2 * len(FRACTIONS)]],
              "solvers": results, "versions": versions, "machine": machine(),
              "load_average": stopwatch.load_averages(), "seconds": stopwatch.seconds(),
              "argv": sys.argv[1:] if argv is None else argv}
    text = markdown(report)
    paths = write_report(options.output, "imputation", report, text, indent=2)
    print(text)
    print("written: %s, %s" % paths)
    return 0


if __name__ == "__main__":
    sys.exit(main())
