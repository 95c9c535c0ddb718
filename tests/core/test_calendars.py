"""Calendars as date sets, and the calendar and window rules of the policy."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from reconciler.core import policy
from reconciler.core.calendars import Calendar, holiday_dates, parse_ics
from reconciler.core.loader import Loader
from reconciler.core.model import Schedule
from reconciler.core.policy import Cause, Claim, Defer, Request, Skip, SkipReason
from reconciler.core.timerules import (
    CALENDARS,
    WINDOWS,
    TimeRules,
    build_library,
    build_window,
    library_entry,
    parse_library_file,
)

NOW = datetime(2026, 3, 1, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except Exception:
        return None


def cal_file(name: str, text: str) -> tuple[Calendar | None, list[str]]:
    f = parse_library_file(CALENDARS, name, f"calendars/{name}.yaml", text.encode(), "d", _zone)
    assert f.item is None or isinstance(f.item, Calendar)
    return f.item, [f"{p.line}:{p.jsonpath}: {p.message}" for p in f.problems]


def test_bavarian_public_holidays_come_from_the_holidays_package() -> None:
    cal, problems = cal_file("de-by", "holidays: {country: DE, subdivision: BY}\n")
    assert problems == []
    assert cal is not None
    assert cal.reason(date(2026, 12, 25)) == "Christmas Day"
    assert cal.reason(date(2026, 1, 6)) == "Epiphany"  # Bavaria's, not Berlin's
    assert cal.reason(date(2026, 12, 23)) is None
    assert date(2026, 1, 6) not in holiday_dates("DE", "BE", 2026)


def test_explicit_dates_ranges_weekdays_and_month_ends_are_dates_of_a_calendar() -> None:
    cal, problems = cal_file("shutdown", "dates: [2026-05-04]\nranges: [{from: 2026-12-24, to: 2027-01-01}]\n"
                                         "weekdays: [sat, sunday]\nmonth_ends: true\n")
    assert problems == []
    assert cal is not None
    assert {d for d in (date(2026, 5, 4), date(2026, 12, 24), date(2027, 1, 1), date(2026, 3, 7), date(2026, 3, 8),
                        date(2026, 2, 28)) if d in cal} == {date(2026, 5, 4), date(2026, 12, 24), date(2027, 1, 1),
                                                             date(2026, 3, 7), date(2026, 3, 8), date(2026, 2, 28)}
    assert date(2027, 1, 4) not in cal
    assert date(2026, 3, 9) not in cal
    assert date(2026, 3, 31) in cal


def test_a_calendar_file_with_mistakes_names_the_line_and_field_of_each() -> None:
    cal, problems = cal_file("bad", "dates:\n  - 2026-02-30\nranges: [{from: 2026-02-01, to: 2026-01-01}]\n"
                                    "holidays: {country: XX}\nweekdays: [funday]\ncolour: red\n")
    assert cal is None
    assert problems[0].startswith("2:$.dates[0]: '2026-02-30' is not a date")
    joined = "\n".join(problems)
    assert "3:$.ranges[0].to: to is before from" in joined
    assert "4:$.holidays.country: the holidays package knows no country 'XX'" in joined
    assert "5:$.weekdays[0]" in joined
    assert "6:$.colour: unknown field" in joined


def test_an_unknown_subdivision_is_named() -> None:
    _, problems = cal_file("x", "holidays: {country: DE, subdivision: ZZ}\n")
    assert problems
    assert "subdivision 'ZZ'" in problems[0]
    assert "$.holidays.subdivision" in problems[0]


ICS = b"""BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:1@test\r
\r\nDTSTAMP:20260101T000000Z\r
DTSTART;VALUE=DATE:20260810\r\nDTEND;VALUE=DATE:20260812\r\nSUMMARY:Summer shutdown\r\nEND:VEVENT\r\nBEGIN:VEVENT\r
UID:2@test\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20260105\r\nDTEND;VALUE=DATE:20260106\r
RRULE:FREQ=MONTHLY;BYDAY=1MO\r\nSUMMARY:Inventory day\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"""


def test_an_icalendar_file_gives_its_events_days_with_recurrences_expanded() -> None:
    cal, why = parse_ics("team", ICS)
    assert why is None
    assert cal is not None
    assert cal.reason(date(2026, 8, 10)) == "Summer shutdown"
    assert date(2026, 8, 11) in cal
    assert date(2026, 8, 12) not in cal  # DTEND of an all-day event is exclusive
    assert cal.reason(date(2027, 2, 1)) == "Inventory day"  # the first Monday of February 2027
    assert date(2027, 2, 2) not in cal


def test_a_broken_icalendar_file_is_a_problem_not_an_error_at_the_first_slot() -> None:
    cal, why = parse_ics("team", b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:garbage\r\n")
    assert cal is None
    assert why is not None
    assert why.startswith("not a valid iCalendar file")


def test_library_files_are_found_by_directory_and_suffix() -> None:
    assert library_entry("calendars/de-by.yaml") == (CALENDARS, "de-by")
    assert library_entry("calendars/team.ics") == (CALENDARS, "team")
    assert library_entry("windows/freeze.yml") == (WINDOWS, "freeze")
    assert library_entry("windows/x.ics") is None
    assert library_entry("calendars/sub/x.yaml") is None
    assert library_entry("jobs/calendars/x.yaml") is None


def test_a_name_defined_twice_is_a_problem() -> None:
    a = parse_library_file(CALENDARS, "x", "calendars/x.yaml", b"dates: [2026-01-01]\n", "1", _zone)
    b = parse_library_file(CALENDARS, "x", "calendars/x.yml", b"dates: [2026-01-02]\n", "2", _zone)
    lib = build_library([a, b])
    assert [p.message for p in lib.problems] == ["calendar 'x' is defined twice (also in calendars/x.yaml)"]


# ---- the policy ------------------------------------------------------------------------------------------


def sched(cron: str = "0 2 * * *", every: str | None = None, deadline: str = "1m", **rules: object) -> Schedule:
    timing = f"{{every: {every}}}" if every else f"{{cron: '{cron}', timezone: Europe/Berlin}}"
    text = (f"name: job\nschedule: {timing}\nrun: {{command: [/bin/true]}}\n"
            f"policy: {{starting_deadline: {deadline}}}\n")
    (s,) = Loader().load_bytes("job.yaml", text.encode(), NOW).schedules
    return replace(s, rules=TimeRules(**rules))  # type: ignore[arg-type]


HOLIDAYS = Calendar("de-by-holidays", holidays=(("DE", "BY"),))
WEEKEND = Calendar("weekend", weekdays=frozenset({5, 6}))


def slot(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN).astimezone(UTC)


def test_a_slot_on_an_excluded_local_date_is_skipped_with_reason_calendar() -> None:
    s = sched(exclude=(HOLIDAYS,))
    t = slot("2026-12-25T02:00")
    d = policy.decide(s, Request(Cause.SCHEDULE, 1, t), t)
    assert d == Skip(SkipReason.CALENDAR, "calendar de-by-holidays (Christmas Day)")
    assert d.recorded
    t = slot("2026-12-23T02:00")
    assert isinstance(policy.decide(s, Request(Cause.SCHEDULE, 1, t), t), Claim)


def test_the_local_date_in_the_schedules_zone_decides_not_the_utc_date() -> None:
    s = sched(cron="30 0 * * *", exclude=(HOLIDAYS,))
    t = slot("2026-12-25T00:30")  # still 24 December in UTC
    assert t.date() == date(2026, 12, 24)
    assert isinstance(policy.decide(s, Request(Cause.SCHEDULE, 1, t), t), Skip)


def test_only_skips_every_date_outside_its_calendars() -> None:
    workdays = Calendar("workdays", weekdays=frozenset({0, 1, 2, 3, 4}))
    s = sched(only=(workdays,))
    sat = slot("2026-03-07T02:00")
    assert policy.decide(s, Request(Cause.SCHEDULE, 1, sat), sat) == Skip(SkipReason.CALENDAR,
                                                                          "not in calendar workdays")


def test_an_excluded_slot_moves_to_the_next_business_day_at_the_same_wall_time() -> None:
    s = sched(cron="0 2 25 12 *", exclude=(HOLIDAYS, WEEKEND), on_excluded="next_business_day")
    t = slot("2026-12-25T02:00")  # Friday, Christmas; 26th a holiday, 27th Sunday
    d = policy.decide(s, Request(Cause.SCHEDULE, 1, t), t)
    assert isinstance(d, Defer)
    assert d.at == slot("2026-12-28T02:00")
    assert d.request.shifted
    assert d.request.fire_time == d.at  # its starting_deadline counts from the moved time
    # When it comes, the calendar is not asked again.
    assert isinstance(policy.decide(s, d.request, d.at, slot=t), Claim)


def test_a_move_onto_a_slot_of_its_own_is_a_skip_not_a_second_run() -> None:
    s = sched(exclude=(HOLIDAYS,), on_excluded="next_business_day")  # daily
    t = slot("2026-12-25T02:00")
    d = policy.decide(s, Request(Cause.SCHEDULE, 1, t), t)
    assert isinstance(d, Skip)
    assert d.reason == SkipReason.CALENDAR
    assert "slot of its own" in d.message


def test_manual_runs_ignore_calendars() -> None:
    s = sched(exclude=(HOLIDAYS,))
    t = slot("2026-12-25T02:00")
    assert isinstance(policy.decide(s, Request(Cause.MANUAL, 1, t), t), Claim)


def w(kind: str, expr: str, duration: str) -> object:
    return build_window({"kind": kind, "cron": expr, "duration": duration}, BERLIN, "window 1", _zone)


def test_a_slot_outside_the_windows_is_skipped_with_reason_window() -> None:
    s = sched(cron="0 12 * * *", windows=(w("allow", "0 1 * * *", "4h"),))
    t = slot("2026-03-02T12:00")
    d = policy.decide(s, Request(Cause.SCHEDULE, 1, t), t)
    assert isinstance(d, Skip)
    assert d.reason == SkipReason.WINDOW
    assert d.recorded


def test_defer_runs_when_the_window_opens_if_that_is_within_starting_deadline() -> None:
    s = sched(cron="30 0 * * *", deadline="1h", windows=(w("allow", "0 1 * * *", "4h"),), outside="defer")
    t = slot("2026-03-02T00:30")
    d = policy.decide(s, Request(Cause.SCHEDULE, 1, t), t)
    assert isinstance(d, Defer)
    assert d.at == slot("2026-03-02T01:00")
    assert d.request.fire_time == t
    assert isinstance(policy.decide(s, d.request, d.at), Claim)  # 30 min late, inside its deadline


def test_defer_skips_when_no_window_opens_within_starting_deadline() -> None:
    s = sched(cron="0 12 * * *", deadline="1h", windows=(w("allow", "0 1 * * *", "4h"),), outside="defer")
    t = slot("2026-03-02T12:00")
    d = policy.decide(s, Request(Cause.SCHEDULE, 1, t), t)
    assert isinstance(d, Skip)
    assert d.reason == SkipReason.WINDOW
    assert "starting_deadline" in d.message


@pytest.mark.parametrize(("manual", "runs"), [(True, True), (False, False)])
def test_manual_decides_whether_a_manual_trigger_may_run_outside_the_windows(manual: bool, runs: bool) -> None:
    s = sched(windows=(w("deny", "0 0 * * *", "24h"),), manual=manual)
    t = slot("2026-03-02T12:00")
    d = policy.decide(s, Request(Cause.MANUAL, 1, t), t)
    assert isinstance(d, Claim) is runs


def test_the_note_shown_beside_a_future_slot_says_what_the_rules_do_to_it() -> None:
    s = sched(exclude=(HOLIDAYS,))
    assert policy.slot_note(s, slot("2026-12-25T02:00")) == "skipped: calendar de-by-holidays (Christmas Day)"
    assert policy.slot_note(s, slot("2026-12-23T02:00")) == ""
    s = sched(cron="0 12 * * *", windows=(w("allow", "0 1 * * *", "4h"),))
    assert policy.slot_note(s, slot("2026-03-02T12:00")).startswith("skipped: window: outside every allow window")
    moved = sched(cron="0 2 25 12 *", exclude=(HOLIDAYS, WEEKEND), on_excluded="next_business_day")
    assert policy.slot_note(moved, slot("2026-12-25T02:00")).startswith("moved to 2026-12-28 02:00:00 CET (Mon)")


def test_a_schedule_without_rules_is_decided_as_before() -> None:
    s = sched()
    t = slot("2026-12-25T02:00")
    assert isinstance(policy.decide(s, Request(Cause.SCHEDULE, 1, t), t + timedelta(seconds=1)), Claim)


def test_a_date_outside_only_is_not_a_day_of_the_schedule_even_when_an_exclude_calendar_holds_it() -> None:
    month_ends = Calendar("month-ends", month_ends=True)
    s = sched(cron="0 6 28-31 * *", only=(month_ends,), exclude=(WEEKEND,), on_excluded="next_business_day")
    sat = slot("2027-01-30T06:00")  # a Saturday, not a month end: skipped, not moved
    assert policy.decide(s, Request(Cause.SCHEDULE, 1, sat), sat) == Skip(SkipReason.CALENDAR,
                                                                          "not in calendar month-ends")
    sun = slot("2027-01-31T06:00")  # a Sunday month end: moved to Monday
    d = policy.decide(s, Request(Cause.SCHEDULE, 1, sun), sun)
    assert isinstance(d, Defer)
    assert d.at == slot("2027-02-01T06:00")


def test_a_last_business_day_calendar_holds_the_last_date_of_each_month_its_calendars_do_not() -> None:
    files = [parse_library_file(CALENDARS, n, f"calendars/{n}.yaml", t.encode(), n, _zone) for n, t in (
        ("weekend", "weekdays: [sat, sun]\n"), ("de", "holidays: {country: DE}\n"),
        ("payday", "last_business_day_of_month: {excluding: [weekend, de]}\n"))]
    lib = build_library(files)
    assert lib.problems == ()
    payday = lib.calendars["payday"]
    # January 2027 ends on a Sunday; April 2026 on a Thursday; December 2026's 31st is a Thursday.
    days = [d for d in (date(2027, 1, 29), date(2027, 1, 31), date(2026, 4, 30), date(2026, 12, 31),
                        date(2026, 12, 30)) if d in payday]
    assert days == [date(2027, 1, 29), date(2026, 4, 30), date(2026, 12, 31)]
    # A holiday on the last weekday: Whit Monday... and 2027-12-31 is a Friday, not a holiday.
    assert payday.reason(date(2027, 12, 31)) == "last business day of the month"


def test_a_last_business_day_calendar_must_name_existing_plain_calendars() -> None:
    files = [parse_library_file(CALENDARS, n, f"calendars/{n}.yaml", t.encode(), n, _zone) for n, t in (
        ("a", "last_business_day_of_month: {excluding: [b]}\n"),
        ("b", "last_business_day_of_month: {excluding: [nowhere]}\n"))]
    lib = build_library(files)
    assert "a" not in lib.calendars
    assert "b" not in lib.calendars
    assert [p.path for p in lib.problems] == ["calendars/a.yaml", "calendars/b.yaml"]
    bad = parse_library_file(CALENDARS, "c", "calendars/c.yaml", b"last_business_day_of_month: [x]\n", "c", _zone)
    assert next(p.message for p in bad.problems).startswith("write {excluding: [CALENDAR, ...]}")


def test_a_retry_of_a_moved_slot_is_not_moved_again() -> None:
    s = sched(cron="0 2 25 12 *", exclude=(HOLIDAYS, WEEKEND), on_excluded="next_business_day")
    t = slot("2026-12-25T02:00")
    retry_at = slot("2026-12-28T02:05")
    assert isinstance(policy.decide(s, Request(Cause.RETRY, 2, retry_at), retry_at, slot=t), Claim)


@pytest.mark.parametrize(("kind", "text", "where", "message"), [
    (CALENDARS, "- 2026-01-01\n", "1:$", "a calendar file is a mapping of fields"),
    (CALENDARS, "a: 1\n---\nb: 2\n", "1:$", "a calendar file holds exactly one YAML document"),
    (CALENDARS, "dates: [\n", "", "YAML"),
    (CALENDARS, "ranges: [2026-01-01]\n", "1:$.ranges[0]", "a range is {from: YYYY-MM-DD, to: YYYY-MM-DD}"),
    (CALENDARS, "ranges: [{from: x, to: 2026-01-01}]\n", "1:$.ranges[0].from", "not a date"),
    (CALENDARS, "holidays: [DE]\n", "1:$.holidays[0]", "holidays is {country: DE}"),
    (CALENDARS, "holidays: {country: DE, subdivision: 5}\n", "1:$.holidays.subdivision", "a subdivision is a code"),
    (CALENDARS, "month_ends: yes\n", "1:$.month_ends", "month_ends is true or false"),
    (CALENDARS, "dates: 2026-01-01\n", "1:$.dates", "dates is a list"),
    (WINDOWS, "colour: red\nwindows: [{kind: deny, cron: '0 0 * * *', duration: 1h}]\n", "1:$.colour",
     "unknown field 'colour'"),
    (WINDOWS, "description: x\n", "1:$.windows", "windows is a list of at least one"),
    (WINDOWS, "windows:\n  - {kind: deny, cron: 5, duration: 1h}\n", "2:$.windows[0].cron", "cron is a string"),
    (WINDOWS, "windows:\n  - {kind: deny, every: 1h, duration: 1x}\n", "2:$.windows[0].duration", "duration"),
    (WINDOWS, "windows:\n  - {kind: deny, cron: '0 0 * * *'}\n", "2:$.windows[0]", "'duration' is missing"),
    (WINDOWS, "windows:\n  - {kind: deny, cron: '0 0 * * *', duration: 1h, anchor: 2026-01-01T00:00:00Z}\n",
     "2:$.windows[0].anchor", "anchor only applies to `every`"),
    (WINDOWS, "windows:\n  - {kind: deny, every: 1h, duration: 1h, anchor: someday}\n", "2:$.windows[0].anchor",
     "anchor is a timestamp"),
    (WINDOWS, "windows: [5]\n", "1:$.windows[0]", "a window is {kind: allow|deny"),
])
def test_a_shared_file_with_a_mistake_names_its_line_and_field(kind: str, text: str, where: str,
                                                               message: str) -> None:
    f = parse_library_file(kind, "x", f"{kind}/x.yaml", text.encode(), "d", _zone)
    assert f.item is None
    found = [f"{p.line}:{p.jsonpath}: {p.message}" for p in f.problems]
    assert any(line.startswith(where) and message in line for line in found), found


def test_a_shared_window_with_an_anchor_opens_at_its_steps_in_its_zone() -> None:
    text = "windows:\n  - {kind: allow, every: 1d, duration: 1h, anchor: '2026-01-01T03:00:00', timezone: Asia/Tokyo}\n"
    f = parse_library_file(WINDOWS, "x", "windows/x.yaml", text.encode(), "d", _zone)
    assert f.problems == ()
    (w,) = f.item.windows  # type: ignore[union-attr]
    assert w.is_open(datetime(2026, 3, 1, 18, 30, tzinfo=UTC))  # 03:30 in Tokyo
    assert not w.is_open(datetime(2026, 3, 1, 19, 30, tzinfo=UTC))
