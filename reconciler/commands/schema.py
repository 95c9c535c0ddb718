"""`reconciler schema [--output FILE]`: the JSON Schema that editors and CI use, printed or written
to a file (a copy to commit into a schedules repository, for editors that work offline)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from reconciler.core.defaults import defaults_schema_text
from reconciler.core.schema import schema_text
from reconciler.errors import FatalError


def schema(output: str | None = None, out: TextIO = sys.stdout, *, defaults: bool = False) -> int:
    text = defaults_schema_text() if defaults else schema_text()
    if output is None:
        out.write(text)
        return 0
    path = Path(output)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    except OSError as e:
        raise FatalError(f"{output}: cannot write the schema: {e.strerror}") from e
    out.write(f"wrote {output}\n")
    return 0
