"""The audit journal: a durable, append-first SQLite record of everything decided and done.

Durability: WAL mode with ``synchronous=FULL``: every write method is one short transaction
that is on disk (fsynced) when the method returns, so an acknowledged write survives
``kill -9`` and a power cut. History rows are only ever inserted; the rows that mirror broker
state (an order's current status, the simulated book's cash and positions) are the only rows
updated.

Threads: one connection shared under a lock (``check_same_thread=False``), so a ``Journal``
may be used from any thread. Each call holds the lock for one transaction. From asyncio code,
prefer :class:`ibkr_trader.journal.AsyncJournal`, which runs the writes on one dedicated
worker thread in submission order, because a FULL-sync commit waits for an fsync.

Safety on open: a file that is not a journal (not SQLite, or SQLite without our application
id and magic) is refused and never written to; a damaged file, a lock held beyond the busy
timeout, a read-only file and a file of another execution mode each raise a specific
:class:`JournalError` subclass with the path in the message.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Protocol

from ibkr_trader.book import Holding, apply_fill
from ibkr_trader.clock import Clock, SystemClock
from ibkr_trader.journal import queries
from ibkr_trader.journal.records import (
    ClosureRecord,
    DecisionRecord,
    EventRecord,
    Explanation,
    FillRecord,
    IntentRecord,
    IntentResult,
    JournalCorruptError,
    JournalError,
    JournalLockedError,
    JournalModeError,
    JournalReadOnlyError,
    JournalSchemaError,
    NotAJournalError,
    OrderRow,
    Recorded,
    SimFillOutcome,
    SimPosition,
    TradingStateRecord,
    UnknownOrderError,
    jsonable,
)
from ibkr_trader.journal.schema import (
    APPLICATION_ID,
    MAGIC,
    MIGRATIONS,
    MODE_TABLES,
    SCHEMA_VERSION,
    SQLITE_HEADER,
)
from ibkr_trader.logging import redact
from ibkr_trader.models import (
    ClosureReason,
    ContractSpec,
    ExecutionMode,
    TradeRequest,
    TradingState,
    ValidationResult,
)
from ibkr_trader.models import OrderStatus as _OrderStatus
from ibkr_trader.orders.ids import (
    client_order_id_for,
    exec_id_base,
    exec_revision,
    settlement_order_id,
)

DEFAULT_BUSY_TIMEOUT: Final[float] = 5.0
HOME_ENV: Final[str] = "IBKR_TRADER_HOME"
_SUPPORTED_MODES: Final[frozenset[ExecutionMode]] = frozenset(
    {ExecutionMode.DRY_RUN, ExecutionMode.PAPER}
)

# SQLite primary result codes (exc.sqlite_errorcode & 0xFF).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 5, 6, 8
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN = 10, 11, 13, 14
_SQLITE_NOTADB = 26


def default_journal_path(mode: ExecutionMode | str) -> Path:
    """Where a mode's journal lives unless told otherwise.

    ``$IBKR_TRADER_HOME/journal-<mode>.sqlite3`` when that variable is set, else
    ``$XDG_DATA_HOME/ibkr-trader/`` (default ``~/.local/share/ibkr-trader/``). Dry-run and
    paper have separate files. The one rule lives in :func:`ibkr_trader.config.default_home`.
    """
    from ibkr_trader.config import default_home

    return default_home() / f"journal-{ExecutionMode(mode).value}.sqlite3"


def _json_default(value: Any) -> Any:
    converted = jsonable(value)
    if converted is value:
        return repr(value)
    return converted


def _dumps(value: Any) -> str:
    """JSON for a journal column; IB account ids masked (issue 14, item 9: never in clear)."""
    return redact(json.dumps(jsonable(value), default=_json_default, sort_keys=True))


def _dumps_ready(value: Any) -> str:
    """:func:`_dumps` of a value already made of JSON types (no second walk over it)."""
    return redact(json.dumps(value, default=_json_default, sort_keys=True))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def _decision_fields(request: Any) -> tuple[Any, ...]:
    """The decision row's request columns; a malformed request is recorded as it came
    (repr of a bad field), so that even the refusal of garbage is journaled."""

    def get(name: str) -> Any:
        return getattr(request, name, None)

    try:
        contract_key = _text(request.contract_key)
    except Exception:
        contract_key = "?"
    quantity = get("quantity")
    return (
        _text(get("symbol") or "?").upper(),
        contract_key,
        _text(get("action") or "?"),
        quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else 0,
        _text(get("strategy_id") or ""),
        _text(get("signal_id") or ""),
        _text(get("operator_id") or ""),
        _text(get("client_order_id") or ""),
        1 if get("is_closing") is True else 0,
    )


def _request_json(request: Any) -> str:
    if dataclasses.is_dataclass(request) and not isinstance(request, type):
        try:
            return _dumps(request)  # jsonable() walks the dataclass (no deep copy first)
        except Exception:
            pass
    return _dumps({"repr": repr(request)[:2000]})


class OrderResultLike(Protocol):
    """The fields of the integration layer's ``OrderResult`` that the journal keeps."""

    @property
    def order_id(self) -> str: ...
    @property
    def status(self) -> Any: ...
    @property
    def ibkr_order_id(self) -> int | None: ...
    @property
    def fill_price(self) -> float | None: ...
    @property
    def fill_quantity(self) -> int | None: ...
    @property
    def rejection_reason(self) -> str | None: ...


class Journal:
    """The audit journal of one execution mode (see the module docstring).

    Satisfies ``ibkr_trader.risk.state.RiskStateStore``.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        mode: ExecutionMode,
        clock: Clock,
        *,
        read_only: bool,
        busy_timeout: float,
    ) -> None:
        self._conn = conn
        self._path = path
        self._mode = mode
        self._clock = clock
        self._read_only = read_only
        self._busy_timeout = busy_timeout
        self._lock = threading.RLock()
        self._closed = False
        self._txn_depth = 0  # > 0: inside transaction(); each write is a savepoint of it
        self._twins: list[Journal] = []  # read-only connections to this file (twin())

    # --- lifecycle ----------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path | None,
        mode: ExecutionMode,
        clock: Clock | None = None,
        *,
        read_only: bool = False,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        synchronous: str = "FULL",
        check: bool = True,
    ) -> Journal:
        """Open (or create) the journal for ``mode`` at ``path`` (None: the mode's default).

        ``read_only`` opens an existing journal for queries only (the CLI does this).
        ``synchronous`` is FULL in production; NORMAL exists for the benchmark's comparison.
        ``check`` runs ``PRAGMA quick_check`` on an existing file before using it.
        """
        mode = ExecutionMode(mode)
        if mode not in _SUPPORTED_MODES:
            raise JournalError(f"no journal for mode {mode.value!r}: only dry_run and paper")
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError("synchronous must be FULL, EXTRA or NORMAL")
        target = (path if path is not None else default_journal_path(mode)).expanduser()
        new = _inspect_file(target, read_only=read_only)
        if new:
            target.parent.mkdir(parents=True, exist_ok=True)
        conn = _connect(target, read_only=read_only, busy_timeout=busy_timeout)
        try:
            with _translated(target, "open", busy_timeout):
                _configure(
                    conn,
                    read_only=read_only,
                    synchronous=synchronous.upper(),
                    busy_timeout=busy_timeout,
                )
                _prepare(conn, target, mode, new=new, read_only=read_only, check=check)
        except BaseException:
            conn.close()
            raise
        return cls(
            conn,
            target,
            mode,
            clock or SystemClock(),
            read_only=read_only,
            busy_timeout=busy_timeout,
        )

    def twin(self) -> Journal:
        """A second, read-only connection to this journal's file, for reads that must not wait
        on this connection's writes (in WAL mode a reader never waits for the writer): it sees
        what is committed, this process's and any other's. Closed with this journal."""
        conn = _connect(self._path, read_only=True, busy_timeout=self._busy_timeout)
        try:
            with _translated(self._path, "open", self._busy_timeout):
                _configure(
                    conn, read_only=True, synchronous="FULL", busy_timeout=self._busy_timeout
                )
        except BaseException:
            conn.close()
            raise
        twin = Journal(
            conn,
            self._path,
            self._mode,
            self._clock,
            read_only=True,
            busy_timeout=self._busy_timeout,
        )
        with self._lock:
            self._twins.append(twin)
        return twin

    def close(self) -> None:
        """Close the connection (idempotent), and its twins."""
        with self._lock:
            if self._closed:
                return
            for twin in self._twins:
                twin.close()
            self._twins.clear()
            self._closed = True
            try:
                self._conn.close()
            except sqlite3.Error as exc:  # pragma: no cover - close rarely fails
                raise JournalError(f"closing journal {self._path}: {exc}") from exc

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def path(self) -> Path:
        return self._path

    @property
    def mode(self) -> ExecutionMode:
        return self._mode

    @property
    def read_only(self) -> bool:
        return self._read_only

    @property
    def closed(self) -> bool:
        return self._closed

    def schema_version(self) -> int:
        with self._read("schema_version") as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            return int(row[0])

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: "ok" for a sound file."""
        with self._read("integrity_check") as conn:
            return str(conn.execute("PRAGMA integrity_check").fetchone()[0])

    # --- transaction helpers ------------------------------------------------------------

    def _now(self) -> str:
        return queries.ts(self._clock.now())

    @contextmanager
    def _read(self, op: str) -> Iterator[sqlite3.Connection]:
        with self._lock, _translated(self._path, op, self._busy_timeout):
            if self._closed:
                raise JournalError(f"journal {self._path} is closed")
            yield self._conn

    @contextmanager
    def _write(self, op: str) -> Iterator[sqlite3.Connection]:
        with self._lock, _translated(self._path, op, self._busy_timeout):
            if self._closed:
                raise JournalError(f"journal {self._path} is closed")
            if self._read_only:
                raise JournalReadOnlyError(
                    f"{op}: journal {self._path} is open read-only; nothing was written"
                )
            conn = self._conn
            if self._txn_depth and conn.in_transaction:
                # inside transaction(): this write is a savepoint, undone alone if it fails
                begin, done = "SAVEPOINT one_write", "RELEASE one_write"
                undo: tuple[str, ...] = ("ROLLBACK TO one_write", "RELEASE one_write")
            else:
                begin, done, undo = "BEGIN IMMEDIATE", "COMMIT", ("ROLLBACK",)
            conn.execute(begin)
            try:
                yield conn
                conn.execute(done)
            except BaseException:
                if conn.in_transaction:
                    for statement in undo:
                        conn.execute(statement)
                raise

    @contextmanager
    def transaction(self, op: str = "transaction") -> Iterator[None]:
        """Every write inside is ONE transaction: one commit, one fsync (the order path's
        decision and intent; everything an order's end records). Each write keeps its own
        savepoint: one that fails is undone alone and raises as it would outside, and the
        others still commit. The journal's lock is held throughout (one thread writes)."""
        with self._write(op):
            self._txn_depth += 1
            try:
                yield
            finally:
                self._txn_depth -= 1

    def record_decision_and_intent(
        self, request: TradeRequest, result: ValidationResult, *, con_id: int = 0
    ) -> tuple[int, IntentResult]:
        """An approved order's risk decision and its intent, durable together before anything
        is sent (one transaction); returns the decision id and the intent."""
        with self.transaction("record_decision_and_intent"):
            decision_id = self.record_risk_decision(request, result)
            intent = self.record_intent(request, decision_id=decision_id, con_id=con_id)
        return decision_id, intent

    def run_group(self, op: str, writes: Callable[[], object]) -> None:
        """Run ``writes`` (several journal writes) as one transaction."""
        with self.transaction(op):
            writes()

    # --- RiskStateStore -----------------------------------------------------------------

    def record_risk_decision(self, request: TradeRequest, result: ValidationResult) -> int:
        """Journal a risk decision (approved or not) with every check; returns its id."""
        checks = [
            {
                "name": c.name,
                "passed": c.passed,
                "value": jsonable(c.value),
                "limit": jsonable(c.limit),
                "reason": c.reason,
            }
            for c in result.checks
        ]
        fields = _decision_fields(request)
        with self._write("record_risk_decision") as conn:
            cur = conn.execute(
                "INSERT INTO decisions (mode, at, approved, symbol, contract_key, action, "
                "quantity, strategy_id, signal_id, operator_id, client_order_id, is_closing, "
                "trading_state, limits_hash, checks_json, reasons_json, metrics_json, "
                "request_json) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    self._mode.value,
                    self._now(),
                    int(result.approved),
                    *fields,
                    TradingState(result.trading_state).value,
                    result.limits_hash,
                    _dumps_ready(checks),
                    _dumps(list(result.rejection_reasons)),
                    _dumps(result.risk_metrics),
                    _request_json(request),
                ),
            )
            return _rowid(cur)

    def record_trading_state(self, state: TradingState, cause: str) -> None:
        with self._write("record_trading_state") as conn:
            conn.execute(
                "INSERT INTO trading_states (mode, at, state, cause) VALUES (?,?,?,?)",
                (self._mode.value, self._now(), TradingState(state).value, redact(cause)),
            )

    def last_trading_state(self) -> tuple[TradingState, str] | None:
        with self._read("last_trading_state") as conn:
            row = conn.execute(
                "SELECT state, cause FROM trading_states WHERE mode = ? ORDER BY id DESC LIMIT 1",
                (self._mode.value,),
            ).fetchone()
        return None if row is None else (TradingState(row["state"]), row["cause"])

    def record_day_trade(self, contract_key: str, symbol: str, trade_date: date) -> None:
        with self._write("record_day_trade") as conn:
            conn.execute(
                "INSERT INTO day_trades (mode, at, contract_key, symbol, trade_date) "
                "VALUES (?,?,?,?,?)",
                (
                    self._mode.value,
                    self._now(),
                    contract_key,
                    symbol.upper(),
                    trade_date.isoformat(),
                ),
            )

    def day_trades_between(self, start: date, end: date) -> list[tuple[str, date]]:
        """Day trades with ``start <= trade_date <= end`` (both inclusive), oldest first."""
        with self._read("day_trades_between") as conn:
            return queries.day_trades_between(conn, self._mode.value, start, end)

    def put_risk_state(self, key: str, value: float | str | None, as_of: date | None) -> None:
        """Append a risk-state value (the latest appended value wins on read)."""
        if isinstance(value, bool) or not isinstance(value, int | float | str | type(None)):
            raise TypeError(f"risk state values are float, str or None, not {type(value)}")
        num: float | None = None
        text: str | None = None
        if isinstance(value, str):
            kind, text = "str", value
        elif value is None:
            kind = "none"
        else:
            kind, num = "num", float(value)
        with self._write("put_risk_state") as conn:
            conn.execute(
                "INSERT INTO risk_state (mode, at, key, value_kind, value_num, value_text, "
                "as_of) VALUES (?,?,?,?,?,?,?)",
                (
                    self._mode.value,
                    self._now(),
                    key,
                    kind,
                    num,
                    text,
                    as_of.isoformat() if as_of is not None else None,
                ),
            )

    def get_risk_state(self, key: str) -> tuple[float | str | None, date | None] | None:
        with self._read("get_risk_state") as conn:
            row = conn.execute(
                "SELECT value_kind, value_num, value_text, as_of FROM risk_state "
                "WHERE mode = ? AND key = ? ORDER BY id DESC LIMIT 1",
                (self._mode.value, key),
            ).fetchone()
        if row is None:
            return None
        value: float | str | None
        if row["value_kind"] == "num":
            value = float(row["value_num"])
        elif row["value_kind"] == "str":
            value = str(row["value_text"])
        else:
            value = None
        as_of = date.fromisoformat(row["as_of"]) if row["as_of"] else None
        return value, as_of

    def record_event(self, kind: str, detail: dict[str, Any]) -> None:
        self.append_event(kind, detail)

    def append_event(self, kind: str, detail: dict[str, Any]) -> int:
        """``record_event`` that returns the new row id."""
        with self._write("record_event") as conn:
            return self._insert_event(conn, kind, detail)

    def _insert_event(self, conn: sqlite3.Connection, kind: str, detail: dict[str, Any]) -> int:
        cur = conn.execute(
            "INSERT INTO events (mode, at, kind, detail_json) VALUES (?,?,?,?)",
            (self._mode.value, self._now(), kind, _dumps(detail)),
        )
        return _rowid(cur)

    def record_connection_event(self, kind: str, detail: dict[str, Any] | None = None) -> int:
        """A connection event (connected, disconnected, reconnecting, restored, error...)."""
        with self._write("record_connection_event") as conn:
            cur = conn.execute(
                "INSERT INTO connection_events (mode, at, kind, detail_json) VALUES (?,?,?,?)",
                (self._mode.value, self._now(), kind, _dumps(detail or {})),
            )
            return _rowid(cur)

    # --- order intents and their lifecycle ----------------------------------------------

    client_order_id_for = staticmethod(client_order_id_for)

    def record_intent(
        self,
        request: TradeRequest,
        *,
        decision_id: int | None,
        client_order_id: str | None = None,
        con_id: int = 0,
    ) -> IntentResult:
        """Journal an order intent BEFORE anything is sent; idempotent on the client order id.

        The id is ``client_order_id``, else ``request.client_order_id``, else
        :func:`client_order_id_for` of the request. If an intent with that id exists, it is
        returned with ``existed=True`` and nothing is written: a retried signal can never
        become a second order.
        """
        coid = (
            client_order_id
            or request.client_order_id
            or client_order_id_for(
                request.operator_id,
                request.strategy_id,
                request.signal_id,
                request.contract_key,
                request.action,
                request.quantity,
            )
        )
        if not request.operator_id.strip():
            raise ValueError("an order intent needs an operator id")
        closure_reason = (
            ClosureReason(request.closure_reason).value if request.closure_reason else None
        )
        mode = self._mode.value
        with self._write("record_intent") as conn:
            now = self._now()
            cur = conn.execute(
                "INSERT INTO intents (mode, client_order_id, created_at, operator_id, "
                "decision_id, symbol, contract_key, sec_type, expiry, strike, right, "
                "multiplier, con_id, action, quantity, order_type, limit_price, strategy_id, "
                "signal_id, is_closing, closure_reason) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(client_order_id) DO NOTHING",
                (
                    mode,
                    coid,
                    now,
                    request.operator_id,
                    decision_id,
                    request.symbol.upper(),
                    request.contract_key,
                    request.sec_type,
                    request.expiry,
                    float(request.strike),
                    request.right,
                    int(request.multiplier),
                    int(con_id),
                    request.action.upper(),
                    int(request.quantity),
                    request.order_type,
                    request.limit_price,
                    request.strategy_id,
                    request.signal_id,
                    int(request.is_closing),
                    closure_reason,
                ),
            )
            existed = cur.rowcount == 0
            if not existed:
                conn.execute(
                    "INSERT INTO order_state (client_order_id, mode, status, filled, "
                    "remaining, is_final, updated_at) VALUES (?,?,?,0,?,0,?)",
                    (coid, mode, queries.INTENT_STATUS, int(request.quantity), now),
                )
            row = conn.execute(
                "SELECT * FROM intents WHERE client_order_id = ?", (coid,)
            ).fetchone()
            if row["mode"] != mode:  # pragma: no cover - the open-time check prevents it
                raise JournalModeError(f"intent {coid} belongs to mode {row['mode']}")
        return IntentResult(queries.intent_from_row(row), existed)

    def _require_intent(self, conn: sqlite3.Connection, client_order_id: str) -> None:
        row = conn.execute(
            "SELECT 1 FROM intents WHERE mode = ? AND client_order_id = ?",
            (self._mode.value, client_order_id),
        ).fetchone()
        if row is None:
            raise UnknownOrderError(
                f"no order intent {client_order_id!r} in {self._mode.value} journal {self._path}"
            )

    def attach_broker_ids(
        self, client_order_id: str, broker_order_id: int | None, perm_id: int | None
    ) -> None:
        """Record the broker's order id and permId for an intent (history row + mirror)."""
        with self._write("attach_broker_ids") as conn:
            self._require_intent(conn, client_order_id)
            now = self._now()
            conn.execute(
                "INSERT INTO broker_ids (mode, client_order_id, at, broker_order_id, perm_id) "
                "VALUES (?,?,?,?,?)",
                (self._mode.value, client_order_id, now, broker_order_id, perm_id),
            )
            conn.execute(
                "UPDATE order_state SET broker_order_id = COALESCE(?, broker_order_id), "
                "perm_id = COALESCE(?, perm_id), updated_at = ? WHERE client_order_id = ?",
                (broker_order_id, perm_id or None, now, client_order_id),
            )

    def record_status(
        self,
        client_order_id: str,
        status: str,
        filled: float | None = None,
        remaining: float | None = None,
        avg_price: float | None = None,
        *,
        error_code: int | None = None,
        error_text: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> int:
        """Append a status change and update the order's mirror row; returns the change id."""
        status_text = str(getattr(status, "value", status))
        with self._write("record_status") as conn:
            self._require_intent(conn, client_order_id)
            now = self._now()
            cur = conn.execute(
                "INSERT INTO status_changes (mode, client_order_id, at, status, filled, "
                "remaining, avg_price, error_code, error_text, detail_json) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    self._mode.value,
                    client_order_id,
                    now,
                    status_text,
                    filled,
                    remaining,
                    avg_price,
                    error_code,
                    redact(error_text) if error_text else error_text,
                    _dumps(detail or {}),
                ),
            )
            conn.execute(
                "UPDATE order_state SET status = ?, filled = COALESCE(?, filled), "
                "remaining = COALESCE(?, remaining), avg_price = COALESCE(?, avg_price), "
                "error_code = COALESCE(?, error_code), error_text = COALESCE(?, error_text), "
                "is_final = MAX(is_final, ?), updated_at = ? WHERE client_order_id = ?",
                (
                    status_text,
                    filled,
                    remaining,
                    avg_price,
                    error_code,
                    redact(error_text) if error_text else error_text,
                    int(queries.is_final_status(status_text)),
                    now,
                    client_order_id,
                ),
            )
            return _rowid(cur)

    def record_fill(
        self,
        exec_id: str,
        *,
        client_order_id: str | None,
        symbol: str,
        contract_key: str,
        side: str,
        quantity: float,
        price: float,
        at: datetime | None = None,
        broker_order_id: int | None = None,
        perm_id: int | None = None,
    ) -> Recorded:
        """Record an execution; a second fill with the same exec id is ignored (duplicate)."""
        _check_fill(exec_id, quantity, price)
        with self._write("record_fill") as conn:
            return self._insert_fill(
                conn,
                exec_id=exec_id,
                client_order_id=client_order_id,
                symbol=symbol,
                contract_key=contract_key,
                side=side,
                quantity=quantity,
                price=price,
                at=at,
                broker_order_id=broker_order_id,
                perm_id=perm_id,
                simulated=False,
            )

    def _insert_fill(
        self,
        conn: sqlite3.Connection,
        *,
        exec_id: str,
        client_order_id: str | None,
        symbol: str,
        contract_key: str,
        side: str,
        quantity: float,
        price: float,
        at: datetime | None,
        broker_order_id: int | None,
        perm_id: int | None,
        simulated: bool,
    ) -> Recorded:
        now = self._now()
        sibling = self._revision_sibling(conn, "fills", exec_id)
        if sibling is not None:
            row_id, sibling_id = sibling
            if exec_revision(exec_id) > exec_revision(sibling_id):
                # IB's correction of an execution: it replaces the fill it corrects
                conn.execute(
                    "UPDATE fills SET exec_id = ?, quantity = ?, price = ?, recorded_at = ? "
                    "WHERE id = ?",
                    (exec_id, float(quantity), float(price), now, row_id),
                )
            return Recorded(row_id, True)
        cur = conn.execute(
            "INSERT INTO fills (mode, exec_id, client_order_id, at, recorded_at, symbol, "
            "contract_key, side, quantity, price, broker_order_id, perm_id, simulated) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(exec_id) DO NOTHING",
            (
                self._mode.value,
                exec_id,
                client_order_id,
                queries.ts(at) if at is not None else now,
                now,
                symbol.upper(),
                contract_key,
                _side(side),
                float(quantity),
                float(price),
                broker_order_id,
                perm_id,
                int(simulated),
            ),
        )
        if cur.rowcount == 0:
            row = conn.execute("SELECT id FROM fills WHERE exec_id = ?", (exec_id,)).fetchone()
            return Recorded(int(row[0]), True)
        return Recorded(_rowid(cur), False)

    def record_settlement(
        self,
        exec_id: str,
        *,
        contract: ContractSpec,
        side: str,
        quantity: float,
        price: float,
        at: datetime,
        outcome: str,
        option_key: str,
    ) -> Recorded:
        """One leg of IB's own booking at an option's expiry (no order of ours: order id 0):
        the option leaving the book (``contract`` is the option) or the shares an exercise or
        assignment delivered (``contract`` the underlying). One transaction writes it as ours:
        a final intent ``SETTLEMENT`` (the operator and strategy of the last intent on the
        option), its fill, and for the option leg the closure ``OPTION_EXPIRY``. Idempotent on
        the exec id (a second call is a duplicate)."""
        _check_fill(exec_id, quantity, price if price > 0 else 1.0)  # an expiry books at 0
        if not math.isfinite(price) or price < 0:
            raise ValueError(f"settlement price must be finite and >= 0, got {price!r}")
        coid = settlement_order_id(exec_id)
        mode = self._mode.value
        with self._write("record_settlement") as conn:
            known = conn.execute("SELECT id FROM fills WHERE exec_id = ?", (exec_id,)).fetchone()
            if known is not None:
                return Recorded(int(known[0]), True)
            last = conn.execute(
                "SELECT operator_id, strategy_id FROM intents WHERE mode = ? AND contract_key = ? "
                "ORDER BY id DESC LIMIT 1",
                (mode, option_key),
            ).fetchone()
            operator, strategy = (str(last[0]), str(last[1])) if last else ("IB", "settlement")
            now = self._now()
            option_leg = contract.key == option_key
            conn.execute(
                "INSERT INTO intents (mode, client_order_id, created_at, operator_id, "
                "decision_id, symbol, contract_key, sec_type, expiry, strike, right, "
                "multiplier, con_id, action, quantity, order_type, limit_price, strategy_id, "
                "signal_id, is_closing, closure_reason) "
                "VALUES (?,?,?,?,NULL,?,?,?,?,?,?,?,?,?,?,'SETTLEMENT',NULL,?,?,?,?)",
                (
                    mode,
                    coid,
                    now,
                    operator,
                    contract.symbol.upper(),
                    contract.key,
                    contract.sec_type,
                    contract.expiry,
                    float(contract.strike),
                    contract.right,
                    int(contract.multiplier or 1) if contract.sec_type != "STK" else 1,
                    int(contract.con_id),
                    _side(side),
                    round(quantity),
                    strategy,
                    outcome,
                    int(option_leg),
                    ClosureReason.OPTION_EXPIRY.value if option_leg else None,
                ),
            )
            conn.execute(
                "INSERT INTO order_state (client_order_id, mode, status, filled, remaining, "
                "avg_price, is_final, updated_at) VALUES (?,?,'Filled',?,0,?,1,?)",
                (coid, mode, float(quantity), float(price), now),
            )
            recorded = self._insert_fill(
                conn,
                exec_id=exec_id,
                client_order_id=coid,
                symbol=contract.symbol,
                contract_key=contract.key,
                side=side,
                quantity=quantity,
                price=price,
                at=at,
                broker_order_id=None,
                perm_id=None,
                simulated=False,
            )
            if option_leg:
                self._insert_closure(
                    conn,
                    ClosureReason.OPTION_EXPIRY.value,
                    contract.symbol,
                    contract.key,
                    quantity,
                    coid,
                    {"outcome": outcome, "exec_id": exec_id},
                )
            self._insert_event(
                conn,
                "option_settled",
                {
                    "exec_id": exec_id,
                    "contract": contract.key,
                    "option": option_key,
                    "side": _side(side),
                    "quantity": quantity,
                    "price": price,
                    "outcome": outcome,
                },
            )
        return recorded

    def record_commission(
        self,
        exec_id: str,
        commission: float,
        currency: str = "USD",
        realized_pnl: float | None = None,
    ) -> Recorded:
        """Record the commission report of an execution (once per exec id)."""
        if not math.isfinite(commission):
            raise ValueError("commission must be finite")
        if realized_pnl is not None and not math.isfinite(realized_pnl):
            realized_pnl = None  # IB reports "unset" as a huge double
        with self._write("record_commission") as conn:
            return self._insert_commission(conn, exec_id, commission, currency, realized_pnl)

    @staticmethod
    def _revision_sibling(
        conn: sqlite3.Connection, table: str, exec_id: str
    ) -> tuple[int, str] | None:
        """The row of another revision of the same execution (``X.01`` for ``X.02``), or of
        the same exec id: every execution is journaled exactly once."""
        base = exec_id_base(exec_id)
        if base == exec_id:
            row = conn.execute(f"SELECT id, exec_id FROM {table} WHERE exec_id = ?", (exec_id,))
        else:
            row = conn.execute(
                f"SELECT id, exec_id FROM {table} WHERE exec_id >= ? AND exec_id < ? "
                "AND length(exec_id) = ? ORDER BY id LIMIT 1",  # the unique index's range
                (base + ".", base + "/", len(exec_id)),
            )
        found = row.fetchone()
        return (int(found[0]), str(found[1])) if found is not None else None

    def _insert_commission(
        self,
        conn: sqlite3.Connection,
        exec_id: str,
        commission: float,
        currency: str,
        realized_pnl: float | None,
    ) -> Recorded:
        sibling = self._revision_sibling(conn, "commissions", exec_id)
        if sibling is not None:
            row_id, sibling_id = sibling
            if exec_revision(exec_id) > exec_revision(sibling_id):
                conn.execute(
                    "UPDATE commissions SET exec_id = ?, commission = ?, realized_pnl = ? "
                    "WHERE id = ?",
                    (exec_id, float(commission), realized_pnl, row_id),
                )
            return Recorded(row_id, True)
        cur = conn.execute(
            "INSERT INTO commissions (mode, exec_id, at, commission, currency, realized_pnl) "
            "VALUES (?,?,?,?,?,?) ON CONFLICT(exec_id) DO NOTHING",
            (self._mode.value, exec_id, self._now(), float(commission), currency, realized_pnl),
        )
        if cur.rowcount == 0:
            row = conn.execute(
                "SELECT id FROM commissions WHERE exec_id = ?", (exec_id,)
            ).fetchone()
            return Recorded(int(row[0]), True)
        return Recorded(_rowid(cur), False)

    def record_result(
        self,
        client_order_id: str,
        status: _OrderStatus | str,
        *,
        broker_order_id: int | None = None,
        fill_price: float | None = None,
        fill_quantity: float | None = None,
        rejection_reason: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> int:
        """Record the final OrderResult of an intent; marks the order final."""
        status_text = str(getattr(status, "value", status))
        with self._write("record_result") as conn:
            self._require_intent(conn, client_order_id)
            now = self._now()
            cur = conn.execute(
                "INSERT INTO results (mode, client_order_id, at, status, broker_order_id, "
                "fill_price, fill_quantity, rejection_reason, detail_json) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    self._mode.value,
                    client_order_id,
                    now,
                    status_text,
                    broker_order_id,
                    fill_price,
                    fill_quantity,
                    rejection_reason,
                    _dumps(detail or {}),
                ),
            )
            final = status_text.lower() != _OrderStatus.PENDING.value
            conn.execute(
                "UPDATE order_state SET is_final = MAX(is_final, ?), "
                "broker_order_id = COALESCE(broker_order_id, ?), updated_at = ? "
                "WHERE client_order_id = ?",
                (int(final), broker_order_id, now, client_order_id),
            )
            return _rowid(cur)

    def record_order_result(self, result: OrderResultLike, **detail: Any) -> int:
        """``record_result`` from an ``OrderResult``-shaped object (``order_id`` = coid)."""
        return self.record_result(
            result.order_id,
            str(getattr(result.status, "value", result.status)),
            broker_order_id=result.ibkr_order_id,
            fill_price=result.fill_price,
            fill_quantity=result.fill_quantity,
            rejection_reason=result.rejection_reason,
            detail=detail or None,
        )

    def record_closure(
        self,
        reason: ClosureReason | str,
        *,
        symbol: str,
        contract_key: str,
        quantity: float,
        client_order_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> int:
        """Record why a position was closed, linked to the closing intent when there is one."""
        reason_value = ClosureReason(reason).value  # ValueError for an unknown reason
        with self._write("record_closure") as conn:
            if client_order_id is not None:
                self._require_intent(conn, client_order_id)
            return self._insert_closure(
                conn, reason_value, symbol, contract_key, quantity, client_order_id, detail or {}
            )

    def _insert_closure(
        self,
        conn: sqlite3.Connection,
        reason_value: str,
        symbol: str,
        contract_key: str,
        quantity: float,
        client_order_id: str | None,
        detail: dict[str, Any],
    ) -> int:
        cur = conn.execute(
            "INSERT INTO closures (mode, at, client_order_id, symbol, contract_key, "
            "quantity, reason, detail_json) VALUES (?,?,?,?,?,?,?,?)",
            (
                self._mode.value,
                self._now(),
                client_order_id,
                symbol.upper(),
                contract_key,
                float(quantity),
                reason_value,
                _dumps(detail),
            ),
        )
        return _rowid(cur)

    # --- the dry-run simulated book -----------------------------------------------------

    def seed_simulated_cash(self, amount: float) -> bool:
        """Seed the simulated book's cash once; False (and no change) if already seeded."""
        if not math.isfinite(amount) or amount < 0:
            raise ValueError("initial cash must be a finite, non-negative number")
        with self._write("seed_simulated_cash") as conn:
            now = self._now()
            cur = conn.execute(
                "INSERT INTO sim_account (mode, initial_cash, cash, seeded_at, updated_at) "
                "VALUES (?,?,?,?,?) ON CONFLICT(mode) DO NOTHING",
                (self._mode.value, float(amount), float(amount), now, now),
            )
            return cur.rowcount == 1

    def simulated_cash(self) -> float | None:
        """The simulated book's cash, or None before it is seeded."""
        with self._read("simulated_cash") as conn:
            row = conn.execute(
                "SELECT cash FROM sim_account WHERE mode = ?", (self._mode.value,)
            ).fetchone()
        return None if row is None else float(row[0])

    def simulated_initial_cash(self) -> float | None:
        with self._read("simulated_initial_cash") as conn:
            row = conn.execute(
                "SELECT initial_cash FROM sim_account WHERE mode = ?", (self._mode.value,)
            ).fetchone()
        return None if row is None else float(row[0])

    def simulated_positions(self) -> list[SimPosition]:
        with self._read("simulated_positions") as conn:
            return queries.sim_positions(conn, self._mode.value)

    def apply_simulated_fill(
        self,
        *,
        exec_id: str,
        client_order_id: str | None,
        contract: ContractSpec,
        action: str,
        quantity: int,
        price: float,
        commission: float = 0.0,
        at: datetime | None = None,
    ) -> SimFillOutcome:
        """Apply a dry-run fill: the fill row, cash and position change in ONE transaction.

        ``price`` is per unit (the option premium); cash moves by
        ``quantity * price * multiplier`` plus commission. The position follows the shared
        arithmetic of :mod:`ibkr_trader.book` (IB's convention: the average cost includes the
        opening commission, realized P&L is net of the closing commission). A repeated exec id changes nothing
        and reports ``duplicate=True``. The book must have been seeded.
        """
        if self._mode is not ExecutionMode.DRY_RUN:
            raise JournalError("the simulated book exists only in a dry_run journal")
        _check_fill(exec_id, quantity, price)
        if not math.isfinite(commission) or commission < 0:
            raise ValueError("commission must be finite and non-negative")
        side = _side(action)
        mode = self._mode.value
        mult = int(contract.multiplier) or 1
        with self._write("apply_simulated_fill") as conn:
            account = conn.execute(
                "SELECT cash FROM sim_account WHERE mode = ?", (mode,)
            ).fetchone()
            if account is None:
                raise JournalError(
                    "the simulated book has no cash yet: call seed_simulated_cash() first"
                )
            key = contract.key
            pos = conn.execute(
                "SELECT quantity, avg_price, opened_at FROM sim_positions "
                "WHERE mode = ? AND contract_key = ?",
                (mode, key),
            ).fetchone()
            recorded = self._insert_fill(
                conn,
                exec_id=exec_id,
                client_order_id=client_order_id,
                symbol=contract.symbol,
                contract_key=key,
                side=side,
                quantity=quantity,
                price=price,
                at=at,
                broker_order_id=None,
                perm_id=None,
                simulated=True,
            )
            q0 = float(pos["quantity"]) if pos is not None else 0.0
            a0 = float(pos["avg_price"]) if pos is not None else 0.0
            if recorded.duplicate:
                return SimFillOutcome(recorded.id, True, float(account[0]), q0, a0, 0.0)
            now = self._now()
            when = queries.ts(at) if at is not None else now
            dq = float(quantity) if side == "BUY" else -float(quantity)
            effect = apply_fill(Holding(q0, a0), dq, price, mult, commission)
            q1, a1 = effect.holding.quantity, effect.holding.avg_cost
            realized = effect.realized
            opened_at = when if effect.opened or pos is None else pos["opened_at"]
            cash = float(account[0]) + effect.cash_delta
            conn.execute(
                "UPDATE sim_account SET cash = ?, updated_at = ? WHERE mode = ?",
                (cash, now, mode),
            )
            if q1 == 0:
                conn.execute(
                    "DELETE FROM sim_positions WHERE mode = ? AND contract_key = ?", (mode, key)
                )
            else:
                conn.execute(
                    "INSERT INTO sim_positions (contract_key, mode, symbol, sec_type, expiry, "
                    "strike, right, multiplier, con_id, quantity, avg_price, opened_at, "
                    "updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) "
                    "ON CONFLICT(contract_key) DO UPDATE SET quantity = excluded.quantity, "
                    "avg_price = excluded.avg_price, opened_at = excluded.opened_at, "
                    "con_id = CASE WHEN excluded.con_id != 0 THEN excluded.con_id "
                    "ELSE sim_positions.con_id END, updated_at = excluded.updated_at",
                    (
                        key,
                        mode,
                        contract.symbol.upper(),
                        contract.sec_type,
                        contract.expiry,
                        float(contract.strike),
                        contract.right,
                        mult,
                        int(contract.con_id),
                        q1,
                        a1,
                        opened_at,
                        now,
                    ),
                )
            if commission:
                self._insert_commission(conn, exec_id, commission, "USD", realized or None)
            return SimFillOutcome(recorded.id, False, cash, q1, a1 if q1 else 0.0, realized)

    # --- queries ------------------------------------------------------------------------

    def orders(
        self,
        since: datetime | None = None,
        symbol: str | None = None,
        limit: int = queries.DEFAULT_LIMIT,
    ) -> list[OrderRow]:
        """Intents with their current status, oldest first (the latest ``limit``)."""
        with self._read("orders") as conn:
            return queries.orders(conn, self._mode.value, since, symbol, limit)

    def our_net_positions(self) -> dict[str, int]:
        """Per contract, the signed quantity our own orders' fills add up to (fills of an
        intent we journaled; an execution is counted once, corrections included): the part
        of a broker position that is ours."""
        with self._read("our_net_positions") as conn:
            rows = conn.execute(
                "SELECT f.contract_key, SUM(CASE WHEN f.side = 'BUY' THEN f.quantity "
                "ELSE -f.quantity END) FROM fills f JOIN intents i "
                "ON i.client_order_id = f.client_order_id AND i.mode = f.mode "
                "WHERE f.mode = ? GROUP BY f.contract_key",
                (self._mode.value,),
            ).fetchall()
        return {str(key): round(float(qty)) for key, qty in rows if round(float(qty or 0)) != 0}

    def fills(
        self,
        since: datetime | None = None,
        symbol: str | None = None,
        limit: int = queries.DEFAULT_LIMIT,
        client_order_id: str | None = None,
    ) -> list[FillRecord]:
        with self._read("fills") as conn:
            return queries.fills(conn, self._mode.value, since, symbol, limit, client_order_id)

    def closures(
        self,
        since: datetime | None = None,
        symbol: str | None = None,
        limit: int = queries.DEFAULT_LIMIT,
    ) -> list[ClosureRecord]:
        with self._read("closures") as conn:
            return queries.closures(conn, self._mode.value, since, symbol, limit)

    def decisions(
        self,
        since: datetime | None = None,
        symbol: str | None = None,
        limit: int = queries.DEFAULT_LIMIT,
        approved: bool | None = None,
    ) -> list[DecisionRecord]:
        with self._read("decisions") as conn:
            return queries.decisions(conn, self._mode.value, since, symbol, limit, approved)

    def decision(self, decision_id: int) -> DecisionRecord | None:
        with self._read("decision") as conn:
            return queries.decision(conn, self._mode.value, decision_id)

    def events(
        self,
        since: datetime | None = None,
        symbol: str | None = None,
        limit: int = queries.DEFAULT_LIMIT,
        kind: str | None = None,
    ) -> list[EventRecord]:
        with self._read("events") as conn:
            return queries.events(conn, self._mode.value, since, symbol, limit, kind)

    def trading_states(
        self, since: datetime | None = None, limit: int = queries.DEFAULT_LIMIT
    ) -> list[TradingStateRecord]:
        with self._read("trading_states") as conn:
            return queries.trading_states(conn, self._mode.value, since, limit)

    def find_intent(self, client_order_id: str) -> IntentRecord | None:
        order = self.find_order(client_order_id)
        return None if order is None else order.intent

    def find_order(self, client_order_id: str) -> OrderRow | None:
        with self._read("find_order") as conn:
            return queries.find_order(conn, self._mode.value, client_order_id)

    def intent_by_perm_id(self, perm_id: int) -> OrderRow | None:
        with self._read("intent_by_perm_id") as conn:
            return queries.order_by_perm_id(conn, self._mode.value, perm_id)

    def intents_by_status(self, *statuses: str) -> list[OrderRow]:
        """Orders whose current status is one of ``statuses`` (case-insensitive)."""
        with self._read("intents_by_status") as conn:
            return queries.orders_by_status(conn, self._mode.value, statuses, unresolved=False)

    def unresolved_intents(self) -> list[OrderRow]:
        """Orders not final yet (including intents never acknowledged): for reconciliation."""
        with self._read("unresolved_intents") as conn:
            return queries.orders_by_status(conn, self._mode.value, None, unresolved=True)

    def final_closes_of(self, contract_keys: list[str]) -> dict[str, int]:
        """:meth:`final_closes` of several contracts in one read (a close-all's)."""
        with self._read("final_closes") as conn:
            return {key: queries.final_closes(conn, self._mode.value, key) for key in contract_keys}

    def final_closes(self, contract_key: str) -> int:
        """How many closing intents of ``contract_key`` are final (a close's sequence number)."""
        with self._read("final_closes") as conn:
            return queries.final_closes(conn, self._mode.value, contract_key)

    def known_exec_ids(self, exec_ids: list[str]) -> set[str]:
        """Which of ``exec_ids`` the journal has as fills."""
        if not exec_ids:
            return set()
        with self._read("known_exec_ids") as conn:
            marks = ",".join("?" * len(exec_ids))
            rows = conn.execute(f"SELECT exec_id FROM fills WHERE exec_id IN ({marks})", exec_ids)
            return {str(r[0]) for r in rows}

    def client_order_ids(self) -> set[str]:
        """Every client order id with an intent in this mode's journal."""
        with self._read("client_order_ids") as conn:
            return queries.client_order_ids(conn, self._mode.value)

    def intents_since(self, after_id: int) -> tuple[int, list[str]]:
        """The newest intent's row id and the client order ids journaled after ``after_id``
        (any process writing this journal): what another instance did since a look."""
        with self._read("intents_since") as conn:
            return queries.intents_since(conn, self._mode.value, after_id)

    def explain(self, client_order_id: str) -> Explanation | None:
        """Everything about one order: intent, risk decision, statuses, fills, closure."""
        with self._read("explain") as conn:
            return queries.explain(conn, self._mode.value, client_order_id)


# --- module helpers -------------------------------------------------------------------------


def _rowid(cur: sqlite3.Cursor) -> int:
    rowid = cur.lastrowid
    if rowid is None:  # pragma: no cover - INSERT always sets it
        raise JournalError("insert returned no row id")
    return rowid


def _side(action: str) -> str:
    side = action.strip().upper()
    if side not in ("BUY", "SELL", "BOT", "SLD"):
        raise ValueError(f"unknown side {action!r}")
    return {"BOT": "BUY", "SLD": "SELL"}.get(side, side)


def _check_fill(exec_id: str, quantity: float, price: float) -> None:
    if not exec_id:
        raise ValueError("a fill needs an exec id")
    if not math.isfinite(quantity) or quantity <= 0:
        raise ValueError("fill quantity must be positive")
    if not math.isfinite(price) or price <= 0:
        raise ValueError(f"fill price must be positive and finite, got {price!r}")


def _inspect_file(path: Path, *, read_only: bool) -> bool:
    """Refuse what is not ours before SQLite touches it; True when a new file is needed."""
    try:
        info = path.stat()
    except FileNotFoundError:
        if read_only:
            raise JournalError(f"no journal at {path}") from None
        return True
    except OSError as exc:
        raise JournalError(f"cannot access journal {path}: {exc}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise NotAJournalError(f"{path} is not a regular file; refusing to use it as a journal")
    if info.st_size == 0:
        if read_only:
            raise JournalError(f"journal {path} is empty")
        new = True
    else:
        try:
            with path.open("rb") as handle:
                header = handle.read(100)
        except OSError as exc:
            raise JournalError(f"cannot read journal {path}: {exc}") from exc
        if len(header) < 100 or not header.startswith(SQLITE_HEADER):
            raise NotAJournalError(
                f"{path} is not an ibkr-trader journal (not an SQLite database); "
                "it was left untouched"
            )
        app_id = int.from_bytes(header[68:72], "big")
        if app_id != APPLICATION_ID:
            raise NotAJournalError(
                f"{path} is an SQLite database but not an ibkr-trader journal "
                f"(application id {app_id:#x}); it was left untouched"
            )
        new = False
    if not read_only and (info.st_mode & 0o222 == 0 or not os.access(path, os.W_OK)):
        raise JournalReadOnlyError(
            f"journal {path} is read-only (mode {stat.filemode(info.st_mode)}); "
            "nothing was written. Make it writable, or open it read-only to query it"
        )
    return new


def _connect(path: Path, *, read_only: bool, busy_timeout: float) -> sqlite3.Connection:
    uri = f"{path.resolve().as_uri()}?mode={'ro' if read_only else 'rwc'}"
    try:
        conn = sqlite3.connect(
            uri,
            uri=True,
            timeout=busy_timeout,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,
        )
    except sqlite3.Error as exc:
        raise _translate(path, "open", busy_timeout, exc) from exc
    conn.row_factory = sqlite3.Row
    return conn


def _configure(
    conn: sqlite3.Connection, *, read_only: bool, synchronous: str, busy_timeout: float
) -> None:
    conn.execute(f"PRAGMA busy_timeout = {max(0, int(busy_timeout * 1000))}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    if not read_only:
        conn.execute("PRAGMA journal_size_limit = 67108864")


def _prepare(
    conn: sqlite3.Connection,
    path: Path,
    mode: ExecutionMode,
    *,
    new: bool,
    read_only: bool,
    check: bool,
) -> None:
    if new:
        # In rollback mode, so page 1 (with the application id) is written to the main file
        # itself: the header check above then recognises the file without SQLite.
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            _migrate(conn, 0)
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [
                    ("magic", MAGIC),
                    ("mode", mode.value),
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("created_schema_version", str(SCHEMA_VERSION)),
                ],
            )
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return

    app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
    if app_id != APPLICATION_ID:  # pragma: no cover - the header check catches it first
        raise NotAJournalError(f"{path} is not an ibkr-trader journal (application id)")
    if check:
        result = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
        if result != "ok":
            raise JournalCorruptError(
                f"journal {path} is damaged ({result}); it was not modified. "
                "Keep a copy and recover it with the sqlite3 .recover command"
            )
    if not read_only:
        current = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        if current != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
    meta = _read_meta(conn, path)
    if meta.get("magic") != MAGIC:
        raise NotAJournalError(f"{path} has no ibkr-trader journal magic; it was left untouched")
    file_mode = meta.get("mode")
    if file_mode != mode.value:
        raise JournalModeError(
            f"journal {path} holds {file_mode} records; refusing to open it as {mode.value} "
            "(dry-run and paper never mix)"
        )
    version = int(meta.get("schema_version", "0"))
    if version > SCHEMA_VERSION:
        raise JournalSchemaError(
            f"journal {path} has schema v{version}, newer than this program's "
            f"v{SCHEMA_VERSION}; upgrade ibkr-trader"
        )
    _check_row_modes(conn, path, mode)
    if version < SCHEMA_VERSION:
        if read_only:
            raise JournalSchemaError(
                f"journal {path} has schema v{version} and needs migrating to "
                f"v{SCHEMA_VERSION}: open it once for writing"
            )
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            version = int(_read_meta(conn, path).get("schema_version", "0"))
            _migrate(conn, version)
            conn.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
            )
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (f"migrated_from_v{version}", mode.value),
            )
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise JournalSchemaError(
                f"migrating journal {path} from v{version} to v{SCHEMA_VERSION} failed "
                f"({exc}); the file was left at v{version}"
            ) from exc
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def _migrate(conn: sqlite3.Connection, from_version: int) -> None:
    for version in range(from_version + 1, SCHEMA_VERSION + 1):
        for statement in MIGRATIONS[version]:
            conn.execute(statement)


def _read_meta(conn: sqlite3.Connection, path: Path) -> dict[str, str]:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if exists is None:
        raise NotAJournalError(f"{path} has no journal meta table; it was left untouched")
    return {str(r[0]): str(r[1]) for r in conn.execute("SELECT key, value FROM meta")}


def _check_row_modes(conn: sqlite3.Connection, path: Path, mode: ExecutionMode) -> None:
    tables = {
        str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    for table in MODE_TABLES:
        if table not in tables:
            continue
        row = conn.execute(f"SELECT mode FROM {table} WHERE mode != ? LIMIT 1", (mode.value,))
        other = row.fetchone()
        if other is not None:
            raise JournalModeError(
                f"journal {path} holds {other[0]} rows in {table}; refusing to open it as "
                f"{mode.value} (dry-run and paper never mix)"
            )


@contextmanager
def _translated(path: Path, op: str, busy_timeout: float) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise _translate(path, op, busy_timeout, exc) from exc


def _translate(path: Path, op: str, busy_timeout: float, exc: sqlite3.Error) -> JournalError:
    code = int(getattr(exc, "sqlite_errorcode", -1) or -1) & 0xFF
    text = str(exc)
    lowered = text.lower()
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in lowered:
        return JournalLockedError(
            f"{op}: journal {path} is locked by another connection (waited "
            f"{busy_timeout:g} s); nothing was written. Is another ibkr-trader running?"
        )
    if code == _SQLITE_READONLY or "readonly" in lowered:
        return JournalReadOnlyError(
            f"{op}: journal {path} is read-only ({text}); nothing was written"
        )
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or "malformed" in lowered:
        return JournalCorruptError(
            f"{op}: journal {path} is damaged or not a database ({text}); " "it was not modified"
        )
    if code == _SQLITE_FULL:
        return JournalError(f"{op}: the disk holding journal {path} is full; nothing written")
    if code in (_SQLITE_CANTOPEN, _SQLITE_IOERR):
        return JournalError(f"{op}: cannot read or write journal {path}: {text}")
    return JournalError(f"{op}: journal {path}: {text}")
