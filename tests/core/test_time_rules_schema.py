"""The windows, calendar and policy.outside/manual fields: one problem each, worded for editors."""

from __future__ import annotations

from reconciler.core.loader import Loader
from tests.conftest import NOW

HEAD = "name: a\nschedule: {cron: '0 2 * * *'}\nrun: {command: [/bin/true]}\n"


def problems(text: str) -> list[tuple[int, str, str]]:
    result = Loader().load_bytes("f.yaml", (HEAD + text).encode(), NOW)
    return [(p.line, p.jsonpath, p.message) for p in result.problems]


def test_a_window_without_duration_names_the_missing_field() -> None:
    assert problems("windows: [{kind: allow, cron: '0 1 * * *'}]\n") == [
        (4, "$.windows[0]", "required field 'duration' is missing")]


def test_cron_and_every_in_one_window_are_one_problem_at_the_key_to_remove() -> None:
    assert problems("windows: [{kind: allow, cron: '0 1 * * *', every: 1h, duration: 1h}]\n") == [
        (4, "$.windows[0].every", "'cron' and 'every' cannot be used together: choose one")]


def test_a_windows_cron_and_zone_are_checked_as_a_schedules_are() -> None:
    assert problems("windows: [{kind: deny, cron: '0 25 * * *', duration: 0s, timezone: Europe/Berln}]\n") == [
        (4, "$.windows[0].cron", "hour field: 25 is out of range 0-23"),
        (4, "$.windows[0].duration", "duration must be longer than 0"),
        (4, "$.windows[0].timezone", "unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)")]


def test_a_shared_name_and_the_calendar_fields_say_what_to_write() -> None:
    found = problems("windows: [Bad Name]\ncalendar: {exclude: [ok], on_excluded: later}\n"
                     "policy: {outside: later, manual: 'yes'}\n")
    assert [(line, path) for line, path, _ in found] == [(4, "$.windows[0]"), (5, "$.calendar.on_excluded"),
                                                         (6, "$.policy.outside"), (6, "$.policy.manual")]
    assert "the name of a shared windows file (windows/NAME.yaml)" in found[0][2]
    assert found[1][2] == "'later' is not one of 'skip', 'next_business_day'"


def test_valid_windows_and_calendars_pass_the_schema_and_build() -> None:
    text = ("windows: [{kind: allow, cron: '0 1 * * *', duration: 4h, timezone: Europe/Berlin}, freeze,\n"
            "          {kind: deny, every: 10s, duration: 2s}]\n"
            "calendar: {exclude: [de-by-holidays], only: [workdays], on_excluded: next_business_day}\n"
            "policy: {outside: defer, manual: false}\n")
    assert problems(text) == []
