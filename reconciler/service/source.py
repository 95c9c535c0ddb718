"""Reading the schedules directory into a Snapshot, fast, and safely beside git-sync.

git-sync publishes a revision by swapping a symlink to a new worktree, then deletes the old one.
So when the directory is (or lies under) a symlink we watch the link's parent, re-resolve the
link on every event, load the whole tree it points to, and discard a load during which the link
moved. A deleted old worktree is never read as "every schedule removed".
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from reconciler.core.loader import SUFFIXES, FileResult, Loader, LoadResult, PathError, combine

_HEX = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?\Z")


@dataclass(frozen=True)
class Snapshot:
    """The directory at one moment: every file's result, and the revision id."""

    result: LoadResult
    revision: str
    target: Path  # the resolved directory that was read


def find_link(directory: Path) -> Path | None:
    """The deepest symlink among `directory` and its ancestors, if any."""
    path = Path(os.path.abspath(directory))
    found = None
    for parent in [*reversed(path.parents), path]:
        if parent.is_symlink():
            found = parent
    return found


class DirectorySource:
    def __init__(self, directory: str | Path, loader: Loader | None = None) -> None:
        self.directory = Path(directory)
        self.loader = loader or Loader()
        self.link = find_link(self.directory)
        self._cache: dict[tuple[str, str], FileResult] = {}
        self._files: dict[str, tuple[str, FileResult]] = {}  # relative path -> (digest, result)
        self._target: Path | None = None
        self._git: bool | None = None

    @property
    def watch_path(self) -> Path:
        """What to watch: the link's parent under git-sync, else the directory itself."""
        return self.link.parent if self.link is not None else self.directory

    def resolve(self) -> Path:
        try:
            target = self.directory.resolve(strict=True)
        except (FileNotFoundError, RuntimeError) as e:
            raise PathError(f"{self.directory}: no such directory") from e
        if not target.is_dir():
            raise PathError(f"{self.directory}: not a directory")
        return target

    def full(self, now: datetime) -> Snapshot:
        """Read the whole tree (unchanged files come from the content-keyed cache)."""
        for _ in range(5):
            target = self.resolve()
            files = self._read_tree(target, now)
            if self.resolve() == target:  # the link did not move while we read
                self._files, self._target = files, target
                self._cache = {(rel, d): r for rel, (d, r) in files.items()}
                return self._snapshot(target)
        raise PathError(f"{self.directory}: the link kept moving while it was read")

    def changed(self, paths: Iterable[str], now: datetime) -> Snapshot:
        """Re-read only the files named by watch events (a plain directory, same target)."""
        target = self.resolve()
        if self._target is None or target != self._target or self.link is not None:
            return self.full(now)
        for raw in paths:
            p = Path(raw)
            try:
                rel = p.relative_to(target).as_posix()
            except ValueError:
                try:
                    rel = p.relative_to(Path(os.path.abspath(self.directory))).as_posix()
                except ValueError:
                    continue
            if not _wanted(rel):
                if (target / rel).is_dir() or not (target / rel).exists():
                    return self.full(now)  # a directory came or went: rescan it whole
                continue
            try:
                data = (target / rel).read_bytes()
            except FileNotFoundError:
                self._files.pop(rel, None)
                continue
            except IsADirectoryError:
                return self.full(now)
            self._files[rel] = self._result(rel, data, now)
        return self._snapshot(target)

    def _read_tree(self, target: Path, now: datetime) -> dict[str, tuple[str, FileResult]]:
        files: dict[str, tuple[str, FileResult]] = {}
        for root, dirs, names in os.walk(target):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                if name.startswith(".") or not name.endswith(SUFFIXES):
                    continue
                full = Path(root) / name
                rel = full.relative_to(target).as_posix()
                try:
                    data = full.read_bytes()
                except FileNotFoundError:
                    continue  # deleted while we walked; the next event brings it up to date
                except OSError as e:
                    raise PathError(f"{full}: cannot read: {e.strerror}") from e
                files[rel] = self._result(rel, data, now)
        return files

    def _result(self, rel: str, data: bytes, now: datetime) -> tuple[str, FileResult]:
        digest = hashlib.sha1(data, usedforsecurity=False).hexdigest()
        hit = self._cache.get((rel, digest))
        if hit is None:
            hit = self.loader.load_bytes(str(self.directory / rel), data, now)
            self._cache[(rel, digest)] = hit
        return digest, hit

    def _snapshot(self, target: Path) -> Snapshot:
        ordered = [self._files[k] for k in sorted(self._files)]
        result = combine(r for _, r in ordered)
        return Snapshot(result, self._revision(target, ordered), target)

    def _revision(self, target: Path, ordered: list[tuple[str, FileResult]]) -> str:
        content = hashlib.sha256("".join(f"{r.path}\0{d}\n" for d, r in ordered).encode()).hexdigest()
        if self.link is not None and _HEX.match(target.name):  # git-sync names worktrees by commit
            return target.name
        if self.link is not None:
            for part in target.parts:
                if _HEX.match(part):
                    return part
        commit = self._git_head(target)
        if commit is None:
            return f"content:{content[:16]}"
        dirty = self._git_dirty(target)
        return f"{commit}+dirty.{content[:12]}" if dirty else commit

    def _git_head(self, target: Path) -> str | None:
        if self._git is False:
            return None
        try:
            out = subprocess.run(["git", "-C", str(target), "rev-parse", "HEAD"], capture_output=True, text=True,
                                 timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            self._git = False
            return None
        self._git = out.returncode == 0
        return out.stdout.strip() if self._git else None

    @staticmethod
    def _git_dirty(target: Path) -> bool:
        out = subprocess.run(["git", "-C", str(target), "status", "--porcelain", "--untracked-files=all", "--", "."],
                             capture_output=True, text=True, timeout=10, check=False)
        return bool(out.stdout.strip())


def _wanted(rel: str) -> bool:
    return rel.endswith(SUFFIXES) and not any(part.startswith(".") for part in rel.split("/"))
