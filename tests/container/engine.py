"""podman, as the container tests drive it: the image's name, the hardened run options, and what the
tests create, removed by id at the end even after a failure (never by a filter: other engineers'
containers share this podman)."""

from __future__ import annotations

import os
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "CONTAINERS_CONF": str(HERE / "containers.conf")}
IMAGE = "localhost/schedule-reconciler:test"
# What the Kubernetes example's securityContext asks for; /tmp is an emptyDir there.
HARDENED = ["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, env=ENV, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: exit {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def get(port: int, path: str) -> tuple[int, str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
    try:
        with opener.open(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""
    except OSError:
        return 0, ""


def unique_name() -> str:
    return f"reconciler-test-{uuid.uuid4().hex[:10]}"


class Made:
    """The containers and volumes of one test module. A container's id is read from its --cidfile,
    which podman writes when it creates the container: one that then fails to start is removed too."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._cidfiles: list[Path] = []
        self._volumes: list[str] = []

    def run(self, *args: str, timeout: float = 120) -> str:
        """`podman run --detach ARGS`; the container's id."""
        cidfile = self._directory / f"{uuid.uuid4().hex}.cid"
        self._cidfiles.append(cidfile)
        podman("run", "--detach", "--cidfile", str(cidfile), *args, timeout=timeout)
        return cidfile.read_text().strip()

    def volume(self) -> tuple[str, Path]:
        """A new named volume (a volume's name is its id): its name and its directory on the host."""
        name = unique_name()
        self._volumes.append(name)
        podman("volume", "create", name)
        return name, Path(podman("volume", "inspect", "--format", "{{.Mountpoint}}", name).stdout.strip())

    def remove(self) -> None:
        for cidfile in reversed(self._cidfiles):
            if cidfile.exists() and (cid := cidfile.read_text().strip()):
                podman("rm", "--force", "--time", "0", cid, check=False)
        for name in reversed(self._volumes):
            podman("volume", "rm", "--force", name, check=False)
