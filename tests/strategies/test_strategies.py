"""Strategies A, B and C: entry rules, shared guards, and the signal they build."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from ibkr_trader.clock import ManualClock
from ibkr_trader.models import ContractSpec, OptionRight, OrderAction, OrderType
from ibkr_trader.signals import StrategyContext
from ibkr_trader.strategies.base import OptionQuote, Strategy
from ibkr_trader.strategies.selection import SelectionConfig
from ibkr_trader.strategies.strategy_a import StrategyA, StrategyAParams
from ibkr_trader.strategies.strategy_b import StrategyB, StrategyBParams
from ibkr_trader.strategies.strategy_c import StrategyC

from .helpers import NOW, chain, market_data, open_position, quoted_chain

EQUITY = 100_000.0

# Strategy A fires: EMA8 above EMA21, RSI in 50-65, last above VWAP.
A_BULLISH = {"ema_fast": 601.0, "ema_slow": 600.0, "rsi": 58.0, "vwap": 600.0}
# Strategy B fires a call: below the lower band, RSI under 30; a put: above the upper, over 70.
B_OVERSOLD = {"last_price": 597.6, "bollinger_lower": 598.0, "rsi": 25.0}
B_OVERBOUGHT = {"last_price": 602.5, "bollinger_upper": 602.0, "rsi": 75.0}


def prepared_a(clock: ManualClock, **kwargs: object) -> StrategyA:
    strategy = StrategyA(clock, **kwargs)  # type: ignore[arg-type]
    strategy.prepare(quoted_chain(), EQUITY)
    return strategy


B_QUOTES = {
    ("20261204", 598.0, "C"): OptionQuote(bid=4.0, ask=4.1),
    ("20261204", 603.0, "P"): OptionQuote(bid=3.0, ask=3.2),
}


def prepared_b(clock: ManualClock, **kwargs: object) -> StrategyB:
    strategy = StrategyB(clock, **kwargs)  # type: ignore[arg-type]
    strategy.prepare(chain(B_QUOTES), EQUITY)
    return strategy


def test_every_strategy_satisfies_the_protocol(clock: ManualClock) -> None:
    strategies: list[Strategy] = [StrategyA(clock), StrategyB(clock), StrategyC()]
    assert [s.context.strategy_id for s in strategies] == ["A", "B", "C"]
    assert [s.allows_entries for s in strategies] == [True, True, False]


# --- Strategy A ----------------------------------------------------------------------------


def test_a_momentum_breakout_buys_the_nearest_the_money_call_at_the_mid(
    clock: ManualClock,
) -> None:
    signal = prepared_a(clock).evaluate(market_data(**A_BULLISH), [])
    assert signal is not None
    assert signal.symbol == "SPY"
    assert signal.action is OrderAction.BUY
    assert signal.order_type is OrderType.LIMIT
    assert signal.right is OptionRight.CALL
    assert signal.expiry == "20261204"
    assert signal.strike == 600.0
    assert signal.limit_price == 4.15
    assert signal.quantity == 4  # 2% of 100,000 / 415
    assert signal.strategy_id == "A"
    assert signal.timestamp == NOW
    assert signal.signal_id.startswith("sig-")


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"ema_fast": 600.0}, "EMA8"),  # equal is not above
        ({"ema_fast": 599.0}, "EMA8"),
        ({"rsi": 49.9}, "RSI"),
        ({"rsi": 65.1}, "RSI"),
        ({"last_price": 600.0}, "VWAP"),  # equal is not above
        ({"last_price": 599.0}, "VWAP"),
    ],
)
def test_a_does_not_enter_when_a_condition_fails(
    clock: ManualClock, override: dict[str, float], reason: str
) -> None:
    decision = prepared_a(clock).explain(market_data(**{**A_BULLISH, **override}), [])
    assert decision.signal is None
    assert reason in decision.reason


@pytest.mark.parametrize("rsi", [50.0, 65.0])
def test_a_rsi_bounds_are_inclusive(clock: ManualClock, rsi: float) -> None:
    assert prepared_a(clock).evaluate(market_data(**{**A_BULLISH, "rsi": rsi}), []) is not None


def test_a_parameters_are_configurable(clock: ManualClock) -> None:
    strategy = StrategyA(clock, params=StrategyAParams(rsi_min=40, rsi_max=55))
    strategy.prepare(quoted_chain(), EQUITY)
    assert strategy.evaluate(market_data(**{**A_BULLISH, "rsi": 45.0}), []) is not None
    assert strategy.evaluate(market_data(**{**A_BULLISH, "rsi": 58.0}), []) is None
    with pytest.raises(ValueError):
        StrategyAParams(rsi_min=70, rsi_max=60)


# --- Strategy B ----------------------------------------------------------------------------


def test_b_below_the_lower_band_with_rsi_under_30_buys_a_call(clock: ManualClock) -> None:
    decision = prepared_b(clock).explain(market_data(**B_OVERSOLD), [])
    assert decision.signal is not None
    assert decision.signal.right is OptionRight.CALL
    assert decision.signal.strike == 598.0  # nearest the money at 597.60
    assert decision.signal.limit_price == 4.05
    assert decision.signal.strategy_id == "B"
    assert "mean reversion up" in decision.reason


def test_b_above_the_upper_band_with_rsi_over_70_buys_a_put(clock: ManualClock) -> None:
    signal = prepared_b(clock).evaluate(market_data(**B_OVERBOUGHT), [])
    assert signal is not None
    assert signal.right is OptionRight.PUT
    assert signal.strike == 603.0  # 602.50: tie between 602 and 603 -> ITM for a put (higher)
    assert signal.limit_price == 3.1
    assert signal.quantity == 6  # 2,000 / 310


@pytest.mark.parametrize(
    "override",
    [
        {**B_OVERSOLD, "rsi": 30.0},  # exactly 30 is not under 30
        {**B_OVERSOLD, "last_price": 598.0},  # on the band is not below it
        {**B_OVERBOUGHT, "rsi": 70.0},
        {**B_OVERBOUGHT, "last_price": 602.0},
        {"rsi": 25.0},  # oversold RSI inside the bands
        {"last_price": 597.0, "rsi": 45.0},  # below the band, RSI not oversold
    ],
)
def test_b_needs_both_the_band_and_the_rsi(clock: ManualClock, override: dict[str, float]) -> None:
    assert prepared_b(clock).evaluate(market_data(**override), []) is None


def test_b_parameters_are_configurable(clock: ManualClock) -> None:
    strategy = prepared_b(clock, params=StrategyBParams(rsi_oversold=20, rsi_overbought=80))
    assert strategy.evaluate(market_data(**B_OVERSOLD), []) is None
    assert strategy.evaluate(market_data(**{**B_OVERSOLD, "rsi": 19.0}), []) is not None
    with pytest.raises(ValueError):
        StrategyBParams(rsi_oversold=70, rsi_overbought=30)


# --- Strategy C ----------------------------------------------------------------------------


@pytest.mark.parametrize("override", [A_BULLISH, B_OVERSOLD, B_OVERBOUGHT])
def test_c_never_enters(override: dict[str, float]) -> None:
    strategy = StrategyC()
    strategy.prepare(quoted_chain(), EQUITY)
    data = market_data(**override)
    assert strategy.evaluate(data, []) is None
    assert strategy.candidates(data, quoted_chain()) == ()
    assert "capital preservation" in strategy.explain(data, []).reason


def test_c_carries_the_reason_it_was_chosen() -> None:
    assert (
        "gameplan missing" in StrategyC(reason="gameplan missing").explain(market_data(), []).reason
    )


# --- Shared guards -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"is_stale": True, "staleness_seconds": 400.0}, "stale"),
        (
            {"is_delayed": True, "missing_fields": ("delayed",), "data_quality_score": 0.9},
            "delayed",
        ),
        ({"missing_fields": ("bid", "ask"), "data_quality_score": 0.8}, "quality"),
        ({"vwap": math.nan}, "vwap"),
        ({"last_price": math.nan}, "last_price"),
    ],
)
def test_no_entry_on_stale_delayed_or_poor_data(
    clock: ManualClock, override: dict[str, object], reason: str
) -> None:
    data = market_data(**{**A_BULLISH, **override})
    decision = prepared_a(clock).explain(data, [])
    assert decision.signal is None
    assert reason in decision.reason
    assert prepared_a(clock).candidates(data, quoted_chain()) == ()


def test_one_missing_field_is_tolerated_by_default(clock: ManualClock) -> None:
    data = market_data(**A_BULLISH, missing_fields=("volume",), data_quality_score=0.9)
    assert prepared_a(clock).evaluate(data, []) is not None
    strict = prepared_a(clock, min_quality_score=1.0)
    assert strict.evaluate(data, []) is None


def test_no_entry_while_a_position_in_the_same_underlying_is_open(clock: ManualClock) -> None:
    strategy = prepared_a(clock)
    data = market_data(**A_BULLISH)
    decision = strategy.explain(data, [open_position("SPY")])
    assert decision.signal is None
    assert "already open" in decision.reason
    assert strategy.evaluate(data, [open_position("QQQ")]) is not None
    assert strategy.evaluate(data, [open_position("SPY", quantity=0)]) is not None


def test_no_entry_without_a_prepared_chain(clock: ManualClock) -> None:
    decision = StrategyA(clock).explain(market_data(**A_BULLISH), [])
    assert decision.signal is None
    assert "no option chain" in decision.reason


def test_no_entry_when_the_chain_is_for_another_symbol(clock: ManualClock) -> None:
    strategy = prepared_a(clock)
    data = market_data(**A_BULLISH, symbol="QQQ")
    assert "chain is for SPY" in strategy.explain(data, []).reason
    assert strategy.candidates(data, quoted_chain()) == ()


def test_no_entry_on_option_quotes_older_than_a_minute(clock: ManualClock) -> None:
    strategy = prepared_a(clock)
    clock.advance(61)
    decision = strategy.explain(market_data(**A_BULLISH), [])
    assert decision.signal is None
    assert "61 s old" in decision.reason


def test_no_entry_without_an_expiry_in_the_window(clock: ManualClock) -> None:
    strategy = StrategyA(clock, selection=SelectionConfig(min_dte=30, max_dte=45))
    strategy.prepare(quoted_chain(), EQUITY)
    assert "30–45 days" in strategy.explain(market_data(**A_BULLISH), []).reason


@pytest.mark.parametrize("quote", [None, OptionQuote(bid=0.0, ask=4.2)])
def test_no_entry_without_a_two_sided_option_quote(
    clock: ManualClock, quote: OptionQuote | None
) -> None:
    strategy = StrategyA(clock)
    quotes = {} if quote is None else {("20261204", 600.0, "C"): quote}
    strategy.prepare(chain(quotes), EQUITY)
    assert "two-sided" in strategy.explain(market_data(**A_BULLISH), []).reason


def test_no_entry_when_one_contract_exceeds_the_risk_budget(clock: ManualClock) -> None:
    strategy = StrategyA(clock)
    strategy.prepare(quoted_chain(), 10_000.0)  # 2% = 200 < 415
    decision = strategy.explain(market_data(**A_BULLISH), [])
    assert decision.signal is None
    assert "exceeds" in decision.reason


def test_risk_per_trade_comes_from_the_context(clock: ManualClock) -> None:
    context = StrategyContext(
        strategy_id="A-wide",
        strategy_name="momentum_breakout",
        risk_per_trade=0.05,
        take_profit_pct=0.5,
        stop_loss_pct=0.25,
    )
    strategy = StrategyA(clock, context=context)
    strategy.prepare(quoted_chain(), EQUITY)
    signal = strategy.evaluate(market_data(**A_BULLISH), [])
    assert signal is not None
    assert signal.quantity == 12  # 5,000 / 415
    assert signal.strategy_id == "A-wide"


def test_candidates_name_only_the_contract_an_entry_would_buy(clock: ManualClock) -> None:
    strategy = StrategyA(clock)
    assert strategy.candidates(market_data(**A_BULLISH), chain()) == (
        ContractSpec(symbol="SPY", expiry="20261204", strike=600.0, right="C"),
    )
    assert strategy.candidates(market_data(), chain()) == ()  # no entry in view: no quotes


def test_with_quotes_merges_and_stamps_the_time() -> None:
    first = chain({("20261204", 600.0, "C"): OptionQuote(1.0, 1.1)})
    later = NOW + timedelta(seconds=5)
    merged = first.with_quotes({("20261204", 600.0, "P"): OptionQuote(2.0, 2.1)}, later)
    assert set(merged.quotes) == {("20261204", 600.0, "C"), ("20261204", 600.0, "P")}
    assert merged.as_of == later
    assert first.quotes.keys() == {("20261204", 600.0, "C")}


def test_invalid_guard_settings_are_refused(clock: ManualClock) -> None:
    with pytest.raises(ValueError):
        StrategyA(clock, min_quality_score=1.5)
    with pytest.raises(ValueError):
        StrategyA(clock, max_quote_age_s=0)
