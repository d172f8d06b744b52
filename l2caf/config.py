"""Run configuration: YAML files in configs/, every key overridable as --key value.

Both visualisers take the same keys; they differ only in defaults (FAST_DEFAULTS). No
TensorFlow here: a mistake in a config is reported at once.
"""
import argparse
import collections
import io
import os
import sys
import textwrap

import yaml

from l2caf import networks
from l2caf.errors import ConfigError
from l2caf.images import size_pair
from l2caf.settings import OPTIMIZED_METHODS, Settings, check_number, preset_values


def _parse_bool(text):
    lowered = str(text).strip().lower()
    if lowered in ("true", "yes", "1", "on"):
        return True
    if lowered in ("false", "no", "0", "off"):
        return False
    raise ValueError("expected true or false")


def _parse_int_list(text):
    if isinstance(text, (list, tuple)):
        return [int(item) for item in text]
    text = str(text).strip()
    return [int(item) for item in text.split(",") if item.strip()] if text else []


def _parse_size(text):
    """An image size: 0 (a model's own), one number (a square) or HEIGHTxWIDTH ("64x48"),
    as a config holds it: an int, or "HxW" when height and width differ."""
    if isinstance(text, bool) or isinstance(text, float) and not text.is_integer():
        raise ValueError("not a size")
    height, width = size_pair(str(text))
    if "x" in str(text).lower() and (height < 1 or width < 1):
        raise ValueError("not a size")
    return height if height == width else "%dx%d" % (height, width)


def _parse_int(text):
    if isinstance(text, float) and not text.is_integer() or isinstance(text, bool):
        raise ValueError("not an integer")
    return int(text)


_PARSERS = {"str": str, "int": _parse_int, "float": float, "bool": _parse_bool,
            "int_list": _parse_int_list, "size": _parse_size}
_TYPE_WORDS = {"str": "a string", "int": "an integer", "float": "a number",
               "bool": "true or false", "int_list": "comma-separated integers (e.g. 207,323)",
               "size": "a size: one number or HEIGHTxWIDTH (e.g. 224 or 224x160)"}

Option = collections.namedtuple("Option", ["type", "default", "help", "choices"])


def _option(kind, default, help_text, choices=None):
    return Option(kind, default, help_text, choices)


# Every key, with the slow visualiser's defaults. Paths are relative to the working directory.
OPTIONS = collections.OrderedDict([
    ("network", _option("str", "densenet161", "network: %s, or keras (any Keras model)"
                        % ", ".join(networks.NETWORKS))),
    ("checkpoint", _option("str", "checkpoints/tf-densenet161.ckpt",
                           "checkpoint to restore (file, V2 prefix or folder); for network "
                           "keras the saved model: a .keras or .h5 file or a SavedModel "
                           "folder, or keras.applications.NAME (e.g. "
                           "keras.applications.ResNet50: its ImageNet weights)")),
    ("preprocess", _option("str", "none", "network keras: what the model expects of RGB "
                                          "images 0..255: none (as they are), tf (-1..1), "
                                          "caffe (BGR minus the ImageNet means), torch (0..1, "
                                          "ImageNet mean and std); keras.applications models "
                                          "take their own",
                           ("none", "tf", "caffe", "torch"))),
    ("image_size", _option("size", 0, "network keras: the model's input size, one number or "
                                      "HEIGHTxWIDTH (e.g. 224x160); 0: the model's own (a "
                                      "model without a fixed size needs one)")),
    ("output", _option("str", "", "network keras: the explained output of a model with "
                                  "several, by name or index (empty: the only one)")),
    ("trust_model", _option("bool", False, "network keras: load a saved model whose "
                                           "configuration would run code (a Lambda layer, "
                                           "see docs/keras.md), which loading runs; only for "
                                           "models from a source you trust. Given on the "
                                           "command line only: a config file cannot set it")),
    ("labels", _option("str", "", "class-name list, one per line (empty: ImageNet's names for "
                                  "1000 classes, else class_0, class_1, ...)")),
    ("images", _option("str", "input_imgs", "an image, a folder of images, or a text file "
                                            "(.txt, .lst, .list) listing image paths, one per "
                                            "line; a relative path in a list resolves against "
                                            "the list file's folder, not the current one")),
    ("annotations", _option("str", "", "folder of bounding-box XMLs named after the images "
                                       "(ILSVRC layout): the ground truth (empty: none, except "
                                       "ImageNet's validation labels for ILSVRC2012_val_* "
                                       "names)")),
    ("output_dir", _option("str", "outputs", "folder for the results (see the README)")),
    ("layer", _option("str", "", "end point whose map is filtered (empty: the last conv "
                                 "layer; --list_layers shows them)")),
    ("filter_type", _option("str", "l2norm", "filter constraint (gauss: odd square maps only)",
                            ("l2norm", "softmax", "gauss"))),
    ("caf_variant", _option("str", "cls_specific", "loss: one run per class, or keep the "
                                                   "whole output", ("cls_specific",
                                                                    "cls_oblivious"))),
    ("explain", _option("str", "logits", "outputs cls_oblivious keeps: the logits, or the "
                                         "pooled features (retrieval networks)",
                        ("logits", "embedding"))),
    ("method", _option("str", "l2caf", "explanation method: l2caf; opticam (Opti-CAM: "
                                       "channel weights optimised with Adam so that the map "
                                       "they make, as a mask on the image, raises the class's "
                                       "logit; one forward and backward pass of the network "
                                       "per iteration; its own learning_rate 0.1 and "
                                       "max_iters 100 unless given); or a one-pass baseline: "
                                       "cam (class activation mapping; networks with a linear "
                                       "head, last conv layer), gradcam (Grad-CAM), gradcampp "
                                       "(Grad-CAM++, the paper's equation), layercam "
                                       "(LayerCAM), scorecam (Score-CAM: one forward pass per "
                                       "channel of the layer), all at any layer, or random (a "
                                       "seeded uniform map per image and class: the floor of "
                                       "every metric)",
                       ("l2caf", "opticam", "cam", "gradcam", "gradcampp", "layercam",
                        "scorecam", "random"))),
    ("preset", _option("str", "original", "L2-CAF's optimisation as one of the authors' two "
                                          "implementations: original (their TensorFlow 1 code, "
                                          "the paper's: optimizer adam, initial_filter normal, "
                                          "learning_rate 0.5 decaying to end_learning_rate 0, "
                                          "the visualiser's tolerance) or pytorch (their "
                                          "PyTorch port: optimizer sgd, initial_filter ones, "
                                          "learning_rate 0.5 decaying to 1e-5, tolerance "
                                          "1e-6); both max_iters 1000, check_every 50. A key "
                                          "given in the config file or on the command line "
                                          "wins over the preset",
                       ("original", "pytorch"))),
    ("optimizer", _option("str", "adam", "how the filter moves: adam (Adam, as TensorFlow 1's "
                                         "AdamOptimizer) or sgd (plain gradient descent, as "
                                         "torch.optim.SGD); default: the preset's",
                          ("adam", "sgd"))),
    ("initial_filter", _option("str", "normal", "the filter's start before each class: normal "
                                                "(drawn from N(0, 1), seeded by seed, the "
                                                "image name and the class) or ones; default: "
                                                "the preset's", ("normal", "ones"))),
    ("learning_rate", _option("float", 0.5, "initial learning rate (opticam: 0.1, constant, "
                                            "unless given)")),
    ("end_learning_rate", _option("float", 0.0, "learning rate reached at max_iters (linear; "
                                                "l2caf)")),
    ("max_iters", _option("int", 1000, "iterations at most per filter (opticam: 100 unless "
                                       "given)")),
    ("tolerance", _option("float", 1e-6, "a filter stops when its loss moved less than this "
                                         "since the previous check")),
    ("check_every", _option("int", 50, "iterations between convergence checks (and GIF "
                                       "frames); opticam checks every max_iters / 10, as its "
                                       "authors' code")),
    ("seed", _option("int", 0, "seed of the filter initialisation, or of method random's "
                               "maps (with the image name and "
                               "class)")),
    ("top_k", _option("int", 1, "explain the k most probable classes (cls_specific)")),
    ("classes", _option("int_list", [], "explicit class ids to explain, e.g. 207,323 "
                                        "(instead of top_k)")),
    ("explain_gt", _option("bool", False, "also explain the ground-truth classes, when known "
                                          "(cls_specific; for GT-known localisation)")),
    ("cache_activation", _option("bool", True, "compute the activation before the filter once "
                                               "per image (false: the whole network every "
                                               "iteration, as the original; same results)")),
    ("save_overlays", _option("bool", True, "write an overlay PNG per heatmap")),
    ("save_gif", _option("bool", False, "also write a GIF of the heatmap at every check")),
    ("overlay_alpha", _option("float", 0.6, "heatmap opacity in overlays and GIFs, 0..1")),
    ("heatmap_format", _option("str", "npy", "npy: one file per heatmap; npz: one compressed "
                                             "file per batch (the results' heatmap field is "
                                             "FILE.npz:KEY)", ("npy", "npz"))),
    ("batch_size", _option("int", 1, "images explained together (filter rows: batch_size "
                                     "times the classes per image)")),
    ("workers", _option("int", 4, "threads decoding and resizing the next batch's images")),
    ("limit", _option("int", 0, "only the first N images, in sorted order (0: all)")),
    ("shard", _option("str", "0/1", "INDEX/COUNT: this run takes every COUNT-th image from the "
                                    "INDEX-th (0/4 ... 3/4), into its own files; join them "
                                    "with --merge. auto: from a Slurm job array "
                                    "(SLURM_ARRAY_TASK_ID, _MIN and _COUNT)")),
    ("gpu", _option("int", 0, "GPU index (-1: the CPU); the CPU when there is no GPU")),
    ("progress", _option("bool", True, "show progress bars")),
])

# The fast visualiser's defaults: batches, the released fast script's tolerance, no pictures.
FAST_DEFAULTS = {"batch_size": 64, "tolerance": 1e-4, "save_overlays": False,
                 "heatmap_format": "npz"}

# Keys that cannot change a run's results: they may differ between the runs that fill one
# output folder. Every other key is part of the folder's identity; the checkpoint and the
# label list count by their contents (a run folder's made_with), not by their paths.
FREE_KEYS = ("output_dir", "checkpoint", "labels", "cache_activation", "batch_size", "workers",
             "limit", "shard", "gpu", "progress", "trust_model")

# The section of a run folder's config.yaml with what its results depend on beyond the keys
# (written by the run; ignored when the file is read as a config).
MADE_WITH = "made_with"


def options(defaults=None):
    """OPTIONS with some defaults replaced."""
    replaced = collections.OrderedDict(OPTIONS)
    for key, default in (defaults or {}).items():
        replaced[key] = replaced[key]._replace(default=default)
    return replaced


class Config(collections.OrderedDict):
    """Effective configuration: attribute access to the keys."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def defaults(option_table=OPTIONS):
    return Config((key, option.default) for key, option in option_table.items())


def _convert(option_table, key, value, source, shown_key=None):
    option = option_table[key]
    shown_key = shown_key or key
    try:
        converted = _PARSERS[option.type](value)
    except (TypeError, ValueError):
        raise ConfigError("%s: %s must be %s, got %r"
                          % (source, shown_key, _TYPE_WORDS[option.type], value)) from None
    if option.choices and converted not in option.choices:
        raise ConfigError("%s: %s must be one of %s, got %r"
                          % (source, shown_key, ", ".join(option.choices), value))
    return converted


# What a config file may be: configs are a few kilobytes of key: value pairs, so the limits
# refuse only what an attack needs (docs/configuration.md): an alias bomb (a few lines whose
# aliases expand to gigabytes), a nesting deep enough to exhaust Python's recursion, a file
# so large that its nodes exhaust memory.
YAML_MAX_BYTES = 1024 * 1024
YAML_MAX_DEPTH = 10


class YAMLLimitError(yaml.YAMLError):
    """A YAML document that no config needs to be: anchors or aliases, or nesting deeper
    than YAML_MAX_DEPTH. problem: what; line: where (1-based)."""

    def __init__(self, problem, mark):
        super().__init__(problem)
        self.problem, self.line = problem, mark.line + 1


class ConfigLoader(yaml.SafeLoader):
    """yaml.SafeLoader without anchors and aliases (refused before any alias is expanded)
    and with at most YAML_MAX_DEPTH levels of nesting (refused as the parser gets there,
    before it reads deeper)."""

    def __init__(self, stream):
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise YAMLLimitError("YAML anchors and aliases (&name, *name) are not allowed in a "
                                 "config; write each value out", event.start_mark)
        if self.depth >= YAML_MAX_DEPTH:
            raise YAMLLimitError("nesting deeper than %d levels; a config is key: value pairs"
                                 % YAML_MAX_DEPTH, event.start_mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def load_yaml(path):
    """The document of the YAML file at path, read with ConfigLoader (None for an empty
    one); ConfigError naming the file for a file over YAML_MAX_BYTES, anchors, aliases,
    too deep a nesting, or a file that is not YAML text."""
    try:
        with open(path, "rb") as stream:
            raw = stream.read(YAML_MAX_BYTES + 1)
        if len(raw) > YAML_MAX_BYTES:
            raise ConfigError("config file %s is over %d MiB; a config is a few kilobytes of "
                              "key: value pairs" % (path, YAML_MAX_BYTES // 2 ** 20))
        stream = io.BytesIO(raw)  # UTF-8 or UTF-16, as YAML allows
        stream.name = path  # for the parser's messages
        return yaml.load(stream, Loader=ConfigLoader)
    except YAMLLimitError as error:
        raise ConfigError("config file %s, line %d: %s" % (path, error.line, error.problem)) \
            from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError("config file %s is not valid YAML: %s"
                          % (path, " ".join(str(error).split()))) from None
    except OSError as error:
        raise ConfigError("config file %s cannot be read: %s"
                          % (path, error.strerror or error)) from None


def read_yaml(path, option_table=OPTIONS):
    """The keys of a YAML config file, checked against `option_table` (a run folder's
    made_with section is left out: see read_sections)."""
    return read_sections(path, option_table)[0]


def read_sections(path, option_table=OPTIONS):
    """(the keys of a YAML config file, checked against `option_table`; its made_with
    section, which a run folder's config.yaml holds, or {})."""
    if not os.path.isfile(path):
        raise ConfigError("config file %s does not exist; the configs/ folder has examples" % path)
    data = load_yaml(path) or {}
    if not isinstance(data, dict):
        raise ConfigError("config file %s must hold key: value pairs" % path)
    made_with = data.pop(MADE_WITH, None) or {}
    unknown = sorted(set(map(str, data)) - set(option_table))
    if unknown:
        raise ConfigError("config file %s: unknown key(s) %s; valid keys: %s"
                          % (path, ", ".join(unknown), ", ".join(option_table)))
    return ({key: _convert(option_table, key, value, path) for key, value in data.items()},
            made_with if isinstance(made_with, dict) else {})


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The description as written; an option's help wrapped at spaces only, so that a name
    such as Grad-CAM++ is never split across two lines."""

    def _split_lines(self, text, width):
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


class ArgumentParser(argparse.ArgumentParser):
    """A usage error is one line on stderr (and exit status 2), not the usage text. --help
    wraps with `HelpFormatter`."""

    def __init__(self, *args, **kwargs):
        kwargs["formatter_class"] = HelpFormatter
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, "error: %s (see --help)\n" % message)


def parser(description, option_table):
    """The command line of a visualiser: --config, --list_layers, --overwrite, --merge and
    one --key option per config key."""
    result = ArgumentParser(description=description)
    result.add_argument("--config", help="YAML configuration file (keys as below; a run's "
                                         "own config.yaml repeats that run)")
    result.add_argument("--list_layers", action="store_true",
                        help="print the network's layers where a filter can go, with their "
                             "map sizes (the default marked), and exit")
    result.add_argument("--overwrite", action="store_true",
                        help="delete the results already in output_dir (made with other "
                             "settings) before the run: the run files of every shard and the "
                             "files their lines name inside output_dir, nothing else; without "
                             "it such a folder is refused")
    result.add_argument("--merge", metavar="DIR",
                        help="join the shards' results in DIR into DIR/results.jsonl and "
                             "DIR/failures.jsonl, report the images still missing, and exit "
                             "(status 1 if any)")
    group = result.add_argument_group("configuration keys (override the config file)")
    for key, option in option_table.items():
        details = option.help
        if option.choices:
            details += " {%s}" % ",".join(option.choices)
        default = ",".join(map(str, option.default)) if isinstance(option.default, list) \
            else option.default
        group.add_argument("--" + key, default=None, metavar=option.type.upper(),
                           help="%s (default: %s)" % (details, default))
    return result


# Keys that only the command line sets: trust to run a model file's code is given by whoever
# runs the command, never by a file (a config, or the config.yaml of a run folder someone
# else made). A file's value is not used; a file that sets one true is refused unless the
# command line gives the key too.
COMMAND_LINE_KEYS = ("trust_model",)


def from_arguments(args, option_table):
    """Effective config: defaults, then the --config file, then the command line
    (COMMAND_LINE_KEYS from the command line only)."""
    values = defaults(option_table)
    given_keys = set()
    if args.config:
        from_file = read_yaml(args.config, option_table)
        for key in COMMAND_LINE_KEYS:
            if from_file.pop(key, False) and getattr(args, key, None) is None:
                raise ConfigError("config file %s sets %s: true, which only the command line "
                                  "can: give --%s true to load a model whose saved "
                                  "configuration runs code (a file, such as a run folder's "
                                  "config.yaml, cannot give that trust)" % (args.config, key, key))
        values.update(from_file)
        given_keys.update(from_file)
    for key in option_table:
        given = getattr(args, key)
        if given is not None:
            values[key] = _convert(option_table, key, given, "command line", "--" + key)
            given_keys.add(key)
    # The method's and L2-CAF's preset's values, where neither the file nor the command line
    # gave the key: what they set is then in the run's config.yaml.
    values.update({key: value for key, value in preset_values(values.method, values.preset)
                   .items() if key not in given_keys})
    check(values)
    return values


def check(config):
    """Value checks that types alone do not catch (the network-dependent ones are the
    visualisation job's: l2caf.runs.visualize)."""
    for key in ("top_k", "batch_size", "workers"):
        if config[key] < 1:
            raise ConfigError("%s must be at least 1, got %d" % (key, config[key]))
    if config.limit < 0:
        raise ConfigError("limit must be 0 or more, got %d" % config.limit)
    Settings.of({key: config[key] for key in Settings.keys()})  # the optimisation's numbers
    check_number("overlay_alpha", config.overlay_alpha, "in [0, 1]", lambda x: 0 <= x <= 1)
    if any(class_id < 0 for class_id in config.classes):
        raise ConfigError("classes must be class ids (0 or more), got %s"
                          % ",".join(map(str, config.classes)))
    if config.explain == "embedding" and config.caf_variant == "cls_specific":
        raise ConfigError("explain: embedding works with caf_variant cls_oblivious only (an "
                          "embedding has no classes)")
    if config.method != "l2caf":
        if config.caf_variant != "cls_specific":
            raise ConfigError("method %s explains classes: it needs caf_variant cls_specific"
                              % config.method)
        if config.preset != "original":
            raise ConfigError("preset %s is one of L2-CAF's implementations, and method %s is "
                              "not L2-CAF; leave preset original" % (config.preset, config.method))
        if config.save_gif and config.method not in OPTIMIZED_METHODS:
            raise ConfigError("save_gif shows an optimisation, and method %s has none; set "
                              "save_gif false" % config.method)


def parse(description, option_table, argv=None):
    """(Config or None for --merge, argparse namespace) of a command line; a ConfigError
    for a wrong key or value."""
    args = parser(description, option_table).parse_args(sys.argv[1:] if argv is None else argv)
    if args.merge:
        return None, args
    return from_arguments(args, option_table), args

