"""Shared domain types: the vocabulary every room of ibkr_trader speaks.

Nothing here imports ib_async (only ``ibkr_trader.broker`` does) and nothing here does I/O.
The names follow the handoff (Task 2.6, sections 3 and 5): TradingSignal, StrategyContext,
TradeRequest, OrderStatus, ExecutionMode, ValidationResult, Position.

The input types that come from outside the process (TradingSignal, StrategyContext) are
validated pydantic models in :mod:`ibkr_trader.signals`: a malformed signal is a
``pydantic.ValidationError`` (a ``ValueError``) at the edge, never a stray order. This module
imports no pydantic: the journal's records and every command line use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

NY_TZ_NAME = "America/New_York"
DEFAULT_OPERATOR_ID = "CSATSPRIM"
OPTION_MULTIPLIER = 100


class ExecutionMode(StrEnum):
    """Where an approved order goes (handoff 3.1)."""

    DRY_RUN = "dry_run"  # simulated fill, recorded in the journal's simulated book
    PAPER = "paper"  # IB paper account (DU...) only
    LIVE = "live"  # blocked: nothing in this project places a live order


class OrderStatus(StrEnum):
    """Outcome of an order attempt (handoff 3.3)."""

    PENDING = "pending"
    FILLED = "filled"
    PARTIAL = "partial"
    REJECTED = "rejected"  # refused by the RiskManager (or the paper interlock)
    FAILED = "failed"  # qualification failure, broker rejection, broker error
    TIMEOUT = "timeout"  # nothing filled before the deadline; the rest was cancelled
    SIMULATED = "simulated"  # dry-run fill
    CANCELLED = "cancelled"


class TradingState(StrEnum):
    """Gate over every order (the risk manager's trading state)."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"  # only orders that reduce an existing position
    HALTED = "HALTED"  # nothing at all
    RECONCILING = "RECONCILING"  # no new orders until reconciliation finishes


class ClosureReason(StrEnum):
    """Why a position was closed (audit trail)."""

    DTE_RULE = "3_DTE_RULE"
    EMERGENCY_STOP = "EMERGENCY_STOP"
    DAILY_LOSS_LIMIT = "DAILY_LOSS_LIMIT"
    WEEKLY_DRAWDOWN = "WEEKLY_DRAWDOWN"
    DATA_QUARANTINE = "DATA_QUARANTINE"
    MANUAL = "MANUAL"
    STRATEGY_EXIT = "STRATEGY_EXIT"
    OPTION_EXPIRY = "OPTION_EXPIRY"  # IB's own booking: expired, exercised or assigned


class OrderAction(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    MARKET = "MKT"
    LIMIT = "LMT"


class OptionRight(StrEnum):
    CALL = "C"
    PUT = "P"


@dataclass(frozen=True, slots=True)
class ContractSpec:
    """An instrument on our side of the boundary (no ib_async types outside broker/)."""

    symbol: str
    sec_type: str = "OPT"  # OPT or STK
    expiry: str = ""  # YYYYMMDD for options
    strike: float = 0.0
    right: str = ""  # C or P
    multiplier: int = OPTION_MULTIPLIER
    exchange: str = "SMART"
    currency: str = "USD"
    con_id: int = 0  # 0 until qualified
    local_symbol: str = ""

    @property
    def key(self) -> str:
        """A stable identity for the instrument, qualified or not."""
        if self.sec_type == "STK":
            return f"{self.symbol}:STK"
        return f"{self.symbol}:{self.expiry}:{self.right}:{self.strike:g}"

    @property
    def is_option(self) -> bool:
        return self.sec_type in ("OPT", "FOP")


@dataclass(frozen=True, slots=True)
class QuoteCheck:
    """What the risk manager's data gate needs to know about the data behind an entry."""

    bid: float | None
    ask: float | None
    last: float | None
    is_stale: bool
    is_delayed: bool
    missing_fields: tuple[str, ...] = ()
    as_of: datetime | None = None


@dataclass(frozen=True, slots=True)
class TradeRequest:
    """A trade to validate and execute (handoff 3.3, plus what a careful risk check needs)."""

    symbol: str
    action: str  # BUY or SELL
    quantity: int
    order_type: str  # MKT or LMT
    limit_price: float | None
    strategy_id: str
    strategy_name: str
    risk_per_trade: float
    take_profit_pct: float
    stop_loss_pct: float
    expiry: str  # YYYYMMDD
    strike: float
    right: str  # C or P
    operator_id: str
    is_closing: bool = False  # True: reduces an existing position, never flips it
    signal_id: str = ""
    client_order_id: str = ""  # deterministic; sent as IB's orderRef
    multiplier: int = OPTION_MULTIPLIER
    reference_price: float | None = None  # per-unit premium estimate (mid, ask or limit)
    quote: QuoteCheck | None = None  # the data the entry was decided on
    closure_reason: str | None = None
    sec_type: str = "OPT"

    @property
    def contract_key(self) -> str:
        if self.sec_type == "STK":
            return f"{self.symbol}:STK"
        return f"{self.symbol}:{self.expiry}:{self.right}:{self.strike:g}"

    @property
    def signed_quantity(self) -> int:
        return self.quantity if self.action == "BUY" else -self.quantity


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One risk check: its name, the value seen, the limit, and a reason if it failed."""

    name: str
    passed: bool
    value: Any = None
    limit: Any = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """The RiskManager's decision (handoff 3.3): approved, every reason, the metrics."""

    approved: bool
    rejection_reasons: list[str] = field(default_factory=list)
    risk_metrics: dict[str, Any] = field(default_factory=dict)
    checks: tuple[CheckResult, ...] = ()
    limits_hash: str = ""
    trading_state: TradingState = TradingState.ACTIVE
    decision_id: int | None = None  # journal row id, once recorded


@dataclass(slots=True)
class Position:
    """An open position with Strategy C closure flags (handoff 3.4 / 5.5)."""

    position_id: str
    symbol: str
    quantity: int
    entry_price: float  # per unit (per share of the option), as a trader reads a chart
    current_price: float  # per unit
    unrealized_pnl: float  # in account currency, multiplier applied
    unrealized_pnl_pct: float  # against the absolute cost basis; negative is a loss
    days_to_expiry: int | None
    contract: ContractSpec
    should_close_3_dte: bool = False
    should_close_emergency: bool = False
    closure_trigger: str | None = None
    cost_basis: float = 0.0  # absolute, account currency
    price_source: str = ""  # "portfolio", "snapshot", "simulated"
    opened_on: date | None = None


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """Account values fed to the risk manager."""

    account: str
    net_liquidation: float
    available_funds: float
    cash: float
    day_trades_remaining: int | None = None  # IB's DayTradesRemaining, -1/None if not reported
    as_of: datetime | None = None


Side = Literal["BUY", "SELL"]
