"""Fixtures for the journal tests: a manual clock, a temp journal, request/decision builders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ibkr_trader.clock import ManualClock
from ibkr_trader.journal import Journal
from ibkr_trader.models import (
    CheckResult,
    ExecutionMode,
    QuoteCheck,
    TradeRequest,
    TradingState,
    ValidationResult,
)

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "journal-dry_run.sqlite3"


@pytest.fixture
def journal(journal_path: Path, clock: ManualClock) -> Iterator[Journal]:
    j = Journal.open(journal_path, ExecutionMode.DRY_RUN, clock)
    yield j
    j.close()


def build_request(**overrides: Any) -> TradeRequest:
    fields: dict[str, Any] = {
        "symbol": "SPY",
        "action": "BUY",
        "quantity": 2,
        "order_type": "LMT",
        "limit_price": 1.25,
        "strategy_id": "A",
        "strategy_name": "momentum",
        "risk_per_trade": 0.01,
        "take_profit_pct": 0.5,
        "stop_loss_pct": 0.4,
        "expiry": "20260320",
        "strike": 580.0,
        "right": "C",
        "operator_id": "CSATSPRIM",
        "signal_id": "sig-1",
        "quote": QuoteCheck(bid=1.2, ask=1.3, last=1.25, is_stale=False, is_delayed=False),
    }
    fields.update(overrides)
    return TradeRequest(**fields)


def build_result(approved: bool = True, **overrides: Any) -> ValidationResult:
    checks = (
        CheckResult("trading_state", True, "ACTIVE", "ACTIVE"),
        CheckResult(
            "contracts_per_order",
            approved,
            2,
            1 if not approved else 5,
            None if approved else "2 contracts > limit 1",
        ),
    )
    fields: dict[str, Any] = {
        "approved": approved,
        "rejection_reasons": [] if approved else ["2 contracts > limit 1"],
        "risk_metrics": {"premium_at_risk": 250.0, "as_of": START},
        "checks": checks,
        "limits_hash": "abc123",
        "trading_state": TradingState.ACTIVE,
    }
    fields.update(overrides)
    return ValidationResult(**fields)


@pytest.fixture
def make_request() -> Callable[..., TradeRequest]:
    return build_request


@pytest.fixture
def make_result() -> Callable[..., ValidationResult]:
    return build_result
