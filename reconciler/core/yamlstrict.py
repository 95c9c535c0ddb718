"""A strict YAML reader built on libyaml's event stream.

Working from events (not from PyYAML's constructors) lets us see anchors, aliases, tags and
depth before any object is built, keep the line and column of every node, and decide scalar
types ourselves: only `true`/`false` are booleans, and `yes`, `0755`, `12:30` or `2026-01-01`
stay strings for the schema to judge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from reconciler.core.problems import JsonPath, Problem

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_DOCUMENTS = 1000

_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\Z")
# A float needs a point or an exponent, and no leading zero before other digits (`0755` stays text).
_FLOAT = re.compile(r"[-+]?(?:(?:0|[1-9][0-9]*)\.[0-9]*|\.[0-9]+|(?:0|[1-9][0-9]*)(?=[eE]))(?:[eE][-+]?[0-9]+)?\Z")
_NULLS = frozenset(("", "~", "null"))
Location = tuple[int, int]


@dataclass(slots=True)
class Document:
    """One YAML document: its value and where each node (and each mapping key) stands."""

    index: int
    value: Any
    line: int
    locations: dict[JsonPath, Location] = field(default_factory=dict)
    key_locations: dict[JsonPath, Location] = field(default_factory=dict)
    duplicates: list[tuple[JsonPath, Location, int]] = field(default_factory=list)

    def problems(self, path: str) -> list[Problem]:
        return [
            Problem(path, *loc, ptr, f"duplicate key {ptr[-1]!r} (first defined at line {first})",
                    document=self.index)
            for ptr, loc, first in self.duplicates
        ]

    def location(self, pointer: JsonPath, *, key: bool = False) -> Location:
        """The closest known location for a pointer; `key` prefers the key's line."""
        if key and pointer in self.key_locations:
            return self.key_locations[pointer]
        p = pointer
        while p:
            if p in self.locations:
                return self.locations[p]
            p = p[:-1]
        return self.locations.get((), (self.line, 1))


class _Reject(Exception):
    def __init__(self, message: str, line: int, column: int, pointer: JsonPath = ()) -> None:
        super().__init__(message)
        self.message, self.line, self.column, self.pointer = message, line, column, pointer


def resolve_plain(value: str) -> Any:
    """Type of an unquoted scalar under our rules (a strict subset of YAML 1.2 core)."""
    if value in _NULLS:
        return None
    if value == "true":
        return True
    if value == "false":
        return False
    if _INT.match(value):
        return int(value)
    if _FLOAT.match(value):
        return float(value)
    return value


def _mark(event: Any) -> Location:
    m = event.start_mark
    return (m.line + 1, m.column + 1)


def _position(data: bytes, offset: int) -> Location:
    line = data.count(b"\n", 0, offset) + 1
    return line, offset - (data.rfind(b"\n", 0, offset) + 1) + 1


def decode(data: bytes, path: str) -> tuple[str | None, list[Problem]]:
    """Bytes to text, or a problem that says where the file stops being UTF-8."""
    if len(data) > MAX_FILE_BYTES:
        return None, [Problem(path, 1, 1, (), f"file is {len(data)} bytes; the limit is {MAX_FILE_BYTES}")]
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    nul = data.find(b"\x00")
    if nul >= 0:
        line, col = _position(data, nul)
        hint = " (is it UTF-16? save it as UTF-8)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        return None, [Problem(path, line, col, (), f"file contains a NUL byte; schedules are UTF-8 text{hint}")]
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as e:
        line, col = _position(data, e.start)
        return None, [Problem(path, line, col, (), f"file is not valid UTF-8 (byte 0x{data[e.start]:02x})")]


def load_documents(text: str, path: str) -> tuple[list[Document], list[Problem]]:
    """All non-empty documents of a stream, or the first problem that stops the reading."""
    docs: list[Document] = []
    problems: list[Problem] = []
    loader = _Loader(text)
    try:
        get = loader.get_event
        event = get()  # StreamStart
        while True:
            event = get()
            if isinstance(event, yaml.StreamEndEvent) or event is None:
                break
            # DocumentStart
            if len(docs) >= MAX_DOCUMENTS:
                raise _Reject(f"more than {MAX_DOCUMENTS} documents in one file", *_mark(event))
            doc = Document(index=len(docs), value=None, line=_mark(event)[0])
            doc.value = _node(get, get(), (), doc, 0)
            get()  # DocumentEnd
            problems.extend(doc.problems(path))
            if doc.value is not None:  # an empty document (a lone `---`) holds no schedule
                docs.append(doc)
    except _Reject as r:
        return docs, [*problems, Problem(path, r.line, r.column, r.pointer, r.message, document=len(docs))]
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = " ".join(s for s in (e.context, e.problem) if s)
        return docs, [*problems, Problem(path, line, col, (), f"YAML syntax error: {what}", document=len(docs))]
    except yaml.YAMLError as e:  # pragma: no cover - libyaml reports marks for all we know of
        return docs, [Problem(path, 1, 1, (), f"YAML error: {e}")]
    finally:
        loader.dispose()
    return docs, problems


def _node(get: Any, event: Any, ptr: JsonPath, doc: Document, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise _Reject(f"nesting deeper than {MAX_DEPTH} levels", *_mark(event), ptr)
    if isinstance(event, yaml.AliasEvent):
        raise _Reject(
            f"aliases (*{event.anchor}) are not allowed: write the value out in full", *_mark(event), ptr
        )
    if event.anchor is not None:
        raise _Reject(
            f"anchors (&{event.anchor}) are not allowed: write each value out in full", *_mark(event), ptr
        )
    tag = event.tag
    if tag is not None and not (isinstance(event, yaml.ScalarEvent) and tag == "!" and event.style):
        # libyaml reports quoted scalars with the non-specific tag "!"; every explicit tag is refused.
        raise _Reject(f"tags ({tag}) are not allowed in schedule files", *_mark(event), ptr)
    loc = _mark(event)
    doc.locations[ptr] = loc
    if isinstance(event, yaml.ScalarEvent):
        if not event.style and event.implicit[0]:  # plain (libyaml says "" or None)
            return resolve_plain(event.value)
        return event.value
    if isinstance(event, yaml.SequenceStartEvent):
        items: list[Any] = []
        event = get()
        while not isinstance(event, yaml.SequenceEndEvent):
            items.append(_node(get, event, (*ptr, len(items)), doc, depth + 1))
            event = get()
        return items
    if isinstance(event, yaml.MappingStartEvent):
        mapping: dict[str, Any] = {}
        event = get()
        while not isinstance(event, yaml.MappingEndEvent):
            if not isinstance(event, yaml.ScalarEvent):
                raise _Reject("mapping keys must be plain strings", *_mark(event), ptr)
            if event.anchor is not None or (event.tag is not None and not event.style):
                raise _Reject("anchors and tags are not allowed on keys", *_mark(event), ptr)
            key = event.value  # keys are always strings: `on:` stays "on"
            kloc = _mark(event)
            kptr = (*ptr, key)
            if key in mapping:
                # Reported, and the first value kept, so the rest of the file is still checked.
                doc.duplicates.append((kptr, kloc, doc.key_locations[kptr][0]))
                _node(get, get(), (*ptr, "\0dup"), doc, depth + 1)
            else:
                doc.key_locations[kptr] = kloc
                mapping[key] = _node(get, get(), kptr, doc, depth + 1)
            event = get()
        return mapping
    raise _Reject(f"unexpected YAML event {type(event).__name__}", *loc, ptr)  # pragma: no cover
