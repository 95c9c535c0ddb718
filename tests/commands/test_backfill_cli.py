"""`reconciler backfill --dry-run` says what windows, calendars and pauses do to each slot, and the
real backfill does exactly that: through the real command."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from reconciler.core.loader import Loader
from reconciler.ledger.sqlite import SqliteLedger

Run = Callable[..., subprocess.CompletedProcess[str]]

JOB = ("name: report\nschedule: {cron: '0 2 * * *', timezone: Europe/Berlin}\nrun: {command: [/bin/true]}\n"
       "calendar: {exclude: [de-by-holidays]}\n")
# Christmas 2025, before this test's now: 23, 24 and 27 December run; 25 and 26 are holidays.
RANGE = ("--from", "2025-12-23T00:00:00Z", "--to", "2025-12-28T00:00:00Z")


def applied(tmp: Path, text: str) -> tuple[str, str]:
    """A schedules directory with its calendar, and a ledger whose last revision holds it."""
    d = tmp / "schedules"
    (d / "calendars").mkdir(parents=True)
    (d / "job.yaml").write_text(text)
    (d / "calendars" / "de-by-holidays.yaml").write_text("holidays: {country: DE, subdivision: BY}\n")
    loaded = Loader().load_paths([d]).schedules
    ledger = SqliteLedger(tmp / "l.db")
    ledger.record_revision("r1", datetime.now(UTC), {}, {s.name: s.spec for s in loaded},
                           {s.name: s.spec_hash for s in loaded})
    ledger.close()
    return str(d), str(tmp / "l.db")


def test_a_dry_run_lists_each_slot_in_its_zone_with_what_the_calendar_does_and_the_backfill_does_that(
        reconciler: Run, tmp_path: Path) -> None:
    d, ledger = applied(tmp_path, JOB)
    dry = reconciler("backfill", "report", *RANGE, "--dir", d, "--ledger", ledger, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "2025-12-23T01:00:00Z  2025-12-23 02:00:00 CET (Tue)  would run",
        "2025-12-24T01:00:00Z  2025-12-24 02:00:00 CET (Wed)  would run",
        "2025-12-25T01:00:00Z  2025-12-25 02:00:00 CET (Thu)  skipped: calendar de-by-holidays (Christmas Day)",
        "2025-12-26T01:00:00Z  2025-12-26 02:00:00 CET (Fri)  skipped: calendar de-by-holidays "
        "(Second Day of Christmas)",
        "2025-12-27T01:00:00Z  2025-12-27 02:00:00 CET (Sat)  would run"]
    db = SqliteLedger(Path(ledger))
    try:
        assert db.runs("report") == []  # a dry run writes nothing
    finally:
        db.close()
    real = reconciler("backfill", "report", *RANGE, "--dir", d, "--ledger", ledger, "--format", "json")
    assert real.returncode == 0, real.stderr  # a calendar's skip is no failure
    done = json.loads(real.stdout)["slots"]
    dry_json = json.loads(reconciler("backfill", "report", *RANGE, "--dir", d, "--ledger", ledger, "--dry-run",
                                     "--format", "json").stdout)["slots"]
    assert {p["plan"] for p in dry_json} == {"ran"}
    assert [(p["plan"], p["detail"], p["status"]) for p in done] == [
        ("run", "", "succeeded"), ("run", "", "succeeded"),
        ("skipped", "calendar de-by-holidays (Christmas Day)", "skipped"),
        ("skipped", "calendar de-by-holidays (Second Day of Christmas)", "skipped"),
        ("run", "", "succeeded")]
    db = SqliteLedger(Path(ledger))
    try:
        rows = sorted(db.runs("report"), key=lambda r: r.slot)
    finally:
        db.close()
    assert [(r.status, r.cause, r.error) for r in rows] == [
        ("succeeded", "backfill", None), ("succeeded", "backfill", None),
        ("skipped", "backfill", "calendar de-by-holidays (Christmas Day)"),
        ("skipped", "backfill", "calendar de-by-holidays (Second Day of Christmas)"),
        ("succeeded", "backfill", None)]


def test_with_manual_false_a_dry_run_outside_the_windows_says_the_slots_stay_free_and_the_backfill_runs_none(
        reconciler: Run, tmp_path: Path) -> None:
    text = JOB.replace("calendar: {exclude: [de-by-holidays]}\n", "") + (
        "windows: [{kind: deny, cron: '0 0 * * *', duration: 24h}]\npolicy: {manual: false}\n")
    d, ledger = applied(tmp_path, text)
    args = ("backfill", "report", "--from", "2025-12-23T00:00:00Z", "--to", "2025-12-24T00:00:00Z", "--dir", d,
            "--ledger", ledger)
    dry = reconciler(*args, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout == ("2025-12-23T01:00:00Z  2025-12-23 02:00:00 CET (Tue)  not run: window: inside window 1 "
                          "(deny cron '0 0 * * *' for 24h) (manual: false); the slot stays free for a backfill "
                          "inside a window\n")
    real = reconciler(*args)
    assert real.returncode == 0, real.stderr
    assert real.stdout == dry.stdout
    db = SqliteLedger(Path(ledger))
    try:
        assert db.runs("report") == []
    finally:
        db.close()
