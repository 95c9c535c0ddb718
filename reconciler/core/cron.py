"""Cron expressions exactly as Vixie cron / cronie read them, and their fire times.

Fire times follow cron on a machine whose local zone is the schedule's zone:
- a *fixed-time* job (minute and hour fields both not starting with `*`) whose local time is
  skipped by a spring-forward jump runs once, at the first instant after the jump; in a repeated
  fall-back hour it runs once, at the first occurrence;
- a *wildcard* job has no runs for skipped times and runs in both passes of a repeated hour;
- a job never fires twice at one instant, and "next after T" is strictly after T.

Beyond cronie, and marked as such (docs/cron.md, "Extensions beyond cronie"): Quartz's `L`, `L-3`, `LW`, `L-3W`
and `15W` in day-of-month, `5L` and `2#3` in day-of-week. They only choose days; the star rule and
the DST rules above apply unchanged. `parse(..., strict=True)` refuses them.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import NamedTuple

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
# The extensions, one list element each (case-insensitive, as names are).
_DOM_EXT = re.compile(r"(?:(L)(?:-([0-9]+))?|([0-9]+))(W)?\Z", re.IGNORECASE)
_DOW_EXT = re.compile(r"([0-9]+|[A-Za-z]+)(?:(L)|#([0-9]+))\Z", re.IGNORECASE)
_MAX_LAST_OFFSET = 30  # L-30 is the 1st of a 31-day month, as in Quartz
_DOM_HELP = ("write L (last day), L-3 (three days before the last day), LW (last weekday), 15W (the "
             "weekday nearest the 15th) or L-3W; each alone in its list element, without a range or step")
_DOW_HELP = ("write 5L (the last Friday of the month) or 2#3 (the third Tuesday); each alone in its list "
             "element, without a range or step")
STRICT_HINT = ("an extension beyond cronie, refused by --strict-cron: plain cron has no last day, nearest "
               "weekday or nth weekday")


class DomExt(NamedTuple):
    """A day-of-month extension: `L-offset` (`L` is offset 0) or, with `nearest`, the weekday
    nearest it (`LW`, `L-3W`); `day` instead of the last day for `15W`."""

    day: int  # 0: counted from the last day
    offset: int
    nearest: bool

    def day_in(self, last: int, weekday_of_1st: int) -> int | None:
        """The day it names in a month of `last` days, or None when that month has no such day."""
        target = self.day or last - self.offset
        if not 1 <= target <= last:
            return None
        if not self.nearest:
            return target
        wd = (weekday_of_1st + target - 1) % 7  # 0 = Sunday
        if wd == 6:  # Saturday: the Friday before, unless that leaves the month
            return target + 2 if target == 1 else target - 1
        if wd == 0:  # Sunday: the Monday after, unless that leaves the month
            return target - 2 if target == last else target + 1
        return target


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
    # Extensions beyond cronie (all empty for plain cron):
    dom_ext: tuple[DomExt, ...] = ()
    dow_last: int = 0  # bit w set: the last weekday w of the month matches (`5L`)
    dow_nth: int = 0  # bit 7 * (n - 1) + w set: the n-th weekday w of the month matches (`2#3`)

    @property
    def extended(self) -> bool:
        """Does it use an extension beyond cronie (L, W, #)?"""
        return bool(self.dom_ext or self.dow_last or self.dow_nth)

    def day_matches(self, d: date) -> bool:
        if not (self.months >> d.month) & 1:
            return False
        weekday = (d.weekday() + 1) % 7
        if self.extended:
            return self._day_matches(d.day, weekday, _last_day(d.year, d.month))
        dom = (self.doms >> d.day) & 1
        dow = (self.dows >> weekday) & 1
        if self.dom_star or self.dow_star:
            return bool(dom and dow)
        return bool(dom or dow)

    def _day_matches(self, day: int, weekday: int, last: int) -> bool:
        """Day `day` (weekday 0 = Sunday) of a month of `last` days; the month field aside."""
        dom = bool((self.doms >> day) & 1)
        if not dom and self.dom_ext:
            first = (weekday - day + 1) % 7
            dom = any(e.day_in(last, first) == day for e in self.dom_ext)
        dow = bool((self.dows >> weekday) & 1)
        if not dow:
            dow = bool(((self.dow_last >> weekday) & 1 and day + 7 > last)
                       or (self.dow_nth >> (7 * ((day - 1) // 7) + weekday)) & 1)
        if self.dom_star or self.dow_star:
            return dom and dow
        return dom or dow

    def can_fire(self) -> bool:
        """Does any day of any listed month match? Every month of the Gregorian cycle starts on
        every weekday, and February has 28 days in some years and 29 in others."""
        for month in range(1, 13):
            if not (self.months >> month) & 1:
                continue
            for last in (28, 29) if month == 2 else (_DAYS_IN_MONTH[month],):
                for first in range(7):
                    if any(self._day_matches(day, (first + day - 1) % 7, last) for day in range(1, last + 1)):
                        return True
        return False

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


def _last_day(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return _DAYS_IN_MONTH[month]


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


def parse(expression: str, *, strict: bool = False) -> CronExpr:
    """Parse a five-field expression or nickname; raise CronError saying what to write instead.
    `strict` refuses the extensions beyond cronie (L, W, #)."""
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
    # Field by field, in order, so that the first wrong field is the one reported.
    minutes = _parse_field(fields[0], *_FIELDS[0])
    hours = _parse_field(fields[1], *_FIELDS[1])
    dom_text, dom_ext = _dom_extensions(fields[2], strict)
    doms = _parse_field(dom_text, *_FIELDS[2]) if dom_text else set()
    months = _parse_field(fields[3], *_FIELDS[3])
    dow_text, dow_last, dow_nth = _dow_extensions(fields[4], strict)
    dows = _parse_field(dow_text, *_FIELDS[4]) if dow_text else set()
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
        dom_ext=dom_ext,
        dow_last=dow_last,
        dow_nth=dow_nth,
    )
    if expr.extended:
        never = not expr.can_fire()
    else:
        never = (dom_star or dow_star) and not any(d <= _DAYS_IN_MONTH[m] for m in months for d in doms)
    if never:
        raise CronError(
            f"{source.strip()!r} can never fire: no month in the month field has any of the days "
            "in the day fields"
        )
    return expr


def _elements(text: str, name: str) -> list[str]:
    elements = text.split(",")
    if "" in elements:
        raise CronError(f"{name} field: empty list element in {text!r}")
    return elements


def _dom_extensions(text: str, strict: bool) -> tuple[str, tuple[DomExt, ...]]:
    """The plain list elements of a day-of-month field, and its extensions (`L`, `L-3`, `LW`,
    `L-3W`, `15W`); a list is the union of its elements, extensions included."""
    if not any(ch in text for ch in "LlWw"):  # plain cron: the field is read as cronie reads it
        return text, ()
    name = "day-of-month"
    plain: list[str] = []
    found: set[DomExt] = set()
    for element in _elements(text, name):
        if not any(ch in element for ch in "LlWw"):
            plain.append(element)
            continue
        m = _DOM_EXT.match(element)
        if m is None:
            raise CronError(f"{name} field: {element!r} is not a valid extension: {_DOM_HELP}")
        if strict:
            raise CronError(f"{name} field: {element!r} is {STRICT_HINT}")
        last, offset, day, nearest = m.groups()
        if last:
            n = int(offset or 0)
            if n > _MAX_LAST_OFFSET:
                raise CronError(f"{name} field: {element!r}: L-{n} reaches before the 1st of every month; "
                                f"the offset from the last day is at most {_MAX_LAST_OFFSET}")
            found.add(DomExt(0, n, bool(nearest)))
        else:
            n = int(day)
            if not 1 <= n <= 31:
                raise CronError(f"{name} field: {element!r}: {n} is out of range 1-31")
            found.add(DomExt(n, 0, True))
    return ",".join(plain), tuple(sorted(found))


def _dow_extensions(text: str, strict: bool) -> tuple[str, int, int]:
    """The plain list elements of a day-of-week field, and its extensions as bits: `5L` (last
    Friday) and `2#3` (third Tuesday); a list is the union of its elements."""
    if "#" not in text and "l" not in text.lower():
        return text, 0, 0
    name = "day-of-week"
    plain: list[str] = []
    last = nth = 0
    for element in _elements(text, name):
        if "#" not in element and "l" not in element.lower():
            plain.append(element)
            continue
        low = element.lower()
        if low.startswith("l") and low[1:].isdigit():
            raise CronError(f"{name} field: {element!r}: cronsim and Quartz spell the last Friday 5L "
                            f"(weekday first); croniter's L5 is not accepted: write '{element[1:]}L'")
        if low == "l":
            raise CronError(f"{name} field: 'L' alone is Quartz's Saturday: write 'sat' or 6; for the last "
                            "given weekday of the month write 5L (the last Friday)")
        m = _DOW_EXT.match(element)
        if m is None:
            raise CronError(f"{name} field: {element!r} is not a valid extension: {_DOW_HELP}")
        if strict:
            raise CronError(f"{name} field: {element!r} is {STRICT_HINT}")
        day_text, is_last, count = m.groups()
        weekday = _value(day_text, name, 0, 7, _DAYS) % 7
        if is_last:
            last |= 1 << weekday
        else:
            n = int(count)
            if not 1 <= n <= 5:
                raise CronError(f"{name} field: {element!r}: #{n} is out of range: a month has a first "
                                "to a fifth (#1-#5) of each weekday")
            nth |= 1 << (7 * (n - 1) + weekday)
    return ",".join(plain), last, nth


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
            "l": "'L' (last) is an extension of the day fields only: L in day-of-month, 5L in day-of-week",
            "w": "'W' (nearest weekday) is an extension of the day-of-month field only (15W, LW)",
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
                     ("#", "'#' (nth weekday) is an extension of the day-of-week field only: write "
                           "2#3 there for the third Tuesday"),):
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
