"""`reconciler validate [PATH ...]`: every problem in every file, one per line."""

from __future__ import annotations

import json
import marshal
import os
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from reconciler.commands.common import colour_enabled, paint
from reconciler.core.defaults import DEFAULTS_FILE, Defaults, chain_for
from reconciler.core.deps import DepRef
from reconciler.core.loader import FileResult, Loader, LoadResult, PathError, combine, discover, load_library
from reconciler.core.model import Source
from reconciler.core.problems import Problem, display_path, printable
from reconciler.core.schema import SchemaValidator
from reconciler.core.yamlstrict import read_capped
from reconciler.errors import EXIT_OK, EXIT_PROBLEMS, UsageError

FORMATS = ("text", "json", "github")
# From this many files on, a forked helper shares the files on the other core (as the daemon's
# first load does); below it, starting the helper costs more than it saves.
PARALLEL_MIN_FILES = 1000


def validate(paths: Sequence[str], fmt: str = "text", out: TextIO = sys.stdout,
             now: datetime | None = None, strict_cron: bool = False, *, selector: Sequence[str] = (),
             effective: bool = False) -> int:
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    shard = _selector(selector)
    if shard or effective:  # labels and effective specs need the records
        result = _loader(strict_cron).load_paths(paths or ["schedules"], now=now, selector=shard)
    else:
        result = load(paths or ["schedules"], now or datetime.now(UTC), strict_cron=strict_cron)
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
        if effective:
            _effective(result, out)
        out.write(paint(summary(result, problems), "red" if errors else "green", colour) + "\n")
    return EXIT_PROBLEMS if errors else EXIT_OK


def load(paths: Sequence[str], now: datetime, *, parallel_min: int | None = None,
         strict_cron: bool = False) -> LoadResult:
    """Every file's problems and names, as `Loader.load_paths(build_records=False)` gives them, a
    large tree shared with a forked helper. Results are combined in the files' order either way,
    so the output is the same byte for byte."""
    loader = _loader(strict_cron)
    found = discover(paths)
    files = [str(f) for f in found.files if f.name != DEFAULTS_FILE]
    # Directory defaults first: every schedule file is checked with those above it.
    by_dir, results = loader.read_defaults({str(f): _read(str(f)) for f in found.files if f.name == DEFAULTS_FILE})
    least = PARALLEL_MIN_FILES if parallel_min is None else parallel_min
    helper = None
    if len(files) >= least:
        loader.validator.prepare()  # compiled once, before the fork, not once in each process
        helper = _Helper.start(loader, files, now, by_dir)
    if helper is None:
        results.extend(_load_one(loader, f, now, by_dir) for f in files)
    else:
        mine = {i: _load_one(loader, files[i], now, by_dir) for i in helper.work.claims()}
        theirs = helper.results()
        results.extend(mine[i] if i in mine else theirs[i] if i in theirs else _load_one(loader, f, now, by_dir)
                       for i, f in enumerate(files))
    loaded = combine(results, load_library(paths))  # calendars/ and windows/: the references are checked
    skipped = tuple(s.problem(display_path(s.full)) for s in found.skipped)
    return replace(loaded, problems=loaded.problems + skipped) if skipped else loaded


def _loader(strict_cron: bool) -> Loader:
    # jsonschema-rs: the fastest "valid?", whose cost in resident memory a process that exits soon
    # does not keep paying (the daemon keeps the default).
    return Loader(SchemaValidator(fast="jsonschema-rs"), strict_cron=strict_cron)


def _read(path: str) -> bytes:
    try:
        return read_capped(path)
    except OSError as e:
        raise PathError(f"{path}: cannot read: {e.strerror}") from e


def _load_one(loader: Loader, path: str, now: datetime, by_dir: Mapping[str, Defaults]) -> FileResult:
    return loader.load_bytes(path, _read(path), now, build_records=False, defaults=chain_for(path, by_dir))


# A file's result as plain values for marshal: its path, its problems' fields and its names
# with their places; None when the helper could not read it (the parent reads it and says why).
# And the dependency entries of its documents (DepRef's fields, its place as line and document).
_Plain = tuple[str, tuple[tuple[Any, ...], ...], tuple[tuple[str, int, int], ...], tuple[tuple[Any, ...], ...],
               tuple[tuple[Any, ...], ...]] | None
# What of a document names windows, calendars or a pool: all that validate checks against the shared files.
_RULE_FIELDS = ("windows", "calendar", "policy")


class _Work:
    """The files' indexes, handed out a chunk at a time to whichever process asks next (a counter
    in shared memory): when the other core is busy with someone else's work, the process that
    has a core checks more of the files, and neither waits long for the other at the end."""

    def __init__(self, ctx: Any, count: int) -> None:
        self.count = count
        self.next = ctx.RawValue("q", 0)
        self.lock = ctx.Lock()

    def claims(self) -> Iterator[int]:
        while True:
            with self.lock:
                start = self.next.value
                self.next.value = start + _CHUNK
            if start >= self.count:
                return
            yield from range(start, min(start + _CHUNK, self.count))


_CHUNK = 50  # files a claim: a few milliseconds of work, so the two finish close together


class _Helper:
    """A forked child that checks the files it claims and sends the results back in one message.
    Fork only while this process has one thread (fork with others running is unsafe)."""

    def __init__(self, conn: Any, proc: Any, files: list[str], work: _Work) -> None:
        self.conn, self.proc, self.files, self.work = conn, proc, files, work
        self.checked: list[int] = []  # the indexes the helper checked, once its results are in

    @classmethod
    def start(cls, loader: Loader, files: list[str], now: datetime,
              by_dir: Mapping[str, Defaults]) -> _Helper | None:
        import multiprocessing

        if ((os.cpu_count() or 1) < 2 or threading.active_count() > 1
                or "fork" not in multiprocessing.get_all_start_methods()):
            return None
        ctx = multiprocessing.get_context("fork")
        work = _Work(ctx, len(files))
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_helper_main, args=(child, loader, files, work, now, by_dir), daemon=True)
        proc.start()
        child.close()
        return cls(parent, proc, files, work)

    def results(self) -> dict[int, FileResult]:
        """The helper's results by file index; a file it claimed but did not answer for (it died)
        is missing, and the caller checks it itself."""
        try:
            plain: list[tuple[int, _Plain]] = marshal.loads(self.conn.recv_bytes())
        except (EOFError, OSError, ValueError):  # the helper died: its share is read by the caller
            plain = []
        self.conn.close()
        self.proc.join()
        out = {}
        for i, values in plain:
            if values is None or not 0 <= i < len(self.files):
                continue
            shown, problems, names, graph, ruled = values
            out[i] = FileResult(shown, (), tuple(Problem(*p) for p in problems),
                                tuple((n, Source(shown, line, doc)) for n, line, doc in names),
                                tuple(DepRef(n, Source(shown, line, doc), tuple(ups), tuple(map(tuple, labels)),
                                             tuple(after)) for n, line, doc, ups, labels, after in graph),
                                tuple((spec, Source(shown, line, doc)) for spec, line, doc in ruled))
        self.checked = sorted(out)
        return out


def _helper_main(conn: Any, loader: Loader, files: list[str], work: _Work, now: datetime,
                 by_dir: Mapping[str, Defaults]) -> None:
    import gc

    gc.disable()  # a short-lived child: nothing it builds lives long enough to need collecting
    out: list[tuple[int, _Plain]] = []
    for i in work.claims():
        path = files[i]
        try:
            data = read_capped(Path(path))
        except OSError:
            out.append((i, None))
            continue
        r = loader.load_bytes(path, data, now, build_records=False, defaults=chain_for(path, by_dir))
        out.append((i, (r.path, tuple((p.path, p.line, p.column, p.pointer, p.message, p.severity, p.document)
                                      for p in r.problems),
                        tuple((n, src.line, src.document) for n, src in r.unbuilt),
                        tuple((g.name, g.source.line, g.source.document, g.upstreams, g.labels, g.after)
                              for g in r.graph),
                        tuple(({k: spec[k] for k in _RULE_FIELDS if k in spec}, src.line, src.document)
                              for spec, src in r.unbuilt_rules))))
    conn.send_bytes(marshal.dumps(out))
    conn.close()


def _selector(items: Sequence[str]) -> dict[str, str]:
    from reconciler.core.selectors import SelectorError, parse_selector

    try:
        return parse_selector(items)
    except SelectorError as e:
        raise UsageError(str(e)) from None


def _effective(result: LoadResult, out: TextIO) -> None:
    """Every schedule that inherits directory defaults, as it runs, with where each value comes from."""
    from reconciler.commands.show import describe_one
    from reconciler.core.defaults import effective_lines

    for s in sorted(result.schedules, key=lambda x: (x.source.path, x.source.line)):
        facts = describe_one(result, s)
        if facts["chain"]:
            out.write(f"# {s.name}  ({facts['source']}), effective:\n")
            out.write("".join(f"  {line}\n" for line in effective_lines(facts["spec"], facts["chain"],
                                                                         facts["source"])))


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
