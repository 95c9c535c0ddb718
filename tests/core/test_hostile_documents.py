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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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

    monkeypatch.setattr(loader, "build", build)  # the one build, which the parent runs for both shares
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

    _, seconds = json.loads(schema_text())["$defs"]["duration"]["anyOf"]  # text, or a number of seconds
    assert seconds["maximum"] == MAX_DURATION.total_seconds() == timedelta(days=366).total_seconds()


def test_the_patterns_the_loader_repeats_are_the_schemas() -> None:
    from reconciler.core.durations import DURATION_PATTERN
    from reconciler.core.loader import TIMESTAMP_PATTERN

    defs = json.loads(schema_text())["$defs"]
    text, _ = defs["duration"]["anyOf"]
    assert text["pattern"] == DURATION_PATTERN
    assert defs["timestamp"]["pattern"] == TIMESTAMP_PATTERN


# ---- the rule, as a property over whole generated documents ------------------------------------

class Raw(str):
    """Written into the YAML as it stands: an integer of 5,000 digits, or 1e999."""


def _quote(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def emit(value: Any) -> str:
    """Flow-style YAML for a generated value (json.dumps cannot write a 5,000-digit integer)."""
    if isinstance(value, Raw):
        return str(value)
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, list):
        return "[" + ", ".join(emit(v) for v in value) + "]"
    return "{" + ", ".join(f"{emit(k)}: {emit(v)}" for k, v in value.items()) + "}"


def emit_document(doc: dict[str, Any]) -> str:
    return "".join(f"{emit(k)}: {emit(v)}\n" for k, v in doc.items())


HUGE = st.integers(4301, 5200).map(lambda n: Raw("9" * n))
ODD_SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**30), 10**30), HUGE, st.floats(allow_nan=False),
    st.just(Raw("1e999")), st.text(max_size=12),
    st.sampled_from(["", "\n", "x\n", "\0", "café", "10s\n", "9" * 60, "\u2028", "\ufeff"]))
ODD = st.one_of(ODD_SCALAR, st.lists(ODD_SCALAR, max_size=3),
                st.dictionaries(st.text(max_size=6), ODD_SCALAR, max_size=3))


def usually(good: st.SearchStrategy[Any], *bad: st.SearchStrategy[Any], odd: st.SearchStrategy[Any] = ODD
            ) -> st.SearchStrategy[Any]:
    """The good value about nine times in ten; a hostile one (or anything at all) otherwise.
    (7, not 0: Hypothesis favours the ends of a range.)"""
    hostile = st.one_of(odd, *bad)
    return st.integers(0, 9).flatmap(lambda i: hostile if i == 7 else good)


ODD_KEY = st.one_of(st.text(max_size=6), HUGE, st.integers(-5, 5))


UNITS = ("d", "h", "m", "s", "ms")
SMALL_DURATION = st.one_of(
    st.fixed_dictionaries({}, optional={u: st.integers(0, 60) for u in UNITS}).map(
        lambda d: "".join(f"{d[u]}{u}" for u in UNITS if u in d) or "1s"),
    st.integers(1, 31_622_400), st.sampled_from(["1s", "500ms", "366d", "1h30m", "8784h", "31622400s", "2d"]))
HUGE_DURATION = st.one_of(
    st.sampled_from(["367d", "8785h", "31622401s", "99999999999d", "145178261h", "999999999d", "9" * 33]),
    st.integers(31_622_401, 10**25), st.integers(-5, -1), HUGE,
    st.fixed_dictionaries({u: st.integers(0, 10**15) for u in UNITS}).map(
        lambda d: "".join(f"{d[u]}{u}" for u in UNITS)))
DURATION = usually(SMALL_DURATION, HUGE_DURATION)
ZONE = usually(st.sampled_from(["UTC", "Europe/Berlin", "Pacific/Kiritimati", "Etc/GMT+12", "Etc/GMT-14",
                                "America/Sitka", "Asia/Manila", "Australia/Lord_Howe", "America/St_Johns"]),
               st.sampled_from(["Mars/Olympus", " UTC", "localtime", "UTC\n"]))
YEAR = st.one_of(st.sampled_from([1970, 2026, 2027, 9597, 9598, 9997, 9998]), st.integers(1970, 9998))
BAD_YEAR = st.sampled_from([1, 1969, 9999, 10])
OFFSET = st.sampled_from(["Z", "z", "+14:00", "-14:00", "+00:00", "-12:00", "+23:59", "-23:59", "+05:30", ""])


@st.composite
def _timestamp(draw: st.DrawFn, year: st.SearchStrategy[int]) -> str:
    y, mo, d = draw(year), draw(st.integers(1, 12)), draw(st.integers(1, 28))
    h, mi, s = draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59))
    frac = draw(st.sampled_from(["", ".5", ".123456789"]))
    sep = draw(st.sampled_from(["T", "t", " "]))
    return f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}{frac}{draw(OFFSET)}"


def timestamps() -> st.SearchStrategy[str]:
    return usually(_timestamp(YEAR), _timestamp(BAD_YEAR), st.sampled_from(
        ["2026-02-30T00:00:00Z", "2026-03-29T02:30:00", "2030-01-01T00:00:00Z\n", "9998-12-31T23:59:59-14:00",
         "1970-01-01T00:00:00+00:01"]))


CRON_FIELD = st.sampled_from(["*", "*/7", "*/100", "0", "1-5", "1,3", "5-5/2", "mon-fri", "jan", "29", "31", "7"])
CRONS = usually(
    st.one_of(st.sampled_from(["* * * * *", "0 2 * * *", "0 0 29 2 *", "0 0 31 2 mon", "*/15 8-23 * * mon-fri",
                               "30 2 * * *", "59 23 31 12 *", "@yearly", "@hourly", "0 12 * * 7", "0 0 1-7 * 1"]),
              st.lists(CRON_FIELD, min_size=5, max_size=5).map(" ".join)),
    st.sampled_from(["9" * 1100 + " * * * *", "9" * 1000 + " * * * *", "*/" + "9" * 900 + " * * * *", "@reboot"]))
URL = usually(
    st.one_of(st.sampled_from(["https://example.test/", "http://[::1]:8080/x", "http://127.0.0.1:9/",
                               "https://xn--exmple-cua.test/", "https://u:p@example.test:65535/a%20b?q=1#f"]),
              st.builds(lambda host, path: f"https://{host}.test/{path}",
                        st.text(alphabet="abc-0", min_size=1, max_size=8), st.text(max_size=8))),
    st.sampled_from(["http://[::1/", "https://example.test/\n", "http://x:99999/", "http://user@/",
                     "http://exämple.test/", "http://1.2.3.400/", "http://[v1.x]/", "http://xn--/", "ftp://x/",
                     "http://a b/", "http:\\\\169.254.169.254/", "http://x:port/"]),
    st.builds(lambda host: f"https://{host}/", st.text(alphabet="abc.-:[]%@01é", max_size=10)))
HEADERS = st.dictionaries(
    usually(st.sampled_from(["X-A", "Authorization", "x_b"]), st.sampled_from(["Bad Name", "é", "", "a\n"]),
            odd=ODD_KEY),
    usually(st.one_of(st.sampled_from(["v", "a b", "a\tb", "", "Bearer x.y-z"]),
                      st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=8),
                      st.fixed_dictionaries({"from_env": st.just("T")})),
            st.sampled_from(["café", " a", "a ", "a\nb", "a\x7f", "a\0"]), st.text(max_size=6)),
    max_size=2)
ENV = st.dictionaries(
    usually(st.sampled_from(["A", "B_1"]), st.sampled_from(["1X", "A\n", ""]), odd=ODD_KEY),
    usually(st.one_of(st.text(max_size=8).filter(lambda v: "\0" not in v),
                      st.fixed_dictionaries({"from_file": st.just("/run/s")})),
            st.sampled_from(["a\0b"]), st.fixed_dictionaries({"from_file": st.sampled_from(["/a\0b", ""])})),
    max_size=2)
JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-(10**40), 10**40), st.text(max_size=6),
                              st.floats(allow_nan=False), st.just(Raw("1e999")), HUGE,
                              st.just(Raw("9" * 4300))),
                    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner,
                                                                                          max_size=3)),
                    max_leaves=6)


def optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["cron", "every", "at"]))
    firsts: dict[str, st.SearchStrategy[Any]] = {
        "cron": CRONS, "every": usually(SMALL_DURATION, HUGE_DURATION, st.sampled_from(["500ms", "0"])),
        "at": timestamps()}
    first = firsts[kind]
    schedule = {kind: draw(first)}
    extra = {"timezone": ZONE, "jitter": DURATION, "start": timestamps(), "end": timestamps()}
    if kind == "every":
        extra["anchor"] = timestamps()
    schedule.update(draw(optional(**extra)))
    if draw(st.booleans()):
        run: dict[str, Any] = {"command": draw(usually(st.lists(
            usually(st.sampled_from(["/bin/true", "echo", "x\n", "café"]), st.just("a\0b")), min_size=1,
            max_size=3)))}
        run.update(draw(optional(workdir=usually(st.sampled_from(["/tmp", "rel"]), st.just("/a\0b")),
                                 timeout=DURATION, env=ENV)))
    else:
        http: dict[str, Any] = {"url": draw(URL)}
        body = draw(st.sampled_from([{}, {"json": JSON}, {"body": st.text(max_size=10)}]))
        http.update(draw(optional(method=usually(st.sampled_from(["POST", "PUT"] if body else ["GET", "HEAD"]),
                                                 st.just("BREW")),
                                  timeout=DURATION, headers=HEADERS,
                                  expect_status=usually(st.lists(st.integers(100, 599), min_size=1, max_size=2)),
                                  **body)))
        if body and "method" not in http:
            http["method"] = "POST"
        run = {"http": http}
    doc = {"name": draw(usually(st.sampled_from(["a", "job-1", "x" * 63]), st.sampled_from(["trailing\n", "Bad"]))),
           "schedule": schedule, "run": run}
    doc.update(draw(optional(
        description=usually(st.text(max_size=10)), enabled=usually(st.booleans()),
        labels=usually(st.dictionaries(
            usually(st.sampled_from(["team", "a/b"]), st.sampled_from(["x\n", "-x"]), odd=ODD_KEY),
            st.text(max_size=5), max_size=2)),
        policy=usually(optional(
            concurrency=usually(st.sampled_from(["forbid", "allow", "replace"])), starting_deadline=DURATION,
            catchup=usually(st.sampled_from(["none", "latest"])),
            max_runs=usually(st.integers(1, 2**31 - 1), st.integers(2**31, 2**70)),
            retries=usually(optional(limit=usually(st.integers(0, 100), st.integers(101, 10**20)),
                                     backoff=DURATION, max_backoff=DURATION)))),
        history=usually(optional(keep=usually(st.integers(1, 100_000), st.integers(100_001, 10**30)))),
        notify=usually(st.lists(st.fixed_dictionaries(
            {"url": usually(st.one_of(URL, st.fixed_dictionaries({"from_env": st.just("H")}))),},
            optional={"headers": HEADERS, "timeout": DURATION,
                      "events": usually(st.lists(st.sampled_from(["failure", "missed", "success"]), min_size=1,
                                                 max_size=1))}),
            max_size=2)))))
    return doc


def _exercise(text: str, directory: Path, timer: Any) -> bool:
    """Load like `validate`; if it says valid, do all `next`, `plan` and the daemon do with it."""
    import io
    import marshal

    from reconciler.commands.next import next_times
    from reconciler.commands.plan import run_plan
    from reconciler.core.describe import describe, local_text, relative, utc_text
    from reconciler.core.loader import build, build_from_spec
    from reconciler.core.model import spec_hash
    from reconciler.core.plan import plan
    from reconciler.core.problems import has_errors
    from reconciler.core.timing import EPOCH, HORIZON, missed_slots
    from reconciler.core.yamlstrict import Document
    from reconciler.engine.apply import apply_plan
    from reconciler.engine.trigger import SlotTrigger
    from reconciler.service.source import DirectorySource

    result = Loader().load_bytes("s.yaml", text.encode(), NOW)
    assert not [p for p in result.problems if "internal error" in p.message], text
    if has_errors(result.problems):
        return False
    (s,) = result.schedules
    timing = s.timing
    for after in (NOW, EPOCH, HORIZON - timedelta(days=2), timing.start, timing.anchor, timing.at, timing.end):
        for slot in timing.slots(after or NOW, 4):
            fire = timing.fire_time(slot)
            assert EPOCH <= slot <= fire <= HORIZON
            local_text(slot, timing), local_text(fire, timing), utc_text(fire), relative(fire, NOW)
    describe(timing)
    missed_slots(timing, NOW - timedelta(days=1), NOW, limit=100)
    trigger = SlotTrigger(timing)
    fire_at = trigger.get_next_fire_time(None, NOW)
    for _ in range(3):
        if fire_at is not None:
            trigger.slot_for(fire_at)
            fire_at = trigger.get_next_fire_time(fire_at, NOW)
    for attempt in range(2, s.policy.retries.limit + 2):
        s.policy.retries.delay_before(attempt)
    # The commands, on the file in a directory.
    (directory / "s.yaml").write_text(text)
    for fmt in ("text", "json", "markdown"):
        assert run_plan(str(directory), None, None, fmt, out=io.StringIO(), now=NOW) == 2
    for after_text in (None, "9998-12-31T00:00:00Z"):
        assert next_times(s.name, None, "UTC", after_text, 5, "text", str(directory), io.StringIO(), NOW) == 0
    # The daemon: its directory read, the forked helper's hand-off, the ledger's restore, the timer.
    snapshot = DirectorySource(directory).full(NOW)
    assert not has_errors(snapshot.problems)
    assert list(snapshot.schedules) == [s.name]
    spec = marshal.loads(marshal.dumps(s.spec))
    assert build(Document(0, spec, 1), "s.yaml", spec_hash(spec)).spec_hash == s.spec_hash
    assert build_from_spec(s.spec, "ledger:x", Loader(), NOW) is not None
    apply_plan(timer, plan({s.name: s.spec}, {}), {s.name: s}, NOW)
    timer.clear()
    return True


@pytest.fixture
def compiled_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command builds its own Loader, and compiling the schema costs ~70 ms: share one."""
    from reconciler.core.schema import SchemaValidator

    shared = SchemaValidator()
    fast, full = shared._fast, shared._full
    monkeypatch.setattr(SchemaValidator, "_fast", property(lambda self: fast))
    monkeypatch.setattr(SchemaValidator, "_full", property(lambda self: full))


@pytest.mark.usefixtures("compiled_once")
def test_whatever_validate_accepts_next_plan_and_the_daemon_can_build_and_run(tmp_path: Path) -> None:
    from reconciler.engine.timer import Timer

    seen = {"valid": 0, "all": 0}
    timer = Timer(lambda *args, **kwargs: None)
    timer.start(paused=True)

    @settings(max_examples=200, deadline=timedelta(seconds=5), database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(doc=documents())
    def check(doc: dict[str, Any]) -> None:
        seen["all"] += 1
        seen["valid"] += _exercise(emit_document(doc), tmp_path, timer)

    try:
        check()
    finally:
        timer.shutdown(wait=False)
    # The documents must often be valid, or the property says little.
    assert seen["valid"] >= seen["all"] // 10, seen


@pytest.mark.parametrize("doc", [
    {"name": "a", "schedule": {"every": "366d", "anchor": "9998-12-31T23:59:59Z", "jitter": "365d"},
     "run": {"command": ["x"]}},
    {"name": "a", "schedule": {"cron": "0 0 29 2 *", "timezone": "Pacific/Kiritimati", "start": "9998-01-01T00:00:00Z",
                               "jitter": "366d"}, "run": {"command": ["x"]}},
    {"name": "a", "schedule": {"at": "9998-12-31T23:59:59.999999999+14:00", "timezone": "Etc/GMT+12"},
     "run": {"http": {"url": "http://[::1]:65535/", "method": "POST", "json": {"n": Raw("9" * 4300)}}},
     "policy": {"retries": {"limit": 100, "backoff": "1ms", "max_backoff": "366d"}, "max_runs": 2147483647}},
])
def test_documents_at_the_edges_of_every_bound_can_be_built_and_run(doc: dict[str, Any], tmp_path: Path) -> None:
    from reconciler.engine.timer import Timer

    timer = Timer(lambda *args, **kwargs: None)
    timer.start(paused=True)
    try:
        assert _exercise(emit_document(doc), tmp_path, timer)
    finally:
        timer.shutdown(wait=False)


def test_a_whole_number_written_as_a_float_is_a_duration_in_seconds_everywhere(tmp_path: Path) -> None:
    # JSON Schema counts 5.0 as an integer, so validate accepts it: the records must read it too.
    from reconciler.engine.timer import Timer

    doc = {"name": "a", "schedule": {"every": 5.0, "jitter": 1.0}, "run": {"command": ["x"], "timeout": 30.0},
           "policy": {"starting_deadline": 60.0, "retries": {"limit": 1, "backoff": 2.0}}}
    timer = Timer(lambda *args, **kwargs: None)
    timer.start(paused=True)
    try:
        assert _exercise(emit_document(doc), tmp_path, timer)
    finally:
        timer.shutdown(wait=False)
    (s,) = Loader().load_bytes("a.yaml", emit_document(doc).encode(), NOW).schedules
    assert s.timing.every == timedelta(seconds=5)


def test_an_every_of_zero_written_as_a_float_is_refused_at_its_line() -> None:
    result = Loader().load_bytes("a.yaml", b"name: a\nschedule: {every: 0.0}\nrun: {command: [x]}\n", NOW)
    assert [(p.line, p.message) for p in result.problems] == [(2, "every must be at least 1s")]


def test_every_integer_field_written_as_a_whole_float_is_read_as_an_int() -> None:
    text = (b"name: a\nschedule: {every: 5}\n"
            b"run: {command: [x], limits: {memory: 67108864.0, open_files: 100.0, processes: 50.0}}\n"
            b"policy: {max_runs: 2.0, retries: {limit: 2.0}}\nhistory: {keep: 10.0}\n")
    result = Loader().load_bytes("a.yaml", text, NOW)
    assert result.problems == ()
    (s,) = result.schedules
    limits = s.run.limits  # type: ignore[attr-defined]
    values = (limits.memory, limits.open_files, limits.processes, s.policy.max_runs, s.policy.retries.limit,
              s.history_keep)
    assert values == (67108864, 100, 50, 2, 2, 10)
    assert all(type(v) is int for v in values)
