"""Two containers of the image on one PostgreSQL ledger, as the Kubernetes overlay runs three
(examples/kubernetes/postgresql/): the URL without its password in RECONCILER_LEDGER, the password
in a mounted file named by RECONCILER_LEDGER_PASSWORD_FILE. The server is Debian's, on the host
(tests/pgserver.py), listening on 127.0.0.1 only; the containers share the host's network to reach
it. Every slot runs once between the two; after a SIGKILL of one, the other runs every slot alone.
Slow: runs only with RECONCILER_CONTAINER_TESTS=1, as .ci/run sets it."""

from __future__ import annotations

import itertools
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest

from tests.container.engine import HARDENED, Made, get, podman, unique_name
from tests.harness import wait_for
from tests.pgserver import PgServer

if os.environ.get("RECONCILER_CONTAINER_TESTS") != "1":
    pytest.skip("builds and runs the image with podman: set RECONCILER_CONTAINER_TESTS=1 (.ci/run does)",
                allow_module_level=True)

pytestmark = [pytest.mark.container, pytest.mark.timeout(600)]

PASSWORD_FILE = "/etc/reconciler-ledger/password"  # where the overlay mounts its Secret's key
TOGETHER = 6  # slots run while both containers are up
ALONE = 5  # slots the survivor must run after the kill
# `tick` records its slot and who ran it on the shared volume. `concurrency: allow`, so that a tick
# the killed container left open does not hold the schedule (nothing marks it abandoned without
# leases). `hold` never ends: whoever claims it first holds it (forbid), and is the one killed.
TICK = ("name: tick\nschedule: {every: 1s}\npolicy: {concurrency: allow}\n"
        "run: {command: [/bin/sh, -c, 'echo \"$RECONCILER_SLOT $(cat /proc/sys/kernel/hostname)\" >> /data/slots']}\n")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOLD = "name: hold\nschedule: {every: 2s}\nrun: {command: [/bin/sleep, '600']}\n"


@dataclass(frozen=True)
class Row:
    id: int
    schedule: str
    slot: datetime
    status: str
    host: str  # the hostname in the claim's owner (host:pid@ticks)
    started_at: datetime | None


@dataclass
class Replica:
    host: str  # its --hostname: the host part of the owner of its claims
    id: str = ""
    port: int = 0
    exit_code: int = -1
    logs: str = ""


@dataclass
class Pair:
    """Two containers on one database, from start to the survivor's stop."""

    replicas: dict[str, Replica]
    victim: str = ""
    survivor: str = ""
    together_from: datetime = EPOCH
    killed_at: datetime = EPOCH
    stop_seconds: float = 0.0
    rows: list[Row] = field(default_factory=list)
    records: list[tuple[datetime, str]] = field(default_factory=list)  # the jobs' own: slot, hostname


def ledger_rows(server: PgServer, database: str) -> list[Row]:
    try:
        with server.admin(database) as db:
            found: list[tuple[int, str, datetime, str, str | None, datetime | None]] = db.execute(
                "SELECT id, schedule, slot, status, owner, started_at FROM runs ORDER BY id").fetchall()  # type: ignore[assignment]
    except Exception:  # the first container has not created the schema yet
        return []
    return [Row(i, s, slot, st, (owner or "").partition(":")[0], started)
            for i, s, slot, st, owner, started in found]


def job_records(slots: Path) -> list[tuple[datetime, str]]:
    if not slots.exists():
        return []
    found = []
    for line in slots.read_text().splitlines():
        slot, _, host = line.partition(" ")
        found.append((datetime.fromisoformat(slot), host))
    return found


def listening_port(cid: str) -> int:
    """The port of `--listen 127.0.0.1:0`, from the container's log; 0 until it is listening."""
    logs = podman("logs", cid, check=False)
    for line in (logs.stdout + logs.stderr).splitlines():
        if line.startswith("{") and (event := json.loads(line)).get("event") == "http.listening":
            return int(str(event["address"]).rpartition(":")[2])
    return 0


def ready(port: int) -> bool:
    return get(port, "/readyz")[0] == 200


def ticks(rows: list[Row], after: datetime, **match: str) -> list[Row]:
    return [r for r in rows if r.schedule == "tick" and r.slot > after
            and all(getattr(r, k) == v for k, v in match.items())]


@pytest.fixture(scope="module")
def pair(image: str, made: Made, pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory,
         timings: dict[str, str]) -> Iterator[Pair]:
    started = time.monotonic()
    tmp = tmp_path_factory.mktemp("postgresql")
    schedules = tmp / "schedules"
    schedules.mkdir(mode=0o755)  # uid 10001 reads it through the bind mount
    (schedules / "tick.yaml").write_text(TICK)
    (schedules / "hold.yaml").write_text(HOLD)
    for f in schedules.iterdir():
        f.chmod(0o644)
    password = tmp / "password"  # as a Secret's key is mounted: the password alone, readable by 10001
    password.write_text(pg_server.password + "\n")
    os.chown(password, 10001, 10001)
    password.chmod(0o400)
    volume, data = made.volume()
    database = pg_server.create_database()
    url = pg_server.url(database, password="")  # no password in it: the file's is used
    pair = Pair({letter: Replica(f"{unique_name()}-{letter}") for letter in "ab"})
    try:
        for replica in pair.replicas.values():
            # The host's network: the server listens on its loopback only. Then each container needs
            # a hostname of its own (the host's is shared), as a pod has: a claim's owner is
            # host:pid, and in two containers the reconciler has the same pid.
            replica.id = made.run(
                "--name", replica.host, "--hostname", replica.host, "--network", "host",
                "--no-healthcheck",  # it asks port 8080; here each container listens on a port of its own
                *HARDENED, "--env", f"RECONCILER_LEDGER={url}",
                "--env", f"RECONCILER_LEDGER_PASSWORD_FILE={PASSWORD_FILE}",
                "--volume", f"{password}:{PASSWORD_FILE}:ro", "--volume", f"{schedules}:/schedules:ro",
                "--volume", f"{volume}:/data", image,
                "run", "--dir", "/schedules", "--listen", "127.0.0.1:0", "--log-format", "json", "--grace", "2s")
        for replica in pair.replicas.values():
            replica.port = wait_for(partial(listening_port, replica.id), timeout=60, what=f"{replica.host} listening")
            wait_for(partial(ready, replica.port), timeout=60, what=f"{replica.host} ready")
        pair.together_from = datetime.now(UTC)
        timings["postgresql: two containers started until both ready"] = f"{time.monotonic() - started:.1f} s"

        def held() -> str:
            rows = ledger_rows(pg_server, database)
            open_holds = [r.host for r in rows if r.schedule == "hold" and r.status == "running"]
            enough = len(ticks(rows, pair.together_from, status="succeeded")) >= TOGETHER
            return open_holds[0] if enough and open_holds else ""

        holder = wait_for(held, timeout=30, what=f"{TOGETHER} ticks with both up, and hold claimed")
        pair.victim = next(k for k, r in pair.replicas.items() if r.host == holder)
        pair.survivor = next(k for k in pair.replicas if k != pair.victim)
        podman("kill", "--signal", "KILL", pair.replicas[pair.victim].id)
        pair.killed_at = datetime.now(UTC)
        survivor = pair.replicas[pair.survivor]
        wait_for(lambda: len(ticks(ledger_rows(pg_server, database), pair.killed_at, status="succeeded")) >= ALONE,
                 timeout=30, what=f"{ALONE} ticks after the kill")
        stopping = time.monotonic()
        podman("stop", "--time", "30", survivor.id, timeout=60)
        pair.stop_seconds = time.monotonic() - stopping
        for replica in pair.replicas.values():
            replica.exit_code = int(podman("inspect", "--format", "{{.State.ExitCode}}", replica.id).stdout)
            logs = podman("logs", replica.id, check=False)
            replica.logs = logs.stdout + logs.stderr
        pair.rows = ledger_rows(pg_server, database)
        pair.records = job_records(data / "slots")
        timings["postgresql: two containers, a kill, the survivor alone"] = f"{time.monotonic() - started:.1f} s"
        yield pair
    finally:
        pg_server.drop_database(database)


def test_two_containers_on_one_postgresql_run_every_slot_once_between_them(pair: Pair) -> None:
    tick = sorted((r for r in pair.rows if r.schedule == "tick"), key=lambda r: r.slot)
    assert len(ticks(pair.rows, pair.together_from)) >= TOGETHER
    assert all(b.slot - a.slot == timedelta(seconds=1) for a, b in itertools.pairwise(tick)), \
        "a slot was skipped or claimed twice"
    assert {r.host for r in tick} <= {r.host for r in pair.replicas.values()}
    # What did not end: only a tick the killed container had claimed (left `running`; leases, once
    # there, make it `abandoned`, though not within this test's few seconds at their defaults).
    victim = pair.replicas[pair.victim].host
    unfinished = [r for r in tick if r.status != "succeeded"]
    assert all(r.status in {"running", "abandoned"} and r.host == victim for r in unfinished), unfinished
    # The jobs' own records: one line per slot, written by the container whose claim is in the ledger.
    per_slot = Counter(slot for slot, _ in pair.records)
    assert max(per_slot.values()) == 1, [s for s, n in per_slot.items() if n > 1]
    ran = dict(pair.records)
    assert {r.slot: r.host for r in tick if r.status == "succeeded"}.items() <= ran.items()
    assert set(ran) <= {r.slot for r in tick}


def test_a_forbid_schedule_runs_once_at_a_time_across_both_containers(pair: Pair) -> None:
    before = [r for r in pair.rows if r.schedule == "hold" and r.slot < pair.killed_at]
    claimed = [r for r in before if r.status != "skipped"]
    assert [r.host for r in claimed] == [pair.replicas[pair.victim].host]  # the one killed, by the test's choice
    assert len(before) > len(claimed), "no slot of hold found it held"


def test_after_a_sigkill_of_one_container_the_other_runs_every_slot_alone_and_stops_cleanly(pair: Pair) -> None:
    victim, survivor = pair.replicas[pair.victim], pair.replicas[pair.survivor]
    assert victim.exit_code == 137  # 128 + SIGKILL: no clean stop recorded anything for it
    after = ticks(pair.rows, pair.killed_at)
    assert len(after) >= ALONE
    assert [(r.host, r.status) for r in after] == [(survivor.host, "succeeded")] * len(after)
    assert all(r.started_at is not None and r.started_at <= pair.killed_at for r in pair.rows if r.host == victim.host)
    assert survivor.exit_code == 0, survivor.logs[-3000:]
    assert pair.stop_seconds < 30 - 1, "SIGKILL'd at the end of podman's timeout, not stopped by SIGTERM"
    assert not [r for r in pair.rows if r.host == survivor.host and r.status == "running"]
    events = [json.loads(line) for line in survivor.logs.splitlines() if line.startswith("{")]
    assert not [e for e in events if e["event"] in {"ledger.write_failed", "run.error"}]
