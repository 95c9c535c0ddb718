"""The extensions beyond cronie (L, L-n, LW, nW in day-of-month; nL and n#k in day-of-week),
against hand-derived vectors. Every expected instant was reasoned from the calendar (weekdays
noted beside each case) and the zone's published transitions, not computed by a library."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from reconciler.core import cron
from tests.conftest import ROOT
from tests.core.test_cron import fires, utc

VECTORS = [
    # --- L: the last day, in months of 31, 28, 31, 30 days (2027 is not a leap year) -------------
    ("L is the last day of months of 31, 28 and 30 days", "0 9 L * *", "UTC", "2027-01-15T00:00Z",
     ["2027-01-31T09:00Z", "2027-02-28T09:00Z", "2027-03-31T09:00Z", "2027-04-30T09:00Z"]),
    ("L in February 2028 is the 29th (a leap year)", "0 9 L * *", "UTC", "2028-02-01T00:00Z",
     ["2028-02-29T09:00Z", "2028-03-31T09:00Z"]),
    ("L in February: 28 in 2029 and 2099, 29 in 2028, 28 in 2100 (not a leap year), 29 in 2400",
     "0 9 L 2 *", "UTC", "2027-03-01T00:00Z", ["2028-02-29T09:00Z", "2029-02-28T09:00Z"]),
    ("a century that is not a leap year", "0 9 L 2 *", "UTC", "2099-03-01T00:00Z",
     ["2100-02-28T09:00Z", "2101-02-28T09:00Z"]),
    ("a fourth century that is", "0 9 L 2 *", "UTC", "2399-03-01T00:00Z", ["2400-02-29T09:00Z"]),
    # --- L-n: Quartz's n days before the last day ------------------------------------------------
    ("L-3 is the 28th of a 31-day month and the 25th of a 28-day February", "0 9 L-3 * *", "UTC",
     "2026-12-31T12:00Z", ["2027-01-28T09:00Z", "2027-02-25T09:00Z", "2027-03-28T09:00Z", "2027-04-27T09:00Z"]),
    ("L-3 in the leap February of 2028 is the 26th", "0 9 L-3 2 *", "UTC", "2028-01-01T00:00Z",
     ["2028-02-26T09:00Z"]),
    ("L-0 is L", "0 9 L-0 * *", "UTC", "2027-02-01T00:00Z", ["2027-02-28T09:00Z"]),
    ("L-30 exists only in months of 31 days (the 1st)", "0 9 L-30 * *", "UTC", "2026-01-02T00:00Z",
     ["2026-03-01T09:00Z", "2026-05-01T09:00Z"]),
    ("L-28 in February is the 1st of a leap February only", "0 9 L-28 2 *", "UTC", "2026-01-01T00:00Z",
     ["2028-02-01T09:00Z", "2032-02-01T09:00Z"]),
    # --- LW: the last weekday. 2026: Jan 31 Sat, Feb 28 Sat, Mar 31 Tue, Apr 30 Thu, May 31 Sun --
    ("LW steps back from a Saturday or a Sunday to Friday", "0 9 LW * *", "UTC", "2026-01-01T00:00Z",
     ["2026-01-30T09:00Z", "2026-02-27T09:00Z", "2026-03-31T09:00Z", "2026-04-30T09:00Z", "2026-05-29T09:00Z"]),
    ("LW in 2027: Jan 31 and Feb 28 are Sundays", "0 9 LW * *", "UTC", "2027-01-01T00:00Z",
     ["2027-01-29T09:00Z", "2027-02-26T09:00Z"]),
    ("L-3W: the weekday nearest the 28th of March 2026 (a Saturday) is Friday the 27th",
     "0 9 L-3W 3 *", "UTC", "2026-01-01T00:00Z", ["2026-03-27T09:00Z"]),
    # --- nW: the nearest weekday, never leaving the month ----------------------------------------
    # 2026: Feb 15 and Mar 15 are Sundays, Apr 15 a Wednesday, Aug 15 a Saturday.
    ("15W on a Sunday is Monday the 16th; on a weekday, the 15th", "0 9 15W * *", "UTC", "2026-02-01T00:00Z",
     ["2026-02-16T09:00Z", "2026-03-16T09:00Z", "2026-04-15T09:00Z"]),
    ("15W on a Saturday is Friday the 14th", "0 9 15W 8 *", "UTC", "2026-01-01T00:00Z", ["2026-08-14T09:00Z"]),
    # Aug 1 2026 is a Saturday, Sep 1 a Tuesday.
    ("1W on Saturday the 1st is Monday the 3rd, not Friday of the month before", "0 9 1W * *", "UTC",
     "2026-07-31T12:00Z", ["2026-08-03T09:00Z", "2026-09-01T09:00Z"]),
    ("1W on Sunday the 1st is Monday the 2nd", "0 9 1W * *", "UTC", "2026-01-31T12:00Z", ["2026-02-02T09:00Z"]),
    # May 31 2026 is a Sunday; June has no 31st; Jul 31 is a Friday, Aug 31 a Monday.
    ("31W on Sunday the 31st is Friday the 29th, and skips months without a 31st", "0 9 31W * *", "UTC",
     "2026-05-01T00:00Z", ["2026-05-29T09:00Z", "2026-07-31T09:00Z", "2026-08-31T09:00Z"]),
    ("30W skips February (no 30th) rather than clamping to its end", "0 9 30W * *", "UTC", "2026-02-01T00:00Z",
     ["2026-03-30T09:00Z"]),
    # --- nL: the last given weekday; n#k: the k-th ------------------------------------------------
    ("5L is the last Friday", "0 9 * * 5L", "UTC", "2026-01-01T00:00Z",
     ["2026-01-30T09:00Z", "2026-02-27T09:00Z", "2026-03-27T09:00Z"]),
    ("friL is 5L", "0 9 * * friL", "UTC", "2026-07-01T00:00Z", ["2026-07-31T09:00Z"]),
    ("0L and 7L are the last Sunday", "0 9 * * 0L,7L", "UTC", "2026-05-01T00:00Z",
     ["2026-05-31T09:00Z", "2026-06-28T09:00Z"]),
    # Sep 1 2026 is a Tuesday: its third Tuesday is the 15th.
    ("2#3 is the third Tuesday", "0 9 * * 2#3", "UTC", "2026-01-01T00:00Z",
     ["2026-01-20T09:00Z", "2026-02-17T09:00Z", "2026-03-17T09:00Z"]),
    ("tue#3 on the first day being a Tuesday", "0 9 * * tue#3", "UTC", "2026-09-01T00:00Z", ["2026-09-15T09:00Z"]),
    # 2026: Jan 1, Apr 2, Jul 2 and Oct 1 are the first Thursdays of months with five.
    ("4#5 fires only in months with five Thursdays", "0 9 * * 4#5", "UTC", "2026-01-01T00:00Z",
     ["2026-01-29T09:00Z", "2026-04-30T09:00Z", "2026-07-30T09:00Z", "2026-10-29T09:00Z"]),
    # Feb 29 is a Sunday in 2032 and 2060 only, between 2026 and 2060.
    ("sun#5 in February waits for a leap year whose 29th is a Sunday", "0 9 * feb sun#5", "UTC",
     "2026-01-01T00:00Z", ["2032-02-29T09:00Z", "2060-02-29T09:00Z"]),
    # --- lists are unions, extensions included ------------------------------------------------------
    ("1,15,L: the 1st, the 15th and the last day", "0 9 1,15,L * *", "UTC", "2026-02-01T00:00Z",
     ["2026-02-01T09:00Z", "2026-02-15T09:00Z", "2026-02-28T09:00Z", "2026-03-01T09:00Z"]),
    ("1#1,5L: the first Monday and the last Friday", "0 9 * * 1#1,5L", "UTC", "2026-01-01T00:00Z",
     ["2026-01-05T09:00Z", "2026-01-30T09:00Z", "2026-02-02T09:00Z", "2026-02-27T09:00Z"]),
    ("1W,LW: the first and the last weekday", "0 9 1W,LW * *", "UTC", "2026-01-01T00:00Z",
     ["2026-01-01T09:00Z", "2026-01-30T09:00Z", "2026-02-02T09:00Z", "2026-02-27T09:00Z"]),
    # --- the star rule: an extension field is restricted ----------------------------------------
    ("L with a restricted day-of-week ORs: the last day or the last Friday", "0 9 L * 5L", "UTC",
     "2026-01-01T00:00Z", ["2026-01-30T09:00Z", "2026-01-31T09:00Z", "2026-02-27T09:00Z", "2026-02-28T09:00Z"]),
    ("L with mon-fri ORs, as cronie does (LW is the last weekday)", "0 9 L * mon-fri", "UTC",
     "2026-01-29T00:00Z", ["2026-01-29T09:00Z", "2026-01-30T09:00Z", "2026-01-31T09:00Z", "2026-02-02T09:00Z"]),
    ("15W with a restricted day-of-week ORs: Mondays and the weekday nearest the 15th",
     "0 9 15W * 1", "UTC", "2026-01-01T00:00Z", ["2026-01-05T09:00Z", "2026-01-12T09:00Z", "2026-01-15T09:00Z"]),
    # Last Fridays of 2026: Jan 30, Feb 27, Mar 27, Apr 24, May 29; */2 is the odd days.
    ("a day-of-month starting with * ANDs: last Fridays on odd days only", "0 9 */2 * 5L", "UTC",
     "2026-01-01T00:00Z", ["2026-02-27T09:00Z", "2026-03-27T09:00Z", "2026-05-29T09:00Z"]),
    ("a day-of-week starting with * ANDs: L on a Sunday only (May 31 2026, Jan 31 2027)", "0 9 L * */7",
     "UTC", "2026-01-01T00:00Z", ["2026-05-31T09:00Z", "2027-01-31T09:00Z"]),
    # --- DST on the last day of the month ----------------------------------------------------------
    # Europe/London, Sunday 2027-10-31 (the last day of October and its last Sunday):
    # 01:00Z 02:00 BST -> 01:00 GMT, so 01:00-01:59 happens twice.
    ("London autumn on the last day: a fixed L job runs once, at the first 01:30", "30 1 L * *",
     "Europe/London", "2027-10-30T12:00Z", ["2027-10-31T00:30Z", "2027-11-30T01:30Z"]),
    ("London autumn on the last day: a wildcard L job runs in both passes", "*/30 1 L * *",
     "Europe/London", "2027-10-30T12:00Z",
     ["2027-10-31T00:00Z", "2027-10-31T00:30Z", "2027-10-31T01:00Z", "2027-10-31T01:30Z",
      "2027-11-30T01:00Z"]),
    ("London autumn: the last Sunday (0L) is the change day too", "30 1 * * 0L", "Europe/London",
     "2027-10-30T12:00Z", ["2027-10-31T00:30Z", "2027-11-28T01:30Z"]),
    # Europe/London, Sunday 2030-03-31 (the last day of March): 01:00Z 01:00 GMT -> 02:00 BST.
    ("London spring on the last day: a fixed L job in the gap runs once, right after the jump",
     "30 1 L * *", "Europe/London", "2030-03-30T12:00Z", ["2030-03-31T01:00Z", "2030-04-30T00:30Z"]),
    ("London spring: LW leaves the change day for Friday the 29th (GMT)", "30 1 LW 3 *", "Europe/London",
     "2030-01-01T00:00Z", ["2030-03-29T01:30Z"]),
    # March 31 2031 is a Monday in BST (the change was on Sunday the 30th).
    ("London spring on the last day: a wildcard L job has no run in the missing hour", "*/30 1 L 3 *",
     "Europe/London", "2030-03-30T12:00Z", ["2031-03-31T00:00Z", "2031-03-31T00:30Z"]),
]


@pytest.mark.parametrize(("case", "expr", "tz", "after", "expected"), VECTORS, ids=[v[0] for v in VECTORS])
def test_extension_fire_times_follow_the_documented_rules(case: str, expr: str, tz: str, after: str,
                                                          expected: list[str]) -> None:
    assert fires(expr, tz, after, len(expected)) == expected


def test_extensions_are_case_insensitive_like_names() -> None:
    after, zone = utc("2026-01-01T00:00Z"), ZoneInfo("UTC")
    for upper, lower in (("L", "l"), ("L-3W", "l-3w"), ("15W", "15w"), ("LW", "lw")):
        assert cron.parse(f"0 9 {upper} * *").next_after(after, zone) == cron.parse(
            f"0 9 {lower} * *").next_after(after, zone)
    assert cron.parse("0 9 * * FRIl").next_after(after, zone) == utc("2026-01-30T09:00Z")


def test_only_expressions_with_an_extension_are_marked_extended() -> None:
    assert not cron.parse("0 9 1-7 * mon").extended
    assert not cron.parse("@monthly").extended
    assert cron.parse("0 9 L * *").extended
    assert cron.parse("0 9 * * 5L").extended
    assert cron.parse("0 9 * * 2#3").extended


REJECTED = [
    ("0 9 * * L5", "day-of-week field: 'L5': cronsim and Quartz spell the last Friday 5L (weekday first); "
                   "croniter's L5 is not accepted: write '5L'"),
    ("0 9 * * L", "'L' alone is Quartz's Saturday: write 'sat' or 6"),
    ("0 9 L-31 * *", "the offset from the last day is at most 30"),
    ("0 9 32W * *", "'32W': 32 is out of range 1-31"),
    ("0 9 0W * *", "'0W': 0 is out of range 1-31"),
    ("0 9 W * *", "day-of-month field: 'W' is not a valid extension: write L (last day)"),
    ("0 9 L/2 * *", "'L/2' is not a valid extension"),
    ("0 9 1-15W * *", "'1-15W' is not a valid extension"),
    ("0 9 L-3-5 * *", "'L-3-5' is not a valid extension"),
    ("0 9 L,,1 * *", "day-of-month field: empty list element in 'L,,1'"),
    ("0 9 * * 2#6", "#6 is out of range: a month has a first to a fifth (#1-#5) of each weekday"),
    ("0 9 * * 2#0", "#0 is out of range"),
    ("0 9 * * 8L", "day-of-week field: 8 is out of range 0-7"),
    ("0 9 * * funL", "day-of-week field: 'fun' is not a number"),
    ("0 9 * * 1-5#2", "'1-5#2' is not a valid extension: write 5L (the last Friday of the month) or 2#3"),
    ("0 9 * * 5L/2", "'5L/2' is not a valid extension"),
    ("0 L * * *", "hour field: 'L' (last) is an extension of the day fields only"),
    ("0 0 * L *", "month field: 'L' (last) is an extension of the day fields only"),
    ("0 0 1#2 * *", "day-of-month field: '#' (nth weekday) is an extension of the day-of-week field only"),
    ("0 0 * * 5W", "day-of-week field: '5W' is not a number"),
    ("0 9 L-30 2 *", "can never fire"),  # February never has 31 days
    ("0 9 30W 2 *", "can never fire"),
    ("0 9 */15 * 2#2", "can never fire"),  # days 1, 16, 31 AND the second Tuesday (8th-14th)
]


@pytest.mark.parametrize(("expr", "message"), REJECTED)
def test_malformed_extensions_are_rejected_naming_the_field_and_what_to_write(expr: str, message: str) -> None:
    with pytest.raises(cron.CronError, match=re.escape(message)):
        cron.parse(expr)


def test_an_and_of_an_extension_with_days_that_can_meet_it_is_accepted() -> None:
    # Day 8 is sometimes the second Monday (when the 1st is a Monday): Jun 8 2026.
    assert fires("0 9 */7 * 1#2", "UTC", "2026-01-01T00:00Z", 1) == ["2026-06-08T09:00Z"]


@pytest.mark.parametrize("expr", ["0 9 L * *", "0 9 L-3 * *", "0 9 LW * *", "0 9 15W * *", "0 9 1,L * *",
                                  "0 9 * * 5L", "0 9 * * 2#3", "0 9 * * mon,fri#1"])
def test_strict_cron_refuses_every_extension_naming_the_field(expr: str) -> None:
    with pytest.raises(cron.CronError, match=r"^day-of-(month|week) field: '[^']+' is an extension beyond "
                                             r"cronie, refused by --strict-cron"):
        cron.parse(expr, strict=True)
    assert cron.parse(expr).extended  # and accepted without it


def test_strict_cron_accepts_plain_cron() -> None:
    for expr in ("0 9 1-7 * mon", "*/5 * * * *", "@monthly", "0 0 * * fri-sun"):
        assert cron.parse(expr, strict=True) == cron.parse(expr)


def test_strict_cron_still_gives_the_croniter_hint_for_l5() -> None:
    with pytest.raises(cron.CronError, match="croniter's L5 is not accepted"):
        cron.parse("0 9 * * L5", strict=True)


def _days_in_28_years(expr: cron.CronExpr) -> bool:
    """Within 1901-2099 the calendar repeats every 28 years: any day that ever matches, matches here."""
    d, end = date(2001, 1, 1), date(2029, 1, 1)
    while d < end:
        if expr.day_matches(d):
            return True
        d += timedelta(days=1)
    return False


@pytest.mark.parametrize("expr", ["0 0 L-30 * *", "0 0 L-28 2 *", "0 0 29W 2 *", "0 0 */7 * 1#2",
                                  "0 0 * 2 0#5", "0 0 */15 * 5L", "0 0 L-30 2 *", "0 0 30W 2 *",
                                  "0 0 */15 * 2#2", "0 0 */8 * 3#1"])
def test_the_never_fires_check_agrees_with_a_scan_of_every_day_in_a_calendar_cycle(
        expr: str, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        cron.parse(expr)
        refused = ""
    except cron.CronError as e:
        refused = str(e)
    assert not refused or "never fire" in refused
    monkeypatch.setattr(cron.CronExpr, "can_fire", lambda self: True)
    assert _days_in_28_years(cron.parse(expr)) is not bool(refused)


def test_a_zone_with_a_change_on_the_last_day_of_the_month_is_real() -> None:
    # The DST vectors above rely on these two facts of tzdata.
    london = ZoneInfo("Europe/London")
    for day, before, after in ((datetime(2027, 10, 31), 1, 0), (datetime(2030, 3, 31), 0, 1)):
        assert (day + timedelta(days=1)).day == 1  # the last day of its month
        assert day.weekday() == 6
        assert london.utcoffset(day) == timedelta(hours=before)
        assert london.utcoffset(day.replace(hour=23)) == timedelta(hours=after)
    assert datetime(2027, 10, 31, 0, 30, tzinfo=UTC).astimezone(london).strftime("%H:%M %Z") == "01:30 BST"


def test_the_published_schema_accepts_every_extension_that_validate_accepts() -> None:
    # The schema's cron pattern is for editors; it must never flag what validate accepts.
    for path in (ROOT / "schema" / "schedule.schema.json", ROOT / "reconciler" / "data" / "schedule.schema.json"):
        pattern = re.compile(json.loads(path.read_text())["$defs"]["cron"]["pattern"])
        accepted = [expr for _, expr, *_ in VECTORS] + ["0 9 l-3w * *", "0 9 * * FRI#5,friL", "0 9 1W,LW * *"]
        for expr in accepted:
            cron.parse(expr)
            assert pattern.search(expr), (path.name, expr)
