"""l2caf.evaluation.faithfulness against the papers' formulas, in float64, on "networks" whose answers
are known: a class score that is the mean of one image region (analytic deletion, insertion
and Average Drop), and a small softmax classifier scored by an independent transcription of
RISE's CausalMetric.single_run with our tie rule. No TensorFlow."""
import cv2
import numpy as np
import pytest

from l2caf import preprocessing
from l2caf.evaluation import faithfulness
from l2caf.evaluation.faithfulness import Faithfulness

ALL_PREPROCESSING = preprocessing.SLIM_PREPROCESSING + preprocessing.KERAS_PREPROCESSING


# Independent transcriptions of the references.

def scipy_gaussian_of_a_delta(size, sigma, truncate=4.0):
    """scipy.ndimage.gaussian_filter1d of a delta at the centre of `size` samples, written
    out: the normalised Gaussian of radius int(truncate * sigma + 0.5), and the border mode
    'reflect' (d c b a | a b c d | d c b a) by index arithmetic."""
    radius = int(truncate * sigma + 0.5)
    weights = {offset: np.exp(-0.5 * offset ** 2 / sigma ** 2)
               for offset in range(-radius, radius + 1)}
    total = sum(weights.values())
    centre = size // 2

    def reflect(index):
        index %= 2 * size
        return index if index < size else 2 * size - 1 - index
    return np.array([sum(weight / total for offset, weight in weights.items()
                         if reflect(position + offset) == centre)
                     for position in range(size)])


def zero_padded_blur(image, kernel_1d, pad_value=0.0):
    """Each channel correlated with outer(kernel, kernel), the image padded with pad_value
    (per channel): PyTorch's conv2d with padding=klen//2 for pad_value 0."""
    kernel = np.outer(kernel_1d, kernel_1d)
    half = len(kernel_1d) // 2
    height, width, channels = image.shape
    padded = np.empty((height + 2 * half, width + 2 * half, channels))
    padded[...] = pad_value
    padded[half:half + height, half:half + width] = image
    out = np.zeros((height, width, channels))
    for row in range(len(kernel_1d)):
        for column in range(len(kernel_1d)):
            out += kernel[row, column] * padded[row:row + height, column:column + width]
    return out


def stable_ranking(values):
    """Pixel indices, largest value first, equal values in raster order (Python's sort is
    stable)."""
    flat = list(np.asarray(values).ravel())
    return sorted(range(len(flat)), key=lambda index: -flat[index])


def rise_curve(score, image, substrate, heatmap, steps, deletion):
    """RISE's CausalMetric.single_run, one image and one class: the heatmap resized with
    OpenCV's bilinear interpolation, pixels ranked by `stable_ranking`, changed
    floor(i * H * W / steps) at point i (one row per step for steps = H, as RISE's step =
    224); deletion starts from the image, insertion from the substrate."""
    height, width = image.shape[:2]
    resized = cv2.resize(np.asarray(heatmap, np.float64), (width, height),
                         interpolation=cv2.INTER_LINEAR)
    order = stable_ranking(resized)
    start, finish = (image, substrate) if deletion else (substrate, image)
    current = start.reshape(-1, image.shape[2]).copy()
    curve = [score(current.reshape(image.shape))]
    for point in range(1, steps + 1):
        previous, now = (point - 1) * height * width // steps, point * height * width // steps
        for pixel in order[previous:now]:
            current[pixel] = finish.reshape(-1, image.shape[2])[pixel]
        curve.append(score(current.reshape(image.shape)))
    return np.array(curve)


def trapezoid_auc(curve):
    return np.trapezoid(curve, np.linspace(0.0, 1.0, len(curve)))


# Models with the four members l2caf.evaluation.faithfulness needs.

class RegionMeanModel(object):
    """Class 0's probability is the mean of the network input's first channel over the
    rows `rows` and columns `columns`, class 1's the rest; every batch is recorded."""

    def __init__(self, preprocessing_name="none", input_shape=(16, 12, 3), rows=(4, 8),
                 columns=(3, 9)):
        self.preprocessing, self.input_shape = preprocessing_name, input_shape
        self.rows, self.columns = slice(*rows), slice(*columns)
        self.batches = []

    def class_output(self, class_id):
        return class_id

    def score(self, network_input):
        return float(np.mean(network_input[self.rows, self.columns, 0]))

    def class_probabilities(self, images):
        self.batches.append(len(images))
        inputs = preprocessing.preprocess(np.asarray(images, np.float64), self.preprocessing)
        region = inputs[:, self.rows, self.columns, 0].mean(axis=(1, 2))
        return np.stack([region, 1.0 - region], axis=1)


class SoftmaxModel(object):
    """A small classifier: softmax of a fixed linear map of the network input; class ids
    shifted by one output, like the slim networks' background output."""

    def __init__(self, input_shape=(12, 10, 3), num_outputs=5, preprocessing_name="inception"):
        self.preprocessing, self.input_shape = preprocessing_name, input_shape
        self.weights = np.random.default_rng(3).normal(
            0, 0.3, (int(np.prod(input_shape)), num_outputs))
        self.batches = []

    def class_output(self, class_id):
        return class_id + 1

    def probabilities_of_input(self, network_input):
        logits = np.reshape(network_input, (-1, self.weights.shape[0])) @ self.weights
        logits -= logits.max(axis=1, keepdims=True)
        return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)

    def class_probabilities(self, images):
        self.batches.append(len(images))
        return self.probabilities_of_input(
            preprocessing.preprocess(np.asarray(images, np.float64), self.preprocessing))


def region_inputs(model, count=2, value=0.8, seed=0):
    """Network inputs whose first channel is `value` in the model's region and in [0, 1]
    elsewhere (so that every blur of it stays in [0, 1]); other channels anything."""
    rng = np.random.default_rng(seed)
    inputs = rng.uniform(-2.0, 2.0, (count,) + model.input_shape)
    inputs[..., 0] = rng.uniform(0.0, 1.0, inputs.shape[:3])
    inputs[:, model.rows, model.columns, 0] = value
    return inputs


def region_indicator(model):
    heatmap = np.zeros(model.input_shape[:2])
    heatmap[model.rows, model.columns] = 1.0
    return heatmap


# The pieces.

def test_the_blur_kernel_is_scipys_gaussian_filter_of_a_delta_as_rises_gkern():
    kernel = faithfulness.rise_blur_kernel()
    np.testing.assert_allclose(kernel, scipy_gaussian_of_a_delta(11, 5.0), rtol=0, atol=1e-15)
    assert kernel.shape == (11,) and abs(kernel.sum() - 1.0) < 1e-12
    # Not a plain sampled Gaussian: the tails beyond the window are folded back into it.
    plain = np.exp(-0.5 * (np.arange(-5, 6) / 5.0) ** 2)
    assert np.abs(kernel - plain / plain.sum()).max() > 1e-3


def test_blur_is_the_zero_padded_convolution_with_the_outer_kernel():
    network_input = np.random.default_rng(1).normal(0, 1, (13, 17, 3))
    expected = zero_padded_blur(network_input, scipy_gaussian_of_a_delta(11, 5.0))
    np.testing.assert_allclose(faithfulness.blur(network_input), expected, atol=1e-5)


@pytest.mark.parametrize("name", ALL_PREPROCESSING)
def test_blurring_the_network_input_is_blurring_the_image_padded_with_the_zero_colour(name):
    image = np.random.default_rng(2).uniform(0, 255, (14, 11, 3))
    zero_colour = preprocessing.unpreprocess(np.zeros(3), name).astype(np.float64)
    image_blurred = zero_padded_blur(image, scipy_gaussian_of_a_delta(11, 5.0), zero_colour)
    np.testing.assert_allclose(
        faithfulness.blur(preprocessing.preprocess(image, name)),
        preprocessing.preprocess(image_blurred, name), atol=2e-3)


def test_pixels_are_ranked_by_a_stable_decreasing_sort_ties_in_raster_order():
    heatmap = np.array([[0.0, 2.0, 1.0], [2.0, 0.0, 0.0]])
    assert list(faithfulness.pixel_order(heatmap, (2, 3))) == [1, 3, 2, 0, 4, 5]
    assert list(faithfulness.pixel_order(np.zeros((3, 3)), (5, 4))) == list(range(20))
    # At another size, through OpenCV's bilinear resize; a ReLU'd map with many ties.
    low = np.maximum(np.random.default_rng(4).normal(0, 1, (4, 3)), 0)
    resized = cv2.resize(low, (9, 11), interpolation=cv2.INTER_LINEAR)
    assert list(faithfulness.pixel_order(low, (11, 9))) == stable_ranking(resized)


def test_the_default_is_one_row_of_pixels_per_step():
    changed = faithfulness.changed_pixels(224 * 224, faithfulness.default_steps((224, 224, 3)))
    np.testing.assert_array_equal(changed, 224 * np.arange(225))
    np.testing.assert_array_equal(faithfulness.changed_pixels(10, 4), [0, 2, 5, 7, 10])
    assert Faithfulness(RegionMeanModel()).points == 17
    for steps in (0, 16 * 12 + 1):
        with pytest.raises(ValueError, match="steps"):
            Faithfulness(RegionMeanModel(), steps=steps)


def test_the_auc_is_the_trapezoid_rule_normalised_to_one():
    curve = np.random.default_rng(5).uniform(0, 1, 225)
    assert faithfulness.auc(curve) == pytest.approx(trapezoid_auc(curve), abs=1e-12)
    assert faithfulness.auc([1.0, 0.0]) == 0.5


# Known answers.

@pytest.mark.parametrize("name", ALL_PREPROCESSING)
def test_a_region_mean_network_gives_the_analytic_curves(name):
    model = RegionMeanModel(name)
    inputs = region_inputs(model, count=1, value=0.8)
    region = [row * 12 + column for row in range(4, 8) for column in range(3, 9)]  # raster
    [scores] = Faithfulness(model, batch_size=7)(inputs, [region_indicator(model)], [0])
    changed = 12 * np.arange(17)
    # Deletion: the region's pixels go first, each to the network input's zero.
    deleted = np.minimum(changed, len(region))
    np.testing.assert_allclose(scores.deletion, 0.8 * (1 - deleted / len(region)), atol=1e-5)
    assert scores.deletion_auc == pytest.approx(
        trapezoid_auc(0.8 * (1 - deleted / len(region))), abs=1e-5)
    # Insertion: onto the blurred input, the region's pixels back first, in raster order.
    blurred = zero_padded_blur(inputs[0], scipy_gaussian_of_a_delta(11, 5.0))[..., 0].ravel()
    expected = [np.mean([0.8 if position < count else blurred[pixel]
                         for position, pixel in enumerate(region)]) for count in deleted]
    np.testing.assert_allclose(scores.insertion, expected, atol=1e-5)
    assert scores.insertion_auc == pytest.approx(trapezoid_auc(expected), abs=1e-5)
    # The mask is the indicator itself: the region is kept whole.
    assert scores.probability == pytest.approx(0.8, abs=1e-5)
    assert scores.masked_probability == pytest.approx(0.8, abs=1e-5)
    assert (scores.average_drop, scores.increase_in_confidence) == (pytest.approx(0, abs=1e-5),
                                                                    0.0)


def test_a_gray_model_is_scored_on_its_one_channel():
    model = RegionMeanModel("tf", input_shape=(16, 12, 1))
    inputs = region_inputs(model, count=1, value=0.8)
    [scores] = Faithfulness(model)(inputs, [region_indicator(model)], [0])
    deleted = np.minimum(12 * np.arange(17), 24)
    np.testing.assert_allclose(scores.deletion, 0.8 * (1 - deleted / 24), atol=1e-5)
    blurred = zero_padded_blur(inputs[0], scipy_gaussian_of_a_delta(11, 5.0))
    assert scores.insertion[0] == pytest.approx(model.score(blurred), abs=1e-5)


def test_average_drop_and_increase_in_confidence_follow_grad_campp():
    model = RegionMeanModel("tf")
    inputs = region_inputs(model, count=1, value=0.8)
    heatmap = np.random.default_rng(6).uniform(0, 1, (4, 3))
    resized = cv2.resize(heatmap, (12, 16), interpolation=cv2.INTER_LINEAR)
    mask = (resized - resized.min()) / (resized.max() - resized.min())
    masked = model.score(inputs[0] * mask[..., None])
    class_0, class_1 = Faithfulness(model, steps=4)(inputs, [heatmap, heatmap], [0, 1], [0, 0])
    assert class_0.masked_probability == pytest.approx(masked, abs=1e-5)
    assert class_0.average_drop == pytest.approx((0.8 - masked) / 0.8, abs=1e-5)
    assert class_0.increase_in_confidence == 0.0
    # Class 1 is 1 - the region's mean: masking raises it, so no drop, and an increase.
    assert class_1.probability == pytest.approx(0.2, abs=1e-5)
    assert class_1.masked_probability == pytest.approx(1 - masked, abs=1e-5)
    assert (class_1.average_drop, class_1.increase_in_confidence) == (0.0, 1.0)


def test_a_flat_heatmap_masks_the_whole_image_to_the_zero():
    model = SoftmaxModel()
    inputs = np.random.default_rng(7).normal(0, 1, (1,) + model.input_shape)
    [scores] = Faithfulness(model, steps=3)(inputs, [np.zeros((3, 3))], [2])
    zero = model.probabilities_of_input(np.zeros(model.input_shape))[0, 3]
    assert scores.masked_probability == pytest.approx(zero, abs=1e-6)
    assert scores.deletion[-1] == pytest.approx(zero, abs=1e-6)


@pytest.mark.parametrize("steps", [None, 7])
def test_curves_equal_an_independent_transcription_of_rises_causal_metric(steps):
    model = SoftmaxModel()
    rng = np.random.default_rng(8)
    inputs = rng.normal(0, 1, (2,) + model.input_shape)
    # ReLU'd low-resolution maps: many tied pixels, whose raster order decides the ranking.
    heatmaps = [np.maximum(rng.normal(0, 1, (4, 3)), 0) for _ in range(3)]
    classes, images = [0, 3, 1], [0, 0, 1]
    results = Faithfulness(model, steps, batch_size=5)(inputs, heatmaps, classes, images)
    kernel = scipy_gaussian_of_a_delta(11, 5.0)
    for heatmap, class_id, index, scores in zip(heatmaps, classes, images, results):
        def score(network_input):
            return model.probabilities_of_input(network_input)[0, class_id + 1]
        image = inputs[index]
        count = steps or model.input_shape[0]
        deletion = rise_curve(score, image, np.zeros_like(image), heatmap, count, True)
        insertion = rise_curve(score, image, zero_padded_blur(image, kernel), heatmap, count,
                               False)
        np.testing.assert_allclose(scores.deletion, deletion, atol=2e-5)
        np.testing.assert_allclose(scores.insertion, insertion, atol=2e-5)
        assert scores.deletion_auc == pytest.approx(trapezoid_auc(deletion), abs=2e-5)
        assert scores.insertion_auc == pytest.approx(trapezoid_auc(insertion), abs=2e-5)
        assert scores.class_id == class_id and len(scores.deletion) == count + 1


def test_an_inverted_heatmap_scores_worse_than_the_heatmap():
    model = RegionMeanModel("caffe")
    inputs = region_inputs(model, count=1, value=0.9)
    rows, columns = np.mgrid[0:16, 0:12]
    bump = np.exp(-((rows - 5.5) ** 2 + (columns - 5.5) ** 2) / 8.0)  # on the region
    good, inverted = Faithfulness(model)(inputs, [bump, bump.max() - bump], [0, 0], [0, 0])
    assert good.deletion_auc < inverted.deletion_auc
    assert good.insertion_auc > inverted.insertion_auc
    assert good.average_drop < inverted.average_drop


def test_several_heatmaps_share_full_batches_and_batching_changes_nothing():
    model = SoftmaxModel()
    rng = np.random.default_rng(9)
    inputs = rng.normal(0, 1, (3,) + model.input_shape)
    heatmaps = [rng.uniform(0, 1, (3, 3)) for _ in range(5)]
    classes, images = [0, 1, 2, 3, 0], [0, 1, 1, 2, 0]
    finished = []
    scorer = Faithfulness(model, steps=6, batch_size=1)
    reference = scorer(inputs, heatmaps, classes, images)
    # One all-zero input, the image and its blurred copy per image, and per heatmap the
    # curves' inner points, the ROAD images of its 9 fractions and the masked image.
    rows = 1 + 2 * 3 + 5 * (2 * 5 + 2 * 9 + 1)
    assert scorer.forward_passes == 2 * 5 + 2 * 9 + 1
    assert model.batches == [1] * rows
    for batch_size in (4, 64):
        model.batches = []
        results = Faithfulness(model, steps=6, batch_size=batch_size)(
            inputs, heatmaps, classes, images, progress=finished.append)
        assert model.batches == [batch_size] * (rows // batch_size) + \
            ([rows % batch_size] if rows % batch_size else [])
        for one, other in zip(reference, results):
            np.testing.assert_allclose(one.deletion, other.deletion, atol=1e-6)
            np.testing.assert_allclose(one.insertion, other.insertion, atol=1e-6)
            # (ROAD's noise is seeded per heatmap: the batches do not change it.)
            np.testing.assert_allclose(one.road_morf, other.road_morf, atol=1e-6)
            np.testing.assert_allclose(one.road_lerf, other.road_lerf, atol=1e-6)
            assert one.masked_probability == pytest.approx(other.masked_probability, abs=1e-6)
        assert sum(finished) == 5
        finished.clear()


def test_roads_images_made_on_worker_threads_are_the_ones_made_in_order():
    class RecordingModel(SoftmaxModel):
        def class_probabilities(self, images):
            self.rows.append(np.array(images))
            return super().class_probabilities(images)
    rng = np.random.default_rng(4)
    inputs = rng.normal(0, 1, (2, 12, 10, 3))
    heatmaps = [rng.uniform(0, 1, (3, 3)) for _ in range(5)]
    runs = []
    for workers in (1, 3):
        model = RecordingModel()
        model.rows = []
        scores = Faithfulness(model, steps=3, batch_size=8, workers=workers)(
            inputs, heatmaps, [0, 1, 2, 3, 0], [0, 1, 1, 0, 1], noise_seeds=[5, 6, 7, 8, 9])
        runs.append((np.concatenate(model.rows), scores))
    (rows, scores), (threaded_rows, threaded_scores) = runs
    # Every row, ROAD's imputed images and their noise included, bit for bit, in order.
    np.testing.assert_array_equal(rows, threaded_rows)
    for one, other in zip(scores, threaded_scores):
        np.testing.assert_array_equal(one.road_morf, other.road_morf)
        np.testing.assert_array_equal(one.road_lerf, other.road_lerf)
    with pytest.raises(ValueError, match="workers must be at least 1"):
        Faithfulness(SoftmaxModel(), workers=0)


def test_wrong_inputs_are_refused_by_name():
    scorer = Faithfulness(SoftmaxModel())
    with pytest.raises(ValueError, match="network inputs"):
        scorer(np.zeros((1, 5, 5, 3)), [np.ones((2, 2))], [0])
    with pytest.raises(ValueError, match="one entry per heatmap"):
        scorer(np.zeros((1, 12, 10, 3)), [np.ones((2, 2))], [0, 1])
    with pytest.raises(ValueError, match="NaN"):
        scorer(np.zeros((1, 12, 10, 3)), [np.full((2, 2), np.nan)], [0])
