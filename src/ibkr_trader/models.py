"""Shared domain types: the vocabulary every room of ibkr_trader speaks.

Nothing here imports ib_async (only ``ibkr_trader.broker`` does) and nothing here does I/O.
The names follow the handoff (Task 2.6, sections 3 and 5): TradingSignal, StrategyContext,
TradeRequest, OrderStatus, ExecutionMode, ValidationResult, Position.

Input types that come from outside the process (signals, contexts) are validated pydantic
models: a malformed signal is a ``pydantic.ValidationError`` (a ``ValueError``) at the edge,
never a stray order.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


_RIGHT_ALIASES = {"C": "C", "CALL": "C", "P": "P", "PUT": "P"}
_ORDER_TYPE_ALIASES = {"MKT": "MKT", "MARKET": "MKT", "LMT": "LMT", "LIMIT": "LMT"}


def _check_expiry(value: str) -> str:
    if len(value) != 8 or not value.isdigit():
        raise ValueError(f"expiry must be YYYYMMDD, got {value!r}")
    datetime.strptime(value, "%Y%m%d")  # raises ValueError on 20261399
    return value


class TradingSignal(BaseModel):
    """A strategy's request to trade one option contract (handoff 5.3), validated."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    symbol: str = Field(min_length=1, max_length=12, pattern=r"^[A-Z][A-Z0-9.]*$", strict=True)
    action: OrderAction
    quantity: int = Field(gt=0, le=10_000, strict=True)
    order_type: OrderType = OrderType.LIMIT
    limit_price: float | None = None
    expiry: str = Field(strict=True)
    strike: float = Field(gt=0)
    right: OptionRight
    signal_strength: float = Field(default=1.0, ge=0.0, le=1.0)
    strategy_id: str = Field(min_length=1, max_length=64, strict=True)
    timestamp: datetime
    signal_id: str = Field(default="", max_length=128, strict=True)

    @field_validator("right", mode="before")
    @classmethod
    def _normalise_right(cls, value: Any) -> Any:
        if isinstance(value, str):
            return _RIGHT_ALIASES.get(value.strip().upper(), value)
        return value

    @field_validator("order_type", mode="before")
    @classmethod
    def _normalise_order_type(cls, value: Any) -> Any:
        if isinstance(value, str):
            return _ORDER_TYPE_ALIASES.get(value.strip().upper(), value)
        return value

    @field_validator("expiry")
    @classmethod
    def _valid_expiry(cls, value: str) -> str:
        return _check_expiry(value)

    @field_validator("strike", "limit_price")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("timestamp must be timezone-aware")
        return value

    @model_validator(mode="after")
    def _limit_matches_type(self) -> TradingSignal:
        if self.order_type is OrderType.LIMIT:
            if self.limit_price is None or self.limit_price <= 0:
                raise ValueError("a LMT signal needs a positive limit_price")
        elif self.limit_price is not None:
            raise ValueError("a MKT signal must not carry a limit_price")
        if not self.signal_id:
            digest = hashlib.sha256(
                "|".join(
                    [
                        self.strategy_id,
                        self.symbol,
                        self.expiry,
                        repr(self.strike),
                        self.right.value,
                        self.action.value,
                        str(self.quantity),
                        self.timestamp.isoformat(),
                    ]
                ).encode()
            ).hexdigest()[:16]
            object.__setattr__(self, "signal_id", f"sig-{digest}")
        return self


class StrategyContext(BaseModel):
    """Who is trading and how much it may risk (handoff 3.3 / issue 8)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy_id: str = Field(min_length=1, max_length=64, strict=True)
    strategy_name: str = Field(min_length=1, max_length=64, strict=True)
    risk_per_trade: float = Field(gt=0, le=1.0)  # fraction of equity
    take_profit_pct: float = Field(ge=0, le=10.0)
    stop_loss_pct: float = Field(ge=0, le=1.0)


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
