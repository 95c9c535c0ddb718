"""The directory source's incremental index: duplicates, removals and hashes stay exact file by file."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.core.loader import Loader
from reconciler.service.source import DirectorySource

NOW = datetime.now(UTC)


def doc(name: str, every: str = "1h") -> str:
    return f"name: {name}\nschedule: {{every: {every}}}\nrun: {{command: [/bin/true]}}\n"


def test_a_name_used_twice_in_one_file_is_reported_at_both_places_and_neither_is_applied(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text(doc("a") + "---\n" + doc("a", "2h"))
    (tmp_path / "y.yaml").write_text(doc("b"))
    snap = DirectorySource(tmp_path).full(NOW)
    assert set(snap.schedules) == {"b"}
    assert [(p.line, p.message) for p in snap.problems] == [
        (1, f"name 'a' is used more than once (also at {tmp_path}/x.yaml:5)"),
        (5, f"name 'a' is used more than once (also at {tmp_path}/x.yaml:1)"),
    ]


def test_a_duplicate_across_files_resolves_when_one_file_goes_and_returns_when_it_comes_back(
        tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text(doc("a"))
    (tmp_path / "two.yaml").write_text(doc("a", "2h"))
    source = DirectorySource(tmp_path)
    snap = source.full(NOW)
    assert dict(snap.schedules) == {}
    assert len(snap.problems) == 2
    (tmp_path / "one.yaml").unlink()
    snap = source.changed([str(tmp_path / "one.yaml")], NOW)
    assert snap.problems == ()
    assert snap.schedules["a"].spec["schedule"] == {"every": "2h"}
    assert snap.hashes["a"] == snap.schedules["a"].spec_hash
    (tmp_path / "one.yaml").write_text(doc("a"))
    snap = source.changed([str(tmp_path / "one.yaml")], NOW)
    assert (dict(snap.schedules), dict(snap.hashes)) == ({}, {})
    assert len(snap.problems) == 2


def test_fixing_a_file_that_repeated_a_name_applies_it_and_the_index_matches_a_fresh_read(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text(doc("a") + "---\n" + doc("a", "2h"))
    source = DirectorySource(tmp_path)
    source.full(NOW)
    (tmp_path / "x.yaml").write_text(doc("a") + "---\n" + doc("c", "2h"))
    snap = source.changed([str(tmp_path / "x.yaml")], NOW)
    fresh = DirectorySource(tmp_path).full(NOW)
    assert set(snap.schedules) == {"a", "c"}
    assert (snap.hashes, snap.problems, snap.revision) == (fresh.hashes, fresh.problems, fresh.revision)


_NAMES = ["a", "b", "c"]
_BODIES = [doc("a"), doc("b"), doc("a", "2h"), doc("a") + "---\n" + doc("b"), doc("c") + "---\n" + doc("c"),
           "name: [broken\n", "name: x\nschedule: {every: 0s}\nrun: {command: [/bin/true]}\n", ""]
_FILES = ["one.yaml", "two.yml", "sub/three.yaml", "sub/deep/four.yaml"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.tuples(st.sampled_from(["write", "delete", "rename"]), st.sampled_from(_FILES),
                              st.sampled_from(_FILES), st.sampled_from(range(len(_BODIES)))), max_size=12))
def test_the_index_after_any_sequence_of_file_events_equals_a_fresh_read(
        tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, str, str, int]]) -> None:
    root = tmp_path_factory.mktemp("index")
    (root / "one.yaml").write_text(doc("a"))
    loader = Loader()  # compiled once per example, not once per fresh read
    source = DirectorySource(root, loader)
    source.full(NOW)
    for op, path, other, body in ops:
        touched = [root / path]
        if op == "write":
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(_BODIES[body])
        elif op == "delete":
            (root / path).unlink(missing_ok=True)
        elif (root / path).exists() and path != other:
            (root / other).parent.mkdir(parents=True, exist_ok=True)
            (root / path).rename(root / other)
            touched.append(root / other)
        got = source.changed([str(p) for p in touched], NOW)
        fresh = DirectorySource(root, loader).full(NOW)
        assert got.hashes == fresh.hashes
        assert got.revision == fresh.revision
        assert [p.format_text() for p in got.problems] == [p.format_text() for p in fresh.problems]
        assert {n: s.source for n, s in got.schedules.items()} == {n: s.source for n, s in fresh.schedules.items()}


def test_a_fifo_named_like_a_schedule_never_blocks_a_read_and_is_skipped_with_a_warning_naming_it(
        tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(doc("a"))
    source = DirectorySource(tmp_path)
    source.full(NOW)
    os.mkfifo(tmp_path / "pipe.yaml")  # nobody ever writes to it: opening it to read would wait forever
    done: list[Any] = []
    worker = threading.Thread(target=lambda: done.append(source.changed([str(tmp_path / "pipe.yaml")], NOW)),
                              daemon=True)
    worker.start()
    worker.join(10)
    assert done, "changed() blocked on a FIFO"
    skipped = [(f"{tmp_path}/pipe.yaml", 1, 1, "warning", "a FIFO (named pipe), not a regular file: skipped")]
    assert [(p.path, p.line, p.column, p.severity, p.message) for p in done[0].problems] == skipped
    snap = source.full(NOW)
    assert set(snap.schedules) == {"a"}
    assert [(p.path, p.line, p.column, p.severity, p.message) for p in snap.problems] == skipped
    (tmp_path / "pipe.yaml").unlink()
    assert source.changed([str(tmp_path / "pipe.yaml")], NOW).problems == ()


def test_a_huge_file_is_refused_without_being_read_into_memory(reconciler: Any, tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as fh:
        fh.truncate(4 * 1024**3)  # sparse: 4 GiB of zeros that take no disk
    limit = "import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_AS, (1024**3, 1024**3)); "
    r = subprocess.run([sys.executable, "-c", limit + "sys.argv = ['reconciler', 'validate', sys.argv[1]]; "
                        "runpy.run_module('reconciler', run_name='__main__')", str(huge)],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 1, r.stderr
    assert "huge.yaml:1:1: $: file is larger than 1048576 bytes (1 MiB)" in r.stdout


@pytest.mark.parametrize("size", [1024 * 1024 - 10, 1024 * 1024 + 1, 4 * 1024**3])
def test_the_daemons_source_reads_a_file_up_to_the_limit_and_refuses_one_past_it(tmp_path: Path, size: int) -> None:
    body = doc("big").encode()
    with (tmp_path / "big.yaml").open("wb") as fh:
        fh.write(body + b"#" * max(0, min(size, 2 * 1024**2) - len(body) - 1) + b"\n")
        fh.truncate(size)  # sparse past 2 MiB: a 4 GiB file takes no disk
    snap = DirectorySource(tmp_path).full(NOW)
    refused = [p.format_text() for p in snap.problems if "larger than" in p.format_text()]
    if size <= 1024 * 1024:
        assert (list(snap.schedules), refused) == (["big"], [])
    else:
        assert not snap.schedules
        assert len(refused) == 1
        assert "big.yaml:1:1" in refused[0]


def test_a_symlink_back_up_the_tree_is_read_once_not_walked_until_the_path_is_too_long(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.yaml").write_text(doc("a"))
    (tmp_path / "sub" / "up").symlink_to("..")
    (tmp_path / "again").symlink_to(".")
    snap = DirectorySource(tmp_path).full(NOW)
    assert {n: s.source.path for n, s in snap.schedules.items()} == {"a": f"{tmp_path}/sub/a.yaml"}
    assert snap.problems == ()


def test_a_configmap_volume_is_read_through_its_links_and_its_hidden_data_directory_is_not(tmp_path: Path) -> None:
    # How Kubernetes lays out a ConfigMap volume: the visible files link into a hidden directory.
    stamped = tmp_path / "..2026_11_22_10_00_00.1234"
    stamped.mkdir()
    (stamped / "backup.yaml").write_text(doc("backup"))
    (tmp_path / "..data").symlink_to(stamped.name)
    (tmp_path / "backup.yaml").symlink_to("..data/backup.yaml")
    snap = DirectorySource(tmp_path).full(NOW)
    assert {n: s.source.path for n, s in snap.schedules.items()} == {"backup": f"{tmp_path}/backup.yaml"}


def test_a_committed_file_whose_name_is_not_utf8_gives_the_commit_as_revision(tmp_path: Path) -> None:
    from tests.harness import commit_all, init_repo

    init_repo(tmp_path)
    with open(os.fsencode(tmp_path) + b"/caf\xe9.yaml", "w") as fh:
        fh.write(doc("latin1"))
    commit = commit_all(tmp_path, "a name that is not UTF-8")
    snap = DirectorySource(tmp_path).full(NOW)
    assert snap.revision == commit  # not "+dirty": git's name and the directory's are the same bytes
    assert snap.schedules["latin1"].source.path == f"{tmp_path}/caf\\xe9.yaml"


def secret_outside(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "token"
    secret.parent.mkdir()
    secret.write_text("s3cr3t-t0ken-value-that-must-never-be-echoed\n")
    return secret


def test_a_link_out_of_the_tree_is_refused_in_a_full_read_and_in_an_incremental_one(tmp_path: Path) -> None:
    secret = secret_outside(tmp_path)
    tree = tmp_path / "schedules"
    tree.mkdir()
    (tree / "a.yaml").write_text(doc("a"))
    (tree / "out.yaml").symlink_to(secret)
    source = DirectorySource(tree)
    snap = source.full(NOW)
    refused = [(f"{tree}/out.yaml", "error", "a link to a path outside the directory being read: refused, it is "
                                              "not read")]
    assert [(p.path, p.severity, p.message) for p in snap.problems] == refused
    (tree / "out.yaml").unlink()
    assert source.changed([str(tree / "out.yaml")], NOW).problems == ()
    (tree / "later.yml").symlink_to(secret)
    snap = source.changed([str(tree / "later.yml")], NOW)
    assert [(p.path, p.severity) for p in snap.problems] == [(f"{tree}/later.yml", "error")]
    assert "s3cr3t" not in repr(snap)


def test_a_directory_link_out_of_the_tree_is_refused_and_not_entered(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "x.yaml").write_text(doc("x"))
    tree = tmp_path / "schedules"
    tree.mkdir()
    (tree / "a.yaml").write_text(doc("a"))
    (tree / "team").symlink_to(outside)
    snap = DirectorySource(tree).full(NOW)
    assert set(snap.schedules) == {"a"}
    assert [(p.path, p.severity) for p in snap.problems] == [(f"{tree}/team", "error")]


def test_under_git_sync_the_worktree_is_the_tree_and_links_within_it_are_followed(tmp_path: Path) -> None:
    root = tmp_path / "git"
    worktree = root / ".worktrees" / ("c" * 40)
    (worktree / ".lib").mkdir(parents=True)
    (worktree / ".lib" / "shared.yaml").write_text(doc("shared"))
    (worktree / "shared.yaml").symlink_to(".lib/shared.yaml")
    (root / "stray.yaml").write_text(doc("stray"))
    (worktree / "stray.yaml").symlink_to("../../stray.yaml")  # inside git-sync's root, outside the worktree
    (root / "current").symlink_to(worktree)
    snap = DirectorySource(root / "current").full(NOW)
    assert {n: s.source.path for n, s in snap.schedules.items()} == {"shared": f"{root}/current/shared.yaml"}
    assert [(p.path, p.severity) for p in snap.problems] == [(f"{root}/current/stray.yaml", "error")]


def test_dangling_and_looping_links_named_like_schedules_are_skipped_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(doc("a"))
    (tmp_path / "gone.yaml").symlink_to("nothing-here.yaml")
    (tmp_path / "loop.yaml").symlink_to("loop.yaml")
    snap = DirectorySource(tmp_path).full(NOW)
    assert set(snap.schedules) == {"a"}
    assert [(p.path, p.severity, p.message) for p in snap.problems] == [
        (f"{tmp_path}/gone.yaml", "warning", "a link to nothing: skipped"),
        (f"{tmp_path}/loop.yaml", "warning", "cannot be followed (Too many levels of symbolic links): skipped"),
    ]


def test_a_parallel_first_load_checks_every_file_with_the_loaders_own_per_file_check(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One path from file to schedule: the helper process calls what `load_bytes` calls, so
    whatever that check says reaches the snapshot from either process."""
    from reconciler.core.loader import Checked
    from reconciler.core.problems import Problem
    from reconciler.service import source

    for i in range(30):
        (tmp_path / f"j{i:02d}.yaml").write_text(doc(f"job-{i:02d}"))
    real = Loader.check_bytes

    def check_bytes(self: Loader, path: str, data: bytes, now: datetime, *, hashed: bool = True,
                    defaults: Any = ()) -> Checked:
        c = real(self, path, data, now, hashed=hashed, defaults=defaults)
        mark = Problem(c.path, 1, 1, (), f"checked in process {os.getpid()}", "warning")
        return Checked(c.path, (*c.problems, mark), c.valid)

    monkeypatch.setattr(Loader, "check_bytes", check_bytes)
    monkeypatch.setattr(source, "PARALLEL_MIN_FILES", 10)
    parallel = DirectorySource(tmp_path)
    snap = parallel.full(NOW)
    assert parallel.last_load_parallel
    marks = [p.message for p in snap.problems]
    assert len(marks) == 30
    assert len(set(marks)) == 2  # this process's share and the helper's
    assert len(snap.schedules) == 30
