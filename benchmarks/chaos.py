"""Chaos: three real `reconciler run` replicas on one directory and one real PostgreSQL, killed
with SIGKILL and restarted at random for a bounded time, and one `pg_ctl restart -m immediate` in
the middle. Every schedule fires `every: 1s`; each job appends its slot to a file. At the end the
file and the ledger are compared with the slots that were due.

    .venv/bin/python benchmarks/chaos.py --minutes 3 [--seed N] [--replicas 3] [--schedules 3]

Prints slots expected, slots run, duplicates, slots lost while at least one replica was up (those
skipped or missed by policy, or not run for a reason outside the reconciler, are listed apart with
their reason), and abandoned runs, each with whether a SIGKILL explains it. Exit 0 when there is no
duplicate, no lost slot and every abandoned run is explained; 1 otherwise.
tests/service/test_chaos.py runs a short version in the suite.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.pgserver starts the server

from reconciler.ledger.base import RunRecord
from reconciler.ledger.postgres import PostgresLedger
from tests.pgserver import PgServer, find_binaries

EXE = str(Path(sys.executable).with_name("reconciler"))
# Short leases, so that a killed replica's runs are reaped within the run; long enough that a
# PostgreSQL restart (a few seconds) does not fence live replicas' runs.
HEARTBEAT, LEASE = 1.0, 8.0
JOB_SECONDS = 0.4  # long enough that some kills land in the middle of a run
# A slot is due to run when some replica was ready this long before it and lived this long after.
_READY_BEFORE, _ALIVE_AFTER = 0.2, 1.0
# After PostgreSQL is back, replicas need a moment to find it (a pooled connection is retried).
_OUTAGE_TAIL = 2.0
_SECOND = timedelta(seconds=1)


@dataclass
class Incarnation:
    """One `reconciler run` process: from its start to its SIGKILL (or the clean stop at the end)."""

    replica: int
    proc: subprocess.Popen[bytes]
    log: Path
    spawned: float  # wall-clock seconds
    killed: float | None = None
    stopped: float | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    _ready: float | None = None

    def ready(self) -> float | None:
        """When it had applied its revision and armed its timer (its log's `reconciler.started`)."""
        if self._ready is None:
            for e in _events(self.log):
                if e.get("event") == "reconciler.started":
                    self._ready = _wall(e["ts"])
                    break
        return self._ready

    def end(self) -> float:
        return self.killed or self.stopped or time.time()


@dataclass
class Report:
    expected: int = 0
    run: int = 0
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    lost: list[tuple[str, str]] = field(default_factory=list)
    excluded: Counter[str] = field(default_factory=Counter)  # reason -> slots
    abandoned: list[tuple[int, str, str, bool, str]] = field(default_factory=list)  # id, name, slot, explained, why
    without_claim: list[tuple[str, str]] = field(default_factory=list)  # a job ran with no run row
    recorded_not_run: list[tuple[int, str, str]] = field(default_factory=list)  # succeeded, no line
    kills: int = 0
    starts: int = 0
    pg_restart: tuple[float, float] | None = None

    @property
    def unexplained(self) -> int:
        return sum(1 for a in self.abandoned if not a[3])

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.lost or self.unexplained or self.without_claim
                    or self.recorded_not_run)

    def lines(self) -> list[str]:
        out = [f"replica starts: {self.starts}, SIGKILLs: {self.kills}"]
        if self.pg_restart:
            out.append(f"PostgreSQL restart (-m immediate): {self.pg_restart[1] - self.pg_restart[0]:.1f} s down")
        out += [f"slots expected: {self.expected}",
                f"slots run: {self.run}",
                f"duplicates: {len(self.duplicates)} {self.duplicates[:5] or ''}".rstrip(),
                f"slots lost while at least one replica was up: {len(self.lost)} {self.lost[:5] or ''}".rstrip(),
                "slots not run, for a stated reason:"]
        out += [f"  {n:5d}  {why}" for why, n in sorted(self.excluded.items(), key=lambda kv: -kv[1])] or ["  none"]
        out.append(f"abandoned runs: {len(self.abandoned)}, explained by a SIGKILL: "
                   f"{len(self.abandoned) - self.unexplained}, unexplained: {self.unexplained}")
        out += [f"  run {rid} {name} {slot}: {'explained' if ok else 'UNEXPLAINED'}: {why}"
                for rid, name, slot, ok, why in self.abandoned]
        if self.without_claim:
            out.append(f"jobs that ran without a run in the ledger: {self.without_claim[:5]}")
        if self.recorded_not_run:
            out.append(f"runs recorded succeeded whose job left no line: {self.recorded_not_run[:5]}")
        out.append("result: " + ("OK (0 duplicates, 0 lost, every abandoned run explained)" if self.ok else "FAILED"))
        return out


def _events(log: Path) -> list[dict[str, Any]]:
    found = []
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return []
    for line in text.splitlines():
        try:
            found.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return found


def _wall(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def _slot_text(slot: datetime) -> str:
    return slot.astimezone(UTC).isoformat().replace("+00:00", "Z")


def write_schedules(directory: Path, out: Path, count: int) -> list[str]:
    """`count` schedules firing every second: all but one `allow` overlapping runs, one `forbid`."""
    directory.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        name = f"chaos-{i}"
        concurrency = "forbid" if i == count - 1 and count > 1 else "allow"
        (directory / f"{name}.yaml").write_text(
            f"name: {name}\nschedule: {{every: 1s}}\npolicy: {{concurrency: {concurrency}}}\n"
            "history: {keep: 100000}\n"  # every row stays, to be compared with the jobs' own record
            f"run: {{command: [/bin/sh, -c, 'echo $RECONCILER_SCHEDULE $RECONCILER_SLOT $RECONCILER_RUN_ID "
            f">> {out}; sleep {JOB_SECONDS}']}}\n")
        names.append(name)
    return names


class Chaos:
    def __init__(self, server: PgServer, url: str, workdir: Path, *, replicas: int = 3, schedules: int = 3,
                 seed: int | None = None, say: Callable[[str], None] = print) -> None:
        self.server, self.url, self.workdir = server, url, workdir
        self.replicas = replicas
        self.rng = random.Random(seed)
        self.say = say
        self.dir = workdir / "schedules"
        self.out = workdir / "slots.out"
        self.names = write_schedules(self.dir, self.out, schedules)
        self.all: list[Incarnation] = []
        self.live: dict[int, Incarnation] = {}
        self.report = Report()

    # ---- processes --------------------------------------------------------------------------

    def spawn(self, replica: int) -> Incarnation:
        log = self.workdir / f"replica-{replica}-{len(self.all)}.log"
        with log.open("wb") as f:
            proc = subprocess.Popen(
                [EXE, "run", "--dir", str(self.dir), "--ledger", self.url, "--log-format", "json",
                 "--rescan", "2s", "--listen", "127.0.0.1:0", "--heartbeat", f"{HEARTBEAT:g}s",
                 "--lease", f"{LEASE:g}s", "--grace", "5s"],
                cwd=self.workdir, stdout=f, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        inc = Incarnation(replica, proc, log, time.time())
        self.all.append(inc)
        self.live[replica] = inc
        self.report.starts += 1
        return inc

    def kill(self, replica: int) -> None:
        inc = self.live.pop(replica)
        inc.killed = time.time()
        inc.proc.send_signal(signal.SIGKILL)
        inc.proc.wait(timeout=30)
        self.report.kills += 1

    def stop_all(self) -> None:
        for _, inc in sorted(self.live.items()):
            inc.proc.send_signal(signal.SIGTERM)
        for inc in self.live.values():
            try:
                inc.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                inc.proc.kill()
                inc.proc.wait(timeout=30)
            inc.stopped = time.time()
        self.live.clear()

    def wait_ready(self, inc: Incarnation, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while inc.ready() is None:
            if inc.proc.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(inc.log.read_text(errors="replace").splitlines()[-15:])
                raise RuntimeError(f"replica {inc.replica} did not start:\n{tail}")
            time.sleep(0.05)

    # ---- the run --------------------------------------------------------------------------------

    def run(self, seconds: float) -> Report:
        """All replicas up, then `seconds` of random kills and restarts with one PostgreSQL restart
        in the middle, then a quiet period of a lease so that every killed run is reaped."""
        try:
            for r in range(self.replicas):
                self.wait_ready(self.spawn(r))
            begin = time.time()
            restart_at = begin + seconds / 2
            while time.time() - begin < seconds:
                if self.report.pg_restart is None and time.time() >= restart_at:
                    t0 = time.time()
                    self.say("chaos: pg_ctl restart -m immediate")
                    self.server.restart("immediate")
                    self.report.pg_restart = (t0, time.time())
                self.step()
                time.sleep(self.rng.uniform(1.0, 4.0))
            for r in range(self.replicas):  # everyone back, then wait out the leases of the killed
                if r not in self.live:
                    self.spawn(r)
            time.sleep(LEASE + 2 * HEARTBEAT + 2)
            end = time.time()
            self.stop_all()
            return self.analyse(begin - 2, end - 2)
        finally:
            for inc in self.live.values():
                if inc.proc.poll() is None:
                    inc.proc.kill()
                    inc.proc.wait(timeout=30)

    def step(self) -> None:
        """Kill a random live replica, or start a dead one. The last one standing is killed rarely,
        so that a few slots pass with no replica at all (and catch-up is exercised)."""
        dead = [r for r in range(self.replicas) if r not in self.live]
        if dead and (len(self.live) <= 1 or self.rng.random() < 0.5):
            r = self.rng.choice(dead)
            self.say(f"chaos: start replica {r}")
            self.spawn(r)
        elif self.live and (len(self.live) > 1 or self.rng.random() < 0.1):
            r = self.rng.choice(sorted(self.live))
            self.say(f"chaos: SIGKILL replica {r} (pid {self.live[r].pid})")
            self.kill(r)

    # ---- what happened ------------------------------------------------------------------------------

    def covered(self, at: float) -> bool:
        """Was some replica ready before `at` and still alive shortly after?"""
        for inc in self.all:
            ready = inc.ready()
            if ready is not None and ready <= at - _READY_BEFORE and inc.end() >= at + _ALIVE_AFTER:
                return True
        return False

    def analyse(self, begin: float, end: float) -> Report:
        rep = self.report
        ledger = PostgresLedger(self.url)
        try:
            rows = ledger.runs(limit=10_000_000)
        finally:
            ledger.close()
        ran: Counter[tuple[str, str]] = Counter()
        run_ids: dict[tuple[str, str], set[str]] = {}
        for line in self.out.read_text().splitlines() if self.out.exists() else []:
            parts = line.split()
            if len(parts) == 3:
                ran[(parts[0], parts[1])] += 1
                run_ids.setdefault((parts[0], parts[1]), set()).add(parts[2])
        by_slot: dict[tuple[str, str], list[RunRecord]] = {}
        summed: dict[str, list[tuple[datetime, datetime, str]]] = {}
        for r in rows:
            by_slot.setdefault((r.schedule, _slot_text(r.slot)), []).append(r)
            m = re.search(r"\((\S+) \.\. (\S+)\)", r.error or "")
            if r.status == "missed" and m:
                first, latest = (datetime.fromisoformat(x.replace("Z", "+00:00")) for x in m.groups())
                summed.setdefault(r.schedule, []).append((first, latest, r.error or ""))
        killed = {inc.pid: inc for inc in self.all if inc.killed is not None}
        rep.duplicates = sorted(k for k, n in ran.items() if n > 1)
        known_ids = {str(r.id) for r in rows}
        rep.without_claim = sorted(k for k, ids in run_ids.items() if not ids <= known_ids)
        start = datetime.fromtimestamp(int(begin) + 1, UTC)
        slots = [start + i * _SECOND for i in range(int(end - begin) - 1)]
        outage = rep.pg_restart
        for name in self.names:
            for slot in slots:
                key = (name, _slot_text(slot))
                rep.expected += 1
                found = by_slot.get(key, [])
                if ran[key]:
                    rep.run += 1
                    continue
                at = slot.timestamp()
                why = self._why_not(found, summed.get(name, []), slot, at, outage)
                if why is None:
                    rep.lost.append(key)
                else:
                    rep.excluded[why] += 1
        for r in rows:
            if r.status == "succeeded" and not ran[(r.schedule, _slot_text(r.slot))]:
                rep.recorded_not_run.append((r.id, r.schedule, _slot_text(r.slot)))
            if r.status != "abandoned":
                continue
            pid = int(r.owner.split(":")[1]) if r.owner.count(":") >= 2 else -1
            inc = killed.get(pid)
            started = r.started_at.timestamp() if r.started_at else 0.0
            explained = inc is not None and inc.killed is not None and inc.killed >= started - 1
            if explained and inc and inc.killed:
                why = (f"replica {inc.replica} (pid {pid}) was killed {inc.killed - started:+.2f} s "
                       "after the run started")
            else:
                why = f"owner {r.owner}: {r.error}"
            rep.abandoned.append((r.id, r.schedule, _slot_text(r.slot), explained, why))
        return rep

    def _why_not(self, found: list[RunRecord], summed: list[tuple[datetime, datetime, str]], slot: datetime,
                 at: float, outage: tuple[float, float] | None) -> str | None:
        """Why a slot that no job ran was not run, or None if nothing excuses it (it is lost)."""
        up = self.covered(at)
        if outage and outage[0] - 1 <= at <= outage[1] + _OUTAGE_TAIL:
            # Claims fail closed while the server is away, and the first after it on a pooled
            # connection that the restart killed; a replica starting then catches the slot up.
            return "PostgreSQL was down (fail closed: no claim, no run)"
        for r in found:
            if r.status in ("missed", "skipped"):
                reason = re.sub(r"\(\d{4}-[^)]*\)", "(…)", r.error or r.status)
                if up and "no reconciler was running" in reason:
                    return None  # catch-up claimed a slot that a live replica was about to run
                return f"{r.status} by policy: {reason}"
            if r.status == "abandoned":
                return "abandoned before its job wrote (its replica was killed)"
        for first, latest, reason in summed:
            if first <= slot <= latest:
                if up:
                    return None
                return "missed by policy (catch-up): " + re.sub(r"\(\d{4}-[^)]*\)", "(…)", reason)
        if not up:
            return "no replica was up"
        return None


def start_server(fsync: bool) -> PgServer:
    binaries = find_binaries()
    if binaries is None:
        raise SystemExit("PostgreSQL's initdb and pg_ctl are not installed (apt-get install postgresql)")
    return PgServer(binaries, fsync=fsync).start()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="how long the chaos lasts (at most 60)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--schedules", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, slots)")
    args = parser.parse_args()
    seconds = min(max(args.minutes, 0.25), 60.0) * 60
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    work = Path(tempfile.mkdtemp(prefix="reconciler-chaos-"))
    server = start_server(fsync=True)
    try:
        url = server.url(server.create_database())
        print(f"chaos: {args.replicas} replicas, {args.schedules} schedules every 1s, {seconds:.0f} s, seed {seed}, "
              f"heartbeat {HEARTBEAT:g}s, lease {LEASE:g}s, work in {work}")
        report = Chaos(server, url, work, replicas=args.replicas, schedules=args.schedules, seed=seed).run(seconds)
    finally:
        server.stop()
    print("\n".join(report.lines()))
    if not args.keep and report.ok:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
