"""Whatever `validate` accepts, `next`, `plan` and the daemon can build and run; whatever they
cannot, `validate` rejects at its line. Hostile files from issue 11, and a property over
generated documents."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.loader import Loader
from reconciler.core.schema import schema_text
from tests.conftest import NOW, ROOT

BIG = "9" * 5000  # more digits than Python converts to an int by default (4,300)
RUN = "run: {command: [/bin/true]}\n"
CRON = 'schedule: {cron: "0 2 * * *"}\n'


def errors(text: str) -> list[tuple[int, int, str]]:
    result = Loader().load_bytes("f.yaml", text.encode(), NOW)
    found = [(p.line, p.column, p.message) for p in result.problems if p.severity == "error"]
    if found:
        assert result.schedules == ()
    return found


def assert_error_at(text: str, line: int, fragment: str) -> None:
    found = errors(text)
    assert any(ln == line and fragment in m for ln, _, m in found), found
    assert not any("internal error" in m for *_, m in found), found


# (file, line of the problem, part of its message)
HOSTILE: dict[str, tuple[str, int, str]] = {
    # Accepted today, then `next`, `plan` and `run` die with "date value out of range".
    "every-16000-years": ("name: a\nschedule:\n  every: 145178261h\n" + RUN, 3, "at most 366d"),
    "jitter-of-2-million-years": ('name: a\nschedule:\n  cron: "* * * * *"\n  jitter: 999999999d\n' + RUN, 4,
                                 "at most 366d"),
    # These crash `validate` itself.
    "every-as-mapping": ("name: a\nschedule:\n  every:\n    minutes: 5\n" + RUN, 4, "expected a string or an integer"),
    "every-as-list": ("name: a\nschedule:\n  every: [5]\n" + RUN, 3, "expected a string or an integer"),
    "huge-integer-value": (f"name: a\n{CRON}{RUN}description: {BIG}\n", 4, "5000 digits"),
    "huge-integer-key": (f"name: a\n{CRON}{RUN}labels:\n  {BIG}: x\n", 5, "5000 digits"),
    "huge-integer-cron-field": (f'name: a\nschedule: {{cron: "{BIG} * * * *"}}\n{RUN}', 2, "longer than"),
    "huge-integer-duration": (f"name: a\nschedule: {{every: {BIG}}}\n{RUN}", 2, "5000 digits"),
    "huge-quoted-duration": (f'name: a\nschedule: {{every: "{BIG}s"}}\n{RUN}', 2, "longer than"),
    "huge-integer-keep": (f"name: a\n{CRON}{RUN}history: {{keep: {BIG}}}\n", 4, "5000 digits"),
    "every-99999999999d": ("name: a\nschedule: {every: 99999999999d}\n" + RUN, 2, "at most 366d"),
    "timeout-20-digits": ("name: a\n" + CRON + "run: {command: [x], timeout: 99999999999999999999}\n", 3,
                          "at most 366d"),
    "at-past-the-end": ('name: a\nschedule: {at: "9999-12-31T23:59:59-14:00"}\n' + RUN, 2, "1970"),
    "end-before-the-start": ('name: a\nschedule: {every: 1m, end: "0001-01-01T03:00:00+14:00"}\n' + RUN, 2, "1970"),
    "at-shifted-past-the-end": ('name: a\nschedule: {at: "9998-12-31T23:59:59-14:00"}\n' + RUN, 2,
                                "outside the supported range"),
    "anchor-shifted-before-1970": ('name: a\nschedule: {every: 1h, anchor: "1970-01-01T00:00:00+01:00"}\n' + RUN,
                                   2, "outside the supported range"),
    "start-in-zone-before-1970": ('name: a\nschedule: {every: 1h, timezone: Europe/Berlin, '
                                  'start: "1970-01-01T00:30:00"}\n' + RUN, 2, "outside the supported range"),
    "max-runs-20-digits": (f"name: a\n{CRON}{RUN}policy: {{max_runs: 99999999999999999999}}\n", 4, "maximum"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_file_is_rejected_at_its_line_without_a_crash(case: str) -> None:
    text, line, fragment = HOSTILE[case]
    assert_error_at(text, line, fragment)


def test_the_commands_report_hostile_files_and_never_print_a_traceback(
        reconciler: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    for case, (text, *_) in HOSTILE.items():
        (tmp_path / f"{case}.yaml").write_text(text.replace("name: a\n", f"name: {case}\n"))
    out = reconciler("validate", str(tmp_path), "--format", "json")
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert {Path(p["path"]).stem for p in json.loads(out.stdout)["problems"]} == set(HOSTILE)
    for args in (["plan", "--dir", str(tmp_path)], ["next", "every-16000-years", "--dir", str(tmp_path)]):
        out = reconciler(*args)
        assert out.returncode == 1, (args, out.stderr)
        assert "Traceback" not in out.stderr, (args, out.stderr)


# ---- what can never be executed --------------------------------------------------------------

HTTP = "name: a\n" + CRON + "run:\n  http:\n"


@pytest.mark.parametrize(("text", "line", "fragment"), [
    ("name: a\n" + CRON + 'run:\n  command: [/bin/echo, "a\\0b"]\n', 4, "NUL"),
    ("name: a\n" + CRON + 'run:\n  command: [/bin/echo]\n  env: {X: "a\\0b"}\n', 5, "NUL"),
    ("name: a\n" + CRON + 'run:\n  command: [/bin/echo]\n  env: {X: {from_file: "/a\\0b"}}\n', 5, "NUL"),
    ("name: a\n" + CRON + 'run:\n  command: [/bin/echo]\n  workdir: "/tmp\\0"\n', 5, "NUL"),
    (HTTP + "    url: https://example.test/\n    headers: {X-Name: café}\n", 6, "visible ASCII"),
    (HTTP + '    url: https://example.test/\n    headers: {X-Name: "a\\nInjected: 1"}\n', 6, "visible ASCII"),
    (HTTP + "    url: https://example.test/\n    headers: {X-Name: ' padded'}\n", 6, "visible ASCII"),
    (HTTP + "    url: https://example.test/\n    headers: {Bad Name: x}\n", 6, "header name"),
    (HTTP + '    url: "https://example.test/\\n"\n', 5, "an http(s) URL"),
    (HTTP + '    url: "https://example.test/\\u0001"\n', 5, "an http(s) URL"),
    (HTTP + "    url: 'http://[::1/'\n", 5, "not a valid URL"),
    (HTTP + "    url: 'http://[fe80::zz]/'\n", 5, "not a valid URL"),
    (HTTP + "    url: 'http://example.test:99999/'\n", 5, "not a valid URL"),
    (HTTP + "    url: 'http://example.test:port/'\n", 5, "not a valid URL"),
    (HTTP + "    url: 'http://user@/'\n", 5, "no host"),
    (HTTP + "    url: 'http://exämple.test/'\n", 5, "xn--"),
    (HTTP + "    url: 'http://1.2.3.400/'\n", 5, "not a valid URL"),
    (HTTP + "    url: https://example.test/\n    method: POST\n    json: {n: [1, 1e999]}\n", 7, "too large for JSON"),
    ("name: a\n" + CRON + RUN + "notify:\n  - url: 'http://[::1/'\n", 5, "not a valid URL"),
    ("name: a\n" + CRON + RUN + 'notify:\n  - url: "https://hooks.test/x\\n"\n', 5, "an http(s) URL"),
    ("name: a\n" + CRON + RUN + "notify:\n  - url: https://hooks.test/x\n    headers: {X: café}\n", 6,
     "visible ASCII"),
])
def test_what_can_never_be_executed_is_rejected_at_its_line(text: str, line: int, fragment: str) -> None:
    assert_error_at(text, line, fragment)


@pytest.mark.parametrize("url", ["https://example.test/", "http://[::1]:8080/x?y=1#z", "http://127.0.0.1/",
                                 "https://xn--exmple-cua.test/", "https://user:pw@example.test:443/a%20b"])
def test_ordinary_urls_stay_valid(url: str) -> None:
    assert errors(f"{HTTP}    url: '{url}'\n    headers: {{X-A: 'a b\tc', Authorization: Bearer x.y-z}}\n") == []


# ---- patterns are anchored at the very end, in Python and ECMA-262 alike ----------------------

def test_a_name_with_a_trailing_newline_is_rejected() -> None:
    assert_error_at('name: "trailing\\n"\n' + CRON + RUN, 1, "a name is 1-63 lowercase")


@pytest.mark.parametrize(("field", "text"), [
    ("label key", 'name: a\n' + CRON + RUN + 'labels: {"team\\n": x}\n'),
    ("env name", 'name: a\n' + CRON + 'run: {command: [x], env: {"A\\n": x}}\n'),
    ("from_env", 'name: a\n' + CRON + 'run: {command: [x], env: {A: {from_env: "B\\n"}}}\n'),
    ("duration", 'name: a\nschedule: {every: "10s\\n"}\n' + RUN),
    ("timestamp", 'name: a\nschedule: {at: "2030-01-01T00:00:00Z\\n"}\n' + RUN),
])
def test_no_pattern_accepts_a_trailing_newline(field: str, text: str) -> None:
    assert errors(text), field


def _patterns(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "pattern" and isinstance(v, str)] + [
            p for v in node.values() for p in _patterns(v)]
    if isinstance(node, list):
        return [p for v in node for p in _patterns(v)]
    return []


PATTERNS = sorted(set(_patterns(json.loads(schema_text()))))
SAMPLES = ["a", "a\n", "\na", "a\nb", "A_1", "A_1\n", "job-1", "job-1\n", "10s", "10s\n", "1h30m", "500ms",
           "2030-01-01T00:00:00Z", "2030-01-01T00:00:00Z\n", "1969-12-31T23:59:59Z", "9999-01-01T00:00:00Z",
           "https://x.test/a", "https://x.test/a\n", "http://[::1]/", "a\u0000b", "café", " a", "a ", "a\tb",
           "", "\n", "a\r", "a\u2028", "X-Token", "Bad Name", "x" * 70]


def test_every_schema_pattern_is_anchored_without_a_dollar() -> None:
    # In Python `$` also matches before a trailing newline; `(?![\s\S])` is the end in both dialects.
    assert PATTERNS
    for pattern in PATTERNS:
        assert "$" not in pattern.replace("\\$", ""), pattern
        assert pattern.startswith("^"), pattern
        assert pattern.endswith("(?![\\s\\S])"), pattern


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node for ECMA-262 regular expressions")
def test_every_schema_pattern_means_the_same_in_python_and_ecma262() -> None:
    # Editors (the YAML language server) compile patterns as JavaScript regular expressions with /u.
    script = ("const [patterns, samples] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
              "console.log(JSON.stringify(patterns.map(p => samples.map(s => new RegExp(p, 'u').test(s)))));")
    out = subprocess.run(["node", "-e", script], input=json.dumps([PATTERNS, SAMPLES]), capture_output=True,
                         text=True, timeout=30, check=True)
    ecma = json.loads(out.stdout)
    python = [[re.search(p, s) is not None for s in SAMPLES] for p in PATTERNS]
    assert python == ecma


def test_the_two_schema_files_stay_identical() -> None:
    assert (ROOT / "schema" / "schedule.schema.json").read_text() == schema_text()


# ---- bounds that keep the arithmetic inside datetime's range ---------------------------------

@pytest.mark.parametrize(("schedule", "ok"), [
    ("{every: 366d}", True),
    ("{every: 367d}", False),
    ("{every: 31622400}", True),
    ("{every: 31622401}", False),
    ("{every: 1s, jitter: 999ms}", True),
    ('{at: "9998-12-31T23:59:59Z"}', True),
    ('{at: "9998-12-31T23:59:59+14:00"}', True),
    ('{every: 1h, start: "1970-01-01T00:00:00Z", end: "9998-12-31T00:00:00-10:00"}', True),
    ('{every: 1h, anchor: "1970-01-01T00:00:00-01:00"}', True),
])
def test_the_bounds_are_inclusive_and_stated(schedule: str, ok: bool) -> None:
    found = errors(f"name: a\nschedule: {schedule}\n{RUN}")
    assert (found == []) == ok, found


def test_an_internal_error_while_loading_becomes_a_problem_of_that_file(monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.core import loader

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("token=hunter2")

    good = f"name: b\n{CRON}{RUN}"
    monkeypatch.setattr(loader, "build", broken)
    result = Loader().load_bytes("f.yaml", (f"name: a\n{CRON}{RUN}---\n" + good).encode(), NOW)
    assert [(p.line, p.severity) for p in result.problems] == [(1, "error"), (5, "error")]
    assert "internal error (RuntimeError)" in result.problems[0].message
    assert "hunter2" not in result.problems[0].message  # no value of the file is echoed through it
    monkeypatch.setattr(loader, "semantic_problems", broken)
    result = Loader().load_bytes("f.yaml", good.encode(), NOW, build_records=False)
    assert [(p.line, p.severity) for p in result.problems] == [(1, "error")]
    assert result.names == ()


def test_an_internal_error_while_reading_a_file_becomes_a_problem_of_that_file(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.core import loader

    def broken(*args: object, **kwargs: object) -> object:
        raise MemoryError

    monkeypatch.setattr(loader, "load_documents", broken)
    result = Loader().load_bytes("f.yaml", f"name: a\n{CRON}{RUN}".encode(), NOW)
    assert [(p.line, p.column, p.severity) for p in result.problems] == [(1, 1, "error")]
    assert "internal error (MemoryError)" in result.problems[0].message


def test_both_load_paths_turn_an_internal_error_into_a_problem(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.core import loader
    from reconciler.service import source

    sched = tmp_path / "schedules"
    sched.mkdir()
    for i in range(30):
        (sched / f"j{i:02d}.yaml").write_text(f"name: job-{i:02d}\nschedule: {{every: {i + 1}m}}\n{RUN}")
    real_build = loader.build

    def build(doc: Any, path: str, digest: str | None = None) -> Any:
        if doc.value["name"] in ("job-02", "job-27"):  # one in each process's share
            raise OverflowError("date value out of range")
        return real_build(doc, path, digest)

    monkeypatch.setattr(loader, "build", build)
    monkeypatch.setattr(source, "build", build)
    monkeypatch.setattr(source, "PARALLEL_MIN_FILES", 10**9)
    serial = source.DirectorySource(sched).full(datetime.now(UTC))
    monkeypatch.setattr(source, "PARALLEL_MIN_FILES", 10)
    parallel_source = source.DirectorySource(sched)
    parallel = parallel_source.full(datetime.now(UTC))
    assert parallel_source.last_load_parallel
    for snap in (serial, parallel):
        assert sorted(p.path.rsplit("/", 1)[1] for p in snap.problems) == ["j02.yaml", "j27.yaml"]
        assert len(snap.schedules) == 28
    assert [p.format_text() for p in serial.problems] == [p.format_text() for p in parallel.problems]


def test_a_check_that_fails_in_the_helper_process_is_reported_like_a_serial_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.core.loader import Loader as RealLoader
    from reconciler.service import source

    sched = tmp_path / "schedules"
    sched.mkdir()
    for i in range(30):
        (sched / f"j{i:02d}.yaml").write_text(f"name: job-{i:02d}\nschedule: {{every: {i + 1}m}}\n{RUN}")
    real_check = RealLoader.check

    def check(self: RealLoader, doc: Any, path: str, now: datetime) -> Any:
        if doc.value.get("name") == "job-27":
            raise ValueError("a bug")
        return real_check(self, doc, path, now)

    monkeypatch.setattr(RealLoader, "check", check)
    monkeypatch.setattr(source, "PARALLEL_MIN_FILES", 10)
    s = source.DirectorySource(sched)
    snap = s.full(datetime.now(UTC))
    assert s.last_load_parallel
    assert [(p.path.rsplit("/", 1)[1], p.line) for p in snap.problems] == [("j27.yaml", 1)]
    assert len(snap.schedules) == 29


def test_durations_in_the_schema_and_the_parser_agree_on_the_bound() -> None:
    from reconciler.core.durations import MAX_DURATION

    schema = json.loads(schema_text())
    assert schema["$defs"]["duration"]["maximum"] == MAX_DURATION.total_seconds() == timedelta(days=366).total_seconds()


def test_the_patterns_the_loader_repeats_are_the_schemas() -> None:
    from reconciler.core.durations import DURATION_PATTERN
    from reconciler.core.loader import TIMESTAMP_PATTERN

    defs = json.loads(schema_text())["$defs"]
    assert defs["duration"]["pattern"] == DURATION_PATTERN
    assert defs["timestamp"]["pattern"] == TIMESTAMP_PATTERN
