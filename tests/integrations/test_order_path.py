"""Issue 18's order path, through the simulator: what an entry asks the gateway, what it
journals before the send, and what it journals after the fill (off the critical path)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

from ib_async import IB, LimitOrder, Option

from ibkr_trader.journal import JournalError
from ibkr_trader.models import OrderStatus
from ibkr_trader.sim import SimulatedGateway

from .conftest import (
    CONTEXT,
    Rig,
    atm_strike,
    make_signal,
    option_ask,
    select_expiry,
)

OPEN_ORDERS = 16  # reqAllOpenOrders
POSITIONS = 61  # reqPositions
SNAPSHOT = 1  # reqMktData
PLACE = 3  # placeOrder


def _counts(rig: Rig) -> dict[int, int]:
    return dict(rig.sim.requests_received(rig.gateway.connection.client_id))


async def _buy(rig: Rig, n: int, quantity: int = 1) -> OrderStatus:
    signal = make_signal(rig.sim, quantity=quantity, signal_id=f"path-{n}")
    result = await rig.gateway.submit_order(signal, CONTEXT, timeout=5.0)
    return result.status


async def _foreign(sim: SimulatedGateway, quantity: int, limit: float) -> IB:
    """An order on the same contract from another client (as from TWS); connected, so that it
    stays working."""
    ib = IB()
    await ib.connectAsync(sim.host, sim.port, clientId=99, timeout=10)
    expiry, strike = select_expiry(sim, "SPY"), atm_strike(sim, "SPY")
    contract = Option("SPY", expiry, strike, "C", "SMART", currency="USD")
    await ib.qualifyContractsAsync(contract)
    trade = ib.placeOrder(contract, LimitOrder("BUY", quantity, limit, account=sim.accounts[0]))
    for _ in range(100):
        if trade.order.permId:
            break
        await asyncio.sleep(0.02)
    return ib


async def test_back_to_back_entries_read_the_gateways_orders_once(paper: Rig) -> None:
    """Before: every entry asked for every working order and every position (two messages of
    IB's 50 a second), so back-to-back orders ran at a third of the rate."""
    before = _counts(paper)
    for n in range(3):
        assert await _buy(paper, n) is OrderStatus.FILLED
    after = _counts(paper)
    assert after.get(OPEN_ORDERS, 0) - before.get(OPEN_ORDERS, 0) == 1
    assert after.get(POSITIONS, 0) - before.get(POSITIONS, 0) == 1
    assert after.get(PLACE, 0) - before.get(PLACE, 0) == 3


async def test_max_age_zero_reads_before_every_entry(paper: Rig) -> None:
    paper.gateway.executor.exposure_max_age = 0.0
    before = _counts(paper)
    for n in range(3):
        assert await _buy(paper, n) is OrderStatus.FILLED
    assert _counts(paper).get(OPEN_ORDERS, 0) - before.get(OPEN_ORDERS, 0) == 3


async def test_a_foreign_order_counts_once_the_view_is_older_than_its_max_age(
    paper: Rig,
) -> None:
    """A manual order placed within the view's max age is unseen until it ages (the documented
    window); after it, the entry that would pass the position limit with it is refused."""
    paper.gateway.executor.exposure_max_age = 0.3
    assert await _buy(paper, 1) is OrderStatus.FILLED  # position 1; the view is read
    ib = await _foreign(paper.sim, 2, 0.01)  # rests: 2 more may fill
    try:
        await asyncio.sleep(0.35)
        # 1 held + 2 working (foreign) + 2 = 5 > the limit of 4
        assert await _buy(paper, 2, quantity=2) is OrderStatus.REJECTED
        assert await _buy(paper, 3, quantity=1) is OrderStatus.FILLED  # 1 + 2 + 1 = 4
    finally:
        ib.disconnect()


async def test_a_fill_the_ledger_did_not_take_sends_the_next_entry_to_the_gateway(
    paper: Rig,
) -> None:
    """A manual trade moves the gateway's position stream: the ledger disagrees, so the next
    entry reads the whole view at once (no waiting for the max age)."""
    paper.gateway.executor.exposure_max_age = 60.0
    assert await _buy(paper, 1) is OrderStatus.FILLED
    ask = option_ask(paper.sim, select_expiry(paper.sim, "SPY"), atm_strike(paper.sim, "SPY"))
    ib = await _foreign(paper.sim, 2, round(ask * 1.2 + 0.1, 2))  # fills: 3 held now
    try:
        for _ in range(100):  # the position update reaches our client
            held = paper.gateway.connection.streamed_positions(paper.sim.accounts[0]) or {}
            if 3 in held.values():
                break
            await asyncio.sleep(0.02)
        before = _counts(paper)
        assert await _buy(paper, 2, quantity=2) is OrderStatus.REJECTED  # 3 + 2 > 4
        assert _counts(paper).get(OPEN_ORDERS, 0) - before.get(OPEN_ORDERS, 0) == 1
    finally:
        ib.disconnect()


async def test_another_instances_intent_sends_the_next_entry_to_the_gateway(paper: Rig) -> None:
    paper.gateway.executor.exposure_max_age = 60.0
    assert await _buy(paper, 1) is OrderStatus.FILLED
    other = make_signal(paper.sim, signal_id="other-instance")
    request = paper.gateway.executor._build_trade_request(other, CONTEXT)
    paper.journal.record_intent(request, decision_id=None)  # as another process would
    before = _counts(paper)
    assert await _buy(paper, 2) is OrderStatus.FILLED
    assert _counts(paper).get(OPEN_ORDERS, 0) - before.get(OPEN_ORDERS, 0) == 1


async def _option_quote(rig: Rig) -> Any:
    sim = rig.sim
    option = await rig.gateway.contracts.qualify_option_contract(
        "SPY", select_expiry(sim, "SPY"), atm_strike(sim, "SPY"), "C", 5.0
    )
    quote, _quality = await rig.gateway.pipeline.fetch_quote(option, 5.0)
    return quote


async def test_the_contracts_own_fresh_quote_spares_the_order_its_snapshot(paper: Rig) -> None:
    data = await paper.gateway.get_market_data("SPY", timeout=5.0)
    quote = await _option_quote(paper)
    before = _counts(paper)
    signal = make_signal(paper.sim, signal_id="fresh-quote")
    result = await paper.gateway.submit_order(
        signal, CONTEXT, timeout=5.0, market_data=data, contract_quote=quote
    )
    assert result.status is OrderStatus.FILLED, result
    assert _counts(paper).get(SNAPSHOT, 0) == before.get(SNAPSHOT, 0)
    # the underlying's data alone never stands in for the option's quote
    result = await paper.gateway.submit_order(
        make_signal(paper.sim, signal_id="no-quote"), CONTEXT, timeout=5.0, market_data=data
    )
    assert result.status is OrderStatus.FILLED, result
    assert _counts(paper).get(SNAPSHOT, 0) > before.get(SNAPSHOT, 0)


async def test_an_option_without_a_bid_is_refused_whatever_the_caller_passed(
    paper: Rig,
) -> None:
    """Found in review: with the underlying's fresh data passed, an option entry skipped its
    own quote, so an option with no bid passed the data gate on SPY's bid and ask."""
    data = await paper.gateway.get_market_data("SPY", timeout=5.0)
    paper.sim.faults.missing_bid()
    quote = await _option_quote(paper)  # the caller's own snapshot lacks the bid too
    for n, kwargs in enumerate(({"market_data": data}, {"contract_quote": quote})):
        signal = make_signal(paper.sim, signal_id=f"no-bid-{n}", limit_price=5.0)
        result = await paper.gateway.submit_order(signal, CONTEXT, timeout=5.0, **kwargs)
        assert result.status is OrderStatus.REJECTED, result
        assert "data gate" in (result.rejection_reason or ""), result.rejection_reason
    assert paper.orders == []


async def test_a_quote_of_another_contract_or_too_old_does_not_count(paper: Rig) -> None:
    quote = await _option_quote(paper)
    other = dataclasses.replace(quote, con_id=quote.con_id + 1)
    old = dataclasses.replace(quote, receipt_time=quote.receipt_time - timedelta(seconds=60))
    for n, stale in enumerate((other, old)):
        before = _counts(paper).get(SNAPSHOT, 0)
        signal = make_signal(paper.sim, signal_id=f"not-this-{n}")
        result = await paper.gateway.submit_order(
            signal, CONTEXT, timeout=5.0, contract_quote=stale
        )
        assert result.status is OrderStatus.FILLED, result
        assert _counts(paper).get(SNAPSHOT, 0) > before  # its own snapshot was taken


async def test_the_fill_is_journaled_after_the_result_in_one_group(paper: Rig) -> None:
    result = await paper.gateway.submit_order(make_signal(paper.sim), CONTEXT, timeout=5.0)
    assert result.status is OrderStatus.FILLED
    explanation = await paper.gateway.journal.explain(result.order_id)  # after queued writes
    assert explanation is not None
    assert explanation.decision is not None and explanation.decision.approved
    assert explanation.intent.decision_id == explanation.decision.id
    assert [s.status for s in explanation.statuses][-1] == "Filled"
    assert len(explanation.fills) == 1 and explanation.fills[0].price == result.fill_price
    assert [r.status for r in explanation.results] == ["filled"]


async def test_a_fill_the_journal_refuses_is_owed_and_still_ours(paper: Rig) -> None:
    """A full disk right after the fill: the group's writes are owed (retried at the next
    journal call), and until they land the position is still ours, not foreign."""
    store = paper.journal
    original = store.record_fill

    def full(*args: object, **kwargs: object) -> object:
        raise JournalError("test: the disk is full")

    store.record_fill = full  # type: ignore[method-assign,assignment]
    result = await paper.gateway.submit_order(make_signal(paper.sim), CONTEXT, timeout=5.0)
    assert result.status is OrderStatus.FILLED
    await paper.gateway.journal.drain()
    assert paper.gateway.journal.owed  # the fill is owed
    ours = await paper.gateway.journal.our_net_positions()
    assert ours == {result.contract_key: 1}
    store.record_fill = original  # type: ignore[method-assign]
    await paper.gateway.journal.call(lambda: None)  # the next call pays the debt first
    assert paper.gateway.journal.owed == []
    assert [f.quantity for f in store.fills(client_order_id=result.order_id)] == [1]
    assert await paper.gateway.journal.our_net_positions() == {result.contract_key: 1}


async def test_an_entry_found_resting_at_the_gateway_keeps_its_day_close(paper: Rig) -> None:
    """The view read before an entry adopts an order of ours the ledger lost (a restart) with
    the executor's rule: a resting limit entry is cancelled at the session's close, not 30 s
    after its intent (what the read gave before)."""
    executor = paper.gateway.executor
    executor.rest_entries = True
    signal = make_signal(paper.sim, signal_id="rests", limit_price=0.05)
    rested = await paper.gateway.submit_order(signal, CONTEXT, timeout=0.5)
    assert rested.details.get("working"), rested
    paper.risk.exposure.finish(rested.order_id)  # as after a restart: the ledger lost it
    executor.forget_exposure()
    assert await _buy(paper, 1) is OrderStatus.FILLED  # reads the view first
    adopted = paper.risk.exposure.get(rested.order_id)
    assert adopted is not None and adopted.deadline is not None
    row = await paper.gateway.journal.call(paper.journal.find_order, rested.order_id)
    assert row is not None and adopted.deadline == executor.adopted_deadline(row)


async def test_a_close_held_back_by_a_close_the_gateway_no_longer_has_goes_out(
    paper: Rig,
) -> None:
    """Found in review (chaos seed 3068): a close of ours adopted from the gateway's view had
    filled meanwhile; the ledger still held it as working, and an emergency close computed
    nothing to close. A close held back by working closes this process is not handling now
    asks the gateway first."""
    from ibkr_trader.orders.exposure import WorkingOrder

    assert await _buy(paper, 1, quantity=2) is OrderStatus.FILLED
    [position] = [p for p in await paper.gateway.get_positions(timeout=5.0) if p.quantity]
    paper.risk.exposure.add(  # what the gateway's view said earlier; it has since filled
        WorkingOrder(
            ref="CSATSPRIM-old-close",
            contract_key=position.contract.key,
            symbol="SPY",
            action="SELL",
            quantity=2,
            is_closing=True,
            sent=True,
            local=False,
            status="Submitted",
        )
    )
    result = await paper.gateway.close_position(position.position_id, "EMERGENCY_STOP", 5.0)
    assert result.status is OrderStatus.FILLED, result
    assert result.fill_quantity == 2
