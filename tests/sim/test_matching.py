"""The matching rule shared by the simulator and the dry-run venue: touch, at the touch."""

from __future__ import annotations

import pytest

from ibkr_trader.sim.matching import Match, match


def test_a_buy_limit_fills_when_the_ask_touches_it_at_the_ask() -> None:
    assert match("BUY", "LMT", 5.55, 2, 5.50, 5.59) is None
    assert match("BUY", "LMT", 5.55, 2, 5.50, 5.55) == Match(2, 5.55)
    assert match("BUY", "LMT", 5.60, 2, 5.50, 5.55) == Match(2, 5.55)  # the better price


def test_a_sell_limit_fills_when_the_bid_touches_it_at_the_bid() -> None:
    assert match("SELL", "LMT", 5.55, 1, 5.54, 5.60) is None
    assert match("SELL", "LMT", 5.55, 1, 5.56, 5.60) == Match(1, 5.56)


def test_market_orders_take_the_touch_and_never_fill_at_zero() -> None:
    assert match("BUY", "MKT", None, 1, 1.0, 1.1) == Match(1, 1.1)
    assert match("SELL", "MKT", None, 1, float("nan"), 1.1) is None
    assert match("BUY", "MKT", None, 1, 1.0, 0.0) is None
    assert match("BUY", "LMT", None, 1, 1.0, 1.1) is None


@pytest.mark.parametrize(("size", "expected"), [(None, 3.0), (5, 3.0), (2, 2.0), (0, None)])
def test_the_displayed_size_caps_the_fill(size: float | None, expected: float | None) -> None:
    got = match("BUY", "LMT", 2.0, 3, 1.9, 2.0, ask_size=size)
    assert (got.quantity if got else None) == expected


def test_nothing_left_to_fill() -> None:
    assert match("BUY", "MKT", None, 0, 1.0, 1.1) is None
