"""Even the refusal of a malformed request is journaled (nothing unrecorded, nothing lost)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ibkr_trader.clock import ManualClock
from ibkr_trader.journal import Journal
from ibkr_trader.models import ExecutionMode, TradeRequest
from ibkr_trader.risk import RiskLimits, RiskManager


def _garbage_request(**overrides: Any) -> TradeRequest:
    fields: dict[str, Any] = {
        "symbol": None,
        "action": 7,
        "quantity": "two",
        "order_type": "LMT",
        "limit_price": math.nan,
        "strategy_id": "A",
        "strategy_name": "A",
        "risk_per_trade": 0.01,
        "take_profit_pct": 0.5,
        "stop_loss_pct": 0.4,
        "expiry": "2026-13-45",
        "strike": -1.0,
        "right": "X",
        "operator_id": "CSATSPRIM",
    }
    fields.update(overrides)
    return TradeRequest(**fields)


async def test_malformed_request_is_rejected_and_its_decision_journaled(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    with Journal.open(tmp_path / "j.sqlite3", ExecutionMode.DRY_RUN, clock) as journal:
        risk = RiskManager(RiskLimits(), journal, clock)
        result = await risk.validate_trade(_garbage_request())
        assert not result.approved
        assert result.rejection_reasons
        assert result.decision_id is not None
        [decision] = journal.decisions()
        assert decision.id == result.decision_id
        assert not decision.approved
