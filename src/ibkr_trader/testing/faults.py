"""Faults of our own components for the chaos suite and the protection drill (the simulator's
own faults are ``sim.faults``).

:func:`journal_disk_full`: every write to the journal fails the way SQLite fails on a full
disk (``SQLITE_FULL``, "database or disk is full"), through the journal's real error
translation; reads still work, as they do on a full disk.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

from ibkr_trader.journal import Journal
from ibkr_trader.journal import store as _store

__all__ = ["journal_disk_full"]

_SQLITE_FULL = 13


@contextlib.contextmanager
def journal_disk_full(journal: Journal) -> Iterator[None]:
    """While inside, every journal write raises the journal's "disk is full" error."""
    original = journal._write

    @contextlib.contextmanager
    def full(op: str) -> Iterator[sqlite3.Connection]:
        with _store._translated(journal._path, op, journal._busy_timeout):
            error = sqlite3.OperationalError("database or disk is full")
            error.sqlite_errorcode = _SQLITE_FULL
            raise error
        yield journal._conn  # pragma: no cover - never reached

    journal._write = full  # type: ignore[method-assign]
    try:
        yield
    finally:
        journal._write = original  # type: ignore[method-assign]
