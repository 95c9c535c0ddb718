"""The `reconciler` command's entry point.

`validate` with nothing but paths (as CI and the pre-commit hook call it) runs without building
the command-line app: importing typer and click and building every command's options costs more
than checking a small tree. Every other command line, and every name of the app
(`reconciler.cli.app`, the option enums), comes from `reconciler.cli.full`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib import import_module
from typing import Any

from reconciler.errors import DEBUG_ENV, EXIT_INTERRUPTED, handle

STRICT_CRON_ENV = "RECONCILER_STRICT_CRON"
# The app reads these for validate or for the root options (and the first for shell completion):
# with any of them set, the app parses the command line, as it would have.
_APP_ENV = ("_RECONCILER_COMPLETE", DEBUG_ENV, STRICT_CRON_ENV)


def plain_validate(argv: Sequence[str]) -> list[str] | None:
    """The paths of `validate PATH...` with no option at all, or None for anything else."""
    if not argv or argv[0] != "validate" or any(a.startswith("-") for a in argv[1:]):
        return None
    if any(name in os.environ for name in _APP_ENV):
        return None
    return list(argv[1:])


def main(argv: Sequence[str] | None = None) -> int:
    """The `reconciler` command: `validate PATH...` directly, everything else through the app."""
    paths = plain_validate(sys.argv[1:] if argv is None else argv)
    if paths is None:
        from reconciler.cli.full import main as app_main

        return app_main(argv)
    try:
        from reconciler.commands.validate import validate

        return validate(paths)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as e:  # what the app's handler would do with it (no --debug here)
        return handle(e, debug=False)


def __getattr__(name: str) -> Any:
    """The app's names (`app`, `RunStatus`, ...), imported when first asked for."""
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(import_module("reconciler.cli.full"), name)
