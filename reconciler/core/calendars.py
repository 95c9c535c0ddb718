"""Calendars: named sets of dates (explicit dates and ranges, weekdays, public holidays through
the `holidays` package, the events of an iCalendar file through `icalendar` and
`recurring-ical-events`).

Pure: a calendar file's bytes are parsed into values here, and the holiday lookup is a function of
(country, subdivision, year) that reads nothing but the package's own code.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_ONE_DAY = timedelta(days=1)
# A shift to the next (or previous) business day looks this far at most: a calendar that
# excludes every day must not make a slot search forever.
MAX_SHIFT_DAYS = 366


@lru_cache(maxsize=512)
def holiday_dates(country: str, subdivision: str | None, year: int) -> dict[date, str]:
    """The public holidays of a country (or one of its subdivisions) in a year, by date."""
    import holidays

    found = holidays.country_holidays(country, subdiv=subdivision, years=year)
    return {d: str(name) for d, name in found.items() if d.year == year}


def holiday_problem(country: str, subdivision: str | None) -> str | None:
    """Why the `holidays` package knows no such country or subdivision, or None."""
    import holidays

    try:
        holidays.country_holidays(country, years=2000)
    except NotImplementedError:
        return f"the holidays package knows no country {country!r} (use an ISO 3166-1 code such as DE or US)"
    if subdivision is not None:
        try:
            holidays.country_holidays(country, subdiv=subdivision, years=2000)
        except (NotImplementedError, ValueError):
            return f"the holidays package knows no subdivision {subdivision!r} of {country} (e.g. BY for Bavaria)"
    return None


@dataclass(frozen=True, slots=True, eq=False)
class Calendar:
    name: str
    dates: frozenset[date] = frozenset()
    ranges: tuple[tuple[date, date], ...] = ()  # inclusive on both ends
    weekdays: frozenset[int] = frozenset()  # date.weekday(): 0 = Monday
    holidays: tuple[tuple[str, str | None], ...] = ()  # (country, subdivision)
    month_ends: bool = False  # the last day of every month
    # The last day of every month that none of these calendars holds (payroll's "last business day").
    last_business_day: tuple[Calendar, ...] | None = None
    events: Any = None  # a parsed iCalendar
    digest: str = ""  # identity of the content (the file's blob id)
    _by_year: dict[int, dict[date, str]] = field(default_factory=dict, repr=False)

    def reason(self, d: date) -> str | None:
        """Why `d` is in this calendar (a holiday's name, "listed", ...), or None if it is not."""
        if d in self.dates:
            return "listed"
        for low, high in self.ranges:
            if low <= d <= high:
                return f"in {low.isoformat()}..{high.isoformat()}"
        if d.weekday() in self.weekdays:
            return d.strftime("%A")
        if self.month_ends and (d + _ONE_DAY).month != d.month:
            return "last day of the month"
        if self.last_business_day is not None and last_business_day(self.last_business_day, d):
            return "last business day of the month"
        for country, sub in self.holidays:
            name = holiday_dates(country, sub, d.year).get(d)
            if name is not None:
                return name
        if self.events is not None:
            return self._events_of(d.year).get(d)
        return None

    def __contains__(self, d: object) -> bool:
        return isinstance(d, date) and self.reason(d) is not None

    def _events_of(self, year: int) -> dict[date, str]:
        found = self._by_year.get(year)
        if found is None:
            found = self._by_year[year] = event_dates(self.events, year)
        return found


def last_business_day(excluding: tuple[Calendar, ...], d: date) -> bool:
    """Is `d` the last date of its month that none of these calendars holds?"""
    if any(d in c for c in excluding):
        return False
    later = d + _ONE_DAY
    while later.month == d.month:
        if not any(later in c for c in excluding):
            return False
        later += _ONE_DAY
    return True


def event_dates(calendar: Any, year: int) -> dict[date, str]:
    """The dates of a year that the calendar's events (recurrences expanded) cover, with a summary."""
    import recurring_ical_events  # type: ignore[import-untyped]

    out: dict[date, str] = {}
    for event in recurring_ical_events.of(calendar).between(date(year, 1, 1), date(year + 1, 1, 1)):
        summary = str(event.get("SUMMARY", "event"))
        for d in _days(event):
            if d.year == year:
                out.setdefault(d, summary)
    return out


def _days(event: Any) -> Iterator[date]:
    start = event.get("DTSTART").dt
    end_prop = event.get("DTEND")
    end = end_prop.dt if end_prop is not None else None
    first = start.date() if isinstance(start, datetime) else start
    if end is None:
        last = first
    elif isinstance(end, datetime):
        # An event ending at midnight does not cover the day it ends on.
        last = end.date() - _ONE_DAY if end.time() == datetime.min.time() and end.date() > first else end.date()
    else:
        last = end - _ONE_DAY  # all-day: DTEND is exclusive
    d = first
    while d <= max(first, last):
        yield d
        d += _ONE_DAY


def parse_ics(name: str, data: bytes, digest: str = "") -> tuple[Calendar | None, str | None]:
    """An iCalendar file as a calendar, or why it cannot be read."""
    import icalendar

    try:
        parsed = icalendar.Calendar.from_ical(data)
        event_dates(parsed, 2000)  # fail here, at validate, not at the first slot
    except Exception as e:  # the parser raises ValueError, KeyError and others on bad input
        return None, f"not a valid iCalendar file ({type(e).__name__}: {str(e)[:120]})"
    return Calendar(name, events=parsed, digest=digest), None


def parse_date(value: Any) -> date | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value) if len(value) == 10 else None
        except ValueError:
            return None
    return None
