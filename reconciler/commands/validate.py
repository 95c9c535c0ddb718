"""`reconciler validate [PATH ...]`: every problem in every file, one per line."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import TextIO

from reconciler.commands.common import colour_enabled, paint
from reconciler.core.loader import Loader, LoadResult
from reconciler.core.problems import Problem, display_path, printable
from reconciler.errors import EXIT_OK, EXIT_PROBLEMS, UsageError

FORMATS = ("text", "json", "github")


def validate(paths: Sequence[str], fmt: str = "text", out: TextIO = sys.stdout,
             now: datetime | None = None, strict_cron: bool = False) -> int:
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    result = Loader(strict_cron=strict_cron).load_paths(paths or ["schedules"], now=now, build_records=False)
    problems = list(result.problems)
    if not result.files:
        problems.append(Problem(display_path(", ".join(map(str, paths or ["schedules"]))), 1, 1, (),
                                "no *.yaml or *.yml files found"))
    errors = sum(p.severity == "error" for p in problems)
    if fmt == "json":
        json.dump(as_json(result, problems), out, indent=2)
        out.write("\n")
    else:
        line = github_line if fmt == "github" else Problem.format_text
        colour = fmt == "text" and colour_enabled(out)
        for p in problems:
            out.write(paint(line(p), "red" if p.severity == "error" else "yellow", colour) + "\n")
        out.write(paint(summary(result, problems), "red" if errors else "green", colour) + "\n")
    return EXIT_PROBLEMS if errors else EXIT_OK


def summary(result: LoadResult, problems: Sequence[Problem]) -> str:
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    files, scheds = len(result.files), len(result.names)
    head = f"{files} file{'s' * (files != 1)}, {scheds} schedule{'s' * (scheds != 1)}"
    if not errors:
        return f"{head}: valid" + (f" ({warnings} warning{'s' * (warnings != 1)})" if warnings else "")
    bad = len({p.path for p in problems if p.severity == "error"})
    return (f"{head}: {errors} error{'s' * (errors != 1)} in {bad} file{'s' * (bad != 1)}"
            + (f", {warnings} warning{'s' * (warnings != 1)}" if warnings else ""))


def as_json(result: LoadResult, problems: Sequence[Problem]) -> dict[str, object]:
    return {
        "valid": not any(p.severity == "error" for p in problems),
        "files": len(result.files),
        "schedules": len(result.names),
        "problems": [
            {"path": p.path, "line": p.line, "column": p.column, "pointer": p.json_pointer,
             "jsonpath": p.jsonpath, "message": p.message, "severity": p.severity, "document": p.document}
            for p in problems
        ],
    }


def _escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(s: str) -> str:
    return _escape_data(s).replace(":", "%3A").replace(",", "%2C")


def github_line(p: Problem) -> str:
    """A GitHub Actions workflow command, so the problem shows inline in the pull request."""
    kind = "error" if p.severity == "error" else "warning"
    props = (f"file={_escape_property(printable(p.path))},line={p.line},col={p.column},"
             f"title={_escape_property(p.jsonpath)}")
    return f"::{kind} {props}::{_escape_data(printable(p.message))}"
