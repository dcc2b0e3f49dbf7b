"""Forward-only migration from a schema v1 journal (the fixture is frozen here, not imported)."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import pytest

from ibkr_trader.journal import SCHEMA_VERSION, Journal, JournalSchemaError
from ibkr_trader.models import ExecutionMode, TradingState

APPLICATION_ID = 0x49424B4A

# The v1 layout exactly as v1 of ibkr-trader created it. Never edit: it is the fixture.
V1_SCHEMA = (
    """CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    """CREATE TABLE decisions (
        id INTEGER PRIMARY KEY,
        mode TEXT NOT NULL,
        at TEXT NOT NULL,
        approved INTEGER NOT NULL,
        symbol TEXT NOT NULL,
        contract_key TEXT NOT NULL,
        action TEXT NOT NULL,
        quantity INTEGER NOT NULL,
        strategy_id TEXT NOT NULL,
        signal_id TEXT NOT NULL,
        operator_id TEXT NOT NULL,
        client_order_id TEXT NOT NULL,
        is_closing INTEGER NOT NULL,
        trading_state TEXT NOT NULL,
        limits_hash TEXT NOT NULL,
        checks_json TEXT NOT NULL,
        reasons_json TEXT NOT NULL,
        metrics_json TEXT NOT NULL,
        request_json TEXT NOT NULL
    )""",
    """CREATE TABLE intents (
        id INTEGER PRIMARY KEY,
        mode TEXT NOT NULL,
        client_order_id TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        operator_id TEXT NOT NULL,
        decision_id INTEGER REFERENCES decisions(id),
        symbol TEXT NOT NULL,
        contract_key TEXT NOT NULL,
        sec_type TEXT NOT NULL,
        expiry TEXT NOT NULL,
        strike REAL NOT NULL,
        right TEXT NOT NULL,
        multiplier INTEGER NOT NULL,
        action TEXT NOT NULL,
        quantity INTEGER NOT NULL,
        order_type TEXT NOT NULL,
        limit_price REAL,
        strategy_id TEXT NOT NULL,
        signal_id TEXT NOT NULL,
        is_closing INTEGER NOT NULL
    )""",
    """CREATE TABLE order_state (
        client_order_id TEXT PRIMARY KEY REFERENCES intents(client_order_id),
        mode TEXT NOT NULL,
        broker_order_id INTEGER,
        perm_id INTEGER,
        status TEXT NOT NULL,
        filled REAL NOT NULL DEFAULT 0,
        remaining REAL,
        avg_price REAL,
        error_code INTEGER,
        error_text TEXT,
        is_final INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL
    )""",
    """CREATE TABLE status_changes (
        id INTEGER PRIMARY KEY,
        mode TEXT NOT NULL,
        client_order_id TEXT NOT NULL REFERENCES intents(client_order_id),
        at TEXT NOT NULL,
        status TEXT NOT NULL,
        filled REAL,
        remaining REAL,
        avg_price REAL,
        error_code INTEGER,
        error_text TEXT,
        detail_json TEXT NOT NULL
    )""",
    """CREATE TABLE fills (
        id INTEGER PRIMARY KEY,
        mode TEXT NOT NULL,
        exec_id TEXT NOT NULL UNIQUE,
        client_order_id TEXT,
        at TEXT NOT NULL,
        recorded_at TEXT NOT NULL,
        symbol TEXT NOT NULL,
        contract_key TEXT NOT NULL,
        side TEXT NOT NULL,
        quantity REAL NOT NULL,
        price REAL NOT NULL,
        broker_order_id INTEGER,
        perm_id INTEGER,
        simulated INTEGER NOT NULL
    )""",
    """CREATE TABLE closures (
        id INTEGER PRIMARY KEY,
        mode TEXT NOT NULL,
        at TEXT NOT NULL,
        client_order_id TEXT,
        symbol TEXT NOT NULL,
        contract_key TEXT NOT NULL,
        quantity REAL NOT NULL,
        reason TEXT NOT NULL,
        detail_json TEXT NOT NULL
    )""",
    """CREATE TABLE trading_states (
        id INTEGER PRIMARY KEY,
        mode TEXT NOT NULL,
        at TEXT NOT NULL,
        state TEXT NOT NULL,
        cause TEXT NOT NULL
    )""",
    """CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        mode TEXT NOT NULL,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        detail_json TEXT NOT NULL
    )""",
    """CREATE TABLE day_trades (
        id INTEGER PRIMARY KEY,
        mode TEXT NOT NULL,
        at TEXT NOT NULL,
        contract_key TEXT NOT NULL,
        symbol TEXT NOT NULL,
        trade_date TEXT NOT NULL
    )""",
    """CREATE TABLE risk_state (
        id INTEGER PRIMARY KEY,
        mode TEXT NOT NULL,
        at TEXT NOT NULL,
        key TEXT NOT NULL,
        value_kind TEXT NOT NULL,
        value_num REAL,
        value_text TEXT,
        as_of TEXT
    )""",
)

T0 = "2026-03-02T15:00:00.000000+00:00"


def make_v1_journal(path: Path, mode: str = "dry_run") -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN")
    for statement in V1_SCHEMA:
        conn.execute(statement)
    conn.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [("magic", "ibkr-trader-journal"), ("mode", mode), ("schema_version", "1")],
    )
    conn.execute(
        "INSERT INTO decisions VALUES (1, ?, ?, 1, 'SPY', 'SPY:20260320:C:580', 'SELL', 2, 'C', "
        "'sig-9', 'CSATSPRIM', 'CSATSPRIM-C-0123456789ab', 1, 'ACTIVE', 'h1', "
        '\'[{"name": "trading_state", "passed": true, "value": "ACTIVE", '
        "\"limit\": \"ACTIVE\", \"reason\": null}]', '[]', '{}', '{}')",
        (mode, T0),
    )
    conn.execute(
        "INSERT INTO intents VALUES (1, ?, 'CSATSPRIM-C-0123456789ab', ?, 'CSATSPRIM', 1, 'SPY', "
        "'SPY:20260320:C:580', 'OPT', '20260320', 580.0, 'C', 100, 'SELL', 2, 'LMT', 1.1, 'C', "
        "'sig-9', 1)",
        (mode, T0),
    )
    conn.execute(
        "INSERT INTO order_state VALUES ('CSATSPRIM-C-0123456789ab', ?, 5, 777, 'Filled', 2, 0, "
        "1.1, NULL, NULL, 1, ?)",
        (mode, T0),
    )
    conn.execute(
        "INSERT INTO status_changes VALUES (1, ?, 'CSATSPRIM-C-0123456789ab', ?, 'Filled', 2, 0, "
        "1.1, NULL, NULL, '{}')",
        (mode, T0),
    )
    conn.execute(
        "INSERT INTO fills VALUES (1, ?, 'e-old', 'CSATSPRIM-C-0123456789ab', ?, ?, 'SPY', "
        "'SPY:20260320:C:580', 'SELL', 2, 1.1, 5, 777, 0)",
        (mode, T0, T0),
    )
    conn.execute(
        "INSERT INTO closures VALUES (1, ?, ?, 'CSATSPRIM-C-0123456789ab', 'SPY', "
        "'SPY:20260320:C:580', 2, '3_DTE_RULE', '{}')",
        (mode, T0),
    )
    conn.execute(
        "INSERT INTO trading_states VALUES (1, ?, ?, 'REDUCING', 'daily loss')", (mode, T0)
    )
    conn.execute(
        "INSERT INTO risk_state VALUES (1, ?, ?, 'sod_equity', 'num', 9800.0, NULL, '2026-03-02')",
        (mode, T0),
    )
    conn.execute(
        "INSERT INTO day_trades VALUES (1, ?, ?, 'SPY:20260320:C:580', 'SPY', '2026-03-02')",
        (mode, T0),
    )
    conn.execute("INSERT INTO events VALUES (1, ?, ?, 'boot', '{}')", (mode, T0))
    conn.execute("COMMIT")
    conn.close()


def test_v1_journal_migrates_to_current_with_every_row_preserved(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite3"
    make_v1_journal(path)
    coid = "CSATSPRIM-C-0123456789ab"

    with Journal.open(path, ExecutionMode.DRY_RUN) as j:
        assert j.schema_version() == SCHEMA_VERSION
        assert j.integrity_check() == "ok"
        expl = j.explain(coid)
        assert expl is not None
        assert expl.intent.closure_reason == "3_DTE_RULE"  # backfilled by the migration
        assert expl.intent.con_id == 0
        assert expl.decision is not None and expl.decision.checks[0].name == "trading_state"
        assert [s.status for s in expl.statuses] == ["Filled"]
        assert expl.state.perm_id == 777
        assert expl.fills[0].exec_id == "e-old"
        assert j.last_trading_state() == (TradingState.REDUCING, "daily loss")
        assert j.get_risk_state("sod_equity") == (9800.0, date(2026, 3, 2))
        assert j.day_trades_between(date(2026, 3, 1), date(2026, 3, 3)) == [
            ("SPY:20260320:C:580", date(2026, 3, 2))
        ]
        assert [e.kind for e in j.events()] == ["boot"]
        # the tables v2 added work on the migrated file
        assert j.record_commission("e-old", 1.3).duplicate is False
        assert j.fills()[0].commission == 1.3
        assert j.seed_simulated_cash(5_000.0) is True

    with Journal.open(path, ExecutionMode.DRY_RUN) as j:  # a second open does not re-migrate
        assert j.schema_version() == SCHEMA_VERSION
        assert len(j.orders()) == 1


def test_v1_journal_is_not_migrated_through_a_read_only_handle(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite3"
    make_v1_journal(path)
    with pytest.raises(JournalSchemaError, match="open it once for writing"):
        Journal.open(path, ExecutionMode.DRY_RUN, read_only=True)
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("1",)
    raw.close()


def test_failed_migration_leaves_the_file_at_its_old_version(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite3"
    make_v1_journal(path)
    raw = sqlite3.connect(path)
    raw.execute("CREATE INDEX ix_fills_at ON fills(at)")  # v2 creates this index: conflict
    raw.commit()
    raw.close()
    with pytest.raises(JournalSchemaError, match="left at v1"):
        Journal.open(path, ExecutionMode.DRY_RUN)
    raw = sqlite3.connect(path)
    columns = [r[1] for r in raw.execute("PRAGMA table_info(intents)")]
    assert "closure_reason" not in columns
    assert raw.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("1",)
    raw.close()
