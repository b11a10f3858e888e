"""Domain errors, and the one handler that turns them into a command's last line.

Each message names the offending field or file, the value, and the fix. Every command's
`main(argv) -> int` is wrapped by `command(prog)`: an HpcFedError becomes one line
`<prog>: error: <message>` on stderr and the error's exit status; nothing else prints errors."""

from __future__ import annotations

import functools
import os
import sys

DEBUG_ENV = "HPC_FED_DEBUG"  # set (=1): errors keep their traceback instead of one line


class HpcFedError(Exception):
    """Base class: errors a user can act on (printed without a traceback by the CLI)."""

    exit_code = 2  # the command's exit status when this error ends it


class UsageError(HpcFedError):
    """A command-line argument or file named on the command line cannot be used as given."""


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


def print_error(prog: str, message: str) -> None:
    """The one format of a command's error line (also for failures that are not exceptions, such
    as a worker's exit status)."""
    print(f"{prog}: error: {message}", file=sys.stderr)


def command(prog: str):
    """Decorate a command's `main(argv) -> int`: an HpcFedError it raises prints one line (see
    print_error) and returns the error's exit_code; HPC_FED_DEBUG=1 re-raises it with its
    traceback."""

    def wrap(main):
        @functools.wraps(main)
        def run(*args, **kwargs) -> int:
            try:
                return main(*args, **kwargs)
            except HpcFedError as exc:
                if os.environ.get(DEBUG_ENV):
                    raise
                print_error(prog, str(exc))
                return exc.exit_code

        return run

    return wrap
