"""The shape of the CLI (commands, options, defaults), read from a child process."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

_CLI_SHAPE = """
import json
from typer.main import get_command
from reconciler.cli import RunStatus, app

group = get_command(app)
print(json.dumps({"run_states": list(RunStatus), "commands": {
    name: {p.name: {"long": next((o for o in p.opts if o.startswith("--")), None),
                    "default": p.default if isinstance(p.default, (str, int, float, bool, type(None))) else None}
           for p in command.params}
    for name, command in ((f"{n} {sub}" if sub else n, c) for n, g in group.commands.items()
                          for sub, c in (getattr(g, "commands", None) or {"": g}).items())}}))
"""


def cli_shape() -> dict[str, Any]:
    """The CLI's commands, each parameter's first long option and default, and the run states --status takes.

    Read in a child process: importing typer in the test process could warn (an old typer on a new
    click), and warnings are errors here.
    """
    out = subprocess.run([sys.executable, "-c", _CLI_SHAPE], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]
