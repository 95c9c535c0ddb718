"""The HTTP server of the real daemon: probes, /metrics, the JSON API and operator actions."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import Daemon, serve_one_schedule, wait_for

TOKEN = "s3cret-operator-token-123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def post(url: str, **headers: str) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=b"", method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def api(base: str, path: str) -> Any:
    status, _, body = get(base + path)
    assert status == 200, (path, status, body)
    return json.loads(body)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Daemon, Path]]:
    tmp = tmp_path_factory.mktemp("http")
    sched = tmp / "schedules"
    sched.mkdir()
    (sched / "ok.yaml").write_text("name: ok-job\ndescription: prints <b>hello</b>\nlabels: {team: web}\n"
                                   "schedule: {every: 1s}\nrun: {command: [/bin/echo, hello]}\n")
    (sched / "bad.yaml").write_text("name: bad-job\nschedule: {every: 1s}\nrun: {command: [/bin/false]}\n")
    (sched / "off.yaml").write_text("name: off-job\nenabled: false\nschedule: {cron: '0 2 * * *'}\n"
                                    "run: {command: [/bin/true]}\n")
    (sched / "done.yaml").write_text("name: done-job\nschedule: {at: '2001-01-01T00:00:00Z'}\n"
                                     "run: {command: [/bin/true]}\n")
    token = tmp / "token"
    token.write_text(TOKEN + "\n")
    port = free_port()
    d = Daemon(sched, tmp, "--listen", f"127.0.0.1:{port}", "--token-file", str(token))
    d.wait_event("http.listening")
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: api(base, "/api/v1/schedules?last_status=failed")["total"] == 1, what="a failed run")
    # Both jobs fire every second, but on a loaded machine not always in the same second.
    wait_for(lambda: api(base, "/api/v1/runs?schedule=ok-job&status=succeeded")["items"], what="a succeeded run")
    yield base, d, sched
    assert d.stop() == 0


def test_probes_answer(served: tuple[str, Daemon, Path]) -> None:
    base, _, _ = served
    assert get(base + "/healthz")[0] == 200
    assert get(base + "/readyz")[0] == 200


def test_metrics_parse_with_prometheus_clients_own_parser(served: tuple[str, Daemon, Path]) -> None:
    base, _, _ = served
    status, headers, body = get(base + "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    for name in ("reconciler_runs", "reconciler_run_duration_seconds", "reconciler_fire_lateness_seconds",
                 "reconciler_schedules", "reconciler_revision_info", "reconciler_config_problems",
                 "reconciler_last_successful_reconcile_timestamp_seconds", "reconciler_reconcile_duration_seconds"):
        assert name in families, name
    states = {s.labels["state"]: s.value for s in families["reconciler_schedules"].samples}
    assert states == {"active": 2.0, "suspended": 1.0, "completed": 1.0}
    runs = {(s.labels["schedule"], s.labels["status"]) for s in families["reconciler_runs"].samples
            if s.name == "reconciler_runs_total"}
    assert ("ok-job", "succeeded") in runs
    assert ("bad-job", "failed") in runs


def test_status_shows_the_applied_revision(served: tuple[str, Daemon, Path]) -> None:
    base, _, _ = served
    st = api(base, "/api/v1/status")
    assert st["ready"] is True
    assert st["applied"]["revision"].startswith("content:")
    assert st["attempted"]["rejected"] is False
    assert st["read_only"] is False


def test_schedules_are_paged_filtered_and_sorted(served: tuple[str, Daemon, Path]) -> None:
    base, _, _ = served
    page = api(base, "/api/v1/schedules?limit=2&sort=name")
    assert page["total"] == 4
    assert [s["name"] for s in page["items"]] == ["bad-job", "done-job"]
    assert [s["name"] for s in api(base, "/api/v1/schedules?limit=2&offset=2")["items"]] == ["off-job", "ok-job"]
    assert [s["name"] for s in api(base, "/api/v1/schedules?label=team=web")["items"]] == ["ok-job"]
    assert [s["name"] for s in api(base, "/api/v1/schedules?state=suspended")["items"]] == ["off-job"]
    assert [s["name"] for s in api(base, "/api/v1/schedules?q=hello")["items"]] == ["ok-job"]
    ok = api(base, "/api/v1/schedules?q=ok-job")["items"][0]
    assert ok["schedule"] == "Every 1s"
    assert ok["next"].endswith("Z")
    assert ok["last_run"]["status"] == "succeeded"
    assert get(base + "/api/v1/schedules?sort=bogus")[0] == 400
    assert get(base + "/api/v1/schedules?limit=0")[0] == 400


def test_one_schedule_with_its_spec_upcoming_times_and_runs(served: tuple[str, Daemon, Path]) -> None:
    base, _, _ = served
    s = api(base, "/api/v1/schedules/ok-job")
    assert "name: ok-job" in s["spec_yaml"]
    assert len(s["upcoming"]) == 5
    assert s["runs"][0]["schedule"] == "ok-job"
    assert get(base + "/api/v1/schedules/nope")[0] == 404


def test_runs_are_paged_and_one_run_shows_its_output(served: tuple[str, Daemon, Path]) -> None:
    base, _, _ = served
    wait_for(lambda: len(api(base, "/api/v1/runs?schedule=ok-job&status=succeeded")["items"]) >= 2, what="two runs")
    first = api(base, "/api/v1/runs?schedule=ok-job&status=succeeded&limit=1")
    (run,) = first["items"]
    assert first["next_before"] == run["id"]
    older = api(base, f"/api/v1/runs?schedule=ok-job&status=succeeded&limit=1&before={run['id']}")["items"]
    assert older[0]["id"] < run["id"]
    assert api(base, f"/api/v1/runs/{run['id']}")["output"] == "hello\n"
    assert all(r["status"] == "failed" for r in api(base, "/api/v1/runs?status=failed")["items"])
    assert get(base + "/api/v1/runs?status=bogus")[0] == 400
    assert get(base + "/api/v1/runs/999999999")[0] == 404


def test_overview_counts_states_and_lists_recent_failures(served: tuple[str, Daemon, Path]) -> None:
    base, _, _ = served
    o = api(base, "/api/v1/overview")
    assert o["counts"] == {"active": 2, "suspended": 1, "completed": 1}
    assert o["recent_failures"][0]["schedule"] == "bad-job"


def test_trigger_needs_the_token_and_runs_a_manual_run(served: tuple[str, Daemon, Path]) -> None:
    base, _d, _ = served
    assert post(base + "/api/v1/schedules/off-job/trigger")[0] == 401
    assert post(base + "/api/v1/schedules/off-job/trigger", Authorization="Bearer wrong-token-wrong-token")[0] == 401
    status, body = post(base + "/api/v1/schedules/off-job/trigger", Authorization=f"Bearer {TOKEN}")
    assert (status, body) == (202, {"triggered": "off-job"})
    wait_for(lambda: any(r["trigger"] == "manual" and r["status"] == "succeeded"
                         for r in api(base, "/api/v1/runs?schedule=off-job")["items"]), what="the manual run")
    assert post(base + "/api/v1/schedules/nope/trigger", Authorization=f"Bearer {TOKEN}")[0] == 404


def test_without_a_token_the_api_is_read_only(tmp_path: Path) -> None:
    d, base = serve_one_schedule(tmp_path)
    try:
        status, body = post(f"{base}/api/v1/schedules/a/trigger", Authorization="Bearer x")
        assert status == 403
        assert "read-only" in body["error"]
    finally:
        assert d.stop() == 0


def test_the_dashboard_is_served_with_a_strict_content_security_policy(served: tuple[str, Daemon, Path]) -> None:
    base, _, _ = served
    status, headers, body = get(base + "/")
    assert status == 200
    assert "script-src 'self'" in headers["content-security-policy"]
    assert b"<script src=\"/dashboard.js\"" in body
    assert b"http://" not in body
    assert b"https://" not in body
    assert get(base + "/dashboard.js")[1]["content-type"].startswith("text/javascript")


def test_the_server_listens_on_loopback_by_default(tmp_path: Path) -> None:
    d, base = serve_one_schedule(tmp_path)
    try:
        assert base.startswith("http://127.0.0.1:")
    finally:
        assert d.stop() == 0


def test_a_taken_port_is_a_clear_usage_error_before_anything_starts(tmp_path: Path, reconciler: Any) -> None:
    import socket as sk

    sched = tmp_path / "s"
    sched.mkdir()
    (sched / "a.yaml").write_text("name: a\nschedule: {every: 1s}\nrun: {command: [/bin/true]}\n")
    with sk.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = reconciler("run", "--dir", str(sched), "--ledger", str(tmp_path / "l.db"), "--listen",
                       f"127.0.0.1:{port}", timeout=30)
    assert r.returncode == 64  # a usage error (EX_USAGE)
    assert f"--listen 127.0.0.1:{port}: Address already in use" in r.stderr
    assert "Traceback" not in r.stderr
    assert "revision.applied" not in r.stderr  # it failed before applying or running anything


def test_moving_a_schedule_to_another_file_updates_where_it_is_shown_to_come_from(tmp_path: Path) -> None:
    d, base = serve_one_schedule(tmp_path)
    try:
        sched = tmp_path / "schedules"
        assert api(base, "/api/v1/schedules/a")["source"] == f"{sched}/a.yaml:1"
        (sched / "a.yaml").rename(sched / "moved.yaml")  # same spec: nothing to change in the timer
        wait_for(lambda: api(base, "/api/v1/schedules/a")["source"] == f"{sched}/moved.yaml:1",
                 what="the new file to be shown")
    finally:
        assert d.stop() == 0


def test_a_page_under_another_host_name_cannot_read_the_real_daemons_api(tmp_path: Path) -> None:
    # DNS rebinding: evil.example now resolves to 127.0.0.1, so its page is same-origin with us.
    d, base = serve_one_schedule(tmp_path, "--allowed-host", "ops.internal:8080")
    try:
        port = base.rsplit(":", 1)[1]
        status, headers, body = get(base + "/api/v1/runs", Host=f"evil.example:{port}")
        assert status == 421
        assert "--allowed-host" in json.loads(body)["error"]
        assert headers["x-content-type-options"] == "nosniff"
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", "ops.internal"):
            assert get(base + "/api/v1/runs", Host=host)[0] == 200, host
    finally:
        assert d.stop() == 0


def test_a_malformed_allowed_host_is_a_usage_error(tmp_path: Path, reconciler: Any) -> None:
    sched = tmp_path / "s"
    sched.mkdir()
    (sched / "a.yaml").write_text("name: a\nschedule: {every: 1s}\nrun: {command: [/bin/true]}\n")
    r = reconciler("run", "--dir", str(sched), "--ledger", str(tmp_path / "l.db"), "--listen", "127.0.0.1:0",
                   "--allowed-host", "not a host", timeout=30)
    assert r.returncode == 64
    assert "--allowed-host 'not a host': write a host name" in r.stderr
    assert "Traceback" not in r.stderr


def test_last_run_shows_a_manual_run_that_reconciler_trigger_made_beside_the_daemon(
        tmp_path: Path, reconciler: Any) -> None:
    d, base = serve_one_schedule(tmp_path)
    try:
        assert api(base, "/api/v1/schedules/a")["last_run"] is None
        r = reconciler("trigger", "a", "--dir", str(tmp_path / "schedules"), "--ledger", str(d.ledger), timeout=60)
        assert r.returncode == 0, r.stderr
        (row,) = api(base, "/api/v1/schedules")["items"]
        assert (row["last_run"]["trigger"], row["last_run"]["status"]) == ("manual", "succeeded")
        assert api(base, "/api/v1/schedules/a")["last_run"] == row["last_run"]
        assert api(base, "/api/v1/schedules?last_status=never")["total"] == 0
    finally:
        assert d.stop() == 0
