"""Run configuration: YAML files in configs/, every key overridable as --key value."""
import argparse
import collections
import os

import yaml

from l2caf import networks
from l2caf.errors import ConfigError


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


_PARSERS = {"str": str, "int": int, "float": float, "bool": _parse_bool, "int_list": _parse_int_list}
_TYPE_WORDS = {"str": "a string", "int": "an integer", "float": "a number",
               "bool": "true or false", "int_list": "comma-separated integers (e.g. 207,323)"}

Option = collections.namedtuple("Option", ["type", "default", "help", "choices"])


def _option(kind, default, help_text, choices=None):
    return Option(kind, default, help_text, choices)


# Keys of every visualiser. Paths are relative to the working directory.
COMMON_OPTIONS = collections.OrderedDict([
    ("network", _option("str", "densenet161", "network: %s" % ", ".join(networks.NETWORKS))),
    ("checkpoint", _option("str", "checkpoints/tf-densenet161.ckpt",
                           "checkpoint to restore (file, V2 prefix or folder)")),
    ("labels", _option("str", "", "class-name list, one per line (empty: ImageNet's 1000)")),
    ("images", _option("str", "input_imgs",
                       "an image, a folder of images, or a text file listing image paths")),
    ("output_dir", _option("str", "outputs", "folder for heatmaps, overlays, results.jsonl")),
    ("layer", _option("str", "", "end point whose output is filtered (empty: last conv)")),
    ("filter_type", _option("str", "l2norm", "filter constraint", ("l2norm", "softmax", "gauss"))),
    ("caf_variant", _option("str", "cls_specific", "loss",
                            ("cls_specific", "cls_oblivious"))),
    ("explain", _option("str", "logits", "output explained by cls_oblivious",
                        ("logits", "embedding"))),
    ("learning_rate", _option("float", 0.5, "Adam's initial learning rate")),
    ("end_learning_rate", _option("float", 0.0, "learning rate reached at max_iters (linear)")),
    ("max_iters", _option("int", 1000, "iterations at most per filter")),
    ("tolerance", _option("float", 1e-6,
                          "stop when the loss moved less than this over check_every iterations")),
    ("check_every", _option("int", 50, "iterations between convergence checks and GIF frames")),
    ("top_k", _option("int", 1, "explain the top-k predicted classes (cls_specific)")),
    ("classes", _option("int_list", [], "explicit class ids to explain, e.g. 207,323")),
    ("seed", _option("int", 0, "seed of the filter initialisation")),
    ("gpu", _option("int", 0, "GPU index to use (-1: CPU); CPU when there is no GPU")),
    ("save_gif", _option("bool", False, "also write a GIF of the heatmap every check_every")),
    ("save_overlays", _option("bool", True, "write an overlay PNG per heatmap")),
    ("cache_activation", _option("bool", True,
                                 "compute the activation before the filter once per image "
                                 "(false: the naive path, whole network every iteration)")),
    ("overlay_alpha", _option("float", 0.6, "heatmap opacity in overlays")),
])

# Keys of the fast, batched visualiser (scripts/visualize_attention_fast.py): the common keys,
# with the released fast script's tolerance and no overlays by default, plus the method and
# the sweep keys.
FAST_OPTIONS = collections.OrderedDict(COMMON_OPTIONS)
FAST_OPTIONS.update([
    ("method", _option("str", "l2caf", "explanation method: l2caf, or a one-pass baseline: "
                                       "cam (class activation mapping, networks with a linear "
                                       "head only) or gradcam (Grad-CAM, any layer)",
                       ("l2caf", "cam", "gradcam"))),
    ("tolerance", COMMON_OPTIONS["tolerance"]._replace(default=1e-4)),
    ("save_overlays", COMMON_OPTIONS["save_overlays"]._replace(default=False)),
    ("annotations", _option("str", "",
                            "folder of bounding-box XMLs, one per image named after it "
                            "(ILSVRC layout); gives the ground truth (empty: none, except "
                            "ImageNet's validation labels for ILSVRC2012_val_* names)")),
    ("explain_gt", _option("bool", False,
                           "also explain the ground-truth classes, when known (cls_specific; "
                           "for GT-known localisation)")),
    ("batch_size", _option("int", 64, "images optimised together (filter rows: batch_size "
                                      "times the classes per image)")),
    ("heatmap_format", _option("str", "npz", "npz: one compressed file per batch, the "
                                             "results' heatmap field is FILE.npz:KEY; npy: one "
                                             "file per heatmap", ("npz", "npy"))),
    ("workers", _option("int", 4, "threads decoding and resizing the next batch's images")),
    ("limit", _option("int", 0, "only the first N images, in sorted order (0: all)")),
    ("shard", _option("str", "0/1", "INDEX/COUNT: this run takes every COUNT-th image from "
                                    "the INDEX-th (0/4 ... 3/4); its output files name the "
                                    "shard; join them with --merge")),
])


class Config(collections.OrderedDict):
    """Effective configuration: attribute access to the keys."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def save(self, path):
        with open(path, "w") as stream:
            yaml.safe_dump(dict(self), stream, sort_keys=False)


def _convert(options, key, value, source, shown_key=None):
    option = options[key]
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


def read_yaml(path, options):
    """The keys of a YAML config file, checked against `options`."""
    if not os.path.isfile(path):
        raise ConfigError("config file %s does not exist; the configs/ folder has examples" % path)
    try:
        with open(path) as stream:
            data = yaml.safe_load(stream) or {}
    except yaml.YAMLError as error:
        raise ConfigError("config file %s is not valid YAML: %s" % (path, error)) from None
    if not isinstance(data, dict):
        raise ConfigError("config file %s must hold key: value pairs" % path)
    unknown = sorted(set(data) - set(options))
    if unknown:
        raise ConfigError("config file %s: unknown key(s) %s; valid keys: %s"
                          % (path, ", ".join(unknown), ", ".join(options)))
    return {key: _convert(options, key, value, path) for key, value in data.items()}


def add_arguments(parser, options):
    """Adds --config, --list_layers and one --key option per config key to `parser`."""
    parser.add_argument("--config", help="YAML configuration file (keys as below)")
    parser.add_argument("--list_layers", action="store_true",
                        help="print the network's filter insertion points and exit")
    group = parser.add_argument_group("configuration keys (override the config file)")
    for key, option in options.items():
        details = option.help
        if option.choices:
            details += " {%s}" % ",".join(option.choices)
        default = ",".join(map(str, option.default)) if isinstance(option.default, list) \
            else option.default
        group.add_argument("--" + key, default=None, metavar=option.type.upper(),
                           help="%s (default: %s)" % (details, default))


def from_arguments(args, options):
    """Effective config: defaults, then the --config file, then the command line."""
    values = collections.OrderedDict((key, option.default) for key, option in options.items())
    if args.config:
        values.update(read_yaml(args.config, options))
    for key in options:
        given = getattr(args, key)
        if given is not None:
            values[key] = _convert(options, key, given, "command line", "--" + key)
    return Config(values)


def parse(description, options, argv=None):
    """Parses a script's command line into (Config, argparse namespace)."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, options)
    args = parser.parse_args(argv)
    return from_arguments(args, options), args
