"""Storage of what happened: applied revisions and runs."""

from __future__ import annotations

from pathlib import Path

from reconciler.ledger.base import Ledger, LedgerError


def open_ledger(location: str | Path) -> Ledger:
    """A ledger from a path (SQLite). A PostgreSQL URL will select that backend when it exists."""
    text = str(location)
    if text.startswith(("postgres://", "postgresql://")):
        raise LedgerError(f"{text.split('@')[-1]}: the PostgreSQL ledger is not available yet; use a SQLite path")
    from reconciler.ledger.sqlite import SqliteLedger

    return SqliteLedger(location)
