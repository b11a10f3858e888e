"""Domain errors. Each message names the offending field or file, the value, and the fix."""

DEBUG_ENV = "HPC_FED_DEBUG"  # set (=1): errors keep their traceback instead of one line


class HpcFedError(Exception):
    """Base class: errors a user can act on (printed without a traceback by the CLI)."""


class ConfigError(HpcFedError):
    """A config key is unknown, mistyped or holds an impossible value."""


class DataFormatError(HpcFedError):
    """A dataset file or record does not have the expected format."""


class AggregationError(HpcFedError):
    """Client contributions cannot be aggregated (keys, shapes, weights)."""


def require(cond: bool, message: str) -> None:
    """Raise ConfigError(message) unless `cond`: the config rules' one-liner."""
    if not cond:
        raise ConfigError(message)
