"""The audit trail: who changed which schedule, when, and how, from git.

For each revision the daemon records, `record` compares it with the revision the ledger held before
(not with what this process had live, so a restart is not "every schedule added") and keeps the
plan beside the commit's author, time and subject, read from git's objects as `plan --base` reads
files (reconciler/gitrepo.py). `history` and `change_dict` are what the API and `reconciler audit`
show.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from reconciler.core.describe import utc_text
from reconciler.core.plan import plan
from reconciler.ledger.base import AppliedRevision, AuditRecord, Ledger, SpecChange

_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


def changes(previous: AppliedRevision | None, hashes: Mapping[str, str], spec: Callable[[str], dict[str, Any]],
            ledger: Ledger, *, against: tuple[Mapping[str, str], Collection[str]] | None = None) -> list[SpecChange]:
    """What a revision of `hashes` did, compared with `previous` (None: the first revision).

    `against`: instead of `previous`, the hashes of the revision before and the only names that
    may differ from it (what the daemon planned): O(those names), not O(every schedule)."""
    if against is not None:
        old_hashes, names = against
    else:
        old_hashes = previous.hashes if previous is not None else {}
        names = hashes.keys() | old_hashes.keys()
    differ = {n for n in names if n in hashes and old_hashes.get(n) != hashes[n]}
    old = ledger.specs({n: old_hashes[n] for n in differ if n in old_hashes})
    new = {n: spec(n) for n in differ}
    gone: dict[str, dict[str, Any]] = {n: {} for n in names if n in old_hashes and n not in hashes}
    the_plan = plan(new, {**old, **gone}, desired_hashes={n: hashes[n] for n in new},
                    applied_hashes={**{n: old_hashes[n] for n in old}, **dict.fromkeys(gone, "")})
    out = [SpecChange(c.name, c.action.value,
                      tuple({"path": f.path, "old": f.old if f.old_present else None,
                             "new": f.new if f.new_present else None} for f in c.fields))
           for c in the_plan.changes()]
    return sorted(out, key=lambda c: c.schedule)


def record(ledger: Ledger, seq: int, revision: str, applied_at: datetime, previous: AppliedRevision | None,
           hashes: Mapping[str, str], spec: Callable[[str], dict[str, Any]], directory: str | Path, *,
           against: tuple[Mapping[str, str], Collection[str]] | None = None) -> None:
    """Keep revision `seq`'s plan and, when the revision is a commit, who made it."""
    commit = None
    if _SHA.fullmatch(revision):  # not "content:…" (no git) nor "…+dirty.…" (uncommitted edits)
        from reconciler.gitrepo import GitError, commit_info

        try:
            commit = commit_info(directory, revision)
        except GitError:
            commit = None  # e.g. git-sync's shallow clone pruned it: the plan is kept all the same
    ledger.record_audit(seq, revision, applied_at, commit, changes(previous, hashes, spec, ledger, against=against))


def change_dict(r: AuditRecord, change: SpecChange) -> dict[str, Any]:
    c = r.commit
    return {"seq": r.seq, "revision": r.revision, "applied_at": utc_text(r.applied_at),
            "commit": {"sha": c.sha, "author": c.author, "email": c.email, "authored_at": utc_text(c.authored_at),
                       "subject": c.subject} if c is not None else None,
            "action": change.action, "fields": list(change.fields)}


def history(ledger: Ledger, name: str, limit: int = 100) -> dict[str, Any]:
    return {"schedule": name, "changes": [change_dict(r, c) for r in ledger.audit(name, limit=limit)
                                          for c in r.changes]}
