"""ContractCatalog: stocks with real conIds, option chains, reqContractDetails matching."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta

import pytest

from ibkr_trader.sim.clock import NY, MarketCalendar, SimClock
from ibkr_trader.sim.contracts import (
    ContractCatalog,
    decode_option_con_id,
    expiries_for,
    occ_symbol,
    option_con_id,
    underlying,
)

TODAY = date(2026, 11, 24)  # a Tuesday, two days before Thanksgiving
REAL_CONIDS = {
    "SPY": 756733,
    "QQQ": 320227571,
    "IWM": 9579970,
    "AAPL": 265598,
    "MSFT": 272093,
    "TSLA": 76792991,
}


@pytest.fixture
def clock() -> SimClock:
    return SimClock(datetime(2026, 11, 24, 10, 0, tzinfo=NY), frozen=True)


@pytest.fixture
def catalog(clock: SimClock) -> ContractCatalog:
    return ContractCatalog(clock)


@pytest.mark.parametrize(("symbol", "con_id"), sorted(REAL_CONIDS.items()))
def test_stocks_carry_their_real_con_ids(
    catalog: ContractCatalog, symbol: str, con_id: int
) -> None:
    found = catalog.find(symbol=symbol, sec_type="STK")
    assert [c.con_id for c in found] == [con_id]
    info = found[0]
    assert info.exchange == "SMART" and info.currency == "USD"
    assert info.primary_exchange in ("ARCA", "NASDAQ")
    assert info.isin.startswith("US") and len(info.isin) == 12
    assert info.sec_ids == (("ISIN", info.isin),)
    assert info.min_tick == 0.01
    assert info.multiplier == "" and info.multiplier_value == 1
    assert info.long_name and info.order_types and info.valid_exchanges
    assert len(info.market_rule_ids.split(",")) == len(info.valid_exchanges.split(","))
    assert catalog.by_con_id(con_id) == info
    assert catalog.is_known_symbol(symbol.lower())


def test_aapl_details_match_a_real_gateway(catalog: ContractCatalog) -> None:
    info = catalog.stock("AAPL")
    assert info is not None
    assert (info.trading_class, info.market_name, info.primary_exchange) == ("NMS", "NMS", "NASDAQ")
    assert (info.long_name, info.industry, info.category) == (
        "APPLE INC",
        "Technology",
        "Computers",
    )
    assert info.isin == "US0378331005"
    assert info.stock_type == "COMMON" and info.time_zone_id == "US/Eastern"


def test_con_id_alone_finds_the_contract(catalog: ContractCatalog) -> None:
    assert [c.symbol for c in catalog.find(con_id=756733)] == ["SPY"]
    option = catalog.find("SPY", "OPT", "20261218", 600.0, "C")[0]
    assert catalog.find(con_id=option.con_id) == [option]


def test_unknown_symbols_and_types_match_nothing(catalog: ContractCatalog) -> None:
    assert catalog.find(symbol="NOPE", sec_type="STK") == []
    assert catalog.find(symbol="SPY", sec_type="FUT") == []
    assert catalog.find(symbol="SPY", sec_type="STK", currency="EUR") == []
    assert catalog.find(symbol="SPY", sec_type="OPT", right="X") == []
    assert catalog.find(con_id=12345) == []
    assert catalog.by_con_id(999) is None
    assert not catalog.is_known_symbol("NOPE")
    assert catalog.option_params("NOPE") is None


def test_option_query_with_expiry_strike_and_right_gives_exactly_one(
    catalog: ContractCatalog,
) -> None:
    found = catalog.find("SPY", "OPT", "20261218", 600.0, "C")
    assert len(found) == 1
    opt = found[0]
    assert opt.local_symbol == "SPY   261218C00600000"
    assert opt.wire_expiry == "20261218 16:00 US/Eastern"
    assert (opt.multiplier, opt.multiplier_value, opt.trading_class) == ("100", 100, "SPY")
    assert (opt.under_con_id, opt.under_symbol, opt.under_sec_type) == (756733, "SPY", "STK")
    assert opt.real_expiration_date == "20261218" and opt.contract_month == "202612"
    assert opt.min_tick == 0.01 and opt.isin == "" and opt.sec_ids == ()
    assert catalog.option("SPY", "20261218", 600.0, "CALL") == opt


def test_missing_fields_widen_the_option_match(catalog: ContractCatalog) -> None:
    strikes = catalog.strikes("SPY")
    assert len(catalog.find("SPY", "OPT", "20261218", 600.0)) == 2
    assert len(catalog.find("SPY", "OPT", "20261218", right="P")) == len(strikes)
    assert len(catalog.find("SPY", "OPT", "202612", 600.0, "P")) == len(
        [e for e in catalog.expirations("SPY") if e.startswith("202612")]
    )
    assert catalog.find("SPY", "OPT", "20261218", 600.5, "C") == []  # not a listed strike


def test_local_symbol_alone_finds_an_option(catalog: ContractCatalog) -> None:
    found = catalog.find(local_symbol="SPY   261218P00600000", sec_type="OPT")
    assert [(c.right, c.strike) for c in found] == [("P", 600.0)]


def test_exchange_other_than_smart_is_echoed_when_valid(catalog: ContractCatalog) -> None:
    found = catalog.find("SPY", "STK", exchange="ARCA")
    assert [c.exchange for c in found] == ["ARCA"]
    assert catalog.find("SPY", "STK", exchange="NOWHERE") == []


def test_option_params_list_weekly_expiries_for_eight_weeks(catalog: ContractCatalog) -> None:
    for symbol in REAL_CONIDS:
        params = catalog.option_params(symbol)
        assert params is not None
        assert params.exchange == "SMART" and params.multiplier == "100"
        assert params.underlying_con_id == REAL_CONIDS[symbol]
        assert params.trading_class == symbol
        days = [datetime.strptime(e, "%Y%m%d").date() for e in params.expirations]
        assert days == sorted(days) and days[0] >= TODAY
        assert days[-1] >= TODAY + timedelta(weeks=8)
        for week in range(8):  # a listed expiry in every one of the next 8 weeks
            monday = TODAY - timedelta(days=TODAY.weekday()) + timedelta(weeks=week)
            assert any(monday <= d < monday + timedelta(days=7) for d in days)
        assert all(d.weekday() < 5 for d in days)
        assert date(2026, 11, 26) not in days  # Thanksgiving


def test_index_etfs_list_the_nearest_expiries(catalog: ContractCatalog) -> None:
    assert catalog.expirations("SPY")[:3] == ("20261124", "20261125", "20261127")
    assert catalog.expirations("AAPL")[0] == "20261127"


def test_strikes_surround_the_reference_price(catalog: ContractCatalog) -> None:
    spy = catalog.strikes("SPY")
    assert spy[0] >= 480 and spy[-1] <= 720 and 600.0 in spy
    assert all(b - a == 1.0 for a, b in itertools.pairwise(spy))
    aapl = catalog.strikes("AAPL")
    steps = {round(b - a, 2) for a, b in itertools.pairwise(aapl)}
    assert steps == {2.5, 5.0}
    assert 230.0 in aapl


def test_every_listed_option_has_details_and_unique_con_ids(catalog: ContractCatalog) -> None:
    seen: set[int] = set()
    for symbol in REAL_CONIDS:
        params = catalog.option_params(symbol)
        assert params is not None
        chain = catalog.find(symbol=symbol, sec_type="OPT")
        assert len(chain) == len(params.expirations) * len(params.strikes) * 2
        for opt in chain[:: max(1, len(chain) // 400)]:
            assert catalog.by_con_id(opt.con_id) == opt
        ids = {c.con_id for c in chain}
        assert len(ids) == len(chain)
        assert all(0 < i < 2**31 for i in ids)
        assert not ids & seen and not ids & set(REAL_CONIDS.values())
        seen |= ids


def test_option_con_ids_are_stable_and_decodable() -> None:
    con_id = option_con_id("SPY", date(2026, 12, 18), "C", 600.0)
    assert con_id == option_con_id("SPY", date(2026, 12, 18), "CALL", 600.0)
    assert con_id != option_con_id("SPY", date(2026, 12, 18), "P", 600.0)
    assert con_id != option_con_id("QQQ", date(2026, 12, 18), "C", 600.0)
    key = decode_option_con_id(con_id)
    assert key is not None
    assert (key.symbol, key.expiry, key.right, key.strike) == ("SPY", date(2026, 12, 18), "C", 600)
    assert decode_option_con_id(option_con_id("AAPL", date(2027, 1, 15), "P", 232.5)) is not None
    assert decode_option_con_id(756733) is None
    with pytest.raises(ValueError):
        option_con_id("NOPE", date(2026, 12, 18), "C", 600.0)
    with pytest.raises(ValueError):
        option_con_id("SPY", date(2026, 12, 18), "C", 600.25)


def test_occ_symbol_pads_the_root_to_six_characters() -> None:
    assert occ_symbol("SPY", date(2026, 12, 18), "C", 600.0) == "SPY   261218C00600000"
    assert occ_symbol("AAPL", date(2027, 1, 15), "P", 232.5) == "AAPL  270115P00232500"


def test_expired_options_are_not_listed(clock: SimClock, catalog: ContractCatalog) -> None:
    opt = catalog.find("SPY", "OPT", "20261124", 600.0, "C")[0]
    clock.set(datetime(2026, 11, 25, 9, 0, tzinfo=NY))
    assert catalog.by_con_id(opt.con_id) is None
    assert catalog.find(con_id=opt.con_id) == []
    assert "20261124" not in catalog.expirations("SPY")
    expired = catalog.by_con_id(opt.con_id, include_expired=True)
    assert expired is not None
    assert (expired.con_id, expired.local_symbol) == (opt.con_id, opt.local_symbol)


def test_chain_rolls_forward_with_the_clock(clock: SimClock, catalog: ContractCatalog) -> None:
    before = catalog.expirations("AAPL")
    clock.advance(14 * 86_400)
    after = catalog.expirations("AAPL")
    assert after[0] > before[0] and after[-1] >= before[-1]


def test_holiday_friday_expiry_moves_to_thursday() -> None:
    aapl = underlying("AAPL")
    assert aapl is not None
    expiries = expiries_for(aapl, date(2027, 3, 20))
    assert date(2027, 3, 26) not in expiries  # Good Friday 2027
    assert date(2027, 3, 25) in expiries


def test_calendar_catalog_carries_ib_trading_hours(clock: SimClock) -> None:
    catalog = ContractCatalog(clock, MarketCalendar(True))
    spy = catalog.stock("SPY")
    assert spy is not None
    assert "20261126:CLOSED" in spy.liquid_hours
    assert "20261127:0930-20261127:1300" in spy.liquid_hours
    assert spy.trading_hours.startswith("20261124:0400-20261124:2000")
    opt = catalog.find("SPY", "OPT", "20261218", 600.0, "C")[0]
    assert opt.trading_hours.startswith("20261124:0930-20261124:1600")


def test_con_id_with_disagreeing_fields_matches_nothing(catalog: ContractCatalog) -> None:
    option = catalog.find("SPY", "OPT", "20261218", 600.0, "C")[0]
    assert catalog.find(symbol="QQQ", con_id=option.con_id) == []
    assert catalog.find(sec_type="STK", con_id=option.con_id) == []
    assert catalog.find(expiry="20261219", con_id=option.con_id) == []
    assert catalog.find(strike=601.0, con_id=option.con_id) == []
    assert catalog.find(right="P", con_id=option.con_id) == []
    assert catalog.find(local_symbol="SPY", con_id=option.con_id) == []
    assert catalog.find(trading_class="XYZ", con_id=option.con_id) == []
    assert catalog.find(trading_class="SPY", con_id=option.con_id) == [option]


def test_symbol_without_a_type_matches_the_stock_and_its_options(
    catalog: ContractCatalog,
) -> None:
    found = catalog.find(symbol="IWM", expiry="20261218", strike=220.0)
    assert sorted((c.sec_type, c.right) for c in found) == [("OPT", "C"), ("OPT", "P")]
    found = catalog.find(symbol="IWM")
    assert found[0].sec_type == "STK" and len(found) > 1000
