"""Storage of what happened: applied revisions and runs."""

from __future__ import annotations

from pathlib import Path

from reconciler.ledger.base import Ledger, LedgerError

__all__ = ["Ledger", "LedgerError", "is_url", "open_ledger"]


def is_url(location: str | Path) -> bool:
    """A PostgreSQL URL, not a SQLite path (which may not exist yet)."""
    return str(location).startswith(("postgres://", "postgresql://"))


def open_ledger(location: str | Path) -> Ledger:
    """A ledger from a SQLite path or a `postgres://` / `postgresql://` URL."""
    if is_url(location):
        from reconciler.ledger.postgres import PostgresLedger

        return PostgresLedger(str(location))
    from reconciler.ledger.sqlite import SqliteLedger

    return SqliteLedger(location)
