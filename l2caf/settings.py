"""The settings of an L2-CAF optimisation, with the paper's defaults."""
import dataclasses
import math
import numbers
from typing import Any, Callable, List, Mapping, Optional, Union

from l2caf.errors import ConfigError


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


@dataclasses.dataclass(frozen=True)
class Settings:
    """learning_rate decays linearly to end_learning_rate over max_iters Adam iterations;
    every check_every iterations a filter whose loss moved less than tolerance since the
    previous check stops (the released slow script's 1e-6; its fast script used 1e-4).
    seed fixes each filter's initialisation (with the image key and the class)."""
    learning_rate: float = 0.5
    end_learning_rate: float = 0.0
    max_iters: int = 1000
    tolerance: float = 1e-6
    check_every: int = 50
    seed: int = 0

    def __post_init__(self):
        for key, least, condition in (("max_iters", 1, "at least 1"),
                                      ("check_every", 1, "at least 1"),
                                      ("seed", 0, "0 or more")):
            # frozen: the whole number (10 for 10.0 or numpy.int64(10)) is set through object
            object.__setattr__(self, key, check_whole_number(key, getattr(self, key),
                                                             condition, least))
        check_number("learning_rate", self.learning_rate, "positive", lambda x: x > 0)
        check_number("end_learning_rate", self.end_learning_rate, "0 or more", lambda x: x >= 0)
        check_number("tolerance", self.tolerance, "0 or more", lambda x: x >= 0)

    @classmethod
    def keys(cls) -> List[str]:
        """The settings' names, in order."""
        return [field.name for field in dataclasses.fields(cls)]

    @classmethod
    def of(cls, values: Optional[Union["Settings", Mapping[str, Any]]] = None) -> "Settings":
        """Settings from None (the defaults), Settings, or a mapping of some of the keys
        (another key is an error naming it)."""
        if values is None or isinstance(values, cls):
            return values or cls()
        # (values is a mapping here: mypy does not narrow by isinstance(values, cls))
        unknown = sorted(set(values) - set(cls.keys()))  # type: ignore[arg-type]
        if unknown:
            raise ConfigError("unknown setting(s) %s; the settings are %s"
                              % (", ".join(unknown), ", ".join(cls.keys())))
        return cls(**values)  # type: ignore[arg-type]
