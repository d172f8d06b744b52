"""ROAD's noisy linear imputation (Rong, Leemann, Borisov, Kasneci, Kasneci, "A Consistent and
Efficient Evaluation Strategy for Attribution Methods", ICML 2022; `NoisyLinearImputer` in
road/imputations.py of github.com/tleemann/road_evaluation, which pytorch-grad-cam ships).

Each removed pixel takes the weighted mean of its 8 neighbours inside the image: weight 1/6
for the 4 that share an edge, 1/12 for the 4 diagonal ones, divided by the weights of the
neighbours inside the image (a border pixel has fewer). Known neighbours give their values,
removed ones are unknowns too, so the removed pixels solve one sparse linear system, the same
for every channel: for a removed pixel i with neighbours j inside the image,
    -(sum_j w_j) x_i + sum_{j removed} w_j x_j = -sum_{j known} w_j v_j.
Then Gaussian noise of standard deviation `noise` is added to every removed pixel (the
reference's 0.01, on images in [0, 1]: the ROAD paper's protection against the class being
read off the imputed values). The system is factorised once per mask (SuperLU, as the
reference's spsolve, in its symmetric mode) and the channels are solved together. A system
with no known pixel is singular (every constant image solves it) and is refused. No TensorFlow.
"""
import typing

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

# (row offset, column offset): weight, as the reference's `neighbors_weights`.
NEIGHBOUR_WEIGHTS: typing.Tuple[typing.Tuple[typing.Tuple[int, int], float], ...] = (
    ((1, 1), 1 / 12), ((0, 1), 1 / 6), ((-1, 1), 1 / 12), ((1, -1), 1 / 12),
    ((0, -1), 1 / 6), ((-1, -1), 1 / 12), ((1, 0), 1 / 6), ((-1, 0), 1 / 6))
# The reference's noise, in units of an image in [0, 1].
DEFAULT_NOISE = 0.01


def linear_system(known: np.ndarray) -> typing.Tuple[scipy.sparse.csc_matrix,
                                                     scipy.sparse.csr_matrix, np.ndarray]:
    """The imputation's system for a mask `known` [H, W] (True: the pixel is kept): (A,
    neighbours, removed) with A [n, n] the system over the n removed pixels (raster order,
    `removed` their flat indices) and neighbours [n, H * W] the known neighbours' weights, so
    that the removed pixels' values x [n, C] of an image v [H * W, C] solve
    A x = -neighbours v."""
    known = np.asarray(known, dtype=bool)
    height, width = known.shape
    removed = np.flatnonzero(~known.ravel())
    variable = np.full(height * width, -1, dtype=np.int64)
    variable[removed] = np.arange(len(removed))
    rows, columns = np.divmod(removed, width)
    weight_inside = np.zeros(len(removed))
    system = ([], [], [])  # COO: equation, variable, weight
    given = ([], [], [])  # COO: equation, known pixel, weight
    for (row_offset, column_offset), weight in NEIGHBOUR_WEIGHTS:
        row, column = rows + row_offset, columns + column_offset
        inside = (row >= 0) & (row < height) & (column >= 0) & (column < width)
        weight_inside[inside] += weight
        equations = np.flatnonzero(inside)
        pixels = row[inside] * width + column[inside]
        unknown = variable[pixels] >= 0
        for target, selected, index in ((system, unknown, variable[pixels]),
                                        (given, ~unknown, pixels)):
            target[0].append(equations[selected])
            target[1].append(index[selected])
            target[2].append(np.full(int(selected.sum()), weight))
    system[0].append(np.arange(len(removed)))
    system[1].append(np.arange(len(removed)))
    system[2].append(-weight_inside)
    count = len(removed)
    matrix = scipy.sparse.csc_matrix(
        (np.concatenate(system[2]), (np.concatenate(system[0]), np.concatenate(system[1]))),
        shape=(count, count))
    neighbours = scipy.sparse.csr_matrix(
        (np.concatenate(given[2]), (np.concatenate(given[0]), np.concatenate(given[1]))),
        shape=(count, height * width))
    return matrix, neighbours, removed


def solve(matrix: scipy.sparse.csc_matrix, right: np.ndarray) -> np.ndarray:
    """The solution X [n, C] of the imputation's system `matrix` X = `right` [n, C]: one
    factorisation, the channels solved together."""
    # The matrix is symmetric and diagonally dominant: a symmetric ordering without pivoting
    # factorises it about 1.5 times faster than SuperLU's default (benchmarks/imputation.py;
    # the same solution to rounding).
    factors = scipy.sparse.linalg.splu(matrix, permc_spec="MMD_AT_PLUS_A",
                                       diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    return factors.solve(right)


def impute(image: np.ndarray, known: np.ndarray, noise: float = DEFAULT_NOISE,
           rng: typing.Optional[np.random.Generator] = None) -> np.ndarray:
    """The image [H, W, C] with the pixels where `known` [H, W] is False imputed (see the
    module docstring), as float64: each removed pixel's solution plus Gaussian noise of
    standard deviation `noise` (in the image's units) drawn from rng (default: a new
    unseeded Generator). ValueError when no pixel is known or the shapes differ."""
    image = np.asarray(image, dtype=np.float64)
    known = np.asarray(known, dtype=bool)
    if image.ndim != 3 or image.shape[:2] != known.shape:
        raise ValueError("impute needs an image [H, W, C] and a mask [H, W] of the same size, "
                         "got %s and %s" % (list(image.shape), list(known.shape)))
    if not known.any():
        raise ValueError("impute needs at least one known pixel: with none, every constant "
                         "image solves the imputation's system")
    channels = image.shape[2]
    flat = image.reshape(-1, channels).copy()
    if known.all():
        return flat.reshape(image.shape)
    matrix, neighbours, removed = linear_system(known)
    solution = solve(matrix, -(neighbours @ flat))
    rng = np.random.default_rng() if rng is None else rng
    flat[removed] = solution + noise * rng.standard_normal(solution.shape)
    return flat.reshape(image.shape)
