"""`reconciler schema`: print the JSON Schema that editors and CI use."""

from __future__ import annotations

import sys
from typing import TextIO

from reconciler.core.schema import schema_text


def schema(out: TextIO = sys.stdout) -> int:
    out.write(schema_text())
    return 0
