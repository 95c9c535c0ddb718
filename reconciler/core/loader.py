"""Files to schedules: the one loader behind `validate`, `plan`, `next` and the daemon.

Pure apart from reading the files it is handed: bad input becomes Problems (values), and a
document becomes a Schedule only when it has no error at all.
"""

from __future__ import annotations

import contextlib
import difflib
import ipaddress
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from reconciler.core import cron
from reconciler.core.defaults import DEFAULTS_FILE, Defaults, DefaultsChecker, chain_for, directory_of, merge
from reconciler.core.deps import DepRef, ref_of
from reconciler.core.durations import DurationError, DurationTooLong, parse_duration
from reconciler.core.limits import whole
from reconciler.core.model import (
    NO_DEPS,
    Deps,
    EnvValue,
    Notify,
    Policy,
    Requirement,
    Retries,
    Schedule,
    Source,
    env_values,
    names_shared,
    pack_spec,
    spec_hash,
)
from reconciler.core.pools import POOLS, POOLS_FILE, pool_problem, uses_pool
from reconciler.core.problems import JsonPath, Problem, Severity, display_path, excerpt, has_errors
from reconciler.core.schema import SchemaValidator
from reconciler.core.setrules import SetRules
from reconciler.core.timerules import (
    LIBRARY_DIRS,
    Library,
    LibraryFile,
    build_library,
    library_entry,
    parse_library_file,
    references,
    rules_of,
    window_problems,
)
from reconciler.core.timing import EPOCH, HORIZON, Timing
from reconciler.core.yamlstrict import Document, decode, load_documents, read_capped
from reconciler.kinds import kind_of, present

SUFFIXES = (".yaml", ".yml")
_MIN_EVERY = timedelta(seconds=1)
MAX_CRON = 1024  # characters (the schema's maxLength): every value of every field listed is under 400


class PathError(Exception):
    """A path to load does not exist or cannot be read: a usage error, never 'zero schedules'."""


@dataclass(frozen=True, slots=True)
class FileResult:
    path: str
    schedules: tuple[Schedule, ...]  # empty when loaded with build_records=False
    problems: tuple[Problem, ...]
    unbuilt: tuple[tuple[str, Source], ...] = ()  # names of valid documents not built as records
    graph: tuple[DepRef, ...] = ()  # the valid documents that depend on other schedules
    # Unbuilt documents that name windows, calendars or a pool, whose references validate checks.
    unbuilt_rules: tuple[tuple[dict[str, Any], Source], ...] = ()

    @property
    def names(self) -> tuple[tuple[str, Source], ...]:
        """Every valid document's name and place, built or not."""
        return tuple((s.name, s.source) for s in self.schedules) + self.unbuilt


# A document that passed every check, as plain values: spec, line, document index, spec hash ("" if
# not computed).
ValidDocument = tuple[dict[str, Any], int, int, str]


@dataclass(frozen=True, slots=True)
class Checked:
    """One file read and checked, before any record is built. Plain values only (specs as YAML
    gives them), so that a helper process can check files and send this to be built."""

    path: str
    problems: tuple[Problem, ...]
    valid: tuple[ValidDocument, ...]


def build_file(checked: Checked) -> FileResult:
    """The records of a checked file's valid documents; a record that cannot be built (a bug)
    becomes a problem of the file, as a check that failed does."""
    schedules: list[Schedule] = []
    problems = list(checked.problems)
    for spec, line, index, digest in checked.valid:
        try:
            schedules.append(build(Document(index, spec, line), checked.path, digest or None))
        except Exception as e:
            problems.append(internal_problem(checked.path, line, e, "checking this schedule", index))
    return FileResult(checked.path, tuple(schedules), tuple(problems), graph=_graph(checked))


def _graph(checked: Checked) -> tuple[DepRef, ...]:
    refs = (ref_of(spec, Source(checked.path, line, index)) for spec, line, index, _ in checked.valid)
    return tuple(r for r in refs if r is not None)


def names_of(checked: Checked) -> FileResult:
    """A checked file's names and places only (validate builds no records)."""
    names = tuple((spec["name"], Source(checked.path, line, index)) for spec, line, index, _ in checked.valid)
    ruled = tuple((spec, Source(checked.path, line, index)) for spec, line, index, _ in checked.valid
                  if "windows" in spec or "calendar" in spec or uses_pool(spec) is not None)
    return FileResult(checked.path, (), checked.problems, names, _graph(checked), ruled)


@dataclass(frozen=True)
class LoadResult:
    files: tuple[FileResult, ...]
    schedules: tuple[Schedule, ...]
    problems: tuple[Problem, ...]
    names: tuple[str, ...]  # of every valid schedule with a unique name
    defaults: Mapping[str, Defaults] = field(default_factory=dict)  # directory defaults, by directory

    @property
    def valid(self) -> bool:
        return not has_errors(self.problems)


@dataclass
class Loader:
    """Holds what is costly to build once (the validators); everything else is per call."""

    validator: SchemaValidator = field(default_factory=SchemaValidator)
    strict_cron: bool = False  # refuse the cron extensions beyond cronie (L, W, #)
    _defaults_checker: DefaultsChecker | None = field(default=None, repr=False)

    @property
    def defaults_checker(self) -> DefaultsChecker:
        """Built on the first defaults file met: most trees have none."""
        if self._defaults_checker is None:
            self._defaults_checker = DefaultsChecker()
        return self._defaults_checker

    def load_bytes(self, path: str, data: bytes, now: datetime, *, build_records: bool = True,
                   defaults: Sequence[Defaults] = ()) -> FileResult:
        """One file's problems and schedules; `build_records=False` (validate) keeps names only.
        Never raises for what a file holds: an unexpected error rejects that file, not the process.
        The one path from a file to schedules: check_bytes, then build_file (a helper process of
        the daemon's first load runs check_bytes, and the parent build_file)."""
        checked = self.check_bytes(path, data, now, hashed=build_records, defaults=defaults)
        return build_file(checked) if build_records else names_of(checked)

    def check_bytes(self, path: str, data: bytes, now: datetime, *, hashed: bool = True,
                    defaults: Sequence[Defaults] = ()) -> Checked:
        """Decode, parse and check one file: its problems, and its valid documents as plain values
        (with their spec hashes when `hashed`). Never raises for what a file holds."""
        path = display_path(path)  # it names the file in messages, records, the ledger and the API
        try:
            return self._check_bytes(path, data, now, hashed, defaults)
        except Exception as e:
            return Checked(path, (internal_problem(path, 1, e, "reading this file"),), ())

    def _check_bytes(self, path: str, data: bytes, now: datetime, hashed: bool,
                     defaults: Sequence[Defaults] = ()) -> Checked:
        text, problems = decode(data, path)
        if text is None:
            return Checked(path, tuple(problems), ())
        docs, problems = load_documents(text, path)
        if defaults:  # directory defaults: checked and recorded as the effective spec
            for doc in docs:
                if isinstance(doc.value, dict):
                    doc.value = merge(doc.value, defaults)
        valid: list[ValidDocument] = []
        for doc in docs:
            try:
                problems.extend(self.check(doc, path, now))
                if not any(p.document == doc.index and p.severity == "error" for p in problems):
                    valid.append((doc.value, doc.line, doc.index, spec_hash(doc.value) if hashed else ""))
            except Exception as e:
                problems.append(internal_problem(path, doc.line, e, "checking this schedule", doc.index))
        if not docs and not problems:
            problems.append(Problem(path, 1, 1, (), "file holds no schedule", severity="warning"))
        return Checked(path, tuple(problems), tuple(valid))

    def check(self, doc: Document, path: str, now: datetime) -> list[Problem]:
        """Every problem of one document: its shape, the schema, and the semantic checks."""
        if not isinstance(doc.value, dict):
            line, col = doc.location(())
            # Named by its kind only: a document that is one bare value (a token behind a link,
            # a pasted key) is never quoted.
            return [Problem(path, line, col, (), f"a schedule is a mapping of fields, got {_kind(doc.value)}",
                            document=doc.index)]
        problems = self.validator.problems(doc, path)
        problems.extend(semantic_problems(doc, path, now, strict_cron=self.strict_cron))
        return problems

    def load_paths(self, paths: Sequence[str | Path], now: datetime | None = None, *,
                   build_records: bool = True, selector: Mapping[str, str] | None = None) -> LoadResult:
        now = now or datetime.now(UTC)
        found = discover(paths)
        datas = {}
        for f in found.files:
            try:
                datas[str(f)] = read_capped(f)
            except OSError as e:
                raise PathError(f"{f}: cannot read: {e.strerror}") from e
        loaded = self.load_files(datas, now, build_records=build_records, selector=selector,
                                 library=load_library(paths))
        skipped = tuple(s.problem(display_path(s.full)) for s in found.skipped)
        return replace(loaded, problems=loaded.problems + skipped) if skipped else loaded


    def load_files(self, files: Mapping[str, bytes], now: datetime, *, build_records: bool = True,
                   selector: Mapping[str, str] | None = None, library: Library | None = None) -> LoadResult:
        """Files (path -> bytes) as one set: defaults files first, then each schedule file with the
        defaults above it, then the set rules."""
        by_dir, results = self.read_defaults(files)
        for path, data in files.items():
            if os.path.basename(path) != DEFAULTS_FILE:
                results.append(self.load_bytes(path, data, now, build_records=build_records,
                                               defaults=chain_for(path, by_dir)))
        return replace(combine(results, library, selector), defaults=by_dir)

    def read_defaults(self, files: Mapping[str, bytes]) -> tuple[dict[str, Defaults], list[FileResult]]:
        """The defaults files among `files` (path -> bytes), by the directory they govern, and one
        result per defaults file for its problems."""
        by_dir: dict[str, Defaults] = {}
        results = []
        for path, data in files.items():
            if os.path.basename(path) != DEFAULTS_FILE:
                continue
            shown = display_path(path)
            found, problems = self.defaults_checker.check(shown, directory_of(path), data)
            if found is not None:
                by_dir[found.directory] = found
            results.append(FileResult(shown, (), tuple(problems)))
        return by_dir, results


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    kinds = ((list, "a list"), (str, "a string"), (int, "a number"), (float, "a number"))
    return next((name for t, name in kinds if isinstance(value, t)), "a value of another kind")


def internal_problem(path: str, line: int, error: Exception, doing: str, document: int = 0) -> Problem:
    """A bug met while loading, as a problem of the file: the revision is rejected, nothing stops.
    Only the exception's type is named: its message may quote the file, which may hold a secret."""
    return Problem(path, line, 1, (), f"internal error ({type(error).__name__}) while {doing}: it is rejected; "
                   "please report this as a bug of the reconciler", document=document)


def combine(results: Iterable[FileResult], library: Library | None = None,
            selector: Mapping[str, str] | None = None) -> LoadResult:
    """The set-level view: all schedules, all problems, and the set rules (names unique across
    files, the dependency graph) applied by the same object the daemon keeps up to date file by
    file; then each schedule's windows and calendars resolved against the library (the shared files)."""
    files = tuple(results)
    rules: SetRules[int] = SetRules()
    for i, r in enumerate(files):
        rules.add(i, r)
    problems = [p for r in files for p in r.problems]
    problems.extend(rules.problems())
    problems.extend(rules.graph_problems(selector))
    schedules, unresolved = resolve(rules.unique.values(), library or Library())
    problems.extend(unresolved)
    for r in files:
        for spec, source in r.unbuilt_rules:
            problems.extend(reference_problems(spec, source, library or Library()))
    if library is not None:
        problems.extend(library.problems)
    return LoadResult(files, tuple(schedules), tuple(problems), rules.names)


class Skipped(NamedTuple):
    """An entry named like a schedule that is not read, and why."""

    rel: str
    full: str
    message: str
    severity: Severity

    def problem(self, path: str) -> Problem:
        return Problem(path, 1, 1, (), self.message, self.severity)


class Tree(NamedTuple):
    files: list[tuple[str, str]]  # (relative path, full path), sorted
    skipped: list[Skipped]


class Found(NamedTuple):
    files: list[Path]
    skipped: list[Skipped]


# A link out of the tree could make us read, and quote in a problem, any file the process can
# read (`ln -s /var/run/secrets/.../token x.yaml`). Its target is not named either.
OUTSIDE = "a link to a path outside the directory being read: refused, it is not read"
_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root if root.endswith("/") else root + "/")


def _not_a_file(mode: int) -> str:
    kind = next((name for test, name in _KINDS if test(mode)), None)
    return f"{kind}, not a regular file: skipped" if kind else "not a regular file: skipped"


def odd_entry(path: str, root: str) -> tuple[str, Severity] | None:
    """Why the file at `path` (below the resolved `root`) is not read as a schedule: a link out
    of the tree (an error), or something that is not a regular file (a warning). None when it
    is a regular file or a directory inside the tree, or when it is gone."""
    if not _inside(os.path.realpath(path), root):
        return OUTSIDE, "error"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return ("a link to nothing: skipped", "warning") if os.path.islink(path) else None
    except OSError as e:  # a loop of links, say
        return f"cannot be followed ({e.strerror}): skipped", "warning"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return _not_a_file(mode), "warning"


def discover(paths: Sequence[str | Path]) -> Found:
    """Files named, and *.yaml/*.yml below directories named, skipping hidden entries (.git);
    and what is named like a schedule but not read, with the reason."""
    out: list[Path] = []
    skipped: list[Skipped] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            tree = list_tree(p)
            out.extend(Path(full) for _, full in tree.files)
            skipped.extend(tree.skipped)
        elif p.is_file():
            # A file named on its own is read in its directory: a link out of it is refused too.
            odd = odd_entry(str(p), os.path.realpath(p.parent))
            if odd is None:
                out.append(p)
            else:
                skipped.append(Skipped(p.name, str(p), *odd))
        elif p.exists():
            raise PathError(f"{p}: not a regular file or directory")
        else:
            raise PathError(f"{p}: no such file or directory")
    return Found(out, skipped)


def list_tree(target: str | Path) -> Tree:
    """Schedule files below `target` as (relative path, full path), sorted; and the entries named
    like schedules that are not read (a FIFO, a device, a dangling link) or refused (a link that
    leads out of the tree).

    Hidden entries (.git, a ConfigMap's ..data) are skipped without being entered: an object
    store can hold 100,000 files. Symlinks within the tree are followed (a ConfigMap's files are
    links into ..data), but each directory is read once, at its first path in name order: a link
    back up the tree would otherwise be walked until the path is too long."""
    root = os.path.realpath(target)
    out: list[tuple[str, str]] = []
    skipped: list[Skipped] = []
    seen: set[tuple[int, int]] = set()
    stack = [(str(target), "")]
    while stack:  # os.scandir with plain strings: pathlib is slower per file (docs/benchmarks.md)
        path, rel_dir = stack.pop()
        try:
            st = os.stat(path)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
            subdirs = []
            for entry in entries:
                name = entry.name
                if name.startswith("."):
                    continue
                rel = f"{rel_dir}{name}"
                if entry.is_symlink():  # the rare case: judged in full
                    odd = odd_entry(entry.path, root)
                    if odd is not None:
                        if name.endswith(SUFFIXES) or odd[0] == OUTSIDE:
                            skipped.append(Skipped(rel, entry.path, *odd))
                        continue
                if entry.is_dir():
                    if not rel_dir and name in LIBRARY_DIRS:
                        continue  # calendars/ and windows/ hold shared files, not schedules
                    subdirs.append((entry.path, f"{rel}/"))
                elif name.endswith(SUFFIXES):
                    if not rel_dir and name == POOLS_FILE:
                        continue  # the pools, read with the shared files
                    if entry.is_file():
                        out.append((rel, entry.path))
                    else:
                        with contextlib.suppress(FileNotFoundError):  # gone since the listing
                            skipped.append(Skipped(rel, entry.path, _not_a_file(entry.stat().st_mode), "warning"))
        except FileNotFoundError:
            continue  # removed while we walked; the next event brings it up to date
        except OSError as e:
            raise PathError(f"{path}: cannot read: {e.strerror}") from e
        stack.extend(reversed(subdirs))
    out.sort()
    skipped.sort()
    return Tree(out, skipped)


# ---- semantic checks: what the schema cannot say ---------------------------------------------

@lru_cache(maxsize=4096)
def zone(name: str) -> ZoneInfo | None:
    if name != name.strip() or name.lower() in ("localtime", "posixrules"):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


@cache
def _zone_names() -> tuple[dict[str, str], dict[str, str]]:
    """Known zones by lower-case name, and by lower-case last part ("berlin"); built once, on the
    first unknown zone, since listing them walks the zone files."""
    names = sorted((n for n in available_timezones() if n.lower() not in ("localtime", "posixrules")),
                   key=lambda n: (n.count("/"), n))
    cities: dict[str, str] = {}
    for n in names:  # a city in two zones (a link): the shallower name wins
        cities.setdefault(n.rsplit("/", 1)[-1].lower(), n)
    return {n.lower(): n for n in names}, cities


@lru_cache(maxsize=256)
def zone_suggestion(name: str) -> str | None:
    """The zone a misspelt name most likely means: 'America/New_Yrok' -> 'America/New_York'."""
    names, cities = _zone_names()
    key = name.strip().lower().replace(" ", "_")
    # An offset is never guessed: Etc/GMT+1 is UTC-1, and GMT+1 is one edit from GMT+0.
    fuzzy = not any(ch.isdigit() for ch in key)
    for table in (names, cities) if fuzzy and "/" not in key else (names,):
        if key in table:
            return table[key]
        close = difflib.get_close_matches(key, table, n=1, cutoff=0.8) if fuzzy else []
        if close:
            return table[close[0]]
    return None


@lru_cache(maxsize=16384)
def _cron(expression: str, strict: bool = False) -> cron.CronExpr | str | None:
    """The parsed expression, the reason it is wrong, or None when it is too long to read (the
    schema says so): a field of 5,000 digits is more than Python converts to an int."""
    if len(expression) > MAX_CRON:
        return None
    try:
        return cron.parse(expression, strict=strict)
    except cron.CronError as e:
        return str(e)


_TS_FIX = re.compile(r"[tz]")
# Kept in sync with the schema's `timestamp` pattern (a test compares them): values it rejects are
# the schema's to report, once.
TIMESTAMP_PATTERN = (r"^(19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-[0-9]{2}-[0-9]{2}"
                     r"[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?([Zz]|[+-][0-9]{2}:[0-9]{2})?(?![\s\S])")
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)
_RANGE = "1970-01-01T00:00:00Z to before 9999-01-01T00:00:00Z"


@lru_cache(maxsize=4096)
def parse_timestamp(text: str, tz: ZoneInfo) -> datetime:
    """RFC 3339; without an offset the wall time is read in `tz` (and must exist there). The
    instant lies in [EPOCH, HORIZON), so that no zone shift or slot arithmetic can overflow.
    A ValueError's message says why, complete as it stands."""
    try:
        value = datetime.fromisoformat(_TS_FIX.sub(lambda m: m.group().upper(), text))
    except ValueError as e:
        # datetime's "Invalid isoformat string: '...'" quotes the whole value and adds nothing.
        detail = "" if "isoformat" in str(e) else f": {e}"
        raise ValueError(f"{excerpt(text)} is not a valid timestamp{detail}") from None
    try:
        if value.tzinfo is not None:
            instant = value.astimezone(UTC)
        else:
            aware = value.replace(tzinfo=tz)
            if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != value:
                raise ValueError(f"{text} does not exist in {tz.key} (skipped by a daylight-saving change)")
            instant = aware.astimezone(UTC)
    except OverflowError:  # shifted past year 1 or 9999
        instant = None
    if instant is None or not EPOCH <= instant < HORIZON:  # quoted whole: it parsed, so it hides nothing
        raise ValueError(f"{text} is outside the supported range: a timestamp lies from {_RANGE} (in UTC)")
    return instant


class _Checker:
    def __init__(self, doc: Document, path: str) -> None:
        self.doc, self.path, self.problems = doc, path, list[Problem]()

    def add(self, ptr: JsonPath, message: str, severity: str = "error", key: bool = False) -> None:
        line, col = self.doc.location(ptr, key=key)
        self.problems.append(Problem(self.path, line, col, ptr, message,
                                     "warning" if severity == "warning" else "error", self.doc.index))

    def duration(self, mapping: Any, ptr: JsonPath, key: str) -> timedelta | None:
        if not isinstance(mapping, dict) or key not in mapping:
            return None
        value = mapping[key]
        try:
            return parse_duration(value)
        except DurationTooLong as e:
            if isinstance(value, str):  # an integer over the bound is the schema's (`maximum`)
                self.add((*ptr, key), str(e))
            return None
        except DurationError:
            return None  # the schema reports it

    def timestamp(self, mapping: dict[str, Any], ptr: JsonPath, key: str, tz: ZoneInfo) -> datetime | None:
        value = mapping.get(key)
        if not isinstance(value, str) or not _TIMESTAMP.match(value):
            return None  # the schema reports it
        try:
            return parse_timestamp(value, tz)
        except ValueError as e:
            self.add((*ptr, key), str(e))
        return None

    def url(self, mapping: Any, ptr: JsonPath, key: str) -> None:
        value = mapping.get(key) if isinstance(mapping, dict) else None
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            why = url_problem(value)
            if why is not None:
                self.add((*ptr, key), why)


def semantic_problems(doc: Document, path: str, now: datetime, *, strict_cron: bool = False) -> list[Problem]:
    c = _Checker(doc, path)
    spec = doc.value
    sched = spec.get("schedule")
    if isinstance(sched, dict):
        _check_schedule(c, sched, now, strict_cron)
    run = spec.get("run")
    if isinstance(run, dict):
        for k in present(run):
            k.validate(run, c)
    policy = spec.get("policy")
    if isinstance(policy, dict):
        deadline = c.duration(policy, ("policy",), "starting_deadline")
        if deadline is not None and deadline <= timedelta(0):
            c.add(("policy", "starting_deadline"), "starting_deadline must be longer than 0")
        retries = policy.get("retries")
        if isinstance(retries, dict):
            b = c.duration(retries, ("policy", "retries"), "backoff")
            mb = c.duration(retries, ("policy", "retries"), "max_backoff")
            if b is not None and mb is not None and b > mb:
                c.add(("policy", "retries", "backoff"), "backoff is longer than max_backoff")
    _check_time_rules(c, spec)
    notify = spec.get("notify")
    if isinstance(notify, list):
        for i, entry in enumerate(notify):
            c.url(entry, ("notify", i), "url")
            t = c.duration(entry, ("notify", i), "timeout")
            if t is not None and t <= timedelta(0):
                c.add(("notify", i, "timeout"), "timeout must be longer than 0")
    return c.problems


def _check_schedule(c: _Checker, sched: dict[str, Any], now: datetime, strict_cron: bool = False) -> None:
    ptr: JsonPath = ("schedule",)
    tz = ZoneInfo("UTC")
    tzname = sched.get("timezone", "UTC")
    if isinstance(tzname, str):
        found = zone(tzname)
        if found is None:
            meant = zone_suggestion(tzname)
            hint = f" (did you mean {meant!r}?)" if meant else ": use an IANA name such as Europe/Berlin or UTC"
            c.add((*ptr, "timezone"), f"unknown time zone {excerpt(tzname)}{hint}")
        else:
            tz = found
    expr = sched.get("cron")
    if isinstance(expr, str):
        parsed = _cron(expr, strict_cron)
        if isinstance(parsed, str):
            c.add((*ptr, "cron"), parsed)
    every = c.duration(sched, ptr, "every")
    if every is not None and every < _MIN_EVERY:
        c.add((*ptr, "every"), "every must be at least 1s")
    for key in ("on", "all"):  # dependencies (issue 18): trigger mode's options
        if key in sched and "after" not in sched:
            c.add((*ptr, key), f"{key} only applies to `after`", key=True)
    if "anchor" in sched and "every" not in sched:
        c.add((*ptr, "anchor"), "anchor only applies to `every`", key=True)
    jitter = c.duration(sched, ptr, "jitter")
    if jitter is not None and every is not None and every >= _MIN_EVERY and jitter >= every:
        c.add((*ptr, "jitter"), "jitter must be shorter than the interval of `every`")
    stamps = {k: c.timestamp(sched, ptr, k, tz) for k in ("start", "end", "at", "anchor")}
    start, end, at = stamps["start"], stamps["end"], stamps["at"]
    if start and end and start >= end:
        c.add((*ptr, "end"), "end must be after start")
    if at is not None:
        if (start and at < start) or (end and at > end):
            c.add((*ptr, "at"), "at lies outside start..end: the schedule would never fire")
        elif at <= now:
            c.add((*ptr, "at"), f"at is in the past ({at.isoformat().replace('+00:00', 'Z')}): "
                  "this one-time schedule will not fire", "warning")


_IPV4_STYLE = re.compile(r"[0-9]+(\.[0-9]+){3}\Z")


def url_problem(url: str) -> str | None:
    """Why an http(s) URL can never be requested, or None. The schema has already refused spaces and
    control characters; this parses what is left as an HTTP client would. A URL may carry a
    token, so the messages quote no more of it than an excerpt of the host."""
    try:
        parts = urlsplit(url)
    except ValueError:  # urlsplit refuses only brackets that do not hold an IPv6 address
        return "not a valid URL: its [brackets] do not hold an IPv6 address"
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number in 0-65535
    except ValueError:
        return "not a valid URL: the port is not a number from 0 to 65535"
    host = parts.hostname or ""
    if not host:
        return "not a valid URL: it has no host"
    if parts.netloc.rpartition("@")[2].startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"not a valid URL: {excerpt(host)} is not an IPv6 address"
    elif _IPV4_STYLE.match(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return f"not a valid URL: {excerpt(host)} is not an IPv4 address"
    elif not host.isascii():
        return "write the host name in ASCII, in its xn-- form (IDNA), e.g. xn--exmple-cua.test for exämple.test"
    else:
        for label in host.split("."):
            if label.startswith("xn--"):
                try:
                    ok = bool(label[4:].encode("ascii").decode("punycode"))
                except UnicodeError:
                    ok = False
                if not ok:
                    return f"not a valid URL: {excerpt(label)} is not a valid xn-- (IDNA) label"
    return None


# ---- building the records --------------------------------------------------------------------

# Frozen, so equal policies can be one object: most of 10,000 schedules share a handful.
_policy = lru_cache(maxsize=1024)(Policy)
_retries = lru_cache(maxsize=1024)(Retries)


def build(doc: Document, path: str, digest: str | None = None) -> Schedule:
    """A Schedule from a document that passed every check (so fields are well-formed);
    `digest` is its spec_hash when already known (a helper process computed it)."""
    spec: dict[str, Any] = doc.value
    s = spec["schedule"]
    tz = zone(s.get("timezone", "UTC"))
    assert tz is not None
    ts = {k: parse_timestamp(s[k], tz) for k in ("start", "end", "at", "anchor") if k in s}
    parsed = _cron(s["cron"]) if "cron" in s else None
    assert not isinstance(parsed, str)
    timing = Timing(
        name=spec["name"], tz=tz, cron=parsed,
        every=parse_duration(s["every"]) if "every" in s else None,
        anchor=ts.get("anchor", EPOCH), at=ts.get("at"), start=ts.get("start"), end=ts.get("end"),
        jitter=parse_duration(s.get("jitter", 0)),
    )
    run = kind_of(spec["run"]).build(spec["run"])
    p = spec.get("policy", {})
    rt = p.get("retries", {})
    policy = _policy(p.get("concurrency", "forbid"), parse_duration(p.get("starting_deadline", "1m")),
                     p.get("catchup", "none"),
                     _retries(whole(rt.get("limit", 0)), parse_duration(rt.get("backoff", "10s")),
                              parse_duration(rt.get("max_backoff", "10m"))),
                     whole(p.get("max_runs")), p.get("pool"), whole(p.get("priority", 0)))
    notify = tuple(
        Notify(url=EnvValue(literal=n["url"]) if isinstance(n["url"], str) else EnvValue(from_env=n["url"]["from_env"]),
               events=frozenset(n.get("events", ["failure"])), every_failure=n.get("every_failure", False),
               headers=env_values(n.get("headers")), timeout=parse_duration(n.get("timeout", "5s")))
        for n in spec.get("notify", ()))
    return Schedule(
        name=spec["name"], description=spec.get("description", ""), enabled=spec.get("enabled", True),
        labels=tuple(sorted(spec.get("labels", {}).items())), timing=timing, run=run, policy=policy,
        history_keep=whole(spec.get("history", {}).get("keep", 100)), notify=notify,
        packed_spec=pack_spec(spec), source=Source(path, doc.line, doc.index),
        spec_hash=digest or spec_hash(spec), deps=build_deps(spec), shared=names_shared(spec),
    )


# ---- dependencies (issue 18) ----------------------------------------------------------------------

def build_deps(spec: dict[str, Any]) -> Deps:
    """The dependencies of a checked spec: `schedule.after` (trigger mode) and `requires` (gate mode)."""
    s = spec["schedule"]
    requires = spec.get("requires")
    if "after" not in s and not requires:
        return NO_DEPS
    reqs = tuple(Requirement(r["schedule"], r.get("status", "succeeded"),
                             parse_duration(r["within"]) if "within" in r else None) for r in requires or ())
    return Deps(tuple(s.get("after", ())), s.get("on", "success"), s.get("all", False), reqs)


def build_from_spec(spec: dict[str, Any], origin: str, loader: Loader, now: datetime | None = None) -> Schedule | None:
    """A Schedule from a stored spec (a ledger snapshot), checked again by the same rules, with
    the caller's loader: a new one per spec would compile the schema validators per spec."""
    doc = Document(index=0, value=spec, line=1)
    checked = loader.check(doc, origin, now or datetime.now(UTC))
    if has_errors(checked):
        return None
    return build(doc, origin)


# ---- windows and calendars: the shared files, and each schedule's references (issue 17) ---------


def _check_time_rules(c: _Checker, spec: dict[str, Any]) -> None:
    """What the schema cannot say about a schedule's inline windows (their cron, zone, lengths).
    Its references to shared files are checked once the whole directory is read (`resolve`)."""
    windows = spec.get("windows")
    if isinstance(windows, list):
        for i, entry in enumerate(windows):
            for ptr, message in window_problems(entry, zone, shapes=False):
                if ptr == ("timezone",) and (meant := zone_suggestion(str(entry["timezone"]))):
                    message = f"unknown time zone {excerpt(entry['timezone'])} (did you mean {meant!r}?)"
                c.add(("windows", i, *ptr), message)
    policy = spec.get("policy")
    if isinstance(policy, dict) and "outside" in policy and not windows:
        c.add(("policy", "outside"), "policy.outside applies to windows, and this schedule has none", "warning")
    cal = spec.get("calendar")
    if isinstance(cal, dict) and cal.get("on_excluded") == "next_business_day" and not cal.get("exclude"):
        c.add(("calendar", "on_excluded"), "next_business_day moves slots off dates an exclude calendar holds, "
              "and this schedule excludes none", "warning")


def library_file(rel: str, path: str, data: bytes, digest: str) -> LibraryFile | None:
    """A shared calendar or windows file (`rel`: its path below the schedules directory), parsed."""
    entry = library_entry(rel)
    if entry is None:
        return None
    return parse_library_file(entry[0], entry[1], display_path(path), data, digest, zone)


def load_library(paths: Sequence[str | Path]) -> Library:
    """The calendars/ and windows/ files at the top of each directory named (of a file named: of
    its directory, so that `validate schedules/job.yaml` finds schedules/calendars/)."""
    files = []
    dirs = dict.fromkeys(Path(raw) if Path(raw).is_dir() else Path(raw).parent for raw in paths)
    for p in dirs:
        for kind in LIBRARY_DIRS:
            folder = p / kind
            if not folder.is_dir():
                continue
            for child in sorted(folder.iterdir()):
                if child.is_file() and library_entry(f"{kind}/{child.name}") is not None:
                    data = read_capped(child)
                    f = library_file(f"{kind}/{child.name}", str(child), data, spec_hash({"bytes": data.hex()}))
                    if f is not None:
                        files.append(f)
        if (p / POOLS_FILE).is_file():
            data = read_capped(p / POOLS_FILE)
            f = library_file(POOLS_FILE, str(p / POOLS_FILE), data, spec_hash({"bytes": data.hex()}))
            if f is not None:
                files.append(f)
    return build_library(files)


def resolve(schedules: Iterable[Schedule], library: Library) -> tuple[list[Schedule], list[Problem]]:
    """Each schedule with its windows and calendars resolved; one that names a missing (or broken)
    shared file is left out, with a problem at its document naming the field."""
    out: list[Schedule] = []
    problems: list[Problem] = []
    for s in schedules:
        if not s.shared and s.policy.pool is None:
            out.append(s)
            continue
        spec = s.spec
        missing = reference_problems(spec, s.source, library)
        if missing:
            problems.extend(missing)
            continue
        out.append(replace(s, rules=rules_of(spec, s.timing.tz, library, zone)))
    return out, problems


def reference_problems(spec: dict[str, Any], source: Source, library: Library) -> list[Problem]:
    """A problem for each shared window or calendar file a schedule names that is missing or broken."""
    out = []
    pool = uses_pool(spec)
    if pool is not None:
        wrong = pool_problem(source.path, source.line, source.document, pool, library.pools,
                             library.paths.get((POOLS, POOLS)))
        if wrong is not None:
            out.append(wrong)
    for kind, name, ptr in references(spec):
        known = library.calendars if kind == "calendars" else library.windows
        if name not in known:
            broken = (kind, name) in library.paths
            hint = (f"{library.paths[(kind, name)]} has problems" if broken else
                    f"no {kind}/{name}.yaml{' or .ics' if kind == 'calendars' else ''} beside the schedules"
                    + _did_you_mean(name, known))
            out.append(Problem(source.path, source.line, 1, ptr, f"{kind[:-1]} {name!r} cannot be used: {hint}",
                               document=source.document))
    return out


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
