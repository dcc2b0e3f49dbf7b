"""Opening what is not ours, damaged, locked, read-only or of another mode: clear, harmless."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ibkr_trader.journal import (
    SCHEMA_VERSION,
    Journal,
    JournalCorruptError,
    JournalError,
    JournalLockedError,
    JournalModeError,
    JournalReadOnlyError,
    JournalSchemaError,
    NotAJournalError,
    default_journal_path,
)
from ibkr_trader.models import ExecutionMode, TradeRequest, ValidationResult

DRY = ExecutionMode.DRY_RUN


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _populated(path: Path) -> Path:
    with Journal.open(path, DRY) as j:
        for i in range(50):
            j.record_event("e", {"i": i, "pad": "x" * 200})
    return path


def test_random_bytes_are_refused_and_left_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite3"
    path.write_bytes(os.urandom(8192))
    before = _digest(path)
    with pytest.raises(NotAJournalError, match="not an ibkr-trader journal"):
        Journal.open(path, DRY)
    assert _digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.sqlite3"]


def test_another_sqlite_database_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    other.execute("INSERT INTO meta VALUES ('magic', 'something else')")
    other.commit()
    other.close()
    before = _digest(path)
    with pytest.raises(NotAJournalError, match="SQLite database but not"):
        Journal.open(path, DRY)
    assert _digest(path) == before


def test_sqlite_with_our_application_id_but_no_meta_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fake.db"
    from ibkr_trader.journal.schema import APPLICATION_ID

    other = sqlite3.connect(path)
    other.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    other.execute("CREATE TABLE t (x)")
    other.commit()
    other.close()
    with pytest.raises(NotAJournalError, match="meta"):
        Journal.open(path, DRY)


def test_a_directory_is_not_a_journal(tmp_path: Path) -> None:
    with pytest.raises(NotAJournalError):
        Journal.open(tmp_path, DRY)


def test_empty_file_becomes_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite3"
    path.touch()
    with Journal.open(path, DRY) as j:
        assert j.schema_version() == SCHEMA_VERSION


def test_corrupt_file_gives_a_clear_error_and_is_not_modified(tmp_path: Path) -> None:
    path = _populated(tmp_path / "j.sqlite3")
    data = bytearray(path.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    for offset in range(page_size, len(data), 7):  # scribble over every page after the first
        data[offset] = 0xA5
    path.write_bytes(bytes(data))
    before = _digest(path)
    with pytest.raises(JournalCorruptError, match="damaged"):
        Journal.open(path, DRY)
    assert _digest(path) == before


def test_locked_database_gives_a_clear_error_within_the_busy_timeout(
    tmp_path: Path, make_request: Callable[..., TradeRequest]
) -> None:
    path = tmp_path / "j.sqlite3"
    journal = Journal.open(path, DRY, busy_timeout=0.2)
    journal.record_event("before", {})
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        with pytest.raises(JournalLockedError, match="locked by another"):
            journal.record_event("blocked", {})
        assert time.monotonic() - started < 5.0  # bounded by the busy timeout, not a hang
        with pytest.raises(JournalLockedError):
            journal.record_intent(make_request(), decision_id=None)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    journal.record_event("after", {})
    assert [e.kind for e in journal.events()] == ["before", "after"]
    assert journal.orders() == []
    journal.close()


def test_read_only_file_is_refused_for_writing_and_readable_read_only(tmp_path: Path) -> None:
    path = _populated(tmp_path / "j.sqlite3")
    before = _digest(path)
    path.chmod(0o444)
    try:
        with pytest.raises(JournalReadOnlyError, match="read-only"):
            Journal.open(path, DRY)
        with Journal.open(path, DRY, read_only=True) as j:
            assert len(j.events(limit=100)) == 50
        assert _digest(path) == before
    finally:
        path.chmod(0o644)


def test_read_only_handle_refuses_writes_and_loses_nothing(tmp_path: Path) -> None:
    path = _populated(tmp_path / "j.sqlite3")
    with Journal.open(path, DRY, read_only=True) as j:
        with pytest.raises(JournalReadOnlyError, match="nothing was written"):
            j.record_event("nope", {})
        assert len(j.events(limit=100)) == 50


def test_sqlite_readonly_error_is_translated(tmp_path: Path) -> None:
    path = _populated(tmp_path / "j.sqlite3")
    with Journal.open(path, DRY, read_only=True) as j:
        j._read_only = False  # pretend we thought it writable: SQLite itself must refuse
        with pytest.raises(JournalReadOnlyError):
            j.record_event("nope", {})
        assert len(j.events(limit=100)) == 50


def test_read_only_open_of_a_missing_journal_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="no journal at"):
        Journal.open(tmp_path / "missing.sqlite3", DRY, read_only=True)
    assert not (tmp_path / "missing.sqlite3").exists()


def test_a_dry_run_journal_is_refused_as_paper(tmp_path: Path) -> None:
    path = _populated(tmp_path / "j.sqlite3")
    before = _digest(path)
    with pytest.raises(JournalModeError, match="never mix"):
        Journal.open(path, ExecutionMode.PAPER)
    assert _digest(path) == before


def test_rows_of_another_mode_are_refused_even_if_meta_agrees(tmp_path: Path) -> None:
    path = _populated(tmp_path / "j.sqlite3")
    raw = sqlite3.connect(path)
    raw.execute("INSERT INTO events (mode, at, kind, detail_json) VALUES ('paper', 'x', 'k', '{}')")
    raw.commit()
    raw.close()
    with pytest.raises(JournalModeError, match="paper rows in events"):
        Journal.open(path, DRY)


def test_live_mode_has_no_journal(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="only dry_run and paper"):
        Journal.open(tmp_path / "j.sqlite3", ExecutionMode.LIVE)


def test_default_paths_are_separate_per_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IBKR_TRADER_HOME", str(tmp_path))
    dry, paper = default_journal_path(DRY), default_journal_path(ExecutionMode.PAPER)
    assert dry == tmp_path / "journal-dry_run.sqlite3"
    assert paper == tmp_path / "journal-paper.sqlite3"
    with Journal.open(None, DRY) as j:
        j.record_event("x", {})
        assert j.path == dry
    with Journal.open(None, ExecutionMode.PAPER) as j:
        assert j.events() == []
    monkeypatch.delenv("IBKR_TRADER_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_journal_path("paper") == tmp_path / "xdg" / "ibkr-trader" / (
        "journal-paper.sqlite3"
    )


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = _populated(tmp_path / "j.sqlite3")
    raw = sqlite3.connect(path)
    raw.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    raw.commit()
    raw.close()
    with pytest.raises(JournalSchemaError, match="newer"):
        Journal.open(path, DRY)


def test_new_journal_is_wal_full_sync_with_identity(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    with Journal.open(path, DRY) as j:
        conn = j._conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert j.integrity_check() == "ok"
    assert path.read_bytes()[68:72] == b"IBKJ"


def test_decision_json_survives_odd_metric_values(
    tmp_path: Path,
    make_request: Callable[..., TradeRequest],
    make_result: Callable[..., ValidationResult],
) -> None:
    with Journal.open(tmp_path / "j.sqlite3", DRY) as j:
        did = j.record_risk_decision(
            make_request(), make_result(risk_metrics={"s": {1, 2}, "o": object()})
        )
        found = j.decision(did)
    assert found is not None
    assert sorted(found.metrics["s"]) == [1, 2]
    assert "object" in found.metrics["o"]
