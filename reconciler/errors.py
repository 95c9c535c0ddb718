"""The exit-code rule, the command line's own errors, and the one handler that turns any error a
command raises into an exit code and one line.

One rule for every command: 0 success, 1 problems or failure, 64 a usage error (EX_USAGE from
sysexits.h: a bad option, a missing path or ledger), 130 interrupted. 2 belongs to `plan` alone
("there are changes", as in `terraform plan -detailed-exitcode`), so a script can always tell a
plan with changes from a mistyped command line.

The layers below the command line raise their own small errors and know nothing of exit codes
(an import-linter contract keeps them from importing this module); `exit_code_of` maps them.
Anything else is a bug: one line and the path of a file holding its traceback, never a bare
traceback; `--debug` (or RECONCILER_DEBUG=1) prints the traceback instead.
"""

from __future__ import annotations

import sys
from typing import TextIO

EXIT_OK, EXIT_PROBLEMS, EXIT_CHANGES, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 64, 130
DEBUG_ENV = "RECONCILER_DEBUG"


class FatalError(Exception):
    """A command cannot go on; the message says why. Exit 1."""

    exit_code = EXIT_PROBLEMS


class UsageError(FatalError):
    """The command's arguments are wrong (a path that does not exist, a bad option). Exit 64."""

    exit_code = EXIT_USAGE


def exit_code_of(error: BaseException) -> int | None:
    """The exit code of an error the user can act on (its message says what and where), or None
    for a bug."""
    if isinstance(error, FatalError):
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    # Each layer's own errors, imported only once an error has reached the handler (no command's
    # start-up pays for them); the service's last, as the dearest import.
    from reconciler.core.loader import PathError  # a path the user named cannot be read
    from reconciler.gitrepo import GitError
    from reconciler.ledger.base import LedgerError

    if isinstance(error, PathError):
        return EXIT_USAGE
    if isinstance(error, LedgerError | GitError):
        return EXIT_PROBLEMS
    from reconciler.service.app import ListenError  # the address to serve on cannot be used

    return EXIT_USAGE if isinstance(error, ListenError) else None


def handle(error: BaseException, *, debug: bool = False, err: TextIO | None = None) -> int:
    """The one place an error that ends a command becomes its exit code and message."""
    err = err or sys.stderr
    try:
        code = exit_code_of(error)
    except Exception:  # a broken install must still end in one line, not a traceback
        code = None
    if debug:
        import traceback

        traceback.print_exception(error, file=err)
    if code == EXIT_INTERRUPTED:
        return code
    if code is not None:
        print(f"reconciler: {error}", file=err)
        return code
    # Only the type is named: the message may quote a schedule file or a ledger URL (a secret).
    what = f"reconciler: internal error ({type(error).__name__}), please report it as a bug"
    if debug:
        print(what, file=err)
    else:
        saved = _save_traceback(error)
        where = f"; its traceback is in {saved}" if saved else f" ({DEBUG_ENV}=1 or --debug shows its traceback)"
        print(what + where, file=err)
    return EXIT_PROBLEMS


def _save_traceback(error: BaseException) -> str | None:
    """The path of a new file (readable by its owner only) holding the traceback, or None."""
    import tempfile
    import traceback

    from reconciler import __version__

    try:
        fd, path = tempfile.mkstemp(prefix="reconciler-crash-", suffix=".log")
        with open(fd, "w") as f:
            f.write(f"reconciler {__version__}, Python {sys.version.split()[0]}\n")
            traceback.print_exception(error, file=f)
    except OSError:
        return None
    return path
