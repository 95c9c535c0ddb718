"""examples/monitoring/: the alert rules pass `promtool check rules` and their unit tests
(`promtool test rules`), and the rules and the Grafana dashboard use only metrics we export."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.core.loader import Loader, build_from_spec
from reconciler.ledger import open_ledger
from reconciler.service.live import Live, Status
from reconciler.service.metrics import Metrics, gauges
from tests.conftest import ROOT

MONITORING = ROOT / "examples" / "monitoring"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
# A metric name in PromQL: a word starting with our prefix (label names and functions do not).
METRIC = re.compile(r"\breconciler_[a-z_]+\b")
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "info": ("_info",)}


def exported(tmp_path: Path) -> set[str]:
    """Every series name the daemon's registry can expose, from its families' names and types."""
    spec = {"name": "a", "schedule": {"every": "1m"}, "run": {"command": ["/bin/true"]}}
    s = build_from_spec(spec, "a.yaml", Loader(), NOW)
    assert s is not None
    # Rejected, so that the rejection's timestamp is exported too.
    live = Live(status=Status(applied_revision="r1", attempted_revision="r2", attempted_at=NOW, error="bad"),
                schedules={"a": s}, hashes={"a": s.spec_hash}, next_fire_times=lambda: {"a": NOW})
    ledger = open_ledger(tmp_path / "ledger.db")
    try:
        ledger.register_replica("r", host="h", pid=1, version="0", revision="r1", lease=timedelta(minutes=1))
        metrics = Metrics(lambda: gauges(live, 0), ledger.replicas, ledger=ledger, clock=lambda: NOW)
        names = set()
        for family in metrics.registry.collect():
            names.add(family.name)
            names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
            names.update(sample.name for sample in family.samples)
    finally:
        ledger.close()
    return names


def rule_exprs() -> list[str]:
    rules = yaml.safe_load((MONITORING / "alerts.rules.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    def walk(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["expr"]] if isinstance(node.get("expr"), str) else []
            return found + [e for v in node.values() for e in walk(v)]
        if isinstance(node, list):
            return [e for v in node for e in walk(v)]
        return []

    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    found = walk(dashboard["panels"])
    assert len(found) >= len(dashboard["panels"])  # every panel queries something
    return found


def test_the_exported_names_include_those_written_for_alerts(tmp_path: Path) -> None:
    names = exported(tmp_path)
    assert {"reconciler_schedule_consecutive_failures", "reconciler_replica_heartbeat_age_seconds",
            "reconciler_revision_rejected_since_timestamp_seconds", "reconciler_runs_total"} <= names
    assert "reconciler_no_such_metric" not in names


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_the_alert_rules_and_the_dashboard_use_only_exported_metrics(tmp_path: Path, source: str) -> None:
    exprs = rule_exprs() if source == "alerts" else dashboard_exprs()
    used = {name for expr in exprs for name in METRIC.findall(expr)}
    assert len(used) >= 5
    assert used - exported(tmp_path) == set()


def test_the_alert_rules_cover_what_operators_asked_for() -> None:
    rules = yaml.safe_load((MONITORING / "alerts.rules.yml").read_text())
    names = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {"ReconcilerScheduleFailing", "ReconcilerScheduleNoRecentSuccess", "ReconcilerNotReady",
            "ReconcilerRevisionRejected", "ReconcilerMissedSlots"} <= names


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        why = "promtool is not installed (apt-get install prometheus)"
        if os.environ.get("CI"):
            pytest.fail(f"{why}; CI must check the alert rules")
        pytest.skip(why)
    return found


@pytest.mark.parametrize("check", [["check", "rules", "alerts.rules.yml"], ["test", "rules", "alerts.test.yml"]])
def test_promtool_accepts_the_rules_and_their_unit_tests_pass(check: list[str]) -> None:
    r = subprocess.run([promtool(), *check], cwd=MONITORING, capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout
