"""Client connections: each one's session, the actions the state returns, and the state's core
(sessions, message counting, IB's 50 messages a second).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ibkr_trader.sim import codec
from ibkr_trader.sim.clock import MarketCalendar, SimClock
from ibkr_trader.sim.codec import Fields
from ibkr_trader.sim.config import (
    MarketLike,
    SimConfig,
)
from ibkr_trader.sim.contracts import ContractCatalog
from ibkr_trader.sim.faults import FaultInjector
from ibkr_trader.sim.lifecycle import (
    Execution,
    ReceivedOrder,
)

if TYPE_CHECKING:
    from ibkr_trader.sim import expiry
    from ibkr_trader.sim.accounts import Account, PositionRow


@dataclass(frozen=True)
class Send:
    conn_id: int
    fields: Fields


@dataclass(frozen=True)
class Close:
    conn_id: int
    reason: str


Action = Send | Close


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


class StateCore:
    """The sessions part of :class:`~ibkr_trader.sim.state.GatewayState`."""

    # set by GatewayState.__init__; declared here for every part of the state
    config: SimConfig
    clock: SimClock
    catalog: ContractCatalog
    market: MarketLike
    calendar: MarketCalendar
    faults: FaultInjector
    wall: Callable[[], float]
    sessions: dict[int, Session]
    accounts: dict[str, Account]
    positions: dict[tuple[str, int], PositionRow]
    orders: list[ReceivedOrder]
    _working: dict[tuple[int, int], ReceivedOrder]
    _max_order_id: dict[int, int]
    _orders_by_key: dict[tuple[int, int], ReceivedOrder]
    executions: list[Execution]
    rate_violations: dict[int, int]
    _next_perm_id: int
    _exec_prefix: str
    _exec_seq: int
    _expiry_closes: dict[str, datetime]
    settlements: list[expiry.Settlement]
    _hist_log: deque[tuple[float, tuple[Any, ...], int, int]]
    _last_tick: float
    _last_portfolio: float
    _closed_clients: dict[int, dict[int, int]]

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

    def broadcast_error(self, code: int, text: str) -> list[Action]:
        return [Send(s.conn_id, codec.enc_error(-1, code, text)) for s in self.ready_sessions()]

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

    def _send_to_client(self, client_id: int, fields: Fields) -> list[Action]:
        return [Send(s.conn_id, fields) for s in self._client_sessions(client_id)]
