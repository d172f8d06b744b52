"""The settings of the optimised methods: L2-CAF's (with its two presets, one per official
implementation) and Opti-CAM's defaults. No TensorFlow here: the configuration checks them.

L2-CAF's presets, what each sets (a key given explicitly wins over its preset):

    original  the authors' TensorFlow 1 code, the paper's (github ahmdtaha/
              constrained_attention_filter): Adam; the filter drawn from N(0, 1) before
              every class (seeded here by the image key and the class); learning rate 0.5
              decaying linearly to 0 over max_iters = 1000; a check every 50 iterations. Its
              tolerance is the script's: 1e-6 (slow), 1e-4 (fast); the library's is 1e-6.
    pytorch   the authors' PyTorch port (github ahmdtaha/l2_caf_pytorch: class_specific.py,
              class_oblivious.py, constraint_attention_filter.py, utils/lr_utils.py): plain
              SGD; the filter started at ones; learning rate 0.5 (the scripts' __main__;
              configs/base_config.py's 0.1 is not what they run) decaying linearly to 1e-5
              over 1000 iterations; tolerance 1e-6 checked every 50 (its class_oblivious.py
              stops at 500 iterations: max_iters 500 reproduces it).

Both use the same losses (l2caf.heads) and the same final heatmap, |f| / || |f| || for the
l2norm filter.
"""
import dataclasses
import math
import numbers
from typing import Any, Callable, Dict, List, Mapping, Optional, Union

from l2caf.errors import ConfigError

OPTIMIZERS = ("adam", "sgd")
INITIAL_FILTERS = ("normal", "ones")
PRESETS: Dict[str, Dict[str, Any]] = {
    "original": {"optimizer": "adam", "initial_filter": "normal", "learning_rate": 0.5,
                 "end_learning_rate": 0.0, "max_iters": 1000, "check_every": 50},
    "pytorch": {"optimizer": "sgd", "initial_filter": "ones", "learning_rate": 0.5,
                "end_learning_rate": 1e-5, "max_iters": 1000, "tolerance": 1e-6,
                "check_every": 50},
}
# What no preset sets: the library's tolerance (the slow script's) and seed.
_UNSET = {"tolerance": 1e-6, "seed": 0}

# Opti-CAM's defaults: its paper's (Zhang et al., CVIU 2024: Adam, learning rate 0.1, 100
# iterations). The authors' code (github hanwei0912/OptiCAM) runs 50 iterations at 0.1 in
# generate_opticam.py; its Basic_OptCAM class defaults to 100 at 0.01.
OPTICAM_DEFAULTS: Dict[str, Any] = {"learning_rate": 0.1, "max_iters": 100}

# The methods whose heatmap comes out of an optimisation (rows optimised together, loss
# histories, GIF frames).
OPTIMIZED_METHODS = ("l2caf", "opticam")


def check_number(name: str, value: object, condition: str,
                 holds: Callable[[Any], bool]) -> float:
    """value as a float if it is a finite real number for which holds(value) is true, else a
    ConfigError: '<name> must be a finite number, <condition>, got <value>'. NaN and
    infinity pass no range check of their own (nan > 0 is false, inf > 0 true), so every
    float setting comes here."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not math.isfinite(value) or not holds(value):
        raise ConfigError("%s must be a finite number, %s, got %r" % (name, condition, value))
    return float(value)


def check_whole_number(name: str, value: object, condition: str, least: int) -> int:
    """value as an int if it is a whole number (an int, or a float such as 10.0 that is
    one) >= least, else a ConfigError: '<name> must be a whole number, <condition>, got
    <value>' ('<name> must be <condition>, got <value>' for a whole number below least).
    A string, a bool or 10.7 is refused rather than converted or truncated."""
    whole = isinstance(value, numbers.Integral) or isinstance(value, numbers.Real) and \
        math.isfinite(value) and float(value).is_integer()
    if isinstance(value, bool) or not whole:
        raise ConfigError("%s must be a whole number, %s, got %r" % (name, condition, value))
    if value < least:
        raise ConfigError("%s must be %s, got %r" % (name, condition, value))
    return int(value)


def _check_choice(name: str, value: object, choices: tuple) -> str:
    if value not in choices:
        raise ConfigError("%s must be one of %s, got %r" % (name, ", ".join(choices), value))
    return str(value)


def preset_values(method: str, preset: str) -> Dict[str, Any]:
    """The keys a run's method and preset set where the run does not give them: L2-CAF's
    preset's (PRESETS), Opti-CAM's paper values (OPTICAM_DEFAULTS), none for the others."""
    if method == "opticam":
        return dict(OPTICAM_DEFAULTS)
    return dict(PRESETS[preset]) if method == "l2caf" and preset in PRESETS else {}


@dataclasses.dataclass(frozen=True)
class Settings:
    """L2-CAF's optimisation: `optimizer` (adam: Adam as tf.compat.v1.train.AdamOptimizer;
    sgd: plain gradient descent, as torch.optim.SGD) with learning_rate decaying linearly to
    end_learning_rate over max_iters iterations; every check_every iterations a filter whose
    loss moved less than tolerance since the previous check stops (the released slow
    script's 1e-6; its fast script used 1e-4). initial_filter: normal (N(0, 1), fixed by
    seed, the image key and the class) or ones. preset: original or pytorch (PRESETS); a
    setting left out (None) is the preset's."""
    learning_rate: float = None  # type: ignore[assignment]
    end_learning_rate: float = None  # type: ignore[assignment]
    max_iters: int = None  # type: ignore[assignment]
    tolerance: float = None  # type: ignore[assignment]
    check_every: int = None  # type: ignore[assignment]
    seed: int = None  # type: ignore[assignment]
    optimizer: str = None  # type: ignore[assignment]
    initial_filter: str = None  # type: ignore[assignment]
    preset: str = "original"

    def __post_init__(self):
        # frozen: the resolved values (10 for 10.0 or numpy.int64(10)) are set through object
        preset = _check_choice("preset", self.preset, tuple(PRESETS))
        for key in self.keys():
            if getattr(self, key) is None and key != "preset":
                object.__setattr__(self, key, PRESETS[preset].get(key, _UNSET.get(key)))
        for key, least, condition in (("max_iters", 1, "at least 1"),
                                      ("check_every", 1, "at least 1"),
                                      ("seed", 0, "0 or more")):
            object.__setattr__(self, key, check_whole_number(key, getattr(self, key),
                                                             condition, least))
        check_number("learning_rate", self.learning_rate, "positive", lambda x: x > 0)
        check_number("end_learning_rate", self.end_learning_rate, "0 or more", lambda x: x >= 0)
        check_number("tolerance", self.tolerance, "0 or more", lambda x: x >= 0)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("initial_filter", self.initial_filter, INITIAL_FILTERS)

    @classmethod
    def keys(cls) -> List[str]:
        """The settings' names, in order."""
        return [field.name for field in dataclasses.fields(cls)]

    @classmethod
    def of(cls, values: Optional[Union["Settings", Mapping[str, Any]]] = None,
           preset: Optional[str] = None) -> "Settings":
        """Settings from None (the preset's), Settings, or a mapping of some of the keys
        (another key is an error naming it), with `preset` (None: the mapping's, else
        original); the mapping's keys win over the preset's. A preset that contradicts the
        one of `values` is an error."""
        if isinstance(values, cls):
            if preset is not None and preset != values.preset:
                raise ConfigError("the settings have preset %s, and preset %s was given: give "
                                  "the preset once" % (values.preset, preset))
            return values
        values = dict(values or {})
        unknown = sorted(set(values) - set(cls.keys()))
        if unknown:
            raise ConfigError("unknown setting(s) %s; the settings are %s"
                              % (", ".join(unknown), ", ".join(cls.keys())))
        if preset is not None:
            if values.get("preset", preset) != preset:
                raise ConfigError("the settings have preset %s, and preset %s was given: give "
                                  "the preset once" % (values["preset"], preset))
            values["preset"] = preset
        return cls(**values)
