"""The model a run's config names (a slim network restored from its checkpoint, or a Keras
model), the configured method on it, and the layers where its filter can go. TensorFlow is
imported only when a model is built, so that a config is checked at once.
"""
from typing import TYPE_CHECKING, List, Tuple, Union

from l2caf import networks
from l2caf.errors import ConfigError
from l2caf.files import sha256
from l2caf.settings import Settings

if TYPE_CHECKING:  # (TensorFlow, for the models and methods)
    from l2caf.config import Config
    from l2caf.methods import Explainer
    from l2caf.models.base import ExplainableModel
    from l2caf.models.keras import KerasModel
    from l2caf.models.slim import Model


class SlimSource(object):
    """A slim network of l2caf.networks, restored from its checkpoint."""

    def __init__(self, config: "Config"):
        from l2caf.models import checkpoints, slim  # TensorFlow, once the config is right
        network = self.network = networks.get_network(config.network)
        if config.preprocess != "none" or config.image_size or config.output or \
                config.trust_model:
            raise ConfigError("preprocess, image_size, output and trust_model are for network "
                              "keras; %s has its own "
                              "preprocessing and takes %dx%d images"
                              % (network.name, network.image_size, network.image_size))
        self.num_classes = network.num_classes or slim.checkpoint_num_classes(
            network, config.checkpoint)
        self.num_labels = self.num_classes - network.label_offset
        self.image_size = network.image_size
        self.layer = config.layer or network.last_conv
        self.fingerprint = checkpoints.fingerprint(config.checkpoint, network.name)

    def _model(self, config, rows):
        from l2caf.models.slim import Model
        return Model(self.network, self.num_classes, config.layer, config.filter_type, rows,
                     config.explain, config.gpu)

    def explainer(self, config: "Config", rows: int) -> "Explainer":
        """The configured method on the restored network with a filter of `rows` rows."""
        model = self._model(config, rows)
        explainer = configured_method(model, config)  # CAM checks the network first
        model.restore(config.checkpoint)
        return explainer

    def model(self, config: "Config") -> "Model":
        """The network restored from its checkpoint (its filter, of one row, stays closed):
        for the forward passes of l2caf.evaluation.faithfulness."""
        model = self._model(config, 1)
        model.restore(config.checkpoint)
        return model

    @staticmethod
    def layers(config: "Config") -> Tuple[List[Tuple[str, Tuple[int, int]]], str]:
        """([(layer, (H, W))] where a filter can go, the default layer) of the network."""
        from l2caf.models.slim import list_layers
        network = networks.get_network(config.network)
        return list_layers(network), network.last_conv


class KerasSource(object):
    """A Keras model saved in a file or folder, or a keras.applications network by name
    (config.checkpoint)."""

    def __init__(self, config: "Config"):
        self.keras_model, self.preprocess, self.own_size = self._load(config)
        with self._model(config, 1) as probe:  # checks the layer, sizes, output and head
            self.num_classes = self.num_labels = probe.num_classes
            self.image_size, self.layer = probe.image_size, probe.layer
            if not isinstance(self.image_size, int):
                self.image_size = list(self.image_size)  # (height, width), as YAML keeps it
        from l2caf.models import keras_applications
        self.fingerprint = keras_applications.weights_sha256(self.keras_model) \
            if keras_applications.is_application(config.checkpoint) \
            else sha256(config.checkpoint)

    @staticmethod
    def _load(config, weights="imagenet"):
        """(the Keras model, its preprocessing, its image size: 0 for the model's own) of
        config.checkpoint."""
        from l2caf.models import keras_applications, keras_loading
        if keras_applications.is_application(config.checkpoint):
            return keras_applications.build(config.checkpoint, config.preprocess, weights)
        return keras_loading.load_keras_model(config.checkpoint, config.trust_model), \
            config.preprocess, 0

    def _model(self, config, rows):
        from l2caf.models.keras import KerasModel
        return KerasModel(self.keras_model, config.layer, config.filter_type, rows,
                          config.explain, self.preprocess, config.image_size or self.own_size,
                          config.gpu, output=config.output)

    def explainer(self, config: "Config", rows: int) -> "Explainer":
        """The configured method on the model with a filter of `rows` rows."""
        return configured_method(self._model(config, rows), config)

    def model(self, config: "Config") -> "KerasModel":
        """The model (its filter, of one row, stays closed): for l2caf.evaluation.faithfulness."""
        return self._model(config, 1)

    @classmethod
    def layers(cls, config: "Config") -> Tuple[List[Tuple[str, Tuple[int, int], str]], str]:
        """([(layer, (H, W), what)] where a filter can go, the default layer) of the model (see
        l2caf.models.keras.filter_layers)."""
        from l2caf.models.keras import filter_layers
        loaded, _, own_size = cls._load(config, weights=None)  # the layers need no weights
        return filter_layers(loaded, config.image_size or own_size, config.output)


def model_source(config: "Config") -> Union[SlimSource, KerasSource]:
    """The SlimSource or KerasSource of a run's config (checked: ConfigError, CheckpointError)."""
    return (KerasSource if config.network == "keras" else SlimSource)(config)


def configured_method(model: "ExplainableModel", config: "Config") -> "Explainer":
    """The configured method on `model`."""
    from l2caf.methods import METHODS
    if config.method == "random":
        return METHODS["random"](model, config.seed)
    if config.method == "scorecam":
        return METHODS["scorecam"](model, progress=config.progress)
    if config.method == "opticam":
        return METHODS["opticam"](model, config.learning_rate, config.max_iters)
    if config.method != "l2caf":
        return METHODS[config.method](model)
    # The config holds the preset's values already (l2caf.config.from_arguments): every key.
    settings = {key: config[key] for key in Settings.keys()}
    return METHODS["l2caf"](model, config.caf_variant, settings, config.cache_activation)


def layer_lines(config: "Config") -> List[str]:
    """--list_layers: a line per layer where a filter can go, its map size (and, for a Keras
    model's token maps, "tokens"), the default marked."""
    layers, default = (KerasSource if config.network == "keras" else SlimSource).layers(config)
    width = max(len(name) for name, *_ in layers)
    lines = []
    for name, (height, map_width), *what in layers:  # what: Keras models only
        lines.append("%-*s %dx%d%s%s" % (width, name, height, map_width,
                                         "".join(" " + text for text in what if text),
                                         "  (default: the last conv layer)"
                                         if name == default else ""))
    return lines
