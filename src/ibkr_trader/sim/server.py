"""The thin asyncio shell of the simulated gateway: it only moves bytes.

One :class:`_Connection` per client socket feeds bytes to the sans-IO codec and state and
writes back what they return; a poll task lets time pass (fills, streaming ticks, portfolio
updates). Every task is owned and cancelled on close; close is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections import Counter
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any

from ibkr_trader.sim import codec
from ibkr_trader.sim.clock import MarketCalendar, SimClock, nyse_holidays_and_weekends
from ibkr_trader.sim.contracts import ContractCatalog, ContractInfo
from ibkr_trader.sim.faults import FaultInjector, warning_text
from ibkr_trader.sim.market import MarketModel
from ibkr_trader.sim.state import Action, Close, GatewayState, ReceivedOrder, Send, SimConfig

log = logging.getLogger("ibkr_trader.sim")

CONNECTIVITY_TEXT = {
    1100: "Connectivity between IB and Trader Workstation has been lost.",
    1101: "Connectivity between IB and Trader Workstation has been restored - data lost.",
    1102: "Connectivity between IB and Trader Workstation has been restored - data maintained.",
}

# placeOrder, cancelOrder, reqOpenOrders, reqExecutions, reqAutoOpenOrders, reqAllOpenOrders,
# reqGlobalCancel, reqCompletedOrders: one connection's are handled in the order sent, also
# when a fault delays one of them (a slow gateway holds what comes after it)
ORDER_CHANNEL = frozenset({3, 4, 5, 7, 15, 16, 58, 99})


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class WireLog:
    """What one connection was sent: (message id, field count) -> messages, at its version."""

    conn_id: int
    version: int = 0
    client_id: int | None = None
    shapes: Counter[tuple[int, int]] = field(default_factory=Counter)

    @property
    def messages(self) -> int:
        return sum(self.shapes.values())


class _Connection:
    def __init__(
        self,
        gateway: SimulatedGateway,
        conn_id: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.gateway = gateway
        self.conn_id = conn_id
        self.reader = reader
        self.writer = writer
        self.protocol = codec.ServerProtocol()
        self.closed = False
        self.tasks: set[asyncio.Task[None]] = set()
        # order-channel messages held behind a delayed one (TWS handles them in order)
        self.order_queue: list[tuple[float, tuple[str, ...]]] = []

    def write(self, data: bytes) -> None:
        if not self.closed and not self.writer.is_closing():
            self.writer.write(data)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        with contextlib.suppress(Exception):
            self.writer.close()

    async def run(self) -> None:
        gw = self.gateway
        try:
            while not self.closed:
                data = await self.reader.read(65536)
                if not data:
                    break
                try:
                    events = self.protocol.receive_data(data)
                except codec.FramingError as exc:
                    log.info("sim: closing connection %d: %s", self.conn_id, exc)
                    break
                for event in events:
                    if self.closed:
                        break
                    if isinstance(event, codec.Handshake):
                        self._handshake(event)
                    else:
                        self._message(event)
        except (ConnectionError, OSError):
            pass
        finally:
            self.close()
            gw._forget(self)

    def _handshake(self, event: codec.Handshake) -> None:
        gw = self.gateway
        version = codec.negotiate_version(event)
        if gw.faults.refuse:
            self.close()
            return
        if version is None:
            log.info(
                "sim: refusing client %d: API versions %d..%d, we speak %d..%d",
                self.conn_id,
                event.min_version,
                event.max_version,
                codec.MIN_SERVER_VERSION,
                codec.SERVER_VERSION,
            )
            self.write(codec.unsupported_version_reply())
            self.close()
            return
        gw.state.set_version(self.conn_id, version)
        gw.wire_logs[self.conn_id].version = version
        self.write(codec.ServerProtocol.handshake_reply(gw.clock.now(), version))

    def _message(self, event: codec.Message) -> None:
        gw = self.gateway
        faults = gw.faults
        msg_id = event.msg_id
        gw._requests[(self.conn_id, msg_id)] += 1
        if faults.count_message():
            gw._close_all()
            return
        if msg_id in faults.drop_on_ids:
            self.close()
            return
        delay = faults.delays.get(msg_id) or 0.0
        in_order = msg_id in ORDER_CHANNEL
        if in_order and self.order_queue:
            # an order message never overtakes an earlier one that is still delayed: TWS
            # handles a connection's orders, cancels and order listings in the order sent
            self.order_queue.append((delay, event.fields))
            return
        if delay:
            if in_order:
                self.order_queue.append((delay, event.fields))
                self._spawn(self._drain_orders())
            else:
                self._spawn(self._delayed(delay, event.fields))
            return
        gw._dispatch(gw.state.handle(self.conn_id, event.fields))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _delayed(self, delay: float, fields: tuple[str, ...]) -> None:
        await asyncio.sleep(delay)
        if not self.closed:
            gw = self.gateway
            gw._dispatch(gw.state.handle(self.conn_id, fields))

    async def _drain_orders(self) -> None:
        """Handle the held order messages in the order they came, each after its delay."""
        gw = self.gateway
        while self.order_queue and not self.closed:
            delay, fields = self.order_queue[0]
            if delay:
                await asyncio.sleep(delay)
            if self.closed:
                return
            self.order_queue.pop(0)
            gw._dispatch(gw.state.handle(self.conn_id, fields))


class SimulatedGateway:
    """A TCP server that speaks the TWS API (server versions 176..178, the client's choice)
    to unmodified ib_async, ib_insync and IB's own ibapi.

    ``async with SimulatedGateway(SimConfig()) as gw:`` listens on ``gw.host``/``gw.port``.
    The state (accounts, orders, positions) outlives client connections and :meth:`restart`.
    """

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        if not is_loopback(self.config.host) and not self.config.allow_non_loopback:
            raise ValueError(
                f"refusing to bind {self.config.host}: not a loopback address "
                "(set allow_non_loopback to override)"
            )
        self.clock = SimClock(self.config.start, speed=self.config.speed)
        self.calendar = MarketCalendar(self.config.calendar)
        self.catalog = ContractCatalog(self.clock, self.calendar)
        self.market = MarketModel(self.catalog, self.clock, self.calendar, self.config.seed)
        self.faults = FaultInjector()
        self.state = GatewayState(
            self.config,
            clock=self.clock,
            catalog=self.catalog,
            market=self.market,
            calendar=self.calendar,
            faults=self.faults,
        )
        self._server: asyncio.Server | None = None
        self._connections: dict[int, _Connection] = {}
        self._conn_tasks: set[asyncio.Task[None]] = set()
        self._poll_task: asyncio.Task[None] | None = None
        self._next_conn_id = 1
        self.wire_logs: dict[int, WireLog] = {}
        self._requests: Counter[tuple[int, int]] = Counter()  # (conn id, message id) -> count
        self._port = self.config.port
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None:
            return
        self._closed = False
        # the NYSE table (option expiries in every mode) takes seconds to build the first time
        # in a process: off the event loop, before a client's request can wait on it
        await asyncio.to_thread(nyse_holidays_and_weekends)
        await self._listen()
        self._poll_task = asyncio.get_running_loop().create_task(self._poll_loop())

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._on_client, self.config.host, self._port, reuse_address=True
        )
        sock = self._server.sockets[0]
        self._port = int(sock.getsockname()[1])

    async def close(self) -> None:
        """Stop listening, drop every connection, stop the poll task. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._poll_task is not None:
            self._poll_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll_task
            self._poll_task = None
        await self._stop_listening()
        self._close_all()
        await self._drain_connection_tasks()

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _drain_connection_tasks(self) -> None:
        tasks = list(self._conn_tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)

    async def __aenter__(self) -> SimulatedGateway:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def serve_forever(self) -> None:
        """Run until cancelled (the ``ibkr-trader sim`` command)."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    # -- connections -------------------------------------------------------------------------

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn_id = self._next_conn_id
        self._next_conn_id += 1
        conn = _Connection(self, conn_id, reader, writer)
        self._connections[conn_id] = conn
        self.wire_logs[conn_id] = WireLog(conn_id)
        if len(self.wire_logs) > 1000:  # keep the last connections only
            del self.wire_logs[min(self.wire_logs)]
        self.state.open_session(conn_id)
        task = asyncio.current_task()
        if task is not None:
            self._conn_tasks.add(task)
            task.add_done_callback(self._conn_tasks.discard)
        await conn.run()

    def _forget(self, conn: _Connection) -> None:
        self._connections.pop(conn.conn_id, None)
        self.state.close_session(conn.conn_id)

    def _close_all(self) -> None:
        for conn in list(self._connections.values()):
            conn.close()
            self._forget(conn)

    def _dispatch(self, actions: Iterable[Action]) -> None:
        pending: dict[int, list[bytes]] = {}
        closes: list[int] = []
        for action in actions:
            if isinstance(action, Send):
                pending.setdefault(action.conn_id, []).append(codec.frame(action.fields))
                self._log_sent(action)
            elif isinstance(action, Close):
                closes.append(action.conn_id)
        for conn_id, frames in pending.items():
            conn = self._connections.get(conn_id)
            if conn is not None:
                conn.write(b"".join(frames))
        for conn_id in closes:
            conn = self._connections.get(conn_id)
            if conn is not None:
                conn.close()
                self._forget(conn)

    def _log_sent(self, action: Send) -> None:
        wire = self.wire_logs.get(action.conn_id)
        if wire is None or action.conn_id not in self._connections:
            return
        if wire.client_id is None:
            session = self.state.sessions.get(action.conn_id)
            wire.client_id = session.client_id if session is not None else None
        wire.shapes[(int(str(action.fields[0])), len(action.fields))] += 1

    def wire_log(self, client_id: int) -> list[WireLog]:
        """Every (recent) connection of this client id: version and messages sent to it."""
        return [w for w in self.wire_logs.values() if w.client_id == client_id]

    async def _poll_loop(self) -> None:
        interval = self.config.poll_interval
        while True:
            await asyncio.sleep(interval)
            try:
                self._dispatch(self.state.poll())
            except Exception:  # a bug in the state must not stop the gateway
                log.exception("sim: poll failed")

    # -- the public surface (docs/dev/interfaces.md) -----------------------------------------

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def port(self) -> int:
        return self._port

    @property
    def accounts(self) -> tuple[str, ...]:
        return self.config.accounts

    @property
    def received_orders(self) -> list[ReceivedOrder]:
        return self.state.received_orders

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def standing_subscriptions(self) -> int:
        return self.state.standing_subscriptions()

    def max_messages_per_second(self, client_id: int | None = None) -> int:
        return self.state.max_messages_per_second(client_id)

    def requests_received(self, client_id: int) -> Counter[int]:
        """How many of each client message (by message id: 3 placeOrder, 16 reqAllOpenOrders,
        61 reqPositions, ...) this client id's connections sent so far."""
        conns = {
            cid for cid, session in self.state.sessions.items() if session.client_id == client_id
        }
        out: Counter[int] = Counter()
        for (conn_id, msg_id), n in self._requests.items():
            if conn_id in conns:
                out[msg_id] += n
        return out

    def message_counts(self, client_id: int) -> dict[int, int]:
        return self.state.message_counts(client_id)

    def rate_violations(self, client_id: int) -> int:
        return self.state.rate_violations.get(client_id, 0)

    def seed_position(
        self, account: str, symbol: str, quantity: float, avg_cost: float, **contract: Any
    ) -> ContractInfo:
        return self.state.seed_position(account, symbol, quantity, avg_cost, **contract)

    def warn_order(
        self, order_id: int, code: int, text: str | None = None, client_id: int = 1
    ) -> None:
        """Send an order-level warning (10349, 399, 404, 2109, ...) for a live order now;
        the order keeps working. See also ``faults.warn_orders`` for every new order."""
        order = self.state.order(client_id, order_id)
        if order is None:
            raise KeyError(f"no order {order_id} of client {client_id}")
        self._dispatch(self.state.order_warning(order, code, text or warning_text(code)))

    def now(self) -> datetime:
        return self.clock.now()

    async def restart(self, down_for: float = 0.0) -> None:
        """A gateway restart: every connection dropped, all state kept, same port."""
        await self._stop_listening()
        self._close_all()
        if down_for > 0:
            await asyncio.sleep(down_for)
        if not self._closed:
            await self._listen()

    async def broadcast_error(self, code: int, text: str | None = None) -> None:
        """Send an error/notice with reqId -1 to every connected client (e.g. 1100/1101/1102)."""
        message = text if text is not None else CONNECTIVITY_TEXT.get(code, "")
        self._dispatch(self.state.broadcast_error(code, message))
