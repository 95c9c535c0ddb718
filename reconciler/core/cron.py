"""Cron expressions exactly as Vixie cron / cronie read them, and their fire times.

Fire times follow cron on a machine whose local zone is the schedule's zone:
- a *fixed-time* job (minute and hour fields both not starting with `*`) whose local time is
  skipped by a spring-forward jump runs once, at the first instant after the jump; in a repeated
  fall-back hour it runs once, at the first occurrence;
- a *wildcard* job has no runs for skipped times and runs in both passes of a repeated hour;
- a job never fires twice at one instant, and "next after T" is strictly after T.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {n: i for i, n in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}
_DAYS = {n: i for i, n in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_FIELDS = (
    # name, low, high, names
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day-of-month", 1, 31, None),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 7, _DAYS),
)
_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # Feb 29 can happen
_NUMBER = re.compile(r"[0-9]+\Z")
_ATOM = re.compile(r"[A-Za-z]+\Z")
_SEARCH_YEARS = 400  # the Gregorian calendar repeats every 400 years
_ONE_DAY = timedelta(days=1)


class CronError(ValueError):
    """An expression cron would not accept, with a message that says what to write instead."""


@dataclass(frozen=True, slots=True)
class CronExpr:
    source: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    doms: int  # bit d set: day-of-month d matches
    months: int  # bit m set: month m matches
    dows: int  # bit w set: weekday w matches, 0 = Sunday
    dom_star: bool
    dow_star: bool
    fixed_time: bool

    def day_matches(self, d: date) -> bool:
        if not (self.months >> d.month) & 1:
            return False
        dom = (self.doms >> d.day) & 1
        dow = (self.dows >> ((d.weekday() + 1) % 7)) & 1
        if self.dom_star or self.dow_star:
            return bool(dom and dow)
        return bool(dom or dow)

    def matches(self, wall: datetime) -> bool:
        """Does a local wall-clock minute match the five fields? (No DST rules here.)"""
        return wall.minute in self.minutes and wall.hour in self.hours and self.day_matches(wall.date())

    def next_day(self, d: date) -> date | None:
        """The first day on or after `d` whose date matches."""
        limit = d.year + _SEARCH_YEARS
        while d.year <= limit:
            if not (self.months >> d.month) & 1:
                d = date(d.year + d.month // 12, d.month % 12 + 1, 1)
                continue
            if self.day_matches(d):
                return d
            d += _ONE_DAY
        return None

    def next_after(self, after: datetime, tz: tzinfo) -> datetime | None:
        """The first fire instant strictly after `after` (aware), in UTC; None if there is none."""
        wall = after.astimezone(tz).replace(tzinfo=None)
        day = wall.date()
        first = True
        while True:
            d = self.next_day(day)
            if d is None:
                return None
            if _offset_changes(d, tz):
                for instant in self._instants_on_transition_day(d, tz):
                    if instant > after:
                        return instant
            else:
                hm = self._first_time(wall.hour, wall.minute) if (first and d == wall.date()) else (
                    self.hours[0], self.minutes[0])
                if hm is not None:
                    local = datetime(d.year, d.month, d.day, hm[0], hm[1])
                    offset = tz.utcoffset(local)
                    assert offset is not None
                    return (local - offset).replace(tzinfo=UTC)
            first = False
            day = d + _ONE_DAY

    def _first_time(self, hour: int, minute: int) -> tuple[int, int] | None:
        """The first (hour, minute) of the day strictly after hour:minute."""
        hours, minutes = self.hours, self.minutes
        if hour in hours:
            i = bisect_right(minutes, minute)
            if i < len(minutes):
                return hour, minutes[i]
        j = bisect_right(hours, hour)
        if j < len(hours):
            return hours[j], minutes[0]
        return None

    def _instants_on_transition_day(self, d: date, tz: tzinfo) -> list[datetime]:
        """Every fire instant of a day on which the zone's offset changes, sorted, in UTC."""
        out: set[datetime] = set()
        for h in self.hours:
            for m in self.minutes:
                wall = datetime(d.year, d.month, d.day, h, m)
                first = _to_utc(wall, tz, 0)
                second = _to_utc(wall, tz, 1)
                exists_first = _to_wall(first, tz) == wall
                exists_second = _to_wall(second, tz) == wall
                if exists_first and exists_second and first != second:  # repeated hour
                    out.add(first)
                    if not self.fixed_time:
                        out.add(second)
                elif exists_first or exists_second:
                    out.add(first if exists_first else second)
                elif self.fixed_time:  # skipped by a forward jump: run once, right after it
                    out.add(_jump_instant(second, first, tz))
        return sorted(out)


def _to_utc(wall: datetime, tz: tzinfo, fold: int) -> datetime:
    return wall.replace(tzinfo=tz, fold=fold).astimezone(UTC)


def _to_wall(instant: datetime, tz: tzinfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


def _offset_changes(d: date, tz: tzinfo) -> bool:
    """Does the zone's UTC offset differ anywhere within local day `d`? (Cheap and exact enough:
    a jump or repeat shows as fold-dependent offsets at either end or as different ends.)"""
    start = datetime(d.year, d.month, d.day)
    end = start.replace(hour=23, minute=59)
    o = tz.utcoffset(start)
    return not (
        o == tz.utcoffset(start.replace(fold=1)) == tz.utcoffset(end) == tz.utcoffset(end.replace(fold=1))
    )


def _jump_instant(low: datetime, high: datetime, tz: tzinfo) -> datetime:
    """The instant of a forward jump lying in (low, high]: the first instant whose wall clock
    is past the gap. Found by bisection to the second; transitions fall on whole seconds."""
    before = _to_wall(low, tz)
    while high - low > timedelta(seconds=1):
        mid = low + (high - low) // 2
        mid = mid.replace(microsecond=0)
        if _to_wall(mid, tz) - before == mid - low:
            low, before = mid, _to_wall(mid, tz)
        else:
            high = mid
    return high


def parse(expression: str) -> CronExpr:
    """Parse a five-field expression or nickname; raise CronError saying what to write instead."""
    source = expression
    text = expression.strip()
    if not text:
        raise CronError("empty cron expression: write five fields, e.g. '0 2 * * *'")
    if text.startswith("@"):
        if text == "@reboot":
            raise CronError("@reboot is not supported: the reconciler has no boot; use `at:` for a one-time run")
        if text not in NICKNAMES:
            raise CronError(f"unknown nickname {text!r}: use one of {', '.join(NICKNAMES)}")
        text = NICKNAMES[text]
    if not text.isascii():
        raise CronError("cron expressions are ASCII: use the digits 0-9 and English names")
    fields = text.split()
    if len(fields) != 5:
        if len(fields) in (6, 7):
            raise CronError(
                f"{len(fields)} fields given; cron has five (minute hour day-of-month month day-of-week). "
                "Seconds and years are not supported: use `every:` for sub-minute intervals"
            )
        raise CronError(f"{len(fields)} fields given; cron has five (minute hour day-of-month month day-of-week)")
    sets = [_parse_field(f, *spec) for f, spec in zip(fields, _FIELDS, strict=True)]
    minutes, hours, doms, months, dows = sets
    if 7 in dows:
        dows = (dows - {7}) | {0}
    dom_star, dow_star = fields[2].startswith("*"), fields[4].startswith("*")
    expr = CronExpr(
        source=source,
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        doms=_bits(doms),
        months=_bits(months),
        dows=_bits(dows),
        dom_star=dom_star,
        dow_star=dow_star,
        fixed_time=not fields[0].startswith("*") and not fields[1].startswith("*"),
    )
    if (dom_star or dow_star) and not any(
        d <= _DAYS_IN_MONTH[m] for m in months for d in doms
    ):
        raise CronError(
            f"{source.strip()!r} can never fire: no month in the month field has any of the days "
            "in the day-of-month field"
        )
    return expr


def _bits(values: set[int]) -> int:
    out = 0
    for v in values:
        out |= 1 << v
    return out


def _value(token: str, name: str, low: int, high: int, names: dict[str, int] | None) -> int:
    if _NUMBER.match(token):
        n = int(token)
    elif _ATOM.match(token) and names is not None and token.lower() in names:
        n = names[token.lower()]
    elif _ATOM.match(token):
        hint = {
            "l": "'L' (last day) is not supported by cron: run on 28-31 and let the job check the date",
            "w": "'W' (nearest weekday) is not supported by cron: list the days instead",
            "h": "'H' (hashed) is not supported: pick a fixed value and add `jitter:` to spread load",
        }.get(token.lower())
        if hint:
            raise CronError(f"{name} field: {hint}")
        allowed = f" (names: {', '.join(names)})" if names else ""
        raise CronError(f"{name} field: {token!r} is not a number{allowed}")
    else:
        raise CronError(f"{name} field: {token!r} is not a number")
    if not low <= n <= high:
        raise CronError(f"{name} field: {n} is out of range {low}-{high}")
    return n


def _unwrapped(a: str, b: str, lo: int, hi: int, low: int, high: int, names: dict[str, int] | None,
               *, stepped: bool) -> str:
    """What to write for a reversed range: cron never wraps past the end of a field."""
    if stepped:
        return "cron ranges do not wrap: write a list"
    top, bottom = (6 if high == 7 else high), low
    spell = {v: k for k, v in (names or {}).items()}

    def like(token: str, n: int) -> str:  # each bound spelt as the user spelt its partner
        return str(n) if _NUMBER.match(token) else spell[n]

    first = a if lo >= top else f"{a}-{like(a, top)}"  # 7 is Sunday, past Saturday
    second = b if hi == bottom else f"{like(b, bottom)}-{b}"
    return f"cron ranges do not wrap: write '{first},{second}' for {a} through {b}, or '{b}-{a}'"


def _parse_field(text: str, name: str, low: int, high: int, names: dict[str, int] | None) -> set[int]:
    for ch, hint in (("?", "'?' is not cron: write '*'"),
                     ("#", "'#' (nth weekday) is not supported by cron: run on days 1-7 "
                           "(e.g. '0 9 1-7 * *') and let the job check the weekday"),):
        if ch in text:
            raise CronError(f"{name} field: {hint}")
    values: set[int] = set()
    for element in text.split(","):
        if not element:
            raise CronError(f"{name} field: empty list element in {text!r}")
        base, slash, step_text = element.partition("/")
        step = 1
        if slash:
            if not _NUMBER.match(step_text):
                raise CronError(f"{name} field: step {step_text!r} is not a number")
            step = int(step_text)
            if step == 0:
                raise CronError(f"{name} field: step 0 never advances; use a step of 1 or more")
        if base == "*":
            lo, hi = low, (6 if high == 7 else high)
        elif "-" in base:
            a, _, b = base.partition("-")
            lo = _value(a, name, low, high, names)
            hi = _value(b, name, low, high, names)
            if lo > hi == 0 and names is _DAYS:
                # cronie (get_range in entry.c): a high end of 0 below the low end means "to
                # Sunday" (`mon-0`, `fri-sun`); cronie looks for it only when no step follows.
                if slash:
                    raise CronError(
                        f"{name} field: the step is read before 0 closes the range on Sunday, so "
                        f"{element!r} matches no day: write '{a}-7/{step_text}'"
                    )
                hi = 7
            if lo > hi:
                raise CronError(f"{name} field: range {element!r} is reversed; "
                                + _unwrapped(a, b, lo, hi, low, high, names, stepped=bool(slash)))
        else:
            lo = hi = _value(base, name, low, high, names)
            if slash:
                raise CronError(
                    f"{name} field: a step needs a range: write '{base}-{high}/{step}' "
                    f"(or '*/{step}') instead of '{element}'"
                )
        # A step larger than the range is accepted, as cronie does (it only warns).
        values.update(range(lo, hi + 1, step))
    return values
