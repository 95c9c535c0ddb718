"""What windows and calendars do to a backfilled slot (docs/policy.md): windows follow the
`manual:` rule, as for a manual trigger; calendars judge the slot's local date, as the daemon would
have. A backfill never defers: it runs a slot now, records its calendar skip, or leaves it free."""

from __future__ import annotations

from datetime import timedelta

from reconciler.core import policy
from reconciler.core.policy import Cause, Claim, Request, Skip, SkipReason
from tests.core.test_calendars import HOLIDAYS, WEEKEND, sched, slot, w

BACKFILL = Cause.BACKFILL
DENY_ALL_DAY = w("deny", "0 0 * * *", "24h")


def test_a_backfill_runs_outside_the_windows_when_manual_runs_may() -> None:
    s = sched(cron="0 12 * * *", windows=(DENY_ALL_DAY,))  # manual: true, the default
    t = slot("2026-03-02T12:00")
    assert isinstance(policy.decide(s, Request(BACKFILL, 1, t), t + timedelta(days=3), t), Claim)


def test_with_manual_false_a_backfill_outside_the_windows_leaves_the_slot_free_and_never_defers() -> None:
    for outside in ("skip", "defer"):
        s = sched(cron="0 12 * * *", deadline="48h", windows=(DENY_ALL_DAY,), manual=False, outside=outside)
        t = slot("2026-03-02T12:00")
        d = policy.decide(s, Request(BACKFILL, 1, t), t + timedelta(days=3), t)
        assert isinstance(d, Skip), outside
        assert d.reason == SkipReason.WINDOW
        assert not d.recorded  # a later backfill inside a window may still run it
        assert "manual: false" in d.message


def test_with_manual_false_windows_are_judged_when_the_backfill_runs_not_at_the_slot() -> None:
    nightly = w("allow", "0 1 * * *", "4h")
    s = sched(cron="0 12 * * *", windows=(nightly,), manual=False)
    t = slot("2026-03-02T12:00")  # outside the window itself
    assert isinstance(policy.decide(s, Request(BACKFILL, 1, t), slot("2026-03-05T02:00"), t), Claim)
    assert isinstance(policy.decide(s, Request(BACKFILL, 1, t), slot("2026-03-05T12:00"), t), Skip)


def test_a_backfilled_slot_on_an_excluded_date_is_recorded_skipped_as_the_daemon_would_have() -> None:
    s = sched(exclude=(HOLIDAYS,))
    t = slot("2026-12-25T02:00")
    d = policy.decide(s, Request(BACKFILL, 1, t), t + timedelta(days=10), t)
    assert d == Skip(SkipReason.CALENDAR, "calendar de-by-holidays (Christmas Day)")
    assert d.recorded


def test_a_backfilled_slot_moved_to_a_business_day_that_passed_runs_now_under_its_own_key() -> None:
    s = sched(cron="0 2 25 12 *", exclude=(HOLIDAYS, WEEKEND), on_excluded="next_business_day")
    t = slot("2026-12-25T02:00")  # moved to Monday 28 December
    assert isinstance(policy.decide(s, Request(BACKFILL, 1, t), slot("2026-12-29T00:00"), t), Claim)
    assert policy.backfill_note(s, t, slot("2026-12-29T00:00")) == \
        "calendar de-by-holidays (Christmas Day): moved to the next business day, 2026-12-28T01:00:00Z"


def test_a_backfilled_slot_moved_to_a_business_day_still_to_come_is_left_free() -> None:
    s = sched(cron="0 2 25 12 *", exclude=(HOLIDAYS, WEEKEND), on_excluded="next_business_day")
    t = slot("2026-12-25T02:00")
    d = policy.decide(s, Request(BACKFILL, 1, t), slot("2026-12-27T12:00"), t)
    assert isinstance(d, Skip)
    assert d.reason == SkipReason.CALENDAR
    assert not d.recorded
    assert "still to come" in d.message


def test_a_backfilled_slot_that_no_rule_touches_has_no_note() -> None:
    s = sched(exclude=(HOLIDAYS,))
    t = slot("2026-12-23T02:00")
    assert policy.backfill_note(s, t, t + timedelta(days=1)) == ""
