"""Calendars and windows through the incremental source, the daemon's delta and the parse cache:
a changed shared file names exactly the schedules that refer to it, and a schedule built from the
parse cache is resolved against the shared files as they are now."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.calendars import Calendar
from reconciler.core.loader import Loader
from reconciler.ledger import open_ledger
from reconciler.service.daemon import Options, Reconciler
from reconciler.service.log import make_log
from reconciler.service.source import DirectorySource, Snapshot

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def job(name: str, extra: str = "") -> str:
    return f"name: {name}\nschedule: {{every: 1h}}\nrun: {{command: [/bin/true]}}\n{extra}"


def tree(d: Path) -> Path:
    (d / "calendars").mkdir(parents=True)
    (d / "windows").mkdir()
    (d / "calendars" / "off.yaml").write_text("dates: [2026-05-01]\n")
    (d / "calendars" / "other.yaml").write_text("dates: [2026-07-01]\n")
    (d / "calendars" / "payroll.yaml").write_text("last_business_day_of_month: {excluding: [off]}\n")
    (d / "windows" / "freeze.yaml").write_text(
        "windows:\n  - {kind: deny, cron: '0 18 24 12 *', duration: 48h, timezone: UTC}\n")
    (d / "a.yaml").write_text(job("a", "calendar: {exclude: [off]}\n"))
    (d / "b.yaml").write_text(job("b", "windows: [freeze]\n"))
    (d / "c.yaml").write_text(job("c"))
    (d / "d.yaml").write_text(job("d", "calendar: {exclude: [other]}\n"))
    (d / "p.yaml").write_text(job("p", "calendar: {only: [payroll]}\n"))
    return d


def _cals(cals: tuple[Calendar, ...]) -> tuple[Any, ...]:
    # A calendar's content by digest: its memo of days looked up is no part of it.
    return tuple((c.name, c.digest, _cals(c.last_business_day or ())) for c in cals)


def rules(snap: Snapshot) -> dict[str, Any]:
    return {n: (tuple(w.label for w in s.rules.windows), s.rules.outside, _cals(s.rules.exclude),
                _cals(s.rules.only), s.rules.on_excluded) for n, s in snap.schedules.items()}


def same_as_fresh(snap: Snapshot, directory: Path) -> None:
    fresh = DirectorySource(directory).full(NOW)
    assert dict(snap.hashes) == dict(fresh.hashes)
    assert rules(snap) == rules(fresh)
    assert [p.message for p in snap.problems] == [p.message for p in fresh.problems]
    assert snap.revision == fresh.revision


def test_an_edited_calendar_marks_every_schedule_naming_it_changed_and_no_other(tmp_path: Path) -> None:
    d = tree(tmp_path)
    source = DirectorySource(d)
    first = source.full(NOW)
    (d / "calendars" / "off.yaml").write_text("dates: [2026-06-01]\n")
    snap = source.changed([str(d / "calendars" / "off.yaml")], NOW)
    assert snap.delta is not None
    assert snap.delta.base == first.number
    # a names it; p's payroll calendar excludes it, so p's last business days move too.
    assert snap.delta.names == {"a", "p"}
    (cal,) = snap.schedules["a"].rules.exclude
    assert date(2026, 6, 1) in cal
    assert date(2026, 5, 1) not in cal
    assert snap.schedules["c"] is first.schedules["c"]
    assert snap.schedules["d"] is first.schedules["d"]
    same_as_fresh(snap, d)


def test_an_edited_windows_file_marks_the_schedules_naming_it_changed(tmp_path: Path) -> None:
    d = tree(tmp_path)
    source = DirectorySource(d)
    source.full(NOW)
    (d / "windows" / "freeze.yaml").write_text(
        "windows:\n  - {kind: deny, cron: '0 18 24 12 *', duration: 72h, timezone: UTC}\n")
    snap = source.changed([str(d / "windows" / "freeze.yaml")], NOW)
    assert snap.delta is not None
    assert snap.delta.names == {"b"}
    assert "72h" in snap.schedules["b"].rules.windows[0].label
    same_as_fresh(snap, d)


def test_a_removed_calendar_takes_its_schedules_out_with_a_problem_and_its_return_brings_them_back(
        tmp_path: Path) -> None:
    d = tree(tmp_path)
    source = DirectorySource(d)
    source.full(NOW)
    (d / "calendars" / "other.yaml").unlink()
    gone = source.changed([str(d / "calendars" / "other.yaml")], NOW)
    assert gone.delta is not None
    assert gone.delta.names == {"d"}
    assert "d" not in gone.schedules
    assert "d" not in gone.hashes
    assert [p.message for p in gone.problems] == [
        "calendar 'other' cannot be used: no calendars/other.yaml or .ics beside the schedules"]
    same_as_fresh(gone, d)
    (d / "calendars" / "other.yaml").write_text("dates: [2026-08-01]\n")
    back = source.changed([str(d / "calendars" / "other.yaml")], NOW)
    assert back.delta is not None
    assert back.delta.names == {"d"}
    assert back.problems == ()
    (cal,) = back.schedules["d"].rules.exclude
    assert date(2026, 8, 1) in cal
    same_as_fresh(back, d)


def test_a_rescan_sees_a_calendar_edit_without_an_event_and_an_unchanged_rescan_changes_nothing(
        tmp_path: Path) -> None:
    d = tree(tmp_path)
    source = DirectorySource(d)
    source.full(NOW)
    quiet = source.full(NOW)
    assert quiet.delta is not None
    assert quiet.delta.names == frozenset()
    (d / "calendars" / "off.yaml").write_text("dates: [2026-06-01]\n")
    snap = source.full(NOW)  # the periodic rescan
    assert snap.delta is not None
    assert snap.delta.names == {"a", "p"}
    same_as_fresh(snap, d)


def _daemon(tmp_path: Path, selector: dict[str, str] | None = None) -> Reconciler:
    return Reconciler(Options(directory=str(tmp_path / "s"), listen=None, selector=selector or {}),
                      open_ledger(tmp_path / "ledger.db"), make_log("json", io.StringIO()),
                      lambda: datetime.now(UTC))


@pytest.mark.parametrize("selector", [None, {"team": "x"}])
def test_a_calendar_edit_reaches_the_running_daemons_live_schedules_and_its_runner(
        tmp_path: Path, selector: dict[str, str] | None) -> None:
    d = tree(tmp_path / "s")
    for name in ("a", "c"):  # with a selector, only what matches it is live
        (d / f"{name}.yaml").write_text((d / f"{name}.yaml").read_text() + "labels: {team: x}\n")
    daemon = _daemon(tmp_path, selector)
    daemon.start()
    try:
        (d / "calendars" / "off.yaml").write_text("dates: [2026-06-01]\n")
        assert daemon.reconcile(daemon.source.changed([str(d / "calendars" / "off.yaml")], NOW)) is True
        (cal,) = daemon.live.schedules["a"].rules.exclude
        assert date(2026, 6, 1) in cal
        assert daemon.runner._live["a"] is daemon.live.schedules["a"]
    finally:
        daemon.stop()
        daemon.ledger.close()


class Checked:
    def __init__(self) -> None:
        self.names: list[str] = []


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> Checked:
    found = Checked()
    real = Loader.check_bytes

    def spy(self: Loader, path: str, data: bytes, now: datetime, **kw: Any) -> Any:
        found.names.append(path.rsplit("/", 1)[-1])
        return real(self, path, data, now, **kw)

    monkeypatch.setattr(Loader, "check_bytes", spy)
    return found


def _start_stop(tmp_path: Path) -> Reconciler:
    daemon = _daemon(tmp_path)
    daemon.start()
    daemon.stop()
    daemon.ledger.close()
    return daemon


def test_a_schedule_from_the_parse_cache_uses_the_calendar_as_it_is_at_the_restart(
        tmp_path: Path, checked: Checked) -> None:
    # The cache keeps each schedule file's own check, which no shared file enters: references are
    # resolved after it, at every load. So an entry stays valid across a calendar edit.
    d = tree(tmp_path / "s")
    _start_stop(tmp_path)
    assert (tmp_path / "ledger.db.parse-cache").is_file()
    checked.names.clear()
    (d / "calendars" / "off.yaml").write_text("dates: [2026-06-01]\n")
    second = _start_stop(tmp_path)
    assert "a.yaml" not in checked.names  # from the cache
    (cal,) = second.live.schedules["a"].rules.exclude
    assert date(2026, 6, 1) in cal
    assert date(2026, 5, 1) not in cal


def test_a_schedule_from_the_parse_cache_whose_calendar_is_gone_is_refused(
        tmp_path: Path, checked: Checked) -> None:
    d = tree(tmp_path / "s")
    _start_stop(tmp_path)
    checked.names.clear()
    (d / "calendars" / "other.yaml").unlink()
    second = _start_stop(tmp_path)
    assert "d.yaml" not in checked.names  # from the cache
    assert "d" not in second.live.schedules
    assert any("calendar 'other' cannot be used" in p.message for p in second.live.status.problems)
