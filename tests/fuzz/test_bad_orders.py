"""Bad signals and strategy contexts never raise, never reach the simulator, always say why."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fuzz.conftest import Stack, fuzz_settings
from fuzz.inputs import GARBAGE, bad_context, bad_signal
from ibkr_trader.integrations.order_executor import OrderResult
from ibkr_trader.models import OrderStatus

REFUSED = {OrderStatus.REJECTED, OrderStatus.FAILED}


def _submit(stack: Stack, signal: Any, context: Any) -> OrderResult:
    return stack.run(stack.gateway.submit_order(signal, context, timeout=5.0))


def _assert_refused(stack: Stack, before: int, result: OrderResult, what: object) -> None:
    assert isinstance(result, OrderResult), what
    assert result.status in REFUSED, (what, result)
    assert result.rejection_reason and result.rejection_reason.strip(), (what, result)
    assert stack.orders_at_sim() == before, (what, result, stack.sim.received_orders[before:])


def test_the_unmutated_signal_is_approved_and_filled(stack: Stack) -> None:
    # the control: the base every mutation starts from is a good signal, so a refusal of a
    # mutation is caused by the mutation
    before = stack.orders_at_sim()
    result = _submit(stack, stack.fresh_signal(), stack.context)
    assert result.status is OrderStatus.FILLED, result
    assert stack.orders_at_sim() == before + 1
    closes = stack.run(stack.gateway.close_all_positions("MANUAL", timeout=10.0))
    assert all(c.status is OrderStatus.FILLED for c in closes)


@fuzz_settings()
@given(data=st.data())
def test_a_bad_signal_is_refused_with_a_reason_and_never_sent(stack: Stack, data: Any) -> None:
    signal, changes = data.draw(bad_signal(stack.fresh_signal()))
    before = stack.orders_at_sim()
    result = _submit(stack, signal, stack.context)
    _assert_refused(stack, before, result, changes)


@fuzz_settings(0.5)
@given(data=st.data())
def test_a_bad_strategy_context_is_refused_with_a_reason(stack: Stack, data: Any) -> None:
    context = data.draw(bad_context(stack.context))
    before = stack.orders_at_sim()
    result = _submit(stack, stack.fresh_signal(), context)
    _assert_refused(stack, before, result, context)


@fuzz_settings(0.5)
@given(signal=GARBAGE, context=st.one_of(GARBAGE, st.just({})))
def test_garbage_in_place_of_a_signal_is_refused(stack: Stack, signal: Any, context: Any) -> None:
    before = stack.orders_at_sim()
    result = _submit(stack, signal, context)
    _assert_refused(stack, before, result, (signal, context))
