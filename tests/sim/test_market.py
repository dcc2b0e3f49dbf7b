"""MarketModel: deterministic quotes and bars, option pricing, calendar mode, test hooks."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ibkr_trader.sim.clock import NY, MarketCalendar, SimClock
from ibkr_trader.sim.contracts import ContractCatalog, ContractInfo, underlying
from ibkr_trader.sim.market import (
    RATE,
    MarketModel,
    SimBar,
    SimQuote,
    black_scholes,
    option_theo,
)

SPY = 756733
AAPL = 265598
TUESDAY_10AM = datetime(2026, 11, 24, 10, 0, 30, tzinfo=NY)
REFERENCE = {"SPY": 600.0, "QQQ": 520.0, "IWM": 220.0, "AAPL": 230.0, "MSFT": 420.0, "TSLA": 250.0}


def make(
    at: datetime = TUESDAY_10AM, seed: int = 7, calendar: bool = False
) -> tuple[MarketModel, SimClock]:
    clock = SimClock(at, frozen=True)
    cal = MarketCalendar(calendar)
    return MarketModel(ContractCatalog(clock, cal), clock, cal, seed=seed), clock


def spy_option(model: MarketModel, right: str, strike: float = 600.0) -> ContractInfo:
    return model.catalog.find("SPY", "OPT", "20261218", strike, right)[0]


def on_tick(x: float) -> bool:
    return abs(x * 100 - round(x * 100)) < 1e-6


def assert_sane_quote(q: SimQuote) -> None:
    assert 0 <= q.bid < q.ask
    assert q.bid <= q.last <= q.ask
    assert q.low <= q.last <= q.high and q.low <= q.open <= q.high
    assert all(on_tick(x) for x in (q.bid, q.ask, q.last, q.close, q.open, q.high, q.low))
    assert min(q.bid_size, q.ask_size, q.last_size, q.volume) > 0
    assert q.last_trade_time.tzinfo is UTC


def assert_sane_bar(b: SimBar) -> None:
    assert b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high
    assert b.low <= b.wap <= b.high
    assert b.volume > 0 and b.bar_count > 0
    assert all(on_tick(x) for x in (b.open, b.high, b.low, b.close))
    assert b.time.tzinfo is UTC and b.time.second == 0


# -- determinism ----------------------------------------------------------------------------


def test_same_seed_and_time_give_the_same_quotes_and_bars() -> None:
    a, _ = make()
    b, _ = make()
    opt = spy_option(a, "C").con_id
    for con_id in (SPY, AAPL, opt):
        assert a.quote(con_id) == b.quote(con_id)
        assert a.bars(con_id, None, 30, True) == b.bars(con_id, None, 30, True)


def test_different_seeds_give_different_prices() -> None:
    a, _ = make(seed=7)
    b, _ = make(seed=8)
    assert a.quote(SPY).last != b.quote(SPY).last
    assert [x.close for x in a.bars(SPY, None, 10, True)] != [
        x.close for x in b.bars(SPY, None, 10, True)
    ]


def test_a_fresh_model_agrees_with_a_warm_one_for_any_past_time() -> None:
    warm, _clock = make()
    warm.bars(SPY, None, 2000, True)
    past = TUESDAY_10AM - timedelta(days=40, minutes=7)
    cold, _ = make()
    assert warm.quote(SPY, past) == cold.quote(SPY, past)


def test_negative_seeds_work() -> None:
    model, _ = make(seed=-3)
    assert_sane_quote(model.quote(SPY))


# -- quotes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("symbol", sorted(REFERENCE))
def test_stock_quotes_are_sane_and_near_the_reference_price(symbol: str) -> None:
    model, _ = make()
    u = underlying(symbol)
    assert u is not None
    for days in (0, 90, 400, 1500):
        q = model.quote(u.con_id, TUESDAY_10AM + timedelta(days=days))
        assert_sane_quote(q)
        assert 0.6 < q.last / REFERENCE[symbol] < 1.6
        assert q.ask - q.bid <= 0.02 + 1e-9


def test_price_is_the_mid_of_the_quote() -> None:
    model, _ = make()
    q = model.quote(SPY)
    assert model.price(SPY) == pytest.approx((q.bid + q.ask) / 2)


def test_quote_last_equals_the_close_of_the_bar_containing_it() -> None:
    model, clock = make()
    opt = spy_option(model, "P").con_id
    for step in range(5):
        clock.advance(37 + step * 61)
        for con_id in (SPY, AAPL, opt):
            bar = model.bars(con_id, clock.now(), 1, True)[-1]
            assert bar.time <= clock.now() < bar.time + timedelta(minutes=1)
            assert model.quote(con_id).last == bar.close


def test_last_trade_time_is_the_quote_time_while_open() -> None:
    model, clock = make()
    assert model.quote(SPY).last_trade_time == clock.now().replace(microsecond=0)


def test_quote_session_fields_agree_with_the_session_bars() -> None:
    model, clock = make(calendar=True)
    q = model.quote(SPY)
    session = model.bars(SPY, clock.now(), 31, use_rth=True)  # 09:30 .. 10:00
    assert session[0].time == datetime(2026, 11, 24, 9, 30, tzinfo=NY)
    assert q.open == session[0].open
    assert q.high == max(b.high for b in session)
    assert q.low == min(b.low for b in session)
    assert q.volume == sum(b.volume for b in session)
    previous_day = model.bars(SPY, datetime(2026, 11, 23, 16, 0, tzinfo=NY), 1, use_rth=True)
    assert q.close == previous_day[-1].close


def test_unknown_con_id_raises_key_error() -> None:
    model, _ = make()
    with pytest.raises(KeyError):
        model.quote(42)
    with pytest.raises(KeyError):
        model.bars(42, None, 5, True)


def test_min_tick_and_multiplier() -> None:
    model, _ = make()
    opt = spy_option(model, "C").con_id
    assert model.min_tick(SPY) == model.min_tick(opt) == 0.01
    assert model.multiplier(SPY) == 1 and model.multiplier(opt) == 100


def test_naive_datetimes_are_refused() -> None:
    model, _ = make()
    with pytest.raises(ValueError):
        model.quote(SPY, datetime(2026, 11, 24, 15, 0))


@settings(max_examples=40, deadline=None)
@given(minutes=st.integers(min_value=0, max_value=60 * 24 * 30), second=st.integers(0, 59))
def test_any_time_gives_a_consistent_quote(minutes: int, second: int) -> None:
    model, _ = make()
    at = TUESDAY_10AM - timedelta(minutes=minutes, seconds=second)
    q = model.quote(SPY, at)
    assert_sane_quote(q)
    just_after = at + timedelta(milliseconds=1)  # the bar containing `at` started before this
    model.clock.set(just_after)  # type: ignore[attr-defined]
    bar = model.bars(SPY, just_after, 1, False)[-1]
    assert bar.time <= at < bar.time + timedelta(minutes=1)
    assert bar.close == q.last


# -- options --------------------------------------------------------------------------------


def test_option_quotes_are_sane_and_wider_when_pricier() -> None:
    model, _ = make()
    itm = model.quote(spy_option(model, "C", 500.0).con_id)
    otm = model.quote(spy_option(model, "C", 700.0).con_id)
    for q in (itm, otm):
        assert_sane_quote(q)
    assert itm.ask - itm.bid > otm.ask - otm.bid
    assert itm.last > otm.last


def test_put_call_parity_holds_within_the_spreads() -> None:
    model, clock = make()
    spot = model.quote(SPY).last
    years = (datetime(2026, 12, 18, 16, 0, tzinfo=NY) - clock.now()).total_seconds() / (365 * 86400)
    for strike in (580.0, 600.0, 620.0):
        call = model.quote(spy_option(model, "C", strike).con_id)
        put = model.quote(spy_option(model, "P", strike).con_id)
        parity = spot - strike * math.exp(-RATE * years)
        slack = (call.ask - call.bid) + (put.ask - put.bid) + 0.05
        assert abs((call.last - put.last) - parity) <= slack


def test_options_move_with_the_underlying() -> None:
    model, _ = make()
    call, put = spy_option(model, "C").con_id, spy_option(model, "P").con_id
    c0, p0 = model.quote(call).last, model.quote(put).last
    model.shock("SPY", 1.03)
    assert model.quote(call).last > c0 + 5
    assert model.quote(put).last < p0 - 3


def test_option_bars_are_consistent() -> None:
    model, _ = make()
    for right in ("C", "P"):
        bars = model.bars(spy_option(model, right).con_id, None, 60, True)
        assert len(bars) == 60
        for bar in bars:
            assert_sane_bar(bar)
        for before, after in itertools.pairwise(bars):
            assert after.open == before.close


def test_option_model_reports_black_scholes_greeks() -> None:
    model, _ = make()
    call = model.option_model(spy_option(model, "C").con_id)
    put = model.option_model(spy_option(model, "P").con_id)
    assert call is not None and put is not None
    assert 0 < call.delta < 1 and -1 < put.delta < 0
    assert call.delta - put.delta == pytest.approx(1.0)
    assert call.gamma > 0 and call.vega > 0 and call.theta < 0
    assert call.implied_vol == 0.15 and call.und_price == model.quote(SPY).last
    assert model.option_model(SPY) is None


def test_an_expired_option_is_worth_its_intrinsic_value() -> None:
    model, clock = make()
    opt = model.catalog.find("SPY", "OPT", "20261124", 590.0, "C")[0]
    clock.set(datetime(2026, 11, 25, 10, 0, tzinfo=NY))
    after_expiry = datetime(2026, 11, 24, 16, 30, tzinfo=NY)
    spot = model.underlying_price("SPY", after_expiry)
    q = model.quote(opt.con_id, after_expiry)
    assert q.last == pytest.approx(max(spot - 590.0, 0.0) + 0.01, abs=0.011)


def test_black_scholes_matches_a_textbook_value() -> None:
    # S=100, K=100, T=1, sigma=0.2, r=0.04: call 9.925, put 6.004
    assert black_scholes(100, 100, 1.0, 0.2, True) == pytest.approx(9.9251, abs=1e-3)
    assert black_scholes(100, 100, 1.0, 0.2, False) == pytest.approx(6.0040, abs=1e-3)
    assert option_theo(50, 100, 0.0, 0.2, False) == pytest.approx(50.01)
    assert option_theo(200, 100, 0.01, 0.2, False) == pytest.approx(0.01)


# -- bars -----------------------------------------------------------------------------------


def test_bars_end_at_end_in_order_and_in_the_count_asked() -> None:
    model, clock = make()
    end = clock.now() - timedelta(minutes=5, seconds=20)
    bars = model.bars(SPY, end, 60, use_rth=True)
    assert len(bars) == 60
    assert bars[-1].time < end <= bars[-1].time + timedelta(minutes=1)
    for before, after in itertools.pairwise(bars):
        assert after.time - before.time == timedelta(minutes=1)
        assert after.open == before.close
    for bar in bars:
        assert_sane_bar(bar)


def test_a_bar_ending_exactly_on_a_minute_is_the_previous_one() -> None:
    model, _ = make()
    end = datetime(2026, 11, 24, 9, 0, tzinfo=NY)
    assert model.bars(SPY, end, 1, True)[-1].time == end - timedelta(minutes=1)


def test_bars_never_come_from_the_future() -> None:
    model, clock = make()
    bars = model.bars(SPY, clock.now() + timedelta(hours=3), 5, True)
    assert bars[-1].time <= clock.now()
    assert model.bars(SPY, None, 5, True) == bars
    assert model.bars(SPY, None, 0, True) == []


def test_always_open_bars_are_consecutive_minutes_even_on_saturday() -> None:
    saturday = datetime(2026, 11, 28, 23, 0, tzinfo=NY)
    model, _ = make(at=saturday)
    for use_rth in (True, False):
        bars = model.bars(SPY, saturday, 120, use_rth)
        assert len(bars) == 120
        assert bars[-1].time - bars[0].time == timedelta(minutes=119)


def test_rth_bars_stay_inside_regular_sessions_across_a_holiday() -> None:
    friday_close = datetime(2026, 11, 27, 13, 0, tzinfo=NY)
    model, _ = make(at=datetime(2026, 11, 28, 12, 0, tzinfo=NY), calendar=True)
    bars = model.bars(SPY, None, 400, use_rth=True)  # Friday's 210 + 190 of Wednesday
    assert len(bars) == 400
    assert bars[-1].time == friday_close - timedelta(minutes=1)
    days = {b.time.astimezone(NY).date().isoformat() for b in bars}
    assert days == {"2026-11-25", "2026-11-27"}
    for bar in bars:
        local = bar.time.astimezone(NY)
        assert (9, 30) <= (local.hour, local.minute) < (16, 0)
    times = [b.time for b in bars]
    assert times == sorted(times) and len(set(times)) == len(times)


def test_non_rth_bars_include_extended_hours_in_calendar_mode() -> None:
    model, _ = make(at=datetime(2026, 11, 24, 9, 45, tzinfo=NY), calendar=True)
    rth = model.bars(SPY, None, 60, use_rth=True)
    ext = model.bars(SPY, None, 60, use_rth=False)
    assert rth[0].time.astimezone(NY).date().day == 23  # reaches back into Monday
    assert ext[0].time == datetime(2026, 11, 24, 8, 45, tzinfo=NY)  # pre-market
    assert all(b.volume > 0 for b in ext)


def test_stock_volumes_are_heavier_in_regular_hours() -> None:
    model, _ = make()
    regular = model.bars(SPY, datetime(2026, 11, 24, 11, 0, tzinfo=NY), 30, True)
    overnight = model.bars(SPY, datetime(2026, 11, 24, 2, 0, tzinfo=NY), 30, True)
    regular_volume = sum(b.volume for b in regular)
    assert sum(b.volume for b in overnight) * 20 < regular_volume
    assert 1_000_000 < regular_volume < 20_000_000  # ~60M shares a day


# -- calendar mode quotes -------------------------------------------------------------------


def test_saturday_night_serves_fridays_close_with_an_old_timestamp() -> None:
    saturday = datetime(2026, 11, 28, 22, 0, tzinfo=NY)
    model, _ = make(at=saturday, calendar=True)
    friday_close = datetime(2026, 11, 27, 13, 0, tzinfo=NY)  # early close
    q = model.quote(SPY)
    assert q.last_trade_time == friday_close
    last_minute = model.quote(SPY, friday_close - timedelta(seconds=1))
    assert (q.bid, q.ask, q.last, q.volume) == (
        last_minute.bid,
        last_minute.ask,
        last_minute.last,
        last_minute.volume,
    )
    assert q.last == model.bars(SPY, None, 1, True)[-1].close
    opt = spy_option(model, "C").con_id
    assert model.quote(opt).last_trade_time == friday_close


def test_thanksgiving_serves_wednesdays_close() -> None:
    model, _ = make(at=datetime(2026, 11, 26, 11, 0, tzinfo=NY), calendar=True)
    q = model.quote(SPY)
    assert q.last_trade_time == datetime(2026, 11, 25, 16, 0, tzinfo=NY)


def test_calendar_closed_market_quote_is_the_same_all_weekend() -> None:
    model, clock = make(at=datetime(2026, 11, 28, 9, 0, tzinfo=NY), calendar=True)
    first = model.quote(SPY)
    clock.advance(30 * 3600)
    assert model.quote(SPY) == first


# -- test hooks -----------------------------------------------------------------------------


def test_override_pins_the_price_from_now_on() -> None:
    model, clock = make()
    call = spy_option(model, "C").con_id
    before_bars = model.bars(SPY, None, 10, True)
    call_before = model.quote(call).last
    model.set_override("spy", 650.0)
    q = model.quote(SPY)
    assert q.last == 650.0 and q.bid <= 650.0 <= q.ask
    assert model.bars(SPY, None, 10, True)[:-1] == before_bars[:-1]
    assert model.bars(SPY, None, 1, True)[-1].close == 650.0
    assert model.quote(call).last > call_before
    clock.advance(600)
    assert model.quote(SPY).last == 650.0
    model.clear_overrides()
    assert model.quote(SPY).last != 650.0


def test_shock_multiplies_the_price_and_compounds() -> None:
    model, _ = make()
    base = model.quote(AAPL).last
    model.shock("AAPL", 0.9)
    assert model.quote(AAPL).last == pytest.approx(base * 0.9, abs=0.011)
    model.shock("AAPL", 0.5)
    assert model.quote(AAPL).last == pytest.approx(base * 0.45, abs=0.011)
    assert model.quote(SPY).last != pytest.approx(model.quote(SPY).last * 0.45)


def test_shock_after_an_override_multiplies_the_pinned_price() -> None:
    model, _ = make()
    model.set_override("TSLA", 200.0)
    model.shock("TSLA", 1.1)
    assert model.underlying_price("TSLA") == 220.0


def test_override_when_the_calendar_market_is_closed_shows_at_once() -> None:
    model, _ = make(at=datetime(2026, 11, 28, 22, 0, tzinfo=NY), calendar=True)
    model.set_override("SPY", 555.55)
    assert model.quote(SPY).last == 555.55


def test_hooks_refuse_bad_values_and_unknown_symbols() -> None:
    model, _ = make()
    with pytest.raises(ValueError):
        model.set_override("SPY", 0)
    with pytest.raises(ValueError):
        model.shock("SPY", -1)
    with pytest.raises(KeyError):
        model.shock("NOPE", 1.1)
