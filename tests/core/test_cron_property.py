"""Our fire times against an obviously-correct reference: a minute-by-minute scan of UTC that
applies cron's rules directly. The reference builds its sets from the generated structure, not
from our parser, and reads DST from zoneinfo's own `fold` and wall-clock jumps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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

# A field is ("star", step) or ("list", [(lo, hi, step, as_range), ...]).
Field = tuple[str, object]


@st.composite
def fields(draw: st.DrawFn, name: str) -> Field:
    lo, hi = BOUNDS[name]
    if draw(st.integers(0, 3)) == 0:
        return ("star", draw(st.sampled_from([1, 1, 2, 3, 5, 7, 15])))
    atoms = []
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
    for a, b, step, as_range in body:
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
        out = {v for a, b, step, _ in body
               for v in range(a, (7 if name == "dow" and a > b == 0 else b) + 1, step)}
    if name == "dow" and 7 in out:
        out = (out - {7}) | {0}
    return out


class Reference:
    def __init__(self, f: dict[str, Field]) -> None:
        self.sets = {n: values(v, n) for n, v in f.items()}
        self.dom_star, self.dow_star = f["dom"][0] == "star", f["dow"][0] == "star"
        self.fixed = f["minute"][0] != "star" and f["hour"][0] != "star"

    def matches(self, wall: datetime) -> bool:
        s = self.sets
        if wall.minute not in s["minute"] or wall.hour not in s["hour"] or wall.month not in s["month"]:
            return False
        dom = wall.day in s["dom"]
        dow = (wall.isoweekday() % 7) in s["dow"]
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


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fire_times_agree_with_a_minute_by_minute_reference(data: st.DataObject) -> None:
    f = {n: data.draw(fields(n), label=n) for n in ("minute", "hour", "dom", "month", "dow")}
    spell = {n: data.draw(st.booleans(), label=f"{n} as names") for n in ("month", "dow")}
    expr = " ".join(render(f[n], n, spell.get(n, False)) for n in ("minute", "hour", "dom", "month", "dow"))
    zone = data.draw(st.sampled_from(ZONES), label="zone")
    tz = ZoneInfo(zone)
    after = data.draw(starts(zone), label="after")
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
