"""The journal's on-disk layout: identity, schema version and forward-only migrations.

A journal file is an SQLite database that carries our identity twice:

* ``PRAGMA application_id`` = :data:`APPLICATION_ID` (bytes 68..71 of the file header, so a
  file can be recognised from its first 100 bytes without opening it with SQLite), and
* a ``meta`` table with ``magic`` = :data:`MAGIC`, ``schema_version`` and the ``mode`` the
  file was created for.

Migrations are forward-only: ``MIGRATIONS[n]`` takes a version ``n - 1`` database to version
``n``. A new file runs every step from 1, so the fresh path and the upgrade path are the same
code. Each step runs inside the caller's transaction (SQLite DDL is transactional), so a crash
in the middle of a migration leaves the old version intact.
"""

from __future__ import annotations

from typing import Final

APPLICATION_ID: Final[int] = 0x49424B4A  # "IBKJ"
MAGIC: Final[str] = "ibkr-trader-journal"
SQLITE_HEADER: Final[bytes] = b"SQLite format 3\x00"

# Version 1: the first layout (risk decisions, intents, order state and status history, fills,
# closures, trading states, events, risk state, day trades).
_V1: Final[tuple[str, ...]] = (
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

# Version 2: execution detail (commissions, broker-id history, final results, connection
# events), the dry-run simulated book, the closure reason and con_id on the intent, indexes.
_V2: Final[tuple[str, ...]] = (
    "ALTER TABLE intents ADD COLUMN closure_reason TEXT",
    "ALTER TABLE intents ADD COLUMN con_id INTEGER NOT NULL DEFAULT 0",
    # Backfill: a v1 closure linked to an intent gives that intent its closure reason.
    """UPDATE intents SET closure_reason = (
        SELECT c.reason FROM closures c
        WHERE c.client_order_id = intents.client_order_id ORDER BY c.id LIMIT 1)""",
    """CREATE TABLE broker_ids (
        id INTEGER PRIMARY KEY,
        mode TEXT NOT NULL,
        client_order_id TEXT NOT NULL REFERENCES intents(client_order_id),
        at TEXT NOT NULL,
        broker_order_id INTEGER,
        perm_id INTEGER
    )""",
    """CREATE TABLE commissions (
        id INTEGER PRIMARY KEY,
        mode TEXT NOT NULL,
        exec_id TEXT NOT NULL UNIQUE,
        at TEXT NOT NULL,
        commission REAL NOT NULL,
        currency TEXT NOT NULL,
        realized_pnl REAL
    )""",
    """CREATE TABLE results (
        id INTEGER PRIMARY KEY,
        mode TEXT NOT NULL,
        client_order_id TEXT NOT NULL REFERENCES intents(client_order_id),
        at TEXT NOT NULL,
        status TEXT NOT NULL,
        broker_order_id INTEGER,
        fill_price REAL,
        fill_quantity REAL,
        rejection_reason TEXT,
        detail_json TEXT NOT NULL
    )""",
    """CREATE TABLE connection_events (
        id INTEGER PRIMARY KEY,
        mode TEXT NOT NULL,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        detail_json TEXT NOT NULL
    )""",
    """CREATE TABLE sim_account (
        mode TEXT PRIMARY KEY,
        initial_cash REAL NOT NULL,
        cash REAL NOT NULL,
        seeded_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    """CREATE TABLE sim_positions (
        contract_key TEXT PRIMARY KEY,
        mode TEXT NOT NULL,
        symbol TEXT NOT NULL,
        sec_type TEXT NOT NULL,
        expiry TEXT NOT NULL,
        strike REAL NOT NULL,
        right TEXT NOT NULL,
        multiplier INTEGER NOT NULL,
        con_id INTEGER NOT NULL,
        quantity REAL NOT NULL,
        avg_price REAL NOT NULL,
        opened_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    "CREATE INDEX ix_decisions_at ON decisions(mode, at)",
    "CREATE INDEX ix_intents_created ON intents(mode, created_at)",
    "CREATE INDEX ix_status_coid ON status_changes(client_order_id, id)",
    "CREATE INDEX ix_fills_coid ON fills(client_order_id)",
    "CREATE INDEX ix_fills_at ON fills(mode, at)",
    "CREATE INDEX ix_closures_coid ON closures(client_order_id)",
    "CREATE INDEX ix_order_state_perm ON order_state(perm_id)",
    "CREATE INDEX ix_order_state_final ON order_state(mode, is_final)",
    "CREATE INDEX ix_risk_state_key ON risk_state(mode, key, id)",
    "CREATE INDEX ix_day_trades_date ON day_trades(mode, trade_date)",
    "CREATE INDEX ix_events_at ON events(mode, at)",
)

MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {1: _V1, 2: _V2}
SCHEMA_VERSION: Final[int] = max(MIGRATIONS)

# Every table whose rows carry a ``mode`` column (the mode check at open scans these).
MODE_TABLES: Final[tuple[str, ...]] = (
    "decisions",
    "intents",
    "order_state",
    "status_changes",
    "fills",
    "closures",
    "trading_states",
    "events",
    "day_trades",
    "risk_state",
    "broker_ids",
    "commissions",
    "results",
    "connection_events",
    "sim_account",
    "sim_positions",
)
