"""The time-rule examples of issue 17 exist, resolve their shared calendars and windows, and do
what their comments say: German holidays skipped, a 01:00-05:00 nightly window, payroll on the
last business day, and the third-Tuesday patch window."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from reconciler.core.loader import Loader
from reconciler.core.model import Schedule
from reconciler.core.policy import slot_note
from tests.conftest import NOW, ROOT

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(scope="module")
def schedules() -> dict[str, Schedule]:
    result = Loader().load_paths(EXAMPLES, now=NOW)
    assert result.problems == ()  # every reference to calendars/ and windows/ resolves
    return {s.name: s for s in result.schedules}


def berlin(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def fire_times(s: Schedule, n: int) -> list[datetime]:
    out, t = [], NOW
    for _ in range(n):
        nxt = s.timing.next_slot(t)
        assert nxt is not None
        out.append(nxt.astimezone(BERLIN))
        t = nxt
    return out


def test_the_four_examples_the_issue_asks_for_exist_with_their_rules(schedules: dict[str, Schedule]) -> None:
    report, nightly, payroll, patch = (schedules[n] for n in ("weekday-report", "nightly-reindex", "payroll",
                                                              "os-patching"))
    assert "de-holidays" in [c.name for c in report.rules.exclude]
    assert (nightly.rules.windows[0].kind, nightly.rules.windows[0].duration) == ("allow", timedelta(hours=4))
    assert [c.name for c in payroll.rules.only] == ["payroll-days"]
    assert patch.spec["schedule"]["cron"] == "0 2 * * 2#3"
    assert [w.kind for w in schedules["inventory-sync"].rules.windows] == ["deny"]


def test_the_weekday_job_skips_german_holidays(schedules: dict[str, Schedule]) -> None:
    s = schedules["weekday-report"]
    assert slot_note(s, berlin("2026-12-25T07:00")) == "skipped: calendar de-holidays (Christmas Day)"
    assert slot_note(s, berlin("2026-12-04T07:00")) == ""


def test_the_nightly_job_runs_only_between_01_and_05(schedules: dict[str, Schedule]) -> None:
    s = schedules["nightly-reindex"]
    assert slot_note(s, berlin("2026-12-04T00:30")) == "deferred to 2026-12-04 01:00:00 CET (Fri) (window)"


def test_payroll_runs_on_the_last_business_day_of_the_month_only(schedules: dict[str, Schedule]) -> None:
    s = schedules["payroll"]
    runs = [t for t in fire_times(s, 40) if slot_note(s, t) == ""]
    # 31 Dec 2026 is a Thursday; 30 and 31 Jan 2027 are a weekend; 28 Feb 2027 is a Sunday.
    assert [t.date().isoformat() for t in runs[:3]] == ["2026-11-30", "2026-12-31", "2027-01-29"]


def test_the_patch_job_fires_on_third_tuesdays_from_the_15th_to_the_21st(schedules: dict[str, Schedule]) -> None:
    times = fire_times(schedules["os-patching"], 13)
    assert all(t.weekday() == 1 and 15 <= t.day <= 21 and (t.hour, t.minute) == (2, 0) for t in times)
    assert [(t.year, t.month) for t in times] == [(2026, 12)] + [(2027, m) for m in range(1, 13)]
    assert [t.day for t in times] == [15, 19, 16, 16, 20, 18, 15, 20, 17, 21, 19, 16, 21]
    assert times[9].date().isoformat() == "2027-09-21"  # September 2027 starts on a Wednesday


def test_other_jobs_are_kept_out_of_the_patch_window_and_the_patch_job_only_inside_it(
        schedules: dict[str, Schedule]) -> None:
    sync = schedules["inventory-sync"]
    assert slot_note(sync, berlin("2027-09-21T02:00")).startswith("skipped: window: inside window patch-window")
    assert slot_note(sync, berlin("2027-09-21T05:30")).startswith("skipped: window:")
    assert slot_note(sync, berlin("2027-09-21T06:00")) == ""  # the window closes at 06:00
    assert slot_note(sync, berlin("2027-09-14T03:00")) == ""  # the second Tuesday is not patched
    patch = schedules["os-patching"]
    assert slot_note(patch, berlin("2027-09-21T02:00")) == ""  # its own slot is inside its allow window
    assert not patch.rules.manual  # so a manual trigger outside it is held back too
