"""The daemon's directory index with defaults files and dependencies (issue 18), in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.core.loader import Loader
from reconciler.service.source import DirectorySource
from tests.conftest import NOW


def job(name: str, when: str = "{every: 1h}", extra: str = "") -> str:
    return f"name: {name}\nschedule: {when}\nrun: {{command: [/bin/true]}}\n{extra}"


def test_a_changed_defaults_file_rereads_only_the_files_below_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        for i in range(3):
            (tmp_path / d / f"{d}{i}.yaml").write_text(job(f"{d}{i}"))
    (tmp_path / "a" / "_defaults.yaml").write_text("labels: {team: one}\n")
    source = DirectorySource(tmp_path)
    snap = source.full(NOW)
    assert snap.problems == ()
    assert snap.schedules["a0"].labels_dict == {"team": "one"}
    read: list[str] = []
    real = Loader.load_bytes

    def counting(self: Loader, path: str, data: bytes, now: Any, **kw: Any) -> Any:
        read.append(Path(path).name)
        return real(self, path, data, now, **kw)

    monkeypatch.setattr(Loader, "load_bytes", counting)
    (tmp_path / "a" / "_defaults.yaml").write_text("labels: {team: two}\n")
    snap = source.changed([str(tmp_path / "a" / "_defaults.yaml")], NOW)
    assert sorted(read) == ["a0.yaml", "a1.yaml", "a2.yaml"]
    assert {n: s.labels_dict for n, s in snap.schedules.items()} == {
        "a0": {"team": "two"}, "a1": {"team": "two"}, "a2": {"team": "two"}, "b0": {}, "b1": {}, "b2": {}}
    read.clear()
    (tmp_path / "a" / "_defaults.yaml").unlink()
    snap = source.changed([str(tmp_path / "a" / "_defaults.yaml")], NOW)
    assert sorted(read) == ["a0.yaml", "a1.yaml", "a2.yaml"]
    assert snap.schedules["a0"].labels_dict == {}
    read.clear()
    (tmp_path / "b" / "b0.yaml").write_text(job("b0", "{every: 2h}"))  # one schedule: one file read
    source.changed([str(tmp_path / "b" / "b0.yaml")], NOW)
    assert read == ["b0.yaml"]


def test_the_index_rejects_a_cycle_and_with_a_selector_a_dependency_across_it(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text(job("x", extra="labels: {shard: one}\n"))
    (tmp_path / "y.yaml").write_text(job("y", "{after: [x]}", "labels: {shard: two}\n"))
    assert DirectorySource(tmp_path).full(NOW).problems == ()
    sharded = DirectorySource(tmp_path, selector={"shard": "two"}).full(NOW)
    assert [p.message for p in sharded.problems] == [
        "depends on 'x', which --selector shard=two puts in another shard: the dependency cannot be honoured"]
    source = DirectorySource(tmp_path)
    source.full(NOW)
    (tmp_path / "x.yaml").write_text(job("x", "{after: [y]}"))
    snap = source.changed([str(tmp_path / "x.yaml")], NOW)
    assert [p.path.rsplit("/", 1)[1] for p in snap.problems] == ["x.yaml", "y.yaml"]
    assert all("dependency cycle" in p.message for p in snap.problems)
    assert snap.graph["y"].upstreams == ("x",)


def test_a_changed_defaults_file_names_only_the_schedules_below_it_in_the_delta(tmp_path: Path) -> None:
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        for i in range(2):
            (tmp_path / d / f"{d}{i}.yaml").write_text(job(f"{d}{i}"))
    (tmp_path / "a" / "_defaults.yaml").write_text("labels: {team: one}\n")
    source = DirectorySource(tmp_path)
    first = source.full(NOW)
    (tmp_path / "a" / "_defaults.yaml").write_text("labels: {team: two}\n")
    snap = source.changed([str(tmp_path / "a" / "_defaults.yaml")], NOW)
    assert snap.delta is not None
    assert snap.delta.base == first.number
    assert snap.delta.names == {"a0", "a1"}
    assert snap.schedules["b0"] is first.schedules["b0"]  # the persistent map shares what did not change
    (tmp_path / "b" / "_defaults.yaml").write_text("labels: {team: b}\n")  # a new defaults file
    snap = source.changed([str(tmp_path / "b" / "_defaults.yaml")], NOW)
    assert snap.delta is not None
    assert snap.delta.names == {"b0", "b1"}
    assert snap.schedules["b1"].labels_dict == {"team": "b"}


def test_a_rescan_rebuilds_the_files_below_a_changed_defaults_file_though_their_stat_is_unchanged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.service import source as module

    monkeypatch.setattr(module, "_SETTLED_NS", -10**12)  # every file counts as written long ago
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "a0.yaml").write_text(job("a0"))
    (tmp_path / "b0.yaml").write_text(job("b0"))
    (tmp_path / "a" / "_defaults.yaml").write_text("labels: {team: one}\n")
    source = DirectorySource(tmp_path)
    first = source.full(NOW)
    (tmp_path / "a" / "_defaults.yaml").write_text("labels: {team: two}\n")  # an event the watch missed
    snap = source.full(NOW)  # the periodic rescan: a0.yaml's stat is unchanged, its defaults are not
    assert snap.schedules["a0"].labels_dict == {"team": "two"}
    assert snap.delta is not None
    assert snap.delta.names == {"a0"}
    assert snap.schedules["b0"] is first.schedules["b0"]
