"""Broker replies gone wrong: IB error codes, malformed and extreme prices, stale or missing
quotes, slow answers, rejections, partial and missing fills, dropped sockets.

For a valid signal, whatever the simulator answers: ``submit_order`` never raises, the result
says why when it is not a fill, every order the simulator saw has a journaled intent with an
approved risk decision, and when the data behind the order is bad nothing reaches the broker.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz.conftest import Stack, fuzz_settings
from ibkr_trader.broker.exceptions import BrokerError
from ibkr_trader.integrations.market_data_types import MarketData
from ibkr_trader.integrations.order_executor import OrderResult
from ibkr_trader.models import OrderStatus

MSG_MKT_DATA, MSG_PLACE_ORDER, MSG_CONTRACT_DETAILS = 1, 3, 9
IB_CODES = [
    100, 101, 103, 110, 135, 161, 162, 200, 201, 202, 300, 321, 354, 366, 399, 404, 420,
    434, 502, 504, 1100, 1101, 1102, 2103, 2104, 2105, 2106, 2107, 2108, 2110, 2119, 2137,
    2158, 10089, 10090, 10147, 10148, 10167, 10168, 10197,
]  # fmt: skip
TIMEOUT = 1.0


@dataclass(frozen=True)
class Fault:
    kind: str
    args: tuple[Any, ...]
    blocks_order: bool  # bad data or no answer before the order: nothing may be sent

    def apply(self, stack: Stack) -> None:
        faults = stack.sim.faults
        if self.kind == "error_next":
            faults.error_next(*self.args)
        elif self.kind == "missing_bid_ask":
            faults.missing_bid_ask()
        elif self.kind == "stale_quotes":
            faults.stale_quotes(*self.args)
        elif self.kind == "override":
            stack.sim.market.set_override("SPY", *self.args)
        elif self.kind == "delay":
            faults.delay(*self.args)
        elif self.kind == "reject_orders":
            faults.reject_orders(*self.args)
        elif self.kind == "never_fill":
            faults.never_fill()
        elif self.kind == "partial_fill":
            faults.partial_fill(*self.args)
        elif self.kind == "drop_on":
            faults.drop_on(*self.args)


ERROR_TEXT = st.one_of(st.text(max_size=40), st.sampled_from(["", "\x00", "a|b,c", "é" * 50]))
FAULTS = st.one_of(
    st.builds(
        lambda m, c, t: Fault("error_next", (m, c, t), m != MSG_PLACE_ORDER),
        st.sampled_from([MSG_MKT_DATA, MSG_CONTRACT_DETAILS, MSG_PLACE_ORDER]),
        st.one_of(st.sampled_from(IB_CODES), st.integers(-1, 20_000)),
        ERROR_TEXT,
    ),
    st.just(Fault("missing_bid_ask", (), True)),
    st.builds(lambda age: Fault("stale_quotes", (age,), True), st.floats(301.0, 10_000_000.0)),
    st.builds(
        lambda p: Fault("override", (p,), False),
        st.sampled_from([0.004, 0.01, 1.0, 50_000.0, 1e9]),
    ),
    st.builds(
        lambda m: Fault("delay", (m, TIMEOUT + 0.5), True),
        st.sampled_from([MSG_MKT_DATA, MSG_CONTRACT_DETAILS]),
    ),
    st.builds(lambda t: Fault("reject_orders", (t or "x",), False), ERROR_TEXT),
    st.just(Fault("never_fill", (), False)),
    st.builds(lambda f: Fault("partial_fill", (f,), False), st.sampled_from([0.25, 0.5, 0.75])),
    st.builds(
        lambda m: Fault("drop_on", (m,), m != MSG_PLACE_ORDER),
        st.sampled_from([MSG_MKT_DATA, MSG_CONTRACT_DETAILS, MSG_PLACE_ORDER]),
    ),
)


async def _connected(stack: Stack, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not stack.gateway.is_connected:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the gateway did not reconnect")
        await asyncio.sleep(0.02)


async def _one(stack: Stack, fault: Fault, quantity: int) -> tuple[OrderResult, int, bool]:
    gw = stack.gateway
    await _connected(stack)
    gw.contracts.clear_cache()  # a fault on contract details must meet a real request
    data: MarketData | None = None
    fault.apply(stack)
    if fault.kind in ("missing_bid_ask", "stale_quotes", "override"):
        try:  # the data a strategy would have decided on, taken under the fault
            data = await gw.get_market_data("SPY", timeout=TIMEOUT)
        except BrokerError:
            data = None  # no data: a strategy would not have signalled; submit anyway
    before = stack.orders_at_sim()
    signal = {**stack.fresh_signal(), "quantity": quantity}
    try:
        result = await gw.submit_order(signal, stack.context, timeout=TIMEOUT, market_data=data)
    finally:
        pending = set(stack.sim.faults.next_errors) | set(stack.sim.faults.drop_on_ids)
        stack.sim.faults.clear()
        stack.sim.market.clear_overrides()
    # an injected error or drop that no request met did not happen
    met = not (fault.kind in ("error_next", "drop_on") and fault.args[0] in pending)
    if fault.kind in ("missing_bid_ask", "stale_quotes"):
        met = data is not None  # no data, no signal: what blocks is the data gate
    stack.last_data = data
    return result, before, met


async def _flatten(stack: Stack) -> None:
    await _connected(stack)
    await asyncio.sleep(0.05)  # late answers of a delayed request land first
    await stack.flatten()


@fuzz_settings(0.15, minimum=25)
@given(fault=FAULTS, quantity=st.sampled_from([1, 2]))
def test_any_broker_reply_gives_a_result_with_a_reason(
    stack: Stack, fault: Fault, quantity: int
) -> None:
    result, before, met = stack.run(_one(stack, fault, quantity))
    try:
        assert isinstance(result, OrderResult)
        assert result.status is not OrderStatus.SIMULATED  # paper never simulates
        if result.status is not OrderStatus.FILLED:
            assert result.rejection_reason and result.rejection_reason.strip(), result
        new = stack.sim.received_orders[before:]
        if fault.blocks_order and met:
            assert new == [], (fault, result, stack.last_data)
        assert len(new) <= 1, new
        for order in new:
            intent = stack.journal.find_intent(order.order_ref)
            assert intent is not None, order
            assert intent.decision_id is not None
            decision = stack.journal.decision(intent.decision_id)
            assert decision is not None and decision.approved
        if result.status is OrderStatus.FILLED:
            assert new and math.isclose(new[0].filled, quantity)
    finally:
        stack.run(_flatten(stack))


@pytest.mark.parametrize("price", [math.nan, math.inf])
def test_the_simulator_refuses_a_non_finite_override(stack: Stack, price: float) -> None:
    try:
        with pytest.raises(ValueError):
            stack.sim.market.set_override("SPY", price)
    finally:
        stack.sim.market.clear_overrides()
