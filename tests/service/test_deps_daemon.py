"""Dependencies and directory defaults through real daemons (issue 18)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from reconciler.ledger.postgres import PostgresLedger
from tests.harness import Daemon, wait_for
from tests.service.test_postgres_daemons import UrlDaemon


def rows(ledger: Path, name: str) -> list[tuple[str, str, str]]:
    if not ledger.exists():
        return []
    try:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as db:
            return db.execute("SELECT slot, trigger, status FROM runs WHERE schedule = ? ORDER BY id",
                              (name,)).fetchall()
    except sqlite3.OperationalError:  # not migrated yet
        return []


def step(name: str, when: str, script: str) -> str:
    return f"name: {name}\nschedule: {when}\nrun: {{command: [/bin/sh, -c, '{script}']}}\n"


def test_a_chain_extract_transform_load_runs_in_order_and_a_failed_transform_stops_load(
        tmp_path: Path, started: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    flag, out = tmp_path / "fail", tmp_path / "steps.out"
    (sched / "etl.yaml").write_text("---\n".join([
        step("extract", "{every: 3s}", f"echo extract $RECONCILER_SLOT >> {out}"),
        step("transform", "{after: [extract]}", f"test ! -e {flag} && echo transform $RECONCILER_SLOT >> {out}"),
        step("load", "{after: [transform], on: success}", f"echo load $RECONCILER_SLOT >> {out}"),
    ]))
    d = Daemon(sched, tmp_path)
    started.append(d)
    wait_for(lambda: any(r[2] == "succeeded" for r in rows(d.ledger, "load")), timeout=20, what="a load")
    lines = out.read_text().splitlines()
    slot = lines[-1].split()[1]
    assert [f"extract {slot}", f"transform {slot}", f"load {slot}"] == [x for x in lines if x.endswith(slot)]
    flag.touch()
    wait_for(lambda: any(r[2] == "failed" for r in rows(d.ledger, "transform")), timeout=20,
             what="a failed transform")
    failed = next(r[0] for r in rows(d.ledger, "transform") if r[2] == "failed")
    wait_for(lambda: any(r[0] > failed for r in rows(d.ledger, "extract")), timeout=20, what="the next extract")
    time.sleep(1)  # load would have started within a second of transform's end
    assert [r for r in rows(d.ledger, "load") if r[0] >= failed] == []
    assert {r[1] for r in rows(d.ledger, "transform") + rows(d.ledger, "load")} == {"upstream"}


def test_a_change_to_a_defaults_file_moves_every_schedule_below_it_at_once(
        tmp_path: Path, started: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    team = sched / "team"
    team.mkdir(parents=True)
    (sched / "other.yaml").write_text(step("other", '{cron: "0 3 * * *"}', "true"))
    for i in range(50):
        (team / f"job{i:02d}.yaml").write_text(step(f"job-{i:02d}", '{cron: "0 3 * * *"}', "true"))
    defaults = team / "_defaults.yaml"
    defaults.write_text("schedule: {timezone: UTC}\n")
    d = Daemon(sched, tmp_path)
    started.append(d)
    d.wait_event("revision.applied", add=51)
    defaults.write_text("schedule: {timezone: Asia/Tokyo}\nlabels: {team: data}\n")
    applied = d.wait_event("revision.applied", change=50)
    assert applied.get("unchanged") == 1
    defaults.write_text("schedule: {timezone: Asia/Tokyo}\nlabels: {team: data}\nbogus: 1\n")
    rejected = d.wait_event("revision.rejected")
    assert "_defaults.yaml:3:1: $.bogus: unknown field 'bogus'" in str(rejected)


def test_two_replicas_on_postgresql_run_each_downstream_slot_once(
        tmp_path: Path, postgres_url: str, daemons: list[Daemon]) -> None:
    sched = tmp_path / "schedules"
    sched.mkdir()
    (sched / "etl.yaml").write_text("---\n".join([
        step("extract", "{every: 2s}", "sleep 0.2"),
        step("transform", "{after: [extract]}", "sleep 0.2"),
        step("load", "{after: [transform]}", "true"),
    ]))
    first = UrlDaemon(sched, tmp_path, postgres_url)
    daemons.append(first)
    first.wait_event("reconciler.started")
    second = UrlDaemon(sched, tmp_path, postgres_url)
    daemons.append(second)
    second.wait_event("reconciler.started")

    def runs(name: str) -> list[tuple[str, int, str, str]]:
        led = PostgresLedger(postgres_url)
        try:
            return [(r.slot.isoformat(), r.attempt, r.cause, r.status) for r in led.runs(name, limit=1000)]
        finally:
            led.close()

    wait_for(lambda: len([r for r in runs("load") if r[3] == "succeeded"]) >= 4, timeout=30, what="four loads")
    for d in (first, second):
        d.close()
    extracts = {r[0] for r in runs("extract") if r[3] == "succeeded"}
    for name in ("transform", "load"):
        slots = [r[0] for r in runs(name)]
        assert len(slots) == len(set(slots)), f"{name} ran a slot twice"
        assert set(slots) <= extracts
    owners = {e.get("schedule") for d in (first, second) for e in d.events("run.start")}
    assert {"transform", "load"} <= owners


def test_a_slot_whose_requirement_does_not_hold_is_skipped_after_its_deadline_and_missed_is_notified(
        tmp_path: Path, started: list[Daemon]) -> None:
    from tests.engine.test_notify import Hook, got
    from tests.harness import local_server

    Hook.received.clear()
    with local_server(Hook) as hook:
        sched = tmp_path / "schedules"
        sched.mkdir()
        (sched / "a.yaml").write_text(
            step("extract", "{every: 1h}", "exit 1") + "---\n"
            + step("publish", "{every: 2s}", "true")
            + "policy: {starting_deadline: 1s}\nrequires: [{schedule: extract, status: succeeded}]\n"
            + f"notify: [{{url: {hook}/gate, events: [missed]}}]\n")
        d = Daemon(sched, tmp_path)
        started.append(d)
        wait_for(lambda: got("/gate"), timeout=20, what="a missed notification")
        body = got("/gate")[0]
        assert (body["event"], body["status"]) == ("missed", "skipped")
        assert body["error"] == "dependency: 'extract' has no ended run (requires succeeded)"
        assert all(r[2] == "skipped" for r in rows(d.ledger, "publish"))
