"""OrderExecutor against the simulator: handoff 8.3 (order execution failures), idempotency,
the dry-run fill, and what the journal holds for each order."""

from __future__ import annotations

import asyncio
import math

import pytest

from ibkr_trader.integrations.feature_flags import IntegrationFeatureFlags
from ibkr_trader.integrations.order_executor import OrderExecutor
from ibkr_trader.models import ExecutionMode, OrderStatus, TradeRequest, TradingState
from ibkr_trader.sim import SimulatedGateway
from ibkr_trader.testing import open_sim, parse_instant

from .conftest import CONTEXT, Rig, RigFactory, limits, make_signal, option_ask, select_expiry


async def test_paper_fill_reports_filled_with_price_and_ib_ids(paper: Rig) -> None:
    signal = make_signal(paper.sim)
    result = await paper.gateway.submit_order(signal, CONTEXT, timeout=5.0)
    assert result.status is OrderStatus.FILLED, result.rejection_reason
    assert result.fill_quantity == 1
    assert result.fill_price is not None and result.fill_price > 0
    assert result.ibkr_order_id == paper.orders[0].order_id
    assert result.perm_id == paper.orders[0].perm_id
    assert result.execution_mode is ExecutionMode.PAPER
    assert result.is_success and result.client_order_id == result.order_id
    sent = paper.orders[0]
    assert sent.account == paper.sim.accounts[0]
    assert sent.tif == "DAY" and sent.order_type == "LMT"
    assert sent.lmt_price == pytest.approx(signal.limit_price)


async def test_risk_rejection_is_rejected_with_the_limit_and_nothing_sent(
    sim: SimulatedGateway, rig_factory: RigFactory
) -> None:
    rig = await rig_factory(sim, risk_limits=limits(max_contracts_per_order=1))
    result = await rig.gateway.submit_order(make_signal(sim, quantity=2), CONTEXT, timeout=5.0)
    assert result.status is OrderStatus.REJECTED
    assert result.rejection_reason == "2 contracts per order exceeds the limit of 1"
    assert result.risk_validation is not None and not result.risk_validation.approved
    assert sim.received_orders == []
    decisions = rig.journal.decisions()
    assert len(decisions) == 1 and not decisions[0].approved
    assert rig.journal.find_intent(result.order_id) is None  # no intent: nothing to send


async def test_symbol_outside_allowlist_is_rejected_naming_the_allowlist(paper: Rig) -> None:
    signal = make_signal(paper.sim).model_copy(update={"symbol": "AAPL", "strike": 230.0})
    result = await paper.gateway.submit_order(signal, CONTEXT, timeout=5.0)
    # AAPL 230 for the SPY expiry may not exist: either qualification or risk refuses it
    assert result.status in (OrderStatus.REJECTED, OrderStatus.FAILED)
    assert paper.orders == []


async def test_unknown_contract_fails_qualification_and_nothing_is_placed(paper: Rig) -> None:
    signal = make_signal(paper.sim, strike=12345.0, limit_price=1.0)
    result = await paper.gateway.submit_order(signal, CONTEXT, timeout=5.0)
    assert result.status is OrderStatus.FAILED
    assert result.rejection_reason is not None
    assert "qualification" in result.rejection_reason.lower()
    assert paper.orders == []
    assert paper.journal.find_intent(result.order_id) is None
    assert [e.kind for e in paper.journal.events(kind="order_failed_before_risk")]


async def test_never_fill_times_out_and_the_order_is_cancelled_at_the_gateway(paper: Rig) -> None:
    paper.sim.faults.never_fill()
    result = await paper.gateway.submit_order(make_signal(paper.sim), CONTEXT, timeout=1.0)
    assert result.status is OrderStatus.TIMEOUT
    assert result.fill_quantity == 0
    assert "cancel" in (result.rejection_reason or "").lower()
    assert len(paper.orders) == 1
    assert paper.orders[0].status == "Cancelled"
    statuses = [s.status for s in paper.journal.explain(result.order_id).statuses]
    assert "Cancelled" in statuses


async def test_partial_fill_reports_partial_with_the_filled_quantity(paper: Rig) -> None:
    paper.sim.faults.partial_fill(0.5)
    result = await paper.gateway.submit_order(
        make_signal(paper.sim, quantity=2), CONTEXT, timeout=1.0
    )
    assert result.status is OrderStatus.PARTIAL
    assert result.fill_quantity == 1
    assert result.fill_price is not None and result.fill_price > 0
    assert "filled 1 of 2" in (result.rejection_reason or "")
    assert paper.orders[0].status == "Cancelled"  # the rest was cancelled
    fills = paper.journal.fills(client_order_id=result.order_id)
    assert sum(f.quantity for f in fills) == 1


async def test_broker_reject_is_failed_with_ib_code_201_and_text(paper: Rig) -> None:
    paper.sim.faults.reject_orders("Order rejected - reason: margin")
    result = await paper.gateway.submit_order(make_signal(paper.sim), CONTEXT, timeout=5.0)
    assert result.status is OrderStatus.FAILED
    assert result.error_code == 201
    assert "margin" in (result.rejection_reason or "")
    explanation = paper.journal.explain(result.order_id)
    assert explanation is not None
    assert any(s.error_code == 201 for s in explanation.statuses)


async def test_market_order_for_entry_is_refused_by_risk(paper: Rig) -> None:
    signal = make_signal(paper.sim, order_type="MKT")
    result = await paper.gateway.submit_order(signal, CONTEXT, timeout=5.0)
    assert result.status is OrderStatus.REJECTED
    assert paper.orders == []


async def test_malformed_signal_is_rejected_without_raising(paper: Rig) -> None:
    result = await paper.gateway.submit_order({"symbol": "spy!"}, CONTEXT, timeout=5.0)
    assert result.status is OrderStatus.REJECTED
    assert "invalid order input" in (result.rejection_reason or "")
    assert paper.orders == []
    assert paper.journal.events(kind="invalid_order_input")


async def test_signal_of_another_strategy_is_rejected(paper: Rig) -> None:
    signal = make_signal(paper.sim, strategy_id="other")
    result = await paper.gateway.submit_order(signal, CONTEXT, timeout=5.0)
    assert result.status is OrderStatus.REJECTED
    assert "does not match" in (result.rejection_reason or "")


async def test_dict_signal_and_context_are_validated_and_accepted(paper: Rig) -> None:
    signal = make_signal(paper.sim)
    result = await paper.gateway.submit_order(
        signal.model_dump(mode="json"), CONTEXT.model_dump(), timeout=5.0
    )
    assert result.status is OrderStatus.FILLED


async def test_same_signal_twice_returns_first_result_and_sends_once(paper: Rig) -> None:
    signal = make_signal(paper.sim)
    first = await paper.gateway.submit_order(signal, CONTEXT, timeout=5.0)
    second = await paper.gateway.submit_order(signal, CONTEXT, timeout=5.0)
    assert first.status is OrderStatus.FILLED and not first.duplicate
    assert second.duplicate is True
    assert second.order_id == first.order_id and second.status is first.status
    assert second.fill_price == first.fill_price
    assert len(paper.orders) == 1


async def test_concurrent_duplicates_send_one_order(paper: Rig) -> None:
    signal = make_signal(paper.sim)
    results = await asyncio.gather(
        *(paper.gateway.submit_order(signal, CONTEXT, timeout=5.0) for _ in range(3))
    )
    assert len(paper.orders) == 1
    assert sum(not r.duplicate for r in results) == 1
    assert {r.order_id for r in results} == {results[0].order_id}


async def test_a_restarted_executor_finds_the_journaled_result_and_sends_nothing(
    paper: Rig, rig_factory: RigFactory
) -> None:
    signal = make_signal(paper.sim)
    first = await paper.gateway.submit_order(signal, CONTEXT, timeout=5.0)
    assert first.status is OrderStatus.FILLED
    # a new gateway on the same journal (a process restart)
    again = OrderExecutor(
        paper.gateway.connection,
        paper.gateway.contracts,
        paper.risk,
        ExecutionMode.PAPER,
        "CSATSPRIM",
        journal=paper.gateway.journal,
        pipeline=paper.gateway.pipeline,
        account_guard=lambda: paper.sim.accounts[0],
    )
    result = await again.execute(signal, CONTEXT, timeout=5.0)
    assert result.duplicate and result.status is OrderStatus.FILLED
    assert result.fill_price == pytest.approx(first.fill_price)
    assert len(paper.orders) == 1


async def test_journal_holds_decision_intent_before_send_status_and_fills(paper: Rig) -> None:
    result = await paper.gateway.submit_order(make_signal(paper.sim), CONTEXT, timeout=5.0)
    await paper.gateway.journal.drain()  # what follows the fill is journaled off the critical path
    explanation = paper.journal.explain(result.order_id)
    assert explanation is not None
    assert explanation.decision is not None and explanation.decision.approved
    assert explanation.intent.operator_id == "CSATSPRIM"
    sent_at = explanation.statuses[0].at
    assert explanation.intent.created_at <= sent_at  # intent before anything was sent
    assert explanation.statuses[-1].status == "Filled"
    assert len(explanation.fills) == 1 and explanation.fills[0].price == result.fill_price
    assert explanation.results and explanation.results[0].status.lower() == "filled"


async def test_paper_execution_flag_off_fails_without_sending(
    sim: SimulatedGateway, rig_factory: RigFactory
) -> None:
    rig = await rig_factory(sim, flags=IntegrationFeatureFlags(ENABLE_PAPER_EXECUTION=False))
    result = await rig.gateway.submit_order(make_signal(sim), CONTEXT, timeout=5.0)
    assert result.status is OrderStatus.FAILED
    assert "ENABLE_PAPER_EXECUTION" in (result.rejection_reason or "")
    assert sim.received_orders == []


async def test_halted_trading_state_rejects_every_entry(paper: Rig) -> None:
    paper.risk.halt("test halt")
    result = await paper.gateway.submit_order(make_signal(paper.sim), CONTEXT, timeout=5.0)
    assert result.status is OrderStatus.REJECTED
    assert result.risk_validation is not None
    assert result.risk_validation.trading_state is TradingState.HALTED
    assert paper.orders == []


async def test_kill_switch_file_rejects_orders(paper: Rig) -> None:
    paper.kill_switch.write_text("stop")
    result = await paper.gateway.submit_order(make_signal(paper.sim), CONTEXT, timeout=5.0)
    assert result.status is OrderStatus.REJECTED
    assert paper.orders == []


async def test_disconnect_while_waiting_for_the_fill_reports_pending_or_failed(
    paper: Rig,
) -> None:
    paper.sim.faults.never_fill()

    async def drop_soon() -> None:
        await asyncio.sleep(0.3)
        await paper.sim.restart()

    dropper = asyncio.create_task(drop_soon())
    result = await paper.gateway.submit_order(make_signal(paper.sim), CONTEXT, timeout=3.0)
    await dropper
    assert result.status in (OrderStatus.PENDING, OrderStatus.TIMEOUT, OrderStatus.FAILED)
    assert len(paper.orders) == 1


# ------------------------------------------------------------------ dry run


async def test_dry_run_buy_fills_at_the_ask_and_records_the_simulated_book(dry: Rig) -> None:
    signal = make_signal(dry.sim)
    ask = option_ask(dry.sim, signal.expiry, signal.strike)
    result = await dry.gateway.submit_order(signal, CONTEXT, timeout=5.0)
    assert result.status is OrderStatus.SIMULATED, result.rejection_reason
    assert result.fill_price == pytest.approx(ask, abs=0.02)
    assert result.fill_price is not None and result.fill_price > 0
    assert result.fill_price <= signal.limit_price
    assert dry.sim.received_orders == []
    book = dry.journal.simulated_positions()
    assert len(book) == 1 and book[0].quantity == 1
    # the commission comes from the risk limits, and the book carries it in the average cost
    # as IB's avgCost does (ibkr_trader.book)
    assert result.commission == pytest.approx(dry.risk.limits.min_commission_per_order)
    assert book[0].avg_price == pytest.approx(result.fill_price + result.commission / 100)
    fills = dry.journal.fills(client_order_id=result.order_id)
    assert len(fills) == 1 and fills[0].simulated


async def test_dry_run_sell_fills_at_the_bid(dry: Rig) -> None:
    buy = make_signal(dry.sim, signal_id="open")
    opened = await dry.gateway.submit_order(buy, CONTEXT, timeout=5.0)
    assert opened.status is OrderStatus.SIMULATED
    positions = await dry.gateway.get_positions(timeout=5.0)
    closed = await dry.gateway.close_position(positions[0].position_id, "STRATEGY_EXIT", 5.0)
    assert closed.status is OrderStatus.SIMULATED
    found = dry.sim.catalog.find(
        symbol="SPY", sec_type="OPT", expiry=buy.expiry, strike=buy.strike, right="C"
    )
    bid = dry.sim.market.quote(found[0].con_id).bid
    assert closed.fill_price == pytest.approx(bid, abs=0.02)
    assert closed.fill_price < opened.fill_price  # sold at the bid, bought at the ask
    assert dry.journal.simulated_positions() == [] or all(
        p.quantity == 0 for p in dry.journal.simulated_positions()
    )


async def test_dry_run_limit_below_the_ask_is_not_filled(dry: Rig) -> None:
    # issue 17: a limit the market does not reach rests at the dry-run venue like at IB, and
    # times out like a paper order (the rest cancelled, TIMEOUT), never filled
    signal = make_signal(dry.sim)
    ask = option_ask(dry.sim, signal.expiry, signal.strike)
    low = make_signal(dry.sim, limit_price=round(ask * 0.5, 2))
    result = await dry.gateway.submit_order(low, CONTEXT, timeout=2.0)
    assert result.status is OrderStatus.TIMEOUT, result.rejection_reason
    assert "nothing filled, order cancelled" in (result.rejection_reason or "")
    assert result.fill_price is None
    assert dry.journal.simulated_positions() == []
    assert dry.risk.exposure.working() == []
    statuses = [s.status for s in dry.journal.explain(result.order_id).statuses]
    assert statuses[-1] == "Cancelled" and "Submitted" in statuses


async def test_dry_run_without_bid_ask_fails_and_never_fills_at_zero(dry: Rig) -> None:
    dry.sim.faults.missing_bid_ask()
    result = await dry.gateway.submit_order(make_signal(dry.sim), CONTEXT, timeout=5.0)
    assert result.status in (OrderStatus.FAILED, OrderStatus.REJECTED)
    assert result.fill_price is None
    assert dry.journal.simulated_positions() == []
    assert all(f.price > 0 for f in dry.journal.fills())


async def test_dry_run_never_reaches_the_gateway_even_with_the_account_guard(dry: Rig) -> None:
    for _ in range(2):
        await dry.gateway.submit_order(make_signal(dry.sim), CONTEXT, timeout=5.0)
    assert dry.sim.received_orders == []


async def test_execute_request_forces_the_executor_operator_id(paper: Rig) -> None:
    expiry = select_expiry(paper.sim)
    signal = make_signal(paper.sim, expiry=expiry)
    request = TradeRequest(
        symbol="SPY",
        action="BUY",
        quantity=1,
        order_type="LMT",
        limit_price=signal.limit_price,
        strategy_id="strat_a",
        strategy_name="x",
        risk_per_trade=0.02,
        take_profit_pct=0.5,
        stop_loss_pct=0.4,
        expiry=expiry,
        strike=signal.strike,
        right="C",
        operator_id="SOMEONE_ELSE",
        signal_id="manual-1",
    )
    result = await paper.gateway.executor.execute_request(request, 5.0)
    assert result.status is OrderStatus.FILLED
    assert result.operator_id == "CSATSPRIM"
    assert paper.orders[0].ext_operator == "CSATSPRIM"


async def test_live_mode_executor_is_refused(paper: Rig) -> None:
    from ibkr_trader.integrations.exceptions import GatewayError

    with pytest.raises(GatewayError):
        OrderExecutor(
            paper.gateway.connection,
            paper.gateway.contracts,
            paper.risk,
            ExecutionMode.LIVE,
            "CSATSPRIM",
            journal=paper.gateway.journal,
            pipeline=paper.gateway.pipeline,
            account_guard=lambda: "DU1",
        )
    with pytest.raises(GatewayError):
        OrderExecutor(
            paper.gateway.connection,
            paper.gateway.contracts,
            paper.risk,
            ExecutionMode.PAPER,
            "  ",
            journal=paper.gateway.journal,
            pipeline=paper.gateway.pipeline,
            account_guard=lambda: "DU1",
        )


def test_fill_price_helpers_never_invent_a_price() -> None:
    from ibkr_trader.integrations.order_executor import _reference_price

    class Q:
        bid: float | None = None
        ask: float | None = None
        mid: float | None = None
        last: float | None = math.nan

    request = TradeRequest(
        symbol="SPY",
        action="BUY",
        quantity=1,
        order_type="MKT",
        limit_price=None,
        strategy_id="s",
        strategy_name="s",
        risk_per_trade=0.01,
        take_profit_pct=0.0,
        stop_loss_pct=0.0,
        expiry="20990101",
        strike=1.0,
        right="C",
        operator_id="CSATSPRIM",
    )
    assert _reference_price(request, Q()) is None  # type: ignore[arg-type]


async def test_the_result_cache_is_bounded_and_old_duplicates_come_from_the_journal(
    dry: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ibkr_trader.integrations import order_executor

    monkeypatch.setattr(order_executor, "RESULT_CACHE_SIZE", 2)
    signals = [make_signal(dry.sim, signal_id=f"bounded-{n}") for n in range(4)]
    first = [await dry.gateway.submit_order(s, CONTEXT, timeout=5.0) for s in signals]
    assert all(r.status is OrderStatus.SIMULATED for r in first)
    assert len(dry.gateway.executor._results) == 2
    again = await dry.gateway.submit_order(signals[0], CONTEXT, timeout=5.0)  # evicted
    assert again.duplicate and again.order_id == first[0].order_id
    assert again.status is OrderStatus.SIMULATED


async def test_finished_order_handles_are_forgotten_past_a_bound(
    sim: SimulatedGateway, rig_factory: RigFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ibkr_trader.broker import connection as broker_connection

    monkeypatch.setattr(broker_connection, "MAX_KEPT_HANDLES", 4)
    roomy = limits(max_contracts_per_position=100, max_open_positions=100)
    paper = await rig_factory(sim, ExecutionMode.PAPER, risk_limits=roomy)
    for n in range(7):
        signal = make_signal(paper.sim, signal_id=f"handles-{n}")
        result = await paper.gateway.submit_order(signal, CONTEXT, timeout=5.0)
        assert result.status is OrderStatus.FILLED
    assert len(paper.gateway.connection._handles) <= 4
    assert len(paper.orders) == 7


@pytest.mark.parametrize("calendar", [True, False], ids=["nyse-calendar", "around-the-clock"])
async def test_dry_run_follows_the_hours_the_gateway_lists_as_paper_does(
    calendar: bool, rig_factory: RigFactory
) -> None:
    """Sunday 22:30 New York: a simulator on the NYSE calendar lists the option as closed and
    holds a paper order until the open; one that trades around the clock fills it. The dry-run
    venue reads the same listing (the contract's liquidHours), so it does what paper does."""
    sunday_night = parse_instant("dst-end-sunday-night")
    results = {}
    async with open_sim(sunday_night, calendar=calendar) as sim:
        for mode in (ExecutionMode.PAPER, ExecutionMode.DRY_RUN):
            rig = await rig_factory(sim, mode, timeout=5.0)
            signal = make_signal(sim, signal_id=f"sunday-{mode.value}")
            results[mode] = await rig.gateway.submit_order(signal, CONTEXT, timeout=1.0)
    paper, dry = results[ExecutionMode.PAPER], results[ExecutionMode.DRY_RUN]
    if calendar:  # held until Monday's open, then cancelled at our deadline: nothing filled
        assert (paper.status, dry.status) == (OrderStatus.TIMEOUT, OrderStatus.TIMEOUT)
        assert paper.fill_quantity == dry.fill_quantity == 0
    else:
        assert (paper.status, dry.status) == (OrderStatus.FILLED, OrderStatus.SIMULATED)
        assert paper.fill_quantity == dry.fill_quantity == 1
