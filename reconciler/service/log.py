"""Structured log lines: one call, one line, as text or JSON (for containers)."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

Log = Callable[..., None]


def make_log(fmt: str = "text", stream: TextIO | None = None, clock: Callable[[], datetime] | None = None) -> Log:
    out = stream or sys.stderr
    lock = threading.Lock()
    now = clock or (lambda: datetime.now(UTC))

    def log(event: str, **fields: Any) -> None:
        ts = now().isoformat(timespec="milliseconds").replace("+00:00", "Z")
        data = {k: v for k, v in fields.items() if v is not None}
        if fmt == "json":
            line = json.dumps({"ts": ts, "event": event, **data}, default=str, separators=(",", ":"))
        else:
            parts = " ".join(f"{k}={_text(v)}" for k, v in data.items())
            line = f"{ts} {event} {parts}".rstrip()
        with lock:
            out.write(line + "\n")
            out.flush()

    return log


def _text(value: Any) -> str:
    s = value if isinstance(value, str) else json.dumps(value, default=str, separators=(",", ":"))
    return json.dumps(s) if (not s or any(c in s for c in ' "=\n')) else s
