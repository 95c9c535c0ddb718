"""Slots of every/at schedules, start/end clipping and deterministic jitter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from reconciler.core import cron
from reconciler.core.timing import Timing

UTCZ = ZoneInfo("UTC")


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_every_slots_are_aligned_to_the_epoch_so_restarts_agree() -> None:
    timing = Timing(name="x", tz=UTCZ, every=timedelta(minutes=15))
    assert list(timing.slots(t("2026-01-01T10:07:13"), 3)) == [
        t("2026-01-01T10:15:00"), t("2026-01-01T10:30:00"), t("2026-01-01T10:45:00")]
    assert timing.next_slot(t("2026-01-01T10:15:00")) == t("2026-01-01T10:30:00")  # strictly after


def test_every_slots_follow_a_custom_anchor_even_before_it() -> None:
    timing = Timing(name="x", tz=UTCZ, every=timedelta(hours=1), anchor=t("2026-01-01T00:05:00"))
    assert timing.next_slot(t("2025-12-31T22:00:00")) == t("2025-12-31T22:05:00")


def test_every_is_unaffected_by_dst_because_it_is_an_interval() -> None:
    timing = Timing(name="x", tz=ZoneInfo("Europe/Berlin"), every=timedelta(hours=1))
    assert list(timing.slots(t("2026-03-29T00:30:00"), 2)) == [t("2026-03-29T01:00:00"), t("2026-03-29T02:00:00")]


def test_at_has_one_slot() -> None:
    timing = Timing(name="x", tz=UTCZ, at=t("2026-12-25T14:30:00"))
    assert list(timing.slots(t("2026-01-01T00:00:00"), 5)) == [t("2026-12-25T14:30:00")]
    assert timing.next_slot(t("2026-12-25T14:30:00")) is None


def test_start_and_end_clip_every_kind_inclusively() -> None:
    timing = Timing(name="x", tz=UTCZ, cron=cron.parse("0 * * * *"),
                    start=t("2026-01-01T10:00:00"), end=t("2026-01-01T12:00:00"))
    assert list(timing.slots(t("2025-06-01T00:00:00"), 10)) == [
        t("2026-01-01T10:00:00"), t("2026-01-01T11:00:00"), t("2026-01-01T12:00:00")]
    at = Timing(name="x", tz=UTCZ, at=t("2026-01-01T09:00:00"), start=t("2026-01-01T10:00:00"))
    assert at.next_slot(t("2025-01-01T00:00:00")) is None


def test_jitter_is_deterministic_per_name_and_slot_and_within_bounds() -> None:
    a = Timing(name="a", tz=UTCZ, every=timedelta(minutes=1), jitter=timedelta(seconds=30))
    b = Timing(name="b", tz=UTCZ, every=timedelta(minutes=1), jitter=timedelta(seconds=30))
    slots = list(a.slots(t("2026-01-01T00:00:00"), 50))
    delays = [a.jitter_for(s) for s in slots]
    assert delays == [Timing(name="a", tz=UTCZ, jitter=timedelta(seconds=30)).jitter_for(s) for s in slots]
    assert all(timedelta(0) <= d < timedelta(seconds=30) for d in delays)
    assert len(set(delays)) > 10  # spread, not constant
    assert delays != [b.jitter_for(s) for s in slots]
    assert a.fire_time(slots[0]) == slots[0] + delays[0]


# ---- the end of the calendar: no slot past the horizon, never an overflow ---------------------

def test_an_interval_whose_next_slot_lies_past_the_calendar_has_no_next_slot() -> None:
    from reconciler.core.timing import HORIZON

    huge = Timing(name="x", tz=UTCZ, every=timedelta(hours=145178261))  # ~16,500 years
    assert huge.next_slot(t("2026-01-01T00:00:00")) is None
    assert list(huge.slots(t("2026-01-01T00:00:00"), 3)) == []
    yearly = Timing(name="x", tz=UTCZ, every=timedelta(days=366))
    last = list(yearly.slots(HORIZON - timedelta(days=800), 10))
    assert 1 <= len(last) <= 3
    assert last[-1] <= HORIZON
    assert yearly.next_slot(HORIZON) is None


def test_jitter_never_pushes_a_fire_time_past_the_horizon() -> None:
    from reconciler.core.timing import HORIZON

    timing = Timing(name="x", tz=ZoneInfo("Pacific/Kiritimati"), cron=cron.parse("* * * * *"),
                    jitter=timedelta(days=999_999_999))
    assert timing.next_slot(t("2026-01-01T00:00:00")) is None
    bounded = Timing(name="x", tz=ZoneInfo("Pacific/Kiritimati"), cron=cron.parse("0 0 * * *"),
                     jitter=timedelta(days=366))
    slots = list(bounded.slots(HORIZON - timedelta(days=400), 100))
    assert slots
    assert all(bounded.fire_time(s) <= HORIZON for s in slots)
    assert all(bounded.fire_time(s).astimezone(bounded.tz).year == 9998 for s in slots[-1:])


def test_a_cron_search_that_runs_off_the_calendar_means_no_next_slot() -> None:
    from reconciler.core.timing import HORIZON

    leap_day = Timing(name="x", tz=ZoneInfo("America/Sitka"), cron=cron.parse("0 0 29 2 *"))
    assert leap_day.next_slot(t("9996-03-01T00:00:00")) is None  # the next 29 February is in 10000
    assert leap_day.next_slot(HORIZON) is None
    assert Timing(name="x", tz=UTCZ, cron=cron.parse("* * * * *")).next_slot(datetime.max.replace(tzinfo=UTC)) is None


def test_slots_are_asked_for_from_any_instant_without_an_overflow() -> None:
    for timing in (Timing(name="x", tz=ZoneInfo("Pacific/Kiritimati"), cron=cron.parse("0 12 * * *")),
                   Timing(name="x", tz=ZoneInfo("Etc/GMT+12"), every=timedelta(days=1))):
        first = timing.next_slot(datetime.min.replace(tzinfo=UTC))
        assert first is not None
        assert first >= datetime(1970, 1, 1, tzinfo=UTC)
        assert timing.next_slot(datetime.max.replace(tzinfo=UTC)) is None
