"""What run kinds (and notifications) share at run time: values read from the environment or files
(secrets among them), and output kept capped with every secret redacted before the cut."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from reconciler.core.model import EnvValue

OUTPUT_CAP = 64 * 1024
REDACTED = "[redacted]"
REDACTED_BYTES = REDACTED.encode()


class SecretError(Exception):
    """A `from_env`/`from_file` value could not be read at run time."""


def resolve(values: tuple[tuple[str, EnvValue], ...], environ: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Values for a run, and the secret ones among them (to redact from output)."""
    out, secrets = {}, []
    for name, v in values:
        if v.literal is not None:
            out[name] = v.literal
            continue
        if v.from_env is not None:
            if v.from_env not in environ:
                raise SecretError(f"{name}: environment variable {v.from_env} is not set")
            value = environ[v.from_env]
        else:
            assert v.from_file is not None
            try:
                value = Path(v.from_file).read_text().rstrip("\n")
            except OSError as e:
                raise SecretError(f"{name}: cannot read {v.from_file}: {e.strerror}") from e
        out[name] = value
        secrets.append(value)
    return out, secrets


class Redactor:
    """Replaces secret values in a stream of bytes, also where a value is split between chunks."""

    def __init__(self, secrets: Iterable[str]) -> None:
        values = sorted({s.encode() for s in secrets if s}, key=len, reverse=True)
        # Longest first: where two values start at one place, the longer one is hidden whole.
        self._pattern = re.compile(b"|".join(re.escape(v) for v in values)) if values else None
        self._hold = len(values[0]) - 1 if values else 0
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        """What can be let through now; the last bytes wait while they may start a secret."""
        if self._pattern is None:
            return chunk
        data = self._pending + chunk
        # A match starting before `limit` is decided: even the longest value fits in `data`.
        limit = len(data) - self._hold
        out = bytearray()
        pos = 0
        while (m := self._pattern.search(data, pos)) is not None and m.start() < limit:
            out += data[pos:m.start()] + REDACTED_BYTES
            pos = m.end()
        keep = max(pos, limit)
        out += data[pos:keep]
        self._pending = data[keep:]
        return bytes(out)

    def flush(self) -> bytes:
        data, self._pending = self._pending, b""
        return self._pattern.sub(REDACTED_BYTES, data) if self._pattern is not None else data


def redact(text: str, secrets: Iterable[str]) -> str:
    """Secret values out of a message, also as `repr` would have quoted them (exceptions do)."""
    forms = {f for s in secrets if s for f in (s, repr(s)[1:-1], repr(s.encode())[2:-1]) if f}
    for f in sorted(forms, key=len, reverse=True):
        text = text.replace(f, REDACTED)
    return text


class CappedBuffer:
    """Keeps the head and the tail of a stream, and counts what was dropped between them.

    Secrets are redacted before the cut, so that no part of one is kept at either edge.
    """

    def __init__(self, cap: int = OUTPUT_CAP, secrets: Iterable[str] = ()) -> None:
        self.head_cap, self.tail_cap = cap // 2, cap - cap // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0
        self._redactor = Redactor(secrets)

    def write(self, chunk: bytes) -> None:
        self._keep(self._redactor.feed(chunk))

    def _keep(self, chunk: bytes) -> None:
        room = self.head_cap - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if not chunk:
            return
        self.tail += chunk
        excess = len(self.tail) - self.tail_cap
        if excess > 0:
            del self.tail[:excess]
            self.dropped += excess

    def text(self) -> str:
        self._keep(self._redactor.flush())
        head = self.head.decode("utf-8", "replace")
        tail = self.tail.decode("utf-8", "replace")
        return head + (f"\n[... {self.dropped} bytes dropped ...]\n" if self.dropped else "") + tail


def printable(text: str) -> str:
    """Control characters (a NUL, a newline) shown escaped, never written into a message."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
