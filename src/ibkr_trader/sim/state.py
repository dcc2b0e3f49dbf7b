"""Sans-IO state of the simulated gateway: accounts, orders, fills, subscriptions, limits.

:class:`GatewayState` takes decoded client messages (``handle``) and the passing of time
(``poll``) and returns :class:`Send` / :class:`Close` actions for the server to carry out.
It never touches a socket; wall time (rate limits, pacing, fill latency) is passed in, the
simulated market time comes from the injected :class:`~ibkr_trader.sim.clock.SimClock`.

This module is the dispatcher: the state is built from one part per room, each a module of
its own, stacked in this order (a part may use the ones before it): ``sessions``
(StateCore: connections, counting), ``market_data`` (contracts, ticks, greeks), ``history``
(bars, pacing), ``accounts`` (positions, account values, summary), ``fills`` (matching,
executions, position arithmetic), ``orders`` (placing, validation, cancelling, queries);
``expiry`` settles options at the close. Every name they define is re-exported here.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ibkr_trader.sim import codec, expiry
from ibkr_trader.sim.accounts import (
    ACCOUNT_SUMMARY_TAGS,
    Account,
    AccountsPart,
    PositionRow,
)
from ibkr_trader.sim.clock import MarketCalendar, SimClock
from ibkr_trader.sim.config import (
    ERR_NO_SECURITY,
    FARM_NOTICES,
    MAX_MARKET_DATA_LINES,
    MAX_MESSAGES_PER_SECOND,
    NY,
    PERM_ID_BASE,
    PERM_ID_SPAN,
    BarLike,
    MarketLike,
    QuoteLike,
    SimConfig,
)
from ibkr_trader.sim.contracts import ContractCatalog
from ibkr_trader.sim.faults import FaultInjector
from ibkr_trader.sim.fills import (
    FillsPart,
    commission_for,
)
from ibkr_trader.sim.history import (
    BAR_MINUTES,
    HistoryPart,
    aggregate_bars,
    duration_seconds,
    parse_end_time,
)
from ibkr_trader.sim.lifecycle import (
    DONE_STATES,
    ORDER_TRANSITIONS,
    Execution,
    InvalidTransition,
    ReceivedOrder,
    transition,
)
from ibkr_trader.sim.market_data import (
    TICK_ASK,
    TICK_ASK_OPTION,
    TICK_BID,
    TICK_BID_OPTION,
    TICK_CLOSE,
    TICK_HIGH,
    TICK_LAST,
    TICK_LAST_OPTION,
    TICK_LAST_TIMESTAMP,
    TICK_LOW,
    TICK_MODEL_OPTION,
    TICK_OPEN,
    TICK_VOLUME,
    MarketDataPart,
    contract_fields,
    details_fields,
)
from ibkr_trader.sim.orders import (
    OrdersPart,
    is_wire_text,
    off_tick,
)
from ibkr_trader.sim.sessions import (
    Action,
    Close,
    Send,
    Session,
    StateCore,
)


class GatewayState(OrdersPart):
    """Everything the simulated gateway knows; outlives client connections. The parts:
    sessions, market data, history, accounts, fills, orders (one module each)."""

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

    def handle(self, conn_id: int, fields: Sequence[str]) -> list[Action]:
        """One client message -> the actions that answer it."""
        session = self.sessions.get(conn_id) or self.open_session(conn_id)
        actions = self._count(session)
        try:
            request = codec.decode_request(fields, session.version)
        except codec.RequestDecodeError as exc:
            # a placeOrder that does not parse (a NUL inside a text field shifts every later
            # field) is answered for its order id, so the client's order ends
            rid = -1
            if fields and fields[0] == "3" and len(fields) > 1 and fields[1].isdigit():
                rid = int(fields[1])
            return [
                *actions,
                Send(conn_id, codec.enc_error(rid, 320, f"Error reading request:{exc}")),
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


__all__ = [
    "ACCOUNT_SUMMARY_TAGS",
    "BAR_MINUTES",
    "DONE_STATES",
    "ERR_NO_SECURITY",
    "FARM_NOTICES",
    "MAX_MARKET_DATA_LINES",
    "MAX_MESSAGES_PER_SECOND",
    "NY",
    "ORDER_TRANSITIONS",
    "PERM_ID_BASE",
    "PERM_ID_SPAN",
    "TICK_ASK",
    "TICK_ASK_OPTION",
    "TICK_BID",
    "TICK_BID_OPTION",
    "TICK_CLOSE",
    "TICK_HIGH",
    "TICK_LAST",
    "TICK_LAST_OPTION",
    "TICK_LAST_TIMESTAMP",
    "TICK_LOW",
    "TICK_MODEL_OPTION",
    "TICK_OPEN",
    "TICK_VOLUME",
    "Account",
    "AccountsPart",
    "Action",
    "BarLike",
    "Close",
    "Execution",
    "FillsPart",
    "GatewayState",
    "HistoryPart",
    "InvalidTransition",
    "MarketDataPart",
    "MarketLike",
    "OrdersPart",
    "PositionRow",
    "QuoteLike",
    "ReceivedOrder",
    "Send",
    "Session",
    "SimConfig",
    "StateCore",
    "aggregate_bars",
    "commission_for",
    "contract_fields",
    "details_fields",
    "duration_seconds",
    "is_wire_text",
    "off_tick",
    "parse_end_time",
    "transition",
]
