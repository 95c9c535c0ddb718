"""The sidecar's first minute: a real daemon started before git-sync's first clone, or on an
empty directory."""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

from tests.harness import Daemon, job, lines, wait_for


def ready(base: str) -> int:
    try:
        with urllib.request.urlopen(base + "/readyz", timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return e.code


def publish(root: Path, sha: str, files: dict[str, str]) -> float:
    """What git-sync does: write a worktree, point a new link at it, rename it over the old one.
    Returns the wall time of the swap."""
    tree = root / ".worktrees" / sha / "schedules"
    tree.mkdir(parents=True)
    for name, text in files.items():
        (tree / name).write_text(text)
    os.symlink(f".worktrees/{sha}", root / "tmp-link")
    swapped = time.time()
    os.replace(root / "tmp-link", root / "current")
    return swapped


def applied_after(d: Daemon, revision: str, swapped: float) -> float:
    event = d.wait_event("revision.applied", revision=revision, timeout=10)
    return datetime.fromisoformat(event["ts"].replace("Z", "+00:00")).timestamp() - swapped


def test_a_git_sync_link_created_after_the_start_is_applied_at_once_and_so_is_every_swap(
        tmp_path: Path, started: list[Daemon]) -> None:
    root = tmp_path / "git"
    root.mkdir()
    out = tmp_path / "out"
    # No periodic rescan to rescue a missed event: only the watch can make these live in time.
    d = Daemon(root / "current" / "schedules", tmp_path, "--rescan", "120s")
    started.append(d)
    base = "http://" + d.wait_event("http.listening")["address"]
    waiting = d.wait_event("source.waiting")
    assert str(root / "current" / "schedules") in waiting["directory"]
    assert ready(base) == 503
    time.sleep(1.5)  # no error line every second while it waits
    assert not d.events("revision.error")
    assert len(d.events("source.waiting")) == 1

    first, second, third = "a" * 40, "b" * 40, "c" * 40
    late = [applied_after(d, first, publish(root, first, {"a.yaml": job("synced", out, text="v1")}))]
    assert ready(base) == 200
    wait_for(lambda: lines(out), what="the first revision's job to run")
    for sha, text in ((second, "v2"), (third, "v3")):
        old = os.readlink(root / "current")
        late.append(applied_after(d, sha, publish(root, sha, {"a.yaml": job("synced", out, text=text)})))
        shutil.rmtree(root / old)
    # Live within the change-to-live budget (tens of milliseconds; generous here for a loaded CI).
    assert max(late) < 1.0, late
    wait_for(lambda: any(x.startswith("v3") for x in lines(out)), what="v3 to run")
    assert all(e["remove"] == 0 for e in d.events("revision.applied"))
    assert d.stop() == 0


def test_an_empty_directory_at_start_is_not_ready_and_says_why(tmp_path: Path, started: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    d = Daemon(sched, tmp_path)
    started.append(d)
    base = "http://" + d.wait_event("http.listening")["address"]
    refused = d.wait_event("revision.refused")
    assert "--allow-empty" in refused["reason"]
    assert ready(base) == 503
    assert not d.events("revision.applied")
    (sched / "a.yaml").write_text(job("first", tmp_path / "out"))
    d.wait_event("revision.applied", add=1)
    assert ready(base) == 200
    assert d.stop() == 0


def test_an_empty_directory_with_allow_empty_is_applied_and_ready(tmp_path: Path, started: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    d = Daemon(sched, tmp_path, "--allow-empty")
    started.append(d)
    base = "http://" + d.wait_event("http.listening")["address"]
    d.wait_event("revision.applied")
    assert ready(base) == 200
    with urllib.request.urlopen(base + "/api/v1/status", timeout=5) as r:
        assert json.load(r)["ready"] is True
    assert d.stop() == 0
