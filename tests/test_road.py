"""ROAD (Rong et al. 2022) and Average Gain (Zhang et al., Opti-CAM) in
l2caf.evaluation.faithfulness: the curves' end points, the ranking and removal, the areas,
Average Gain on hand-made cases, the settings' checks, and on the demo model a localising
method beats the random maps."""
import numpy as np
import pytest

from l2caf import preprocessing
from l2caf.evaluation import faithfulness, imputation
from l2caf.evaluation.faithfulness import (Faithfulness, average_gain, check_road_fractions,
                                           road_auc, road_order)
# A small classifier: the softmax of a fixed linear map of a 12 x 10 RGB network input
# ('inception' preprocessing); class c is output c + 1.
from tests.helpers import SoftmaxModel


@pytest.mark.parametrize("probability, masked, gain", [
    (0.2, 0.6, 0.5),  # (0.6 - 0.2) / 0.8
    (0.5, 0.75, 0.5),
    (0.5, 0.25, 0.0),  # a drop is no gain
    (0.9, 0.9, 0.0),
    (0.0, 1.0, 1.0),
    (1.0, 1.0, 0.0),  # Y = 1: nothing to gain, no division by zero
])
def test_average_gain_on_hand_made_cases(probability, masked, gain):
    assert average_gain(probability, masked) == pytest.approx(gain, abs=1e-12)


def test_average_gain_is_scored_on_the_image_masked_as_average_drop_is():
    model = SoftmaxModel()
    inputs = np.random.default_rng(1).normal(0, 1, (1,) + model.input_shape)
    heatmap = np.random.default_rng(2).uniform(0, 1, (3, 3))
    [scores] = Faithfulness(model, steps=3)(inputs, [heatmap], [1])
    expected = max(0.0, scores.masked_probability - scores.probability) / \
        (1.0 - scores.probability)
    assert scores.average_gain == pytest.approx(expected, abs=1e-12)
    mask = faithfulness.confidence_mask(heatmap, model.input_shape)[..., None]
    masked = model.probabilities_of_input(inputs[0] * mask)[0, 2]
    assert scores.masked_probability == pytest.approx(masked, abs=1e-6)


def test_road_auc_is_the_trapezoid_over_zero_and_the_fractions_divided_by_the_last():
    assert road_auc([1.0, 1.0, 1.0], [0.5, 0.9]) == pytest.approx(1.0)
    # (0.1 * (1 + 0.8) / 2 + 0.8 * (0.8 + 0) / 2) / 0.9
    assert road_auc([1.0, 0.8, 0.0], [0.1, 0.9]) == pytest.approx((0.09 + 0.32) / 0.9)


@pytest.mark.parametrize("fractions", [[], [0.0, 0.5], [0.5, 1.0], [0.5, 0.3], [0.2, 0.2]])
def test_road_fractions_must_increase_inside_zero_and_one(fractions):
    with pytest.raises(ValueError, match="increasing, each above 0 and below 1"):
        check_road_fractions(fractions)


def test_the_ranking_is_the_references_most_relevant_first_ties_broken_by_noise():
    heatmap = np.zeros((4, 4))
    heatmap[1, 2], heatmap[3, 0] = 1.0, 0.5
    order = road_order(heatmap, (4, 4), np.random.default_rng(0))
    assert list(order[:2]) == [1 * 4 + 2, 3 * 4 + 0]
    # The 14 tied pixels in an order the noise chose, not raster order, and another seed
    # chooses another.
    other = road_order(heatmap, (4, 4), np.random.default_rng(1))
    assert sorted(order[2:]) == sorted(other[2:]) == sorted(set(range(16)) - {6, 12})
    assert list(order[2:]) != list(other[2:])


def spaced_heatmap(shape, seed):
    """A map at the input's size whose values are 1/N apart (far above the 1e-4 tie noise):
    its ranking is its own sort."""
    values = np.random.default_rng(seed).permutation(shape[0] * shape[1]).astype(np.float64)
    return values.reshape(shape)


@pytest.mark.parametrize("fractions", [faithfulness.DEFAULT_ROAD_FRACTIONS, (0.25, 0.5)])
def test_the_curves_run_from_the_image_to_the_last_fraction_imputed(fractions):
    """Without noise: a curve's first point is the image's probability, its last the
    probability of the image with int(p * H * W) of the most (MoRF) or least (LeRF) relevant
    pixels imputed (p the last fraction), built here from the map's own sort."""
    model = SoftmaxModel()
    inputs = np.random.default_rng(3).normal(0, 0.5, (1,) + model.input_shape)
    heatmap = spaced_heatmap(model.input_shape[:2], 4)
    [scores] = Faithfulness(model, steps=4, road_fractions=fractions, road_noise=0.0)(
        inputs, [heatmap], [2])
    image = preprocessing.unpreprocess(inputs[0], model.preprocessing)
    assert scores.road_morf[0] == scores.road_lerf[0] == pytest.approx(scores.probability)
    order = np.argsort(-heatmap.ravel())
    count = heatmap.size
    removed = int(count * fractions[-1])
    for curve, pixels in ((scores.road_morf, order[:removed]),
                          (scores.road_lerf, order[count - removed:])):
        known = np.ones(count, dtype=bool)
        known[pixels] = False
        imputed = imputation.impute(image, known.reshape(heatmap.shape), noise=0.0)
        expected = model.probabilities_of_input(
            preprocessing.preprocess(imputed, model.preprocessing))[0, 3]
        assert curve[-1] == pytest.approx(expected, abs=1e-5)
    assert len(scores.road_morf) == len(fractions) + 1
    assert scores.road_morf_auc == pytest.approx(road_auc(scores.road_morf, fractions))
    assert scores.road_lerf_auc == pytest.approx(road_auc(scores.road_lerf, fractions))


def test_a_heatmaps_road_scores_depend_on_its_seed_only():
    model = SoftmaxModel()
    inputs = np.random.default_rng(5).normal(0, 0.5, (2,) + model.input_shape)
    maps = [np.random.default_rng(6 + number).uniform(size=(3, 3)) for number in range(2)]
    scorer = Faithfulness(model, steps=3)
    together = scorer(inputs, maps, [0, 1], noise_seeds=[10, 20])
    alone = scorer(inputs[1:], maps[1:], [1], noise_seeds=[20])
    np.testing.assert_allclose(together[1].road_morf, alone[0].road_morf, atol=1e-9)
    np.testing.assert_allclose(together[1].road_lerf, alone[0].road_lerf, atol=1e-9)
    other = scorer(inputs[1:], maps[1:], [1], noise_seeds=[21])
    assert not np.allclose(other[0].road_morf[1:], alone[0].road_morf[1:], atol=1e-9)


def test_other_road_settings_are_other_protocol_settings():
    default = faithfulness.protocol_settings(8, (8, 8))
    assert default["road_fractions"] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert default["road_noise"] == 0.01
    assert faithfulness.protocol_settings(8, (8, 8), (0.5,)) != default
    assert faithfulness.protocol_settings(8, (8, 8), road_noise=0.0) != default
    with pytest.raises(ValueError, match="noise must be 0 or more"):
        Faithfulness(SoftmaxModel(), road_noise=-1.0)


@pytest.mark.slow  # the demo model, 8 held-out images, 2 methods
def test_on_the_demo_model_gradcam_beats_random_on_both_road_curves(demo_model):
    from l2caf import synthetic
    from l2caf.methods import METHODS
    examples = list(synthetic.generate_examples(8, 224, 777, 0.0))
    images = [image for image, _ in examples]
    classes = [synthetic.CLASS_NAMES.index(objects[0].name) for _, objects in examples]
    model = demo_model  # conftest.py's, built once
    inputs = preprocessing.preprocess(model.prepare(images), model.preprocessing)
    scorer = Faithfulness(model, steps=4)
    means = {}
    for method in ("gradcam", "random"):
        explanations = METHODS[method](model)(images, classes)
        scores = scorer(inputs, [explanation.heatmap for explanation in explanations],
                        [classes[explanation.image_index] for explanation in explanations],
                        [explanation.image_index for explanation in explanations])
        means[method] = (np.mean([score.road_morf_auc for score in scores]),
                         np.mean([score.road_lerf_auc for score in scores]))
    print("\nROAD MoRF, LeRF AUC on 8 held-out images: gradcam %.3f, %.3f; random %.3f, %.3f"
          % (means["gradcam"] + means["random"]))
    assert means["gradcam"][0] < means["random"][0]  # MoRF: lower is better
    assert means["gradcam"][1] > means["random"][1]  # LeRF: higher is better
