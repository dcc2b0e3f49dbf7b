"""The live view, the open-orders panel and the session summary, rendered by rich at 80 and
120 columns: nothing cut off, contracts named as a trader reads them, and the truth while the
gateway is away."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console

from ibkr_trader.cli.view import (
    SessionSummary,
    contract_name,
    cycle_view,
    open_orders_table,
    summary_view,
)
from ibkr_trader.journal.records import IntentRecord, OrderRow, OrderState
from ibkr_trader.models import AccountSnapshot, ContractSpec, Position
from ibkr_trader.orchestrator import CycleAction, CycleReport

AT = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)  # 10:30 New York
CONTRACT = ContractSpec(symbol="SPY", expiry="20261211", strike=606.0, right="C", con_id=1020743354)


def render(renderable: object, width: int) -> list[str]:
    out = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    out.print(renderable)
    return out.export_text().splitlines()


def report(*, connected: bool = True) -> CycleReport:
    r = CycleReport(
        cycle=7,
        started_at=AT,
        mode="paper",
        strategy="A",
        gameplan="examples/gameplan.toml",
        connected=connected,
        trading_state="ACTIVE",
        state_cause="operator resume",
        market_open=True,
        minutes_to_close=330.0,
        entries_allowed=True,
        risk_status={"start_of_day_equity": 100_000.0},
    )
    r.market_data["SPY"] = {
        "last": 605.12,
        "bid": 605.10,
        "ask": 605.14,
        "ema_fast": 604.91,
        "ema_slow": 603.27,
        "rsi": 55.3,
        "vwap": 604.80,
        "is_stale": False,
        "staleness_seconds": 2.0,
        "quality": 1.0,
    }
    r.positions.append(
        Position(
            position_id="SPY_1020743354",
            symbol="SPY",
            quantity=2,
            entry_price=3.10,
            current_price=2.45,
            unrealized_pnl=-130.0,
            unrealized_pnl_pct=-0.2097,
            days_to_expiry=10,
            contract=CONTRACT,
            closure_trigger="EMERGENCY_STOP",
        )
    )
    r.add(CycleAction(kind="no_entry", symbol="SPY", reason="no entry: RSI 71.3 outside 50–65"))
    return r


def working_order() -> OrderRow:
    intent = IntentRecord(
        id=1,
        mode="paper",
        client_order_id="CSATSPRIM-A-3f1c0b2a9e41",
        created_at=AT - timedelta(seconds=12),
        operator_id="CSATSPRIM",
        decision_id=1,
        symbol="SPY",
        contract_key=CONTRACT.key,
        sec_type="OPT",
        expiry="20261211",
        strike=606.0,
        right="C",
        multiplier=100,
        con_id=1020743354,
        action="BUY",
        quantity=1,
        order_type="LMT",
        limit_price=3.05,
        strategy_id="A",
        signal_id="s1",
        is_closing=False,
        closure_reason=None,
    )
    state = OrderState(
        status="Submitted",
        broker_order_id=4,
        perm_id=1000007001,
        filled=0,
        remaining=1,
        avg_price=None,
        error_code=None,
        error_text=None,
        is_final=False,
        updated_at=AT,
    )
    return OrderRow(intent=intent, state=state)


def view(connected: bool = True) -> object:
    account = AccountSnapshot(
        account="DU1234567", net_liquidation=100_120.0, available_funds=90_000.0, cash=99_500.0
    )
    return cycle_view(
        report(connected=connected),
        target="gateway 127.0.0.1:4002",
        governors={"daily_loss_limit_pct": 0.02, "daily_loss_used_pct": 0.0},
        journal="/tmp/j.sqlite3",
        account=account,
        open_orders=[working_order()],
        now=AT,
        order_timeout=30.0,
    )


@pytest.mark.parametrize("width", [80, 120])
def test_the_live_view_fits_and_cuts_nothing_off(width: int) -> None:
    lines = render(view(), width)
    assert max(len(line) for line in lines) <= width
    text = "\n".join(lines)
    for needle in (
        "SPY 2026-12-11 606 C",  # a trader's name, not SPY_1020743354
        "605.10/605.14",  # bid/ask whole
        "604.91/603.27",  # EMA 8/21 whole
        "net liq $100,120.00",
        "cash $99,500.00",
        "day P&L +$120.00",
        "waiting for fill 12/30 s",
        "EMERGENCY_STOP",
        "RSI 71.3",
    ):
        assert needle in text.replace("\n", " ") or needle in text, needle
    assert "SPY_1020743354" not in text
    assert "…" not in text


@pytest.mark.parametrize("width", [80, 120])
def test_disconnected_says_what_it_does_not_know(width: int) -> None:
    text = "\n".join(render(view(connected=False), width))
    assert "DISCONNECTED" in text
    assert "market (NYSE)  unknown" in text or "unknown (no gateway clock" in text
    assert "closed" not in text
    assert "last known" in text and "SPY 2026-12-11 606 C" in text
    assert "net liq" not in text


@pytest.mark.parametrize("width", [80, 120])
def test_the_session_summary(width: int) -> None:
    summary = SessionSummary(
        mode="paper",
        cycles=12,
        market_started=AT,
        market_ended=AT + timedelta(minutes=12),
        orders=[{"closing": False}, {"closing": True}],
        fills=[{}, {}],
        closures=[{"reason": "EMERGENCY_STOP"}],
        realized_pnl=-131.3,
        commissions=1.3,
        governors={"daily_loss_limit_pct": 0.02, "daily_loss_used_pct": 0.0013},
        trading_state="ACTIVE",
        stopped_by="SIGINT",
    )
    lines = render(summary_view(summary), width)
    text = "\n".join(lines)
    assert max(len(line) for line in lines) <= width
    assert "2 (1 entries, 1 closes)" in text and "1: 1 EMERGENCY_STOP" in text
    assert "-$131.30" in text and "$1.30" in text and "SIGINT" in text


def test_contract_names_and_an_empty_orders_panel() -> None:
    assert contract_name(CONTRACT) == "SPY 2026-12-11 606 C"
    assert contract_name(ContractSpec(symbol="QQQ", sec_type="STK")) == "QQQ"
    assert "(none)" in "\n".join(render(open_orders_table([], AT, 30.0), 80))
