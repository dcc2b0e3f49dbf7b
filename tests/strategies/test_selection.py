"""Contract selection: expiry window in New York dates, strike, limit at the tick, size."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ibkr_trader.models import ContractSpec, OptionRight
from ibkr_trader.strategies.base import OptionQuote
from ibkr_trader.strategies.selection import (
    SelectionConfig,
    candidate_contract,
    limit_price,
    nearest_strike,
    position_size,
    round_to_tick,
    select_expiry,
)

from .helpers import EXPIRATIONS, NOW, chain


def test_nearest_expiry_inside_the_default_7_to_21_day_window_is_chosen() -> None:
    # 3 and 6 DTE are too near, 10 DTE is the nearest in the window, 17 is farther.
    assert select_expiry(EXPIRATIONS, NOW, SelectionConfig()) == "20261204"


def test_expiry_order_in_the_chain_does_not_matter() -> None:
    assert select_expiry(reversed(EXPIRATIONS), NOW, SelectionConfig()) == "20261204"


def test_window_bounds_are_inclusive() -> None:
    assert select_expiry(EXPIRATIONS, NOW, SelectionConfig(min_dte=17, max_dte=17)) == "20261211"
    assert select_expiry(EXPIRATIONS, NOW, SelectionConfig(min_dte=11, max_dte=16)) is None


def test_days_to_expiry_count_new_york_dates_not_utc_dates() -> None:
    # 03:00 UTC on the 25th is still 22:00 on the 24th in New York: 20261201 is 7 days away
    # there (inside the window) but only 6 by the UTC date.
    late_evening = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    assert select_expiry(["20261201"], late_evening, SelectionConfig()) == "20261201"
    assert (
        select_expiry(["20261201"], datetime(2026, 11, 25, 6, 0, tzinfo=UTC), SelectionConfig())
        is None
    )


def test_malformed_expiries_are_skipped() -> None:
    assert select_expiry(["garbage", "20261204"], NOW, SelectionConfig()) == "20261204"


@pytest.mark.parametrize("min_dte", [3, 2, 0, -1])
def test_a_window_reaching_3_days_or_fewer_is_refused(min_dte: int) -> None:
    with pytest.raises(ValueError, match="never 3 or fewer"):
        SelectionConfig(min_dte=min_dte, max_dte=21)


def test_an_inverted_window_is_refused() -> None:
    with pytest.raises(ValueError, match="max_dte"):
        SelectionConfig(min_dte=10, max_dte=7)
    with pytest.raises(ValueError, match="max_contracts"):
        SelectionConfig(max_contracts=0)


def test_strike_nearest_the_money() -> None:
    strikes = [595.0, 600.0, 605.0]
    assert nearest_strike(strikes, 601.9, OptionRight.CALL) == 600.0
    assert nearest_strike(strikes, 603.1, OptionRight.PUT) == 605.0


def test_strike_tie_goes_in_the_money() -> None:
    strikes = [595.0, 600.0, 605.0]
    assert nearest_strike(strikes, 602.5, OptionRight.CALL) == 600.0
    assert nearest_strike(strikes, 602.5, OptionRight.PUT) == 605.0


def test_no_strike_without_a_price_or_strikes() -> None:
    assert nearest_strike([], 600.0, OptionRight.CALL) is None
    assert nearest_strike([600.0], float("nan"), OptionRight.CALL) is None


def test_candidate_contract_combines_expiry_and_strike() -> None:
    contract = candidate_contract(chain(), 600.3, OptionRight.PUT, NOW, SelectionConfig())
    assert contract == ContractSpec(
        symbol="SPY", sec_type="OPT", expiry="20261204", strike=600.0, right="P"
    )
    assert candidate_contract(chain(), 600.3, OptionRight.PUT, NOW, SelectionConfig(30, 40)) is None


def test_limit_is_the_mid_rounded_to_the_tick() -> None:
    assert limit_price(OptionQuote(bid=4.10, ask=4.20)) == 4.15
    assert limit_price(OptionQuote(bid=4.10, ask=4.13)) == 4.12  # 4.115 rounds half up
    assert limit_price(OptionQuote(bid=3.10, ask=3.40, min_tick=0.05)) == 3.25
    assert limit_price(OptionQuote(bid=3.10, ask=3.30, min_tick=0.05)) == 3.20
    assert limit_price(OptionQuote(bid=3.10, ask=3.35, min_tick=0.05)) == 3.25  # 3.225 -> 3.25


@pytest.mark.parametrize(
    ("bid", "ask"),
    [(None, 4.2), (4.1, None), (0.0, 4.2), (4.1, float("nan")), (4.3, 4.2), (-1.0, 4.2)],
)
def test_no_limit_without_a_two_sided_market(bid: float | None, ask: float | None) -> None:
    assert limit_price(OptionQuote(bid=bid, ask=ask)) is None


@given(
    bid_ticks=st.integers(min_value=1, max_value=5000),
    spread_ticks=st.integers(min_value=0, max_value=200),
    tick=st.sampled_from([0.01, 0.05, 0.10]),
)
def test_limit_is_on_the_tick_and_within_the_market(
    bid_ticks: int, spread_ticks: int, tick: float
) -> None:
    bid = round(bid_ticks * tick, 2)
    ask = round((bid_ticks + spread_ticks) * tick, 2)
    limit = limit_price(OptionQuote(bid=bid, ask=ask, min_tick=tick))
    assert limit is not None
    assert bid <= limit <= ask
    assert abs(limit / tick - round(limit / tick)) < 1e-6


def test_round_to_tick_refuses_a_bad_tick() -> None:
    with pytest.raises(ValueError):
        round_to_tick(1.0, 0.0)


def test_quantity_from_risk_per_trade() -> None:
    # 2% of 100,000 = 2,000; a 4.15 premium costs 415 a contract -> 4 contracts.
    assert position_size(0.02, 100_000, 4.15) == 4
    assert position_size(0.02, 100_000, 5.00) == 4  # exactly 2,000 / 500
    assert position_size(0.02, 100_000, 4.15, max_contracts=2) == 2


def test_quantity_is_zero_when_one_contract_exceeds_the_budget() -> None:
    assert position_size(0.01, 10_000, 4.15) == 0
    assert position_size(0.02, 0.0, 4.15) == 0
    assert position_size(0.02, 100_000, 0.0) == 0
    assert position_size(0.02, float("nan"), 4.15) == 0
