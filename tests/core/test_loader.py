"""Semantic checks the schema cannot express, and the set-level rules, with exact lines."""

from __future__ import annotations

import os
import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.loader import Loader, PathError, discover
from reconciler.kinds.command.spec import CommandRun
from tests.conftest import NOW

HEAD = 'name: job\nrun: {command: [/bin/true]}\n'


def problems(text: str, now: datetime = NOW) -> list[tuple[int, int, str, str]]:
    result = Loader().load_bytes("f.yaml", text.encode(), now)
    return [(p.line, p.column, p.severity, p.message) for p in result.problems]


def test_a_valid_schedule_builds_with_documented_defaults() -> None:
    result = Loader().load_bytes("f.yaml", (HEAD + 'schedule: {cron: "0 2 * * *"}\n').encode(), NOW)
    (s,) = result.schedules
    assert (s.enabled, s.policy.concurrency, s.policy.catchup, s.history_keep) == (True, "forbid", "none", 100)
    assert s.policy.starting_deadline == timedelta(minutes=1)
    assert s.policy.retries.limit == 0
    assert isinstance(s.run, CommandRun)
    assert s.run.timeout == timedelta(minutes=30)
    assert s.timing.tz.key == "UTC"
    assert (s.source.path, s.source.line) == ("f.yaml", 1)


@pytest.mark.parametrize(("schedule", "at", "message"), [
    ('{cron: "0 25 * * *"}', '"0 25', "hour field: 25 is out of range 0-23"),
    ('{cron: "0 0 31 2 *"}', '"0 0', "can never fire"),
    ('{cron: "0 2 * * *", timezone: Mars/Olympus}', "Mars", "unknown time zone 'Mars/Olympus'"),
    ('{cron: "0 2 * * *", timezone: " UTC"}', '" UTC', "unknown time zone"),
    ('{every: 500ms}', "500ms", "every must be at least 1s"),
    ('{every: 1m, jitter: 2m}', "2m", "jitter must be shorter than the interval"),
    ('{cron: "0 2 * * *", anchor: "2026-01-01T00:00:00Z"}', "anchor", "anchor only applies to `every`"),
    ('{every: 1h, start: "2026-02-01T00:00:00Z", end: "2026-01-01T00:00:00Z"}', '"2026-01', "end must be after start"),
    ('{at: "2026-02-30T00:00:00Z"}', '"2026', "is not a valid timestamp"),
    ('{at: "2030-01-01T00:00:00Z", end: "2029-01-01T00:00:00Z"}', '"2030', "outside start..end"),
])
def test_semantic_errors_name_the_line_and_column_of_the_field(schedule: str, at: str, message: str) -> None:
    line = f"schedule: {schedule}"
    found = problems(HEAD + line + "\n")
    col = line.index(at) + 1
    assert any((ln, c) == (3, col) and s == "error" and message in m for ln, c, s, m in found), (col, found)


def test_a_one_time_run_in_the_past_is_a_warning_not_an_error() -> None:
    text = HEAD + 'schedule: {at: "2026-01-01T00:00:00Z"}\n'
    assert problems(text) == [(3, 16, "warning", "at is in the past (2026-01-01T00:00:00Z): "
                                                 "this one-time schedule will not fire")]
    assert Loader().load_bytes("f.yaml", text.encode(), NOW).schedules


def test_timestamps_without_offset_are_read_in_the_schedule_zone() -> None:
    text = HEAD + 'schedule: {at: "2030-07-01T09:00:00", timezone: Europe/Berlin}\n'
    (s,) = Loader().load_bytes("f.yaml", text.encode(), NOW).schedules
    assert s.timing.at == datetime(2030, 7, 1, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(("run", "message"), [
    ("{http: {url: 'https://x.test/'}, workdir: /tmp}", "workdir applies to commands only"),
    ("{http: {url: 'https://x.test/', method: POST, json: {}, body: x}}", "json and body cannot be used together"),
    ("{http: {url: 'https://x.test/', json: {a: 1}}}", "a request body needs a method such as POST"),
    ("{http: {url: 'ftp://x.test/'}}", "an http(s) URL"),
    ("{command: [/bin/true], timeout: 0}", "timeout must be longer than 0"),
    ("{command: [/bin/true], env: {1BAD: x}}", "key '1BAD' is not valid: an environment variable name"),
    ("{command: [/bin/true], env: {PORT: 8080}}", "expected a string, got the number 8080: quote it"),
    ("{command: [/bin/true], env: {T: {from_env: 5}}}", "expected a string, got the number 5"),
    ("{command: []}", "should be non-empty"),
])
def test_run_block_problems_say_what_to_write(run: str, message: str) -> None:
    found = problems('name: job\nschedule: {cron: "0 2 * * *"}\nrun: ' + run + "\n")
    assert any(message in m for *_, m in found), found


def test_policy_checks() -> None:
    found = problems(HEAD + 'schedule: {cron: "0 2 * * *"}\npolicy: {retries: {backoff: 1h, max_backoff: 1m}, '
                     'concurrency: sometimes}\n')
    messages = [m for *_, m in found]
    assert "backoff is longer than max_backoff" in messages
    assert "'sometimes' is not one of 'forbid', 'allow', 'replace'" in messages


def test_names_must_be_unique_across_files_and_both_places_are_named(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(HEAD + 'schedule: {cron: "0 2 * * *"}\n')
    (tmp_path / "b.yaml").write_text('# comment\n' + HEAD + 'schedule: {cron: "0 3 * * *"}\n')
    result = Loader().load_paths([tmp_path], now=NOW)
    assert not result.valid
    assert result.schedules == ()
    assert sorted(p.format_text() for p in result.problems) == [
        f"{tmp_path}/a.yaml:1:1: $.name: name 'job' is used more than once (also at {tmp_path}/b.yaml:2)",
        f"{tmp_path}/b.yaml:2:1: $.name: name 'job' is used more than once (also at {tmp_path}/a.yaml:1)",
    ]


def test_every_problem_in_every_document_is_reported() -> None:
    text = ('name: a\nschedule: {cron: "bad"}\nrun: {command: [/bin/true]}\n---\n'
            'name: b\nschedule: {every: 1m}\nrun: {command: [/bin/true], timeout: soon}\n')
    found = problems(text)
    assert [(ln, s) for ln, _, s, _ in found] == [(2, "error"), (7, "error")]


def test_one_bad_document_does_not_hide_the_good_ones() -> None:
    text = 'name: a\nschedule: {cron: "bad"}\nrun: {command: [/bin/true]}\n---\n' + HEAD.replace("job", "b") + \
        'schedule: {every: 1m}\n'
    result = Loader().load_bytes("f.yaml", text.encode(), NOW)
    assert [s.name for s in result.schedules] == ["b"]


def test_a_file_without_schedules_is_a_warning() -> None:
    assert problems("# nothing here\n") == [(1, 1, "warning", "file holds no schedule")]


def test_a_document_that_is_not_a_mapping_is_an_error() -> None:
    assert problems("- a\n- b\n")[0][3] == "a schedule is a mapping of fields, got a list"


def test_discovery_recurses_skips_hidden_entries_and_sorts(tmp_path: Path) -> None:
    for rel in ["b.yaml", "a/c.yml", "a/d.txt", ".git/e.yaml", "a/.hidden.yaml", "z/.cache/f.yaml"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x: 1\n")
    assert [p.relative_to(tmp_path).as_posix() for p in discover([tmp_path]).files] == ["a/c.yml", "b.yaml"]


def test_a_missing_path_is_an_error_never_zero_schedules(tmp_path: Path) -> None:
    with pytest.raises(PathError, match="no such file or directory"):
        discover([tmp_path / "nope"])


def test_fingerprint_ignores_metadata_but_spec_hash_does_not() -> None:
    def one(extra: str) -> object:
        text = HEAD + 'schedule: {cron: "0 2 * * *"}\n' + extra
        return Loader().load_bytes("f.yaml", text.encode(), NOW).schedules[0]

    base, meta, real = one(""), one("description: hi\nlabels: {a: b}\n"), one("enabled: false\n")
    assert base.fingerprint == meta.fingerprint != real.fingerprint  # type: ignore[attr-defined]
    assert base.spec_hash != meta.spec_hash  # type: ignore[attr-defined]


def test_an_env_reference_names_exactly_one_source() -> None:
    found = problems('name: job\nschedule: {cron: "0 2 * * *"}\n'
                     'run: {command: [/bin/true], env: {A: {from_env: X, from_file: /y}, B: {}}}\n')
    assert [m for *_, m in found] == ["write a string, {from_env: NAME} or {from_file: PATH}"] * 2


def test_rebuilding_many_stored_specs_compiles_the_schema_validators_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import fastjsonschema

    from reconciler.core.loader import build_from_spec

    compiled: list[object] = []
    real = fastjsonschema.compile

    def counting(*args: Any, **kwargs: Any) -> Any:
        compiled.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(fastjsonschema, "compile", counting)
    loader = Loader()
    specs = [{"name": f"s-{i}", "schedule": {"every": f"{i + 1}m"}, "run": {"command": ["true"]}} for i in range(50)]
    built = [build_from_spec(spec, "ledger:x", loader, NOW) for spec in specs]
    assert all(b is not None for b in built)
    assert len(compiled) == 1


@pytest.mark.parametrize(("written", "meant"), [
    ("America/New_Yrok", "America/New_York"),
    ("Europe/Berln", "Europe/Berlin"),
    ("europe/berlin", "Europe/Berlin"),
    (" UTC", "UTC"),
    ("Berlin", "Europe/Berlin"),
    ("New York", "America/New_York"),
])
def test_a_misspelt_time_zone_gets_a_did_you_mean(written: str, meant: str) -> None:
    found = problems(HEAD + f'schedule: {{cron: "0 2 * * *", timezone: "{written}"}}\n')
    assert [m for *_, m in found] == [f"unknown time zone {written!r} (did you mean {meant!r}?)"]


def test_a_time_zone_like_nothing_known_gets_the_general_advice() -> None:
    found = problems(HEAD + 'schedule: {cron: "0 2 * * *", timezone: Mars/Olympus}\n')
    assert [m for *_, m in found] == [
        "unknown time zone 'Mars/Olympus': use an IANA name such as Europe/Berlin or UTC"]


def test_a_refused_zone_file_is_never_suggested() -> None:
    found = problems(HEAD + 'schedule: {cron: "0 2 * * *", timezone: localtim}\n')
    assert "localtime" not in found[0][3]


@pytest.mark.parametrize("written", ["GMT+1", "Etc/UTC+2", "Pacific Time"])
def test_an_offset_or_a_loose_likeness_is_not_guessed_as_a_zone(written: str) -> None:
    found = problems(HEAD + f'schedule: {{cron: "0 2 * * *", timezone: "{written}"}}\n')
    assert [m for *_, m in found] == [
        f"unknown time zone {written!r}: use an IANA name such as Europe/Berlin or UTC"]


def test_a_fifo_named_like_a_schedule_is_skipped_with_a_warning_naming_it(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(HEAD + 'schedule: {cron: "0 2 * * *"}\n')
    os.mkfifo(tmp_path / "pipe.yaml")
    result = Loader().load_paths([tmp_path], now=NOW)
    assert result.valid
    assert [p.format_text() for p in result.problems] == [
        f"{tmp_path}/pipe.yaml:1:1: $: warning: a FIFO (named pipe), not a regular file: skipped"]


def test_a_device_named_like_a_schedule_is_skipped_with_a_warning_naming_it(tmp_path: Path) -> None:
    try:
        os.mknod(tmp_path / "null.yaml", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    result = Loader().load_paths([tmp_path], now=NOW)
    assert [(p.severity, p.message) for p in result.problems] == [
        ("warning", "a character device, not a regular file: skipped")]


def test_a_link_out_of_the_directory_is_refused_by_name_and_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cr3t-t0ken-value-that-must-never-be-echoed\n")
    tree = tmp_path / "schedules"
    tree.mkdir()
    (tree / "out.yaml").symlink_to(secret)
    (tree / "in.yaml").symlink_to("out.yaml")  # inside, but leads on out of the tree: refused too
    result = Loader().load_paths([tree], now=NOW)
    assert [p.format_text() for p in result.problems] == [
        f"{tree}/{name}:1:1: $: a link to a path outside the directory being read: refused, it is not read"
        for name in ("in.yaml", "out.yaml")]
    named = Loader().load_paths([tree / "out.yaml"], now=NOW)  # named on its own: the same
    assert [(p.path, p.severity) for p in named.problems] == [(f"{tree}/out.yaml", "error")]


@pytest.mark.parametrize(("text", "kind"), [
    ("s3cr3t-t0ken-value\n", "a string"),
    ("'quoted s3cr3t'\n", "a string"),
    ("123456789012\n", "a number"),
    ("true\n", "true or false"),
])
def test_a_document_that_is_one_bare_value_is_named_by_its_kind_never_quoted(text: str, kind: str) -> None:
    found = problems(text)
    assert [(ln, m) for ln, _, _, m in found] == [(1, f"a schedule is a mapping of fields, got {kind}")]


SECRET = "s3cr3tT0KEN-abcdefghijklmnopqrstuvwxyz-0123456789"


@pytest.mark.parametrize("text", [
    f"name: {SECRET}\n" + 'run: {command: [/bin/true]}\nschedule: {cron: "0 2 * * *"}\n',
    HEAD + f"schedule: {{cron: '0 2 * * *', timezone: {SECRET}}}\n",
    HEAD + f"schedule: {{every: {SECRET}}}\n",
    HEAD + f"schedule: {{at: '2030-01-01T00:00:00Z{SECRET}'}}\n",
    HEAD + f"schedule: {{cron: '0 2 * * *'}}\n{SECRET}: 1\n",
    HEAD + f"schedule: {{cron: '0 2 * * *'}}\nlabels: {{'{SECRET}!': x}}\n",
    HEAD + f"schedule: {{cron: '0 2 * * *'}}\nlabels: {{a: {SECRET * 6}}}\n",
    HEAD + f"schedule: {{cron: '0 2 * * *'}}\ndescription: {SECRET * 100}\n",
    HEAD + f"schedule: {{cron: '0 2 * * *'}}\npolicy: {{concurrency: {SECRET}}}\n",
    HEAD + f"schedule: {{cron: '0 2 * * *'}}\nenabled: {SECRET}\n",
    f"name: job\nrun: {{command: {SECRET}}}\nschedule: {{cron: '0 2 * * *'}}\n",
    f"name: job\nrun: {{command: [x], env: {{{SECRET}: x}}}}\nschedule: {{cron: '0 2 * * *'}}\n",
    f"name: job\nrun: {{http: {{url: {SECRET}}}}}\nschedule: {{cron: '0 2 * * *'}}\n",
    HEAD + f"schedule: {{cron: '0 2 * * *'}}\n{SECRET}: 1\n{SECRET}: 2\n",
    f"a: &{SECRET}{SECRET} 1\n",
])
def test_no_message_quotes_more_than_a_short_excerpt_of_a_value(text: str) -> None:
    found = problems(text)
    assert found, "the file was expected to be invalid"
    for *_, message in found:
        assert SECRET[:25].lower() not in message.lower(), message


@pytest.mark.parametrize(("policy", "fragment"), [
    ("{retries: {limit: 100, backoff: 1ms}}", None),
    ("{retries: {backoff: 367d}}", "at most 366d"),
    ("{starting_deadline: 400d}", "at most 366d"),
    ("{max_runs: 2147483648}", "maximum"),
])
def test_policy_durations_and_counts_are_bounded(policy: str, fragment: str | None) -> None:
    found = [m for *_, s, m in problems(HEAD + 'schedule: {cron: "0 2 * * *"}\npolicy: ' + policy + "\n")
             if s == "error"]
    assert (fragment is None and found == []) or any(fragment in m for m in found if fragment), found


def test_every_retry_delay_up_to_the_limit_is_computed_without_an_overflow() -> None:
    text = HEAD + 'schedule: {cron: "0 2 * * *"}\npolicy: {retries: {limit: 100, backoff: 1ms, max_backoff: 366d}}\n'
    (s,) = Loader().load_bytes("f.yaml", text.encode(), NOW).schedules
    delays = [s.policy.retries.delay_before(a) for a in range(2, 102)]
    assert delays[0] == timedelta(milliseconds=1)
    assert delays[-1] == timedelta(days=366)
    assert delays == sorted(delays)


@pytest.mark.parametrize(("text", "message"), [
    ("tomorrow", "'tomorrow' is not a valid timestamp"),
    ("2026-02-30T00:00:00Z", "'2026-02-30T00:00:00Z' is not a valid timestamp: day is out of range for month"),
    ("2026-03-29T02:30:00", "2026-03-29T02:30:00 does not exist in Europe/Berlin (skipped by a daylight-saving "
                            "change)"),
])
def test_a_timestamp_that_cannot_be_used_is_one_value_error_whose_message_says_why(text: str, message: str) -> None:
    from zoneinfo import ZoneInfo

    from reconciler.core.loader import parse_timestamp

    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_timestamp(text, ZoneInfo("Europe/Berlin"))


def test_next_after_a_value_that_is_no_timestamp_says_so_as_validate_would() -> None:
    from reconciler.commands.next import next_times
    from reconciler.errors import UsageError

    with pytest.raises(UsageError) as caught:
        next_times(None, "0 2 * * *", "UTC", "tomorrow", 1, "text", now=NOW)
    assert str(caught.value) == "--after: 'tomorrow' is not a valid timestamp"
