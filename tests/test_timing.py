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
