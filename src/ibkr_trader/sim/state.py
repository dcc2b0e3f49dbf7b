"""Sans-IO state of the simulated gateway: accounts, orders, fills, subscriptions, limits.

:class:`GatewayState` takes decoded client messages (``handle``) and the passing of time
(``poll``) and returns :class:`Send` / :class:`Close` actions for the server to carry out.
It never touches a socket; wall time (rate limits, pacing, fill latency) is passed in, the
simulated market time comes from the injected :class:`~ibkr_trader.sim.clock.SimClock`.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo

from ibkr_trader.sim import codec, expiry
from ibkr_trader.sim.clock import MarketCalendar, SimClock
from ibkr_trader.sim.codec import ContractFields, Fields
from ibkr_trader.sim.contracts import ContractCatalog, ContractInfo
from ibkr_trader.sim.faults import FaultInjector
from ibkr_trader.sim.matching import match

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
DONE_STATES: Final = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})

# The order lifecycle: (status, event) -> next status. Anything else is refused.
ORDER_TRANSITIONS: Final[dict[tuple[str, str], str]] = {
    ("PendingSubmit", "accept"): "Submitted",
    ("PendingSubmit", "accept_closed"): "PreSubmitted",
    ("PendingSubmit", "reject"): "Cancelled",
    ("PendingSubmit", "inactivate"): "Inactive",
    ("PreSubmitted", "open"): "Submitted",
    ("PreSubmitted", "cancel"): "PendingCancel",
    ("Submitted", "partial_fill"): "Submitted",
    ("Submitted", "fill"): "Filled",
    ("Submitted", "cancel"): "PendingCancel",
    ("Submitted", "modify"): "Submitted",
    ("PreSubmitted", "modify"): "PreSubmitted",
    ("PendingCancel", "cancelled"): "Cancelled",
}

ACCOUNT_SUMMARY_TAGS: Final = (
    "AccountType",
    "NetLiquidation",
    "TotalCashValue",
    "SettledCash",
    "AccruedCash",
    "BuyingPower",
    "EquityWithLoanValue",
    "PreviousDayEquityWithLoanValue",
    "GrossPositionValue",
    "RegTEquity",
    "RegTMargin",
    "SMA",
    "InitMarginReq",
    "MaintMarginReq",
    "AvailableFunds",
    "ExcessLiquidity",
    "Cushion",
    "FullInitMarginReq",
    "FullMaintMarginReq",
    "FullAvailableFunds",
    "FullExcessLiquidity",
    "LookAheadNextChange",
    "LookAheadInitMarginReq",
    "LookAheadMaintMarginReq",
    "LookAheadAvailableFunds",
    "LookAheadExcessLiquidity",
    "HighestSeverity",
    "DayTradesRemaining",
    "Leverage",
)

# tick ids: (live, delayed)
TICK_BID: Final = (1, 66)
TICK_ASK: Final = (2, 67)
TICK_LAST: Final = (4, 68)
TICK_HIGH: Final = (6, 72)
TICK_LOW: Final = (7, 73)
TICK_VOLUME: Final = (8, 74)
TICK_CLOSE: Final = (9, 75)
TICK_OPEN: Final = (14, 76)
TICK_LAST_TIMESTAMP: Final = (45, 88)
TICK_BID_OPTION: Final = (10, 80)
TICK_ASK_OPTION: Final = (11, 81)
TICK_LAST_OPTION: Final = (12, 82)
TICK_MODEL_OPTION: Final = (13, 83)


class InvalidTransition(Exception):
    """An order event that its current status does not allow."""


def transition(status: str, event: str) -> str:
    """The status after ``event``; :class:`InvalidTransition` if not allowed."""
    try:
        return ORDER_TRANSITIONS[(status, event)]
    except KeyError:
        raise InvalidTransition(f"{event} not allowed in {status}") from None


# --------------------------------------------------------------------------- market protocol


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


# --------------------------------------------------------------------------- config & actions


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


@dataclass(frozen=True)
class Send:
    conn_id: int
    fields: Fields


@dataclass(frozen=True)
class Close:
    conn_id: int
    reason: str


Action = Send | Close


# --------------------------------------------------------------------------- records


@dataclass
class ReceivedOrder:
    """One placeOrder as received, with its live status (introspection for tests)."""

    order_id: int
    client_id: int
    perm_id: int
    account: str
    action: str
    total_quantity: float
    order_type: str
    lmt_price: float | None
    tif: str
    order_ref: str
    ext_operator: str
    con_id: int
    symbol: str
    sec_type: str
    expiry: str
    strike: float
    right: str
    status: str = "PendingSubmit"
    filled: float = 0.0
    raw: tuple[str, ...] = ()
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    commission: float = 0.0
    contract: ContractFields = field(default_factory=ContractFields)
    due: float = 0.0
    partial_done: bool = False
    completed_time: str = ""
    completed_status: str = ""
    why_held: str = ""

    @property
    def remaining(self) -> float:
        return max(self.total_quantity - self.filled, 0.0)

    @property
    def is_done(self) -> bool:
        return self.status in DONE_STATES

    def wire(self) -> codec.OrderWire:
        return codec.OrderWire(
            order_id=self.order_id,
            client_id=self.client_id,
            perm_id=self.perm_id,
            contract=self.contract,
            action=self.action,
            total_quantity=self.total_quantity,
            order_type=self.order_type,
            lmt_price=self.lmt_price,
            aux_price=None,
            tif=self.tif,
            account=self.account,
            order_ref=self.order_ref,
            status=self.status,
            filled=self.filled,
            remaining=self.remaining if self.status not in DONE_STATES else 0.0,
            avg_fill_price=self.avg_fill_price,
            last_fill_price=self.last_fill_price,
            open_close="",
            commission=self.commission if self.status == "Filled" else None,
            completed_time=self.completed_time,
            completed_status=self.completed_status,
            why_held=self.why_held,
        )


@dataclass
class Execution:
    exec_id: str
    order: ReceivedOrder
    time: datetime
    side: str
    shares: float
    price: float
    cum_qty: float
    avg_price: float
    commission: float
    realized_pnl: float | None


@dataclass
class PositionRow:
    account: str
    contract: ContractFields
    con_id: int
    multiplier: float
    quantity: float = 0.0
    avg_cost: float = 0.0  # IB convention: per share / per contract (price x multiplier)
    realized_pnl: float = 0.0
    opened_day: str = ""


@dataclass
class Account:
    account: str
    cash: float
    realized_pnl: float = 0.0
    commissions: float = 0.0
    day_trades: list[tuple[str, int]] = field(default_factory=list)  # (NY date, con_id)


@dataclass
class Session:
    """One client connection's view of the gateway."""

    conn_id: int
    client_id: int | None = None
    ready: bool = False
    market_data_type: int = 1
    streaming: dict[int, int] = field(default_factory=dict)  # reqId -> conId
    account_updates: str | None = None
    positions: bool = False
    summaries: dict[int, str] = field(default_factory=dict)  # reqId -> tags
    multis: dict[int, str] = field(default_factory=dict)  # reqId -> account
    counts: dict[int, int] = field(default_factory=dict)  # epoch second -> messages
    rate_warned_second: int = -1
    auto_bind: bool = False
    version: int = codec.SERVER_VERSION  # negotiated in the handshake


# --------------------------------------------------------------------------- helpers


def contract_fields(info: ContractInfo) -> ContractFields:
    return ContractFields(
        con_id=info.con_id,
        symbol=info.symbol,
        sec_type=info.sec_type,
        expiry=info.expiry,
        strike=info.strike,
        right=info.right,
        multiplier=info.multiplier,
        exchange=info.exchange,
        primary_exchange=info.primary_exchange,
        currency=info.currency,
        local_symbol=info.local_symbol,
        trading_class=info.trading_class,
    )


def details_fields(info: ContractInfo) -> codec.ContractDetailsFields:
    def num(x: float) -> str:
        return codec.fmt(float(x))

    return codec.ContractDetailsFields(
        contract=contract_fields(info),
        market_name=info.market_name,
        min_tick=info.min_tick,
        order_types=info.order_types,
        valid_exchanges=info.valid_exchanges,
        long_name=info.long_name,
        under_con_id=info.under_con_id,
        contract_month=info.contract_month,
        industry=info.industry,
        category=info.category,
        subcategory=info.subcategory,
        time_zone_id=info.time_zone_id,
        trading_hours=info.trading_hours,
        liquid_hours=info.liquid_hours,
        sec_ids=info.sec_ids,
        agg_group=info.agg_group,
        under_symbol=info.under_symbol,
        under_sec_type=info.under_sec_type,
        market_rule_ids=info.market_rule_ids,
        real_expiration_date=info.real_expiration_date,
        stock_type=info.stock_type,
        last_trade_time=info.last_trade_time,
        min_size=num(info.min_size),
        size_increment=num(info.size_increment),
        suggested_size_increment=num(info.suggested_size_increment),
    )


def off_tick(price: float, tick: float) -> bool:
    steps = price / tick
    return abs(steps - round(steps)) > 1e-6


def commission_for(info: ContractInfo, shares: float, price: float) -> float:
    """IBKR Pro fixed-rate style: options 0.65/contract (min 1), stocks 0.005/share (min 1)."""
    if info.sec_type == "OPT":
        return round(max(1.0, 0.65 * shares), 2)
    return round(min(max(1.0, 0.005 * shares), 0.01 * shares * price), 2)


def parse_end_time(text: str, now: datetime) -> datetime:
    """endDateTime of reqHistoricalData: empty = now; ``YYYYMMDD HH:MM:SS [zone]`` or
    ``YYYYMMDD-HH:MM:SS`` (UTC); a bare date is 23:59:59 New York."""
    text = text.strip()
    if not text:
        return now
    zone: ZoneInfo = NY
    if "-" in text[:9] and text[8:9] == "-":
        stamp, zone = text, ZoneInfo("UTC")
        return datetime.strptime(stamp, "%Y%m%d-%H:%M:%S").replace(tzinfo=zone).astimezone(UTC)
    parts = text.split()
    if len(parts) == 1:
        d = datetime.strptime(parts[0], "%Y%m%d")
        return d.replace(hour=23, minute=59, second=59, tzinfo=NY).astimezone(UTC)
    stamp = f"{parts[0]} {parts[1]}"
    if len(parts) > 2:
        name = parts[2]
        zone = ZoneInfo("UTC") if name in ("UTC", "GMT") else ZoneInfo(name)
    return datetime.strptime(stamp, "%Y%m%d %H:%M:%S").replace(tzinfo=zone).astimezone(UTC)


def duration_seconds(text: str) -> int:
    """``1800 S``, ``2 D``, ``1 W``, ``1 M``, ``1 Y`` -> seconds."""
    amount, _, unit = text.strip().partition(" ")
    n = int(amount)
    scale = {"S": 1, "D": 86_400, "W": 7 * 86_400, "M": 30 * 86_400, "Y": 365 * 86_400}
    if unit.strip().upper() not in scale or n <= 0:
        raise ValueError(f"bad duration {text!r}")
    return n * scale[unit.strip().upper()]


BAR_MINUTES: Final = {
    "1 min": 1,
    "2 mins": 2,
    "3 mins": 3,
    "5 mins": 5,
    "10 mins": 10,
    "15 mins": 15,
    "20 mins": 20,
    "30 mins": 30,
    "1 hour": 60,
}


def aggregate_bars(bars: Sequence[Any], minutes: int) -> list[codec.BarFields]:
    """Group 1-minute bars into ``minutes``-minute bars aligned on the hour."""
    groups: dict[int, list[Any]] = {}
    for b in bars:
        ts = int(b.time.timestamp())
        key = ts - ts % (minutes * 60)
        groups.setdefault(key, []).append(b)
    out: list[codec.BarFields] = []
    for key in sorted(groups):
        g = groups[key]
        vol = sum(float(b.volume) for b in g)
        wap = (
            sum(float(b.wap) * float(b.volume) for b in g) / vol if vol > 0 else float(g[-1].close)
        )
        out.append(
            codec.BarFields(
                date=str(key),
                open=float(g[0].open),
                high=max(float(b.high) for b in g),
                low=min(float(b.low) for b in g),
                close=float(g[-1].close),
                volume=vol,
                wap=round(wap, 4),
                bar_count=sum(int(b.bar_count) for b in g),
            )
        )
    return out


# --------------------------------------------------------------------------- the state


class GatewayState:
    """Everything the simulated gateway knows; outlives client connections."""

    def __init__(
        self,
        config: SimConfig,
        *,
        clock: SimClock,
        catalog: ContractCatalog,
        market: MarketLike,
        calendar: MarketCalendar,
        faults: FaultInjector,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.clock = clock
        self.catalog = catalog
        self.market = market
        self.calendar = calendar
        self.faults = faults
        self.wall = wall
        self.sessions: dict[int, Session] = {}
        self.accounts: dict[str, Account] = {
            a: Account(a, config.starting_cash) for a in config.accounts
        }
        self.positions: dict[tuple[str, int], PositionRow] = {}
        self.orders: list[ReceivedOrder] = []
        # the orders not done yet (pruned lazily) and each client's highest order id: what
        # poll, the open-order queries and next_order_id read instead of every order ever
        self._working: dict[tuple[int, int], ReceivedOrder] = {}
        self._max_order_id: dict[int, int] = {}
        self._orders_by_key: dict[tuple[int, int], ReceivedOrder] = {}
        self.executions: list[Execution] = []
        self.rate_violations: dict[int, int] = {}
        # permIds and exec ids are unique across restarts of the simulator: they start from
        # the (injected) wall time, in tenths of a second, unless the config fixes the start.
        # A restarted gateway never repeats one while its predecessor issued fewer than ten a
        # second on average over its life.
        stamp = int(self.wall() * 10)
        self._next_perm_id = (
            config.first_perm_id
            if config.first_perm_id is not None
            else PERM_ID_BASE + stamp % PERM_ID_SPAN
        )
        self._exec_prefix = f"{stamp & 0xFFFFFFFF:08x}"
        self._exec_seq = 0
        self._expiry_closes: dict[str, datetime] = {}
        self.settlements: list[expiry.Settlement] = []
        self._hist_log: deque[tuple[float, tuple[Any, ...], int, int]] = deque()
        self._last_tick = 0.0
        self._last_portfolio = 0.0
        self._closed_clients: dict[int, dict[int, int]] = {}
        self._handlers: dict[type, Callable[[Session, Any], list[Action]]] = {
            codec.StartApi: self._start_api,
            codec.ReqPositions: self._req_positions,
            codec.CancelPositions: self._cancel_positions,
            codec.ReqOpenOrders: self._req_open_orders,
            codec.ReqAllOpenOrders: self._req_all_open_orders,
            codec.ReqAutoOpenOrders: self._req_auto_open_orders,
            codec.ReqCompletedOrders: self._req_completed_orders,
            codec.ReqAccountUpdates: self._req_account_updates,
            codec.ReqAccountUpdatesMulti: self._req_account_updates_multi,
            codec.CancelAccountUpdatesMulti: self._cancel_account_updates_multi,
            codec.ReqExecutions: self._req_executions,
            codec.ReqCurrentTime: self._req_current_time,
            codec.ReqAccountSummary: self._req_account_summary,
            codec.CancelAccountSummary: self._cancel_account_summary,
            codec.ReqContractDetails: self._req_contract_details,
            codec.ReqSecDefOptParams: self._req_sec_def_opt_params,
            codec.ReqMarketDataType: self._req_market_data_type,
            codec.ReqMktData: self._req_mkt_data,
            codec.CancelMktData: self._cancel_mkt_data,
            codec.ReqHistoricalData: self._req_historical_data,
            codec.CancelHistoricalData: self._ignore,
            codec.PlaceOrder: self._place_order,
            codec.CancelOrder: self._cancel_order,
            codec.ReqGlobalCancel: self._req_global_cancel,
            codec.ReqIds: self._req_ids,
            codec.ReqManagedAccounts: self._req_managed_accounts,
            codec.UnknownRequest: self._ignore,
        }

    # -- sessions --------------------------------------------------------------------------

    def open_session(self, conn_id: int) -> Session:
        session = Session(conn_id)
        self.sessions[conn_id] = session
        return session

    def set_version(self, conn_id: int, version: int) -> None:
        """The server version negotiated with this connection's client."""
        session = self.sessions.get(conn_id) or self.open_session(conn_id)
        session.version = version

    def _version(self, conn_id: int) -> int:
        session = self.sessions.get(conn_id)
        return session.version if session is not None else codec.SERVER_VERSION

    def close_session(self, conn_id: int) -> None:
        session = self.sessions.pop(conn_id, None)
        if session is not None and session.client_id is not None:
            merged = self._closed_clients.setdefault(session.client_id, {})
            for sec, n in session.counts.items():
                merged[sec] = merged.get(sec, 0) + n

    def ready_sessions(self) -> list[Session]:
        return [s for s in self.sessions.values() if s.ready]

    def _client_sessions(self, client_id: int) -> list[Session]:
        return [s for s in self.sessions.values() if s.ready and s.client_id == client_id]

    # -- introspection -----------------------------------------------------------------------

    def standing_subscriptions(self) -> int:
        return sum(len(s.streaming) for s in self.sessions.values())

    def message_counts(self, client_id: int) -> dict[int, int]:
        out = dict(self._closed_clients.get(client_id, {}))
        for s in self.sessions.values():
            if s.client_id == client_id:
                for sec, n in s.counts.items():
                    out[sec] = out.get(sec, 0) + n
        return out

    def max_messages_per_second(self, client_id: int | None = None) -> int:
        ids: Iterable[int]
        if client_id is None:
            ids = {s.client_id for s in self.sessions.values() if s.client_id is not None}
            ids = set(ids) | set(self._closed_clients)
        else:
            ids = (client_id,)
        return max((max(self.message_counts(c).values(), default=0) for c in ids), default=0)

    # -- entry points ------------------------------------------------------------------------

    def handle(self, conn_id: int, fields: Sequence[str]) -> list[Action]:
        """One client message -> the actions that answer it."""
        session = self.sessions.get(conn_id) or self.open_session(conn_id)
        actions = self._count(session)
        try:
            request = codec.decode_request(fields, session.version)
        except codec.RequestDecodeError as exc:
            return [
                *actions,
                Send(conn_id, codec.enc_error(-1, 320, f"Error reading request:{exc}")),
            ]
        if not session.ready and not isinstance(request, codec.StartApi):
            return actions  # TWS ignores requests before startApi
        msg_id = int(fields[0])
        injected = self.faults.take_error(msg_id)
        if injected is not None:
            return actions + self._injected_error(session, request, *injected)
        handler = self._handlers[type(request)]
        return actions + handler(session, request)

    def poll(self) -> list[Action]:
        """Time passed: fill due orders, match resting limits, stream ticks, push portfolio."""
        now_wall = self.wall()
        actions: list[Action] = []
        if self.config.calendar:
            actions += expiry.settle(self, self.clock.now())
        for order in self.working_orders():
            if order.status in ("Submitted", "PreSubmitted") and order.due <= now_wall:
                actions += self._try_fill(order)
        if now_wall - self._last_tick >= self.config.tick_interval:
            self._last_tick = now_wall
            for session in self.ready_sessions():
                for req_id, con_id in list(session.streaming.items()):
                    actions += self._stream_ticks(session, req_id, con_id)
        if now_wall - self._last_portfolio >= self.config.portfolio_interval:
            self._last_portfolio = now_wall
            for session in self.ready_sessions():
                if session.account_updates:
                    actions += self._portfolio_rows(session.conn_id, session.account_updates)
                    actions += self._account_values(session.conn_id, session.account_updates)
        return actions

    def broadcast_error(self, code: int, text: str) -> list[Action]:
        return [Send(s.conn_id, codec.enc_error(-1, code, text)) for s in self.ready_sessions()]

    # -- limits ------------------------------------------------------------------------------

    def _count(self, session: Session) -> list[Action]:
        sec = int(self.wall())
        n = session.counts.get(sec, 0) + 1
        session.counts[sec] = n
        if len(session.counts) > 600:
            for old in sorted(session.counts)[:-600]:
                del session.counts[old]
        if n > self.config.rate_limit and session.ready:
            cid = session.client_id if session.client_id is not None else -1
            self.rate_violations[cid] = self.rate_violations.get(cid, 0) + 1
            if session.rate_warned_second != sec:
                session.rate_warned_second = sec
                text = (
                    "Max rate of messages per second has been exceeded:"
                    f"max={self.config.rate_limit} rec={n} (1)"
                )
                return [Send(session.conn_id, codec.enc_error(-1, 100, text))]
        return []

    def _injected_error(
        self, session: Session, request: codec.Request, code: int, text: str
    ) -> list[Action]:
        req_id = getattr(request, "req_id", None)
        if isinstance(request, codec.PlaceOrder):
            req_id = request.order_id
        rid = req_id if isinstance(req_id, int) else -1
        out: list[Action] = [
            Send(session.conn_id, codec.enc_error(rid, code, text or "Simulated error"))
        ]
        if isinstance(request, codec.PlaceOrder):
            order = self._new_order(session, request, None)
            out += self._finish(order, "reject", f"Rejected: error {code}")
        return out

    # -- handshake and start-up --------------------------------------------------------------

    def next_order_id(self, client_id: int) -> int:
        used = self._max_order_id.get(client_id, 0)
        return max(self.config.first_order_id - 1, used) + 1

    def working_orders(self) -> list[ReceivedOrder]:
        """The orders not done yet, oldest first (done ones are dropped on the way)."""
        out: list[ReceivedOrder] = []
        for key, order in list(self._working.items()):
            if order.is_done:
                del self._working[key]
            else:
                out.append(order)
        return out

    def _start_api(self, session: Session, req: codec.StartApi) -> list[Action]:
        if session.ready:
            return []
        cid = session.conn_id
        if self._client_sessions(req.client_id):
            text = "Unable to connect as the client id is already in use. Retry with a unique client id."
            return [Send(cid, codec.enc_error(-1, 326, text)), Close(cid, "client id in use")]
        session.client_id = req.client_id
        session.ready = True
        out: list[Action] = [
            Send(cid, codec.enc_managed_accounts(self.config.accounts)),
            Send(cid, codec.enc_next_valid_id(self.next_order_id(req.client_id))),
        ]
        out += [Send(cid, codec.enc_error(-1, code, text)) for code, text in FARM_NOTICES]
        return out

    def _ignore(self, session: Session, req: Any) -> list[Action]:
        return []

    def _req_ids(self, session: Session, req: codec.ReqIds) -> list[Action]:
        assert session.client_id is not None
        return [
            Send(session.conn_id, codec.enc_next_valid_id(self.next_order_id(session.client_id)))
        ]

    def _req_managed_accounts(self, session: Session, req: Any) -> list[Action]:
        return [Send(session.conn_id, codec.enc_managed_accounts(self.config.accounts))]

    def _req_current_time(self, session: Session, req: Any) -> list[Action]:
        return [Send(session.conn_id, codec.enc_current_time(int(self.clock.now().timestamp())))]

    # -- positions and accounts --------------------------------------------------------------

    def _position_msgs(self, conn_id: int) -> list[Action]:
        return [
            Send(conn_id, codec.enc_position(p.account, p.contract, p.quantity, self._cost(p)))
            for p in self.positions.values()
        ]

    @staticmethod
    def _cost(p: PositionRow) -> float:
        return round(p.avg_cost, 6) if p.quantity else 0.0

    def _req_positions(self, session: Session, req: Any) -> list[Action]:
        session.positions = True
        return [
            *self._position_msgs(session.conn_id),
            Send(session.conn_id, codec.enc_position_end()),
        ]

    def _cancel_positions(self, session: Session, req: Any) -> list[Action]:
        session.positions = False
        return []

    def _mark(self, p: PositionRow) -> float:
        try:
            price = float(self.market.price(p.con_id))
        except Exception:
            price = p.avg_cost / p.multiplier if p.multiplier else 0.0
        return round(price, 4)

    def account_values(self, account: str) -> dict[str, float | str]:
        acct = self.accounts[account]
        long_stock = short_stock = long_opt = short_opt = unrealized = 0.0
        for p in self.positions.values():
            if p.account != account or not p.quantity:
                continue
            value = p.quantity * self._mark(p) * p.multiplier
            unrealized += value - p.quantity * p.avg_cost
            if p.contract.sec_type == "OPT":
                if value >= 0:
                    long_opt += value
                else:
                    short_opt += value
            elif value >= 0:
                long_stock += value
            else:
                short_stock += value
        gross = long_stock - short_stock + long_opt - short_opt
        net_liq = acct.cash + long_stock + short_stock + long_opt + short_opt
        init_margin = 0.25 * (long_stock - short_stock) + (-short_opt) * 1.2
        maint_margin = init_margin * 0.9
        available = net_liq - init_margin
        excess = net_liq - maint_margin
        day_trades: float = -1.0
        if net_liq < 25_000:
            day_trades = float(max(0, 3 - self._recent_day_trades(acct)))
        return {
            "AccountCode": account,
            "AccountType": "INDIVIDUAL",
            "Currency": "USD",
            "NetLiquidation": round(net_liq, 2),
            "TotalCashValue": round(acct.cash, 2),
            "CashBalance": round(acct.cash, 2),
            "SettledCash": round(acct.cash, 2),
            "AccruedCash": 0.0,
            "BuyingPower": round(max(available, 0.0) * 4, 2),
            "EquityWithLoanValue": round(net_liq, 2),
            "PreviousDayEquityWithLoanValue": round(net_liq, 2),
            "GrossPositionValue": round(gross, 2),
            "StockMarketValue": round(long_stock + short_stock, 2),
            "OptionMarketValue": round(long_opt + short_opt, 2),
            "RegTEquity": round(net_liq, 2),
            "RegTMargin": round(init_margin * 2, 2),
            "SMA": round(max(available, 0.0), 2),
            "InitMarginReq": round(init_margin, 2),
            "MaintMarginReq": round(maint_margin, 2),
            "AvailableFunds": round(available, 2),
            "ExcessLiquidity": round(excess, 2),
            "Cushion": round(excess / net_liq, 4) if net_liq else 0.0,
            "FullInitMarginReq": round(init_margin, 2),
            "FullMaintMarginReq": round(maint_margin, 2),
            "FullAvailableFunds": round(available, 2),
            "FullExcessLiquidity": round(excess, 2),
            "LookAheadNextChange": 0.0,
            "LookAheadInitMarginReq": round(init_margin, 2),
            "LookAheadMaintMarginReq": round(maint_margin, 2),
            "LookAheadAvailableFunds": round(available, 2),
            "LookAheadExcessLiquidity": round(excess, 2),
            "HighestSeverity": 0.0,
            "DayTradesRemaining": day_trades,
            "Leverage": round(gross / net_liq, 4) if net_liq else 0.0,
            "UnrealizedPnL": round(unrealized, 2),
            "RealizedPnL": round(acct.realized_pnl, 2),
        }

    def _recent_day_trades(self, acct: Account) -> int:
        today = self.clock.now().astimezone(NY).date()
        days: set[str] = set()
        d = today
        while len(days) < 5:
            if self.calendar.is_trading_day(d) or not self.calendar.calendar:
                days.add(d.strftime("%Y%m%d"))
            d -= timedelta(days=1)
        return sum(1 for day, _ in acct.day_trades if day in days)

    @staticmethod
    def _currency(key: str, value: float | str) -> str:
        if key in ("AccountCode", "AccountType", "Currency"):
            return ""
        return (
            ""
            if key
            in (
                "Cushion",
                "Leverage",
                "DayTradesRemaining",
                "HighestSeverity",
                "LookAheadNextChange",
            )
            else "USD"
        )

    def _account_values(self, conn_id: int, account: str) -> list[Action]:
        out: list[Action] = []
        for key, value in self.account_values(account).items():
            out.append(
                Send(
                    conn_id,
                    codec.enc_account_value(
                        key, codec.fmt(value), self._currency(key, value), account
                    ),
                )
            )
        return out

    def _portfolio_rows(self, conn_id: int, account: str) -> list[Action]:
        out: list[Action] = []
        for p in self.positions.values():
            if p.account != account:
                continue
            price = self._mark(p)
            value = round(p.quantity * price * p.multiplier, 2)
            unrealized = round(value - p.quantity * p.avg_cost, 2) if p.quantity else 0.0
            out.append(
                Send(
                    conn_id,
                    codec.enc_portfolio(
                        p.contract,
                        p.quantity,
                        price,
                        value,
                        self._cost(p),
                        unrealized,
                        round(p.realized_pnl, 2),
                        account,
                    ),
                )
            )
        return out

    def _account_time(self, conn_id: int) -> Action:
        return Send(conn_id, codec.enc_account_time(f"{self.clock.now().astimezone(NY):%H:%M}"))

    def _req_account_updates(self, session: Session, req: codec.ReqAccountUpdates) -> list[Action]:
        account = req.account or self.config.accounts[0]
        if not req.subscribe:
            session.account_updates = None
            return []
        if account not in self.accounts:
            return [
                Send(
                    session.conn_id,
                    codec.enc_error(
                        -1,
                        321,
                        f"Error validating request.-'bB' : cause - Invalid account code {account}",
                    ),
                )
            ]
        session.account_updates = account
        cid = session.conn_id
        return [
            *self._account_values(cid, account),
            *self._portfolio_rows(cid, account),
            self._account_time(cid),
            Send(cid, codec.enc_account_download_end(account)),
        ]

    def _req_account_updates_multi(
        self, session: Session, req: codec.ReqAccountUpdatesMulti
    ) -> list[Action]:
        cid = session.conn_id
        accounts = [req.account] if req.account in self.accounts else list(self.accounts)
        session.multis[req.req_id] = req.account
        out: list[Action] = []
        for account in accounts:
            for key, value in self.account_values(account).items():
                out.append(
                    Send(
                        cid,
                        codec.enc_account_update_multi(
                            req.req_id,
                            account,
                            req.model_code,
                            key,
                            codec.fmt(value),
                            self._currency(key, value),
                        ),
                    )
                )
        out.append(Send(cid, codec.enc_account_update_multi_end(req.req_id)))
        return out

    def _cancel_account_updates_multi(
        self, session: Session, req: codec.CancelAccountUpdatesMulti
    ) -> list[Action]:
        session.multis.pop(req.req_id, None)
        return []

    def _summary_rows(self, conn_id: int, req_id: int, tags: str) -> list[Action]:
        wanted = {t.strip() for t in tags.split(",") if t.strip()}
        out: list[Action] = []
        for account in self.accounts:
            values = self.account_values(account)
            for tag in ACCOUNT_SUMMARY_TAGS:
                if tag in wanted:
                    value = values[tag]
                    out.append(
                        Send(
                            conn_id,
                            codec.enc_account_summary(
                                req_id, account, tag, codec.fmt(value), self._currency(tag, value)
                            ),
                        )
                    )
        return out

    def _req_account_summary(self, session: Session, req: codec.ReqAccountSummary) -> list[Action]:
        if len(session.summaries) >= 2 and req.req_id not in session.summaries:
            text = "Error processing request:Maximum number of account summary requests exceeded"
            return [Send(session.conn_id, codec.enc_error(req.req_id, 322, text))]
        session.summaries[req.req_id] = req.tags
        return [
            *self._summary_rows(session.conn_id, req.req_id, req.tags),
            Send(session.conn_id, codec.enc_account_summary_end(req.req_id)),
        ]

    def _cancel_account_summary(
        self, session: Session, req: codec.CancelAccountSummary
    ) -> list[Action]:
        session.summaries.pop(req.req_id, None)
        return []

    # -- orders: queries ---------------------------------------------------------------------

    def _order_msgs(self, conn_id: int, order: ReceivedOrder) -> list[Action]:
        wire = order.wire()
        return [
            Send(conn_id, codec.enc_open_order(wire, self._version(conn_id))),
            Send(conn_id, codec.enc_order_status(wire)),
        ]

    def _req_open_orders(self, session: Session, req: Any) -> list[Action]:
        out: list[Action] = []
        for order in self.working_orders():
            if order.client_id == session.client_id or session.client_id == 0:
                out += self._order_msgs(session.conn_id, order)
        out.append(Send(session.conn_id, codec.enc_open_order_end()))
        return out

    def _req_all_open_orders(self, session: Session, req: Any) -> list[Action]:
        out: list[Action] = []
        for order in self.working_orders():
            out += self._order_msgs(session.conn_id, order)
        out.append(Send(session.conn_id, codec.enc_open_order_end()))
        return out

    def _req_auto_open_orders(self, session: Session, req: codec.ReqAutoOpenOrders) -> list[Action]:
        session.auto_bind = req.auto_bind
        return []

    def _req_completed_orders(
        self, session: Session, req: codec.ReqCompletedOrders
    ) -> list[Action]:
        out: list[Action] = [
            Send(session.conn_id, codec.enc_completed_order(o.wire(), session.version))
            for o in self.orders
            if o.is_done
        ]
        out.append(Send(session.conn_id, codec.enc_completed_orders_end()))
        return out

    def _exec_wire(self, e: Execution, req_id: int) -> codec.ExecutionWire:
        o = e.order
        return codec.ExecutionWire(
            req_id=req_id,
            order_id=o.order_id,
            client_id=o.client_id,
            perm_id=o.perm_id,
            contract=o.contract,
            exec_id=e.exec_id,
            time=f"{e.time.astimezone(NY):%Y%m%d %H:%M:%S} US/Eastern",
            account=o.account,
            exchange=o.contract.primary_exchange or "SMART",
            side=e.side,
            shares=e.shares,
            price=e.price,
            cum_qty=e.cum_qty,
            avg_price=e.avg_price,
            order_ref=o.order_ref,
        )

    def _exec_msgs(self, conn_id: int, e: Execution, req_id: int) -> list[Action]:
        return [
            Send(
                conn_id, codec.enc_exec_details(self._exec_wire(e, req_id), self._version(conn_id))
            ),
            Send(
                conn_id, codec.enc_commission_report(e.exec_id, e.commission, "USD", e.realized_pnl)
            ),
        ]

    def _req_executions(self, session: Session, req: codec.ReqExecutions) -> list[Action]:
        out: list[Action] = []
        since: datetime | None = None
        if req.time:
            try:
                since = parse_end_time(req.time, self.clock.now())
            except (ValueError, KeyError):
                since = None
        for e in self.executions:
            o = e.order
            if req.client_id and o.client_id != req.client_id:
                continue
            if req.account and o.account != req.account:
                continue
            if req.symbol and o.symbol != req.symbol.upper():
                continue
            if req.sec_type and o.sec_type != req.sec_type.upper():
                continue
            if req.side and e.side != {"BUY": "BOT", "SELL": "SLD"}.get(req.side.upper(), req.side):
                continue
            if since is not None and e.time < since:
                continue
            out += self._exec_msgs(session.conn_id, e, req.req_id)
        out.append(Send(session.conn_id, codec.enc_exec_details_end(req.req_id)))
        return out

    # -- contracts ---------------------------------------------------------------------------

    def _lookup(self, c: ContractFields) -> list[ContractInfo]:
        return self.catalog.find(
            symbol=c.symbol,
            sec_type=c.sec_type,
            expiry=c.expiry,
            strike=c.strike,
            right=c.right,
            con_id=c.con_id,
            exchange=c.exchange,
            currency=c.currency,
            local_symbol=c.local_symbol,
            trading_class=c.trading_class,
        )

    def _resolve(self, c: ContractFields) -> ContractInfo | None:
        if c.con_id:
            info = self.catalog.by_con_id(c.con_id)
            if info is not None and (not c.symbol or c.symbol.upper() == info.symbol):
                return info
            return None
        found = self._lookup(c)
        return found[0] if len(found) == 1 else None

    def _req_contract_details(
        self, session: Session, req: codec.ReqContractDetails
    ) -> list[Action]:
        cid = session.conn_id
        found = self._lookup(req.contract)
        if not found:
            return [Send(cid, codec.enc_error(req.req_id, 200, ERR_NO_SECURITY))]
        out: list[Action] = [
            Send(cid, codec.enc_contract_data(req.req_id, details_fields(i))) for i in found
        ]
        out.append(Send(cid, codec.enc_contract_data_end(req.req_id)))
        return out

    def _req_sec_def_opt_params(
        self, session: Session, req: codec.ReqSecDefOptParams
    ) -> list[Action]:
        cid = session.conn_id
        params = self.catalog.option_params(req.symbol)
        if params is None or (req.con_id and params.underlying_con_id != req.con_id):
            return [Send(cid, codec.enc_error(req.req_id, 200, ERR_NO_SECURITY))]
        return [
            Send(
                cid,
                codec.enc_sec_def_opt_params(
                    req.req_id,
                    params.exchange,
                    params.underlying_con_id,
                    params.trading_class,
                    params.multiplier,
                    params.expirations,
                    params.strikes,
                ),
            ),
            Send(cid, codec.enc_sec_def_opt_params_end(req.req_id)),
        ]

    # -- market data -------------------------------------------------------------------------

    def _req_market_data_type(self, session: Session, req: codec.ReqMarketDataType) -> list[Action]:
        if req.market_data_type in (1, 2, 3, 4):
            session.market_data_type = req.market_data_type
        return []

    def _quote_ticks(self, session: Session, req_id: int, con_id: int, full: bool) -> list[Action]:
        q = self.market.quote(con_id)
        delayed = 1 if session.market_data_type in (3, 4) else 0
        cid = session.conn_id
        out: list[Action] = []

        def price(tick: tuple[int, int], value: float, size: float = 0.0) -> None:
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return
            out.append(Send(cid, codec.enc_tick_price(req_id, tick[delayed], value, size)))

        if self.faults.no_bid_ask:
            price(TICK_BID, -1.0, 0.0)
            price(TICK_ASK, -1.0, 0.0)
        else:
            price(TICK_BID, float(q.bid), float(q.bid_size))
            price(TICK_ASK, float(q.ask), float(q.ask_size))
        price(TICK_LAST, float(q.last), float(q.last_size))
        if full:
            price(TICK_HIGH, float(q.high))
            price(TICK_LOW, float(q.low))
        out.append(Send(cid, codec.enc_tick_size(req_id, TICK_VOLUME[delayed], float(q.volume))))
        if full:
            price(TICK_CLOSE, float(q.close))
            price(TICK_OPEN, float(q.open))
        last_time: datetime = q.last_trade_time
        if self.faults.stale_age is not None:
            last_time = self.clock.now() - timedelta(seconds=self.faults.stale_age)
        out.append(
            Send(
                cid,
                codec.enc_tick_string(
                    req_id, TICK_LAST_TIMESTAMP[delayed], str(int(last_time.timestamp()))
                ),
            )
        )
        out += self._option_ticks(session, req_id, con_id, q, delayed)
        return out

    def _option_ticks(
        self, session: Session, req_id: int, con_id: int, q: Any, delayed: int
    ) -> list[Action]:
        """tickOptionComputation for an option: bid, ask and last greeks at the volatility
        each price implies, then the model's (Black-Scholes at the model volatility)."""
        model = self.market.option_model(con_id)
        if model is None:
            return []
        prices: list[tuple[tuple[int, int], float]] = []
        if not self.faults.no_bid_ask:
            prices += [(TICK_BID_OPTION, float(q.bid)), (TICK_ASK_OPTION, float(q.ask))]
        prices.append((TICK_LAST_OPTION, float(q.last)))
        out: list[Action] = []
        for tick, value in prices:
            if math.isnan(value) or value <= 0:
                continue
            m = self.market.option_model_at(con_id, value)
            out.append(Send(session.conn_id, self._option_computation(req_id, tick[delayed], m)))
        model_tick = TICK_MODEL_OPTION[delayed]
        out.append(Send(session.conn_id, self._option_computation(req_id, model_tick, model)))
        return out

    @staticmethod
    def _option_computation(req_id: int, tick_type: int, m: Any) -> Fields:
        return codec.enc_tick_option_computation(
            req_id,
            tick_type,
            m.implied_vol,
            m.delta,
            m.opt_price,
            m.pv_dividend,
            m.gamma,
            m.vega,
            m.theta,
            m.und_price,
        )

    def _stream_ticks(self, session: Session, req_id: int, con_id: int) -> list[Action]:
        return self._quote_ticks(session, req_id, con_id, full=False)

    def _req_mkt_data(self, session: Session, req: codec.ReqMktData) -> list[Action]:
        cid = session.conn_id
        info = self._resolve(req.contract)
        if info is None:
            return [Send(cid, codec.enc_error(req.req_id, 200, ERR_NO_SECURITY))]
        if req.snapshot and req.generic_ticks:
            text = (
                "Error validating request.-'bQ' : cause - Snapshot market data subscription "
                "is not applicable to generic ticks"
            )
            return [Send(cid, codec.enc_error(req.req_id, 321, text))]
        if not req.snapshot:
            if req.req_id in session.streaming:
                text = f"Error processing request.-'bR' : cause - Duplicate ticker id:{req.req_id}"
                return [Send(cid, codec.enc_error(req.req_id, 322, text))]
            if self.standing_subscriptions() >= self.config.max_market_data_lines:
                text = "Max number of tickers has been reached"
                return [Send(cid, codec.enc_error(req.req_id, 101, text))]
        out: list[Action] = []
        if session.market_data_type in (3, 4):
            text = "Requested market data is not subscribed. Displaying delayed market data."
            out.append(Send(cid, codec.enc_error(req.req_id, 10167, text)))
        out.append(Send(cid, codec.enc_tick_req_params(req.req_id, info.min_tick)))
        out.append(Send(cid, codec.enc_market_data_type(req.req_id, session.market_data_type)))
        out += self._quote_ticks(session, req.req_id, info.con_id, full=True)
        if req.snapshot:
            out.append(Send(cid, codec.enc_tick_snapshot_end(req.req_id)))
        else:
            session.streaming[req.req_id] = info.con_id
        return out

    def _cancel_mkt_data(self, session: Session, req: codec.CancelMktData) -> list[Action]:
        session.streaming.pop(req.req_id, None)
        return []

    # -- historical data ---------------------------------------------------------------------

    def _pacing_violation(
        self, key: tuple[Any, ...], contract_key: tuple[Any, ...], weight: int
    ) -> bool:
        now = self.wall()
        log = self._hist_log
        while log and now - log[0][0] > 600:
            log.popleft()
        if any(k == key and now - t < 15 for t, k, _, _ in log):
            return True
        same = sum(w for t, k, _, w in log if k[:3] == contract_key and now - t < 2)
        if same + weight >= 6:
            return True
        if sum(w for _, _, _, w in log) + weight > 60:
            return True
        log.append((now, key, 0, weight))
        return False

    def _req_historical_data(self, session: Session, req: codec.ReqHistoricalData) -> list[Action]:
        cid = session.conn_id

        def hmds(text: str) -> list[Action]:
            return [
                Send(
                    cid,
                    codec.enc_error(
                        req.req_id, 162, f"Historical Market Data Service error message:{text}"
                    ),
                )
            ]

        info = self._resolve(req.contract)
        if info is None:
            return [Send(cid, codec.enc_error(req.req_id, 200, ERR_NO_SECURITY))]
        what = req.what_to_show.upper()
        if what not in ("TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK"):
            return hmds(f"No data of type {req.what_to_show} is available for {info.symbol}")
        minutes = BAR_MINUTES.get(req.bar_size.strip())
        if minutes is None:
            return hmds(f"Bar size {req.bar_size!r} is not supported by the simulator")
        try:
            seconds = duration_seconds(req.duration)
            end = parse_end_time(req.end, self.clock.now())
        except (ValueError, KeyError) as exc:
            return hmds(f"invalid request: {exc}")
        if self.config.pacing:
            key = (
                info.con_id,
                req.contract.exchange,
                what,
                req.end,
                req.duration,
                req.bar_size,
                req.use_rth,
            )
            weight = 2 if what == "BID_ASK" else 1
            if self._pacing_violation(key, key[:3], weight):
                return hmds("Historical data request pacing violation")
        # IB counts a duration in trading time: "3600 S" on a Saturday is Friday's last hour.
        per_day = 390 if (self.calendar.calendar and req.use_rth) else 1440
        count = seconds // 60 if seconds < 86_400 else (seconds // 86_400) * per_day
        count = max(1, min(count, 20_000))
        raw = list(self.market.bars(info.con_id, end, count, req.use_rth))
        if not raw:
            return hmds(
                f"HMDS query returned no data: {info.symbol}@{req.contract.exchange or 'SMART'} Trades"
            )
        bars = aggregate_bars(raw, minutes)
        no_volume = what != "TRADES"
        if req.format_date == 2:
            render: Callable[[int], str] = str
        else:

            def render(ts: int) -> str:
                return f"{datetime.fromtimestamp(ts, NY):%Y%m%d %H:%M:%S} US/Eastern"

        wire = [
            codec.BarFields(
                date=render(int(b.date)),
                open=b.open,
                high=b.high,
                low=b.low,
                close=b.close,
                volume=-1 if no_volume else b.volume,
                wap=-1 if no_volume else b.wap,
                bar_count=-1 if no_volume else b.bar_count,
            )
            for b in bars
        ]
        return [
            Send(
                cid,
                codec.enc_historical_data(
                    req.req_id,
                    render(int(raw[0].time.timestamp())),
                    render(int(end.timestamp())),
                    wire,
                ),
            )
        ]

    # -- orders: placing ---------------------------------------------------------------------

    def _new_order(
        self, session: Session, req: codec.PlaceOrder, info: ContractInfo | None
    ) -> ReceivedOrder:
        assert session.client_id is not None
        o = req.order
        c = contract_fields(info) if info is not None else req.contract
        order = ReceivedOrder(
            order_id=req.order_id,
            client_id=session.client_id,
            perm_id=self.take_perm_id(),
            account=o.account,
            action=o.action.upper(),
            total_quantity=o.total_quantity,
            order_type=o.order_type.upper(),
            lmt_price=o.lmt_price,
            tif=o.tif or "DAY",
            order_ref=o.order_ref,
            ext_operator=o.ext_operator,
            con_id=c.con_id,
            symbol=c.symbol,
            sec_type=c.sec_type,
            expiry=c.expiry,
            strike=c.strike,
            right=c.right,
            raw=req.raw,
            contract=c,
        )
        self.orders.append(order)
        self._working[(order.client_id, order.order_id)] = order
        self._max_order_id[order.client_id] = max(
            self._max_order_id.get(order.client_id, 0), order.order_id
        )
        self._orders_by_key[(order.client_id, order.order_id)] = order
        return order

    def take_perm_id(self) -> int:
        perm_id = self._next_perm_id
        self._next_perm_id += 1
        return perm_id

    def next_exec_id(self) -> str:
        """IB's form ``<prefix>.<sequence>.01.01``; the last part is the revision."""
        self._exec_seq += 1
        return f"{self._exec_prefix}.{self._exec_seq:08x}.01.01"

    def order(self, client_id: int, order_id: int) -> ReceivedOrder | None:
        return self._orders_by_key.get((client_id, order_id))

    @property
    def received_orders(self) -> list[ReceivedOrder]:
        return list(self.orders)

    def _validate(
        self, session: Session, req: codec.PlaceOrder, info: ContractInfo | None
    ) -> tuple[int, str] | None:
        o = req.order
        if info is None:
            return 200, ERR_NO_SECURITY
        if self.config.calendar and expiry.is_expired(
            self, info.sec_type, info.expiry, self.clock.now()
        ):
            return 200, ERR_NO_SECURITY  # traded until the close of its expiry day only
        if o.account and o.account not in self.accounts:
            return (
                321,
                f"Error validating request.-'bN' : cause - The account code {o.account} is not managed by this gateway",
            )
        if not o.account and len(self.accounts) > 1:
            return (
                321,
                "Error validating request.-'bN' : cause - The account code is required for this operation",
            )
        if o.action.upper() not in ("BUY", "SELL"):
            return 321, f"Error validating request.-'bN' : cause - Invalid action {o.action}"
        if o.total_quantity <= 0:
            return 434, "The order size cannot be zero"
        if o.conditions or o.algo_strategy:
            return (
                321,
                "Error validating request.-'bN' : cause - Order conditions and algos are not supported by the simulator",
            )
        otype = o.order_type.upper()
        if otype not in ("MKT", "LMT"):
            return (
                387,
                f"Unsupported order type for this exchange and security type: {o.order_type}",
            )
        if (o.tif or "DAY").upper() not in ("DAY", "GTC"):
            return (
                321,
                f"Error validating request.-'bN' : cause - Unsupported time in force {o.tif}",
            )
        if otype == "LMT":
            if o.lmt_price is None or o.lmt_price <= 0:
                return (
                    321,
                    "Error validating request.-'bN' : cause - You must specify a positive limit price",
                )
            if off_tick(o.lmt_price, info.min_tick):
                return (
                    110,
                    "The price does not conform to the minimum price variation for this contract.",
                )
        if info.sec_type == "OPT" and not float(o.total_quantity).is_integer():
            return (
                321,
                "Error validating request.-'bN' : cause - Fractional quantities are not allowed for options",
            )
        if self.faults.reject_reason is not None:
            return 201, f"Order rejected - reason:{self.faults.reject_reason}"
        return None

    def _send_to_client(self, client_id: int, fields: Fields) -> list[Action]:
        return [Send(s.conn_id, fields) for s in self._client_sessions(client_id)]

    def _status_msgs(self, order: ReceivedOrder, open_order: bool = True) -> list[Action]:
        wire = order.wire()
        out: list[Action] = []
        if open_order:
            out += [
                Send(s.conn_id, codec.enc_open_order(wire, s.version))
                for s in self._client_sessions(order.client_id)
            ]
        out += self._send_to_client(order.client_id, codec.enc_order_status(wire))
        return out

    def _finish(self, order: ReceivedOrder, event: str, completed: str) -> list[Action]:
        order.status = transition(order.status, event)
        order.completed_time = f"{self.clock.now().astimezone(NY):%Y%m%d %H:%M:%S} US/Eastern"
        order.completed_status = completed
        return self._status_msgs(order, open_order=False)

    def _place_order(self, session: Session, req: codec.PlaceOrder) -> list[Action]:
        assert session.client_id is not None
        cid = session.conn_id
        existing = self._orders_by_key.get((session.client_id, req.order_id))
        if existing is not None:
            if existing.is_done:
                return [Send(cid, codec.enc_error(req.order_id, 103, "Duplicate order id"))]
            return self._modify(existing, req)
        if req.order_id <= self.next_order_id(session.client_id) - 1 or req.order_id <= 0:
            return [Send(cid, codec.enc_error(req.order_id, 103, "Duplicate order id"))]
        info = self._resolve(req.contract)
        problem = self._validate(session, req, info)
        order = self._new_order(session, req, info)
        if problem is not None:
            code, text = problem
            event = "inactivate" if code in (321, 434, 387) else "reject"
            return [
                Send(cid, codec.enc_error(req.order_id, code, text)),
                *self._finish(order, event, f"Rejected: {text}"),
            ]
        assert info is not None
        if not order.account:
            order.account = self.config.accounts[0]
        market_open = self.calendar.is_open(self.clock.now())
        order.status = transition(order.status, "accept" if market_open else "accept_closed")
        order.due = self.wall() + self.config.fill_latency
        out = self._status_msgs(order)
        if self.faults.order_warning is not None:
            out += self.order_warning(order, *self.faults.order_warning)
        if market_open and self.config.fill_latency == 0:
            out += self._try_fill(order)
        return out

    def _modify(self, order: ReceivedOrder, req: codec.PlaceOrder) -> list[Action]:
        o = req.order
        if o.total_quantity <= order.filled:
            return [
                Send(
                    s.conn_id,
                    codec.enc_error(
                        order.order_id,
                        321,
                        "Error validating request.-'bN' : cause - quantity below filled",
                    ),
                )
                for s in self._client_sessions(order.client_id)
            ]
        if order.order_type == "LMT" and o.lmt_price is not None:
            info = self.catalog.by_con_id(order.con_id)
            if info is not None and off_tick(o.lmt_price, info.min_tick):
                return self._send_to_client(
                    order.client_id,
                    codec.enc_error(
                        order.order_id,
                        110,
                        "The price does not conform to the minimum price variation for this contract.",
                    ),
                )
            order.lmt_price = o.lmt_price
        order.total_quantity = o.total_quantity
        order.order_ref = o.order_ref
        order.status = transition(order.status, "modify")
        return self._status_msgs(order)

    # -- orders: cancelling ------------------------------------------------------------------

    def _cancel_order(self, session: Session, req: codec.CancelOrder) -> list[Action]:
        assert session.client_id is not None
        order = self._orders_by_key.get((session.client_id, req.order_id))
        cid = session.conn_id
        if order is None:
            text = f"OrderId {req.order_id} that needs to be cancelled is not found."
            return [Send(cid, codec.enc_error(req.order_id, 10147, text))]
        if order.is_done:
            text = f"OrderId {req.order_id} that needs to be cancelled cannot be cancelled, state: {order.status}."
            return [Send(cid, codec.enc_error(req.order_id, 10148, text))]
        return self._do_cancel(order)

    def _do_cancel(self, order: ReceivedOrder) -> list[Action]:
        order.status = transition(order.status, "cancel")
        out = self._finish(order, "cancelled", "Cancelled by Trader")
        out += self._send_to_client(
            order.client_id, codec.enc_error(order.order_id, 202, "Order Canceled - reason:")
        )
        return out

    def _req_global_cancel(self, session: Session, req: Any) -> list[Action]:
        out: list[Action] = []
        for order in self.working_orders():
            out += self._do_cancel(order)
        return out

    # -- orders: filling ---------------------------------------------------------------------

    def _try_fill(self, order: ReceivedOrder) -> list[Action]:
        if self.faults.no_fills or order.is_done:
            return []
        if self.faults.partial_fraction is not None and order.partial_done:
            return []
        now = self.clock.now()
        if not self.calendar.is_open(now):
            return []
        out: list[Action] = []
        if order.status == "PreSubmitted":
            order.status = transition(order.status, "open")
            out += self._status_msgs(order)
        if self.faults.no_bid_ask:
            return out
        q = self.market.quote(order.con_id)
        got = match(order.action, order.order_type, order.lmt_price, order.remaining, q.bid, q.ask)
        if got is None:
            return out
        price = got.price
        qty = got.quantity
        if self.faults.partial_fraction is not None:
            part = math.floor(order.total_quantity * self.faults.partial_fraction)
            qty = float(max(1, part)) if qty > 1 else qty
            qty = min(qty, order.remaining)
            order.partial_done = True
        return out + self._fill(order, qty, price, now)

    def _fill(self, order: ReceivedOrder, qty: float, price: float, now: datetime) -> list[Action]:
        info = self.catalog.by_con_id(order.con_id)
        assert info is not None
        commission = commission_for(info, qty, price)
        multiplier = float(info.multiplier_value)
        signed = qty if order.action == "BUY" else -qty
        realized = self._apply_position(order, info, signed, price, multiplier, commission, now)
        acct = self.accounts[order.account]
        acct.cash -= signed * price * multiplier + commission
        acct.commissions += commission
        if realized is not None:
            acct.realized_pnl += realized
        prev_value = order.avg_fill_price * order.filled
        order.filled += qty
        order.avg_fill_price = round((prev_value + qty * price) / order.filled, 6)
        order.last_fill_price = price
        order.commission = round(order.commission + commission, 2)
        execution = Execution(
            exec_id=self.next_exec_id(),
            order=order,
            time=now,
            side="BOT" if order.action == "BUY" else "SLD",
            shares=qty,
            price=price,
            cum_qty=order.filled,
            avg_price=order.avg_fill_price,
            commission=commission,
            realized_pnl=realized,
        )
        self.executions.append(execution)
        event = "fill" if order.remaining <= 1e-9 else "partial_fill"
        order.status = transition(order.status, event)
        if order.status == "Filled":
            order.completed_time = f"{now.astimezone(NY):%Y%m%d %H:%M:%S} US/Eastern"
            order.completed_status = f"Filled Size: {codec.fmt(order.filled)}"
        wire = order.wire()
        out: list[Action] = []
        for s in self._client_sessions(order.client_id):
            c = s.conn_id
            out.append(Send(c, codec.enc_exec_details(self._exec_wire(execution, -1), s.version)))
            out.append(Send(c, codec.enc_open_order(wire, s.version)))
            out.append(Send(c, codec.enc_order_status(wire)))
            out.append(
                Send(c, codec.enc_commission_report(execution.exec_id, commission, "USD", realized))
            )
        if self.faults.correct_fills:
            out += self.correct_execution(execution)
        out += self._after_fill(order.account, order.con_id)
        return out

    # -- faults on live orders and fills -----------------------------------------------------

    def order_warning(self, order: ReceivedOrder, code: int, text: str) -> list[Action]:
        """An order-level warning for a live order; its status does not change."""
        return self._send_to_client(order.client_id, codec.enc_error(order.order_id, code, text))

    def correct_execution(self, execution: Execution) -> list[Action]:
        """IB's correction of a fill: the same execution under the next exec id revision
        (``….01`` -> ``….02``), which replaces the earlier one in the execution record."""
        base, _, revision = execution.exec_id.rpartition(".")
        corrected = replace(execution, exec_id=f"{base}.{int(revision) + 1:02d}")
        self.executions = [corrected if e is execution else e for e in self.executions]
        out: list[Action] = []
        for s in self._client_sessions(execution.order.client_id):
            out += self._exec_msgs(s.conn_id, corrected, -1)
        return out

    def _apply_position(
        self,
        order: ReceivedOrder,
        info: ContractInfo,
        signed: float,
        price: float,
        multiplier: float,
        commission: float,
        now: datetime,
    ) -> float | None:
        key = (order.account, info.con_id)
        today = now.astimezone(NY).strftime("%Y%m%d")
        row = self.positions.get(key)
        if row is None:
            row = PositionRow(order.account, contract_fields(info), info.con_id, multiplier)
            self.positions[key] = row
        unit = price * multiplier
        per_unit_commission = commission / abs(signed)
        realized: float | None = None
        if row.quantity == 0 or (row.quantity > 0) == (signed > 0):
            cost = unit + per_unit_commission if signed > 0 else unit - per_unit_commission
            total = abs(row.quantity) * row.avg_cost + abs(signed) * cost
            if row.quantity == 0:
                row.opened_day = today
            row.quantity += signed
            row.avg_cost = total / abs(row.quantity)
        else:
            closing = min(abs(signed), abs(row.quantity))
            direction = 1.0 if row.quantity > 0 else -1.0
            realized = (unit - row.avg_cost) * closing * direction - commission
            row.realized_pnl += realized
            if row.opened_day == today:
                self.accounts[order.account].day_trades.append((today, info.con_id))
            row.quantity += signed
            if abs(row.quantity) < 1e-9:
                row.quantity = 0.0
            elif (row.quantity > 0) != (direction > 0):
                row.avg_cost = unit
                row.opened_day = today
        return realized

    def _after_fill(self, account: str, con_id: int) -> list[Action]:
        out: list[Action] = []
        row = self.positions[(account, con_id)]
        for s in self.ready_sessions():
            if s.positions:
                out.append(
                    Send(
                        s.conn_id,
                        codec.enc_position(account, row.contract, row.quantity, self._cost(row)),
                    )
                )
            if s.account_updates == account:
                out += [
                    a for a in self._portfolio_rows(s.conn_id, account) if self._is_row(a, con_id)
                ]
                out += self._account_values(s.conn_id, account)
                out.append(self._account_time(s.conn_id))
            for req_id, tags in s.summaries.items():
                out += self._summary_rows(s.conn_id, req_id, tags)
        if row.quantity == 0:
            del self.positions[(account, con_id)]
        return out

    @staticmethod
    def _is_row(action: Action, con_id: int) -> bool:
        return isinstance(action, Send) and action.fields[2] == con_id

    # -- test helpers ------------------------------------------------------------------------

    def seed_position(
        self,
        account: str,
        symbol: str,
        quantity: float,
        avg_cost: float,
        *,
        sec_type: str = "STK",
        expiry: str = "",
        strike: float = 0.0,
        right: str = "",
        con_id: int = 0,
    ) -> ContractInfo:
        """Put a position on the book as if filled earlier (avg_cost in IB's convention)."""
        if account not in self.accounts:
            raise ValueError(f"unknown account {account}")
        found = (
            [i for i in [self.catalog.by_con_id(con_id)] if i is not None]
            if con_id
            else self.catalog.find(
                symbol=symbol, sec_type=sec_type, expiry=expiry, strike=strike, right=right
            )
        )
        if len(found) != 1:
            raise ValueError(
                f"no single contract for {symbol} {sec_type} {expiry} {strike} {right}"
            )
        info = found[0]
        row = PositionRow(
            account,
            contract_fields(info),
            info.con_id,
            float(info.multiplier_value),
            quantity,
            avg_cost,
        )
        self.positions[(account, info.con_id)] = row
        return info
