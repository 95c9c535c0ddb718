"""The few exceptions that end a command, and the one place that maps them to exit codes.

One rule for every command: 0 success, 1 problems or failure, 64 a usage error (EX_USAGE from
sysexits.h: a bad option, a missing path or ledger), 130 interrupted. 2 belongs to `plan` alone
("there are changes", as in `terraform plan -detailed-exitcode`), so a script can always tell a
plan with changes from a mistyped command line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec

EXIT_OK, EXIT_PROBLEMS, EXIT_CHANGES, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 64, 130
P = ParamSpec("P")


class FatalError(Exception):
    """A command cannot go on; the message says why. Exit 1."""

    exit_code = EXIT_PROBLEMS


class UsageError(FatalError):
    """The command's arguments are wrong (a path that does not exist, a bad option). Exit 64."""

    exit_code = EXIT_USAGE


def exit_code_of(func: Callable[P, int]) -> Callable[P, int]:
    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> int:
        try:
            return func(*args, **kwargs)
        except FatalError as e:
            print(f"reconciler: {e}", file=sys.stderr)
            return e.exit_code

        except KeyboardInterrupt:
            return EXIT_INTERRUPTED

    return wrapper
