"""Problems are values: every check returns them, nothing raises for bad input."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]
PathPart = str | int
JsonPath = tuple[PathPart, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    line: int
    column: int
    pointer: JsonPath
    message: str
    severity: Severity = "error"
    document: int = 0

    @property
    def jsonpath(self) -> str:
        return jsonpath(self.pointer)

    @property
    def json_pointer(self) -> str:
        return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in self.pointer)

    def format_text(self) -> str:
        """One line, always: a file name holding a newline cannot forge a second problem."""
        tag = "" if self.severity == "error" else "warning: "
        return f"{printable(self.path)}:{self.line}:{self.column}: {self.jsonpath}: {tag}{printable(self.message)}"


# Line breaks and other controls, bidirectional overrides, and the surrogates by which Python
# keeps the bytes of a file name that are not UTF-8: none may reach a terminal or a log as is.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte of a file name
        return f"\\x{code - 0xDC00:02x}"
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(text: str) -> str:
    """Text as one printable line: controls, line breaks and undecodable bytes are escaped."""
    return _UNPRINTABLE.sub(_escape, text) if _UNPRINTABLE.search(text) else text


def display_path(path: str) -> str:
    """A file name as valid text. The bytes of a name that are not UTF-8 reach Python as lone
    surrogates, which no UTF-8 stream, JSON response or database accepts: they become `\\xff`."""
    if path.isascii():
        return path
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        pass
    try:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that stands for no byte
        return path.encode("utf-8", "backslashreplace").decode("utf-8")


EXCERPT = 24  # characters of a value a message may quote: a longer value may be a secret


def excerpt(value: object, limit: int = EXCERPT) -> str:
    """A value as a message may quote it: escaped, and never more than `limit` characters of it."""
    if isinstance(value, bool) or value is None:
        return "true" if value is True else "false" if value is False else "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    try:
        text = value if isinstance(value, str) else repr(value)
    except ValueError:  # an integer past Python's 4,300-digit conversion limit
        return "a number of more than 4300 digits"
    cut = text[:limit]
    shown = repr(cut) if isinstance(value, str) else cut
    return shown if len(text) <= limit else f"{shown}... ({len(text)} characters)"


def jsonpath(pointer: Sequence[PathPart]) -> str:
    out = ["$"]
    for part in pointer:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif part.isidentifier():
            out.append(f".{part}")
        else:
            out.append("[" + repr(part) + "]")
    return "".join(out)


def has_errors(problems: Sequence[Problem]) -> bool:
    return any(p.severity == "error" for p in problems)
