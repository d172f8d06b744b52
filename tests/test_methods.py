"""Grad-CAM++, LayerCAM and Score-CAM against few-line float64 implementations of their
papers' formulas (written here, on a tiny functional network computed in numpy too:
tests.helpers.TinyNetwork, which Opti-CAM's tests share), their relations to CAM at a
global-average-pooling + Dense head, Score-CAM on channels that are indicator maps of known
regions, and the one contract of the one-pass methods."""
import keras
import numpy as np
import pytest

from l2caf import GradCAM, GradCAMPlusPlus, LayerCAM, ScoreCAM
from l2caf.errors import ConfigError
from l2caf.models.keras import KerasModel
from l2caf.methods import CAM, L2CAF, METHODS, ActivationMap, RandomMap
from l2caf.models.slim import Model
from l2caf.synthetic import generate_examples
# INPUT: the tiny network's 13 pixels, which Score-CAM upsamples its layer's 6 to.
from tests.helpers import (DEMO_CHECKPOINT, DEMO_LABELS, HELD_OUT_SEED, TINY_INPUT as INPUT,
                           TinyNetwork, bilinear_matrix)


def relu(x):
    return np.maximum(x, 0.0)


def scaled_to_max_1(maps):
    maps = relu(np.asarray(maps, np.float64))
    peaks = maps.max(axis=(-2, -1), keepdims=True)
    return maps / np.where(peaks > 0, peaks, 1.0)


def bilinear(channel, size):
    """Bilinear upsampling with pixel centres aligned (half-pixel)."""
    return bilinear_matrix(channel.shape[0], size) @ channel @ \
        bilinear_matrix(channel.shape[1], size).T


@pytest.fixture(scope="module")
def tiny():
    network = TinyNetwork()
    with KerasModel(network.keras_model, layer="features", preprocess="tf") as model:
        images = np.random.default_rng(1).uniform(0, 255, (3, INPUT, INPUT, 3))
        yield network, model, images.astype(np.float32)


def references(network, image, class_id):
    """{method: its heatmap} from the papers' formulas, float64."""
    network_input = image.astype(np.float64) / 127.5 - 1.0
    activation = network.features(network_input)
    gradient = network.gradient(activation, class_id)
    sums = activation.sum(axis=(0, 1))
    denominator = 2 * gradient ** 2 + sums * gradient ** 3
    alpha = np.where(denominator != 0, gradient ** 2 / np.where(denominator != 0,
                                                                denominator, 1), 0)
    scores = []
    for channel in range(activation.shape[-1]):
        mask = bilinear(activation[:, :, channel], INPUT)
        mask = (mask - mask.min()) / (mask.max() - mask.min())
        scores.append(network.probabilities(network_input * mask[..., None])[class_id])
    return {
        "gradcam": scaled_to_max_1((activation * gradient.mean(axis=(0, 1))).sum(axis=2)),
        "gradcampp": scaled_to_max_1(
            (activation * (alpha * relu(gradient)).sum(axis=(0, 1))).sum(axis=2)),
        "layercam": scaled_to_max_1((relu(gradient) * activation).sum(axis=2)),
        "scorecam": scaled_to_max_1((activation * np.array(scores)).sum(axis=2)),
    }


def test_the_numpy_network_is_the_keras_one(tiny):
    network, model, images = tiny
    prediction = model.predict(images)
    for image, activation, probabilities in zip(images, prediction.activation,
                                                prediction.probabilities):
        network_input = image.astype(np.float64) / 127.5 - 1.0
        np.testing.assert_allclose(activation, network.features(network_input), atol=1e-5)
        np.testing.assert_allclose(probabilities, network.probabilities(network_input),
                                   atol=1e-6)


@pytest.mark.parametrize("method", ["gradcam", "gradcampp", "layercam", "scorecam"])
def test_each_method_equals_its_papers_formula(tiny, method):
    network, model, images = tiny
    classes = [[0, 2], [1], [2]]
    explanations = METHODS[method](model)(images, classes)
    assert [(e.image_index, e.class_id) for e in explanations] == \
        [(0, 0), (0, 2), (1, 1), (2, 2)]
    maps = []
    for explanation in explanations:
        expected = references(network, images[explanation.image_index],
                              explanation.class_id)[method]
        assert explanation.heatmap.shape == (6, 6) and explanation.heatmap.dtype == np.float32
        np.testing.assert_allclose(explanation.heatmap, expected, atol=2e-5)
        assert (explanation.loss, explanation.iterations, explanation.loss_history) == \
            (None, 0, None)
        maps.append(expected)
    # The references are not trivial: ReLU'd maps with a peak, different per class.
    assert all(m.max() == 1 and 0 < np.count_nonzero(m) for m in maps)
    assert not np.allclose(maps[0], maps[1])


def test_the_methods_differ_where_their_formulas_do(tiny):
    network, _, images = tiny
    maps = references(network, images[0], 0)
    for first, second in [("gradcam", "gradcampp"), ("gradcam", "layercam"),
                          ("gradcampp", "layercam"), ("gradcam", "scorecam")]:
        assert np.abs(maps[first] - maps[second]).max() > 0.05, (first, second)


def linear_head_model(seed=3):
    """features (3x3 conv + ReLU: A >= 0) -> global average pooling -> Dense: CAM's head."""
    inputs = keras.Input((12, 12, 3))
    features = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu",
                                   name="features")(inputs)
    logits = keras.layers.Dense(4, name="logits")(keras.layers.GlobalAveragePooling2D()(features))
    model = keras.Model(inputs, logits)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return model


def test_at_a_linear_head_gradcampp_and_layercam_follow_from_cam():
    # logit_k = mean_ij sum_c w_ck A_ijc + b_k, so G_ijc = w_ck / (H W) at every location:
    # Grad-CAM++'s alpha = 1 / (2 + w_ck mean(A_c)) and its weight relu(w_ck) alpha;
    # LayerCAM's weights relu(w_ck) / (H W): CAM without the class's negative weights.
    with KerasModel(linear_head_model()) as model:
        assert model.linear_head_layer == model.layer == "features"
        images = np.random.default_rng(4).uniform(0, 255, (2, 12, 12, 3)).astype(np.float32)
        activation = model.predict(images).activation.astype(np.float64)
        weights = model.linear_head_weights().astype(np.float64)  # [C, K]
        classes = [[0, 1, 2, 3], [0, 1, 2, 3]]
        plusplus = GradCAMPlusPlus(model)(images, classes)
        layercam = LayerCAM(model)(images, classes)
        cam = CAM(model)(images, classes)
        negative_weights_matter = 0
        for explanation, layer, class_map in zip(plusplus, layercam, cam):
            a = activation[explanation.image_index]
            w = weights[:, explanation.class_id]
            expected = scaled_to_max_1((a * (relu(w) / (2 + w * a.mean(axis=(0, 1))))).sum(2))
            np.testing.assert_allclose(explanation.heatmap, expected, atol=1e-5)
            np.testing.assert_allclose(layer.heatmap, scaled_to_max_1((a * relu(w)).sum(2)),
                                       atol=1e-5)
            negative_weights_matter += not np.allclose(layer.heatmap, class_map.heatmap,
                                                       atol=1e-3)
        assert negative_weights_matter  # so the test tells LayerCAM from CAM


class Regions(object):
    """A network whose layer's channels are indicator maps of known regions: the layer
    averages 4x4 blocks of the 16x16 input (its channel k is the block mean of the input's
    colour k), and logit k = 0.1 x the mean of colour k. Images are 255 inside a region of
    their own per colour 0 and 1, else 0; colour 2 is all 0, a flat channel."""
    region_blocks = [(slice(0, 2), slice(0, 2)), (slice(2, 4), slice(1, 4))]

    def __init__(self):
        inputs = keras.Input((16, 16, 3))
        regions = keras.layers.AveragePooling2D(4, name="regions")(inputs)
        logits = keras.layers.Dense(3, name="logits")(
            keras.layers.GlobalAveragePooling2D()(regions))
        self.keras_model = keras.Model(inputs, logits)
        self.keras_model.get_layer("logits").set_weights([0.1 * np.eye(3, dtype=np.float32),
                                                          np.zeros(3, np.float32)])

    def image(self, swapped=False):
        image = np.zeros((16, 16, 3), np.uint8)
        for colour, (rows, columns) in enumerate(self.region_blocks[::-1] if swapped
                                                 else self.region_blocks):
            image[rows.start * 4:rows.stop * 4, columns.start * 4:columns.stop * 4,
                  colour] = 255
        return image

    @staticmethod
    def probabilities(masked):
        logits = 0.1 * masked.mean(axis=(0, 1))
        return np.exp(logits) / np.exp(logits).sum()


def test_scorecam_on_indicator_channels_weights_each_region_by_its_class_score():
    regions = Regions()
    with KerasModel(regions.keras_model, layer="regions") as model:
        images = [regions.image(), regions.image(swapped=True)]
        calls = []
        probabilities = model.class_probabilities

        def recorded(batch):
            calls.append(len(batch))
            return probabilities(batch)
        model.class_probabilities = recorded
        explanations = ScoreCAM(model, batch_size=3)(images, [[0, 1], [0]])
        # Two images x two varying channels (colour 2 is flat: no forward pass), three a
        # time: the masked inputs of both images share the network's batches.
        assert calls == [3, 1]
        for explanation in explanations:
            image = images[explanation.image_index].astype(np.float64)
            activation = image.reshape(4, 4, 4, 4, 3).mean(axis=(1, 3))  # block means
            weights = []
            for colour in range(3):
                channel = activation[:, :, colour]
                if channel.max() == channel.min():
                    weights.append(0.0)
                    continue
                mask = bilinear(channel, 16)
                mask = (mask - mask.min()) / (mask.max() - mask.min())
                weights.append(regions.probabilities(image * mask[..., None])
                               [explanation.class_id])
            expected = scaled_to_max_1((activation * weights).sum(axis=2))
            np.testing.assert_allclose(explanation.heatmap, expected, atol=1e-5)
            # The class's own region holds the peak, the other region less.
            own = activation[:, :, explanation.class_id] > 0
            other = activation[:, :, 1 - explanation.class_id] > 0
            assert explanation.heatmap[own].min() == pytest.approx(1.0)
            assert explanation.heatmap[other].max() < 0.5


def test_one_pass_methods_share_one_base_and_are_called_alike(tiny):
    _, model, images = tiny
    for name in ("cam", "gradcam", "gradcampp", "layercam", "scorecam", "random"):
        assert issubclass(METHODS[name], ActivationMap), name
    for method in (GradCAM, GradCAMPlusPlus, LayerCAM, ScoreCAM, RandomMap):
        explanations = method(model)(images[0], classes=1)
        assert [(e.image_index, e.class_id) for e in explanations] == [(0, 1)]
        assert explanations[0].heatmap.max() == pytest.approx(1.0)
        assert method(model)([images[0]], classes=[[]]) == []  # nothing asked, nothing made
    with pytest.raises(ConfigError, match="ScoreCAM's batch_size must be at least 1"):
        ScoreCAM(model, batch_size=0)


def test_l2caf_records_its_loss_at_every_check_and_ends_with_the_final_loss(tiny):
    _, model, images = tiny
    settings = {"max_iters": 12, "check_every": 5, "tolerance": 0.0}
    explanations = L2CAF(model, settings=settings)(images[:2], 1)
    for explanation in explanations:
        # Checks after 0, 5 and 10 updates; the last iteration (11 updates made) is no check.
        assert [updates for updates, _ in explanation.loss_history] == [0, 5, 10, 11]
        assert explanation.loss_history[-1][1] == explanation.loss
        assert explanation.iterations == 12
    # Any loss is within a huge tolerance of the first check's reference (32767): every row
    # stops at its first check, after one update, with that check's loss as its last.
    settled = L2CAF(model, settings=dict(settings, tolerance=1e9))(images[:2], 1)
    for explanation, longer in zip(settled, explanations):
        assert explanation.iterations == 1
        assert explanation.loss_history == [[0, explanation.loss]] == [longer.loss_history[0]]


def test_explanations_carry_the_class_name_and_probability_a_title_needs(tiny):
    network, _, images = tiny
    names = ["circle", "square", "triangle"]
    with KerasModel(network.keras_model, layer="features", preprocess="tf", rows=2,
                    labels=names) as model:
        probabilities = model.predict(images).probabilities
        for method in (L2CAF(model, settings={"max_iters": 3}), GradCAM(model)):
            explanations = method(images, [[2, 0], [1], [1]])
            assert [(e.class_id, e.class_name) for e in explanations] == [
                (2, "triangle"), (0, "circle"), (1, "square"), (1, "square")]
            for explanation in explanations:
                assert explanation.probability == pytest.approx(
                    float(probabilities[explanation.image_index, explanation.class_id]))
                assert 0 < explanation.probability < 1
    # Without labels: no name, the probability all the same; the old positional fields stay.
    unnamed = GradCAM(tiny[1])(images[:1], 1)[0]
    assert unnamed.class_name is None and unnamed.probability > 0
    image_index, class_id, heatmap, loss, iterations, seconds, history = unnamed[:7]
    assert (image_index, class_id, loss, iterations, history) == (0, 1, None, 0, None)
    with pytest.raises(ConfigError, match="labels: model .* has 3 classes, and 2 label names "
                                          "were given"):
        KerasModel(network.keras_model, labels=["circle", "square"])


def test_a_models_rows_may_be_given_as_batch_size_but_not_as_two_numbers(tiny):
    network = tiny[0]
    for arguments, rows in (({}, 1), ({"rows": 3}, 3), ({"batch_size": 3}, 3),
                            ({"rows": 4, "batch_size": 4}, 4)):
        with KerasModel(network.keras_model, **arguments) as model:
            assert model.rows == rows, arguments
    for arguments, message in (
            ({"rows": 2, "batch_size": 3}, r"rows \(2\) and batch_size \(3\) are two names of "
                                           r"one number, .*: give one of them"),
            ({"batch_size": 0}, "batch_size must be at least 1, got 0"),
            ({"rows": 0}, "rows must be at least 1, got 0")):
        with pytest.raises(ConfigError, match=message):
            KerasModel(network.keras_model, **arguments)


@pytest.fixture(scope="module")
def demo_with_labels():
    """The shipped demo model (rows 2), its label file's names, and three held-out synthetic
    images, one of them not square."""
    with open(DEMO_LABELS) as stream:
        names = [line.strip() for line in stream if line.strip()]
    images = [image for image, _ in generate_examples(3, 96, HELD_OUT_SEED, 0.0)]
    images[2] = images[2][:, :60]
    with Model.load("demo_densenet", DEMO_CHECKPOINT, rows=2, labels=DEMO_LABELS) as model:
        yield model, names, images


def test_demo_explanations_name_the_class_from_the_labels_file_with_its_softmax(
        demo_with_labels):
    """On the slim demo model with a labels file, L2-CAF's and Grad-CAM's explanations carry
    the file's name of their class id and that class's softmax probability, computed here
    from the network's logits on the prepared images."""
    model, names, images = demo_with_labels
    assert model.network.label_offset == 0  # class id i is output i
    logits = model.predict(model.prepare(images)).outputs.astype(np.float64)
    exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
    softmax = exponentials / exponentials.sum(axis=1, keepdims=True)
    classes = [[1, 4], [0], [5]]
    for method in (L2CAF(model, settings={"max_iters": 3}), GradCAM(model)):
        explanations = method(images, classes)
        assert [(e.image_index, e.class_id) for e in explanations] == [
            (0, 1), (0, 4), (1, 0), (2, 5)]
        for explanation in explanations:
            assert explanation.class_name == names[explanation.class_id]
            assert explanation.probability == pytest.approx(
                softmax[explanation.image_index, explanation.class_id], rel=1e-4, abs=1e-6)
    # The probabilities differ from class to class: not one number copied to every field.
    assert len({round(e.probability, 6) for e in explanations}) == 4


def test_class_oblivious_explanations_have_no_class_name_or_probability(demo_with_labels):
    """cls_oblivious explains no class: class_id, class_name and probability are all None,
    even though the model has labels."""
    model, _, images = demo_with_labels
    explanations = L2CAF(model, "cls_oblivious", settings={"max_iters": 3})(images)
    assert len(explanations) == len(images)
    for explanation in explanations:
        assert (explanation.class_id, explanation.class_name, explanation.probability) == \
            (None, None, None)
        assert np.all(np.isfinite(explanation.heatmap))
