"""Container and Kubernetes files. No Docker engine runs here: what can be checked without one is,
and the probes are pointed at the real server."""

from __future__ import annotations

import json
import re
import shlex
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT
from tests.harness import serve_one_schedule

K8S = list(yaml.safe_load_all((ROOT / "examples/kubernetes/reconciler.yaml").read_text()))


def deployment() -> dict[str, Any]:
    return next(d for d in K8S if d["kind"] == "Deployment")


def containers() -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in deployment()["spec"]["template"]["spec"]["containers"]}


def flags(args: list[str]) -> dict[str, str]:
    return dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)


def test_the_manifests_parse_and_name_what_they_need() -> None:
    kinds = {d["kind"] for d in K8S}
    assert {"Deployment", "PersistentVolumeClaim", "Secret", "Service"} <= kinds
    spec = deployment()["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"]["type"] == "Recreate"


def test_both_containers_share_the_git_volume_and_the_reconciler_reads_through_the_link() -> None:
    c = containers()
    sync, rec = flags(c["git-sync"]["args"]), flags(c["reconciler"]["args"])
    mounts = {name: {m["name"]: m["mountPath"] for m in c[name]["volumeMounts"]} for name in c}
    assert mounts["git-sync"]["git"] == mounts["reconciler"]["git"] == sync["root"]
    assert rec["dir"].startswith(f"{sync['root']}/{sync['link']}/")
    assert rec["ledger"].startswith(mounts["reconciler"]["data"] + "/")
    volumes = {v["name"]: v for v in deployment()["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes["git"]
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "reconciler-ledger"
    assert rec["token-file"].startswith(mounts["reconciler"]["token"] + "/")


def test_the_grace_period_covers_the_reconcilers_own() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 25 + 5  # --grace default 25s, then SIGKILL of jobs


def test_the_probes_and_the_healthcheck_hit_real_endpoints(tmp_path: Path) -> None:
    rec = containers()["reconciler"]
    port_name = rec["ports"][0]["name"]
    paths = {rec["livenessProbe"]["httpGet"]["path"], rec["readinessProbe"]["httpGet"]["path"]}
    assert rec["livenessProbe"]["httpGet"]["port"] == rec["readinessProbe"]["httpGet"]["port"] == port_name
    assert flags(rec["args"])["listen"].endswith(f":{rec['ports'][0]['containerPort']}")
    dockerfile = (ROOT / "Dockerfile").read_text()
    health = re.search(r"HEALTHCHECK .*?CMD (\[.*?\])", dockerfile, re.S)
    assert health is not None
    paths |= set(re.findall(r"http://127\.0\.0\.1:8080(/\w+)", health.group(1)))
    assert paths == {"/healthz", "/readyz"}

    d, base = serve_one_schedule(tmp_path)
    try:
        for path in sorted(paths):
            with urllib.request.urlopen(f"{base}{path}", timeout=5) as r:
                assert r.status == 200, path
    finally:
        assert d.stop() == 0


def test_the_dockerfile_runs_as_non_root_under_tini_on_schedules_and_data() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER 10001$", text, re.M)
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))  # type: ignore[union-attr]
    assert entry == ["tini", "--", "reconciler"]
    args = dict(zip(cmd[1::2], cmd[2::2], strict=False))
    assert cmd[0] == "run"
    assert args["--dir"] == "/schedules"
    assert args["--ledger"].startswith("/data/")
    for copied in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for path in shlex.split(copied):
            assert (ROOT / path).exists(), path


def test_the_compose_file_mounts_the_bundled_schedules_and_publishes_on_loopback() -> None:
    compose = yaml.safe_load((ROOT / "examples/docker-compose.yml").read_text())
    svc = compose["services"]["reconciler"]
    assert "../schedules:/schedules:ro" in svc["volumes"]
    assert (ROOT / "schedules").is_dir()
    assert all(p.startswith("127.0.0.1:") for p in svc["ports"])
    assert (ROOT / "examples" / svc["build"] / "Dockerfile").exists()
