"""Run kinds as plugins: the registry of kind name -> module, imported on first use.

To add a kind: a package here whose `__init__` defines `KIND` (see base.Kind), its fragment of the
schema's `run` object, its tests, and one line below (docs/architecture.md says more).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from reconciler.kinds.base import Kind

# name -> dotted path of a module whose KIND is that kind; the order is the order of checks.
KINDS: dict[str, str] = {
    "command": "reconciler.kinds.command",
    "http": "reconciler.kinds.http",
}


@cache
def kind(name: str) -> Kind[Any]:
    """The kind registered as `name` (KeyError if none is)."""
    found: Kind[Any] = importlib.import_module(KINDS[name]).KIND
    return found


def kind_of(run: Mapping[str, Any]) -> Kind[Any]:
    """The kind of a `run` block the schema accepted: the one whose name is among its keys."""
    return kind(next(name for name in KINDS if name in run))


def present(run: Mapping[str, Any]) -> Iterator[Kind[Any]]:
    """Every kind one of whose keys the block uses: each checks its own keys wherever they appear."""
    for name in KINDS:
        k = kind(name)
        if not k.keys.isdisjoint(run):
            yield k
