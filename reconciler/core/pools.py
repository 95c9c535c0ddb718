"""Named pools (issue 18): `pools.yaml` at the top of the schedules directory, one entry per pool,

    db-heavy: {size: 2}
    reports: {size: 1, description: the reporting replica's database}

A schedule joins one with `policy: {pool: db-heavy, priority: 10}`. At most `size` runs of a pool
are `running` at once, across every replica (the ledger's claim counts them). Pure: the file
arrives as bytes, and its problems carry file:line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.core.problems import JsonPath, Problem
from reconciler.core.yamlstrict import decode, load_documents

POOLS_FILE = "pools.yaml"
POOLS = "pools"  # the library kind (and name) of the pools file
MAX_SIZE = 100_000
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_FIELDS = {"size", "description"}

# The file's schema, as documented (docs/schedule-format.md); checked below with file:line errors.
POOLS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "pools.yaml",
    "type": "object",
    "propertyNames": {"pattern": "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"},
    "additionalProperties": {
        "type": "object",
        "additionalProperties": False,
        "required": ["size"],
        "properties": {
            "size": {"type": "integer", "minimum": 1, "maximum": MAX_SIZE},
            "description": {"type": "string"},
        },
    },
}


@dataclass(frozen=True, slots=True)
class PoolSet:
    """The pools of one pools.yaml: name -> size."""

    sizes: Mapping[str, int]


def parse_pools(path: str, data: bytes) -> tuple[PoolSet | None, tuple[Problem, ...]]:
    """The pools of a pools.yaml, or None and its problems (file, line, field)."""
    text, problems = decode(data, path)
    if text is None:
        return None, tuple(problems)
    docs, problems = load_documents(text, path)
    if problems:
        return None, tuple(problems)
    if not docs or docs[0].value is None:
        return PoolSet({}), ()  # an empty file: no pools
    if len(docs) != 1:
        return None, (Problem(path, 1, 1, (), "pools.yaml holds exactly one YAML document"),)
    doc = docs[0]
    out: list[Problem] = []

    def add(ptr: JsonPath, message: str) -> None:
        line, col = doc.location(ptr)
        out.append(Problem(path, line, col, ptr, message))

    if not isinstance(doc.value, dict):
        add((), "pools.yaml is a mapping of pool names to {size: N}, e.g. `db-heavy: {size: 2}`")
        return None, tuple(out)
    sizes: dict[str, int] = {}
    for name, spec in doc.value.items():
        _check(add, name, spec, sizes)
    return (None if out else PoolSet(sizes)), tuple(sorted(out, key=lambda p: (p.line, p.column)))


def _check(add: Any, name: Any, spec: Any, sizes: dict[str, int]) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        add((name,) if isinstance(name, str) else (), f"pool name {name!r}: 1-63 lowercase letters, digits and "
            "'-', starting and ending with a letter or digit")
        return
    if not isinstance(spec, dict):
        add((name,), f"pool {name!r}: write {{size: N}} (N: the runs of the pool at most running at once)")
        return
    for key in spec:
        if key not in _FIELDS:
            add((name, key), f"pool {name!r}: unknown field {key!r} (fields: size, description)")
    size = spec.get("size")
    if "size" not in spec:
        add((name,), f"pool {name!r}: size is required (the runs of the pool at most running at once)")
    elif isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_SIZE:
        add((name, "size"), f"pool {name!r}: size must be an integer from 1 to {MAX_SIZE}")
    else:
        sizes[name] = size
    if "description" in spec and not isinstance(spec["description"], str):
        add((name, "description"), f"pool {name!r}: description must be a string")


def pool_problem(doc_path: str, line: int, document: int, name: str, pools: Mapping[str, int] | None,
                 pools_path: str | None) -> Problem | None:
    """A problem at a schedule's line when its `policy.pool` names no usable pool."""
    if pools is not None and name in pools:
        return None
    if pools is None and pools_path is not None:
        hint = f"{pools_path} has problems"
    elif pools is None:
        hint = f"there is no {POOLS_FILE} at the top of the schedules directory"
    else:
        known = ", ".join(sorted(pools)) or "none"
        hint = f"{pools_path or POOLS_FILE} defines no such pool (pools: {known})"
    return Problem(doc_path, line, 1, ("policy", "pool"), f"pool {name!r} cannot be used: {hint}",
                   document=document)


def uses_pool(spec: Mapping[str, Any]) -> str | None:
    p = spec.get("policy")
    pool = p.get("pool") if isinstance(p, dict) else None
    return pool if isinstance(pool, str) else None

