"""Hand-derived fire times. Every expected instant below was reasoned from cron's rules and the
zone's published transitions (noted beside each case), not computed by a library."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from reconciler.core import cron


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def fires(expr: str, tz: str, after: str, n: int) -> list[str]:
    parsed, zone = cron.parse(expr), ZoneInfo(tz)
    out, t = [], utc(after)
    for _ in range(n):
        nxt = parsed.next_after(t, zone)
        assert nxt is not None
        assert nxt.tzinfo is UTC
        out.append(nxt.strftime("%Y-%m-%dT%H:%MZ"))
        t = nxt
    return out


VECTORS = [
    # --- the dialect, in UTC --------------------------------------------------------------
    ("day-of-week 0 is Sunday", "0 12 * * 0", "UTC", "2026-01-14T00:00Z", ["2026-01-18T12:00Z", "2026-01-25T12:00Z"]),
    ("day-of-week 7 is Sunday too", "0 12 * * 7", "UTC", "2026-01-14T00:00Z", ["2026-01-18T12:00Z"]),
    ("fri-sun wraps to Sunday", "0 12 * * fri-sun", "UTC", "2026-01-14T00:00Z",
     ["2026-01-16T12:00Z", "2026-01-17T12:00Z", "2026-01-18T12:00Z", "2026-01-23T12:00Z"]),
    # cronie's get_range: a range whose high end is 0 (Sunday) below its low end runs to Sunday,
    # for names and digits alike; an equal range is that one day. 2026-01-18 is a Sunday.
    ("x-0 runs to Sunday", "0 12 * * 5-0", "UTC", "2026-01-14T00:00Z",
     ["2026-01-16T12:00Z", "2026-01-17T12:00Z", "2026-01-18T12:00Z", "2026-01-23T12:00Z"]),
    ("mon-0 is Monday to Sunday", "0 12 * * mon-0", "UTC", "2026-01-17T00:00Z",
     ["2026-01-17T12:00Z", "2026-01-18T12:00Z", "2026-01-19T12:00Z", "2026-01-20T12:00Z"]),
    ("sat-sun is Saturday and Sunday", "0 12 * * sat-sun", "UTC", "2026-01-14T00:00Z",
     ["2026-01-17T12:00Z", "2026-01-18T12:00Z", "2026-01-24T12:00Z"]),
    ("x-7 runs to Sunday", "0 12 * * 6-7", "UTC", "2026-01-14T00:00Z",
     ["2026-01-17T12:00Z", "2026-01-18T12:00Z", "2026-01-24T12:00Z"]),
    ("sun-sun is Sundays only", "0 12 * * sun-sun", "UTC", "2026-01-14T00:00Z",
     ["2026-01-18T12:00Z", "2026-01-25T12:00Z"]),
    ("0-sun is Sundays only", "0 12 * * 0-sun", "UTC", "2026-01-14T00:00Z",
     ["2026-01-18T12:00Z", "2026-01-25T12:00Z"]),
    ("7-7 is Sundays only", "0 12 * * 7-7", "UTC", "2026-01-14T00:00Z",
     ["2026-01-18T12:00Z", "2026-01-25T12:00Z"]),
    ("7-0 is Sundays only", "0 12 * * 7-0", "UTC", "2026-01-14T00:00Z",
     ["2026-01-18T12:00Z", "2026-01-25T12:00Z"]),
    ("sun-7 is every day", "0 12 * * sun-7", "UTC", "2026-01-17T00:00Z",
     ["2026-01-17T12:00Z", "2026-01-18T12:00Z", "2026-01-19T12:00Z"]),
    ("a stepped range to 7 keeps Sunday", "0 12 * * 1-7/3", "UTC", "2026-01-14T00:00Z",
     ["2026-01-15T12:00Z", "2026-01-18T12:00Z", "2026-01-19T12:00Z", "2026-01-22T12:00Z"]),
    ("names are case-insensitive", "0 0 * JAN Mon", "UTC", "2026-01-01T00:00Z", ["2026-01-05T00:00Z"]),
    ("both day fields restricted: OR", "0 0 13 * fri", "UTC", "2026-01-01T00:00Z",
     ["2026-01-02T00:00Z", "2026-01-09T00:00Z", "2026-01-13T00:00Z", "2026-01-16T00:00Z"]),
    # odd days (*/2 from 1) AND Mondays: Mondays in Jan 2026 are 5, 12, 19, 26; in Feb 2, 9, 16, 23.
    ("a day field starting with * means AND", "0 0 */2 * mon", "UTC", "2026-01-01T00:00Z",
     ["2026-01-05T00:00Z", "2026-01-19T00:00Z", "2026-02-09T00:00Z", "2026-02-23T00:00Z"]),
    ("an equal range a-a is just a", "30-30 * * * *", "UTC", "2026-01-01T00:00Z",
     ["2026-01-01T00:30Z", "2026-01-01T01:30Z"]),
    ("a step on a range", "1-5/2 0 * * *", "UTC", "2026-01-01T00:00Z",
     ["2026-01-01T00:01Z", "2026-01-01T00:03Z", "2026-01-01T00:05Z", "2026-01-02T00:01Z"]),
    ("February 29 waits for a leap year", "0 0 29 2 *", "UTC", "2026-01-01T00:00Z", ["2028-02-29T00:00Z"]),
    ("the 31st skips short months", "0 0 31 * *", "UTC", "2026-04-01T00:00Z",
     ["2026-05-31T00:00Z", "2026-07-31T00:00Z", "2026-08-31T00:00Z"]),
    ("@weekly is Sunday midnight", "@weekly", "UTC", "2026-01-14T00:00Z", ["2026-01-18T00:00Z"]),
    ("@yearly", "@yearly", "UTC", "2026-03-01T00:00Z", ["2027-01-01T00:00Z"]),
    ("next is strictly after an exact fire time", "0 12 * * *", "UTC", "2026-01-18T12:00Z",
     ["2026-01-19T12:00Z"]),
    ("a month list skips to the next listed month", "0 6 1 3,9 *", "UTC", "2026-03-01T06:00Z",
     ["2026-09-01T06:00Z", "2027-03-01T06:00Z"]),
    # --- Europe/Berlin: 2026-03-29 01:00Z 02:00 CET -> 03:00 CEST; 2026-10-25 01:00Z 03:00 CEST -> 02:00 CET
    ("Berlin spring: a fixed job in the gap runs once right after the jump",
     "30 2 * * *", "Europe/Berlin", "2026-03-28T12:00Z", ["2026-03-29T01:00Z", "2026-03-30T00:30Z"]),
    ("Berlin spring: two fixed times in the gap run once, not twice",
     "0,30 2 * * *", "Europe/Berlin", "2026-03-28T12:00Z",
     ["2026-03-29T01:00Z", "2026-03-30T00:00Z", "2026-03-30T00:30Z"]),
    ("Berlin spring: a gap time and the jump's target time fire at one instant only",
     "0 2,3 * * *", "Europe/Berlin", "2026-03-28T12:00Z", ["2026-03-29T01:00Z", "2026-03-30T00:00Z"]),
    ("Berlin spring: a wildcard job has no run for the missing hour",
     "30 * * * *", "Europe/Berlin", "2026-03-29T00:00Z",
     ["2026-03-29T00:30Z", "2026-03-29T01:30Z", "2026-03-29T02:30Z"]),
    ("Berlin spring: a wildcard job inside the gap hour skips that day",
     "*/15 2 * * *", "Europe/Berlin", "2026-03-28T23:00Z", ["2026-03-30T00:00Z"]),
    ("Berlin autumn: a fixed job runs once, at the first 02:30",
     "30 2 * * *", "Europe/Berlin", "2026-10-24T12:00Z", ["2026-10-25T00:30Z", "2026-10-26T01:30Z"]),
    ("Berlin autumn: a wildcard job runs in both passes of the repeated hour",
     "30 * * * *", "Europe/Berlin", "2026-10-24T23:00Z",
     ["2026-10-24T23:30Z", "2026-10-25T00:30Z", "2026-10-25T01:30Z", "2026-10-25T02:30Z"]),
    ("Berlin autumn: a stepped minute field is a wildcard job",
     "*/15 2 * * *", "Europe/Berlin", "2026-10-24T12:00Z",
     ["2026-10-25T00:00Z", "2026-10-25T00:15Z", "2026-10-25T00:30Z", "2026-10-25T00:45Z",
      "2026-10-25T01:00Z", "2026-10-25T01:15Z", "2026-10-25T01:30Z", "2026-10-25T01:45Z",
      "2026-10-26T01:00Z"]),
    ("Berlin autumn: next after a first-pass instant is the second pass",
     "*/30 2 * * *", "Europe/Berlin", "2026-10-25T00:00Z",
     ["2026-10-25T00:30Z", "2026-10-25T01:00Z", "2026-10-25T01:30Z", "2026-10-26T01:00Z"]),
    # --- America/New_York: 2026-03-08 07:00Z 02:00 EST -> 03:00 EDT; 2026-11-01 06:00Z 02:00 EDT -> 01:00 EST
    ("New York spring: fixed 02:30 runs at 03:00 EDT on the change day",
     "30 2 * * *", "America/New_York", "2026-03-07T00:00Z",
     ["2026-03-07T07:30Z", "2026-03-08T07:00Z", "2026-03-09T06:30Z"]),
    ("New York spring: @hourly has no 02:00 run",
     "@hourly", "America/New_York", "2026-03-08T05:30Z", ["2026-03-08T06:00Z", "2026-03-08T07:00Z"]),
    ("New York autumn: fixed 01:30 runs at the first (EDT) occurrence only",
     "30 1 * * *", "America/New_York", "2026-10-31T12:00Z", ["2026-11-01T05:30Z", "2026-11-02T06:30Z"]),
    ("New York autumn: @hourly runs 01:00 EDT and 01:00 EST",
     "@hourly", "America/New_York", "2026-11-01T04:30Z",
     ["2026-11-01T05:00Z", "2026-11-01T06:00Z", "2026-11-01T07:00Z"]),
    ("New York autumn: a wildcard minute step runs in both passes",
     "*/30 1 * * *", "America/New_York", "2026-10-31T12:00Z",
     ["2026-11-01T05:00Z", "2026-11-01T05:30Z", "2026-11-01T06:00Z", "2026-11-01T06:30Z",
      "2026-11-02T06:00Z"]),
    # --- America/Santiago: 2026-09-06 04:00Z Sat 24:00 -04 -> Sun 01:00 -03 (midnight gap);
    #     2026-04-05 03:00Z Sun 00:00 -03 -> Sat 23:00 -04 (23:00-23:59 on Apr 4 repeats)
    ("Santiago spring: midnight does not exist, so the daily job runs at 01:00",
     "@daily", "America/Santiago", "2026-09-05T00:00Z",
     ["2026-09-05T04:00Z", "2026-09-06T04:00Z", "2026-09-07T03:00Z"]),
    ("Santiago spring: an hourly job has no run for the missing midnight hour",
     "0 * * * *", "America/Santiago", "2026-09-06T02:30Z",
     ["2026-09-06T03:00Z", "2026-09-06T04:00Z", "2026-09-06T05:00Z"]),
    ("Santiago autumn: fixed 23:30 runs once, at the first occurrence",
     "30 23 * * *", "America/Santiago", "2026-04-04T12:00Z", ["2026-04-05T02:30Z", "2026-04-06T03:30Z"]),
    ("Santiago autumn: a wildcard job runs in both passes of the repeated 23:00 hour",
     "*/30 23 * * *", "America/Santiago", "2026-04-04T12:00Z",
     ["2026-04-05T02:00Z", "2026-04-05T02:30Z", "2026-04-05T03:00Z", "2026-04-05T03:30Z",
      "2026-04-06T03:00Z"]),
    # --- Australia/Lord_Howe (30-minute shift): 2026-10-03 15:30Z 02:00 +10:30 -> 02:30 +11;
    #     2026-04-04 15:00Z 02:00 +11 -> 01:30 +10:30 (01:30-01:59 repeats)
    ("Lord Howe spring: fixed 02:15 falls in the 30-minute gap and runs at 02:30",
     "15 2 * * *", "Australia/Lord_Howe", "2026-10-02T00:00Z",
     ["2026-10-02T15:45Z", "2026-10-03T15:30Z", "2026-10-04T15:15Z"]),
    ("Lord Howe spring: a half-hourly job skips 02:00 only",
     "0,30 * * * *", "Australia/Lord_Howe", "2026-10-03T14:45Z",
     ["2026-10-03T15:00Z", "2026-10-03T15:30Z", "2026-10-03T16:00Z"]),
    ("Lord Howe autumn: fixed 01:45 runs at the first occurrence only",
     "45 1 * * *", "Australia/Lord_Howe", "2026-04-04T00:00Z", ["2026-04-04T14:45Z", "2026-04-05T15:15Z"]),
    ("Lord Howe autumn: a wildcard job repeats only the repeated half hour",
     "*/20 1 * * *", "Australia/Lord_Howe", "2026-04-04T13:00Z",
     ["2026-04-04T14:00Z", "2026-04-04T14:20Z", "2026-04-04T14:40Z", "2026-04-04T15:10Z",
      "2026-04-05T14:30Z"]),
    # --- Australia/Sydney (southern hemisphere, DST across the new year):
    #     2026-04-04 16:00Z 03:00 AEDT -> 02:00 AEST; 2026-10-03 16:00Z 02:00 AEST -> 03:00 AEDT
    ("Sydney: New Year's midnight is in summer time (+11)",
     "@yearly", "Australia/Sydney", "2026-06-01T00:00Z", ["2026-12-31T13:00Z", "2027-12-31T13:00Z"]),
    ("Sydney: a daily job crosses the year boundary in AEDT",
     "0 0 * * *", "Australia/Sydney", "2026-12-30T12:00Z", ["2026-12-30T13:00Z", "2026-12-31T13:00Z"]),
    ("Sydney autumn: fixed 02:30 runs at the first (AEDT) occurrence",
     "30 2 * * *", "Australia/Sydney", "2026-04-04T00:00Z", ["2026-04-04T15:30Z", "2026-04-05T16:30Z"]),
    ("Sydney spring: fixed 02:30 runs at 03:00 AEDT",
     "30 2 * * *", "Australia/Sydney", "2026-10-02T00:00Z",
     ["2026-10-02T16:30Z", "2026-10-03T16:00Z", "2026-10-04T15:30Z"]),
]


@pytest.mark.parametrize(("case", "expr", "tz", "after", "expected"), VECTORS, ids=[v[0] for v in VECTORS])
def test_fire_times_follow_cron_rules(case: str, expr: str, tz: str, after: str, expected: list[str]) -> None:
    assert fires(expr, tz, after, len(expected)) == expected


def test_fire_times_are_strictly_after_a_fractional_instant() -> None:
    parsed = cron.parse("0 12 * * *")
    just_before = datetime(2026, 1, 18, 11, 59, 59, 999999, tzinfo=UTC)
    assert parsed.next_after(just_before, ZoneInfo("UTC")) == datetime(2026, 1, 18, 12, tzinfo=UTC)
    assert parsed.next_after(just_before + timedelta(microseconds=1), ZoneInfo("UTC")) == datetime(
        2026, 1, 19, 12, tzinfo=UTC)


def test_a_job_in_a_zone_never_fires_twice_at_one_instant() -> None:
    parsed, tz = cron.parse("0,30 2,3 * * *"), ZoneInfo("Europe/Berlin")
    t, seen = utc("2026-03-28T00:00Z"), []
    for _ in range(12):
        nxt = parsed.next_after(t, tz)
        assert nxt is not None
        t = nxt
        seen.append(t)
    assert len(seen) == len(set(seen))
    assert seen == sorted(seen)


@pytest.mark.parametrize(("expr", "fixed"), [
    ("0 2 * * *", True), ("0,30 1-3 * * *", True), ("*/5 2 * * *", False), ("0 * * * *", False),
    ("@hourly", False), ("@daily", True), ("0 */2 * * *", False),
])
def test_fixed_time_means_neither_minute_nor_hour_starts_with_a_star(expr: str, fixed: bool) -> None:
    assert cron.parse(expr).fixed_time is fixed


REJECTED = [
    ("0 0 * * * *", "cron has five"),
    ("0 0 0 * * * 2026", "Seconds and years are not supported"),
    # L, W and # are extensions beyond cronie: tests/core/test_cron_extensions.py.
    ("0 0 ? * *", "'?' is not cron: write '*'"),
    ("H 0 * * *", "'H' (hashed) is not supported"),
    ("@reboot", "@reboot is not supported"),
    ("@fortnightly", "unknown nickname"),
    ("5/15 * * * *", "write '5-59/15'"),
    ("0 17-9 * * *", "range '17-9' is reversed"),
    ("0 17-9 * * *", "cron ranges do not wrap: write '17-23,0-9' for 17 through 9, or '9-17'"),
    ("0 0 * nov-feb *", "write 'nov-dec,jan-feb' for nov through feb, or 'feb-nov'"),
    ("0 0 * * fri-mon", "write 'fri-sat,sun-mon' for fri through mon, or 'mon-fri'"),
    ("0 0 * * 5-1", "write '5-6,0-1' for 5 through 1, or '1-5'"),
    ("0 5-0 * * *", "write '5-23,0' for 5 through 0, or '0-5'"),  # cronie's x-0 rule is for days only
    ("0 0 * 12-1 *", "write '12,1' for 12 through 1, or '1-12'"),
    ("0 0 * * 7-mon", "write '7,sun-mon' for 7 through mon, or 'mon-7'"),
    ("0 0 * * mon-0/2", "the step is read before 0 closes the range on Sunday, so 'mon-0/2' matches "
                        "no day: write 'mon-7/2'"),
    ("0 0 * * mon-sun/2", "write 'mon-7/2'"),
    ("0 0 * * 7-0/1", "write '7-7/1'"),
    ("0 0 * * 6-1/2", "range '6-1/2' is reversed; cron ranges do not wrap: write a list"),
    ("60 * * * *", "60 is out of range 0-59"),
    ("0 24 * * *", "24 is out of range 0-23"),
    ("0 0 0 * *", "0 is out of range 1-31"),
    ("0 0 * 13 *", "13 is out of range 1-12"),
    ("0 0 * * 8", "8 is out of range 0-7"),
    ("*/0 * * * *", "step 0 never advances"),
    ("\u0663 * * * *", "ASCII"),
    ("0 0 30 2 *", "can never fire"),
    ("0 0 31 4,6,9,11 *", "can never fire"),
    ("0 0 * * funday", "not a number"),
    ("0 0 * jan-dex *", "not a number"),
    ("", "empty cron expression"),
    ("1,,2 * * * *", "empty list element"),
]


@pytest.mark.parametrize(("expr", "message"), REJECTED)
def test_invalid_expressions_are_rejected_with_what_to_write_instead(expr: str, message: str) -> None:
    with pytest.raises(cron.CronError, match=re.escape(message)):
        cron.parse(expr)


def test_a_never_firing_check_knows_the_or_rule_saves_impossible_days() -> None:
    # Day 30 never comes in February, but with both day fields restricted Mondays still fire.
    parsed = cron.parse("0 0 30 2 mon")
    assert parsed.next_after(utc("2026-01-01T00:00Z"), ZoneInfo("UTC")) == utc("2026-02-02T00:00Z")
