"""The library's errors: one base class, a kind per cause. Each message names what is wrong
and what to do; the command line prints it as one line (see l2caf.cli)."""


class L2CAFError(Exception):
    """Base of every error the library raises on purpose."""


class ConfigError(L2CAFError, ValueError):
    """A setting, option or argument is wrong (a bad value, an unknown network or layer)."""


class CheckpointError(L2CAFError):
    """A checkpoint is missing, unreadable, or does not match what it should hold."""


class ImageError(L2CAFError, ValueError):
    """An image or an image list cannot be used (missing, unreadable, too large)."""


class OutputError(L2CAFError):
    """A result cannot be written: the output folder is not a folder, not writable, full."""


class RunError(L2CAFError):
    """A run cannot start or go on for a reason in its inputs (its output folder holds the
    results of other settings, shards disagree, annotations do not fit the results)."""
