"""The persistent parse cache beside the ledger: a restart with an unchanged directory checks no
file again; a damaged or foreign cache is ignored, never fatal (in-process daemons)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.loader import Loader
from reconciler.ledger import open_ledger
from reconciler.service import parsecache, source
from reconciler.service.daemon import Options, Reconciler
from reconciler.service.log import make_log


def doc(name: str, extra: str = "") -> str:
    return f"name: {name}\nschedule: {{every: 1h{extra}}}\nrun: {{command: [/bin/true]}}\n"


class Checks:
    """Every file the loader checks (parses and validates), by name, also in a forked helper."""

    def __init__(self, log: Path) -> None:
        self.log = log

    def seen(self) -> list[str]:
        return sorted(self.log.read_text().split()) if self.log.exists() else []

    def clear(self) -> None:
        self.log.unlink(missing_ok=True)


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Checks:
    found = Checks(tmp_path / "checked.txt")
    real = Loader.check_bytes

    def spy(self: Loader, path: str, data: bytes, now: datetime, **kw: Any) -> Any:
        with found.log.open("a") as fh:  # a file: the helper process appends to it too
            fh.write(path.rsplit("/", 1)[-1] + "\n")
        return real(self, path, data, now, **kw)

    monkeypatch.setattr(Loader, "check_bytes", spy)
    return found


def start_stop(tmp_path: Path, out: io.StringIO | None = None, *, strict_cron: bool = False) -> Reconciler:
    ledger = open_ledger(tmp_path / "ledger.db")
    daemon = Reconciler(Options(directory=str(tmp_path / "s"), listen=None, strict_cron=strict_cron), ledger,
                        make_log("json", out or io.StringIO()), lambda: datetime.now(UTC))
    daemon.start()
    daemon.stop()
    ledger.close()
    return daemon


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    d = tmp_path / "s"
    d.mkdir()
    for i in range(6):
        (d / f"f{i}.yaml").write_text(doc(f"s{i}"))
    return d


@pytest.mark.parametrize("parallel", [False, True])
def test_a_restart_with_an_unchanged_directory_checks_no_file_again(
        tmp_path: Path, tree: Path, checks: Checks, monkeypatch: pytest.MonkeyPatch, parallel: bool) -> None:
    monkeypatch.setattr(source, "PARALLEL_MIN_FILES", 2 if parallel else 10**9)
    first = start_stop(tmp_path)
    assert checks.seen() == [f"f{i}.yaml" for i in range(6)]
    assert first.startup["parallel_load"] is parallel
    assert (tmp_path / "ledger.db.parse-cache").is_file()
    checks.clear()
    (tree / "f2.yaml").write_text(doc("s2", ", jitter: 1m"))
    second = start_stop(tmp_path)
    assert checks.seen() == ["f2.yaml"]  # only the changed file
    assert set(second.live.schedules) == set(first.live.schedules)
    assert second.live.schedules["s2"].spec["schedule"]["jitter"] == "1m"
    assert second.live.hashes["s1"] == first.live.hashes["s1"]


def test_a_file_with_problems_is_always_checked_again(tmp_path: Path, tree: Path, checks: Checks) -> None:
    (tree / "warn.yaml").write_text("")  # a warning: holds no schedule
    start_stop(tmp_path)
    checks.clear()
    start_stop(tmp_path)
    assert checks.seen() == ["warn.yaml"]


def test_a_one_time_at_is_used_from_the_cache_only_until_it_passes(tmp_path: Path) -> None:
    at = "name: once\nschedule: {at: '2030-01-01T00:00:00Z'}\nrun: {command: [/bin/true]}\n"
    checked = Loader().check_bytes("once.yaml", at.encode(), datetime(2029, 1, 1, tzinfo=UTC))
    cache = parsecache.ParseCache(tmp_path / "c")
    cache.put("once.yaml", "blob", checked)
    assert cache.get("once.yaml", "blob", datetime(2029, 12, 31, tzinfo=UTC)) == checked
    assert cache.get("once.yaml", "blob", datetime(2030, 1, 1, tzinfo=UTC)) is None  # now it warns
    naive = at.replace("00:00:00Z", "00:00:00")
    before = datetime(2029, 1, 1, tzinfo=UTC)
    cache.put("naive.yaml", "blob", Loader().check_bytes("naive.yaml", naive.encode(), before))
    assert cache.get("naive.yaml", "blob", datetime(2029, 1, 2, tzinfo=UTC)) is None  # its instant is the zone's


@pytest.mark.parametrize("damage", [b"garbage", b"reconciler-parse-cache\n\x00\x01", b""])
def test_a_damaged_parse_cache_is_ignored_and_written_again(tmp_path: Path, tree: Path, checks: Checks,
                                                            damage: bytes) -> None:
    start_stop(tmp_path)
    cache = tmp_path / "ledger.db.parse-cache"
    cache.write_bytes(damage)
    checks.clear()
    out = io.StringIO()
    daemon = start_stop(tmp_path, out)
    assert len(daemon.live.schedules) == 6
    assert len(checks.seen()) == 6
    assert "parse_cache.ignored" in out.getvalue()
    checks.clear()
    start_stop(tmp_path)
    assert checks.seen() == []  # written again, whole


def test_a_cache_written_by_another_version_of_the_checks_is_not_used(
        tmp_path: Path, tree: Path, checks: Checks, monkeypatch: pytest.MonkeyPatch) -> None:
    start_stop(tmp_path)
    monkeypatch.setattr(parsecache, "code_fingerprint", lambda: "another reconciler")
    checks.clear()
    start_stop(tmp_path)
    assert len(checks.seen()) == 6


def test_a_cache_written_without_strict_cron_is_not_used_with_it(tmp_path: Path, tree: Path,
                                                                 checks: Checks) -> None:
    (tree / "lw.yaml").write_text("name: lw\nschedule: {cron: '0 9 LW * *'}\nrun: {command: [/bin/true]}\n")
    assert "lw" in start_stop(tmp_path).live.schedules
    checks.clear()
    strict = start_stop(tmp_path, strict_cron=True)
    assert len(checks.seen()) == 7  # checked again: strict cron refuses what the cache says is valid
    assert strict.live.status.problems


def test_the_code_fingerprint_changes_with_the_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import reconciler

    fake = tmp_path / "reconciler"
    (fake / "data").mkdir(parents=True)
    (fake / "data" / "schedule.schema.json").write_text("{}")
    monkeypatch.setattr(reconciler, "__file__", str(fake / "__init__.py"))
    before = parsecache.code_fingerprint()
    (fake / "data" / "schedule.schema.json").write_text('{"type": "object"}')
    assert parsecache.code_fingerprint() != before


def test_a_file_built_from_its_cache_entry_equals_the_file_checked_afresh(tmp_path: Path) -> None:
    from reconciler.core.loader import build_file
    from tests.conftest import ROOT

    now = datetime.now(UTC)
    loader = Loader()
    cache = parsecache.ParseCache(tmp_path / "c")
    files = sorted((ROOT / "examples").glob("*.yaml"))
    assert files
    compared = 0
    for f in files:
        fresh = build_file(loader.check_bytes(str(f), f.read_bytes(), now))
        kept = cache.entry(str(f), "blob", fresh)
        if kept is None:
            assert fresh.problems or fresh.unbuilt or any("at" in s.spec["schedule"] for s in fresh.schedules)
            continue
        cache.entries[kept[0]] = kept[1]
        checked = cache.get(str(f), "blob", now)
        assert checked is not None
        assert build_file(checked) == fresh
        compared += 1
    assert compared >= len(files) // 2


@pytest.mark.parametrize("parallel", [False, True])
def test_a_cached_check_is_not_reused_when_the_defaults_above_its_file_changed(
        tmp_path: Path, tree: Path, checks: Checks, monkeypatch: pytest.MonkeyPatch, parallel: bool) -> None:
    # A cached check holds the spec merged with its directory defaults, so the defaults' content
    # is part of its key: files below a changed _defaults.yaml are checked again, no others.
    monkeypatch.setattr(source, "PARALLEL_MIN_FILES", 2 if parallel else 10**9)
    (tree / "team").mkdir()
    for i in range(3):
        (tree / "team" / f"t{i}.yaml").write_text(doc(f"t{i}"))
    (tree / "team" / "_defaults.yaml").write_text("labels: {team: one}\n")
    first = start_stop(tmp_path)
    assert first.startup["parallel_load"] is parallel
    assert first.live.schedules["t0"].labels_dict == {"team": "one"}
    checks.clear()
    again = start_stop(tmp_path)  # unchanged defaults: the files below them come from the cache too
    assert checks.seen() == []
    assert again.live.schedules["t1"].labels_dict == {"team": "one"}
    (tree / "team" / "_defaults.yaml").write_text("labels: {team: two}\n")
    second = start_stop(tmp_path)
    assert checks.seen() == ["t0.yaml", "t1.yaml", "t2.yaml"]
    assert {n: s.labels_dict for n, s in second.live.schedules.items() if n.startswith("t")} == {
        "t0": {"team": "two"}, "t1": {"team": "two"}, "t2": {"team": "two"}}
    assert second.live.schedules["s0"].labels_dict == {}
    checks.clear()
    (tree / "team" / "_defaults.yaml").unlink()
    third = start_stop(tmp_path)
    assert checks.seen() == ["t0.yaml", "t1.yaml", "t2.yaml"]
    assert third.live.schedules["t2"].labels_dict == {}


def test_a_saved_cache_keeps_each_spec_as_the_records_packed_bytes(tmp_path: Path, tree: Path) -> None:
    import marshal

    start_stop(tmp_path)
    data = (tmp_path / "ledger.db.parse-cache").read_bytes()
    magic = b"reconciler-parse-cache 2\n"
    assert data.startswith(magic)
    _, entries = marshal.loads(data[len(magic):])
    kept = sorted(v for _, _, valid, _ in entries.values() for v in valid)
    assert {type(packed) for packed, _, _, _ in kept} == {bytes}
    assert [marshal.loads(packed) for packed, _, _, _ in kept] == [
        {"name": f"s{i}", "schedule": {"every": "1h"}, "run": {"command": ["/bin/true"]}} for i in range(6)]


def test_a_cache_in_the_first_format_is_ignored_and_its_files_checked_again(
        tmp_path: Path, tree: Path, checks: Checks) -> None:
    import marshal

    start_stop(tmp_path)
    path = tmp_path / "ledger.db.parse-cache"
    fingerprint, entries = marshal.loads(path.read_bytes()[len(b"reconciler-parse-cache 2\n"):])
    old = {k: (name, (), tuple((marshal.loads(p), line, index, h) for p, line, index, h in valid), until)
           for k, (name, _, valid, until) in entries.items()}
    path.write_bytes(b"reconciler-parse-cache\n" + marshal.dumps((fingerprint, old)))
    checks.clear()
    out = io.StringIO()
    start_stop(tmp_path, out)
    assert checks.seen() == [f"f{i}.yaml" for i in range(6)]
    assert "parse_cache.ignored" in out.getvalue()
