"""`reconciler pause`, `resume` and `plan --ledger` warnings, through the real command (no daemon)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from reconciler.core.loader import Loader
from reconciler.ledger.sqlite import SqliteLedger

Run = Callable[..., subprocess.CompletedProcess[str]]


def applied(tmp_path: Path, *names: str) -> tuple[Path, Path]:
    """A schedules directory and a ledger whose last revision holds it, as a daemon leaves one."""
    sched = tmp_path / "schedules"
    sched.mkdir()
    for n in names:
        (sched / f"{n}.yaml").write_text(f"name: {n}\nschedule: {{cron: '0 2 * * *'}}\nrun: {{command: [/bin/true]}}\n")
    loaded = Loader().load_paths([sched])
    path = tmp_path / "l.db"
    ledger = SqliteLedger(path)
    ledger.record_revision("r1", datetime.now(UTC), {}, {s.name: s.spec for s in loaded.schedules},
                           {s.name: s.spec_hash for s in loaded.schedules})
    ledger.close()
    return sched, path


def test_plan_warns_when_a_change_touches_a_paused_schedule(reconciler: Run, tmp_path: Path) -> None:
    sched, ledger = applied(tmp_path, "nightly", "other")
    out = reconciler("pause", "nightly", "--reason", "vendor outage", "--ledger", str(ledger))
    assert out.returncode == 0, out.stderr
    (sched / "nightly.yaml").write_text("name: nightly\nschedule: {cron: '0 3 * * *'}\nrun: {command: [/bin/true]}\n")
    (sched / "other.yaml").write_text("name: other\nschedule: {cron: '0 4 * * *'}\nrun: {command: [/bin/true]}\n")
    r = reconciler("plan", "--dir", str(sched), "--ledger", str(ledger), "--format", "json")
    assert r.returncode == 2
    text = r.stdout
    assert "vendor outage; its slots stay skipped until it is resumed" in text
    assert text.count("stay skipped") == 1  # `other` is not paused


def test_a_pause_until_a_past_time_or_without_a_target_is_a_usage_error(reconciler: Run, tmp_path: Path) -> None:
    _, ledger = applied(tmp_path, "a")
    past = reconciler("pause", "a", "--until", "2020-01-01T00:00:00Z", "--ledger", str(ledger))
    assert past.returncode == 64
    assert "has passed already" in past.stderr
    naive = reconciler("pause", "a", "--until", "2099-01-01T00:00:00", "--ledger", str(ledger))
    assert naive.returncode == 64
    assert "offset" in naive.stderr
    assert reconciler("pause", "--ledger", str(ledger)).returncode == 64
    assert reconciler("resume", "a", "--ledger", str(tmp_path / "nope.db")).returncode == 64


def test_resume_says_which_schedules_were_not_paused(reconciler: Run, tmp_path: Path) -> None:
    _, ledger = applied(tmp_path, "a", "b")
    reconciler("pause", "a", "--until", "2099-01-01T00:00:00+01:00", "--ledger", str(ledger))
    listed = json.loads(reconciler("pause", "--list", "--format", "json", "--ledger", str(ledger)).stdout)
    assert [(p["schedule"], p["until"]) for p in listed] == [("a", "2098-12-31T23:00:00Z")]
    r = reconciler("resume", "a", "b", "--ledger", str(ledger))
    assert r.stdout == "a: resumed\nb: was not paused\n"


def test_next_with_the_ledger_marks_the_slots_a_pause_skips(reconciler: Run, tmp_path: Path) -> None:
    sched, ledger = applied(tmp_path, "a")
    reconciler("pause", "a", "--reason", "freeze", "--until", "2099-01-03T00:00:00Z", "--ledger", str(ledger))
    r = reconciler("next", "a", "--dir", str(sched), "--after", "2099-01-01T00:00:00Z", "-n", "3",
                   "--ledger", str(ledger), "--format", "json")
    assert r.returncode == 0, r.stderr
    assert [s["slot"] for s in json.loads(r.stdout)["skipped"]] == ["2099-01-01T02:00:00Z", "2099-01-02T02:00:00Z"]
    text = reconciler("next", "a", "--dir", str(sched), "--after", "2099-01-01T00:00:00Z", "-n", "3",
                      "--ledger", str(ledger)).stdout.splitlines()
    assert "skipped: paused by" in text[1]
    assert "freeze (until 2099-01-03T00:00:00Z)" in text[1]
    assert "skipped" not in text[3]
