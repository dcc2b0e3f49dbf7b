"""How the simulated gateway is set up (SimConfig), its limits, and what the state needs from
the market model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo

NY: Final = ZoneInfo("America/New_York")


PERM_ID_BASE: Final = 1_000_000_000


PERM_ID_SPAN: Final = 1_000_000_000  # permIds stay below 2**31 (a Java int at IB)


MAX_MESSAGES_PER_SECOND: Final = 50


MAX_MARKET_DATA_LINES: Final = 100


FARM_NOTICES: Final = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)


ERR_NO_SECURITY: Final = "No security definition has been found for the request"


class QuoteLike(Protocol):
    bid: float
    ask: float
    last: float
    bid_size: float
    ask_size: float
    last_size: float
    volume: float
    close: float
    open: float
    high: float
    low: float
    last_trade_time: datetime


class BarLike(Protocol):
    time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    wap: float
    bar_count: int


class MarketLike(Protocol):
    """What the state needs from ``sim.market.MarketModel``."""

    def quote(self, con_id: int, at: datetime | None = None) -> Any: ...

    def bars(self, con_id: int, end: datetime, count: int, use_rth: bool) -> Sequence[Any]: ...

    def price(self, con_id: int, at: datetime | None = None) -> float: ...

    def option_model(self, con_id: int, at: datetime | None = None) -> Any: ...

    def underlying_price(self, symbol: str, at: datetime | None = None) -> float: ...

    def option_model_at(self, con_id: int, price: float, at: datetime | None = None) -> Any: ...


@dataclass(frozen=True)
class SimConfig:
    """How the simulated gateway is set up (safe defaults: loopback, one paper account)."""

    host: str = "127.0.0.1"
    port: int = 0
    accounts: tuple[str, ...] = ("DU1234567",)
    seed: int = 7
    calendar: bool = False
    fill_latency: float = 0.0
    pacing: bool = True
    start: datetime | None = None
    speed: float = 1.0  # simulated seconds per real second (SimClock)
    allow_non_loopback: bool = False
    starting_cash: float = 1_000_000.0
    tick_interval: float = 0.25
    portfolio_interval: float = 1.0
    poll_interval: float = 0.01
    rate_limit: int = MAX_MESSAGES_PER_SECOND
    max_market_data_lines: int = MAX_MARKET_DATA_LINES
    first_order_id: int = 1
    first_perm_id: int | None = None  # None: from the wall time (unique across restarts)

    def __post_init__(self) -> None:
        if not self.accounts or any(not a for a in self.accounts):
            raise ValueError("at least one non-empty account is needed")
        if self.fill_latency < 0:
            raise ValueError("fill_latency must be >= 0")
        from ibkr_trader.sim.clock import check_speed

        check_speed(self.speed)
