"""One object for equal small immutable values (labels, environments, run records, durations).

A fleet repeats the same few labels, environments and commands across thousands of schedules;
keeping each equal value once is most of what a schedule's records weigh. Only values whose
equality implies they behave the same may come here: Python finds `1 == True` and
`(1,) == (True,)`, so a value that may hold a bool beside an int (an HTTP JSON body) must not.
"""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")

# Bounded: a fleet of all-different values would otherwise keep a table entry for each. Past the
# bound the table starts again; values already shared stay shared.
MAX_ENTRIES = 1 << 15
_table: dict[Any, Any] = {}


def interned(value: T) -> T:
    """An equal value seen before, of the same type, or `value` itself (now remembered)."""
    key = (type(value), value)
    found: T | None = _table.get(key)
    if found is not None:
        return found
    if len(_table) >= MAX_ENTRIES:
        _table.clear()
    _table[key] = value
    return value


def interned_pairs(pairs: tuple[tuple[str, T], ...]) -> tuple[tuple[str, T], ...]:
    """A tuple of (name, value) pairs, each pair and the whole shared with equal ones."""
    if not pairs:
        return ()
    return interned(tuple(interned(pair) for pair in pairs))
