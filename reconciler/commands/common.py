"""Small things several commands share: suggestions for a misspelt name, durations on the command line, colour."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from datetime import timedelta
from typing import TextIO

from reconciler.core.durations import parse_duration


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest known names, or nothing; worded as validate's hints are."""
    close = difflib.get_close_matches(name, sorted(set(known)), n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


def duration_arg(text: str) -> timedelta:
    """A duration as a schedule file writes it (`90s`, `1h30m`), or a bare number of seconds (`30`)."""
    return parse_duration(int(text) if text.isdigit() else text)


# SGR codes; bold red and so on would be louder than a status column needs.
_SGR = {"red": "31", "green": "32", "yellow": "33", "blue": "34", "dim": "2", "bold": "1"}


def colour_enabled(out: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org) or TERM is dumb."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return out.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


def paint(text: str, colour: str | None, enabled: bool) -> str:
    if not enabled or colour is None or not text:
        return text
    return f"\x1b[{_SGR[colour]}m{text}\x1b[0m"
