"""The incremental path: a one-file change costs O(that file), from the directory index to the
live value and the revision recorded in the ledger (in-process)."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import zlib
from collections.abc import Generator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from reconciler.ledger import open_ledger
from reconciler.ledger.base import Ledger
from reconciler.service import daemon as daemon_module
from reconciler.service.daemon import Options, Reconciler
from reconciler.service.log import make_log
from reconciler.service.source import DirectorySource

NOW = datetime.now(UTC)


def doc(name: str, every: str = "1h", team: str = "a") -> str:
    return (f"name: {name}\nlabels: {{team: {team}}}\nschedule: {{every: {every}, start: '2030-01-01T00:00:00Z'}}\n"
            "run: {command: [/bin/true]}\n")


def tree(directory: Path, n: int = 30) -> None:
    directory.mkdir(exist_ok=True)
    for i in range(n):
        (directory / f"s{i}.yaml").write_text(doc(f"s{i}"))


def test_outside_a_git_work_tree_no_process_is_spawned_per_reconcile(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    tree(tmp_path, 5)
    calls: list[list[str]] = []
    real = subprocess.run

    def counting(argv: list[str], *args: Any, **kwargs: Any) -> Any:
        calls.append(argv)
        return real(argv, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", counting)
    source = DirectorySource(tmp_path)
    source.full(NOW)
    for i in range(5):
        (tmp_path / "s1.yaml").write_text(doc("s1", f"{i + 2}h"))
        snap = source.changed([str(tmp_path / "s1.yaml")], NOW)
        assert snap.revision.startswith("content:")
    source.full(NOW)  # a rescan
    assert len(calls) == 1  # looked up once, not once per reconcile


def test_a_one_file_change_names_only_that_files_schedules_as_changed(tmp_path: Path) -> None:
    tree(tmp_path)
    source = DirectorySource(tmp_path)
    first = source.full(NOW)
    assert first.delta is None  # the first read: everything is new
    (tmp_path / "s3.yaml").write_text(doc("s3", "2h") + "---\n" + doc("extra"))
    snap = source.changed([str(tmp_path / "s3.yaml")], NOW)
    assert snap.delta is not None
    assert (snap.delta.base, snap.delta.names) == (first.number, frozenset({"s3", "extra"}))
    assert snap.schedules["s3"].spec["schedule"]["every"] == "2h"
    assert first.schedules["s3"].spec["schedule"]["every"] == "1h"  # the older snapshot is untouched
    # A rescan of the whole tree names only what differs from the snapshot before it.
    (tmp_path / "s4.yaml").unlink()
    again = source.full(NOW)
    assert again.delta is not None
    assert (again.delta.base, again.delta.names) == (snap.number, frozenset({"s4"}))
    assert set(again.schedules) == {f"s{i}" for i in range(30) if i != 4} | {"extra"}


def test_a_vanished_directory_that_held_files_is_read_again_whole(tmp_path: Path) -> None:
    tree(tmp_path, 3)
    sub = tmp_path / "team" / "deep"
    sub.mkdir(parents=True)
    (sub / "x.yaml").write_text(doc("x"))
    source = DirectorySource(tmp_path)
    assert "x" in source.full(NOW).schedules
    (sub / "x.yaml").unlink()
    sub.rmdir()
    snap = source.changed([str(tmp_path / "team")], NOW)  # only the parent's event, as inotify may say
    assert "x" not in snap.schedules
    assert source.changed([str(tmp_path / ".tmp-1.yaml")], NOW).delta is not None  # a temp file: not a rescan


class Setup(NamedTuple):
    daemon: Reconciler
    directory: Path
    ledger: Ledger
    path: Path

    def change(self, *names: str) -> bool:
        return self.daemon.reconcile(self.daemon.source.changed([str(self.directory / n) for n in names],
                                                                datetime.now(UTC)))


def _setup(tmp_path: Path, selector: dict[str, str] | None = None) -> Generator[Setup, None, None]:
    sched = tmp_path / "schedules"
    if not sched.exists():
        tree(sched)
    ledger = open_ledger(tmp_path / "ledger.db")
    daemon = Reconciler(Options(directory=str(sched), listen=None, selector=selector or {}), ledger,
                        make_log("json", io.StringIO()), lambda: datetime.now(UTC))
    daemon.start()
    try:
        yield Setup(daemon, sched, ledger, tmp_path / "ledger.db")
    finally:
        daemon.stop()
        ledger.close()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    yield from _setup(tmp_path)


@pytest.fixture
def selected(tmp_path: Path) -> Iterator[Setup]:
    yield from _setup(tmp_path, {"team": "a"})


def _planned(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    real = daemon_module.plan  # type: ignore[attr-defined]

    def spy(desired: Any, applied: Any, **kw: Any) -> Any:
        sizes.append(len(desired) + len(applied))
        return real(desired, applied, **kw)

    monkeypatch.setattr(daemon_module, "plan", spy)
    return sizes


def _fresh(setup: Setup) -> dict[str, str]:
    return dict(DirectorySource(setup.directory).full(NOW).hashes)


def test_a_one_file_change_plans_only_that_files_schedules(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = _planned(monkeypatch)
    (setup.directory / "s7.yaml").write_text(doc("s7", "3h"))
    assert setup.change("s7.yaml") is True
    assert sizes == [2]  # s7 as it was and as it is: not the 30 schedules
    live = setup.daemon.live
    assert dict(live.hashes) == _fresh(setup)
    assert live.schedules["s7"].spec["schedule"]["every"] == "3h"
    assert set(setup.daemon.timer.next_fire_times()) == set(live.schedules)


def test_changes_made_while_a_revision_was_rejected_are_all_applied_with_the_fix(
        setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = _planned(monkeypatch)
    (setup.directory / "s1.yaml").write_text(doc("s1", "5h"))
    (setup.directory / "s2.yaml").write_text("name: s2\nschedule: {every: nonsense}\n")
    assert setup.change("s1.yaml", "s2.yaml") is False
    assert setup.daemon.live.schedules["s1"].spec["schedule"]["every"] == "1h"
    (setup.directory / "s3.yaml").unlink()
    assert setup.change("s3.yaml") is False  # still broken
    (setup.directory / "s2.yaml").write_text(doc("s2", "6h"))
    assert setup.change("s2.yaml") is True
    assert sizes == [5]  # s1 and s2 old and new, s3 old: what changed since the live revision
    assert dict(setup.daemon.live.hashes) == _fresh(setup)
    assert "s3" not in setup.daemon.timer.next_fire_times()


def test_with_a_selector_a_change_that_stops_matching_removes_the_schedule(
        selected: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = _planned(monkeypatch)
    (selected.directory / "s5.yaml").write_text(doc("s5", team="b"))
    (selected.directory / "new.yaml").write_text(doc("new"))
    assert selected.change("s5.yaml", "new.yaml") is True
    assert sizes == [2]  # new (added) and s5 (removed)
    live = selected.daemon.live
    assert set(live.schedules) == {f"s{i}" for i in range(30) if i != 5} | {"new"}
    assert set(live.hashes) == set(live.schedules)
    assert set(selected.daemon.timer.next_fire_times()) == set(live.schedules)


def test_a_one_file_change_is_recorded_as_that_change_against_the_revision_before(setup: Setup) -> None:
    (setup.directory / "s7.yaml").write_text(doc("s7", "3h"))
    assert setup.change("s7.yaml") is True
    setup.daemon._recorder.submit(lambda: None).result(timeout=30)  # the recorder has caught up
    db = sqlite3.connect(setup.path)
    try:
        rows = db.execute("SELECT seq, parent, snapshot FROM revisions ORDER BY seq").fetchall()
    finally:
        db.close()
    assert len(rows) == 2
    (base, no_parent, _), (_, parent, blob) = rows
    assert (no_parent, parent) == (None, base)
    assert json.loads(zlib.decompress(blob)) == {"s7": setup.daemon.live.hashes["s7"]}
    last = setup.ledger.last_revision()
    assert last is not None
    assert last.hashes == dict(setup.daemon.live.hashes)


def test_a_restart_records_its_first_revision_as_changes_against_the_ledgers_last(tmp_path: Path) -> None:
    gen = _setup(tmp_path)
    first = next(gen)
    gen.close()
    (tmp_path / "schedules" / "s9.yaml").write_text(doc("s9", "9h"))
    gen = _setup(tmp_path)
    second = next(gen)
    try:
        second.daemon._recorder.submit(lambda: None).result(timeout=30)
        db = sqlite3.connect(second.path)
        try:
            parent, blob = db.execute("SELECT parent, snapshot FROM revisions ORDER BY seq DESC LIMIT 1").fetchone()
        finally:
            db.close()
        assert parent is not None
        assert set(json.loads(zlib.decompress(blob))) == {"s9"}
        last = second.ledger.last_revision()
        assert last is not None
        assert last.hashes == dict(second.daemon.live.hashes)
    finally:
        gen.close()
    assert first.daemon is not second.daemon


def test_the_daemons_first_load_of_a_large_tree_uses_a_second_core(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.service import source

    monkeypatch.setattr(source, "PARALLEL_MIN_FILES", 10)
    gen = _setup(tmp_path)
    setup = next(gen)
    try:
        # The replica's heartbeat thread starts after the load: a fork is safe only before threads.
        assert setup.daemon.startup["parallel_load"] is True
        assert len(setup.daemon.live.schedules) == 30
    finally:
        gen.close()


@pytest.mark.parametrize("parallel", [False, True])
def test_a_rescan_reads_only_the_files_whose_inode_size_or_times_changed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel: bool) -> None:
    from reconciler.service import source

    tree(tmp_path, 12)
    settled = source._SETTLED_NS
    monkeypatch.setattr(source, "_SETTLED_NS", -10**12)  # every file counts as written long ago
    monkeypatch.setattr(source, "PARALLEL_MIN_FILES", 4 if parallel else 10**9)
    src = DirectorySource(tmp_path)
    src.full(NOW)
    assert src.last_load_parallel is parallel
    reads: list[str] = []
    real = source._read_stat

    def spy(path: str) -> Any:
        reads.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(source, "_read_stat", spy)
    again = src.full(NOW)
    assert reads == []  # the periodic rescan and the watch's first tick: a stat per file, no read
    assert len(again.schedules) == 12
    before = (tmp_path / "s5.yaml").stat()
    (tmp_path / "s5.yaml").write_text(doc("s5", "7h"))
    os.utime(tmp_path / "s5.yaml", ns=(before.st_atime_ns, before.st_mtime_ns))  # its old mtime: ctime moved
    monkeypatch.setattr(source, "_SETTLED_NS", settled)
    (tmp_path / "fresh.yaml").write_text(doc("fresh"))  # new, and modified just now
    snap = src.full(NOW)
    assert sorted(reads) == ["fresh.yaml", "s5.yaml"]
    assert snap.schedules["s5"].spec["schedule"]["every"] == "7h"
    reads.clear()
    src.full(NOW)
    # Both modified within the last seconds: read again until they are older, since a write in
    # the same timestamp would not change their stat.
    assert sorted(reads) == ["fresh.yaml", "s5.yaml"]


@pytest.mark.parametrize("parallel", [False, True])
def test_each_files_remembered_stat_is_kept_in_forty_bytes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel: bool) -> None:
    from reconciler.service import source

    tree(tmp_path, 12)
    monkeypatch.setattr(source, "_SETTLED_NS", -10**12)
    monkeypatch.setattr(source, "PARALLEL_MIN_FILES", 4 if parallel else 10**9)
    src = DirectorySource(tmp_path)
    src.full(NOW)
    assert src.last_load_parallel is parallel
    kept = src._stats
    assert sorted(kept) == sorted(f"s{i}.yaml" for i in range(12))
    # One small bytes value a file for the life of the process (a tuple of five ints was ~240 B).
    assert {(type(v), len(v)) for v in kept.values()} == {(bytes, 40)}


def test_a_periodic_rescan_finds_missed_edits_additions_and_removals_without_rebuilding_the_index(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.service import source

    tree(tmp_path, 12)
    monkeypatch.setattr(source, "_SETTLED_NS", -10**12)  # every file counts as written long ago
    src = DirectorySource(tmp_path)
    first = src.full(NOW)
    index = src._index
    same = src.rescan(NOW)
    assert src._index is index  # nothing differed: no file read, no index built
    assert (same.revision, dict(same.hashes)) == (first.revision, dict(first.hashes))
    # Changes whose events were lost (an inotify overflow): the rescan is what finds them.
    before = (tmp_path / "s5.yaml").stat()
    (tmp_path / "s5.yaml").write_text(doc("s5", "7h"))
    os.utime(tmp_path / "s5.yaml", ns=(before.st_atime_ns, before.st_mtime_ns))  # its old mtime: ctime moved
    (tmp_path / "s6.yaml").unlink()
    (tmp_path / "fresh.yaml").write_text(doc("fresh"))
    snap = src.rescan(NOW)
    assert src._index is index
    assert snap.schedules["s5"].spec["schedule"]["every"] == "7h"
    assert "s6" not in snap.schedules
    assert "fresh" in snap.schedules
    assert snap.delta is not None
    assert set(snap.delta.names) == {"s5", "s6", "fresh"}
    whole = DirectorySource(tmp_path).full(NOW)
    assert (snap.revision, dict(snap.hashes)) == (whole.revision, dict(whole.hashes))


def test_a_rescan_that_finds_a_changed_defaults_file_reads_the_tree_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.service import source

    tree(tmp_path, 4)
    monkeypatch.setattr(source, "_SETTLED_NS", -10**12)
    src = DirectorySource(tmp_path)
    src.full(NOW)
    index = src._index
    (tmp_path / "_defaults.yaml").write_text("labels: {owner: z}\n")
    snap = src.rescan(NOW)
    assert src._index is not index
    assert snap.schedules["s1"].labels_dict.get("owner") == "z"


class LedgerCalls:
    """What the recorder asks of the ledger: the heads each advance writes, and whole revisions read."""

    def __init__(self, ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
        self.advances: list[dict[str, Any]] = []
        self.wholes = 0
        advance, revision = ledger.advance_revision, ledger.revision

        def advancing(rev: str, hashes: Any, **kw: Any) -> Any:
            self.advances.append(dict(kw.get("changes") or {}) if kw.get("changes") is not None else {"*": len(hashes)})
            return advance(rev, hashes, **kw)

        def whole(seq: int) -> Any:
            self.wholes += 1
            return revision(seq)

        monkeypatch.setattr(ledger, "advance_revision", advancing)
        monkeypatch.setattr(ledger, "revision", whole)


def test_a_one_file_change_writes_one_head_and_reads_no_whole_revision_yet_audits_that_change(
        setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    setup.daemon._recorder.submit(lambda: None).result(timeout=30)  # the first revision is recorded
    calls = LedgerCalls(setup.ledger, monkeypatch)
    (setup.directory / "s7.yaml").write_text(doc("s7", "3h"))
    assert setup.change("s7.yaml") is True
    (setup.directory / "s8.yaml").unlink()
    assert setup.change("s8.yaml") is True
    setup.daemon._recorder.submit(lambda: None).result(timeout=30)
    fresh = _fresh(setup)
    assert calls.advances == [{"s7": fresh["s7"]}, {"s8": None}]
    assert calls.wholes == 0
    heads = setup.ledger.revision_heads()
    assert {n: h for n, (h, _) in heads.items() if h is not None} == fresh
    assert heads["s8"][0] is None
    # Newest first: the first revision added them, these changed and removed them.
    assert [c.action for r in setup.ledger.audit("s7", limit=5) for c in r.changes] == ["change", "add"]
    assert [c.action for r in setup.ledger.audit("s8", limit=5) for c in r.changes] == ["remove", "add"]


def test_after_a_failed_record_the_next_revision_writes_every_head_again(
        setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    setup.daemon._recorder.submit(lambda: None).result(timeout=30)
    real = setup.ledger.advance_revision
    failing = [True]

    def flaky(rev: str, hashes: Any, **kw: Any) -> Any:
        if failing[0]:
            failing[0] = False
            raise OSError("disk gone for a moment")
        return real(rev, hashes, **kw)

    monkeypatch.setattr(setup.ledger, "advance_revision", flaky)
    (setup.directory / "s1.yaml").write_text(doc("s1", "4h"))
    assert setup.change("s1.yaml") is True
    setup.daemon._recorder.submit(lambda: None).result(timeout=30)
    calls = LedgerCalls(setup.ledger, monkeypatch)
    (setup.directory / "s2.yaml").write_text(doc("s2", "5h"))
    assert setup.change("s2.yaml") is True
    setup.daemon._recorder.submit(lambda: None).result(timeout=30)
    assert calls.advances == [{"*": 30}]  # s1's change was never written: the whole map is
    assert {n: h for n, (h, _) in setup.ledger.revision_heads().items()} == _fresh(setup)


def test_a_stop_asked_for_during_the_first_load_starts_no_slot_and_resumes_no_timer(tmp_path: Path) -> None:
    import threading
    import time

    sched = tmp_path / "schedules"
    sched.mkdir()
    (sched / "often.yaml").write_text("name: often\nschedule: {every: 1s}\nrun: {command: [/bin/true]}\n")
    (sched / "late.yaml").write_text(
        "name: late\nschedule: {every: 1h, start: '2026-01-01T00:00:00Z'}\n"
        "policy: {catchup: latest, starting_deadline: 366d}\nrun: {command: [/bin/true]}\n")
    ledger = open_ledger(tmp_path / "ledger.db")
    stop = threading.Event()
    stop.set()  # SIGTERM arrived while the tree was being read
    daemon = Reconciler(Options(directory=str(sched), listen=None), ledger, make_log("json", io.StringIO()),
                        lambda: datetime.now(UTC))
    try:
        daemon.start(stop)
        assert daemon.started is False
        time.sleep(1.5)  # `often` would have fired, and `late`'s missed slot been caught up
        assert ledger.runs() == []
    finally:
        daemon.stop()
        ledger.close()
