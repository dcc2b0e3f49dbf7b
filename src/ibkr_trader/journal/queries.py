"""Read side of the journal: SELECTs and row -> record mapping.

Every function takes an open connection and the journal's mode, and every query filters on
that mode, so a dry-run row can never show up in a paper listing (and vice versa).
The functions are called by :class:`ibkr_trader.journal.Journal` under its lock.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, Final

from ibkr_trader.journal.records import (
    BrokerIdsRecord,
    CheckRecord,
    ClosureRecord,
    DecisionRecord,
    EventRecord,
    Explanation,
    FillRecord,
    IntentRecord,
    OrderRow,
    OrderState,
    ResultRecord,
    SimPosition,
    StatusRecord,
    TradingStateRecord,
)
from ibkr_trader.orders.lifecycle import STATUS_PHASE, phase_of

DEFAULT_LIMIT: Final[int] = 200

# Statuses after which an order is no longer working: THE table of orders.lifecycle.
FINAL_STATUSES: Final[frozenset[str]] = frozenset(
    status for status, phase in STATUS_PHASE.items() if phase.is_final
)
# Our own pre-send status: the intent exists, nothing has been acknowledged yet.
INTENT_STATUS: Final[str] = "intent"


def is_final_status(status: str) -> bool:
    return phase_of(status).is_final


def ts(when: datetime) -> str:
    """Timestamps are stored as fixed-width UTC ISO strings (they sort as text)."""
    if when.tzinfo is None:
        raise ValueError("the journal needs timezone-aware datetimes")
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _opt_ts(text: str | None) -> datetime | None:
    return None if text is None else parse_ts(text)


def _json(text: str | None) -> Any:
    return {} if not text else json.loads(text)


def _where(
    mode: str,
    since: datetime | None,
    symbol: str | None,
    *,
    prefix: str = "",
    time_col: str = "at",
) -> tuple[str, list[Any]]:
    clauses = [f"{prefix}mode = ?"]
    params: list[Any] = [mode]
    if since is not None:
        clauses.append(f"{prefix}{time_col} >= ?")
        params.append(ts(since))
    if symbol:
        clauses.append(f"{prefix}symbol = ?")
        params.append(symbol.strip().upper())
    return " AND ".join(clauses), params


# --- row mappers -------------------------------------------------------------------------


def decision_from_row(row: sqlite3.Row) -> DecisionRecord:
    checks = tuple(
        CheckRecord(
            name=str(c.get("name", "")),
            passed=bool(c.get("passed")),
            value=c.get("value"),
            limit=c.get("limit"),
            reason=c.get("reason"),
        )
        for c in json.loads(row["checks_json"])
    )
    return DecisionRecord(
        id=row["id"],
        mode=row["mode"],
        at=parse_ts(row["at"]),
        approved=bool(row["approved"]),
        symbol=row["symbol"],
        contract_key=row["contract_key"],
        action=row["action"],
        quantity=row["quantity"],
        strategy_id=row["strategy_id"],
        signal_id=row["signal_id"],
        operator_id=row["operator_id"],
        client_order_id=row["client_order_id"],
        is_closing=bool(row["is_closing"]),
        trading_state=row["trading_state"],
        limits_hash=row["limits_hash"],
        checks=checks,
        reasons=tuple(json.loads(row["reasons_json"])),
        metrics=_json(row["metrics_json"]),
        request=_json(row["request_json"]),
    )


def intent_from_row(row: sqlite3.Row) -> IntentRecord:
    return IntentRecord(
        id=row["id"],
        mode=row["mode"],
        client_order_id=row["client_order_id"],
        created_at=parse_ts(row["created_at"]),
        operator_id=row["operator_id"],
        decision_id=row["decision_id"],
        symbol=row["symbol"],
        contract_key=row["contract_key"],
        sec_type=row["sec_type"],
        expiry=row["expiry"],
        strike=row["strike"],
        right=row["right"],
        multiplier=row["multiplier"],
        con_id=row["con_id"],
        action=row["action"],
        quantity=row["quantity"],
        order_type=row["order_type"],
        limit_price=row["limit_price"],
        strategy_id=row["strategy_id"],
        signal_id=row["signal_id"],
        is_closing=bool(row["is_closing"]),
        closure_reason=row["closure_reason"],
    )


def state_from_row(row: sqlite3.Row) -> OrderState:
    return OrderState(
        status=row["st_status"],
        broker_order_id=row["st_broker_order_id"],
        perm_id=row["st_perm_id"],
        filled=row["st_filled"],
        remaining=row["st_remaining"],
        avg_price=row["st_avg_price"],
        error_code=row["st_error_code"],
        error_text=row["st_error_text"],
        is_final=bool(row["st_is_final"]),
        updated_at=parse_ts(row["st_updated_at"]),
    )


def fill_from_row(row: sqlite3.Row) -> FillRecord:
    return FillRecord(
        id=row["id"],
        exec_id=row["exec_id"],
        client_order_id=row["client_order_id"],
        at=parse_ts(row["at"]),
        symbol=row["symbol"],
        contract_key=row["contract_key"],
        side=row["side"],
        quantity=row["quantity"],
        price=row["price"],
        broker_order_id=row["broker_order_id"],
        perm_id=row["perm_id"],
        simulated=bool(row["simulated"]),
        commission=row["commission"],
        currency=row["currency"],
        realized_pnl=row["realized_pnl"],
    )


def closure_from_row(row: sqlite3.Row) -> ClosureRecord:
    return ClosureRecord(
        id=row["id"],
        at=parse_ts(row["at"]),
        client_order_id=row["client_order_id"],
        symbol=row["symbol"],
        contract_key=row["contract_key"],
        quantity=row["quantity"],
        reason=row["reason"],
        detail=_json(row["detail_json"]),
    )


def sim_position_from_row(row: sqlite3.Row) -> SimPosition:
    return SimPosition(
        contract_key=row["contract_key"],
        symbol=row["symbol"],
        sec_type=row["sec_type"],
        expiry=row["expiry"],
        strike=row["strike"],
        right=row["right"],
        multiplier=row["multiplier"],
        con_id=row["con_id"],
        quantity=row["quantity"],
        avg_price=row["avg_price"],
        opened_at=parse_ts(row["opened_at"]),
        updated_at=parse_ts(row["updated_at"]),
    )


# --- queries -----------------------------------------------------------------------------

_ORDER_SELECT: Final[str] = """
    SELECT i.*, s.status AS st_status, s.broker_order_id AS st_broker_order_id,
           s.perm_id AS st_perm_id, s.filled AS st_filled, s.remaining AS st_remaining,
           s.avg_price AS st_avg_price, s.error_code AS st_error_code,
           s.error_text AS st_error_text, s.is_final AS st_is_final,
           s.updated_at AS st_updated_at
    FROM intents i JOIN order_state s ON s.client_order_id = i.client_order_id
"""

_FILL_SELECT: Final[str] = """
    SELECT f.*, c.commission AS commission, c.currency AS currency,
           c.realized_pnl AS realized_pnl
    FROM fills f LEFT JOIN commissions c ON c.exec_id = f.exec_id
"""


def _last(rows: Sequence[sqlite3.Row]) -> list[sqlite3.Row]:
    """Queries fetch newest first (for LIMIT); listings read oldest first."""
    return list(reversed(rows))


def orders(
    conn: sqlite3.Connection,
    mode: str,
    since: datetime | None = None,
    symbol: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[OrderRow]:
    where, params = _where(mode, since, symbol, prefix="i.", time_col="created_at")
    rows = conn.execute(
        f"{_ORDER_SELECT} WHERE {where} ORDER BY i.id DESC LIMIT ?", [*params, limit]
    ).fetchall()
    return [OrderRow(intent_from_row(r), state_from_row(r)) for r in _last(rows)]


def find_order(conn: sqlite3.Connection, mode: str, client_order_id: str) -> OrderRow | None:
    row = conn.execute(
        f"{_ORDER_SELECT} WHERE i.mode = ? AND i.client_order_id = ?", (mode, client_order_id)
    ).fetchone()
    return None if row is None else OrderRow(intent_from_row(row), state_from_row(row))


def order_by_perm_id(conn: sqlite3.Connection, mode: str, perm_id: int) -> OrderRow | None:
    row = conn.execute(
        f"{_ORDER_SELECT} WHERE i.mode = ? AND s.perm_id = ? ORDER BY i.id DESC LIMIT 1",
        (mode, perm_id),
    ).fetchone()
    return None if row is None else OrderRow(intent_from_row(row), state_from_row(row))


def orders_by_status(
    conn: sqlite3.Connection, mode: str, statuses: Sequence[str] | None, *, unresolved: bool
) -> list[OrderRow]:
    clauses = ["i.mode = ?"]
    params: list[Any] = [mode]
    if unresolved:
        clauses.append("s.is_final = 0")
    if statuses:
        clauses.append(f"lower(s.status) IN ({', '.join('?' for _ in statuses)})")
        params.extend(s.lower() for s in statuses)
    rows = conn.execute(
        f"{_ORDER_SELECT} WHERE {' AND '.join(clauses)} ORDER BY i.id", params
    ).fetchall()
    return [OrderRow(intent_from_row(r), state_from_row(r)) for r in rows]


def final_closes(conn: sqlite3.Connection, mode: str, contract_key: str) -> int:
    """How many closing intents of a contract are final (one indexed count, no rows read)."""
    row = conn.execute(
        "SELECT COUNT(*) FROM intents i JOIN order_state s "
        "ON s.client_order_id = i.client_order_id "
        "WHERE i.mode = ? AND i.contract_key = ? AND i.is_closing = 1 AND s.is_final = 1",
        (mode, contract_key),
    ).fetchone()
    return int(row[0])


def client_order_ids(conn: sqlite3.Connection, mode: str) -> set[str]:
    """Every intent's client order id (the covering UNIQUE index; no table rows read)."""
    rows = conn.execute("SELECT client_order_id FROM intents WHERE mode = ?", (mode,))
    return {str(r[0]) for r in rows}


def intents_since(conn: sqlite3.Connection, mode: str, after_id: int) -> tuple[int, list[str]]:
    """The newest intent's row id, and the client order ids of the intents after ``after_id``
    (by the primary key: no table scan)."""
    rows = conn.execute(
        "SELECT id, client_order_id FROM intents WHERE id > ? AND mode = ? ORDER BY id",
        (after_id, mode),
    ).fetchall()
    if rows:
        return int(rows[-1][0]), [str(r[1]) for r in rows]
    if after_id > 0:
        return after_id, []
    row = conn.execute("SELECT COALESCE(MAX(id), 0) FROM intents").fetchone()
    return int(row[0]), []


def decisions(
    conn: sqlite3.Connection,
    mode: str,
    since: datetime | None = None,
    symbol: str | None = None,
    limit: int = DEFAULT_LIMIT,
    approved: bool | None = None,
) -> list[DecisionRecord]:
    where, params = _where(mode, since, symbol)
    if approved is not None:
        where += " AND approved = ?"
        params.append(int(approved))
    rows = conn.execute(
        f"SELECT * FROM decisions WHERE {where} ORDER BY id DESC LIMIT ?", [*params, limit]
    ).fetchall()
    return [decision_from_row(r) for r in _last(rows)]


def decision(conn: sqlite3.Connection, mode: str, decision_id: int) -> DecisionRecord | None:
    row = conn.execute(
        "SELECT * FROM decisions WHERE mode = ? AND id = ?", (mode, decision_id)
    ).fetchone()
    return None if row is None else decision_from_row(row)


def fills(
    conn: sqlite3.Connection,
    mode: str,
    since: datetime | None = None,
    symbol: str | None = None,
    limit: int = DEFAULT_LIMIT,
    client_order_id: str | None = None,
) -> list[FillRecord]:
    where, params = _where(mode, since, symbol, prefix="f.")
    if client_order_id is not None:
        where += " AND f.client_order_id = ?"
        params.append(client_order_id)
    rows = conn.execute(
        f"{_FILL_SELECT} WHERE {where} ORDER BY f.id DESC LIMIT ?", [*params, limit]
    ).fetchall()
    return [fill_from_row(r) for r in _last(rows)]


def closures(
    conn: sqlite3.Connection,
    mode: str,
    since: datetime | None = None,
    symbol: str | None = None,
    limit: int = DEFAULT_LIMIT,
    client_order_id: str | None = None,
) -> list[ClosureRecord]:
    where, params = _where(mode, since, symbol)
    if client_order_id is not None:
        where += " AND client_order_id = ?"
        params.append(client_order_id)
    rows = conn.execute(
        f"SELECT * FROM closures WHERE {where} ORDER BY id DESC LIMIT ?", [*params, limit]
    ).fetchall()
    return [closure_from_row(r) for r in _last(rows)]


def events(
    conn: sqlite3.Connection,
    mode: str,
    since: datetime | None = None,
    symbol: str | None = None,
    limit: int = DEFAULT_LIMIT,
    kind: str | None = None,
) -> list[EventRecord]:
    """Generic and connection events merged in time order (symbol: ``detail.symbol``)."""
    found: list[EventRecord] = []
    for table, source in (("events", "event"), ("connection_events", "connection")):
        clauses = ["mode = ?"]
        params: list[Any] = [mode]
        if since is not None:
            clauses.append("at >= ?")
            params.append(ts(since))
        if symbol:
            clauses.append("upper(json_extract(detail_json, '$.symbol')) = ?")
            params.append(symbol.strip().upper())
        if kind:
            clauses.append("kind = ?")
            params.append(kind)
        rows = conn.execute(
            f"SELECT * FROM {table} WHERE {' AND '.join(clauses)} ORDER BY id DESC LIMIT ?",
            [*params, limit],
        ).fetchall()
        found.extend(
            EventRecord(
                id=r["id"],
                at=parse_ts(r["at"]),
                kind=r["kind"],
                detail=_json(r["detail_json"]),
                source=source,
            )
            for r in rows
        )
    found.sort(key=lambda e: (e.at, e.source, e.id))
    return found[-limit:]


def trading_states(
    conn: sqlite3.Connection, mode: str, since: datetime | None = None, limit: int = DEFAULT_LIMIT
) -> list[TradingStateRecord]:
    where, params = _where(mode, since, None)
    rows = conn.execute(
        f"SELECT * FROM trading_states WHERE {where} ORDER BY id DESC LIMIT ?", [*params, limit]
    ).fetchall()
    return [
        TradingStateRecord(id=r["id"], at=parse_ts(r["at"]), state=r["state"], cause=r["cause"])
        for r in _last(rows)
    ]


def day_trades_between(
    conn: sqlite3.Connection, mode: str, start: date, end: date
) -> list[tuple[str, date]]:
    rows = conn.execute(
        "SELECT contract_key, trade_date FROM day_trades "
        "WHERE mode = ? AND trade_date >= ? AND trade_date <= ? ORDER BY trade_date, id",
        (mode, start.isoformat(), end.isoformat()),
    ).fetchall()
    return [(r["contract_key"], date.fromisoformat(r["trade_date"])) for r in rows]


def sim_positions(conn: sqlite3.Connection, mode: str) -> list[SimPosition]:
    rows = conn.execute(
        "SELECT * FROM sim_positions WHERE mode = ? ORDER BY opened_at, contract_key", (mode,)
    ).fetchall()
    return [sim_position_from_row(r) for r in rows]


def explain(conn: sqlite3.Connection, mode: str, client_order_id: str) -> Explanation | None:
    order = find_order(conn, mode, client_order_id)
    if order is None:
        return None
    intent = order.intent
    found_decision = (
        decision(conn, mode, intent.decision_id) if intent.decision_id is not None else None
    )
    broker_ids = tuple(
        BrokerIdsRecord(
            at=parse_ts(r["at"]), broker_order_id=r["broker_order_id"], perm_id=r["perm_id"]
        )
        for r in conn.execute(
            "SELECT * FROM broker_ids WHERE mode = ? AND client_order_id = ? ORDER BY id",
            (mode, client_order_id),
        )
    )
    statuses = tuple(
        StatusRecord(
            id=r["id"],
            client_order_id=r["client_order_id"],
            at=parse_ts(r["at"]),
            status=r["status"],
            filled=r["filled"],
            remaining=r["remaining"],
            avg_price=r["avg_price"],
            error_code=r["error_code"],
            error_text=r["error_text"],
            detail=_json(r["detail_json"]),
        )
        for r in conn.execute(
            "SELECT * FROM status_changes WHERE mode = ? AND client_order_id = ? ORDER BY id",
            (mode, client_order_id),
        )
    )
    results = tuple(
        ResultRecord(
            id=r["id"],
            client_order_id=r["client_order_id"],
            at=parse_ts(r["at"]),
            status=r["status"],
            broker_order_id=r["broker_order_id"],
            fill_price=r["fill_price"],
            fill_quantity=r["fill_quantity"],
            rejection_reason=r["rejection_reason"],
            detail=_json(r["detail_json"]),
        )
        for r in conn.execute(
            "SELECT * FROM results WHERE mode = ? AND client_order_id = ? ORDER BY id",
            (mode, client_order_id),
        )
    )
    return Explanation(
        intent=intent,
        state=order.state,
        decision=found_decision,
        broker_ids=broker_ids,
        statuses=statuses,
        fills=tuple(fills(conn, mode, client_order_id=client_order_id, limit=10_000)),
        results=results,
        closures=tuple(closures(conn, mode, client_order_id=client_order_id, limit=10_000)),
    )
