"""Our fire times against an obviously-correct reference: a minute-by-minute scan of UTC that
applies cron's rules directly. The reference builds its sets from the generated structure, not
from our parser, and reads DST from zoneinfo's own `fold` and wall-clock jumps.

The generator also writes the extensions beyond cronie (L, L-n, LW, L-nW, nW; nL, n#k). The
reference reads them from their definitions by scanning the month (the last day is the day whose
next day is the 1st; the nearest weekday is the Monday-Friday of the same month closest to the
target), not from our arithmetic."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.core import cron

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "America/Santiago", "Australia/Lord_Howe",
         "Australia/Sydney", "Asia/Kathmandu", "America/St_Johns", "Pacific/Chatham", "America/Havana",
         "Africa/Casablanca", "Europe/London"]
MINUTE = timedelta(minutes=1)
HORIZON = 3 * 24 * 60  # minutes scanned by the reference
BOUNDS = {"minute": (0, 59), "hour": (0, 23), "dom": (1, 31), "month": (1, 12), "dow": (0, 7)}

# A field is ("star", step) or ("list", [atom, ...]); an atom is (lo, hi, step, as_range), or an
# extension: ("L", offset, nearest) and ("W", day) in day-of-month, ("L", weekday) and
# ("#", weekday, nth) in day-of-week.
Field = tuple[str, object]
Atom = tuple[object, ...]


@st.composite
def extension(draw: st.DrawFn, name: str) -> Atom:
    if name == "dom":
        if draw(st.booleans()):
            return ("L", draw(st.sampled_from([0, 0, 1, 3, 27, 28, 30])), draw(st.booleans()))
        return ("W", draw(st.sampled_from([1, 1, 2, 15, 28, 29, 30, 31, draw(st.integers(1, 31))])))
    if draw(st.booleans()):
        return ("L", draw(st.integers(0, 7)))
    return ("#", draw(st.integers(0, 7)), draw(st.integers(1, 5)))


@st.composite
def fields(draw: st.DrawFn, name: str, extensions: bool = False) -> Field:
    lo, hi = BOUNDS[name]
    # With extensions, mostly every month: the scan covers three days, and a rare day in a
    # listed month would rarely fall in them.
    if draw(st.integers(0, 3)) == 0 or (extensions and name == "month" and draw(st.integers(0, 3))):
        return ("star", draw(st.sampled_from([1, 1, 2, 3, 5, 7, 15])) if name != "month" or not extensions else 1)
    atoms: list[Atom] = []
    if extensions and name in ("dom", "dow"):
        # Mostly extensions alone: a plain element beside them would fire on most days.
        atoms = draw(st.lists(extension(name), min_size=1, max_size=2))
        if draw(st.integers(0, 3)):
            return ("list", atoms)
    for _ in range(draw(st.integers(1, 3))):
        a = draw(st.integers(lo, hi))
        if name == "dow" and a > 0 and draw(st.integers(0, 4)) == 0:
            atoms.append((a, 0, 1, True))  # `mon-0`: cronie runs it to Sunday
        elif draw(st.booleans()):
            b = draw(st.integers(a, hi))
            atoms.append((a, b, draw(st.sampled_from([1, 1, 2, 3])), True))
        else:
            atoms.append((a, a, 1, False))
    return ("list", atoms)


NAMES = {"month": ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
         "dow": ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]}


def render(f: Field, name: str, spell: bool) -> str:
    kind, body = f
    if kind == "star":
        return "*" if body == 1 else f"*/{body}"
    assert isinstance(body, list)

    def text(v: int) -> str:  # 7 has no name: cronie reads "sun" as 0
        words = NAMES.get(name)
        return words[v - BOUNDS[name][0]] if spell and words and v - BOUNDS[name][0] < len(words) else str(v)

    parts = []
    for atom in body:
        if atom[0] == "L" and name == "dom":
            parts.append("L" + (f"-{atom[1]}" if atom[1] else "") + ("W" if atom[2] else ""))
        elif atom[0] == "W":
            parts.append(f"{atom[1]}W")
        elif atom[0] == "L":
            parts.append(f"{text(atom[1])}L")
        elif atom[0] == "#":
            parts.append(f"{text(atom[1])}#{atom[2]}")
        else:
            a, b, step, as_range = atom
            parts.append((f"{text(a)}-{text(b)}" + (f"/{step}" if step != 1 else "")) if as_range else text(a))
    return ",".join(parts)


def values(f: Field, name: str) -> set[int]:
    lo, hi = BOUNDS[name]
    kind, body = f
    if kind == "star":
        top = 6 if name == "dow" else hi
        assert isinstance(body, int)
        out = set(range(lo, top + 1, body))
    else:
        assert isinstance(body, list)
        # cronie's get_range: in day-of-week, `x-0` with x > 0 runs to 7 (Sunday).
        out = {v for a, b, step, _ in (atom for atom in body if isinstance(atom[0], int))
               for v in range(a, (7 if name == "dow" and a > b == 0 else b) + 1, step)}
    if name == "dow" and 7 in out:
        out = (out - {7}) | {0}
    return out


def extensions(f: Field) -> list[Atom]:
    body = f[1]
    return [atom for atom in body if isinstance(atom[0], str)] if isinstance(body, list) else []


def month_days(d: date) -> list[date]:
    return [date(d.year, d.month, n) for n in range(1, calendar.monthrange(d.year, d.month)[1] + 1)]


def nearest_weekday(target: date) -> date:
    """The Monday-Friday of target's month closest to it (never a tie: Friday is 1 from a
    Saturday, Monday 2; Monday is 1 from a Sunday, Friday 2)."""
    return min((d for d in month_days(target) if d.weekday() < 5), key=lambda d: abs((d - target).days))


def dom_extension(atom: Atom, d: date) -> bool:
    days = month_days(d)
    if atom[0] == "L":
        offset, nearest = atom[1], atom[2]
        assert isinstance(offset, int)
        if offset >= len(days):
            return False
        target = days[-1 - offset]
        return d == (nearest_weekday(target) if nearest else target)
    day = atom[1]
    assert isinstance(day, int)
    return day <= len(days) and d == nearest_weekday(days[day - 1])


def dow_extension(atom: Atom, d: date) -> bool:
    weekday = atom[1]
    assert isinstance(weekday, int)
    same = [x for x in month_days(d) if x.isoweekday() % 7 == weekday % 7]
    if atom[0] == "L":
        return d == same[-1]
    nth = atom[2]
    assert isinstance(nth, int)
    return len(same) >= nth and d == same[nth - 1]


class Reference:
    def __init__(self, f: dict[str, Field]) -> None:
        self.sets = {n: values(v, n) for n, v in f.items()}
        self.dom_ext, self.dow_ext = extensions(f["dom"]), extensions(f["dow"])
        self.dom_star, self.dow_star = f["dom"][0] == "star", f["dow"][0] == "star"
        self.fixed = f["minute"][0] != "star" and f["hour"][0] != "star"

    def matches(self, wall: datetime) -> bool:
        s = self.sets
        if wall.minute not in s["minute"] or wall.hour not in s["hour"] or wall.month not in s["month"]:
            return False
        return self.day_matches(wall.date())

    def day_matches(self, day: date) -> bool:
        s = self.sets
        if day.month not in s["month"]:
            return False
        dom = day.day in s["dom"] or any(dom_extension(a, day) for a in self.dom_ext)
        dow = (day.isoweekday() % 7) in s["dow"] or any(dow_extension(a, day) for a in self.dow_ext)
        return (dom and dow) if (self.dom_star or self.dow_star) else (dom or dow)

    def fires_at(self, t: datetime, tz: ZoneInfo) -> bool:
        local = t.astimezone(tz)
        wall = local.replace(tzinfo=None, fold=0)
        if self.matches(wall) and (not self.fixed or local.fold == 0):
            return True
        if self.fixed:  # times skipped by a forward jump run at the first instant after it
            prev = (t - MINUTE).astimezone(tz).replace(tzinfo=None, fold=0)
            skipped = prev + MINUTE
            while skipped < wall:
                if self.matches(skipped):
                    return True
                skipped += MINUTE
        return False

    def next_after(self, after: datetime, tz: ZoneInfo, limit: datetime) -> datetime | None:
        t = after.replace(second=0, microsecond=0) + MINUTE
        while t <= limit:
            if self.fires_at(t, tz):
                return t
            t += MINUTE
        return None


@cache
def transitions(name: str) -> list[datetime]:
    tz, out = ZoneInfo(name), []
    t = datetime(2019, 1, 1, tzinfo=UTC)
    prev = t.astimezone(tz).utcoffset()
    while t.year < 2031:
        o = t.astimezone(tz).utcoffset()
        if o != prev:
            out.append(t)
        prev, t = o, t + timedelta(hours=1)
    return out or [datetime(2026, 3, 1, tzinfo=UTC)]


@st.composite
def starts(draw: st.DrawFn, zone: str) -> datetime:
    near = draw(st.sampled_from(transitions(zone)))
    offset = draw(st.integers(-36 * 3600, 36 * 3600))
    micro = draw(st.sampled_from([0, 0, 1, 999_999]))
    return near + timedelta(seconds=offset, microseconds=micro)


@st.composite
def month_ends(draw: st.DrawFn) -> datetime:
    """Within the last week of a month or the first days of the next, where most extensions
    fire and Quartz's rules meet the month's edges (and, in some years, a DST change)."""
    year, month = draw(st.integers(2019, 2030)), draw(st.integers(1, 12))
    last = datetime(year, month, calendar.monthrange(year, month)[1], 12, tzinfo=UTC)
    return last + timedelta(seconds=draw(st.integers(-8 * 86400, 3 * 86400)),
                            microseconds=draw(st.sampled_from([0, 0, 1, 999_999])))


@st.composite
def any_day(draw: st.DrawFn) -> datetime:
    seconds = draw(st.integers(0, 12 * 365 * 86400))
    return datetime(2019, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds, microseconds=draw(st.sampled_from([0, 1])))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fire_times_agree_with_a_minute_by_minute_reference(data: st.DataObject) -> None:
    check_against_the_reference(data, extended=False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_extension_fire_times_agree_with_a_minute_by_minute_reference(data: st.DataObject) -> None:
    check_against_the_reference(data, extended=True)


def check_against_the_reference(data: st.DataObject, extended: bool) -> None:
    f = {n: data.draw(fields(n, extended), label=n) for n in ("minute", "hour", "dom", "month", "dow")}
    spell = {n: data.draw(st.booleans(), label=f"{n} as names") for n in ("month", "dow")}
    expr = " ".join(render(f[n], n, spell.get(n, False)) for n in ("minute", "hour", "dom", "month", "dow"))
    zone = data.draw(st.sampled_from(ZONES), label="zone")
    tz = ZoneInfo(zone)
    after = data.draw(st.one_of(starts(zone), month_ends(), any_day()) if extended else starts(zone), label="after")
    ref = Reference(f)
    try:
        parsed = cron.parse(expr)
    except cron.CronError as e:
        error = str(e)
    else:
        error = ""
    if error:  # the generator only builds valid syntax, so the one refusal is "never fires"
        assert "never fire" in error, expr
        return
    limit = after + timedelta(minutes=HORIZON)
    t = after
    for _ in range(4):
        expected = ref.next_after(t, tz, limit)
        got = parsed.next_after(t, tz)
        if expected is None:
            assert got is None or got > limit, (expr, zone, t, got)
            return
        assert got == expected, (expr, zone, t)
        t = got


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_extension_days_agree_with_the_reference_on_every_day_of_three_years(data: st.DataObject) -> None:
    """The extensions only choose days; this checks every day, where the scan above sees three.
    Three years from a start in 2001-2026 (one 28-year calendar cycle across all examples)."""
    f = {n: data.draw(fields(n, True), label=n) for n in ("dom", "month", "dow")}
    f |= {"minute": ("star", 1), "hour": ("star", 1)}
    expr = " ".join(render(f[n], n, False) for n in ("minute", "hour", "dom", "month", "dow"))
    try:
        parsed = cron.parse(expr)
    except cron.CronError as e:
        assert "never fire" in str(e), expr  # noqa: PT017 (checked against a whole cycle in test_cron_extensions)
        return
    ref = Reference(f)
    day = date(data.draw(st.integers(2001, 2026), label="year"), 1, 1)
    for _ in range(3 * 366):
        assert parsed.day_matches(day) == ref.day_matches(day), (expr, day)
        day += timedelta(days=1)
