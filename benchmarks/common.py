"""Helpers shared by the benchmarks: realistic schedule files and measured subprocesses."""

from __future__ import annotations

import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work"
BIN = Path(sys.executable).with_name("reconciler")
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "America/Sao_Paulo"]
CRONS = ["0 2 * * *", "*/15 * * * *", "0 8-23 * * mon-fri", "0 9,14,19 * * sat,sun", "30 3 1 * *",
         "@hourly", "@daily", "5 4 * * 0", "0 */6 * * *", "15 10 1-7 * mon"]


def schedule_yaml(i: int, rng: random.Random, start: str | None = None) -> str:
    kind = rng.random()
    if kind < 0.7:
        when = f'  cron: "{rng.choice(CRONS)}"\n  timezone: {rng.choice(ZONES)}\n'
    elif kind < 0.95:
        when = f"  every: {rng.choice(['30s', '5m', '15m', '1h'])}\n"
    else:
        when = '  at: "2030-06-01T09:00:00Z"\n'
    if start:
        when += f'  start: "{start}"\n'
    if rng.random() < 0.8:
        run = (f"run:\n  command: [/opt/jobs/bin/job-{i % 97}, --shard, \"{i % 16}\", --verbose]\n"
               f"  workdir: /opt/jobs\n  timeout: {rng.choice(['5m', '30m', '1h'])}\n"
               "  env:\n    MODE: full\n    TOKEN: {from_env: JOB_TOKEN}\n")
    else:
        run = (f"run:\n  http:\n    url: https://svc-{i % 50}.internal.example/api/tick\n    method: POST\n"
               "    json: {source: reconciler}\n    timeout: 10s\n    expect_status: [200, 202]\n")
    return (
        "# yaml-language-server: $schema=../../schema/schedule.schema.json\n"
        f"name: job-{i:05d}\ndescription: Benchmark schedule number {i}\n"
        f"labels: {{team: team-{i % 20}, tier: \"{i % 3}\"}}\n"
        f"schedule:\n{when}{run}"
        "policy:\n  concurrency: forbid\n  retries: {limit: 2, backoff: 10s}\nhistory: {keep: 50}\n"
    )


def make_tree(directory: Path, count: int, seed: int = 7, start: str | None = None) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths = []
    for i in range(count):
        p = directory / f"job-{i:05d}.yaml"
        text = schedule_yaml(i, rng, start)
        if not p.exists() or p.read_text() != text:
            p.write_text(text)
        paths.append(p)
    return paths


def measure(argv: list[str], **kwargs: object) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MiB of the child, and its exit code (measured by a fresh
    wrapper process so every command's peak is its own)."""
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "dt = time.perf_counter() - t\n"
        "print(dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)\n"
    )
    out = subprocess.run([sys.executable, "-c", wrapper, *argv], capture_output=True, text=True, check=True,
                         **kwargs)  # type: ignore[call-overload]
    secs, rss_kib, code = out.stdout.split()
    return float(secs), int(rss_kib) / 1024, int(code)


def timed(fn: object) -> float:
    t = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t


__all__ = ["BIN", "ROOT", "WORK", "make_tree", "measure", "resource", "timed"]
