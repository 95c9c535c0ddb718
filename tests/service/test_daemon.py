"""`reconciler run` as a real subprocess on real directories and git repositories."""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Daemon, commit_all, init_repo, job, lines, wait_for


def start(daemons: list[Daemon], directory: Path, workdir: Path, *args: str) -> Daemon:
    d = Daemon(directory, workdir, *args)
    daemons.append(d)
    return d


def test_add_change_suspend_and_remove_take_effect_on_real_jobs(tmp_path: Path, started: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    a, b = tmp_path / "a.out", tmp_path / "b.out"
    (sched / "a.yaml").write_text(job("alpha", a))
    d = start(started, sched, tmp_path)
    d.wait_event("revision.applied", add=1)
    wait_for(lambda: len(lines(a)) >= 2, what="alpha to run twice")

    (sched / "b.yaml").write_text(job("beta", b))  # add
    d.wait_event("revision.applied", add=1, unchanged=1)
    wait_for(lambda: lines(b), what="beta to run")

    (sched / "a.yaml").write_text(job("alpha", a, text="alpha-v2"))  # change
    d.wait_event("revision.applied", change=1)
    wait_for(lambda: any(x.startswith("alpha-v2") for x in lines(a)), what="the changed command")

    (sched / "a.yaml").write_text(job("alpha", a, text="alpha-v2", enabled="false"))  # suspend
    d.wait_event("revision.applied", change=1, unchanged=1, add=0, remove=0)
    time.sleep(1.2)  # a run already handed to a worker may still write
    n = len(lines(a))
    time.sleep(2.5)
    assert len(lines(a)) == n, "a suspended schedule ran"

    (sched / "b.yaml").unlink()  # remove
    d.wait_event("revision.applied", remove=1)
    time.sleep(1.2)
    m = len(lines(b))
    time.sleep(2.5)
    assert len(lines(b)) == m, "a removed schedule ran"
    assert d.stop() == 0


def test_a_rename_stops_the_old_name_and_keeps_its_history(tmp_path: Path, started: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    out = tmp_path / "out"
    (sched / "a.yaml").write_text(job("old-name", out))
    d = start(started, sched, tmp_path)
    wait_for(lambda: lines(out), what="old-name to run")
    (sched / "a.yaml").write_text(job("new-name", out))
    d.wait_event("revision.applied", add=1, remove=1)
    wait_for(lambda: any(x.startswith("new-name") for x in lines(out)), what="new-name to run")
    time.sleep(1.2)
    n_old = sum(x.startswith("old-name") for x in lines(out))
    time.sleep(2.2)
    assert sum(x.startswith("old-name") for x in lines(out)) == n_old
    assert d.stop() == 0
    with sqlite3.connect(d.ledger) as db:
        history = dict(db.execute("SELECT schedule, count(*) FROM runs GROUP BY schedule").fetchall())
    assert history["old-name"] >= 1
    assert history["new-name"] >= 1


def test_an_invalid_commit_keeps_the_old_jobs_running_and_reports_file_and_line(
        tmp_path: Path, started: list[Daemon]) -> None:
    repo = tmp_path / "repo"
    init_repo(repo)
    (repo / "schedules").mkdir()
    out = tmp_path / "out"
    (repo / "schedules" / "a.yaml").write_text(job("steady", out))
    first = commit_all(repo, "first")
    d = start(started, repo / "schedules", tmp_path)
    d.wait_event("revision.applied", revision=first)
    wait_for(lambda: lines(out), what="steady to run")

    (repo / "schedules" / "a.yaml").write_text(job("steady", out, text="broken") + "policy: {concurrency: sometimes}\n")
    (repo / "schedules" / "b.yaml").write_text("name: broken\nschedule: {cron: '0 0 30 2 *'}\nrun: {command: [x]}\n")
    bad = commit_all(repo, "bad")
    rejected = d.wait_event("revision.rejected", revision=bad)
    assert rejected["problems"] == 2
    problems = [e["problem"] for e in d.events("revision.problem") if e["revision"] == bad]
    assert any(p.startswith(f"{repo}/schedules/a.yaml:4:") and "sometimes" in p for p in problems), problems
    assert any(p.startswith(f"{repo}/schedules/b.yaml:2:") and "can never fire" in p for p in problems), problems
    n = len(lines(out))
    wait_for(lambda: len(lines(out)) >= n + 2, what="the old job to keep running")
    assert all(x == f"steady {first}" for x in lines(out)), "a line came from the rejected revision"
    assert d.stop() == 0


def test_an_empty_directory_is_refused_and_the_jobs_keep_running(tmp_path: Path, started: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    out = tmp_path / "out"
    (sched / "a.yaml").write_text(job("keeper", out))
    d = start(started, sched, tmp_path)
    wait_for(lambda: lines(out), what="keeper to run")
    (sched / "a.yaml").unlink()
    d.wait_event("revision.refused")
    n = len(lines(out))
    wait_for(lambda: len(lines(out)) >= n + 2, what="keeper to keep running")
    assert d.stop() == 0


def test_allow_empty_applies_a_revision_that_removes_everything(tmp_path: Path, started: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    (sched / "a.yaml").write_text(job("goner", tmp_path / "out"))
    d = start(started, sched, tmp_path, "--allow-empty")
    d.wait_event("revision.applied", add=1)
    (sched / "a.yaml").unlink()
    d.wait_event("revision.applied", remove=1)
    assert d.stop() == 0


def test_a_missing_directory_is_an_error_never_zero_schedules(tmp_path: Path, started: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    out = tmp_path / "out"
    (sched / "a.yaml").write_text(job("persist", out))
    d = start(started, sched, tmp_path)
    wait_for(lambda: lines(out), what="persist to run")
    assert d.stop() == 0
    shutil.rmtree(sched)
    d2 = start(started, sched, tmp_path)
    d2.wait_event("revision.restored", schedules=1)
    assert d2.wait_event("source.waiting")["directory"] == str(sched)
    n = len(lines(out))
    wait_for(lambda: len(lines(out)) >= n + 2, what="the ledger's last revision to run")
    assert d2.stop() == 0


def test_a_git_sync_link_swap_applies_the_new_worktree_and_its_deletion_removes_nothing(
        tmp_path: Path, started: list[Daemon]) -> None:
    root = tmp_path / "git"
    out = tmp_path / "out"
    old, new = "a" * 40, "b" * 40
    for sha, _text in ((old, "v1"), (new, "v2")):
        (root / ".worktrees" / sha / "schedules").mkdir(parents=True)
    (root / ".worktrees" / old / "schedules" / "a.yaml").write_text(job("synced", out, text="v1"))
    os.symlink(f".worktrees/{old}", root / "current")
    d = start(started, root / "current" / "schedules", tmp_path)
    d.wait_event("revision.applied", revision=old)
    wait_for(lambda: lines(out), what="v1 to run")

    # git-sync: write the new worktree, swap the link atomically, delete the old worktree.
    (root / ".worktrees" / new / "schedules" / "a.yaml").write_text(job("synced", out, text="v2"))
    os.symlink(f".worktrees/{new}", root / "tmp-link")
    os.replace(root / "tmp-link", root / "current")
    shutil.rmtree(root / ".worktrees" / old)
    d.wait_event("revision.applied", revision=new, change=1)
    wait_for(lambda: any(x.startswith("v2") for x in lines(out)), what="v2 to run")
    time.sleep(2.5)  # past a periodic rescan too
    applied = d.events("revision.applied")
    assert all(e["remove"] == 0 for e in applied), applied
    assert not d.events("revision.refused")
    assert lines(out)[-1].startswith("v2")
    assert d.stop() == 0


def test_a_burst_of_50_commits_in_a_second_ends_on_the_last(tmp_path: Path, started: list[Daemon]) -> None:
    repo = tmp_path / "repo"
    init_repo(repo)
    (repo / "schedules").mkdir()
    out = tmp_path / "out"
    (repo / "schedules" / "a.yaml").write_text(job("bursty", out, text="c0"))
    commit_all(repo, "c0")
    d = start(started, repo / "schedules", tmp_path)
    d.wait_event("revision.applied", add=1)
    t = time.monotonic()
    for i in range(1, 51):
        (repo / "schedules" / "a.yaml").write_text(job("bursty", out, text=f"c{i}"))
        last = commit_all(repo, f"c{i}")
    burst = time.monotonic() - t
    d.wait_event("revision.applied", revision=last, timeout=20)
    wait_for(lambda: any(x == f"c50 {last}" for x in lines(out)), what="the last commit's job to run")
    time.sleep(2.5)  # nothing older is applied afterwards
    assert d.events("revision.applied")[-1]["revision"] == last
    assert lines(out)[-1] == f"c50 {last}"
    assert d.stop() == 0
    assert burst < 10  # the burst itself was quick (about a second here)


def test_a_selector_limits_the_process_to_matching_labels(tmp_path: Path, started: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    mine, theirs = tmp_path / "mine.out", tmp_path / "theirs.out"
    (sched / "a.yaml").write_text(job("mine", mine) + "labels: {shard: a}\n")
    (sched / "b.yaml").write_text(job("theirs", theirs) + "labels: {shard: b}\n")
    d = start(started, sched, tmp_path, "--selector", "shard=a")
    d.wait_event("revision.applied", add=1)
    wait_for(lambda: len(lines(mine)) >= 2, what="the selected schedule to run")
    assert lines(theirs) == []
    assert d.stop() == 0


@pytest.mark.parametrize("helper_fate", ["finishes", "dies after its first chunk"])
def test_the_parallel_first_load_gives_the_same_snapshot_as_a_serial_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helper_fate: str) -> None:
    from datetime import UTC, datetime

    from reconciler.service import source

    monkeypatch.setattr(source, "_CHUNK", 3)  # many chunks, built between the parent's own files
    if helper_fate != "finishes":
        sent: list[int] = []
        real_main = source._helper_main

        class Dying:  # the helper's end of the pipe: the process dies after sending one chunk
            def __init__(self, conn: object) -> None:
                self.conn = conn

            def send_bytes(self, data: bytes) -> None:
                if sent:
                    os._exit(9)
                sent.append(1)
                self.conn.send_bytes(data)  # type: ignore[attr-defined]

            def close(self) -> None:
                self.conn.close()  # type: ignore[attr-defined]

        monkeypatch.setattr(source, "_helper_main", lambda conn, *a: real_main(Dying(conn), *a))

    sched = tmp_path / "schedules"
    sched.mkdir()
    for i in range(40):
        (sched / f"j{i:02d}.yaml").write_text(job(f"job-{i:02d}", tmp_path / "out", every=f"{i + 1}m"))
    (sched / "bad.yaml").write_text("name: bad\nschedule: {cron: '0 0 30 2 *'}\nrun: {command: [x]}\n")
    (sched / "dup.yaml").write_text(job("job-00", tmp_path / "out"))
    now = datetime.now(UTC)
    serial = source.DirectorySource(sched)
    monkeypatch.setattr(source, "PARALLEL_MIN_FILES", 10**9)
    expected = serial.full(now)
    assert not serial.last_load_parallel
    monkeypatch.setattr(source, "PARALLEL_MIN_FILES", 10)
    parallel = source.DirectorySource(sched)
    got = parallel.full(now)
    assert parallel.last_load_parallel
    assert got.hashes == expected.hashes
    assert got.revision == expected.revision
    assert [p.format_text() for p in got.problems] == [p.format_text() for p in expected.problems]
    assert {n: s.spec for n, s in got.schedules.items()} == {n: s.spec for n, s in expected.schedules.items()}


def test_the_periodic_rescan_catches_a_change_no_event_reported(tmp_path: Path, started: list[Daemon]) -> None:
    # Writing through a hard link outside the watched directory changes the file without an
    # inotify event there: only the rescan can notice (as after a dropped event queue).
    sched = tmp_path / "schedules"
    sched.mkdir()
    out = tmp_path / "out"
    (sched / "a.yaml").write_text(job("quiet", out, text="before"))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    os.link(sched / "a.yaml", outside / "alias.yaml")
    d = start(started, sched, tmp_path)  # the harness passes --rescan 2s
    wait_for(lambda: lines(out), what="the job to run")
    with (outside / "alias.yaml").open("r+") as fh:  # same inode, same size: rewritten in place
        text = fh.read()
        fh.seek(0)
        fh.write(text.replace("before", "after!"))
        fh.truncate()
    d.wait_event("revision.applied", change=1, timeout=10)
    wait_for(lambda: any(x.startswith("after!") for x in lines(out)), what="the rescanned spec to run")
    assert d.stop() == 0


def test_unchanged_files_are_not_parsed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    from reconciler.core.loader import Loader
    from reconciler.service.source import DirectorySource

    sched = tmp_path / "schedules"
    sched.mkdir()
    for i in range(5):
        (sched / f"j{i}.yaml").write_text(job(f"job-{i}", tmp_path / "out"))
    parsed: list[str] = []
    original = Loader.load_bytes

    def counting(self: Loader, path: str, *args: object, **kwargs: object) -> object:
        parsed.append(Path(path).name)
        return original(self, path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Loader, "load_bytes", counting)
    source = DirectorySource(sched)
    source.full(datetime.now(UTC))
    assert sorted(parsed) == [f"j{i}.yaml" for i in range(5)]
    parsed.clear()
    (sched / "j3.yaml").write_text(job("job-3", tmp_path / "out", text="changed"))
    snap = source.full(datetime.now(UTC))
    assert parsed == ["j3.yaml"]
    snap = source.changed([str(sched / "j3.yaml")], datetime.now(UTC))
    assert parsed == ["j3.yaml"]  # same content again: the cached result
    assert len(snap.schedules) == 5


def test_an_unexpected_error_in_one_reconcile_is_logged_and_the_next_change_still_applies(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import json
    import threading
    from datetime import UTC, datetime

    from reconciler.ledger import open_ledger
    from reconciler.service.daemon import Options, Reconciler
    from reconciler.service.log import make_log

    sched = tmp_path / "schedules"
    sched.mkdir()
    (sched / "a.yaml").write_text(job("a", tmp_path / "out", every="1h"))
    stream = io.StringIO()
    ledger = open_ledger(tmp_path / "ledger.db")
    r = Reconciler(Options(directory=str(sched), listen=None), ledger, make_log("json", stream),
                   lambda: datetime.now(UTC))
    r.start()
    original, calls = Reconciler.reconcile, []

    def flaky(self: Reconciler, snapshot: object) -> bool:
        calls.append(snapshot)
        if len(calls) == 1:
            raise RuntimeError("a bug in one reconcile")
        return original(self, snapshot)  # type: ignore[arg-type]

    monkeypatch.setattr(Reconciler, "reconcile", flaky)
    stop = threading.Event()
    watcher = threading.Thread(target=r.watch, args=(stop,), daemon=True)
    watcher.start()
    try:
        time.sleep(0.3)  # the watcher is set up
        (sched / "b.yaml").write_text(job("b", tmp_path / "out", every="1h"))
        wait_for(lambda: "internal error: RuntimeError: a bug in one reconcile" in stream.getvalue(),
                 what="the error to be logged")
        assert set(r.timer.next_fire_times()) == {"a"}  # what ran is untouched
        (sched / "c.yaml").write_text(job("c", tmp_path / "out", every="1h"))
        wait_for(lambda: set(r.timer.next_fire_times()) == {"a", "b", "c"}, what="b and c to be live")
        errors = [json.loads(line) for line in stream.getvalue().splitlines() if '"revision.error"' in line]
        assert "Traceback" in errors[0]["traceback"]
    finally:
        stop.set()
        watcher.join(10)
        r.stop()
        ledger.close()


def test_a_hostile_file_at_start_up_leaves_the_ledgers_revision_running_and_says_why(
        tmp_path: Path, started: list[Daemon]) -> None:
    import urllib.request

    sched = tmp_path / "schedules"
    sched.mkdir()
    out = tmp_path / "out"
    (sched / "a.yaml").write_text(job("steady", out))
    d = start(started, sched, tmp_path)
    first = d.wait_event("revision.applied", add=1)["revision"]
    wait_for(lambda: lines(out), what="steady to run")
    assert d.stop() == 0

    # Accepted by validate before issue 11, and then every start died with OverflowError.
    (sched / "a.yaml").write_text(job("steady", out, every="145178261h", text="hostile"))
    d2 = start(started, sched, tmp_path)
    problem = d2.wait_event("revision.problem")["problem"]
    assert problem.startswith(f"{sched}/a.yaml:2:"), problem
    assert "at most 366d" in problem
    restored = d2.wait_event("revision.restored", revision=first, schedules=1)
    assert "problem" in restored["cause"]
    address = d2.wait_event("http.listening")["address"]
    with urllib.request.urlopen(f"http://{address}/readyz", timeout=5) as response:
        assert response.status == 200
    n = len(lines(out))
    wait_for(lambda: len(lines(out)) >= n + 2, what="the ledger's revision to run")
    assert not any(x.startswith("hostile") for x in lines(out))
    assert d2.stop() == 0


def _first_revision(tmp_path: Path, sched: Path) -> str:
    """A ledger in tmp_path whose last revision holds schedule `a` (every hour)."""
    from reconciler.ledger import open_ledger

    sched.mkdir()
    (sched / "a.yaml").write_text(job("a", tmp_path / "out", every="1h"))
    ledger = open_ledger(tmp_path / "ledger.db")
    r = _reconciler(sched, ledger)[0]
    r.start()
    r.stop()
    last = ledger.last_revision()
    ledger.close()
    assert last is not None
    return last.revision


def _reconciler(sched: Path, ledger: object) -> tuple[Any, io.StringIO]:
    from datetime import UTC, datetime

    from reconciler.service.daemon import Options, Reconciler
    from reconciler.service.log import make_log

    stream = io.StringIO()
    r = Reconciler(Options(directory=str(sched), listen=None), ledger, make_log("json", stream),  # type: ignore[arg-type]
                   lambda: datetime.now(UTC))
    return r, stream


def _events(stream: io.StringIO, kind: str) -> list[dict[str, Any]]:
    return [e for line in stream.getvalue().splitlines() if (e := json.loads(line)).get("event") == kind]


@pytest.mark.parametrize("failure", ["the directory cannot be read", "the revision cannot be applied"])
def test_any_failure_to_build_the_directory_at_start_up_falls_back_to_the_ledgers_revision(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    from reconciler.ledger import open_ledger
    from reconciler.service import daemon
    from reconciler.service.source import DirectorySource

    sched = tmp_path / "schedules"
    first = _first_revision(tmp_path, sched)
    (sched / "b.yaml").write_text(job("b", tmp_path / "out", every="1h"))  # new in the directory only

    def broken(*args: object, **kwargs: object) -> None:
        raise OverflowError("date value out of range")

    if failure == "the directory cannot be read":
        monkeypatch.setattr(DirectorySource, "full", broken)
    else:  # half-way through applying the directory: the runner already knows its new set
        from reconciler.engine.apply import apply_plan as real_apply

        calls: list[tuple[Any, ...]] = []

        def first_call_breaks(*args: Any) -> None:
            calls.append(args)
            if len(calls) == 1:
                broken()
            real_apply(*args)

        monkeypatch.setattr(daemon, "apply_plan", first_call_breaks)
    ledger = open_ledger(tmp_path / "ledger.db")
    r, stream = _reconciler(sched, ledger)
    try:
        r.start()
        assert r.live.status.ready
        assert r.live.status.applied_revision == first
        assert set(r.timer.next_fire_times()) == {"a"}
        assert set(r.live.schedules) == {"a"}
        (error,) = _events(stream, "revision.error")
        assert error["error"] == "internal error: OverflowError: date value out of range"
        assert "Traceback" in error["traceback"]
        (restored,) = _events(stream, "revision.restored")
        assert restored["revision"] == first
        assert restored["cause"] == "internal error: OverflowError: date value out of range"
    finally:
        r.stop()
        ledger.close()


def test_a_stored_spec_that_todays_rules_refuse_is_named_and_the_rest_of_the_revision_restored(
        tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from reconciler.core.model import spec_hash
    from reconciler.ledger import open_ledger

    good = {"name": "good", "schedule": {"every": "1h"}, "run": {"command": ["/bin/true"]}}
    old = {"name": "old", "schedule": {"every": "145178261h"}, "run": {"command": ["/bin/true"]}}  # valid once
    ledger = open_ledger(tmp_path / "ledger.db")
    specs = {"good": good, "old": old}
    ledger.record_revision("r1", datetime.now(UTC), {"add": 2}, specs,
                           {n: spec_hash(s) for n, s in specs.items()})
    r, stream = _reconciler(tmp_path / "missing", ledger)
    try:
        r.start()
        assert r.live.status.applied_revision == "r1"
        assert set(r.timer.next_fire_times()) == {"good"}
        (restored,) = _events(stream, "revision.restored")
        assert restored["unusable"] == ["old"]
        assert restored["schedules"] == 1
        assert restored["cause"] == f"{tmp_path / 'missing'} does not exist (yet)"
    finally:
        r.stop()
        ledger.close()
