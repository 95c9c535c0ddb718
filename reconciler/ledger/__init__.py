"""Storage of what happened: applied revisions, runs, and the replicas that claim them."""

from __future__ import annotations

from pathlib import Path

from reconciler.ledger.base import Ledger, LedgerError, NoSuchLedger

__all__ = ["Ledger", "LedgerError", "NoSuchLedger", "is_url", "open_ledger"]


def is_url(location: str | Path) -> bool:
    """A PostgreSQL URL, not a SQLite path (which may not exist yet)."""
    return str(location).startswith(("postgres://", "postgresql://"))


def open_ledger(location: str | Path, *, create: bool = True) -> Ledger:
    """The one way to open a ledger: a SQLite path, or a `postgres://` / `postgresql://` URL.

    With `create=False` a SQLite path must hold a ledger already, or NoSuchLedger is raised (a
    reading command given a mistyped path must not create one); a URL always names a database
    that exists, or opening it fails. Either way the schema is migrated to this version.
    """
    if is_url(location):
        from reconciler.ledger.postgres import PostgresLedger

        return PostgresLedger(str(location))
    from reconciler.ledger.sqlite import SqliteLedger

    return SqliteLedger(location, create=create)
