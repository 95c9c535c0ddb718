"""A strict YAML reader built on libyaml's event stream.

Working from events (not from PyYAML's constructors) lets us see anchors, aliases, tags and
depth before any object is built, keep the line and column of every node, and decide scalar
types ourselves: only `true`/`false` are booleans, and `yes`, `0755`, `12:30` or `2026-01-01`
stay strings for the schema to judge.
"""

from __future__ import annotations

import os
import re
from sys import intern
from typing import Any

import yaml

from reconciler.core.problems import EXCERPT, JsonPath, Problem, excerpt, printable

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
_NUMBER_START = frozenset("+-.0123456789")
Location = tuple[int, int]


class Document:
    """One YAML document: its value and where each node (and each mapping key) stands.

    Locations are found lazily: valid files are read once without them, and a document asked
    where a problem is gets them from one more, tracked, reading of its file.
    """

    __slots__ = ("_key_locations", "_locations", "_stream", "duplicates", "index", "line", "value")

    def __init__(self, index: int, value: Any, line: int, stream: _Stream | None = None) -> None:
        self.index, self.value, self.line, self._stream = index, value, line, stream
        self._locations: dict[JsonPath, Location] | None = None if stream else {}
        self._key_locations: dict[JsonPath, Location] | None = None if stream else {}
        self.duplicates: list[tuple[JsonPath, Location, int]] = []

    @property
    def locations(self) -> dict[JsonPath, Location]:
        if self._locations is None:
            self._fill()
        assert self._locations is not None
        return self._locations

    @property
    def key_locations(self) -> dict[JsonPath, Location]:
        if self._key_locations is None:
            self._fill()
        assert self._key_locations is not None
        return self._key_locations

    def _fill(self) -> None:
        assert self._stream is not None
        tracked = self._stream.tracked(self.index)
        self._locations, self._key_locations = tracked.locations, tracked.key_locations

    def problems(self, path: str) -> list[Problem]:
        return [
            Problem(path, *loc, ptr, f"duplicate key {excerpt(ptr[-1])} (first defined at line {first})",
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


class _Stream:
    """The text of a file, read again with locations on demand (at most once)."""

    def __init__(self, text: str, path: str) -> None:
        self.text, self.path = text, path
        self._docs: list[Document] | None = None

    def tracked(self, index: int) -> Document:
        if self._docs is None:
            self._docs = _read(self.text, self.path, track=True)[0]
        return self._docs[index]


class _Untracked(Exception):
    """Raised by a fast, untracked reading at anything irregular: read again, tracked."""


class _Reject(Exception):
    def __init__(self, message: str, line: int, column: int, pointer: JsonPath = ()) -> None:
        super().__init__(message)
        self.message, self.line, self.column, self.pointer = message, line, column, pointer


# 10,000 schedules repeat the same keys and short values ("schedule", "forbid", "10s"):
# interning them shares one string each instead of one per document.
INTERN_MAX = 24


def resolve_plain(value: str) -> Any:
    """Type of an unquoted scalar under our rules (a strict subset of YAML 1.2 core)."""
    if value in _NULLS:
        return None
    if value == "true":
        return True
    if value == "false":
        return False
    if value[0] not in _NUMBER_START:  # most values are words: no pattern to try
        return intern(value) if len(value) <= INTERN_MAX else value
    if _INT.match(value):
        return int(value)
    if _FLOAT.match(value):
        return float(value)
    return intern(value) if len(value) <= INTERN_MAX else value


_STANDARD_TAG = "tag:yaml.org,2002:"


def _name(text: str) -> str:
    """An anchor's or a tag's name as a message shows it: printable, and no longer than an excerpt."""
    prefix = _STANDARD_TAG if text.startswith(_STANDARD_TAG) else ""
    rest = text[len(prefix):]
    return prefix + printable(rest[:EXCERPT]) + ("..." if len(rest) > EXCERPT else "")


def _mark(event: Any) -> Location:
    m = event.start_mark
    return (m.line + 1, m.column + 1)


def _position(data: bytes, offset: int) -> Location:
    line = data.count(b"\n", 0, offset) + 1
    return line, offset - (data.rfind(b"\n", 0, offset) + 1) + 1


def read_capped(path: str | os.PathLike[str]) -> bytes:
    """A file's bytes, but never more than one byte past the size limit: a 10 GB file named
    *.yaml is refused without being read into memory. Reads what the file's size asks for, not a
    buffer of the limit's size for every file (the size is a hint: the file may have grown)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks, total = [], 0
        want = min(os.fstat(fd).st_size, MAX_FILE_BYTES) + 1
        while want > 0:
            chunk = os.read(fd, want)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            want = MAX_FILE_BYTES + 1 - total
        return b"".join(chunks)
    finally:
        os.close(fd)


def decode(data: bytes, path: str) -> tuple[str | None, list[Problem]]:
    """Bytes to text, or a problem that says where the file stops being UTF-8."""
    if len(data) > MAX_FILE_BYTES:
        return None, [Problem(path, 1, 1, (), f"file is larger than {MAX_FILE_BYTES} bytes (1 MiB), "
                              "the limit for a schedule file")]
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


# What libyaml's reader refuses (it would report it at 1:1), and three characters it reads as
# line breaks although YAML 1.2 and editors do not: NEL, U+2028 and U+2029 can hide a live key in
# what an editor shows as a comment.
_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")
_BREAKS = {"\x85": "NEL (next line)", "\u2028": "LINE SEPARATOR", "\u2029": "PARAGRAPH SEPARATOR"}


def _text_position(text: str, offset: int) -> Location:
    """Line and column of a character as libyaml counts them (\n, \r\n and \r end a line)."""
    line = text.count("\n", 0, offset) + text.count("\r", 0, offset) - text.count("\r\n", 0, offset) + 1
    start = max(text.rfind("\n", 0, offset), text.rfind("\r", 0, offset)) + 1
    return line, offset - start + 1


def _bad_character(text: str, path: str) -> Problem | None:
    found = _BAD_CHARS.search(text)
    if found is None:
        return None
    char = found.group()
    code = f"U+{ord(char):04X}"
    escape = f"\\u{ord(char):04x}"
    if char in _BREAKS:
        message = (f"character {code} ({_BREAKS[char]}) is not allowed: YAML 1.1 reads it as a line break and "
                   f"editors do not, so it can hide text; write {escape} in a double-quoted string if you mean it")
    else:
        kind = "non-character" if char in "\ufffe\uffff" else "control character"
        message = f"{kind} {code} is not allowed; write {escape} in a double-quoted string if you mean it"
    return Problem(path, *_text_position(text, found.start()), (), message)


def load_documents(text: str, path: str) -> tuple[list[Document], list[Problem]]:
    """All non-empty documents of a stream, or the first problem that stops the reading."""
    bad = _bad_character(text, path)
    if bad is not None:
        return [], [bad]
    try:
        return _read(text, path, track=False)
    except _Untracked:
        return _read(text, path, track=True)


def _nested_too_deep(text: str, path: str, mark: Any) -> tuple[list[Document], list[Problem]]:
    docs, problems = _read(text[:mark.index], path, track=True, truncated=True)
    ours = f"nesting deeper than {MAX_DEPTH} levels"
    if problems and problems[-1].message == ours:
        return docs, problems
    return docs, [*problems[:-1], Problem(path, mark.line + 1, mark.column + 1, (), ours, document=len(docs))]


def _read(text: str, path: str, *, track: bool, truncated: bool = False) -> tuple[list[Document], list[Problem]]:
    docs: list[Document] = []
    problems: list[Problem] = []
    stream = None if track else _Stream(text, path)
    loader = _Loader(text)
    count = 0  # documents, empty ones too: 262,000 lone `---` lines are work as well
    try:
        get = loader.get_event
        event = get()  # StreamStart
        while True:
            event = get()
            if isinstance(event, yaml.StreamEndEvent) or event is None:
                break
            # DocumentStart
            if count >= MAX_DOCUMENTS:
                raise _Reject(f"more than {MAX_DOCUMENTS} documents in one file", *_mark(event))
            count += 1
            event = get()
            doc = Document(index=len(docs), value=None, line=_mark(event)[0], stream=stream)
            doc.value = _node(get, event, (), doc, 0) if track else _plain_node(get, event, 0)
            get()  # DocumentEnd
            problems.extend(doc.problems(path))
            if doc.value is not None:  # an empty document (a lone `---`) holds no schedule
                docs.append(doc)
    except _Reject as r:
        if not track:
            raise _Untracked from r
        return docs, [*problems, Problem(path, r.line, r.column, r.pointer, r.message, document=len(docs))]
    except yaml.MarkedYAMLError as e:
        if "maximum nesting depth" in (e.problem or "") and e.problem_mark is not None and not truncated:
            # libyaml (from PyYAML 6.0.3) looks ahead and stops at 1,000 flow levels before our
            # check sees level 65: read up to that point again, so our check is the one that speaks.
            return _nested_too_deep(text, path, e.problem_mark)
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = _syntax_hint(text, e) or " ".join(s for s in (e.context, e.problem) if s)
        return docs, [*problems, Problem(path, line, col, (), f"YAML syntax error: {what}", document=len(docs))]
    except yaml.YAMLError as e:  # pragma: no cover - libyaml reports marks for all we know of
        return docs, [Problem(path, 1, 1, (), f"YAML error: {e}")]
    finally:
        loader.dispose()
    return docs, problems


_QUOTABLE = re.compile(r"\s*(?:- )?([\w.-]+):[ \t]+(\*[^\"#]*?)[ \t]*\Z")


def _syntax_hint(text: str, error: yaml.MarkedYAMLError) -> str | None:
    """Plain words for two slips libyaml words obscurely: a tab that indents, an unquoted `*`."""
    mark = error.problem_mark
    if mark is None or not 0 <= mark.index < len(text):
        return None
    start = mark.index - mark.column  # marks count characters, as str indexes do
    if text[mark.index] == "\t" and not text[start:mark.index].strip(" \t"):
        return "tabs cannot indent YAML: indent with spaces"
    if error.context == "while scanning an alias":
        prefix = "an unquoted value cannot start with '*' (YAML reads it as an alias): quote the expression"
        line = text[start:].partition("\n")[0].rstrip("\r")
        m = _QUOTABLE.match(line)
        return f'{prefix}: {m[1]}: "{m[2]}"' if m else f'{prefix}, e.g. cron: "* * * * *"'
    return None


_Scalar, _SequenceStart, _SequenceEnd = yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.SequenceEndEvent
_MappingStart, _MappingEnd = yaml.MappingStartEvent, yaml.MappingEndEvent


def _plain_scalar(event: Any) -> Any:
    """A scalar's value for the untracked reading, or _Untracked at anything `_node` would refuse."""
    tag = event.tag
    if event.anchor is not None or (tag is not None and not (tag == "!" and event.style)):
        raise _Untracked
    if not event.style and event.implicit[0]:
        try:
            return resolve_plain(event.value)
        except ValueError:
            raise _Untracked from None
    return event.value


def _plain_node(get: Any, event: Any, depth: int) -> Any:
    """`_node` without locations, for the first reading of a file: the same values, and _Untracked
    wherever `_node` would report a problem (the tracked reading then says what and where). Kept
    apart from `_node` since every event of every file passes here."""
    if depth > MAX_DEPTH:
        raise _Untracked
    kind = type(event)
    if kind is _Scalar:
        return _plain_scalar(event)
    if event.anchor is not None or event.tag is not None:
        raise _Untracked
    if kind is _MappingStart:
        mapping: dict[str, Any] = {}
        event = get()
        while type(event) is not _MappingEnd:
            if type(event) is not _Scalar or event.anchor is not None or (event.tag is not None and not event.style):
                raise _Untracked
            key = intern(event.value)
            if key in mapping:
                raise _Untracked
            event = get()
            mapping[key] = _plain_scalar(event) if type(event) is _Scalar and depth < MAX_DEPTH \
                else _plain_node(get, event, depth + 1)
            event = get()
        return mapping
    if kind is _SequenceStart:
        items: list[Any] = []
        event = get()
        while type(event) is not _SequenceEnd:
            items.append(_plain_scalar(event) if type(event) is _Scalar and depth < MAX_DEPTH
                         else _plain_node(get, event, depth + 1))
            event = get()
        return items
    raise _Untracked  # an alias, or an event no document holds


def _node(get: Any, event: Any, ptr: JsonPath, doc: Document, depth: int) -> Any:
    """A node's value, its locations recorded and every problem raised as _Reject (the tracked reading)."""
    if depth > MAX_DEPTH:
        raise _Reject(f"nesting deeper than {MAX_DEPTH} levels", *_mark(event), ptr)
    if isinstance(event, yaml.AliasEvent):
        raise _Reject(
            f"aliases (*{_name(event.anchor or '')}) are not allowed: write the value out in full", *_mark(event), ptr
        )
    if event.anchor is not None:
        raise _Reject(
            f"anchors (&{_name(event.anchor)}) are not allowed: write each value out in full", *_mark(event), ptr
        )
    tag = event.tag
    if tag is not None and not (isinstance(event, yaml.ScalarEvent) and tag == "!" and event.style):
        # libyaml reports quoted scalars with the non-specific tag "!"; every explicit tag is refused.
        raise _Reject(f"tags ({_name(tag)}) are not allowed in schedule files", *_mark(event), ptr)
    doc.locations[ptr] = _mark(event)
    if isinstance(event, yaml.ScalarEvent):
        if not event.style and event.implicit[0]:  # plain (libyaml says "" or None)
            try:
                return resolve_plain(event.value)
            except ValueError:  # Python reads no integer of more than 4,300 digits
                raise _Reject(f"an integer of {len(event.value)} digits is too large to read: "
                              "quote it if it is text", *_mark(event), ptr) from None
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
            key = intern(event.value)  # keys are always strings: `on:` stays "on"
            if key in mapping:
                # Reported, and the first value kept, so the rest of the file is still checked.
                kptr = (*ptr, key)
                doc.duplicates.append((kptr, _mark(event), doc.key_locations[kptr][0]))
                _node(get, get(), (*ptr, "\0dup"), doc, depth + 1)
            else:
                kptr = (*ptr, key)
                doc.key_locations[kptr] = _mark(event)
                mapping[key] = _node(get, get(), kptr, doc, depth + 1)
            event = get()
        return mapping
    raise _Reject(f"unexpected YAML event {type(event).__name__}", *_mark(event), ptr)  # pragma: no cover
