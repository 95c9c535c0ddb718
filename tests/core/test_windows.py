"""Windows (Argo CD's sync-window rules), as pure functions of instants."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from reconciler.core.timerules import build_window, window_problems
from reconciler.core.windows import Window, judge, next_allowed

BERLIN = ZoneInfo("Europe/Berlin")
UTC_ZONE = ZoneInfo("UTC")


def window(kind: str, expr: str, duration: str, tz: str | None = None) -> Window:
    entry = {"kind": kind, "cron": expr, "duration": duration}
    if tz:
        entry["timezone"] = tz
    assert window_problems(entry, _zone) == []
    return build_window(entry, UTC_ZONE, "w", _zone)


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except Exception:
        return None


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_no_window_at_all_always_allows() -> None:
    assert judge((), at("2026-03-01T12:00")).allowed


def test_with_an_allow_window_only_its_open_span_is_allowed_half_open() -> None:
    nightly = (window("allow", "0 1 * * *", "4h"),)
    assert not judge(nightly, at("2026-03-01T00:59")).allowed
    assert judge(nightly, at("2026-03-01T01:00")).allowed
    assert judge(nightly, at("2026-03-01T04:59:59")).allowed
    assert not judge(nightly, at("2026-03-01T05:00")).allowed
    assert "outside every allow window" in judge(nightly, at("2026-03-01T12:00")).why


def test_an_open_deny_window_beats_an_open_allow_window() -> None:
    rules = (window("allow", "0 0 * * *", "24h"), window("deny", "0 18 24 12 *", "48h", "Europe/Berlin"))
    assert judge(rules, at("2026-12-24T16:59")).allowed
    verdict = judge(rules, at("2026-12-24T17:00"))  # 18:00 in Berlin
    assert not verdict.allowed
    assert verdict.why.startswith("inside")
    assert not judge(rules, at("2026-12-26T16:59")).allowed
    assert judge(rules, at("2026-12-26T17:00")).allowed


def test_a_deny_window_alone_allows_everything_outside_it() -> None:
    rules = (window("deny", "0 2 * * *", "1h"),)
    assert judge(rules, at("2026-03-01T01:59")).allowed
    assert not judge(rules, at("2026-03-01T02:30")).allowed


def test_a_window_opens_by_the_dst_rules_of_cron_a_skipped_opening_runs_right_after_the_jump() -> None:
    # 02:30 does not exist in Berlin on 2026-03-29: a fixed-time cron fires at 03:00 CEST (01:00 UTC).
    rules = (window("allow", "30 2 * * *", "1h", "Europe/Berlin"),)
    assert not judge(rules, at("2026-03-29T00:59")).allowed
    assert judge(rules, at("2026-03-29T01:00")).allowed
    assert not judge(rules, at("2026-03-29T02:00")).allowed  # the duration is elapsed time


def test_the_next_allowed_instant_is_the_next_allow_opening() -> None:
    rules = (window("allow", "0 1 * * *", "4h"),)
    assert next_allowed(rules, at("2026-03-01T12:00"), at("2026-03-03T00:00")) == at("2026-03-02T01:00")
    assert next_allowed(rules, at("2026-03-01T12:00"), at("2026-03-02T00:59")) is None


def test_the_next_allowed_instant_is_when_the_last_overlapping_deny_closes() -> None:
    rules = (window("deny", "*/10 * * * *", "15m"),)  # openings overlap: denied for good
    assert next_allowed(rules, at("2026-03-01T12:00"), at("2026-03-01T13:00")) is None
    two = (window("deny", "0 * * * *", "15m"), window("deny", "10 * * * *", "10m"))
    assert next_allowed(two, at("2026-03-01T12:05"), at("2026-03-01T13:00")) == at("2026-03-01T12:20")


def test_a_deny_inside_an_allow_window_moves_the_next_allowed_instant_to_its_end() -> None:
    rules = (window("allow", "0 1 * * *", "4h"), window("deny", "0 1 * * *", "1h"))
    assert next_allowed(rules, at("2026-03-01T00:30"), at("2026-03-02T00:00")) == at("2026-03-01T02:00")


def test_a_window_may_open_by_every_for_seconds_scale_windows() -> None:
    entry = {"kind": "deny", "every": "10s", "duration": "4s"}
    assert window_problems(entry, _zone) == []
    w = build_window(entry, UTC_ZONE, "w", _zone)
    assert not judge((w,), at("2026-03-01T12:00:03")).allowed
    assert judge((w,), at("2026-03-01T12:00:04")).allowed
    assert next_allowed((w,), at("2026-03-01T12:00:01"), at("2026-03-01T12:01")) == at("2026-03-01T12:00:04")


def test_a_window_as_written_is_checked_field_by_field() -> None:
    found = dict(window_problems({"kind": "maybe", "cron": "61 * * * *", "duration": "0s", "timezone": "Mars/Base",
                                  "colour": 1}, _zone))
    assert set(found) == {("kind",), ("cron",), ("duration",), ("timezone",), ("colour",)}
    assert window_problems({"kind": "allow", "duration": "1h"}, _zone) == [
        ((), "a window opens by one of cron or every")]


def test_a_deny_window_kept_open_by_many_overlapping_openings_closes_after_the_last_one() -> None:
    rules = (window("deny", "* 0-1 * * *", "10m"),)  # opens every minute from 00:00 to 01:59
    assert next_allowed(rules, at("2026-03-01T00:30"), at("2026-03-02T00:00")) == at("2026-03-01T02:09")
