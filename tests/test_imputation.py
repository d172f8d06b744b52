"""ROAD's noisy linear imputation (l2caf.evaluation.imputation) against a float64 transcription
of the reference's NoisyLinearImputer (road/imputations.py of tleemann/road_evaluation), its
closed form where every removed pixel's neighbours are known, its noise, and its refusals."""
import numpy as np
import pytest

from l2caf.evaluation import imputation

# The reference's neighbour weights, written out again: (row offset, column offset, weight).
REFERENCE_WEIGHTS = [(1, 1, 1 / 12), (0, 1, 1 / 6), (-1, 1, 1 / 12), (1, -1, 1 / 12),
                     (0, -1, 1 / 6), (-1, -1, 1 / 12), (1, 0, 1 / 6), (-1, 0, 1 / 6)]


def reference_imputation(image, known):
    """The reference's system, one equation per removed pixel in raster order, built pixel by
    pixel as its setup_sparse_system does with vectors: its diagonal starts at -1 and gives
    back the weight of every neighbour outside the image; a known neighbour moves its value,
    times its weight, to the right-hand side (negated); a removed one is a variable. Solved
    densely in float64; no noise."""
    height, width, channels = image.shape
    removed = [(row, column) for row in range(height) for column in range(width)
               if not known[row, column]]
    variable = {pixel: number for number, pixel in enumerate(removed)}
    system = np.zeros((len(removed), len(removed)))
    right = np.zeros((len(removed), channels))
    for number, (row, column) in enumerate(removed):
        total = 1.0
        for row_offset, column_offset, weight in REFERENCE_WEIGHTS:
            neighbour = (row + row_offset, column + column_offset)
            if not (0 <= neighbour[0] < height and 0 <= neighbour[1] < width):
                total -= weight
            elif known[neighbour]:
                right[number] -= weight * image[neighbour]
            else:
                system[number, variable[neighbour]] = weight
        system[number, number] = -total
    imputed = np.array(image, dtype=np.float64)
    solution = np.linalg.solve(system, right)
    for number, pixel in enumerate(removed):
        imputed[pixel] = solution[number]
    return imputed


@pytest.mark.parametrize("shape, removed_fraction, seed", [
    ((5, 7, 3), 0.3, 0), ((6, 6, 3), 0.9, 1), ((9, 4, 1), 0.5, 2), ((8, 11, 3), 0.97, 3)])
def test_the_imputation_equals_the_references_on_small_images(shape, removed_fraction, seed):
    rng = np.random.default_rng(seed)
    image = rng.uniform(0, 1, shape)
    known = np.ones(shape[0] * shape[1], dtype=bool)
    known[rng.permutation(known.size)[:int(known.size * removed_fraction)]] = False
    known = known.reshape(shape[:2])
    ours = imputation.impute(image, known, noise=0.0)
    np.testing.assert_allclose(ours, reference_imputation(image, known), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(ours[known], image[known])  # the known pixels untouched


def test_a_removed_block_touching_the_border_equals_the_references():
    image = np.random.default_rng(4).uniform(0, 255, (10, 12, 3))
    known = np.ones((10, 12), dtype=bool)
    known[:6, 3:12] = False  # a corner block: border pixels have fewer neighbours
    np.testing.assert_allclose(imputation.impute(image, known, noise=0.0),
                               reference_imputation(image, known), rtol=0, atol=1e-6)


def test_interior_pixels_with_known_neighbours_take_their_weighted_mean():
    """Closed form: a removed pixel whose 8 neighbours are known (none removed, none outside)
    is 1/6 of each edge neighbour plus 1/12 of each diagonal one."""
    rng = np.random.default_rng(5)
    image = rng.uniform(0, 1, (9, 9, 3))
    known = np.ones((9, 9), dtype=bool)
    pixels = [(1, 1), (1, 4), (4, 7), (7, 2), (5, 4)]  # none neighbours another
    for pixel in pixels:
        known[pixel] = False
    imputed = imputation.impute(image, known, noise=0.0)
    for row, column in pixels:
        edges = image[row - 1, column] + image[row + 1, column] + image[row, column - 1] + \
            image[row, column + 1]
        diagonals = image[row - 1, column - 1] + image[row - 1, column + 1] + \
            image[row + 1, column - 1] + image[row + 1, column + 1]
        np.testing.assert_allclose(imputed[row, column], edges / 6 + diagonals / 12,
                                   rtol=0, atol=1e-12)


def test_a_constant_image_stays_constant_and_an_affine_map_commutes():
    """Every equation is a weighted mean (weights summing to 1): constants and affine maps
    of the colours pass through, which is why imputing the RGB image is imputing any
    preprocessing of it."""
    rng = np.random.default_rng(6)
    known = rng.uniform(size=(7, 8)) > 0.6
    np.testing.assert_allclose(imputation.impute(np.full((7, 8, 3), 42.0), known, noise=0.0),
                               42.0, atol=1e-9)
    image = rng.uniform(0, 255, (7, 8, 3))
    np.testing.assert_allclose(imputation.impute(image / 127.5 - 1, known, noise=0.0),
                               imputation.impute(image, known, noise=0.0) / 127.5 - 1, atol=1e-9)


def test_the_noise_is_gaussian_of_the_given_deviation_on_the_removed_pixels_only():
    rng = np.random.default_rng(7)
    image = rng.uniform(0, 1, (40, 50, 3))
    known = rng.uniform(size=(40, 50)) > 0.5
    noiseless = imputation.impute(image, known, noise=0.0)
    noisy = imputation.impute(image, known, noise=0.01, rng=np.random.default_rng(11))
    difference = (noisy - noiseless)[~known]
    expected = 0.01 * np.random.default_rng(11).standard_normal(difference.shape)
    np.testing.assert_allclose(difference, expected, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(noisy[known], image[known])
    assert np.std(difference) == pytest.approx(0.01, rel=0.1)


def test_nothing_removed_is_the_image_and_nothing_known_is_refused():
    image = np.random.default_rng(8).uniform(0, 1, (4, 5, 3))
    np.testing.assert_array_equal(imputation.impute(image, np.ones((4, 5), bool)), image)
    with pytest.raises(ValueError, match="at least one known pixel"):
        imputation.impute(image, np.zeros((4, 5), bool))
    with pytest.raises(ValueError, match="same size"):
        imputation.impute(image, np.ones((5, 4), bool))


def test_the_system_is_the_references_matrix():
    known = np.random.default_rng(9).uniform(size=(6, 7)) > 0.5
    matrix, neighbours, removed = imputation.linear_system(known)
    np.testing.assert_array_equal(removed, np.flatnonzero(~known.ravel()))
    # The reference's matrix, from a one-channel image of zeros but for one known pixel at a
    # time, is what the right-hand side recovers: here only A, compared densely.
    height, width = known.shape
    dense = np.zeros((len(removed), len(removed)))
    index = {pixel: number for number, pixel in enumerate(removed)}
    for number, pixel in enumerate(removed):
        row, column = divmod(pixel, width)
        total = 1.0
        for row_offset, column_offset, weight in REFERENCE_WEIGHTS:
            other_row, other_column = row + row_offset, column + column_offset
            if not (0 <= other_row < height and 0 <= other_column < width):
                total -= weight
            elif not known[other_row, other_column]:
                dense[number, index[other_row * width + other_column]] = weight
        dense[number, number] = -total
    np.testing.assert_allclose(matrix.toarray(), dense, atol=1e-15)
    assert neighbours.shape == (len(removed), height * width)
