"""Issue 13 item 7 (sizing): a strategy sizes from the limits in force, not past them."""

from __future__ import annotations

from ibkr_trader.clock import ManualClock
from ibkr_trader.strategies.strategy_a import StrategyA

from .helpers import market_data, quoted_chain

EQUITY = 100_000.0
A_BULLISH = {"ema_fast": 601.0, "ema_slow": 600.0, "rsi": 58.0, "vwap": 600.0}


def test_a_tightened_risk_cap_shrinks_the_order_instead_of_refusing_it(
    clock: ManualClock,
) -> None:
    strategy = StrategyA(clock)
    strategy.prepare(quoted_chain(), EQUITY)
    loose = strategy.evaluate(market_data(**A_BULLISH), [])
    assert loose is not None and loose.quantity == 4  # 2% of 100,000 / 415
    # the per-trade cap tightened to 1%: before issue 13 the strategy still sized 4 (2%) and
    # the RiskManager refused the order, though 2 fitted
    strategy.prepare(quoted_chain(), EQUITY, risk_cap=0.01)
    tight = strategy.evaluate(market_data(**A_BULLISH), [])
    assert tight is not None and tight.quantity == 2
    assert tight.limit_price is not None and tight.quantity * tight.limit_price * 100 <= 1_000


def test_the_contract_limits_in_force_cap_the_quantity(clock: ManualClock) -> None:
    strategy = StrategyA(clock)
    strategy.prepare(quoted_chain(), EQUITY, max_contracts=1)
    signal = strategy.evaluate(market_data(**A_BULLISH), [])
    assert signal is not None and signal.quantity == 1


def test_no_entry_when_not_one_contract_fits_the_cap(clock: ManualClock) -> None:
    strategy = StrategyA(clock)
    strategy.prepare(quoted_chain(), EQUITY, risk_cap=0.001)
    decision = strategy.explain(market_data(**A_BULLISH), [])
    assert decision.signal is None and "0.10%" in decision.reason
