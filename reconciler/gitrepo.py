"""Reading a directory as it was at a git ref, from git objects (no checkout, no work-tree change)."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from reconciler.core.loader import SUFFIXES
from reconciler.core.timerules import library_entry
from reconciler.core.yamlstrict import MAX_FILE_BYTES
from reconciler.ledger.base import Commit


class GitError(Exception):
    pass


def _git(cwd: Path, *args: str, data: bytes | None = None) -> bytes:
    try:
        out = subprocess.run(["git", "-C", str(cwd), *args], input=data, capture_output=True, timeout=60,
                             check=False)
    except FileNotFoundError as e:
        raise GitError("git is not installed") from e
    if out.returncode != 0:
        raise GitError(out.stderr.decode(errors="replace").strip() or f"git {args[0]} failed")
    return out.stdout


def files_at(directory: str | Path, ref: str) -> dict[str, bytes]:
    """Schedule files under `directory` at `ref`: relative path -> content."""
    d = Path(os.path.abspath(directory))
    probe = d if d.is_dir() else d.parent
    top = Path(_git(probe, "rev-parse", "--show-toplevel").decode().strip())
    try:
        commit = _git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").decode().strip()
    except GitError as e:  # --quiet: git says nothing of why
        raise GitError(f"no commit {ref!r} in the repository at {top}") from e
    prefix = os.path.relpath(d.resolve() if d.exists() else d, top.resolve())
    prefix = "" if prefix == "." else prefix.replace(os.sep, "/") + "/"
    listing = _git(top, "ls-tree", "-r", "-z", "--long", "--full-tree", commit, "--", prefix or ".")
    blobs: list[tuple[str, str]] = []
    out: dict[str, bytes] = {}
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        meta, path = entry.decode().split("\t", 1)
        _, kind, sha, size = meta.split()
        rel = path[len(prefix):]
        wanted = rel.endswith(SUFFIXES) or library_entry(rel) is not None  # calendars/NAME.ics too
        if kind != "blob" or not wanted or any(p.startswith(".") for p in rel.split("/")):
            continue
        if int(size) > MAX_FILE_BYTES:  # refused by its size: read no more of it than a file on disk
            out[rel] = _head(top, sha, MAX_FILE_BYTES + 1)
        else:
            blobs.append((rel, sha))
    if not blobs:
        return out
    raw = _git(top, "cat-file", "--batch", data="".join(f"{sha}\n" for _, sha in blobs).encode())
    pos = 0
    for rel, _ in blobs:
        header_end = raw.index(b"\n", pos)
        length = int(raw[pos:header_end].split()[2])
        out[rel] = raw[header_end + 1:header_end + 1 + length]
        pos = header_end + 1 + length + 1
    return out


def _head(cwd: Path, sha: str, limit: int) -> bytes:
    """The first `limit` bytes of a blob, without reading the rest."""
    with subprocess.Popen(["git", "-C", str(cwd), "cat-file", "blob", sha], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL) as proc:
        assert proc.stdout is not None
        data = proc.stdout.read(limit)
        proc.kill()
    return data


_AUTHOR = re.compile(rb"author (.*) <(.*)> (-?[0-9]+) ([+-])([0-9]{2})([0-9]{2})")


def commit_info(directory: str | Path, sha: str) -> Commit:
    """The author, author time and subject of a commit, read from its object (`git cat-file`)."""
    d = Path(os.path.abspath(directory))
    raw = _git(d if d.is_dir() else d.parent, "cat-file", "commit", sha)
    head, _, message = raw.partition(b"\n\n")
    for line in head.split(b"\n"):
        m = _AUTHOR.fullmatch(line)
        if m:
            name, email, seconds, sign, hours, minutes = m.groups()
            offset = timedelta(hours=int(hours), minutes=int(minutes)) * (-1 if sign == b"-" else 1)
            at = datetime.fromtimestamp(int(seconds), timezone(offset)).astimezone(UTC)
            break
    else:
        raise GitError(f"commit {sha}: no author line")
    # As git's %s: the first paragraph of the message, its lines joined by spaces.
    subject = " ".join(message.decode("utf-8", "replace").strip().split("\n\n")[0].split())
    return Commit(sha, name.decode("utf-8", "replace"), email.decode("utf-8", "replace"), at, subject)
