"""Validated input types: a malformed signal or context is refused at the edge."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from ibkr_trader.signals import StrategyContext, TradingSignal

SIGNAL: dict[str, Any] = {
    "symbol": "SPY",
    "action": "BUY",
    "quantity": 1,
    "order_type": "LMT",
    "limit_price": 2.5,
    "expiry": "20261218",
    "strike": 600.0,
    "right": "CALL",
    "strategy_id": "A",
    "timestamp": datetime(2026, 11, 24, 15, 0, tzinfo=UTC),
}


def test_a_valid_signal_is_normalised_and_gets_a_deterministic_signal_id() -> None:
    first = TradingSignal.model_validate(SIGNAL)
    again = TradingSignal.model_validate(SIGNAL)
    assert first.right.value == "C" and first.order_type.value == "LMT"
    assert first.signal_id.startswith("sig-") and first.signal_id == again.signal_id


@pytest.mark.parametrize(
    "change",
    [
        {"symbol": b"SPY"},
        {"strategy_id": b"A"},
        {"expiry": 20261218},
        {"expiry": "20261399"},
        {"quantity": 1.0},
        {"quantity": True},
        {"limit_price": math.nan},
        {"limit_price": None},
        {"order_type": "MKT"},  # a market signal must not carry a limit price
        {"timestamp": datetime(2026, 11, 24, 15, 0)},  # naive
        {"unknown": 1},
    ],
)
def test_a_malformed_signal_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TradingSignal.model_validate({**SIGNAL, **change})


def test_a_context_with_bytes_for_a_name_is_refused() -> None:
    with pytest.raises(ValidationError):
        StrategyContext.model_validate(
            {
                "strategy_id": "A",
                "strategy_name": b"\x00\x00",
                "risk_per_trade": 0.01,
                "take_profit_pct": 0.5,
                "stop_loss_pct": 0.4,
            }
        )
