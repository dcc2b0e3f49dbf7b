"""The inputs that come from outside the process: a strategy's TradingSignal (handoff 5.3) and
its StrategyContext, validated pydantic models.

A malformed signal is a ``pydantic.ValidationError`` (a ``ValueError``) at the edge, never a
stray order. The rest of the vocabulary (enums, ContractSpec, TradeRequest, ...) is
:mod:`ibkr_trader.models`, which imports no pydantic.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ibkr_trader.models import OptionRight, OrderAction, OrderType

__all__ = ["StrategyContext", "TradingSignal"]

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
