"""The container and Kubernetes files, checked without an engine or a cluster: the manifests against
the Kubernetes JSON schemas (kubernetes-validate ships them), the wiring between their parts, and
the probes against the real server. tests/container/ builds and runs the image itself."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from kubernetes_validate.utils import all_versions  # type: ignore[import-untyped]

import reconciler
from tests.conftest import ROOT
from tests.harness import serve_one_schedule

BASE = ROOT / "examples/kubernetes/base"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
# git-sync v4's settings as environment variables: a misspelled one is silently ignored by it.
GIT_SYNC_VARIABLES = {"GITSYNC_REPO", "GITSYNC_REF", "GITSYNC_ROOT", "GITSYNC_LINK", "GITSYNC_PERIOD",
                      "GITSYNC_DEPTH", "GITSYNC_SUBMODULES", "GITSYNC_MAX_FAILURES", "GITSYNC_SYNC_TIMEOUT",
                      "GITSYNC_USERNAME", "GITSYNC_PASSWORD_FILE", "GITSYNC_SSH_KEY_FILE",
                      "GITSYNC_SSH_KNOWN_HOSTS", "GITSYNC_SSH_KNOWN_HOSTS_FILE", "GITSYNC_HTTP_BIND"}


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """`kustomize build` for what the examples use, without a kustomize binary: `resources` only."""
    k = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert set(k) <= {"apiVersion", "kind", "resources"}, f"{directory}: teach kustomize() the new fields"
    docs: list[dict[str, Any]] = []
    for entry in k["resources"]:
        path = directory / entry
        docs += kustomize(path) if path.is_dir() else [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


K8S = kustomize(BASE)


def one(kind: str) -> dict[str, Any]:
    found = [d for d in K8S if d["kind"] == kind]
    assert len(found) == 1, kind
    return found[0]


def pod() -> dict[str, Any]:
    return one("Deployment")["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def containers() -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in [*pod().get("initContainers", []), *pod()["containers"]]}


def mounts(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["mountPath"]: m for m in container.get("volumeMounts", [])}


def volumes() -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in pod()["volumes"]}


def flags(args: list[str]) -> dict[str, str]:
    return dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)


def git_sync_settings(container: dict[str, Any]) -> dict[str, str]:
    names = [e["configMapRef"]["name"] for e in container.get("envFrom", [])]
    data: dict[str, str] = {}
    for m in K8S:
        if m["kind"] == "ConfigMap" and m["metadata"]["name"] in names:
            data |= m["data"]
    return data


@pytest.mark.parametrize("version", sorted({all_versions()[0], all_versions()[-1]}))
def test_every_manifest_of_the_base_validates_against_the_kubernetes_schemas(version: str) -> None:
    for manifest in K8S:
        kubernetes_validate.validate(manifest, version, strict=True)


def test_the_schemas_refuse_a_misspelled_field() -> None:
    wrong = json.loads(json.dumps(one("Deployment")))
    wrong["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, all_versions()[-1], strict=True)


def test_the_kustomization_lists_every_manifest_beside_it_and_names_are_unique() -> None:
    listed = yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in BASE.glob("*.yaml") if p.name != "kustomization.yaml")
    keys = [(m["kind"], m["metadata"]["name"]) for m in K8S]
    assert len(keys) == len(set(keys))


def test_what_the_pod_refers_to_exists_and_the_service_selects_it() -> None:
    names = {(m["kind"], m["metadata"]["name"]) for m in K8S}
    for c in containers().values():
        for e in c.get("envFrom", []):
            assert ("ConfigMap", e["configMapRef"]["name"]) in names
        for m in c.get("volumeMounts", []):
            assert m["name"] in volumes()
    for v in volumes().values():
        if "persistentVolumeClaim" in v:
            assert ("PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"]) in names
        if "secret" in v:
            assert ("Secret", v["secret"]["secretName"]) in names
    deployment, service = one("Deployment"), one("Service")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    port_names = {p["name"] for c in containers().values() for p in c.get("ports", [])}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names


def test_git_sync_clones_once_in_an_init_container_before_the_reconciler_starts_then_keeps_it_current() -> None:
    c = containers()
    init, sidecar, rec = c["git-sync-init"], c["git-sync"], c["reconciler"]
    assert [i["name"] for i in pod()["initContainers"]] == ["git-sync-init"]
    assert init["image"] == sidecar["image"]
    assert init["args"] == ["--one-time"]  # exits after the first sync: the link exists before the reconciler
    assert "--one-time" not in sidecar.get("args", [])
    settings = git_sync_settings(init)
    assert settings == git_sync_settings(sidecar), "the clone and the sidecar must sync the same thing"
    assert set(settings) <= GIT_SYNC_VARIABLES, set(settings) - GIT_SYNC_VARIABLES
    assert {"GITSYNC_REPO", "GITSYNC_ROOT", "GITSYNC_LINK"} <= set(settings)
    root, link = settings["GITSYNC_ROOT"], settings["GITSYNC_LINK"]
    for git_sync in (init, sidecar):
        assert mounts(git_sync)[root]["name"] == "git"
        assert not mounts(git_sync)[root].get("readOnly", False)
    assert mounts(rec)[root] == {"name": "git", "mountPath": root, "readOnly": True}
    assert flags(rec["args"])["dir"].startswith(f"{root}/{link}/")
    assert "emptyDir" in volumes()["git"]


def effective(container: dict[str, Any]) -> dict[str, Any]:
    """The container's security context over the pod's (the fields both may set)."""
    return {**pod().get("securityContext", {}), **container.get("securityContext", {})}


@pytest.mark.parametrize("name", sorted(containers()))
def test_every_container_is_restricted_and_writes_only_to_its_volumes(name: str) -> None:
    c = containers()[name]
    sc = effective(c)
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] != 0
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not sc.get("privileged", False)
    assert "emptyDir" in volumes()[mounts(c)["/tmp"]["name"]], "a read-only root needs a writable /tmp"
    assert not any("hostPath" in v for v in volumes().values())
    assert pod()["automountServiceAccountToken"] is False


@pytest.mark.parametrize("name", sorted(containers()))
def test_every_container_requests_cpu_and_memory_and_is_limited_in_memory(name: str) -> None:
    resources = containers()[name]["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]


def test_the_reconciler_runs_as_the_images_user_and_keeps_its_ledger_on_the_claim() -> None:
    rec = containers()["reconciler"]
    user = re.search(r"^USER (\d+):(\d+)$", DOCKERFILE, re.M)
    assert user is not None
    sc = effective(rec)
    assert (str(sc["runAsUser"]), str(sc["runAsGroup"])) == user.groups()
    assert str(pod()["securityContext"]["fsGroup"]) == user.group(2)  # makes the claim writable by it
    args = flags(rec["args"])
    data = next(path for path, m in mounts(rec).items() if m["name"] == "data")
    assert args["ledger"].startswith(data + "/")
    assert "persistentVolumeClaim" in volumes()["data"]
    token = next(path for path, m in mounts(rec).items() if m["name"] == "token")
    assert args["token-file"].startswith(token + "/")
    assert rec["image"].endswith(":" + PROJECT["version"])
    deployment = one("Deployment")["spec"]
    assert deployment["replicas"] == 1  # one writer for the SQLite ledger
    assert deployment["strategy"]["type"] == "Recreate"


def test_the_grace_period_covers_the_reconcilers_own() -> None:
    assert pod()["terminationGracePeriodSeconds"] >= 25 + 5  # --grace default 25s, then SIGKILL of jobs


def test_the_probes_and_the_healthcheck_hit_real_endpoints(tmp_path: Path) -> None:
    rec = containers()["reconciler"]
    port = rec["ports"][0]
    live, ready = rec["livenessProbe"]["httpGet"], rec["readinessProbe"]["httpGet"]
    assert live["port"] == ready["port"] == port["name"]
    assert flags(rec["args"])["listen"] == f"0.0.0.0:{port['containerPort']}"
    assert (live["path"], ready["path"]) == ("/healthz", "/readyz")
    health = re.search(r"HEALTHCHECK .*?CMD (\[.*?\])\n", DOCKERFILE, re.S)
    assert health is not None
    checked = re.findall(r"http://127\.0\.0\.1:8080(/\w+)", health.group(1))
    assert checked == ["/healthz"]

    d, base = serve_one_schedule(tmp_path)
    try:
        for path in ("/healthz", "/readyz"):
            with urllib.request.urlopen(f"{base}{path}", timeout=5) as r:
                assert r.status == 200, path
    finally:
        assert d.stop() == 0


def stages() -> list[str]:
    """The Dockerfile's stages, each from its FROM line on."""
    return ["FROM" + s for s in re.split(r"^FROM", DOCKERFILE, flags=re.M)[1:]]


def test_the_dockerfile_builds_in_one_stage_and_runs_from_another_without_build_tools() -> None:
    froms = [s.split()[1] for s in stages()]
    assert len(froms) == 2
    assert len(set(froms)) == 1, "one base for both stages: CI builds it under that name"
    build, final = stages()
    assert "pip install" in build
    assert "pip install" not in final
    assert re.search(r"^COPY --from=build (\S+) \1$", final, re.M)
    assert re.search(r"^USER 10001:10001$", final, re.M)
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", final, re.M).group(1))  # type: ignore[union-attr]
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", final, re.M).group(1))  # type: ignore[union-attr]
    assert entry == ["tini", "--", "reconciler"]
    args = dict(zip(cmd[1::2], cmd[2::2], strict=False))
    assert cmd[0] == "run"
    assert args["--dir"] == "/schedules"
    assert args["--ledger"].startswith("/data/")
    assert re.search(r'^VOLUME \["/data"\]$', final, re.M)


def test_the_dockerfile_copies_only_what_exists_and_the_dockerignore_lets_through() -> None:
    allowed = {line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.startswith("!")}
    assert "*" in (ROOT / ".dockerignore").read_text().splitlines(), "an allow-list"
    copied = [path for line in re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, re.M)
              for path in shlex.split(line)]
    assert copied
    for path in copied:
        assert (ROOT / path).exists(), path
        assert path.rstrip("/") in allowed, path


def test_the_image_labels_follow_the_oci_annotations_and_the_package() -> None:
    final = stages()[-1]
    defaults = dict(re.findall(r"^ARG (\w+)=(.*)$", final, re.M))
    labels = dict(re.findall(r'(org\.opencontainers\.image\.\w+)="([^"]*)"', final))
    assert set(labels) >= {f"org.opencontainers.image.{k}" for k in ("source", "version", "licenses", "revision")}
    assert labels["org.opencontainers.image.version"] == "${VERSION}"
    assert defaults["VERSION"] == PROJECT["version"] == reconciler.__version__
    assert labels["org.opencontainers.image.licenses"] == PROJECT["license"]
    assert labels["org.opencontainers.image.source"] == "${SOURCE}"
    assert defaults["SOURCE"].startswith("https://")


def test_the_compose_file_mounts_the_bundled_schedules_and_runs_as_restricted_as_kubernetes() -> None:
    compose = yaml.safe_load((ROOT / "examples/docker-compose.yml").read_text())
    svc = compose["services"]["reconciler"]
    assert "../schedules:/schedules:ro" in svc["volumes"]
    assert (ROOT / "schedules").is_dir()
    assert all(p.startswith("127.0.0.1:") for p in svc["ports"])
    assert (ROOT / "examples" / svc["build"] / "Dockerfile").exists()
    assert svc["read_only"] is True
    assert "/tmp" in svc["tmpfs"]
    assert svc["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in svc["security_opt"]
    ledger = next(v for v in svc["volumes"] if v.endswith(":/data"))
    assert ledger.split(":")[0] in compose["volumes"], "a named volume starts owned by the image's user"
