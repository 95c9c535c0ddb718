"""The HTTP API in-process: Starlette's TestClient against `build_app`, over a real, started Reconciler
on a temporary directory and ledger, or over a hand-made `Live` value and a ledger with no daemon at
all (no process boundary is the point of these tests)."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from reconciler.core.loader import Loader, build_from_spec
from reconciler.core.model import Schedule
from reconciler.core.policy import Cause, RunStatus
from reconciler.core.problems import Problem
from reconciler.ledger import open_ledger
from reconciler.ledger.base import Ledger, Outcome
from reconciler.service.app import site_of
from reconciler.service.daemon import Options, Reconciler
from reconciler.service.http import SECURITY_HEADERS, Site, build_app
from reconciler.service.live import Live, Status
from reconciler.service.log import make_log

# Only this import, which warns of its own dependencies' changes: newer Starlette asks for httpx2
# (httpx, a dependency already, still works); older Starlette uses an alias newer anyio deprecates.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
    warnings.filterwarnings("ignore", message="The anyio.abc.BlockingPortal alias is deprecated",
                            category=DeprecationWarning)
    from starlette.testclient import TestClient

# Starlette 0.37's TestClient hands httpx 0.27 an argument that it deprecates (the lower bounds).
pytestmark = pytest.mark.filterwarnings("ignore:The 'app' shortcut is now deprecated:DeprecationWarning")
TOKEN = "s3cret-operator-token-123"
YEARLY = "schedule: {cron: '0 3 1 1 *', timezone: Europe/Berlin}\nrun: {command: [/bin/true]}\n"



class Served(NamedTuple):
    client: TestClient
    daemon: Reconciler
    ledger: Path


MakeClient = Callable[..., Served]


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[MakeClient]:
    """A started Reconciler on schedules `a` and `b` (both far from firing) and a client for its app."""
    started: list[tuple[Reconciler, Any]] = []

    def make(base_url: str = "http://127.0.0.1:8080", **options: Any) -> Served:
        sched = tmp_path / f"schedules-{len(started)}"
        sched.mkdir()
        for name in ("a", "b"):
            (sched / f"{name}.yaml").write_text(f"name: {name}\n{YEARLY}")
        options.setdefault("listen", ("127.0.0.1", 8080))
        path = tmp_path / f"ledger-{len(started)}.db"
        ledger = open_ledger(path)
        daemon = Reconciler(Options(directory=str(sched), **options), ledger, make_log("json", io.StringIO()),
                            lambda: datetime.now(UTC))
        daemon.start()
        started.append((daemon, ledger))
        return Served(TestClient(build_app(site_of(daemon)), base_url=base_url), daemon, path)

    yield make
    for daemon, ledger in started:
        daemon.stop()
        ledger.close()


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client().client


def record_run(served: Served, name: str, status: RunStatus, *, cause: Cause = Cause.MANUAL) -> int:
    """A finished run written through a connection of its own, as `reconciler trigger` does."""
    other = open_ledger(served.ledger)
    try:
        now = datetime.now(UTC)
        run_id = other.record(name, now, attempt=1, cause=cause, revision="elsewhere",
                              outcome=Outcome(status, now + timedelta(seconds=1), exit_code=1), started_at=now)
        assert run_id is not None
        return run_id
    finally:
        other.close()


# ---- bad parameters are 400s, never 500s ------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/v1/runs?before=99999999999999999999", "/api/v1/runs/99999999999999999999",
                                  "/api/v1/runs?before=9223372036854775808", "/api/v1/runs/9223372036854775808",
                                  "/api/v1/runs?before=" + "9" * 5000, "/api/v1/runs/" + "9" * 5000])
def test_a_run_id_beyond_any_row_id_is_a_400_not_a_500(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 400
    assert "between 1 and 9223372036854775807" in r.json()["error"]


@pytest.mark.parametrize("before", ["abc", "-1", "0", "1.5", "0x10", "1e3", " 7", "٣"])
def test_a_before_that_is_not_a_positive_integer_is_a_400_not_ignored(client: TestClient, before: str) -> None:
    r = client.get("/api/v1/runs", params={"before": before})
    assert r.status_code == 400
    assert r.json()["error"].startswith("before must be")


@pytest.mark.parametrize("run_id", ["abc", "0", "-1", "1.5"])
def test_a_run_id_that_is_not_a_positive_integer_is_a_400(client: TestClient, run_id: str) -> None:
    assert client.get(f"/api/v1/runs/{run_id}").status_code == 400


def test_before_pages_through_runs(make_client: MakeClient) -> None:
    served = make_client()
    client = served.client
    ids = [record_run(served, "a", RunStatus.SUCCEEDED) for _ in range(3)]
    assert [r["id"] for r in client.get("/api/v1/runs", params={"before": ids[2]}).json()["items"]] == ids[1::-1]
    assert client.get(f"/api/v1/runs/{ids[0]}").json()["id"] == ids[0]
    assert client.get("/api/v1/runs/9223372036854775807").status_code == 404


# ---- the Host header: a DNS-rebinding page cannot read the API -------------------------------------

@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.nip.io", "localhost.evil.example",
                                  "reconciler.example.com.evil.example", "EVIL.example."])
@pytest.mark.parametrize("path", ["/", "/api/v1/runs", "/api/v1/runs/1", "/api/v1/status", "/metrics", "/nope"])
def test_a_host_name_that_is_not_ours_is_refused_with_421(make_client: MakeClient, host: str, path: str) -> None:
    client = make_client(public_url="https://reconciler.example.com/dash").client
    r = client.get(path, headers={"Host": host})
    assert r.status_code == 421
    assert "--allowed-host" in r.json()["error"]
    assert "reconciler.example.com" not in r.text  # a refused page learns nothing of our names
    for header, value in SECURITY_HEADERS.items():
        assert r.headers[header] == value


@pytest.mark.parametrize("host", ["localhost", "localhost:8080", "LOCALHOST.", "dash.localhost:9", "127.0.0.1",
                                  "127.0.0.1:8080", "127.1.2.3:1", "[::1]", "[::1]:8080", "reconciler.example.com",
                                  "Reconciler.Example.COM:443", "ops.internal:8080"])
def test_localhost_ip_literals_the_public_url_host_and_allowed_hosts_are_served(
        make_client: MakeClient, host: str) -> None:
    client = make_client(public_url="https://reconciler.example.com/dash", allowed_hosts=("ops.internal",)).client
    r = client.get("/api/v1/status", headers={"Host": host})
    assert r.status_code == 200, r.text


def test_on_all_interfaces_any_ip_literal_is_served_but_not_the_machines_name(make_client: MakeClient) -> None:
    # Probes and scrapers address a pod by IP; a rebinding page always sends a name it owns.
    client = make_client(listen=("0.0.0.0", 8080)).client
    for host in ("10.1.2.3:8080", "[fd00::5]:8080", "[fe80::1%25eth0]:8080", "192.168.0.7"):
        assert client.get("/readyz", headers={"Host": host}).status_code == 200, host
    assert client.get("/readyz", headers={"Host": "myhost.lan"}).status_code == 421


def test_the_literal_listen_name_is_served(make_client: MakeClient) -> None:
    client = make_client(listen=("ip6-localhost.example", 8080)).client
    assert client.get("/api/v1/status", headers={"Host": "ip6-localhost.example:8080"}).status_code == 200
    assert client.get("/api/v1/status", headers={"Host": "other.example:8080"}).status_code == 421


@pytest.mark.parametrize("host", ["", "[::1", "::1", "a b", "local host", "localhost:port", "localhost:80:80",
                                  "[::1]x", "[evil.example]", "a..b", "user@localhost"])
def test_a_malformed_host_header_is_refused(client: TestClient, host: str) -> None:
    assert client.get("/api/v1/status", headers={"Host": host}).status_code == 421


# ---- operator actions: the Bearer scheme only ------------------------------------------------------

@pytest.mark.parametrize("authorization", [TOKEN, f"Basic {TOKEN}", f"Token {TOKEN}", f"Bearer{TOKEN}",
                                           f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer", "",
                                           f"XBearer {TOKEN}"])
def test_the_token_counts_only_in_the_bearer_scheme(make_client: MakeClient, authorization: str) -> None:
    client = make_client(token=TOKEN).client
    r = client.post("/api/v1/schedules/a/trigger", headers={"Authorization": authorization})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_matched_case_insensitively(make_client: MakeClient, scheme: str) -> None:
    client = make_client(token=TOKEN).client
    r = client.post("/api/v1/schedules/a/trigger", headers={"Authorization": f"{scheme} {TOKEN}"})
    assert (r.status_code, r.json()) == (202, {"triggered": "a"})


# ---- security headers on every response --------------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/", 200), ("GET", "/dashboard.js", 200), ("GET", "/dashboard.css", 200),
    ("GET", "/healthz", 200), ("GET", "/readyz", 200), ("GET", "/metrics", 200), ("GET", "/api/v1/status", 200),
    ("GET", "/api/v1/overview", 200), ("GET", "/api/v1/schedules", 200), ("GET", "/api/v1/schedules/a", 200),
    ("GET", "/api/v1/runs", 200), ("GET", "/nope", 404), ("GET", "/api/v1/schedules/nope", 404),
    ("POST", "/api/v1/status", 405), ("GET", "/api/v1/schedules/a/trigger", 405),
    ("POST", "/api/v1/schedules/a/trigger", 403), ("GET", "/api/v1/runs?before=x", 400)])
def test_every_response_carries_the_security_headers(client: TestClient, method: str, path: str,
                                                     status: int) -> None:
    r = client.request(method, path)
    assert r.status_code == status
    for header, value in SECURITY_HEADERS.items():
        assert r.headers.get(header) == value, header
    assert r.headers.get_list("content-security-policy") == [SECURITY_HEADERS["Content-Security-Policy"]]


def test_an_unexpected_error_answers_500_with_the_security_headers(make_client: MakeClient,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.service import views

    def broken(*_: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(views, "status", broken)
    client = make_client().client
    client = TestClient(client.app, base_url="http://127.0.0.1:8080", raise_server_exceptions=False)
    r = client.get("/api/v1/status")
    assert r.status_code == 500
    assert "a bug" not in r.text
    for header, value in SECURITY_HEADERS.items():
        assert r.headers.get(header) == value, header


# ---- the last run comes from the ledger ------------------------------------------------------------

def test_last_run_shows_a_run_that_another_process_recorded(make_client: MakeClient) -> None:
    served = make_client()
    client = served.client
    run_id = record_run(served, "b", RunStatus.FAILED)
    items = {s["name"]: s for s in client.get("/api/v1/schedules").json()["items"]}
    assert items["a"]["last_run"] is None
    assert (items["b"]["last_run"]["id"], items["b"]["last_run"]["status"]) == (run_id, "failed")
    assert client.get("/api/v1/schedules/b").json()["last_run"]["id"] == run_id
    failed = client.get("/api/v1/schedules", params={"last_status": "failed"}).json()["items"]
    assert [s["name"] for s in failed] == ["b"]
    never = client.get("/api/v1/schedules", params={"last_status": "never"}).json()["items"]
    assert [s["name"] for s in never] == ["a"]
    by_last = client.get("/api/v1/schedules", params={"sort": "last", "desc": "1"}).json()["items"]
    assert [s["name"] for s in by_last] == ["b", "a"]
    assert client.get("/api/v1/overview").json()["recent_failures"][0]["id"] == run_id


def test_the_newest_run_is_the_last_run_whichever_process_wrote_it(make_client: MakeClient) -> None:
    served = make_client()
    client = served.client
    record_run(served, "a", RunStatus.FAILED)
    newer = record_run(served, "a", RunStatus.SUCCEEDED, cause=Cause.SCHEDULE)
    (a,) = [s for s in client.get("/api/v1/schedules").json()["items"] if s["name"] == "a"]
    assert (a["last_run"]["id"], a["last_run"]["status"]) == (newer, "succeeded")


# ---- the app from a hand-made Live value and a ledger: no daemon ---------------------------------------

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
NEXT = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)


def schedule(name: str, **fields: Any) -> Schedule:
    spec = {"name": name, "schedule": {"cron": "0 2 * * *"}, "run": {"command": ["/bin/true"]}, **fields}
    built = build_from_spec(spec, f"{name}.yaml", Loader(), NOW)
    assert built is not None
    return built


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    led = open_ledger(tmp_path / "ledger.db")
    yield led
    led.close()


def live_value(**status: Any) -> Live:
    """`active` fires next at NEXT, `held` is suspended, `done` reached max_runs."""
    schedules = {"active": schedule("active"), "held": schedule("held", enabled=False), "done": schedule("done")}
    return Live(status=Status(**{"applied_revision": "r1", "applied_at": NOW, "attempted_revision": "r1",
                                 "attempted_at": NOW, "ready": True, **status}),
                schedules=schedules, hashes={n: s.spec_hash for n, s in schedules.items()},
                completed=frozenset({"done"}), next_fire_times=lambda: {"active": NEXT, "held": None})


def client_of(live: Live | Callable[[], Live], ledger: Ledger, **site: Any) -> TestClient:
    read = live if callable(live) else (lambda: live)
    return TestClient(build_app(Site(live=read, ledger=ledger, directory="/srv/schedules", clock=lambda: NOW,
                                     **site)), base_url="http://127.0.0.1:8080")


def test_the_app_answers_from_a_hand_made_live_value_and_a_ledger(ledger: Ledger) -> None:
    client = client_of(live_value(), ledger, running=lambda: 2, alive=lambda: True)
    status = client.get("/api/v1/status").json()
    assert (status["ready"], status["applied"]["revision"], status["directory"]) == (True, "r1", "/srv/schedules")
    assert (status["read_only"], status["now"]) == (True, "2026-03-02T09:30:00Z")
    overview = client.get("/api/v1/overview").json()
    assert overview["counts"] == {"active": 1, "suspended": 1, "completed": 1}
    assert (overview["total"], overview["running"]) == (3, 2)
    items = {s["name"]: s for s in client.get("/api/v1/schedules", params={"sort": "next"}).json()["items"]}
    assert [name for name in items] == ["active", "done", "held"]  # no next fire time sorts last
    assert (items["active"]["state"], items["active"]["next"]) == ("active", "2026-03-03T02:00:00Z")
    assert (items["held"]["state"], items["done"]["state"]) == ("suspended", "completed")
    detail = client.get("/api/v1/schedules/active").json()
    assert [u["slot"] for u in detail["upcoming"][:2]] == ["2026-03-03T02:00:00Z", "2026-03-04T02:00:00Z"]
    assert client.get("/api/v1/schedules/done").json()["upcoming"] == []
    assert (client.get("/readyz").status_code, client.get("/healthz").status_code) == (200, 200)


def test_a_request_takes_the_live_value_and_its_fire_times_once(ledger: Ledger) -> None:
    value, reads, fire_reads = live_value(), [], []

    def fire_times() -> dict[str, datetime | None]:
        fire_reads.append(1)
        return {"active": NEXT}

    def read() -> Live:
        reads.append(1)
        return Live(status=value.status, schedules=value.schedules, next_fire_times=fire_times)

    client = client_of(read, ledger)
    assert client.get("/api/v1/overview").json()["counts"]["active"] == 1
    assert (len(reads), len(fire_reads)) == (1, 1)
    client.get("/api/v1/schedules/active")
    assert (len(reads), len(fire_reads)) == (2, 2)


def test_the_next_request_sees_a_newly_published_live_value(ledger: Ledger) -> None:
    current = [live_value()]
    client = client_of(lambda: current[0], ledger)
    assert client.get("/api/v1/status").json()["applied"]["revision"] == "r1"
    current[0] = Live(status=Status(applied_revision="r2", ready=True))
    assert client.get("/api/v1/status").json()["applied"]["revision"] == "r2"
    assert client.get("/api/v1/schedules").json()["total"] == 0


def test_a_rejected_revision_is_shown_apart_from_the_one_that_runs(ledger: Ledger) -> None:
    problem = Problem("bad.yaml", 3, 7, ("schedule", "cron"), "day 30 of February never comes")
    live = live_value(attempted_revision="r2", problems=(problem,), error="1 problem(s) in the directory")
    attempted = client_of(live, ledger).get("/api/v1/status").json()["attempted"]
    assert (attempted["revision"], attempted["rejected"], attempted["error"]) == (
        "r2", True, "1 problem(s) in the directory")
    assert attempted["problems"] == [{"path": "bad.yaml", "line": 3, "column": 7, "pointer": "$.schedule.cron",
                                      "message": "day 30 of February never comes"}]


def test_the_status_says_when_the_ledger_cannot_be_written(ledger: Ledger) -> None:
    assert client_of(live_value(), ledger).get("/api/v1/status").json()["ledger_error"] is None
    full = live_value(ledger_error="database or disk is full")
    assert client_of(full, ledger).get("/api/v1/status").json()["ledger_error"] == "database or disk is full"


def test_a_live_value_before_the_first_revision_is_not_ready(ledger: Ledger) -> None:
    client = client_of(Live(), ledger)
    assert client.get("/readyz").status_code == 503
    assert client.get("/api/v1/overview").json()["counts"] == {"active": 0, "suspended": 0, "completed": 0}


def test_healthz_answers_503_when_the_timer_is_not_running(ledger: Ledger) -> None:
    r = client_of(live_value(), ledger, alive=lambda: False).get("/healthz")
    assert (r.status_code, r.text) == (503, "timer not running\n")


def test_a_trigger_calls_the_injected_action_and_is_logged(ledger: Ledger) -> None:
    triggered: list[str] = []
    logged: list[tuple[str, dict[str, Any]]] = []

    def trigger_now(name: str) -> None:
        if name not in ("active", "held"):
            raise KeyError(name)
        triggered.append(name)

    client = client_of(live_value(), ledger, token=TOKEN, trigger_now=trigger_now,
                       log=lambda event, **fields: logged.append((event, fields)))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert client.post("/api/v1/schedules/held/trigger", headers=auth).status_code == 202
    assert client.post("/api/v1/schedules/nope/trigger", headers=auth).status_code == 404
    assert triggered == ["held"]
    assert logged == [("api.trigger", {"schedule": "held"})]
    assert client_of(live_value(), ledger, token=TOKEN).get("/api/v1/status").json()["read_only"] is False


def test_runs_come_from_the_ledger_handed_to_the_app(ledger: Ledger) -> None:
    run_id = ledger.record("active", NOW, attempt=1, cause=Cause.MANUAL, revision="r1",
                           outcome=Outcome(RunStatus.FAILED, NOW + timedelta(seconds=1), exit_code=3), started_at=NOW)
    client = client_of(live_value(), ledger)
    assert client.get(f"/api/v1/runs/{run_id}").json()["exit_code"] == 3
    assert client.get("/api/v1/overview").json()["recent_failures"][0]["id"] == run_id
    (active,) = [s for s in client.get("/api/v1/schedules").json()["items"] if s["name"] == "active"]
    assert active["last_run"]["id"] == run_id


def test_replicas_lists_this_daemon_alive_and_one_that_stopped_heartbeating_expired(make_client: MakeClient) -> None:
    served = make_client()
    other = open_ledger(served.ledger)
    try:
        other.register_replica("gone:1:0", host="gone", pid=1, version="0.0.9", revision="old",
                               lease=timedelta(seconds=-1))
    finally:
        other.close()
    served.daemon.runner.replica.beat()  # its revision is the ledger's as of its last heartbeat
    shown = {r["id"]: r for r in served.client.get("/api/v1/replicas").json()["replicas"]}
    me = served.daemon.runner.replica.id
    assert set(shown) == {me, "gone:1:0"}
    assert (shown[me]["state"], shown[me]["runs_owned"], shown[me]["revision"]) == (
        "alive", 0, served.daemon.live.revision)
    assert (shown["gone:1:0"]["state"], shown["gone:1:0"]["version"]) == ("expired", "0.0.9")
