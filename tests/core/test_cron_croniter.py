"""Our fire times against croniter's, over random expressions in UTC, beside the minute-by-minute
reference of test_cron_property.py. croniter is a second, independent reading of the same dialect;
with `implement_cron_bug=True` it applies cron's rule that a day field starting with `*` makes the
two day fields AND instead of OR.

The generator keeps to the forms on which croniter and cronie agree. Left out, and why:
- an equal range `a-a` (`sun-sun`, `7-7`, `30-30`) and `7-0`: croniter widens an equal range to
  the whole field (and reads 7 as 0 first), cronie reads the one value;
- reversed ranges (`fri-mon`, `22-2`) and `x-0/step`: croniter wraps them, cronie matches
  nothing (we refuse them);
- a step on a single value (`5/15`): croniter reads `5-59/15`, cronie refuses it (so do we);
- `H`, `?`, seconds and years: not cron (we refuse them);
- zones other than UTC: croniter runs a fixed-time job twice in a repeated hour.

The extensions beyond cronie are compared on fixed expressions below (croniter spells the last
Friday `L5`, we `5L`), on the forms where croniter follows its own documentation. Left out:
`LW` and `L-3` (croniter refuses them), `nW` for a day some month lacks (croniter clamps `31W` to
the end of a short month; Quartz and we skip that month), and an extension beside a restricted
other day field (croniter ANDs `15W * 1` and drops days of `L * L5`; cronie's rule ORs them).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.core import cron

UTC_ZONE = ZoneInfo("UTC")
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("dom", 1, 31), ("month", 1, 12), ("dow", 0, 7))
NAMES = {"month": ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
         "dow": ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]}
FIRES = 5


@st.composite
def value(draw: st.DrawFn, name: str, low: int, n: int) -> str:
    words = NAMES.get(name)
    if words and n - low < len(words) and draw(st.booleans()):  # 7 has no name: "sun" is 0
        word = words[n - low]
        return draw(st.sampled_from([word, word.upper(), word.capitalize()]))
    return str(n)


@st.composite
def element(draw: st.DrawFn, name: str, low: int, high: int) -> str:
    kind = draw(st.sampled_from(["one", "range", "stepped", "to-sunday"] if name == "dow" else
                                ["one", "range", "stepped"]))
    if kind == "one":
        return draw(value(name, low, draw(st.integers(low, high))))
    if kind == "to-sunday":  # `mon-0`, `fri-sun`: cronie runs the range to Sunday
        return f"{draw(value(name, low, draw(st.integers(1, 6))))}-{draw(value(name, low, 0))}"
    a = draw(st.integers(low, high - 1))
    b = draw(st.integers(a + 1, high))  # never equal, never reversed
    text = f"{draw(value(name, low, a))}-{draw(value(name, low, b))}"
    return text + (f"/{draw(st.integers(1, high - low + 1))}" if kind == "stepped" else "")


@st.composite
def field(draw: st.DrawFn, name: str, low: int, high: int) -> str:
    if draw(st.integers(0, 3)) == 0:
        step = draw(st.integers(1, high - low + 1))
        return "*" if step == 1 else f"*/{step}"
    return ",".join(draw(st.lists(element(name, low, high), min_size=1, max_size=3)))


@st.composite
def expressions(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 19)) == 0:
        return draw(st.sampled_from(sorted(cron.NICKNAMES)))
    return " ".join(draw(field(*spec)) for spec in FIELDS)


@st.composite
def starts(draw: st.DrawFn) -> datetime:
    seconds = draw(st.integers(0, 70 * 365 * 86400))
    micro = draw(st.sampled_from([0, 0, 1, 999_999]))
    return datetime(1990, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds, microseconds=micro)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=expressions(), after=starts(), on_a_fire_time=st.booleans())
def test_fire_times_in_utc_agree_with_croniter(expr: str, after: datetime, on_a_fire_time: bool) -> None:
    try:
        parsed = cron.parse(expr)
    except cron.CronError as e:
        error = str(e)
    else:
        error = ""
    if error:  # the generator builds only valid syntax, so the one refusal is "never fires" (`30 2`)
        assert "never fire" in error, expr
        return
    if on_a_fire_time:  # "next after T" is strictly after T in both
        first = parsed.next_after(after, UTC_ZONE)
        assert first is not None
        after = first
    ours, t = [], after
    for _ in range(FIRES):
        nxt = parsed.next_after(t, UTC_ZONE)
        assert nxt is not None
        ours.append(nxt)
        t = nxt
    theirs = croniter(expr, after, implement_cron_bug=True, ret_type=datetime)
    assert ours == [theirs.get_next(datetime) for _ in range(FIRES)], (expr, after)


def test_croniter_agrees_on_ranges_to_sunday_and_on_the_and_of_a_starred_day_field() -> None:
    # Fixed cases of the two rules the random test leans on, so they are checked on every run.
    after = datetime(2026, 1, 14, tzinfo=UTC)  # a Wednesday
    for expr in ("0 12 * * fri-0", "0 12 * * 5-sun", "0 0 */2 * mon", "0 0 1-7 * */2"):
        theirs = croniter(expr, after, implement_cron_bug=True, ret_type=datetime)
        ours = cron.parse(expr).next_after(after, UTC_ZONE)
        assert ours == theirs.get_next(datetime), expr


EXTENSIONS = [("0 9 L * *", "0 9 L * *"), ("0 9 1W * *", "0 9 1W * *"), ("0 9 15W * *", "0 9 15W * *"),
              ("0 9 28W * *", "0 9 28W * *"), ("0 9 * * 5L", "0 9 * * L5"), ("0 9 * * 0L", "0 9 * * L0"),
              ("0 9 * * 2#3", "0 9 * * 2#3"), ("0 9 * * 4#5", "0 9 * * 4#5"), ("0 9 1,L * *", "0 9 1,L * *"),
              ("0 9 * * 1#1,5L", "0 9 * * 1#1,L5"), ("0 9 */2 * 5L", "0 9 */2 * L5"),
              ("30 1 L * 1-5", "30 1 L * 1-5")]


@pytest.mark.parametrize(("ours", "theirs"), EXTENSIONS)
def test_extension_fire_times_in_utc_agree_with_croniter_for_ten_years(ours: str, theirs: str) -> None:
    after = datetime(2026, 1, 1, tzinfo=UTC)
    parsed, other = cron.parse(ours), croniter(theirs, after, implement_cron_bug=True, ret_type=datetime)
    t = after
    while t < datetime(2036, 1, 1, tzinfo=UTC):
        nxt = parsed.next_after(t, UTC_ZONE)
        assert nxt is not None
        assert nxt == other.get_next(datetime), (ours, t)
        t = nxt
