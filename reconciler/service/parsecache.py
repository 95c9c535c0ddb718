"""A persistent parse cache: each schedule file's checked values, keyed by its path and content
(git's blob id), kept beside the ledger so that a restart with an unchanged directory skips the
parse and the checks (the costly part of a load) and only builds records.

Only what a check cannot see change is kept: files without any problem. A one-time `at` is
warned about once it is in the past, so such a file's entry is used only until its `at` (and a
file whose `at` has no UTC offset, or cannot be read here, is not kept). The file says which reconciler wrote it:
a fingerprint of the code and schema that check files; another fingerprint, a file that cannot be
read or decoded, or any surprise in it, and it is ignored (never fatal) and written again.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import reconciler
from reconciler.core.loader import Checked, FileResult, ValidDocument
from reconciler.core.model import pack_spec

# Version 2: each spec is kept as the record's packed bytes (core.model.pack_spec), not a dict.
_MAGIC = b"reconciler-parse-cache 2\n"
CheckedValues = tuple[str, tuple[tuple[Any, ...], ...], tuple[ValidDocument, ...]]
# A valid document as kept: its spec packed (core.model.pack_spec), its line, index and spec hash.
PackedDocument = tuple[bytes, int, int, str]
# An entry: the values a check returned (no problems, so the second item is empty), each spec
# packed, and until when they hold.
Entry = tuple[str, tuple[tuple[Any, ...], ...], tuple[PackedDocument, ...], float]


def code_fingerprint() -> str:
    """What decides how a file is checked: the version, the core's and run kinds' code, and the
    bundled schema. Hashing ~300 KB of source costs about a millisecond."""
    root = Path(reconciler.__file__).parent
    h = hashlib.sha256(reconciler.__version__.encode())
    for sub in ("core", "kinds", "data"):
        for path in sorted((root / sub).rglob("*")):
            if path.suffix in (".py", ".json") and path.is_file():
                h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    h.update(str(marshal.version).encode())
    return h.hexdigest()


_FOREVER = float("inf")


def usable_until(checked: Checked) -> float | None:
    """Until when (a POSIX time) a check's result stays what a new check would say; None: never
    keep it."""
    if checked.problems:
        return None
    until = _FOREVER
    for spec, _, _, _ in checked.valid:
        schedule = spec.get("schedule")
        if isinstance(schedule, dict) and "at" in schedule:
            try:
                at = datetime.fromisoformat(str(schedule["at"]).replace("Z", "+00:00"))
            except ValueError:
                return None
            if at.tzinfo is None:
                return None
            until = min(until, at.timestamp())
    return until


class ParseCache:
    def __init__(self, path: Path | None, variant: str = "") -> None:
        self.path = path
        self.entries: dict[str, Entry] = {}
        self.changed = False
        self.ignored: str | None = None  # why the file on disk was not used, if it was not
        # The loader's options (strict cron) change what a check says, as the code does.
        self._fingerprint = f"{code_fingerprint()}:{variant}" if path is not None else ""

    @classmethod
    def beside(cls, ledger_path: Any, variant: str = "") -> ParseCache:
        """The cache of a ledger that is a file: `<ledger>.parse-cache`; none otherwise."""
        if isinstance(ledger_path, Path):
            return cls(ledger_path.with_name(ledger_path.name + ".parse-cache"), variant)
        return cls(None)

    def load(self) -> None:
        if self.path is None:
            return
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as e:
            self.ignored = f"cannot read: {e.strerror}"
            return
        try:
            if not data.startswith(_MAGIC):
                raise ValueError("not a parse cache")
            fingerprint, entries = marshal.loads(data[len(_MAGIC):])
            if fingerprint != self._fingerprint:
                self.ignored = "written by another version of the reconciler"
                return
            if not isinstance(entries, dict):
                raise ValueError("no entries")
            self.entries = entries
        except Exception as e:  # any damage: start empty, write it again
            self.entries = {}
            self.ignored = f"unreadable ({type(e).__name__})"

    @staticmethod
    def key(path: str, digest: str, defaults: str = "") -> str:
        """`defaults`: the key of the directory defaults the file was checked with (their paths
        and content hashes, core.defaults.chain_key): a cached spec is the merged one."""
        return f"{digest}\0{path}\0{defaults}" if defaults else f"{digest}\0{path}"

    def get(self, path: str, digest: str, now: datetime, defaults: str = "") -> Checked | None:
        values = self.entries.get(self.key(path, digest, defaults))
        if values is None:
            return None
        try:
            name, problems, valid, until = values
            if problems or now.timestamp() >= until:
                return None
            return Checked(name, (), tuple((marshal.loads(packed), line, index, digest)
                                           for packed, line, index, digest in valid))
        except Exception:  # a damaged entry: check the file again
            return None

    def release(self) -> None:
        """After the start-up load: forget the entries read (they would hold a tuple and a key per
        file for the life of the process). Files changed while the daemon runs are checked again
        at the next start, and written then."""
        self.entries, self.changed = {}, False

    def put(self, path: str, digest: str, checked: Checked, defaults: str = "") -> None:
        """Keep one file's check (tests and tools; the daemon writes its index with `save`)."""
        if self.path is not None and (until := usable_until(checked)) is not None:
            valid = tuple((pack_spec(spec), line, index, h) for spec, line, index, h in checked.valid)
            self.entries[self.key(path, digest, defaults)] = (checked.path, (), valid, until)
            self.changed = True

    def entry(self, path: str, digest: str, result: FileResult, defaults: str = "") -> tuple[str, Entry] | None:
        """What to keep of a loaded file, rebuilt from its records (the same values its check
        returned): nothing for a file with problems or names not built."""
        if result.problems or result.unbuilt:
            return None
        # The records' packed specs are kept as they are; only a one-time `at` is unpacked, to judge
        # until when the entry holds.
        valid = tuple((s.packed_spec, s.source.line, s.source.document, s.spec_hash) for s in result.schedules)
        timed = tuple((s.spec, 0, 0, "") for s in result.schedules if s.timing.at is not None)
        until = usable_until(Checked(result.path, (), timed))
        return None if until is None else (self.key(path, digest, defaults), (result.path, (), valid, until))

    def save(self, wanted: dict[str, Entry]) -> None:
        """Write these entries, atomically (another thread may call this: `wanted` is its own);
        errors ignored (a read-only volume only costs the next start its speed)."""
        if self.path is None:
            return
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(_MAGIC)
                marshal.dump((self._fingerprint, wanted), fh)
            os.replace(tmp, self.path)
        except (OSError, ValueError):
            with contextlib.suppress(OSError):
                tmp.unlink()
