"""The JSON Schema, and validation of documents against it with precise locations.

Two validators with one schema: a compiled one (fastjsonschema, or jsonschema-rs for `validate`)
answers "valid?" in microseconds, and only documents it rejects go through `jsonschema`, which
reports every error with its path. Tests keep
the two in agreement on every example file and on ~1,900 one-edit mutations of them. Both apply
the published schema less the few checks it carries for editors only, which the loader makes
itself (`_EDITOR_ONLY`).
"""

from __future__ import annotations

import difflib
import json
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any, Literal

from reconciler.core.durations import format_duration
from reconciler.core.problems import JsonPath, Problem, excerpt
from reconciler.core.yamlstrict import Document

_YAML11_BOOLEANS = frozenset(
    ["y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
     "True", "TRUE", "False", "FALSE"])


# Checks the schema carries for editors that the loader makes again and words better (the count
# of cron fields, a did-you-mean for a zone, with the tzdata it runs with): validating with them
# too would report each such mistake twice.
_EDITOR_ONLY = {"cron": "pattern", "timezone": "enum"}


def schema_text() -> str:
    # pkgutil rather than importlib.resources, which brings zipfile, tempfile and shutil to every start
    data = pkgutil.get_data("reconciler.data", "schedule.schema.json")
    assert data is not None  # the package's own file, from a loader that reads files
    return data.decode("utf-8")


def without_editor_only_checks(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema `validate` applies: the published one less the checks the loader makes itself."""
    defs = dict(schema["$defs"])
    for name, keyword in _EDITOR_ONLY.items():
        defs[name] = {k: v for k, v in defs[name].items() if k != keyword}
    return {**schema, "$defs": defs}


# The "valid?" path. fastjsonschema (the default) keeps a long-running process smallest: in the
# daemon, jsonschema-rs's allocations beside the loader's left ~0.5 KB a schedule more resident.
# jsonschema-rs answers in a ninth of the time, for a process that checks and exits (validate).
FastEngine = Literal["fastjsonschema", "jsonschema-rs"]


@dataclass
class SchemaValidator:
    """Built once per process and reused: compiling either validator costs milliseconds."""

    schema: dict[str, Any] = field(default_factory=lambda: without_editor_only_checks(json.loads(schema_text())))
    fast: FastEngine = "fastjsonschema"

    @cached_property
    def _fast(self) -> Callable[[Any], bool]:
        if self.fast == "jsonschema-rs":
            import jsonschema_rs

            # The schema's own draft (2020-12), as `_full` reads it; its $refs name its own $id.
            is_valid: Callable[[Any], bool] = jsonschema_rs.validator_for(self.schema).is_valid
            return is_valid
        import fastjsonschema

        # fastjsonschema speaks draft-07; the schema keeps to keywords both drafts share.
        draft7 = {**self.schema, "$schema": "http://json-schema.org/draft-07/schema#"}
        compiled = fastjsonschema.compile(draft7, use_default=False, use_formats=False)

        def valid(value: Any) -> bool:
            try:
                compiled(value)
            except fastjsonschema.JsonSchemaValueException:
                return False
            return True

        return valid

    @cached_property
    def _full(self) -> Any:
        import jsonschema

        return jsonschema.Draft202012Validator(self.schema)

    def prepare(self) -> None:
        """Compile the fast validator now (before a fork, so that the children share it)."""
        self._fast  # noqa: B018 - a cached property: reading it compiles

    def is_valid(self, value: Any) -> bool:
        return self._fast(value)

    def problems(self, doc: Document, path: str) -> list[Problem]:
        if self.is_valid(doc.value):
            return []
        # jsonschema gives one `required` error per missing key, and each names them all: keep one each.
        found: dict[tuple[JsonPath, str], Problem] = {}
        for e in _leaf_errors(self._full.iter_errors(doc.value)):
            for p in self._problems(e, doc, path):
                found.setdefault((p.pointer, p.message), p)
        return sorted(found.values(), key=lambda p: (p.line, p.column))

    def _problems(self, error: Any, doc: Document, path: str) -> Iterator[Problem]:
        for message, ptr, on_key in _messages(error, tuple(error.absolute_path)):
            line, col = doc.location(ptr, key=on_key)
            yield Problem(path, line, col, ptr, message, document=doc.index)


def _leaf_errors(errors: Iterator[Any]) -> Iterator[Any]:
    """Errors a person can act on: for a oneOf over value shapes, the branch that fits best."""
    for e in errors:
        while e.validator in ("oneOf", "anyOf") and e.context and not _exclusive_keys(e) and not _wrong_type(e):
            e = max(e.context, key=_relevance)  # first of equals: the order the schema lists them
        yield e


def _relevance(error: Any) -> tuple[int, int]:
    # The deepest error shows the branch the value was meant for ({from_env: 5}: the from_env
    # branch); among equals, an error inside a branch beats "wrong type for this branch".
    return (len(error.absolute_path), 0 if error.validator == "type" else 1)


def _exclusive_keys(error: Any) -> list[str] | None:
    """For `oneOf: [{required: [a], properties: {b: false}}, {required: [b], properties: {a: false}}]`,
    the names a, b (each branch forbids the others, so that editors flag the key to remove)."""
    branches = error.validator_value
    if all(isinstance(b, dict) and set(b) <= _EXCLUSIVE_BRANCH and len(b.get("required", ())) == 1
           for b in branches):
        return [b["required"][0] for b in branches]
    return None


_EXCLUSIVE_BRANCH = frozenset(("required", "properties", "errorMessage"))


def _choices(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1] if len(quoted) > 1 else quoted[0]


def _messages(error: Any, ptr: JsonPath) -> list[tuple[str, JsonPath, bool]]:
    """One message per field named by the error: each missing field, each unknown key."""
    v, value, sub = error.validator, error.instance, error.schema
    if v == "additionalProperties":
        allowed = sorted(sub.get("properties", {}))
        out = []
        for key in (k for k in value if k not in sub.get("properties", {})):
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f"; expected one of: {', '.join(allowed)}"
            out.append((f"unknown field {excerpt(key)}{hint}", (*ptr, key), True))
        return out
    if v == "required":
        missing = [k for k in error.validator_value if isinstance(value, dict) and k not in value]
        return [(f"required field '{k}' is missing", ptr, True) for k in missing]
    return [_message(error, ptr)]


def _message(error: Any, ptr: JsonPath) -> tuple[str, JsonPath, bool]:
    """A message that says what to write, the pointer to report, and whether the key's line fits.
    It quotes no more of the value than an excerpt: the value may be a secret."""
    v, value, sub = error.validator, error.instance, error.schema
    if v == "oneOf" and (keys := _exclusive_keys(error)):
        present = [k for k in keys if isinstance(value, dict) and k in value]
        if len(present) > 1:  # at the first key to remove, where the editor points too
            return (f"{_choices(present).replace(' or ', ' and ')} cannot be used together: choose one",
                    (*ptr, present[1]), True)
        return f"one of {_choices(keys)} is required", ptr, True
    if v in ("anyOf", "oneOf") and _wrong_type(error):
        return _type_message([c.validator_value for c in error.context], value, ptr)
    if v == "type":
        return _type_message(error.validator_value, value, ptr)
    if v == "pattern" and "propertyNames" in error.schema_path:
        what = sub.get("patternErrorMessage", f"must match {error.validator_value}")
        return f"key {excerpt(value)} is not valid: {what}", (*ptr, value), True
    if v == "pattern" and "patternErrorMessage" in sub:
        return f"{excerpt(value)} is not valid: {sub['patternErrorMessage']}", ptr, False
    if v in ("minProperties", "maxProperties") and {"from_env", "from_file"} <= set(sub.get("properties", {})):
        return "write a string, {from_env: NAME} or {from_file: PATH}", ptr, False
    if v == "maxLength" and isinstance(value, str):
        return f"too long: {len(value)} characters, longer than the {error.validator_value} allowed", ptr, False
    if v == "maximum" and _is_duration(error.parent):  # a duration in seconds
        limit = format_duration(timedelta(seconds=error.validator_value))
        return f"{excerpt(value)} seconds is longer than {limit}: a duration is at most {limit}", ptr, False
    if v == "enum":
        return f"{excerpt(value)} is not one of {', '.join(map(repr, error.validator_value))}", ptr, False
    return _without_value(error), ptr, False


def _without_value(error: Any) -> str:
    """jsonschema's own message, which begins with the whole value, begun with an excerpt instead."""
    try:
        whole = repr(error.instance)
    except ValueError:  # pragma: no cover - an integer too long to print never gets this far
        whole = ""
    message = str(error.message)
    if whole and message.startswith(whole):
        return excerpt(error.instance) + message[len(whole):]
    return message


def _is_duration(error: Any) -> bool:
    """The duration union: text such as 90s, or a number of seconds."""
    branches = error.schema.get("anyOf", []) if error is not None else []
    return [b.get("type") for b in branches] == ["string", "integer"]


def _wrong_type(error: Any) -> bool:
    """A union (`anyOf: [{type: string, ...}, {type: integer, ...}]`) whose every branch failed on
    its type: the message names every type the value could have had."""
    return bool(error.context) and all(c.validator == "type" and c.absolute_path == error.absolute_path
                                       for c in error.context)


def _type_message(want: Any, value: Any, ptr: JsonPath) -> tuple[str, JsonPath, bool]:
    if want == "boolean" and isinstance(value, str) and value in _YAML11_BOOLEANS:
        return f"{excerpt(value)} is not a boolean here: write true or false", ptr, False
    wants_string = want == "string" or (isinstance(want, list) and "string" in want)
    if wants_string and isinstance(value, int | float) and not isinstance(value, bool):
        return f"expected a string, got the number {excerpt(value)}: quote it", ptr, False
    return f"expected {_article(want)}, got {_describe(value)}", ptr, False


def _article(kind: Any) -> str:
    names = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
             "boolean": "true or false", "number": "a number", "null": "nothing"}
    if isinstance(kind, list):
        return " or ".join(names.get(str(k), str(k)) for k in kind)
    return names.get(kind, str(kind))


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {excerpt(value)}"
    return f"the number {excerpt(value)}" if isinstance(value, int | float) else f"{type(value).__name__}"
