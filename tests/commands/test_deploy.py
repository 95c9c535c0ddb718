"""The container and Kubernetes files, checked without an engine or a cluster: the manifests against
the Kubernetes JSON schemas (kubernetes-validate ships them), the wiring between their parts, and
the probes against the real server. tests/container/ builds and runs the image itself."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import tomllib
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from kubernetes_validate.utils import all_versions  # type: ignore[import-untyped]

import reconciler
from reconciler.ledger.postgres import PASSWORD_FILE_ENV
from tests.conftest import ROOT
from tests.harness import serve_one_schedule

# The variable the README documents (`reconciler.cli` is not imported here: with an old typer on a
# new click that import warns, and warnings are errors).
LEDGER_ENV = "RECONCILER_LEDGER"

BASE = ROOT / "examples/kubernetes/base"
OVERLAY = ROOT / "examples/kubernetes/postgresql"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
# git-sync v4's settings as environment variables: a misspelled one is silently ignored by it.
GIT_SYNC_VARIABLES = {"GITSYNC_REPO", "GITSYNC_REF", "GITSYNC_ROOT", "GITSYNC_LINK", "GITSYNC_PERIOD",
                      "GITSYNC_DEPTH", "GITSYNC_SUBMODULES", "GITSYNC_MAX_FAILURES", "GITSYNC_SYNC_TIMEOUT",
                      "GITSYNC_USERNAME", "GITSYNC_PASSWORD_FILE", "GITSYNC_SSH_KEY_FILE",
                      "GITSYNC_SSH_KNOWN_HOSTS", "GITSYNC_SSH_KNOWN_HOSTS_FILE", "GITSYNC_HTTP_BIND"}


# The merge key of each list that patches merge into (Kubernetes' patchMergeKey), and the lists of
# strings that a patch replaces whole; kustomize() refuses to patch any other existing list.
MERGE_KEYS = {"containers": "name", "initContainers": "name", "volumes": "name", "env": "name",
              "volumeMounts": "mountPath"}
REPLACED = {"args", "command"}


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """`kustomize build` for what the examples use, without a kustomize binary: `resources`, and
    `patches` that are strategic merge patches in files (`$patch: delete` of a resource or of a list
    item). Anything else fails, rather than being rendered wrong."""
    k = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert set(k) <= {"apiVersion", "kind", "resources", "patches"}, f"{directory}: teach kustomize() the new fields"
    docs: list[dict[str, Any]] = []
    for entry in k["resources"]:
        path = directory / entry
        docs += kustomize(path) if path.is_dir() else [d for d in yaml.safe_load_all(path.read_text()) if d]
    for entry in k.get("patches", []):
        assert set(entry) == {"path"}, f"{directory}: teach kustomize() patches by {set(entry) - {'path'}}"
        for patch in yaml.safe_load_all((directory / entry["path"]).read_text()):
            key = (patch["kind"], patch["metadata"]["name"])
            target = [i for i, d in enumerate(docs) if (d["kind"], d["metadata"]["name"]) == key]
            assert len(target) == 1, f"{entry['path']}: no {key} to patch"
            if patch.get("$patch") == "delete":
                del docs[target[0]]
            else:
                docs[target[0]] = merge(docs[target[0]], patch, key[0])
    return docs


def merge(base: dict[str, Any], patch: dict[str, Any], where: str) -> dict[str, Any]:
    """A strategic merge patch of one object, as kustomize applies it (merged and new list items
    first, in the patch's order, then the base's others)."""
    out = dict(base)
    for key, value in patch.items():
        at = f"{where}.{key}"
        assert not key.startswith("$"), f"{at}: teach kustomize() this directive"
        assert value is not None, f"{at}: teach kustomize() this directive (null deletes)"
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = merge(base[key], value, at)
        elif isinstance(value, list) and key in base:
            assert key in MERGE_KEYS or key in REPLACED, f"{at}: teach kustomize() how this list merges"
            out[key] = value if key in REPLACED else merge_list(base[key], value, MERGE_KEYS[key], at)
        else:
            assert "$patch" not in json.dumps(value), f"{at}: a directive in a new value"
            out[key] = value
    return out


def merge_list(base: list[dict[str, Any]], patch: list[dict[str, Any]], key: str, where: str) -> list[dict[str, Any]]:
    by_key = {item[key]: item for item in base}
    head = []
    for item in patch:
        at = f"{where}[{key}={item[key]}]"
        if item.get("$patch") == "delete":
            assert set(item) == {key, "$patch"}, f"{at}: teach kustomize() this directive"
            assert item[key] in by_key, f"{at}: nothing to delete"
        else:
            head.append(merge(by_key[item[key]], item, at) if item[key] in by_key else item)
    patched = {item[key] for item in patch}
    return head + [item for item in base if item[key] not in patched]


K8S = kustomize(BASE)
POSTGRESQL = kustomize(OVERLAY)
VARIANTS = {"base": K8S, "postgresql": POSTGRESQL}


def one(kind: str, docs: list[dict[str, Any]] = K8S) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, kind
    return found[0]


def pod(docs: list[dict[str, Any]] = K8S) -> dict[str, Any]:
    return one("Deployment", docs)["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def containers(docs: list[dict[str, Any]] = K8S) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in [*pod(docs).get("initContainers", []), *pod(docs)["containers"]]}


def mounts(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["mountPath"]: m for m in container.get("volumeMounts", [])}


def volumes(docs: list[dict[str, Any]] = K8S) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in pod(docs)["volumes"]}


def flags(args: list[str]) -> dict[str, str]:
    return dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)


def git_sync_settings(container: dict[str, Any], docs: list[dict[str, Any]] = K8S) -> dict[str, str]:
    names = [e["configMapRef"]["name"] for e in container.get("envFrom", [])]
    data: dict[str, str] = {}
    for m in docs:
        if m["kind"] == "ConfigMap" and m["metadata"]["name"] in names:
            data |= m["data"]
    return data


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("version", sorted({all_versions()[0], all_versions()[-1]}))
def test_every_rendered_manifest_validates_against_the_kubernetes_schemas(version: str, variant: str) -> None:
    for manifest in VARIANTS[variant]:
        kubernetes_validate.validate(manifest, version, strict=True)


def test_the_schemas_refuse_a_misspelled_field() -> None:
    wrong = json.loads(json.dumps(one("Deployment")))
    wrong["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, all_versions()[-1], strict=True)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_kustomization_lists_every_manifest_beside_it_and_names_are_unique(variant: str) -> None:
    directory = {"base": BASE, "postgresql": OVERLAY}[variant]
    k = yaml.safe_load((directory / "kustomization.yaml").read_text())
    listed = [r for r in k["resources"] if not (directory / r).is_dir()] + [p["path"] for p in k.get("patches", [])]
    assert sorted(listed) == sorted(p.name for p in directory.glob("*.yaml") if p.name != "kustomization.yaml")
    keys = [(m["kind"], m["metadata"]["name"]) for m in VARIANTS[variant]]
    assert len(keys) == len(set(keys))


def secret_keys(docs: list[dict[str, Any]]) -> dict[str, set[str]]:
    return {m["metadata"]["name"]: {*m.get("data", {}), *m.get("stringData", {})}
            for m in docs if m["kind"] == "Secret"}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_what_the_pod_refers_to_exists_and_the_service_selects_it(variant: str) -> None:
    docs = VARIANTS[variant]
    names = {(m["kind"], m["metadata"]["name"]) for m in docs}
    secrets = secret_keys(docs)
    for c in containers(docs).values():
        for e in c.get("envFrom", []):
            assert ("ConfigMap", e["configMapRef"]["name"]) in names
        for e in c.get("env", []):
            if "secretKeyRef" in e.get("valueFrom", {}):
                ref = e["valueFrom"]["secretKeyRef"]
                assert ref["key"] in secrets[ref["name"]], e
        for m in c.get("volumeMounts", []):
            assert m["name"] in volumes(docs)
    for v in volumes(docs).values():
        if "persistentVolumeClaim" in v:
            assert ("PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"]) in names
        if "secret" in v:
            assert {i["key"] for i in v["secret"].get("items", [])} <= secrets[v["secret"]["secretName"]]
    deployment, service = one("Deployment", docs), one("Service", docs)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    port_names = {p["name"] for c in containers(docs).values() for p in c.get("ports", [])}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_git_sync_clones_once_in_an_init_container_before_the_reconciler_starts_then_keeps_it_current(
        variant: str) -> None:
    docs = VARIANTS[variant]
    c = containers(docs)
    init, sidecar, rec = c["git-sync-init"], c["git-sync"], c["reconciler"]
    assert [i["name"] for i in pod(docs)["initContainers"]] == ["git-sync-init"]
    assert init["image"] == sidecar["image"]
    assert init["args"] == ["--one-time"]  # exits after the first sync: the link exists before the reconciler
    assert "--one-time" not in sidecar.get("args", [])
    settings = git_sync_settings(init, docs)
    assert settings == git_sync_settings(sidecar, docs), "the clone and the sidecar must sync the same thing"
    assert set(settings) <= GIT_SYNC_VARIABLES, set(settings) - GIT_SYNC_VARIABLES
    assert {"GITSYNC_REPO", "GITSYNC_ROOT", "GITSYNC_LINK"} <= set(settings)
    root, link = settings["GITSYNC_ROOT"], settings["GITSYNC_LINK"]
    for git_sync in (init, sidecar):
        assert mounts(git_sync)[root]["name"] == "git"
        assert not mounts(git_sync)[root].get("readOnly", False)
    assert mounts(rec)[root] == {"name": "git", "mountPath": root, "readOnly": True}
    assert flags(rec["args"])["dir"].startswith(f"{root}/{link}/")
    assert "emptyDir" in volumes(docs)["git"]


def effective(container: dict[str, Any], docs: list[dict[str, Any]] = K8S) -> dict[str, Any]:
    """The container's security context over the pod's (the fields both may set)."""
    return {**pod(docs).get("securityContext", {}), **container.get("securityContext", {})}


EVERY_CONTAINER = [(variant, name) for variant in sorted(VARIANTS) for name in sorted(containers(VARIANTS[variant]))]


@pytest.mark.parametrize(("variant", "name"), EVERY_CONTAINER)
def test_every_container_is_restricted_and_writes_only_to_its_volumes(variant: str, name: str) -> None:
    docs = VARIANTS[variant]
    c = containers(docs)[name]
    sc = effective(c, docs)
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] != 0
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not sc.get("privileged", False)
    assert "emptyDir" in volumes(docs)[mounts(c)["/tmp"]["name"]], "a read-only root needs a writable /tmp"
    assert not any("hostPath" in v for v in volumes(docs).values())
    assert pod(docs)["automountServiceAccountToken"] is False


@pytest.mark.parametrize(("variant", "name"), EVERY_CONTAINER)
def test_every_container_requests_cpu_and_memory_and_is_limited_in_memory(variant: str, name: str) -> None:
    resources = containers(VARIANTS[variant])[name]["resources"]
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


def test_the_postgresql_overlay_runs_three_replicas_that_roll_one_at_a_time_without_a_claim() -> None:
    deployment = one("Deployment", POSTGRESQL)["spec"]
    assert deployment["replicas"] == 3
    # Replicas share the ledger, so pods may overlap; Recreate would stop all three at every rollout.
    assert deployment["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}}
    assert not [d for d in POSTGRESQL if d["kind"] == "PersistentVolumeClaim"]
    assert not [v for v in volumes(POSTGRESQL).values() if "persistentVolumeClaim" in v]
    assert "/data" not in mounts(containers(POSTGRESQL)["reconciler"])
    # Everything else is the base's: the image, probes, resources, security context, the other containers.
    rec, base_rec = containers(POSTGRESQL)["reconciler"], containers()["reconciler"]
    for field in ("image", "ports", "livenessProbe", "readinessProbe", "resources", "securityContext"):
        assert rec[field] == base_rec[field], field
    assert {k: v for k, v in containers(POSTGRESQL).items() if k != "reconciler"} == \
        {k: v for k, v in containers().items() if k != "reconciler"}


def test_the_postgresql_overlay_takes_the_url_and_the_password_from_a_secret_never_from_a_literal() -> None:
    rec = containers(POSTGRESQL)["reconciler"]
    assert "ledger" not in flags(rec["args"]), "--ledger would win over RECONCILER_LEDGER"
    assert rec["args"] == [a for a in containers()["reconciler"]["args"] if not a.startswith("--ledger")]
    env = {e["name"]: e for e in rec["env"]}
    ref = env[LEDGER_ENV]["valueFrom"]["secretKeyRef"]
    secret = one("Secret", [d for d in POSTGRESQL if d["metadata"]["name"] == ref["name"]])
    url = urlsplit(secret["stringData"][ref["key"]])
    assert url.scheme == "postgresql"
    assert url.hostname
    assert url.username
    assert url.password is None, "a password in the URL would win over the file"
    # The password file: a key of the same Secret, mounted read-only where the variable says.
    path = Path(env[PASSWORD_FILE_ENV]["value"])
    mount = mounts(rec)[str(path.parent)]
    assert mount["readOnly"] is True
    source = volumes(POSTGRESQL)[mount["name"]]["secret"]
    assert source["secretName"] == ref["name"]
    assert [i["path"] for i in source["items"] if i["key"] == "password"] == [path.name]
    password = secret["stringData"]["password"]
    # Never in a literal: no env value, argument or ConfigMap of any container holds it or a URL with one.
    literals = [str(e.get("value", "")) for c in containers(POSTGRESQL).values() for e in c.get("env", [])]
    literals += [a for c in containers(POSTGRESQL).values() for a in c.get("args", [])]
    literals += [str(v) for d in POSTGRESQL if d["kind"] == "ConfigMap" for v in d["data"].values()]
    assert not [x for x in literals if password in x or "postgresql://" in x]


def test_the_postgresql_overlay_spreads_replicas_over_nodes_and_its_disruption_budget_selects_them() -> None:
    deployment = one("Deployment", POSTGRESQL)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    anti = pod(POSTGRESQL)["affinity"]["podAntiAffinity"]
    assert set(anti) == {"preferredDuringSchedulingIgnoredDuringExecution"}  # a small cluster still runs all three
    [term] = anti["preferredDuringSchedulingIgnoredDuringExecution"]
    assert 1 <= term["weight"] <= 100
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= labels.items()
    budget = one("PodDisruptionBudget", POSTGRESQL)["spec"]
    assert budget["maxUnavailable"] == 1  # follows the replica count (see disruption-budget.yaml)
    assert "minAvailable" not in budget
    assert budget["selector"]["matchLabels"].items() <= labels.items()
    assert budget["selector"] == deployment["spec"]["selector"]  # its pods, and only those


@pytest.mark.parametrize(("kustomization", "why"), [
    ("namePrefix: x-\n", "teach kustomize() the new fields"),
    ("patches: [{path: p.yaml, target: {kind: Deployment}}]\n", "teach kustomize() patches by"),
    ("patches: [{path: ports.yaml}]\n", "teach kustomize() how this list merges"),
    ("patches: [{path: null.yaml}]\n", "teach kustomize() this directive"),
    ("patches: [{path: gone.yaml}]\n", "nothing to delete"),
])
def test_kustomize_refuses_what_it_does_not_render(tmp_path: Path, kustomization: str, why: str) -> None:
    (tmp_path / "kustomization.yaml").write_text(f"resources: [{BASE}]\n{kustomization}")
    head = "kind: Deployment\nmetadata: {name: schedule-reconciler}\nspec:\n  template:\n    spec:\n"
    (tmp_path / "ports.yaml").write_text(head + "      containers: [{name: reconciler, ports: [{containerPort: 9}]}]\n")
    (tmp_path / "null.yaml").write_text(head + "      affinity: null\n")
    (tmp_path / "gone.yaml").write_text(head + "      volumes: [{name: nothing, $patch: delete}]\n")
    with pytest.raises(AssertionError, match=re.escape(why)):
        kustomize(tmp_path)


@pytest.mark.parametrize("directory", [BASE, OVERLAY], ids=["base", "postgresql"])
def test_kustomize_renders_what_kubectl_kustomize_renders(directory: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: kustomize() is checked against its kustomize where it is")
    done = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr

    def by_name(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
        return {(d["kind"], d["metadata"]["name"]): d for d in docs}  # kustomize sorts them by kind

    assert by_name(kustomize(directory)) == by_name([d for d in yaml.safe_load_all(done.stdout) if d])


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_grace_period_covers_the_reconcilers_own(variant: str) -> None:
    # --grace default 25s, then SIGKILL of jobs
    assert pod(VARIANTS[variant])["terminationGracePeriodSeconds"] >= 25 + 5


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
