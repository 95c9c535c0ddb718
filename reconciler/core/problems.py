"""Problems are values: every check returns them, nothing raises for bad input."""

from __future__ import annotations

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
        tag = "" if self.severity == "error" else "warning: "
        return f"{self.path}:{self.line}:{self.column}: {self.jsonpath}: {tag}{self.message}"


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
