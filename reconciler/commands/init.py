"""`reconciler init [DIR]`: a new schedules repository, the same files as `examples/schedules-repo/`."""

from __future__ import annotations

import sys
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TextIO

from reconciler.errors import FatalError, UsageError


def scaffold() -> dict[str, bytes]:
    """Relative path -> bytes of every file of the template, shipped as package data."""
    out: dict[str, bytes] = {}

    def walk(node: Traversable, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            rel = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, rel + "/")
            elif child.is_file():
                out[rel] = child.read_bytes()

    walk(files("reconciler.data").joinpath("scaffold"), "")
    return out


def init(directory: str, force: bool = False, out: TextIO = sys.stdout) -> int:
    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise UsageError(f"{directory}: not a directory")
    template = scaffold()
    existing = [rel for rel in template if (root / rel).exists() or (root / rel).is_symlink()]
    if existing and not force:  # all or nothing: a half-written scaffold helps nobody
        raise FatalError(f"{directory}: {', '.join(existing)} already exist; nothing was written "
                         "(--force overwrites them)")
    try:
        for rel, data in template.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_symlink():  # replace the link itself, never write through it
                path.unlink()
            path.write_bytes(data)
            out.write(f"{'overwrote' if rel in existing else 'created'} {path}\n")
    except OSError as e:
        raise FatalError(f"{e.filename or directory}: {e.strerror}") from e
    out.write(f"next: edit {root / 'schedules'}, check with `reconciler validate {root / 'schedules'}`, "
              f"and read {root / 'README.md'} for the way from pull request to running job\n")
    return 0
