"""The directory source with calendars/ and windows/: shared files are not schedules, and an
event on one reaches the schedules naming it, as a fresh read would."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from reconciler.service.source import DirectorySource

NOW = datetime(2026, 3, 1, tzinfo=UTC)
JOB = "name: job\nschedule: {every: 1h}\nrun: {command: [/bin/true]}\ncalendar: {exclude: [off]}\n"


def tree(tmp_path: Path) -> Path:
    (tmp_path / "calendars").mkdir()
    (tmp_path / "job.yaml").write_text(JOB)
    (tmp_path / "calendars" / "off.yaml").write_text("dates: [2026-05-01]\n")
    return tmp_path


def test_calendar_files_are_not_read_as_schedules_and_their_dates_reach_the_schedule(tmp_path: Path) -> None:
    snap = DirectorySource(tree(tmp_path)).full(NOW)
    assert snap.problems == ()
    assert list(snap.schedules) == ["job"]
    (cal,) = snap.schedules["job"].rules.exclude
    assert date(2026, 5, 1) in cal


def test_an_edited_calendar_reaches_the_schedule_on_its_event_and_moves_the_revision(tmp_path: Path) -> None:
    source = DirectorySource(tree(tmp_path))
    before = source.full(NOW)
    path = tmp_path / "calendars" / "off.yaml"
    path.write_text("dates: [2026-06-01]\n")
    after = source.changed([str(path)], NOW)
    (cal,) = after.schedules["job"].rules.exclude
    assert date(2026, 6, 1) in cal
    assert date(2026, 5, 1) not in cal
    assert after.revision != before.revision
    fresh = DirectorySource(tmp_path).full(NOW)
    assert fresh.revision == after.revision


def test_a_removed_calendar_directory_makes_the_schedule_naming_it_a_problem(tmp_path: Path) -> None:
    source = DirectorySource(tree(tmp_path))
    source.full(NOW)
    shutil.rmtree(tmp_path / "calendars")
    snap = source.changed([str(tmp_path / "calendars")], NOW)
    assert "job" not in snap.schedules
    assert [p.message for p in snap.problems] == [
        "calendar 'off' cannot be used: no calendars/off.yaml or .ics beside the schedules"]


def test_a_broken_calendar_names_its_own_line_and_the_schedule_says_why_it_cannot_use_it(tmp_path: Path) -> None:
    source = DirectorySource(tree(tmp_path))
    source.full(NOW)
    path = tmp_path / "calendars" / "off.yaml"
    path.write_text("description: x\ndates: [someday]\n")
    snap = source.changed([str(path)], NOW)
    first = snap.problems[0]
    assert (first.path.endswith("calendars/off.yaml"), first.line, first.jsonpath) == (True, 2, "$.dates[0]")
    assert snap.problems[1].message.startswith("calendar 'off' cannot be used: ")
    assert snap.problems[1].message.endswith("calendars/off.yaml has problems")


def test_a_restored_revision_keeps_inline_windows_and_drops_a_schedule_whose_shared_files_are_gone(
        tmp_path: Path) -> None:
    import io
    import json

    from reconciler.core.model import spec_hash
    from reconciler.ledger import open_ledger
    from reconciler.service.daemon import Options, Reconciler
    from reconciler.service.log import make_log

    inline = {"name": "inline", "schedule": {"every": "1h"}, "run": {"command": ["/bin/true"]},
              "windows": [{"kind": "deny", "cron": "0 0 * * *", "duration": "1h"}]}
    shared = {"name": "shared", "schedule": {"every": "1h"}, "run": {"command": ["/bin/true"]},
              "calendar": {"exclude": ["off"]}}
    ledger = open_ledger(tmp_path / "ledger.db")
    specs: dict[str, dict[str, Any]] = {"inline": inline, "shared": shared}
    ledger.record_revision("r1", datetime.now(UTC), {"add": 2}, specs, {n: spec_hash(s) for n, s in specs.items()})
    stream = io.StringIO()
    r = Reconciler(Options(directory=str(tmp_path / "missing"), listen=None), ledger, make_log("json", stream),
                   lambda: datetime.now(UTC))
    try:
        r.start()
        assert set(r.live.schedules) == {"inline"}
        assert len(r.live.schedules["inline"].rules.windows) == 1
        (restored,) = [e for line in stream.getvalue().splitlines()
                       if (e := json.loads(line)).get("event") == "revision.restored"]
        assert restored["unusable"] == ["shared"]
    finally:
        r.stop()
        ledger.close()
