"""The simulated gateway's contracts: stocks/ETFs and their option chains (pure).

Stocks carry their real conIds and details. Option conIds are *derived* from
(underlying, expiry, right, strike): they are stable across runs, unique, positive, fit in an
int32 and can be decoded back, so a lookup by conId never needs the whole chain in memory::

    con_id = 1_000_000_000 + ((underlying_index * 8192 + days_since_2020) * 2 + is_put) * 4096
             + strike * 2

Option chains, relative to the clock's New York date (so they roll forward with the clock):

* SPY, QQQ, IWM: an expiry on every trading day of the next 10 calendar days, Monday /
  Wednesday / Friday expiries for 9 weeks, and the monthly (third Friday) expiries for 6 months.
* the other stocks: Friday expiries for 9 weeks and the monthlies for 6 months.
* An expiry falling on an NYSE holiday moves to the previous trading day (Good Friday ->
  Thursday), in every mode. Expiries before today's New York date are not listed.
* Strikes are fixed around each symbol's reference price (see ``UNDERLYINGS``), the same for
  every expiry: 1-point steps within +-20% for the index ETFs, 2.5 near the money and 5
  further out for the stocks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from ibkr_trader.clock import Clock, ny_date
from ibkr_trader.sim.clock import MarketCalendar, nyse_holidays_and_weekends

MIN_TICK: Final = 0.01
OPTION_MULTIPLIER: Final = 100

OPTION_CONID_BASE: Final = 1_000_000_000
_EXPIRY_EPOCH: Final = date(2020, 1, 1)
_MAX_UNDERLYINGS: Final = 16
_MAX_EXPIRY_DAYS: Final = 8192
_MAX_STRIKE_HALVES: Final = 4096

ORDER_TYPES_STK: Final = (
    "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AON,AVGCOST,BASKET,BENCHPX,CASHQTY,COND,CONDORDER,"
    "DARKONLY,DARKPOLL,DAY,DEACT,DEACTDIS,DEACTEOD,DIS,DUR,GAT,GTC,GTD,GTT,HID,IBKRATS,ICE,"
    "IMB,IOC,LIT,LMT,LOC,MIDPX,MIT,MKT,MOC,MTL,NGCOMB,NODARK,NONALGO,OCA,OPG,OPGREROUT,"
    "PEGBENCH,PEGMID,POSTATS,POSTONLY,PREOPGRTH,PRICECHK,REL,REL2MID,RELPCTOFS,RPI,RTH,"
    "SCALE,SCALEODD,SCALERST,SIZECHK,SNAPMID,SNAPMKT,SNAPREL,STP,STPLMT,SWEEP,TRAIL,"
    "TRAILLIT,TRAILLMT,TRAILMIT,WHATIF"
)
ORDER_TYPES_OPT: Final = (
    "ACTIVETIM,AD,ADJUST,ALERT,ALLOC,AVGCOST,BASKET,COND,CONDORDER,DAY,DEACT,DEACTDIS,"
    "DEACTEOD,DIS,DUR,GAT,GTC,GTD,GTT,HID,ICE,IOC,LIT,LMT,MIT,MKT,MTL,NGCOMB,NONALGO,OCA,"
    "OPENCLOSE,PEGMIDVOL,PEGMKTVOL,PEGPRMVOL,PEGSRFVOL,POSTONLY,PRICECHK,REL,REL2MID,"
    "RELPCTOFS,SCALE,SCALERST,SIZECHK,SMARTSTG,SNAPMID,SNAPMKT,SNAPREL,STP,STPLMT,TRAIL,"
    "TRAILLIT,TRAILLMT,TRAILMIT,VOLAT,WHATIF"
)
VALID_EXCHANGES_STK: Final = (
    "SMART,AMEX,NYSE,CBOE,PHLX,ISE,CHX,ARCA,NASDAQ,DRCTEDGE,BEX,BATS,EDGEA,BYX,IEX,EDGX,"
    "FOXRIVER,PEARL,NYSENAT,LTSE,MEMX,IBEOS,OVERNIGHT,TPLUS0,PSX"
)
VALID_EXCHANGES_OPT: Final = (
    "SMART,AMEX,CBOE,PHLX,PSE,ISE,BOX,BATS,NASDAQOM,CBOE2,MIAX,GEMINI,EDGX,MERCURY,PEARL,"
    "EMERALD,MEMX,IBUSOPT"
)


@dataclass(frozen=True, slots=True)
class Underlying:
    """A stock or ETF the simulator knows, with what its price model and chain need."""

    symbol: str
    con_id: int
    long_name: str
    primary_exchange: str
    trading_class: str
    stock_type: str
    isin: str
    industry: str
    category: str
    subcategory: str
    ref_price: float
    volatility: float  # annualised, Black-Scholes and the price path
    daily_volume: int  # shares per regular session
    index_like: bool  # daily/MWF expiries and 1-point strikes
    strike_steps: tuple[tuple[float, float], ...]  # (band as a fraction of price, step)


UNDERLYINGS: Final[tuple[Underlying, ...]] = (
    Underlying("SPY", 756733, "SPDR S&P 500 ETF TRUST", "ARCA", "SPY", "ETF",
               "US78462F1030", "", "", "", 600.0, 0.15, 60_000_000, True, ((0.20, 1.0),)),
    Underlying("QQQ", 320227571, "INVESCO QQQ TRUST SERIES 1", "NASDAQ", "NMS", "ETF",
               "US46090E1038", "", "", "", 520.0, 0.19, 40_000_000, True, ((0.20, 1.0),)),
    Underlying("IWM", 9579970, "ISHARES RUSSELL 2000 ETF", "ARCA", "IWM", "ETF",
               "US4642876555", "", "", "", 220.0, 0.21, 30_000_000, True, ((0.20, 1.0),)),
    Underlying("AAPL", 265598, "APPLE INC", "NASDAQ", "NMS", "COMMON", "US0378331005",
               "Technology", "Computers", "Computers", 230.0, 0.25, 50_000_000, False,
               ((0.15, 2.5), (0.30, 5.0))),
    Underlying("MSFT", 272093, "MICROSOFT CORP", "NASDAQ", "NMS", "COMMON", "US5949181045",
               "Technology", "Software", "Applications Software", 420.0, 0.23, 20_000_000,
               False, ((0.15, 2.5), (0.30, 5.0))),
    Underlying("TSLA", 76792991, "TESLA INC", "NASDAQ", "NMS", "COMMON", "US88160R1014",
               "Consumer, Cyclical", "Auto Manufacturers", "Auto-Cars/Light Trucks", 250.0,
               0.55, 90_000_000, False, ((0.15, 2.5), (0.40, 5.0))),
    Underlying("NVDA", 4815747, "NVIDIA CORP", "NASDAQ", "NMS", "COMMON", "US67066G1040",
               "Technology", "Semiconductors", "Electronic Compo-Semicon", 140.0, 0.45,
               250_000_000, False, ((0.15, 1.0), (0.30, 2.5))),
    Underlying("AMZN", 3691937, "AMAZON.COM INC", "NASDAQ", "NMS", "COMMON", "US0231351067",
               "Communications", "Internet", "E-Commerce/Products", 200.0, 0.30, 40_000_000,
               False, ((0.15, 2.5), (0.30, 5.0))),
    Underlying("META", 107113386, "META PLATFORMS INC-CLASS A", "NASDAQ", "NMS", "COMMON",
               "US30303M1027", "Communications", "Internet", "Internet Content-Info",
               580.0, 0.35, 15_000_000, False, ((0.15, 5.0), (0.30, 10.0))),
    Underlying("GOOGL", 208813719, "ALPHABET INC-CL A", "NASDAQ", "NMS", "COMMON",
               "US02079K3059", "Communications", "Internet", "Web Portals/ISP", 170.0, 0.28,
               25_000_000, False, ((0.15, 2.5), (0.30, 5.0))),
)  # fmt: skip

_BY_SYMBOL: Final = {u.symbol: u for u in UNDERLYINGS}
_INDEX: Final = {u.symbol: i for i, u in enumerate(UNDERLYINGS)}
_BY_STOCK_CONID: Final = {u.con_id: u for u in UNDERLYINGS}
assert len(UNDERLYINGS) <= _MAX_UNDERLYINGS


def underlying(symbol: str) -> Underlying | None:
    """The underlying named ``symbol`` (case-insensitive), if the simulator knows it."""
    return _BY_SYMBOL.get(symbol.upper())


@dataclass(frozen=True, slots=True)
class ContractInfo:
    """Everything IB's contractData message carries for one contract.

    ``multiplier`` is the wire string ("" for stocks, "100" for options); use
    :attr:`multiplier_value` for arithmetic. ``expiry`` is YYYYMMDD ("" for stocks);
    ``last_trade_time`` is "16:00" for options and "" for stocks (on the wire an option's
    lastTradeDateOrContractMonth is ``f"{expiry} {last_trade_time} {time_zone_id}"``, see
    :attr:`wire_expiry`).
    """

    symbol: str
    sec_type: str  # "STK" | "OPT"
    con_id: int
    expiry: str = ""
    strike: float = 0.0
    right: str = ""  # "C" | "P" | ""
    multiplier: str = ""
    exchange: str = "SMART"
    primary_exchange: str = ""
    currency: str = "USD"
    local_symbol: str = ""
    trading_class: str = ""
    market_name: str = ""
    min_tick: float = MIN_TICK
    price_magnifier: int = 1
    long_name: str = ""
    contract_month: str = ""
    industry: str = ""
    category: str = ""
    subcategory: str = ""
    time_zone_id: str = "US/Eastern"
    trading_hours: str = ""
    liquid_hours: str = ""
    ev_rule: str = ""
    ev_multiplier: float = 0.0
    order_types: str = ""
    valid_exchanges: str = ""
    market_rule_ids: str = ""
    under_con_id: int = 0
    under_symbol: str = ""
    under_sec_type: str = ""
    agg_group: int = 1
    real_expiration_date: str = ""
    last_trade_time: str = ""
    stock_type: str = ""
    isin: str = ""
    min_size: float = 1.0
    size_increment: float = 1.0
    suggested_size_increment: float = 1.0

    @property
    def multiplier_value(self) -> int:
        """The contract multiplier as a number (1 for stocks)."""
        return int(self.multiplier) if self.multiplier else 1

    @property
    def is_option(self) -> bool:
        return self.sec_type == "OPT"

    @property
    def wire_expiry(self) -> str:
        """lastTradeDateOrContractMonth as a real gateway sends it in contractData."""
        if not self.expiry:
            return ""
        return f"{self.expiry} {self.last_trade_time} {self.time_zone_id}".strip()

    @property
    def sec_ids(self) -> tuple[tuple[str, str], ...]:
        """The secIdList (ISIN for stocks, nothing for options)."""
        return (("ISIN", self.isin),) if self.isin else ()


@dataclass(frozen=True, slots=True)
class OptionParams:
    """One row of reqSecDefOptParams' answer."""

    exchange: str
    underlying_con_id: int
    trading_class: str
    multiplier: str
    expirations: tuple[str, ...]
    strikes: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class OptionKey:
    """What an option conId encodes."""

    symbol: str
    expiry: date
    right: str
    strike: float


def option_con_id(symbol: str, expiry: date, right: str, strike: float) -> int:
    """The stable conId of an option (see the module docstring for the encoding)."""
    idx = _INDEX.get(symbol.upper())
    if idx is None:
        raise ValueError(f"unknown underlying {symbol!r}")
    days = (expiry - _EXPIRY_EPOCH).days
    halves = round(strike * 2)
    if not 0 <= days < _MAX_EXPIRY_DAYS:
        raise ValueError(f"expiry {expiry} out of range")
    if not 0 < halves < _MAX_STRIKE_HALVES or abs(halves / 2 - strike) > 1e-9:
        raise ValueError(f"strike {strike} cannot be encoded")
    put = _right_code(right) == "P"
    return OPTION_CONID_BASE + ((idx * _MAX_EXPIRY_DAYS + days) * 2 + put) * 4096 + halves


def decode_option_con_id(con_id: int) -> OptionKey | None:
    """The (underlying, expiry, right, strike) an option conId encodes, or None."""
    n = con_id - OPTION_CONID_BASE
    if n <= 0 or n >= _MAX_UNDERLYINGS * _MAX_EXPIRY_DAYS * 2 * _MAX_STRIKE_HALVES:
        return None
    n, halves = divmod(n, _MAX_STRIKE_HALVES)
    n, put = divmod(n, 2)
    idx, days = divmod(n, _MAX_EXPIRY_DAYS)
    if idx >= len(UNDERLYINGS) or halves == 0:
        return None
    return OptionKey(
        UNDERLYINGS[idx].symbol,
        _EXPIRY_EPOCH + timedelta(days=days),
        "P" if put else "C",
        halves / 2,
    )


def occ_symbol(symbol: str, expiry: date, right: str, strike: float) -> str:
    """OCC option symbol, e.g. ``SPY   261218C00600000``."""
    return f"{symbol:<6}{expiry:%y%m%d}{right}{round(strike * 1000):08d}"


def _right_code(right: str) -> str:
    r = right.upper()
    if r in ("C", "CALL"):
        return "C"
    if r in ("P", "PUT"):
        return "P"
    return ""


def _parse_occ(local_symbol: str) -> tuple[str, str, str, float] | None:
    """(symbol, YYYYMMDD, right, strike) of an OCC symbol, or None if it is not one."""
    if len(local_symbol) != 21 or local_symbol[12] not in "CP":
        return None
    digits = local_symbol[6:12] + local_symbol[13:]
    if not digits.isdigit():
        return None
    return (
        local_symbol[:6].strip().upper(),
        "20" + local_symbol[6:12],
        local_symbol[12],
        int(local_symbol[13:]) / 1000,
    )


def strikes_for(u: Underlying) -> tuple[float, ...]:
    """The strikes listed for ``u`` (fixed around its reference price)."""
    out: set[float] = set()
    for band, step in u.strike_steps:
        lo, hi = u.ref_price * (1 - band), u.ref_price * (1 + band)
        k = int(lo // step) + 1
        while k * step <= hi:
            out.add(round(k * step, 2))
            k += 1
    return tuple(sorted(out))


def _third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def expiries_for(u: Underlying, today: date) -> tuple[date, ...]:
    """The expiries listed for ``u`` on New York date ``today`` (see the module docstring)."""
    nyse = nyse_holidays_and_weekends()
    raw: set[date] = set()
    weekdays = (0, 2, 4) if u.index_like else (4,)
    for k in range(63):
        d = today + timedelta(days=k)
        if d.weekday() in weekdays or (u.index_like and k < 10 and d.weekday() < 5):
            raw.add(d)
    y, m = today.year, today.month
    for _ in range(7):
        raw.add(_third_friday(y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    out: set[date] = set()
    for d in raw:
        while not nyse.is_trading_day(d):
            d -= timedelta(days=1)
        if d >= today:
            out.add(d)
    return tuple(sorted(out))


class _Day:
    """Everything the catalog lists on one New York date."""

    def __init__(self, today: date, calendar: MarketCalendar) -> None:
        self.today = today
        self.stock_hours = calendar.hours_strings(today)
        self.option_hours = calendar.option_hours_strings(today)
        self.expiries: dict[str, tuple[date, ...]] = {}
        self.expiry_sets: dict[str, frozenset[date]] = {}
        self.options: dict[int, ContractInfo] = {}
        self.stocks = {u.symbol: self._stock(u) for u in UNDERLYINGS}

    def _stock(self, u: Underlying) -> ContractInfo:
        n_ex = len(VALID_EXCHANGES_STK.split(","))
        return ContractInfo(
            symbol=u.symbol,
            sec_type="STK",
            con_id=u.con_id,
            primary_exchange=u.primary_exchange,
            local_symbol=u.symbol,
            trading_class=u.trading_class,
            market_name=u.trading_class,
            long_name=u.long_name,
            industry=u.industry,
            category=u.category,
            subcategory=u.subcategory,
            trading_hours=self.stock_hours[0],
            liquid_hours=self.stock_hours[1],
            order_types=ORDER_TYPES_STK,
            valid_exchanges=VALID_EXCHANGES_STK,
            market_rule_ids=",".join(["26"] * n_ex),
            stock_type=u.stock_type,
            isin=u.isin,
            min_size=0.0001,
            size_increment=0.0001,
            suggested_size_increment=100.0,
        )

    def expiries_of(self, u: Underlying) -> tuple[date, ...]:
        found = self.expiries.get(u.symbol)
        if found is None:
            found = expiries_for(u, self.today)
            self.expiries[u.symbol] = found
            self.expiry_sets[u.symbol] = frozenset(found)
        return found

    def option(self, u: Underlying, expiry: date, right: str, strike: float) -> ContractInfo:
        con_id = option_con_id(u.symbol, expiry, right, strike)
        found = self.options.get(con_id)
        if found is not None:
            return found
        exp = expiry.strftime("%Y%m%d")
        n_ex = len(VALID_EXCHANGES_OPT.split(","))
        info = ContractInfo(
            symbol=u.symbol,
            sec_type="OPT",
            con_id=con_id,
            expiry=exp,
            strike=strike,
            right=right,
            multiplier=str(OPTION_MULTIPLIER),
            local_symbol=occ_symbol(u.symbol, expiry, right, strike),
            trading_class=u.symbol,
            market_name=u.symbol,
            long_name=u.long_name,
            contract_month=exp[:6],
            industry=u.industry,
            category=u.category,
            subcategory=u.subcategory,
            trading_hours=self.option_hours[0],
            liquid_hours=self.option_hours[1],
            order_types=ORDER_TYPES_OPT,
            valid_exchanges=VALID_EXCHANGES_OPT,
            market_rule_ids=",".join(["32"] + ["109"] * (n_ex - 1)),
            under_con_id=u.con_id,
            under_symbol=u.symbol,
            under_sec_type="STK",
            real_expiration_date=exp,
            last_trade_time="16:00",
        )
        self.options[con_id] = info
        return info


class ContractCatalog:
    """The contracts the simulated gateway knows, as of the clock's New York date."""

    def __init__(self, clock: Clock, calendar: MarketCalendar | None = None) -> None:
        self.clock = clock
        self.calendar = calendar if calendar is not None else MarketCalendar(False)
        self._day: _Day | None = None
        self._strikes: dict[str, tuple[float, ...]] = {
            u.symbol: strikes_for(u) for u in UNDERLYINGS
        }
        self._strike_sets = {s: frozenset(k) for s, k in self._strikes.items()}

    # -- helpers ----------------------------------------------------------------------------

    def _today(self) -> _Day:
        today = ny_date(self.clock.now())
        if self._day is None or self._day.today != today:
            self._day = _Day(today, self.calendar)
        return self._day

    @staticmethod
    def underlyings() -> tuple[Underlying, ...]:
        return UNDERLYINGS

    def symbols(self) -> tuple[str, ...]:
        return tuple(u.symbol for u in UNDERLYINGS)

    def is_known_symbol(self, symbol: str) -> bool:
        return underlying(symbol) is not None

    def underlying_of(self, info: ContractInfo) -> Underlying:
        """The underlying of a stock or option the catalog listed."""
        return _BY_SYMBOL[info.symbol]

    def strikes(self, symbol: str) -> tuple[float, ...]:
        return self._strikes.get(symbol.upper(), ())

    def expirations(self, symbol: str) -> tuple[str, ...]:
        """Listed expiries (YYYYMMDD) for ``symbol`` as of today."""
        u = underlying(symbol)
        if u is None:
            return ()
        return tuple(d.strftime("%Y%m%d") for d in self._today().expiries_of(u))

    # -- lookups ----------------------------------------------------------------------------

    def by_con_id(self, con_id: int, include_expired: bool = False) -> ContractInfo | None:
        """The contract with ``con_id`` if it is listed today.

        Expired options are not listed; ``include_expired=True`` still describes an option
        that was listed on an earlier date (a position held through expiry, say).
        """
        day = self._today()
        stock = _BY_STOCK_CONID.get(con_id)
        if stock is not None:
            return day.stocks[stock.symbol]
        found = day.options.get(con_id)
        if found is not None:
            return found
        key = decode_option_con_id(con_id)
        if key is None or key.strike not in self._strike_sets[key.symbol]:
            return None
        u = _BY_SYMBOL[key.symbol]
        day.expiries_of(u)
        if key.expiry not in day.expiry_sets[u.symbol]:
            if not include_expired or key.expiry >= day.today:
                return None
            if not nyse_holidays_and_weekends().is_trading_day(key.expiry):
                return None
        return day.option(u, key.expiry, key.right, key.strike)

    def stock(self, symbol: str) -> ContractInfo | None:
        u = underlying(symbol)
        return None if u is None else self._today().stocks[u.symbol]

    def option(self, symbol: str, expiry: str, strike: float, right: str) -> ContractInfo | None:
        """The listed option, or None."""
        found = self.find(symbol=symbol, sec_type="OPT", expiry=expiry, strike=strike, right=right)
        return found[0] if len(found) == 1 else None

    def find(
        self,
        symbol: str = "",
        sec_type: str = "",
        expiry: str = "",
        strike: float = 0.0,
        right: str = "",
        con_id: int = 0,
        exchange: str = "",
        currency: str = "",
        local_symbol: str = "",
        trading_class: str = "",
    ) -> list[ContractInfo]:
        """Contracts matching a reqContractDetails query; empty fields widen the match.

        ``con_id`` alone suffices (other given fields must then agree). ``expiry`` may be
        YYYYMMDD or a YYYYMM month. ``exchange`` may be SMART or any valid exchange; the
        answer then carries that exchange, as IB's does. Nothing matches -> ``[]`` (error 200
        on the wire).
        """
        sec = sec_type.upper()
        if sec not in ("", "STK", "OPT"):
            return []
        if currency and currency.upper() != "USD":
            return []
        want_right = _right_code(right)
        if right and not want_right:
            return []
        expiry = expiry.strip().split(" ")[0].replace("-", "")
        if con_id:
            info = self.by_con_id(con_id)
            candidates = [] if info is None else [info]
        else:
            occ = _parse_occ(local_symbol)
            if occ is not None:  # narrow the chain by what the OCC symbol says
                c_sym, c_exp, c_right, c_strike = occ
                candidates = self._candidates(
                    symbol or c_sym,
                    sec,
                    expiry or c_exp,
                    strike or c_strike,
                    want_right or c_right,
                    "",
                )
            else:
                candidates = self._candidates(symbol, sec, expiry, strike, want_right, local_symbol)

        def ok(c: ContractInfo) -> bool:
            if symbol and c.symbol != symbol.upper():
                return False
            if sec and c.sec_type != sec:
                return False
            if expiry and not c.expiry.startswith(expiry):
                return False
            if strike and abs(c.strike - strike) > 1e-6:
                return False
            if want_right and c.right != want_right:
                return False
            if local_symbol and c.local_symbol != local_symbol:
                return False
            return not trading_class or c.trading_class == trading_class

        out = [c for c in candidates if ok(c)]
        ex = exchange.upper()
        if ex and ex != "SMART":
            out = [
                dataclasses.replace(c, exchange=ex)
                for c in out
                if ex in c.valid_exchanges.split(",") or ex == c.primary_exchange
            ]
        return out

    def _candidates(
        self,
        symbol: str,
        sec: str,
        expiry: str,
        strike: float,
        right: str,
        local_symbol: str,
    ) -> list[ContractInfo]:
        day = self._today()
        sym = symbol.upper()
        if not sym and local_symbol:
            sym = local_symbol[:6].strip().upper()
        if sym:
            u = _BY_SYMBOL.get(sym)
            if u is None:
                return []
            unds: tuple[Underlying, ...] = (u,)
        else:
            unds = UNDERLYINGS
        out: list[ContractInfo] = []
        for u in unds:
            if sec in ("", "STK"):
                out.append(day.stocks[u.symbol])
            if sec in ("", "OPT"):
                out.extend(self._chain(day, u, expiry, strike, right))
        return out

    def _chain(
        self, day: _Day, u: Underlying, expiry: str, strike: float, right: str
    ) -> list[ContractInfo]:
        exps = [d for d in day.expiries_of(u) if d.strftime("%Y%m%d").startswith(expiry)]
        if strike:
            strikes: tuple[float, ...] = tuple(
                k for k in self._strikes[u.symbol] if abs(k - strike) <= 1e-6
            )
        else:
            strikes = self._strikes[u.symbol]
        rights = (right,) if right else ("C", "P")
        make: Callable[[Underlying, date, str, float], ContractInfo] = day.option
        return [make(u, d, r, k) for d in exps for r in rights for k in strikes]

    def option_params(self, symbol: str) -> OptionParams | None:
        """reqSecDefOptParams' SMART row for ``symbol``, or None if unknown."""
        u = underlying(symbol)
        if u is None:
            return None
        return OptionParams(
            exchange="SMART",
            underlying_con_id=u.con_id,
            trading_class=u.symbol,
            multiplier=str(OPTION_MULTIPLIER),
            expirations=self.expirations(u.symbol),
            strikes=self._strikes[u.symbol],
        )
