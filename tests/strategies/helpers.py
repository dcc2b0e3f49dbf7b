"""Shared builders for the strategy tests: market data, an option chain, a position."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from ibkr_trader.integrations.market_data_types import MarketData
from ibkr_trader.models import ContractSpec, Position
from ibkr_trader.strategies.base import OptionChainView, OptionQuote

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tuesday 10:00 New York
EXPIRATIONS = ("20261127", "20261130", "20261204", "20261211", "20261218")  # 3, 6, 10, 17, 24 DTE
STRIKES = tuple(float(s) for s in range(590, 611))


def market_data(**overrides: Any) -> MarketData:
    """SPY at 600.30 with neutral indicators and perfect quality; override what a test needs."""
    base = MarketData(
        symbol="SPY",
        timestamp=NOW,
        last_price=600.30,
        bid=600.29,
        ask=600.31,
        volume=1_000_000.0,
        ema_fast=600.0,
        ema_slow=600.0,
        rsi=50.0,
        vwap=600.0,
        bollinger_upper=602.0,
        bollinger_lower=598.0,
        bollinger_middle=600.0,
        server_time=NOW,
        last_trade_time=NOW,
        bars_used=60,
    )
    return replace(base, **overrides)


def chain(quotes: dict[tuple[str, float, str], OptionQuote] | None = None) -> OptionChainView:
    return OptionChainView(
        symbol="SPY", expirations=EXPIRATIONS, strikes=STRIKES, quotes=quotes or {}, as_of=NOW
    )


def quoted_chain(bid: float = 4.10, ask: float = 4.20, min_tick: float = 0.01) -> OptionChainView:
    """The chain with a quote for the 600 call and put of 2026-12-04 (the selected series)."""
    quote = OptionQuote(bid=bid, ask=ask, min_tick=min_tick)
    return chain({("20261204", 600.0, "C"): quote, ("20261204", 600.0, "P"): quote})


def open_position(symbol: str = "SPY", quantity: int = 1) -> Position:
    contract = ContractSpec(symbol=symbol, expiry="20261204", strike=600.0, right="C")
    return Position(
        position_id="p1",
        symbol=symbol,
        quantity=quantity,
        entry_price=4.0,
        current_price=4.1,
        unrealized_pnl=10.0,
        unrealized_pnl_pct=0.025,
        days_to_expiry=10,
        contract=contract,
    )
