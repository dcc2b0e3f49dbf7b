"""Record types the journal returns, and the journal's exceptions.

Every record is a frozen dataclass; ``to_dict()`` gives a JSON-ready dict (datetimes and dates
as ISO strings) for ``ibkr-trader journal --json``.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple

from ibkr_trader.models import ContractSpec


class JournalError(Exception):
    """Anything the journal cannot do; the message says what and where."""


class NotAJournalError(JournalError):
    """The file exists but is not an ibkr-trader journal; it was left untouched."""


class JournalCorruptError(JournalError):
    """SQLite reports the file as damaged; nothing was written to it."""


class JournalLockedError(JournalError):
    """Another connection held the write lock for longer than the busy timeout."""


class JournalReadOnlyError(JournalError):
    """The file (or this handle) is read-only; the write was refused, nothing lost."""


class JournalModeError(JournalError):
    """The file belongs to another execution mode (dry-run and paper never mix)."""


class JournalSchemaError(JournalError):
    """The file's schema is newer than this program, or a migration failed."""


class UnknownOrderError(JournalError):
    """A client order id that the journal has no intent for."""


_PLAIN: frozenset[type] = frozenset({str, int, float, bool, type(None)})


def jsonable(value: Any) -> Any:
    """Convert records, datetimes, enums, tuples recursively into JSON-ready values."""
    if type(value) in _PLAIN:  # most values: nothing to convert (exact types: not enums)
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value


class _Record:
    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        result = jsonable(self)
        assert isinstance(result, dict)
        return result


@dataclass(frozen=True, slots=True)
class CheckRecord(_Record):
    """One risk check as journaled."""

    name: str
    passed: bool
    value: Any = None
    limit: Any = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class DecisionRecord(_Record):
    """A risk decision: approved or not, with every check, the limits hash and the request."""

    id: int
    mode: str
    at: datetime
    approved: bool
    symbol: str
    contract_key: str
    action: str
    quantity: int
    strategy_id: str
    signal_id: str
    operator_id: str
    client_order_id: str
    is_closing: bool
    trading_state: str
    limits_hash: str
    checks: tuple[CheckRecord, ...]
    reasons: tuple[str, ...]
    metrics: dict[str, Any]
    request: dict[str, Any]


@dataclass(frozen=True, slots=True)
class IntentRecord(_Record):
    """An order intent, written before anything is sent; never updated."""

    id: int
    mode: str
    client_order_id: str
    created_at: datetime
    operator_id: str
    decision_id: int | None
    symbol: str
    contract_key: str
    sec_type: str
    expiry: str
    strike: float
    right: str
    multiplier: int
    con_id: int
    action: str
    quantity: int
    order_type: str
    limit_price: float | None
    strategy_id: str
    signal_id: str
    is_closing: bool
    closure_reason: str | None


@dataclass(frozen=True, slots=True)
class OrderState(_Record):
    """The mirror of the broker's view of an order (the one row kind that is updated)."""

    status: str
    broker_order_id: int | None
    perm_id: int | None
    filled: float
    remaining: float | None
    avg_price: float | None
    error_code: int | None
    error_text: str | None
    is_final: bool
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class OrderRow(_Record):
    """An intent joined with its current state."""

    intent: IntentRecord
    state: OrderState


@dataclass(frozen=True, slots=True)
class StatusRecord(_Record):
    """One status change of an order."""

    id: int
    client_order_id: str
    at: datetime
    status: str
    filled: float | None
    remaining: float | None
    avg_price: float | None
    error_code: int | None
    error_text: str | None
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BrokerIdsRecord(_Record):
    """Broker order id / permId as attached to an intent at a moment."""

    at: datetime
    broker_order_id: int | None
    perm_id: int | None


@dataclass(frozen=True, slots=True)
class FillRecord(_Record):
    """An execution (exec id unique), with its commission once reported."""

    id: int
    exec_id: str
    client_order_id: str | None
    at: datetime
    symbol: str
    contract_key: str
    side: str
    quantity: float
    price: float
    broker_order_id: int | None
    perm_id: int | None
    simulated: bool
    commission: float | None = None
    currency: str | None = None
    realized_pnl: float | None = None


@dataclass(frozen=True, slots=True)
class ResultRecord(_Record):
    """The final OrderResult of an intent as the executor reported it."""

    id: int
    client_order_id: str
    at: datetime
    status: str
    broker_order_id: int | None
    fill_price: float | None
    fill_quantity: float | None
    rejection_reason: str | None
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ClosureRecord(_Record):
    """A position closure with its reason, linked to the closing intent."""

    id: int
    at: datetime
    client_order_id: str | None
    symbol: str
    contract_key: str
    quantity: float
    reason: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TradingStateRecord(_Record):
    id: int
    at: datetime
    state: str
    cause: str


@dataclass(frozen=True, slots=True)
class EventRecord(_Record):
    """A generic event or a connection event (``source`` says which)."""

    id: int
    at: datetime
    kind: str
    detail: dict[str, Any]
    source: str = "event"


@dataclass(frozen=True, slots=True)
class SimPosition(_Record):
    """A position of the dry-run simulated book (signed quantity, per-unit average price)."""

    contract_key: str
    symbol: str
    sec_type: str
    expiry: str
    strike: float
    right: str
    multiplier: int
    con_id: int
    quantity: float
    avg_price: float
    opened_at: datetime
    updated_at: datetime

    @property
    def contract(self) -> ContractSpec:
        return ContractSpec(
            symbol=self.symbol,
            sec_type=self.sec_type,
            expiry=self.expiry,
            strike=self.strike,
            right=self.right,
            multiplier=self.multiplier,
            con_id=self.con_id,
        )


class IntentResult(NamedTuple):
    """``record_intent``'s answer: the intent, and whether it already existed."""

    intent: IntentRecord
    existed: bool


class Recorded(NamedTuple):
    """An insert that ignores duplicates: the row id, and whether it was a duplicate."""

    id: int
    duplicate: bool


@dataclass(frozen=True, slots=True)
class SimFillOutcome(_Record):
    """What a simulated fill did to the book (all in one transaction)."""

    fill_id: int
    duplicate: bool
    cash: float
    position_quantity: float
    avg_price: float
    realized_pnl: float


@dataclass(frozen=True, slots=True)
class Explanation(_Record):
    """Everything the journal knows about one order: ``ibkr-trader explain ORDER_REF``."""

    intent: IntentRecord
    state: OrderState
    decision: DecisionRecord | None
    broker_ids: tuple[BrokerIdsRecord, ...] = ()
    statuses: tuple[StatusRecord, ...] = ()
    fills: tuple[FillRecord, ...] = ()
    results: tuple[ResultRecord, ...] = ()
    closures: tuple[ClosureRecord, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def closure_reason(self) -> str | None:
        if self.closures:
            return self.closures[-1].reason
        return self.intent.closure_reason
