"""Directory defaults: a `_defaults.yaml` applies to every schedule below its directory.

The nearest file wins, field by field; mappings merge, lists (and every other value) replace;
a schedule's own value always wins. A defaults file is a partial schedule of the fields listed
in `DEFAULTABLE`, checked by its own schema (derived from the schedule's, so the two never
drift), and every merged value remembers the `file:line` it came from.

Pure: it works on the bytes and values it is handed.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.core.problems import JsonPath, Problem
from reconciler.core.schema import SchemaValidator, schema_text, without_editor_only_checks
from reconciler.core.yamlstrict import decode, load_documents

DEFAULTS_FILE = "_defaults.yaml"
DEFAULTS_ID = "https://schedule-reconciler.github.io/schema/v1/defaults.schema.json"

# What a defaults file may set: a top-level field of a schedule, and, for a mapping whose other
# fields describe one schedule only, the sub-fields that may be shared. Fields the schedule schema
# does not have (yet) are left out, so a field added there is accepted here once listed.
DEFAULTABLE: dict[str, tuple[str, ...] | None] = {
    "labels": None, "policy": None, "notify": None, "history": None,
    "windows": None, "calendar": None, "limits": None,
    "schedule": ("timezone", "jitter"),
    "run": ("env", "timeout", "workdir", "limits"),
}
# Run-level defaults apply to commands only: a request has its own options under `http`.
_RUN_KIND_KEY = "command"


def defaults_schema(schedule_schema: Mapping[str, Any]) -> dict[str, Any]:
    """The schema of a `_defaults.yaml`, from the schedule schema: the defaultable fields, none
    required, each sub-mapping reduced to its shareable fields."""
    props: dict[str, Any] = {}
    for key, subkeys in DEFAULTABLE.items():
        spec = schedule_schema["properties"].get(key)
        if spec is None:
            continue
        if subkeys is None:
            props[key] = spec
            continue
        inner = {k: v for k, v in spec.get("properties", {}).items() if k in subkeys}
        props[key] = {
            "type": "object", "additionalProperties": False, "properties": inner,
            "description": f"Defaults for `{key}`: only {', '.join(sorted(inner))} may be shared.",
        }
    return {
        "$schema": schedule_schema.get("$schema", "https://json-schema.org/draft/2020-12/schema"),
        "$id": DEFAULTS_ID,
        "title": "schedule-reconciler directory defaults (v1)",
        "description": f"A {DEFAULTS_FILE}: values every schedule below its directory gets unless it sets them "
                       "itself. The nearest file wins field by field; mappings merge, lists replace.",
        "type": "object", "additionalProperties": False, "properties": props,
        "$defs": schedule_schema.get("$defs", {}),
    }


def defaults_schema_text() -> str:
    return json.dumps(defaults_schema(json.loads(schema_text())), indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True, slots=True)
class Defaults:
    """One defaults file, checked: its values and the line of every value (by JSON path)."""

    path: str  # as messages name it
    directory: str  # relative directory it governs ("" for the top), with a trailing "/" unless ""
    values: dict[str, Any]
    lines: dict[JsonPath, int] = field(default_factory=dict)
    digest: str = ""


@dataclass
class DefaultsChecker:
    validator: SchemaValidator = field(
        default_factory=lambda: SchemaValidator(without_editor_only_checks(defaults_schema(json.loads(schema_text())))))

    def check(self, path: str, directory: str, data: bytes) -> tuple[Defaults | None, list[Problem]]:
        """A defaults file's values, or None and why not. An empty file sets nothing."""
        text, problems = decode(data, path)
        if text is None:
            return None, problems
        docs, problems = load_documents(text, path)
        digest = hashlib.sha256(data).hexdigest()[:16]
        if problems:
            return None, problems
        if len(docs) > 1:
            return None, [Problem(path, docs[1].line, 1, (), "a defaults file holds one document", document=1)]
        if not docs or docs[0].value is None:
            return Defaults(path, directory, {}, {}, digest), []
        doc = docs[0]
        if not isinstance(doc.value, dict):
            return None, [Problem(path, doc.line, 1, (), "defaults are a mapping of schedule fields")]
        problems = self.validator.problems(doc, path)
        if problems:
            return None, problems
        lines: dict[JsonPath, int] = {}
        for ptr in _leaves(doc.value, ()):
            lines[ptr] = doc.location(ptr, key=True)[0]
        return Defaults(path, directory, doc.value, lines, digest), []


def _leaves(value: Any, ptr: JsonPath) -> list[JsonPath]:
    if isinstance(value, dict) and value:
        return [p for k, v in value.items() for p in _leaves(v, (*ptr, k))]
    return [ptr]


def directory_of(rel: str) -> str:
    """The directory part of a relative path, with its trailing slash ("" at the top)."""
    cut = rel.rfind("/")
    return rel[: cut + 1] if cut >= 0 else ""


def chain_for(rel: str, by_dir: Mapping[str, Defaults]) -> tuple[Defaults, ...]:
    """The defaults that govern a file at `rel`, nearest first."""
    out = []
    d = directory_of(rel)
    while True:
        found = by_dir.get(d)
        if found is not None:
            out.append(found)
        if not d:
            return tuple(out)
        d = directory_of(d[:-1])


def chain_key(chain: Sequence[Defaults]) -> str:
    """What a schedule's merged spec depends on besides its own file."""
    return ",".join(f"{d.path}@{d.digest}" for d in chain)


def merge(spec: Mapping[str, Any], chain: Sequence[Defaults]) -> dict[str, Any]:
    """The effective spec: the schedule's own values over the nearest defaults over farther ones."""
    if not chain:
        return dict(spec)
    out: dict[str, Any] = dict(spec)
    for d in chain:  # nearest first: each fills only what is still missing
        for key, value in d.values.items():
            if key == "run" and not _is_command(out.get("run")):
                continue
            out[key] = _fill(out[key], value) if key in out else copy.deepcopy(value)
    return out


def _is_command(run: Any) -> bool:
    return isinstance(run, dict) and _RUN_KIND_KEY in run


def _fill(own: Any, default: Any) -> Any:
    if isinstance(own, dict) and isinstance(default, dict):
        out = dict(own)
        for k, v in default.items():
            out[k] = _fill(out[k], v) if k in out else copy.deepcopy(v)
        return out
    return own  # lists and scalars: the nearer value stands whole


def origins(spec: Mapping[str, Any], chain: Sequence[Defaults]) -> dict[JsonPath, str]:
    """Where each value of the effective spec that the schedule does not set comes from:
    JSON path -> `file:line` of the default (nearest first, as merged)."""
    out: dict[JsonPath, str] = {}
    taken: dict[str, Any] = copy.deepcopy(dict(spec))  # filled in as merged: the caller's spec stays as it is
    for d in chain:
        for key, value in d.values.items():
            if key == "run" and not _is_command(taken.get("run")):
                continue
            _origin(taken, key, value, (key,), d, out)
    return out


def _origin(holder: dict[str, Any], key: str, value: Any, ptr: JsonPath, d: Defaults,
            out: dict[JsonPath, str]) -> None:
    if key not in holder:
        holder[key] = copy.deepcopy(value)
        for leaf in _leaves(value, ptr):
            out[leaf] = f"{d.path}:{d.lines.get(leaf, d.lines.get(ptr, 1))}"
        return
    own = holder[key]
    if isinstance(own, dict) and isinstance(value, dict):
        for k, v in value.items():
            _origin(own, k, v, (*ptr, k), d, out)


def effective_lines(spec: Mapping[str, Any], chain: Sequence[Defaults], own: str) -> list[str]:
    """The effective spec as `path: value  # origin` lines (show --effective, validate, plan)."""
    merged = merge(spec, chain)
    found = origins(spec, chain)
    lines: list[str] = []
    for ptr in _leaves(merged, ()):
        value: Any = merged
        for k in ptr:
            value = value[k]
        where = found.get(ptr, own)
        lines.append(f"{'.'.join(map(str, ptr))}: {json.dumps(value, ensure_ascii=False)}  # {where}")
    return lines


def own_spec(data: bytes, path: str, index: int) -> dict[str, Any] | None:
    """A document of a schedule file as written (before defaults), to say where values came from."""
    text, _ = decode(data, path)
    if text is None:
        return None
    docs, _ = load_documents(text, path)
    value = docs[index].value if index < len(docs) else None
    return value if isinstance(value, dict) else None
