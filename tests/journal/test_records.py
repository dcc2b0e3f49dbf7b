"""Recording and querying: decisions, intents, statuses, fills, closures, risk state."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest

from ibkr_trader.clock import ManualClock
from ibkr_trader.journal import (
    Journal,
    UnknownOrderError,
    client_order_id_for,
)
from ibkr_trader.models import (
    ClosureReason,
    OrderStatus,
    TradeRequest,
    TradingState,
    ValidationResult,
)

ReqF = Callable[..., TradeRequest]
ResF = Callable[..., ValidationResult]


def _order(journal: Journal, make_request: ReqF, make_result: ResF, **kw: Any) -> str:
    request = make_request(**kw)
    decision_id = journal.record_risk_decision(request, make_result())
    return journal.record_intent(request, decision_id=decision_id).intent.client_order_id


def test_risk_decision_keeps_every_check_value_limit_and_the_request(
    journal: Journal, make_request: ReqF, make_result: ResF
) -> None:
    decision_id = journal.record_risk_decision(make_request(), make_result(approved=False))

    found = journal.decision(decision_id)
    assert found is not None
    assert found.approved is False
    assert [c.name for c in found.checks] == ["trading_state", "contracts_per_order"]
    failed = found.checks[1]
    assert (failed.passed, failed.value, failed.limit) == (False, 2, 1)
    assert failed.reason == "2 contracts > limit 1"
    assert found.reasons == ("2 contracts > limit 1",)
    assert found.limits_hash == "abc123"
    assert found.trading_state == "ACTIVE"
    assert found.request["limit_price"] == 1.25
    assert found.request["quote"]["ask"] == 1.3
    assert found.metrics["premium_at_risk"] == 250.0
    assert journal.decisions(approved=True) == []


def test_client_order_id_is_deterministic_short_and_orderref_safe() -> None:
    args = ("CSATSPRIM", "A", "sig-1", "SPY:20260320:C:580", "BUY", 2)
    first = client_order_id_for(*args)
    assert first == client_order_id_for(*args)
    assert first.startswith("CSATSPRIM-A-")
    assert len(first) <= 40
    assert first.replace("-", "").isalnum()
    assert client_order_id_for(*args[:5], 3) != first
    assert client_order_id_for("CSATSPRIM", "A", "sig-2", *args[3:]) != first
    assert client_order_id_for(*args[:4], "SELL", 2) != first
    with pytest.raises(ValueError):
        client_order_id_for("", *args[1:])


def test_retried_signal_returns_the_existing_intent_and_inserts_nothing(
    journal: Journal, make_request: ReqF, make_result: ResF, clock: ManualClock
) -> None:
    request = make_request()
    decision_id = journal.record_risk_decision(request, make_result())
    first = journal.record_intent(request, decision_id=decision_id)
    clock.advance(5)
    again = journal.record_intent(request, decision_id=decision_id)

    assert first.existed is False
    assert again.existed is True
    assert again.intent == first.intent
    assert len(journal.orders()) == 1
    assert first.intent.client_order_id == client_order_id_for(
        "CSATSPRIM", "A", "sig-1", request.contract_key, "BUY", 2
    )


def test_intent_carries_operator_contract_and_closure_reason(
    journal: Journal, make_request: ReqF
) -> None:
    request = make_request(
        action="SELL", is_closing=True, closure_reason="3_DTE_RULE", client_order_id="X-1"
    )
    intent = journal.record_intent(request, decision_id=None, con_id=12345).intent

    assert intent.client_order_id == "X-1"
    assert intent.operator_id == "CSATSPRIM"
    assert intent.mode == "dry_run"
    assert (intent.symbol, intent.expiry, intent.strike, intent.right) == (
        "SPY",
        "20260320",
        580.0,
        "C",
    )
    assert intent.con_id == 12345
    assert intent.is_closing is True
    assert intent.closure_reason == ClosureReason.DTE_RULE.value


def test_order_lifecycle_is_explained_end_to_end(
    journal: Journal, make_request: ReqF, make_result: ResF, clock: ManualClock
) -> None:
    coid = _order(journal, make_request, make_result)
    journal.attach_broker_ids(coid, 17, 90001)
    journal.record_status(coid, "Submitted", 0, 2, None)
    clock.advance(1)
    journal.record_status(coid, "Filled", 2, 0, 1.24)
    journal.record_fill(
        "e1",
        client_order_id=coid,
        symbol="spy",
        contract_key="SPY:20260320:C:580",
        side="BOT",
        quantity=2,
        price=1.24,
        broker_order_id=17,
        perm_id=90001,
    )
    journal.record_commission("e1", 1.3)
    journal.record_result(coid, OrderStatus.FILLED, broker_order_id=17, fill_price=1.24)

    expl = journal.explain(coid)
    assert expl is not None
    assert expl.decision is not None and expl.decision.approved
    assert [s.status for s in expl.statuses] == ["Submitted", "Filled"]
    assert expl.broker_ids[0].perm_id == 90001
    assert expl.fills[0].side == "BUY"
    assert expl.fills[0].commission == 1.3
    assert expl.results[0].status == "filled"
    assert expl.state.is_final and expl.state.avg_price == 1.24
    assert journal.intent_by_perm_id(90001) is not None
    assert journal.intent_by_perm_id(1) is None
    assert journal.unresolved_intents() == []


def test_unresolved_intents_are_those_not_final_including_never_acknowledged(
    journal: Journal, make_request: ReqF, make_result: ResF
) -> None:
    never_sent = _order(journal, make_request, make_result, signal_id="s1")
    working = _order(journal, make_request, make_result, signal_id="s2")
    done = _order(journal, make_request, make_result, signal_id="s3")
    journal.record_status(working, "Submitted")
    journal.record_status(done, "Cancelled", error_code=202, error_text="cancelled")

    unresolved = {o.intent.client_order_id for o in journal.unresolved_intents()}
    assert unresolved == {never_sent, working}
    assert [o.intent.client_order_id for o in journal.intents_by_status("submitted")] == [working]
    cancelled = journal.find_order(done)
    assert cancelled is not None
    assert (cancelled.state.error_code, cancelled.state.error_text) == (202, "cancelled")


def test_status_for_an_unknown_order_is_refused(journal: Journal) -> None:
    with pytest.raises(UnknownOrderError, match="NOPE"):
        journal.record_status("NOPE", "Submitted")
    with pytest.raises(UnknownOrderError):
        journal.attach_broker_ids("NOPE", 1, 2)


def test_duplicate_exec_id_is_ignored_and_reported(
    journal: Journal, make_request: ReqF, make_result: ResF
) -> None:
    coid = _order(journal, make_request, make_result)
    kwargs: dict[str, Any] = {
        "client_order_id": coid,
        "symbol": "SPY",
        "contract_key": "SPY:20260320:C:580",
        "side": "BUY",
        "quantity": 1,
        "price": 1.2,
    }
    first = journal.record_fill("e1", **kwargs)
    second = journal.record_fill("e1", **{**kwargs, "price": 9.9})

    assert (first.duplicate, second.duplicate) == (False, True)
    assert second.id == first.id
    assert [f.price for f in journal.fills()] == [1.2]
    assert journal.record_commission("e1", 1.0).duplicate is False
    assert journal.record_commission("e1", 5.0).duplicate is True
    assert journal.fills()[0].commission == 1.0


def test_fill_at_zero_price_is_refused(journal: Journal) -> None:
    with pytest.raises(ValueError, match="price"):
        journal.record_fill(
            "e0",
            client_order_id=None,
            symbol="SPY",
            contract_key="SPY:STK",
            side="BUY",
            quantity=1,
            price=0.0,
        )


def test_closure_is_linked_to_the_closing_intent_with_its_reason(
    journal: Journal, make_request: ReqF, make_result: ResF
) -> None:
    coid = _order(journal, make_request, make_result, action="SELL", is_closing=True)
    journal.record_closure(
        ClosureReason.EMERGENCY_STOP,
        symbol="SPY",
        contract_key="SPY:20260320:C:580",
        quantity=2,
        client_order_id=coid,
        detail={"pnl_pct": -0.41},
    )
    expl = journal.explain(coid)
    assert expl is not None
    assert expl.closure_reason == "EMERGENCY_STOP"
    assert journal.closures()[0].detail == {"pnl_pct": -0.41}
    with pytest.raises(ValueError):
        journal.record_closure("BORED", symbol="SPY", contract_key="k", quantity=1)


def test_queries_filter_by_since_and_symbol(
    journal: Journal, make_request: ReqF, make_result: ResF, clock: ManualClock
) -> None:
    _order(journal, make_request, make_result, signal_id="old")
    clock.advance(3600)
    cutoff = clock.now()
    _order(journal, make_request, make_result, signal_id="new-spy")
    _order(journal, make_request, make_result, signal_id="new-qqq", symbol="QQQ")
    journal.record_event("note", {"symbol": "QQQ"})
    journal.record_event("note", {"symbol": "SPY"})

    assert len(journal.orders()) == 3
    assert [o.intent.signal_id for o in journal.orders(since=cutoff)] == ["new-spy", "new-qqq"]
    assert [o.intent.signal_id for o in journal.orders(symbol="qqq")] == ["new-qqq"]
    assert len(journal.decisions(since=cutoff, symbol="SPY")) == 1
    assert [e.detail["symbol"] for e in journal.events(symbol="qqq")] == ["QQQ"]
    assert [o.intent.signal_id for o in journal.orders(limit=1)] == ["new-qqq"]


def test_risk_state_store_round_trips_latest_value_wins(
    journal: Journal, clock: ManualClock
) -> None:
    today = date(2026, 3, 2)
    assert journal.get_risk_state("sod_equity") is None
    journal.put_risk_state("sod_equity", 10_000.0, today)
    journal.put_risk_state("sod_equity", 10_500, today + timedelta(days=1))
    journal.put_risk_state("note", "hello", None)
    journal.put_risk_state("cleared", None, None)

    assert journal.get_risk_state("sod_equity") == (10_500.0, today + timedelta(days=1))
    assert journal.get_risk_state("note") == ("hello", None)
    assert journal.get_risk_state("cleared") == (None, None)
    with pytest.raises(TypeError):
        journal.put_risk_state("bad", True, None)


def test_trading_state_and_day_trades_come_back(journal: Journal) -> None:
    assert journal.last_trading_state() is None
    journal.record_trading_state(TradingState.REDUCING, "daily loss -2.1%")
    journal.record_trading_state(TradingState.HALTED, "kill switch")
    journal.record_day_trade("SPY:20260320:C:580", "SPY", date(2026, 3, 2))
    journal.record_day_trade("QQQ:20260320:P:500", "QQQ", date(2026, 2, 20))

    assert journal.last_trading_state() == (TradingState.HALTED, "kill switch")
    assert [s.state for s in journal.trading_states()] == ["REDUCING", "HALTED"]
    assert journal.day_trades_between(date(2026, 2, 24), date(2026, 3, 2)) == [
        ("SPY:20260320:C:580", date(2026, 3, 2))
    ]


def test_state_survives_reopening(
    journal_path: Any, clock: ManualClock, make_request: ReqF, make_result: ResF
) -> None:
    from ibkr_trader.models import ExecutionMode

    with Journal.open(journal_path, ExecutionMode.DRY_RUN, clock) as j:
        j.record_trading_state(TradingState.REDUCING, "weekly drawdown")
        j.put_risk_state("week_high", 12_000.0, date(2026, 3, 2))
        coid = _order(j, make_request, make_result)
    with Journal.open(journal_path, ExecutionMode.DRY_RUN, clock) as j:
        assert j.last_trading_state() == (TradingState.REDUCING, "weekly drawdown")
        assert j.get_risk_state("week_high") == (12_000.0, date(2026, 3, 2))
        assert j.record_intent(make_request(), decision_id=None).existed
        assert j.find_intent(coid) is not None


def test_connection_and_generic_events_are_listed_together(journal: Journal) -> None:
    journal.record_connection_event("disconnected", {"code": 1100})
    journal.record_event("reconcile", {"unknown_orders": 0})
    kinds = [(e.source, e.kind) for e in journal.events()]
    assert kinds == [("connection", "disconnected"), ("event", "reconcile")]


def test_concurrent_writers_from_threads_lose_nothing(journal: Journal) -> None:
    def work(n: int) -> None:
        for i in range(25):
            journal.record_event("t", {"n": n, "i": i})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(journal.events(limit=1000)) == 100


def test_closed_journal_refuses_calls(journal: Journal) -> None:
    from ibkr_trader.journal import JournalError

    journal.close()
    journal.close()
    with pytest.raises(JournalError, match="closed"):
        journal.record_event("x", {})
