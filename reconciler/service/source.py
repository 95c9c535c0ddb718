"""Reading the schedules directory into a Snapshot, fast, and safely beside git-sync.

git-sync publishes a revision by swapping a symlink to a new worktree, then deletes the old one.
So when the directory is (or lies under) a symlink we watch the link's parent, re-resolve the
link on every event, load the whole tree it points to, and discard a load during which the link
moved. A deleted old worktree is never read as "every schedule removed".
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import marshal
import os
import re
import stat
import struct
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import immutables

from reconciler.core.defaults import DEFAULTS_FILE, Defaults, chain_for, chain_key, directory_of
from reconciler.core.deps import DepRef
from reconciler.core.loader import (
    SUFFIXES,
    Checked,
    FileResult,
    Loader,
    PathError,
    Skipped,
    build_file,
    library_file,
    list_tree,
    odd_entry,
    resolve,
)
from reconciler.core.model import Schedule
from reconciler.core.pools import POOLS, POOLS_FILE
from reconciler.core.problems import Problem, display_path
from reconciler.core.setrules import SetRules
from reconciler.core.timerules import (
    CALENDARS,
    LIBRARY_DIRS,
    Library,
    LibraryFile,
    build_library,
    library_entry,
    references,
)
from reconciler.core.yamlstrict import MAX_FILE_BYTES
from reconciler.service.parsecache import CheckedValues, ParseCache
from reconciler.service.parsecache import Entry as CacheEntry

_HEX = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?\Z")


@dataclass(frozen=True)
class Delta:
    """Which names may differ from the snapshot numbered `base` (the one before, of this source)."""

    base: int
    names: frozenset[str]


@dataclass(frozen=True)
class Snapshot:
    """The directory at one moment: valid schedules with unique names, every problem, the revision.

    The maps are persistent (immutables.Map): the next snapshot shares all but what changed, so a
    one-file change costs O(that file · log N), not a copy of every schedule."""

    schedules: Mapping[str, Schedule]
    hashes: Mapping[str, str]  # name -> spec hash, for the same names
    problems: tuple[Problem, ...]
    revision: str
    target: Path  # the resolved directory that was read
    files: int
    number: int = 0  # this source's snapshots are numbered in order
    delta: Delta | None = None  # None: compare everything (a whole read)
    graph: Mapping[str, DepRef] = field(default_factory=dict)  # who depends on whom (issue 18)


class _Index:
    """The directory's state kept up to date file by file, so one changed file costs O(that file):
    each file's result, the set rules over their schedules (core.setrules, the same rules
    validate applies), files with problems, and an order-independent content hash."""

    def __init__(self, selector: Mapping[str, str] | None = None) -> None:
        self.selector = selector  # `run --selector`: no dependency may cross it
        self.files: dict[str, tuple[str, FileResult]] = {}
        self.rules: SetRules[str] = SetRules()  # keyed by relative path
        self.problem_files: set[str] = set()
        self.skipped: dict[str, Problem] = {}  # entries named like schedules that are not read
        self.library: dict[str, tuple[str, LibraryFile]] = {}  # calendars/ and windows/ files by path
        self.content = 0
        # Every directory holding an indexed entry, with how many: "did a vanished path hold
        # files?" is one lookup, not a scan of every file.
        self.dirs: dict[str, int] = {}
        self.dirty: set[str] = set()  # names whose schedule may have changed since the last snapshot
        self.unique: immutables.Map[str, Schedule] = immutables.Map()
        self.hashes: immutables.Map[str, str] = immutables.Map()
        self.published = False
        # Windows and calendars: the schedules naming each shared item, as (file, name), so that
        # a changed calendar or windows file marks exactly those names dirty; the items changed
        # since the last snapshot; the library the published maps were resolved against; and the
        # problems of each name whose references cannot be resolved (left out of the maps).
        self.users: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self.library_changed: set[tuple[str, str]] = set()
        self.built: Library = Library()
        self.unresolved: dict[str, list[Problem]] = {}

    def adopt(self, old: _Index) -> None:
        """After a whole read of the same tree: start from the old index's published maps, with
        only the names whose schedule differs as dirty, so the step that follows plans what
        changed (an O(N) comparison here, but the maps stay shared with what is live)."""
        if not old.published:
            return
        self.unique, self.hashes, self.published = old.unique, old.hashes, True
        self.built, self.unresolved = old.built, dict(old.unresolved)
        new = self.rules.unique
        # Compared with the old set rules' schedules (as read), not the published ones (resolved
        # against the shared files); names the old index had not published yet are dirty too.
        self.dirty = {n for n, s in new.items() if old.rules.unique.get(n) is not s}
        self.dirty.update(n for n in old.rules.unique if n not in new)
        self.dirty.update(n for n in old.unique if n not in new)
        self.dirty.update(old.dirty)
        self.dirty.update(n for n in old.unresolved if n not in new)
        self.library_changed = set(old.library_changed)
        for rel in self.library.keys() | old.library.keys():
            mine, theirs = self.library.get(rel), old.library.get(rel)
            if (mine and mine[0]) != (theirs and theirs[0]):
                self.library_changed.add(_item_key(rel))

    def put_library(self, rel: str, entry: tuple[str, LibraryFile] | None) -> None:
        old = self.library.pop(rel, None)
        if old is not None:
            self.content = (self.content - _file_hash(rel, old[0])) % _MOD
            self._count_dirs(rel, -1)
        if entry is not None:
            self.library[rel] = entry
            self.content = (self.content + _file_hash(rel, entry[0])) % _MOD
            self._count_dirs(rel, 1)
        if (old and old[0]) != (entry and entry[0]):
            self.library_changed.add(_item_key(rel))

    def _use(self, rel: str, result: FileResult, step: int) -> None:
        for s in result.schedules:
            if s.shared or s.policy.pool is not None:
                # A pool's users follow pools.yaml as a whole: a pool removed there leaves them out.
                keys = [(k, n) for k, n, _ in references(s.spec)] + ([_POOLS_KEY] if s.policy.pool else [])
                for kind, name in keys:
                    users = self.users.setdefault((kind, name), set())
                    if step > 0:
                        users.add((rel, s.name))
                    else:
                        users.discard((rel, s.name))
                        if not users:
                            del self.users[(kind, name)]

    def skip(self, rel: str, problem: Problem) -> None:
        self.put(rel, None)
        self.skipped[rel] = problem
        self._count_dirs(rel, 1)

    def put(self, rel: str, entry: tuple[str, FileResult] | None) -> None:
        if self.skipped.pop(rel, None) is not None:
            self._count_dirs(rel, -1)
        old = self.files.pop(rel, None)
        if old is not None:
            self.content = (self.content - _file_hash(rel, old[0])) % _MOD
            self.problem_files.discard(rel)
            self.rules.remove(rel, old[1])
            self._use(rel, old[1], -1)
            self.dirty.update(name for name, _ in old[1].names)
            self._count_dirs(rel, -1)
        if entry is None:
            return
        self.files[rel] = entry
        self.content = (self.content + _file_hash(rel, entry[0])) % _MOD
        if entry[1].problems:
            self.problem_files.add(rel)
        self.rules.add(rel, entry[1])
        self._use(rel, entry[1], 1)
        self.dirty.update(name for name, _ in entry[1].names)
        self._count_dirs(rel, 1)

    def _count_dirs(self, rel: str, step: int) -> None:
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            n = self.dirs.get(d, 0) + step
            if n:
                self.dirs[d] = n
            else:
                self.dirs.pop(d, None)

    def holds_under(self, rel: str) -> bool:
        return rel.rstrip("/") in self.dirs

    def _rebuild_library(self) -> None:
        """After a calendar or windows file changed: the library again, and every name that refers
        to a changed item (or to a calendar that excludes one) marked dirty, to be resolved again."""
        if not self.library_changed and self.published:
            return
        files = [f for _, f in self.library.values()]
        self.built = build_library(files)
        changed = set(self.library_changed)
        # A last_business_day_of_month calendar depends on the calendars it excludes.
        changed.update((f.kind, f.name) for f in files if set(f.needs) & {n for k, n in changed if k == CALENDARS})
        self.library_changed.clear()
        for key in changed:
            self.dirty.update(name for _, name in self.users.get(key, ()))

    def _resolved(self, schedule: Schedule) -> Schedule | None:
        """The schedule with its windows and calendars; None (its problems kept) if it names a
        shared item that is missing or broken."""
        self.unresolved.pop(schedule.name, None)
        if not schedule.shared and schedule.policy.pool is None:
            return schedule
        ruled, problems = resolve((schedule,), self.built)
        if not ruled:
            self.unresolved[schedule.name] = problems
            return None
        return ruled[0]

    def publish(self) -> frozenset[str] | None:
        """Bring the persistent maps up to date with the set rules, for the names touched since
        the last call: O(those names · log N). Returns them, or None on the first call (all new)."""
        self._rebuild_library()
        if not self.published:
            self.published = True
            unique: dict[str, Schedule] = {}
            for name, read in self.rules.unique.items():
                if (schedule := self._resolved(read)) is not None:
                    unique[name] = schedule
            self.unique = immutables.Map(unique)
            self.hashes = immutables.Map({n: h for n, h in self.rules.hashes.items() if n in unique})
            self.dirty.clear()
            return None
        names = frozenset(self.dirty)
        self.dirty.clear()
        with self.unique.mutate() as mu, self.hashes.mutate() as hashes:
            for name in names:
                raw = self.rules.unique.get(name)
                if raw is None:
                    self.unresolved.pop(name, None)
                resolved = None if raw is None else self._resolved(raw)
                if resolved is None:
                    mu.pop(name, None)
                    hashes.pop(name, None)
                else:
                    mu[name], hashes[name] = resolved, self.rules.hashes[name]
            self.unique, self.hashes = mu.finish(), hashes.finish()
        return names

    def problems(self) -> tuple[Problem, ...]:
        out = [p for rel in sorted(self.problem_files | self.skipped.keys())
               for p in (self.files[rel][1].problems if rel in self.files else (self.skipped[rel],))]
        # Each repeated name's places in file order, as a fresh read lists them, whatever order
        # the events came in.
        out.extend(self.rules.problems())
        out.extend(self.rules.graph_problems(self.selector))
        out.extend(self.built.problems)
        # In file order, whatever order the names were resolved in.
        out.extend(sorted((p for ps in self.unresolved.values() for p in ps),
                          key=lambda p: (p.path, p.line, p.column, str(p.pointer))))
        return tuple(out)


_POOLS_KEY = (POOLS, POOLS)


def _item_key(rel: str) -> tuple[str, str]:
    entry = library_entry(rel)
    return entry if entry is not None else ("", rel)


_MOD = 2 ** 256


def _file_hash(rel: str, digest: str) -> int:
    # A name's bytes as on disk (and as git stores them), also where they are not UTF-8.
    return int.from_bytes(hashlib.sha256(os.fsencode(rel) + b"\0" + digest.encode()).digest(), "big")


@contextmanager
def quiet_gc() -> Iterator[None]:
    """Bulk loads build millions of long-lived objects: collecting cycles while they are built
    costs seconds for nothing. Afterwards they are frozen out of every later collection, so a
    collection during a small reconcile scans only new objects (one took 220 ms otherwise).
    No collection before freezing: a load makes almost no cyclic garbage, and a full pass over
    3M objects cost 180 ms of start-up."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def find_link(directory: Path) -> Path | None:
    """The deepest symlink among `directory` and its ancestors, if any."""
    path = Path(os.path.abspath(directory))
    found = None
    for parent in [*reversed(path.parents), path]:
        if parent.is_symlink():
            found = parent
    return found


class DirectorySource:
    def __init__(self, directory: str | Path, loader: Loader | None = None, cache: ParseCache | None = None,
                 selector: Mapping[str, str] | None = None) -> None:
        self.directory = Path(directory)
        self.loader = loader or Loader()
        self.cache = cache or ParseCache(None)
        self.cache_read = False  # the parse cache is read by the first load
        self.link = find_link(self.directory)
        self.selector = selector or None
        self._index = _Index(self.selector)
        self._target: Path | None = None
        self._git: GitView | None = None
        # The target whose git work tree (or absence of one) was looked up: outside git, once per
        # target, not one `git rev-parse` per reconcile.
        self._git_looked_up: Path | None = None
        self._number = 0
        # Each read file's inode, size and times when it was read: a whole read (the periodic
        # rescan, the watch's first tick) reads again only files whose stat differs.
        self._stats: dict[str, Stat] = {}
        self.last_load_parallel = False
        # Directory defaults (issue 18): by the relative directory they govern; and the chain key
        # each file's result was built with, so that a result is reused only under the same defaults.
        self._defaults: dict[str, Defaults] = {}
        self._chains: dict[str, str] = {}

    @property
    def watch_path(self) -> Path:
        """What to watch: the link's parent under git-sync, else the directory itself."""
        return self.link.parent if self.link is not None else self.directory

    def refresh(self) -> None:
        """Look for the link again: git-sync creates it after its first clone, which is often
        after we start, and a link found once must be followed however it came to exist."""
        self.link = find_link(self.directory)

    def available(self) -> bool:
        """Does the directory (through its link, if any) exist now?"""
        self.refresh()
        return os.path.isdir(self.directory)

    def waiting_path(self) -> Path:
        """The deepest existing ancestor of a missing directory: watched, not recursively, for
        the next part of the path (git-sync's link, typically) to appear."""
        path = Path(os.path.abspath(self.directory))
        for parent in path.parents:
            if parent.is_dir():
                return parent
        return Path(path.anchor)

    @property
    def watch_paths(self) -> list[Path]:
        """The watch path, and the git dir when the directory lies in a git work tree: a commit
        changes the revision id without touching a schedule file."""
        paths = [self.watch_path]
        if self._git is not None and self.link is None:
            paths.append(self._git.git_dir)
            if self._git.common_dir != self._git.git_dir:
                paths.append(self._git.common_dir)
        return paths

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
        with quiet_gc():
            return self._full(now)

    def _full(self, now: datetime) -> Snapshot:
        self.refresh()
        for _ in range(5):
            target = self.resolve()
            files, skipped = self._read_tree(target, now)
            if self.resolve() == target:  # the link did not move while we read
                index = _Index(self.selector)
                for rel in sorted(files):
                    index.put(rel, files[rel])
                for rel, entry in self._read_library(target).items():
                    index.put_library(rel, entry)
                for s in skipped:
                    index.skip(s.rel, self._skipped(s.rel, s.message, s.severity))
                if self._target is not None:  # not after a failure (`forget`): then plan everything
                    index.adopt(self._index)
                self._index, self._target = index, target
                return self._snapshot(target)
        raise PathError(f"{self.directory}: the link kept moving while it was read")

    def rescan(self, now: datetime) -> Snapshot:
        """The periodic rescan (inotify may drop events): in a plain directory read before, the
        paths whose listing or stat differ are read again as their events would have been
        (`changed`), so an unchanged tree costs a listing and a stat per file, not a rebuilt
        index. Anything out of the ordinary (a link, an entry skipped or no longer skipped, a
        defaults file, a calendar or windows file that differs) is read whole, as before."""
        with quiet_gc():
            self.refresh()
            target = self.resolve()
            if self._target is None or target != self._target or self.link is not None:
                return self._full(now)
            listing, skipped = list_tree(target)
            index = self._index
            if {s.rel for s in skipped} != index.skipped.keys():
                return self._full(now)
            library = self._read_library(target)
            if {r: e[0] for r, e in library.items()} != {r: e[0] for r, e in index.library.items()}:
                return self._full(now)
            paths: list[str] = []
            listed: set[str] = set()
            for rel, path in listing:
                listed.add(rel)
                sig = self._stats.get(rel)
                if rel not in index.files or sig is None or not _same_stat(path, sig):
                    if _is_defaults(rel):
                        return self._full(now)
                    paths.append(path)
            for rel in index.files.keys() - listed:
                if _is_defaults(rel):
                    return self._full(now)
                paths.append(str(target / rel))
            return self.changed(paths, now)

    def forget(self) -> None:
        """After a failure mid-update: the next event reads the whole tree again."""
        self._target = None
        self._stats = {}

    def changed(self, paths: Iterable[str], now: datetime) -> Snapshot:
        """Re-read only the files named by watch events (a plain directory, same target)."""
        self.refresh()
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
            if library_entry(rel) is not None:  # a calendar or windows file: the schedules naming it follow
                self._index.put_library(rel, self._library_entry(rel, target))
                continue
            if not _wanted(rel):
                # An editor's temp file or a hidden file: ignore. A directory that appeared, or a
                # vanished path that held indexed files, is rescanned whole.
                if (target / rel).is_dir() or self._index.holds_under(rel):
                    return self.full(now)
                continue
            if (target / rel).is_dir():  # a directory named *.yaml: whatever it holds is read whole
                return self.full(now)
            odd = odd_entry(str(target / rel), str(target))
            if odd is not None:  # a link out of the tree, a FIFO, a device: said, never read
                self._index.skip(rel, self._skipped(rel, *odd))
                continue
            if _is_defaults(rel):
                self._defaults_changed(rel, target, now)
                continue
            data, sig = _read_stat(str(target / rel))
            self._remember(rel, sig)
            if data is None:  # gone, or not a regular file (as a full read would skip it)
                self._index.put(rel, None)
                continue
            self._index.put(rel, self._result(rel, data, now))
        return self._snapshot(target)

    # ---- directory defaults (issue 18) ---------------------------------------------------------------

    def _read_defaults(self, listing: list[tuple[str, str]]) -> dict[str, tuple[str, FileResult]]:
        """Check every defaults file of a listing first: the schedules below them are built with them."""
        found: dict[str, tuple[str, FileResult]] = {}
        self._defaults = {}
        for rel, path in listing:
            if _is_defaults(rel) and (data := _read(path)) is not None:
                found[rel] = self._check_defaults(rel, data)
        return found

    def _check_defaults(self, rel: str, data: bytes) -> tuple[str, FileResult]:
        shown = display_path(f"{self.directory}/{rel}")
        d, problems = self.loader.defaults_checker.check(shown, directory_of(rel), data)
        if d is None:
            self._defaults.pop(directory_of(rel), None)
        else:
            self._defaults[d.directory] = d
        return blob_id(data), FileResult(shown, (), tuple(problems))

    def _defaults_changed(self, rel: str, target: Path, now: datetime) -> None:
        """A defaults file changed: it, and every schedule file below it whose defaults changed,
        are read again; nothing else is."""
        data = _read(str(target / rel))
        if data is None:
            self._defaults.pop(directory_of(rel), None)
            self._index.put(rel, None)
        else:
            self._index.put(rel, self._check_defaults(rel, data))
        under = directory_of(rel)
        for f in [f for f in self._index.files if f.startswith(under) and not _is_defaults(f)]:
            if self._chains.get(f, "") == self._chain_key(f):
                continue
            fdata, sig = _read_stat(str(target / f))
            self._remember(f, sig)
            self._index.put(f, None if fdata is None else self._result(f, fdata, now))

    def _chain_key(self, rel: str) -> str:
        return chain_key(chain_for(rel, self._defaults)) if self._defaults else ""

    def _skipped(self, rel: str, message: str, severity: str) -> Problem:
        return Problem(display_path(f"{self.directory}/{rel}"), 1, 1, (), message,
                       "error" if severity == "error" else "warning")

    def _read_tree(self, target: Path, now: datetime) -> tuple[dict[str, tuple[str, FileResult]], list[Skipped]]:
        listing, skipped = list_tree(target)
        if not self.cache_read:
            self.cache_read = True
            self.cache.load()
        files: dict[str, tuple[str, FileResult]] = self._read_defaults(listing)
        listing = [entry for entry in listing if not _is_defaults(entry[0])]
        helper = _Helper.start(self, listing, now) if not self._index.files else None
        self.last_load_parallel = helper is not None
        mine = listing[: _split(len(listing))] if helper else listing
        old, self._stats = self._stats, {}
        indexed = self._index.files
        for i, (rel, path) in enumerate(mine):
            known, sig = indexed.get(rel), old.get(rel)
            if (known is not None and sig is not None and _same_stat(path, sig)
                    and self._chains.get(rel, "") == self._chain_key(rel)):  # and the same defaults
                files[rel] = known
                self._stats[rel] = sig
                continue
            data, sig = _read_stat(path)
            self._remember(rel, sig)
            if data is not None:
                files[rel] = self._result(rel, data, now)
            if helper is not None and i % 16 == 0:  # build what the helper has sent so far
                files.update(helper.arrived(self, now))
        if helper is not None:
            files.update(helper.rest(self, now))
        return dict(sorted(files.items())), skipped

    def _remember(self, rel: str, sig: Stat | None) -> None:
        if sig is None:
            self._stats.pop(rel, None)
        else:
            self._stats[rel] = sig

    def _read_library(self, target: Path) -> dict[str, tuple[str, LibraryFile]]:
        out: dict[str, tuple[str, LibraryFile]] = {}
        for kind in LIBRARY_DIRS:
            try:
                names = sorted(os.listdir(target / kind))
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as e:
                raise PathError(f"{target / kind}: cannot read: {e.strerror}") from e
            for name in names:
                rel = f"{kind}/{name}"
                if library_entry(rel) is not None and (entry := self._library_entry(rel, target)) is not None:
                    out[rel] = entry
        if (target / POOLS_FILE).is_file() and (entry := self._library_entry(POOLS_FILE, target)) is not None:
            out[POOLS_FILE] = entry
        return out

    def _library_entry(self, rel: str, target: Path) -> tuple[str, LibraryFile] | None:
        if odd_entry(str(target / rel), str(target)) is not None:
            return None  # a link out of the tree, a FIFO: never read
        data = _read(str(target / rel))
        if data is None:
            return None
        digest = blob_id(data)
        known = self._index.library.get(rel)
        if known is not None and known[0] == digest:
            return known
        parsed = library_file(rel, f"{self.directory}/{rel}", data, digest)
        return None if parsed is None else (digest, parsed)

    def _result(self, rel: str, data: bytes, now: datetime) -> tuple[str, FileResult]:
        digest = blob_id(data)
        chain = chain_for(rel, self._defaults) if self._defaults else ()
        key = chain_key(chain)
        # Keyed by content (and its defaults): an unchanged file (also in a new git-sync worktree)
        # is not parsed again.
        known = self._index.files.get(rel)
        if known is not None and known[0] == digest and self._chains.get(rel, "") == key:
            return known
        path = f"{self.directory}/{rel}"
        if key:
            self._chains[rel] = key
        else:
            self._chains.pop(rel, None)
        # A cached check holds the spec merged with its defaults: keyed by them too.
        checked = self.cache.get(path, digest, now, key)  # a file checked by an earlier process
        if checked is not None:
            return digest, build_file(checked)
        self.cache.changed = True
        return digest, self.loader.load_bytes(path, data, now, defaults=chain)

    def cache_entries(self) -> dict[str, CacheEntry]:
        """The parse cache's entries for the files indexed now, rebuilt from their records (what
        to write; call it where the index is updated, then write from any thread)."""
        out: dict[str, CacheEntry] = {}
        for rel, (digest, result) in self._index.files.items():
            if _is_defaults(rel):  # checked again at every load (they decide the others' keys)
                continue
            kept = self.cache.entry(f"{self.directory}/{rel}", digest, result, self._chains.get(rel, ""))
            if kept is not None:
                out[kept[0]] = kept[1]
        return out

    def library(self) -> Library:
        """The shared calendars and windows as last read (empty before the first read)."""
        return self._index.built

    def _snapshot(self, target: Path) -> Snapshot:
        index = self._index
        names = index.publish()
        base, self._number = self._number, self._number + 1
        delta = Delta(base, names) if names is not None else None
        # Only schedules with dependencies are in the graph: copied whole, it stays small.
        return Snapshot(index.unique, index.hashes, index.problems(), self._revision(target), target,
                        len(index.files), self._number, delta, dict(index.rules.graph))

    def _revision(self, target: Path) -> str:
        content = f"{self._index.content:064x}"
        if self.link is not None:  # git-sync names worktrees by their commit
            for part in reversed(target.parts):
                if _HEX.match(part):
                    return part
        if self._git_looked_up != target:
            self._git, self._git_looked_up = GitView.find(target), target
        if self._git is None:
            return f"content:{content[:16]}"
        commit, head_content = self._git.head()
        return commit if head_content == self._index.content else f"{commit}+dirty.{content[:12]}"


class GitView:
    """HEAD of the work tree a directory lies in, read from git's files (no process per reload),
    and the content accumulator of the directory at HEAD, computed once per commit."""

    def __init__(self, target: Path, git_dir: Path, common_dir: Path, prefix: str) -> None:
        self.target, self.git_dir, self.common_dir, self.prefix = target, git_dir, common_dir, prefix
        self._cache: tuple[str, int] | None = None

    @classmethod
    def find(cls, target: Path) -> GitView | None:
        try:
            out = subprocess.run(["git", "-C", str(target), "rev-parse", "--absolute-git-dir", "--git-common-dir",
                                  "--show-prefix"], capture_output=True, text=True, errors="surrogateescape",
                                 timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        lines = out.stdout.splitlines()
        if out.returncode != 0 or len(lines) < 2:
            return None
        git_dir = Path(lines[0])
        common = Path(lines[1]) if os.path.isabs(lines[1]) else (target / lines[1]).resolve()
        return cls(target, git_dir, common, lines[2] if len(lines) > 2 else "")

    def _commit(self) -> str | None:
        head = (self.git_dir / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        for base in (self.git_dir, self.common_dir):
            try:
                return (base / ref).read_text().strip()
            except FileNotFoundError:
                continue
        try:
            for line in (self.common_dir / "packed-refs").read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split()[0]
        except FileNotFoundError:
            pass
        return None  # an unborn branch

    def head(self) -> tuple[str, int | None]:
        commit = self._commit()
        if commit is None:
            return "unborn", None
        if self._cache is None or self._cache[0] != commit:
            self._cache = (commit, self._content_at(commit))
        return self._cache

    def _content_at(self, commit: str) -> int:
        out = subprocess.run(["git", "-C", str(self.target), "ls-tree", "-r", "-z", commit, "--", "."],
                             capture_output=True, timeout=30, check=False)
        total = 0
        for entry in out.stdout.split(b"\0"):
            if not entry:
                continue
            raw_meta, raw_path = entry.split(b"\t", 1)
            meta, path = raw_meta.decode(), os.fsdecode(raw_path)  # named as os.scandir names it
            _, kind, sha = meta.split()
            rel = path[len(self.prefix):] if path.startswith(self.prefix) else path
            if kind == "blob" and _wanted(rel):
                total = (total + _file_hash(rel, sha)) % _MOD
        return total


def blob_id(data: bytes) -> str:
    """git's object id of a file: the same digest whether it comes from disk or from git."""
    h = hashlib.sha1(b"blob %d\0" % len(data), usedforsecurity=False)
    h.update(data)
    return h.hexdigest()


# A file's device, inode, size, mtime and ctime in ns, packed: one per file for the life of the
# process, and a tuple of five large ints is over three times the size.
Stat = bytes
_STAT = struct.Struct("=QQqqq")


def _stat_of(st: os.stat_result) -> Stat:
    return _STAT.pack(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
_SETTLED_NS = 2_000_000_000  # a file modified this recently may change again within its timestamp


def _read(path: str) -> bytes | None:
    return _read_stat(path)[0]


def _read_stat(path: str) -> tuple[bytes | None, Stat | None]:
    """A schedule file's bytes (at most one past the size limit); None when it is gone or is not
    a regular file: a FIFO named *.yaml would block the watch loop forever, a device never ends.
    With them, its stat as read, if it may stand for these bytes later: not for a file modified
    in the last seconds, which a write within the same timestamp could change unseen."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # opening a FIFO must not wait for a writer
    except FileNotFoundError:
        return None, None  # deleted while we walked; the next event brings it up to date
    except OSError as e:
        raise PathError(f"{path}: cannot read: {e.strerror}") from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, None
        data = _read_fd(fd, st.st_size)
    finally:
        os.close(fd)
    settled = time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > _SETTLED_NS
    return data, (_stat_of(st) if settled else None)


def _read_fd(fd: int, size: int) -> bytes:
    """At most MAX_FILE_BYTES + 1 bytes, asked for by the file's size: a buffered read of the
    limit allocates (and faults in) a whole MiB for every small file."""
    limit = MAX_FILE_BYTES + 1
    parts: list[bytes] = []
    total, want = 0, min(size + 1, limit)
    while total < limit:
        chunk = os.read(fd, min(want, limit - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
        want = 1 << 16  # it grew since fstat
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _same_stat(path: str, sig: Stat) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return _stat_of(st) == sig


PARALLEL_MIN_FILES = 2000


def _split(n: int) -> int:
    """How many files the parent reads itself: it also builds the records of the helper's share,
    so it takes a little less than half (measured: at 2/5 the parent waited 0.2-0.8 s for the
    helper; at 9/20 either may wait, by as much as this shared VM's noise)."""
    return n * 9 // 20


class _Helper:
    """The first load of a large tree uses a second core: a forked child reads and checks about
    half the files with the loader's own per-file check (`Loader.check_bytes`, the first half of
    `load_bytes`) and sends back what it returns, plain values that are cheap to send (parsed
    records are not: 10,000 of them took 1 s to unpickle). It sends them in chunks as it goes, and
    the parent builds records (`build_file`, the second half) from the chunks that have arrived
    between files of its own share, so no serial tail of building is left when the helper ends.
    Used only before any other thread exists, where fork is safe; otherwise everything is read here."""

    def __init__(self, conn: Any, proc: Any, files: list[tuple[str, str]]) -> None:
        self.conn, self.proc, self.files = conn, proc, files
        self.done: set[str] = set()
        self.open = True

    @classmethod
    def start(cls, source: DirectorySource, listing: list[tuple[str, str]], now: datetime) -> _Helper | None:
        import fcntl
        import multiprocessing
        import threading

        if (len(listing) < PARALLEL_MIN_FILES or (os.cpu_count() or 1) < 2 or threading.active_count() > 1
                or "fork" not in multiprocessing.get_all_start_methods()):
            return None
        theirs = listing[_split(len(listing)):]
        ctx = multiprocessing.get_context("fork")
        parent, child = ctx.Pipe(duplex=False)
        with contextlib.suppress(OSError, AttributeError):  # room for several chunks: the helper never waits
            fcntl.fcntl(child.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)
        proc = ctx.Process(target=_helper_main, args=(child, source.loader, str(source.directory), theirs, now,
                                                      source.cache, source._defaults), daemon=True)
        proc.start()
        child.close()
        return cls(parent, proc, theirs)

    def arrived(self, source: DirectorySource, now: datetime) -> Iterator[Entry]:
        """The files of the chunks that have arrived; does not wait."""
        while self.open and self.conn.poll():
            yield from self._chunk(source, now)

    def rest(self, source: DirectorySource, now: datetime) -> Iterator[Entry]:
        """Every file still to come; and if the helper died, its share read here."""
        while self.open:
            yield from self._chunk(source, now)
        self.proc.join()
        for rel, path in self.files:
            if rel not in self.done:
                data, sig = _read_stat(path)
                source._remember(rel, sig)
                if data is not None:
                    yield rel, source._result(rel, data, now)

    def _chunk(self, source: DirectorySource, now: datetime) -> Iterator[Entry]:
        try:
            payload: Chunk = marshal.loads(self.conn.recv_bytes())
        except EOFError:
            payload = []
        if not payload:  # the end (an empty chunk), or the helper died
            self.open = False
            self.conn.close()
            return
        for rel, digest, values, sig, cached in payload:
            if values is None:  # the helper could not read it: left to `rest`, which reads it here
                continue
            self.done.add(rel)
            source._remember(rel, sig)
            path, problems, valid = values
            if not cached:
                source.cache.changed = True
            key = chain_key(chain_for(rel, source._defaults)) if source._defaults else ""
            if key:
                source._chains[rel] = key
            yield rel, (digest, build_file(Checked(path, tuple(Problem(*p) for p in problems), valid)))


Entry = tuple[str, tuple[str, FileResult]]  # relative path, (blob id, result)
# What the helper sends for each file: relative path, blob id, what `Loader.check_bytes`
# returned as plain tuples (path, problems' fields, valid documents), None when the file could
# not be read there, so that the parent reads it and says why; and its stat as read.
Chunk = list[tuple[str, str, CheckedValues | None, Stat | None, bool]]  # and: was it in the cache?
_CHUNK = 200  # files a chunk: ~35 ms of the helper's work


def _helper_main(conn: Any, loader: Loader, directory: str, files: list[tuple[str, str]], now: datetime,
                 cache: ParseCache, defaults: Mapping[str, Defaults] | None = None) -> None:
    gc.disable()
    out: Chunk = []
    for rel, path in files:
        try:
            data, sig = _read_stat(path)
        except Exception:  # a file that cannot be read: the parent reads it again and says why
            out.append((rel, "", None, None, False))
            continue
        if data is not None:  # None: gone, or not a regular file; a full read here skips it too
            digest = blob_id(data)
            chain = chain_for(rel, defaults) if defaults else ()
            c = cache.get(f"{directory}/{rel}", digest, now, chain_key(chain))  # the fork's copy of the cache
            hit = c is not None
            if c is None:
                c = loader.check_bytes(f"{directory}/{rel}", data, now, defaults=chain)
            out.append((rel, digest, (c.path, tuple(_fields(p) for p in c.problems), c.valid), sig, hit))
        if len(out) >= _CHUNK:
            # marshal, not pickle: faster, and it keeps the parser's string interning across processes.
            conn.send_bytes(marshal.dumps(out))
            out = []
    if out:
        conn.send_bytes(marshal.dumps(out))
    conn.send_bytes(marshal.dumps([]))  # the end
    conn.close()


def _fields(p: Problem) -> tuple[Any, ...]:
    return p.path, p.line, p.column, p.pointer, p.message, p.severity, p.document


def _is_defaults(rel: str) -> bool:
    return rel == DEFAULTS_FILE or rel.endswith("/" + DEFAULTS_FILE)


def _wanted(rel: str) -> bool:
    parts = rel.split("/")
    if len(parts) > 1 and parts[0] in LIBRARY_DIRS:  # shared calendars and windows, not schedules
        return library_entry(rel) is not None
    return rel.endswith(SUFFIXES) and not any(part.startswith(".") for part in parts)
