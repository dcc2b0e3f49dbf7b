"""AsyncJournal: writes run off the event loop, in submission order, even if cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from ibkr_trader.journal import AsyncJournal, Journal
from ibkr_trader.models import (
    ContractSpec,
    ExecutionMode,
    OrderStatus,
    TradeRequest,
    TradingState,
    ValidationResult,
)

DRY = ExecutionMode.DRY_RUN


async def test_concurrent_async_writes_keep_submission_order(tmp_path: Path) -> None:
    async with await AsyncJournal.open(tmp_path / "j.sqlite3", DRY) as aj:
        await asyncio.gather(*(aj.record_event("n", {"i": i}) for i in range(50)))
        events = aj.journal.events(limit=100)
    assert [e.detail["i"] for e in events] == list(range(50))


async def test_async_order_flow_is_recorded(
    tmp_path: Path,
    make_request: Callable[..., TradeRequest],
    make_result: Callable[..., ValidationResult],
) -> None:
    call = ContractSpec(symbol="SPY", expiry="20260320", strike=580.0, right="C")
    async with await AsyncJournal.open(tmp_path / "j.sqlite3", DRY) as aj:
        request = make_request()
        decision_id = await aj.record_risk_decision(request, make_result())
        intent, existed = await aj.record_intent(request, decision_id=decision_id)
        again = await aj.record_intent(request, decision_id=decision_id)
        coid = intent.client_order_id
        await aj.attach_broker_ids(coid, 3, 33)
        await aj.record_status(coid, "Submitted", 0, 2)
        await aj.call(aj.journal.seed_simulated_cash, 1_000.0)
        sim = await aj.apply_simulated_fill(
            exec_id="s1", client_order_id=coid, contract=call, action="BUY", quantity=2, price=1.3
        )
        await aj.record_fill(
            "e9",
            client_order_id=coid,
            symbol="SPY",
            contract_key=call.key,
            side="BUY",
            quantity=1,
            price=1.3,
        )
        await aj.record_commission("e9", 0.65)
        await aj.record_result(coid, OrderStatus.SIMULATED, fill_price=1.3, fill_quantity=2)
        await aj.record_closure(
            "MANUAL", symbol="SPY", contract_key=call.key, quantity=2, client_order_id=coid
        )
        await aj.record_trading_state(TradingState.HALTED, "operator")
        await aj.record_connection_event("connected", {"port": 4002})
        expl = await aj.explain(coid)
    assert (existed, again.existed) == (False, True)
    assert sim.cash == pytest.approx(740.0)
    assert expl is not None
    assert expl.state.is_final and expl.state.perm_id == 33
    assert expl.closure_reason == "MANUAL"
    assert {f.exec_id for f in expl.fills} == {"s1", "e9"}


async def test_cancelled_caller_does_not_drop_a_submitted_write(tmp_path: Path) -> None:
    aj = await AsyncJournal.open(tmp_path / "j.sqlite3", DRY)
    tasks = [asyncio.create_task(aj.record_event("c", {"i": i})) for i in range(20)]
    await asyncio.sleep(0)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await aj.aclose()
    with Journal.open(tmp_path / "j.sqlite3", DRY) as j:
        assert len(j.events(limit=100)) == 20
    with pytest.raises(RuntimeError, match="closed"):
        await aj.record_event("late", {})
    await aj.aclose()
