"""IBKRConnection against the simulated gateway over loopback."""

from __future__ import annotations

import asyncio
import socket

import pytest

from ibkr_trader.broker.connection import ConnectionState, IBKRConnection
from ibkr_trader.broker.exceptions import (
    BrokerTimeoutError,
    GatewayAuthenticationError,
    GatewayConnectionError,
    GatewayDisconnectedError,
    GatewayNotConnectedError,
)
from ibkr_trader.broker.pacing import PRIORITY_DATA, MessageBudget
from ibkr_trader.sim import SimulatedGateway

pytestmark = pytest.mark.timeout(30)

MSG_REQ_CURRENT_TIME = 49
MSG_REQ_POSITIONS = 61


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connect_reports_accounts_server_time_and_health(conn: IBKRConnection) -> None:
    assert conn.is_connected
    assert conn.managed_accounts == ["DU1234567"]
    assert conn.server_version == 178
    server_now = await conn.server_time(2.0)
    assert server_now.tzinfo is not None
    health = await conn.health_check(2.0)
    assert health.connected and health.market_data_available
    assert health.farms.get("market:usfarm") == "ok"


async def test_gateway_not_running_raises_connection_error_that_says_what_to_check() -> None:
    port = _closed_port()
    connection = IBKRConnection("127.0.0.1", port, client_id=1, reconnect=False)
    with pytest.raises(GatewayConnectionError) as info:
        await connection.connect(2.0)
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message
    assert "IB Gateway or TWS running" in message
    assert "API" in message and "port" in message
    assert not isinstance(info.value, GatewayAuthenticationError)


async def test_handshake_refused_is_an_authentication_error(gateway: SimulatedGateway) -> None:
    gateway.faults.refuse_handshake()
    connection = IBKRConnection(gateway.host, gateway.port, client_id=2, reconnect=False)
    with pytest.raises(GatewayAuthenticationError):
        await connection.connect(5.0)
    assert not connection.is_connected


async def test_client_id_in_use_is_an_authentication_error(
    gateway: SimulatedGateway, conn: IBKRConnection
) -> None:
    twin = IBKRConnection(gateway.host, gateway.port, client_id=conn.client_id, reconnect=False)
    with pytest.raises(GatewayAuthenticationError) as info:
        await twin.connect(5.0)
    assert "client id" in str(info.value)
    assert conn.is_connected  # the first session is untouched


async def test_slow_answer_raises_the_timeout_error_instead_of_hanging(
    gateway: SimulatedGateway, conn: IBKRConnection
) -> None:
    gateway.faults.delay(MSG_REQ_CURRENT_TIME, 3.0)
    with pytest.raises(TimeoutError) as info:
        await conn.server_time(0.3)
    assert isinstance(info.value, BrokerTimeoutError)
    assert "currentTime" not in conn.wrapper._futures  # the abandoned request is forgotten
    gateway.faults.delay(MSG_REQ_CURRENT_TIME, 0)
    assert (await conn.server_time(2.0)).tzinfo is not None


async def test_every_call_refuses_a_non_positive_timeout(conn: IBKRConnection) -> None:
    with pytest.raises(ValueError):
        await conn.server_time(0)


async def test_call_while_not_connected_is_a_typed_error() -> None:
    connection = IBKRConnection("127.0.0.1", _closed_port(), client_id=3, reconnect=False)
    with pytest.raises(GatewayNotConnectedError):
        await connection.get_positions(1.0)


async def test_disconnect_mid_request_fails_the_call_then_reconnects(
    gateway: SimulatedGateway, conn: IBKRConnection
) -> None:
    states: list[ConnectionState] = []
    conn.subscribe(states.append)
    restored = asyncio.Event()
    conn.subscribe(lambda s: restored.set() if s is ConnectionState.RESTORED else None)
    gateway.faults.drop_on(MSG_REQ_POSITIONS)
    with pytest.raises(GatewayDisconnectedError):
        await conn.get_positions(5.0)
    gateway.faults.clear()
    await asyncio.wait_for(restored.wait(), 10.0)
    assert states[0] is ConnectionState.DISCONNECTED
    assert ConnectionState.RECONNECTING in states
    assert states[-1] is ConnectionState.RESTORED
    assert conn.is_connected
    assert await conn.get_positions(2.0) == []


async def test_gateway_restart_publishes_reconnecting_then_restored(
    gateway: SimulatedGateway, conn: IBKRConnection
) -> None:
    states: list[ConnectionState] = []
    restored = asyncio.Event()
    conn.subscribe(states.append)
    conn.subscribe(lambda s: restored.set() if s is ConnectionState.RESTORED else None)
    await gateway.restart(down_for=0.3)
    await asyncio.wait_for(restored.wait(), 10.0)
    assert states[0] is ConnectionState.DISCONNECTED
    assert states[-1] is ConnectionState.RESTORED
    assert conn.reconnect_attempts >= 1


async def test_intentional_disconnect_does_not_reconnect(conn: IBKRConnection) -> None:
    states: list[ConnectionState] = []
    conn.subscribe(states.append)
    await conn.disconnect()
    await asyncio.sleep(0.3)
    assert states == [ConnectionState.DISCONNECTED]
    assert not conn.is_connected


async def test_ib_link_loss_and_restore_are_published_and_seen_by_health(
    gateway: SimulatedGateway, conn: IBKRConnection
) -> None:
    states: list[ConnectionState] = []
    conn.subscribe(states.append)
    await gateway.broadcast_error(1100)
    await conn.server_time(2.0)  # one round trip: the notice has been processed
    assert not (await conn.health_check(2.0)).market_data_available
    await gateway.broadcast_error(1102)
    await conn.server_time(2.0)
    assert (await conn.health_check(2.0)).market_data_available
    assert states == [ConnectionState.DISCONNECTED, ConnectionState.RESTORED]


def test_backoff_is_capped_exponential_with_jitter() -> None:
    connection = IBKRConnection(backoff_initial=0.5, backoff_max=4.0)
    delays = [connection.backoff_delay(n) for n in range(1, 10)]
    assert all(d <= 4.0 for d in delays)
    assert 0.25 <= delays[0] <= 0.5
    assert delays[-1] >= 2.0


async def test_connect_timeout_is_bounded(gateway: SimulatedGateway) -> None:
    gateway.faults.delay(71, 5.0)  # startApi answered too late
    connection = IBKRConnection(gateway.host, gateway.port, client_id=4, reconnect=False)
    with pytest.raises(TimeoutError):
        await connection.connect(0.5)
    assert not connection.is_connected


async def test_message_budget_holds_a_burst_under_fifty_per_second(
    gateway: SimulatedGateway,
) -> None:
    """A 120-request burst: every message written to the socket was granted by our budget
    first, and the grants keep 47 in any second and IB's 50 in any 1.08 s.

    The grants are the budget's own decisions, so this holds on a loaded machine too. Where
    the messages then land in time (a process descheduled mid-burst bunches them at the
    socket, and so at the receiver) is a bench figure (bench/bench_pacing.py), not a test."""
    budget = _RecordingBudget()
    connection = IBKRConnection(
        gateway.host, gateway.port, client_id=77, reconnect=False, message_budget=budget
    )
    await connection.connect(5.0)
    wire = connection.ib.client.conn
    written = [0]
    write = wire.sendMsg

    def counted(msg: bytes) -> None:
        written[0] += 1
        write(msg)

    wire.sendMsg = counted
    budget.grants.clear()
    try:
        await asyncio.gather(*(connection.get_executions(10.0) for _ in range(120)))
    finally:
        wire.sendMsg = write
        await connection.disconnect()
    assert written[0] >= 120 and written[0] == len(budget.grants)  # nothing bypassed it
    assert max_in_window(budget.grants, 1.0) <= 47
    assert max_in_window(budget.grants, 1.08) <= 50
    assert len(budget.grants) - max_in_window(budget.grants, 1.0) >= 60  # really spread out
    assert sum(gateway.message_counts(77).values()) >= 120  # and the gateway got them all


class _RecordingBudget(MessageBudget):
    """The budget, noting the instant (its own clock) of every message it lets out."""

    def __init__(self) -> None:
        super().__init__()
        self.grants: list[float] = []

    async def acquire(
        self, count: int = 1, deadline: float | None = None, priority: int = PRIORITY_DATA
    ) -> None:
        await super().acquire(count, deadline, priority)
        self.grants.extend([self._sent[-1]] * count)  # what it just recorded

    def record(self, count: int = 1) -> None:
        super().record(count)
        self.grants.extend([self._sent[-1]] * count)


def max_in_window(times: list[float], window: float) -> int:
    """The most entries of ``times`` (sorted) inside any half-open window of ``window`` s."""
    best = start = 0
    for end, at in enumerate(times):
        while at - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_max_in_window_counts_a_sliding_window() -> None:
    assert max_in_window([], 1.0) == 0
    assert max_in_window([0.0, 0.5, 0.99, 1.0, 1.5], 1.0) == 3
    assert max_in_window([0.0, 1.0, 2.0], 1.0) == 1


async def test_after_1102_the_account_summary_is_refreshed_by_a_task_we_own(
    gateway: SimulatedGateway, conn: IBKRConnection
) -> None:
    assert not conn.ib.wrapper.acctSummary
    await gateway.broadcast_error(1102)
    for _ in range(100):
        if conn.ib.wrapper.acctSummary:
            break
        await asyncio.sleep(0.02)
    assert conn.ib.wrapper.acctSummary  # ib_async's own behaviour, kept


async def test_a_drop_right_after_1102_leaves_no_unretrieved_task_error(
    gateway: SimulatedGateway, conn: IBKRConnection
) -> None:
    import gc

    errors: list[dict[str, object]] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        gateway.faults.drop_on(62)  # the refresh request itself kills the socket
        await gateway.broadcast_error(1102)
        await asyncio.sleep(0.3)
        await conn.disconnect()
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert errors == []


async def test_a_connect_cancelled_mid_handshake_leaves_no_unretrieved_task_error(
    gateway: SimulatedGateway,
) -> None:
    import gc

    errors: list[dict[str, object]] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    gateway.faults.delay(71, 2.0)  # startApi answered late: the handshake is in flight
    connection = IBKRConnection(gateway.host, gateway.port, client_id=9, reconnect=False)
    try:
        attempt = asyncio.ensure_future(connection.connect(5.0))
        await asyncio.sleep(0.2)
        attempt.cancel()
        with pytest.raises(asyncio.CancelledError):
            await attempt
        await connection.disconnect()
        await asyncio.sleep(0.1)
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert errors == []
    assert not connection.is_connected


async def test_no_request_of_ours_overlaps_ib_asyncs_start_up_sync(
    gateway: SimulatedGateway,
) -> None:
    """ib_async's connect asks for this client's open orders under the request key
    "openOrders", the key of our reqAllOpenOrders too. A call of ours while that start-up sync
    runs replaced its future (ours then waited for an answer ib_async had taken, "open orders:
    no answer within 10 s" after a reconnect on a loaded machine). Until the sync is done the
    connection is not connected for us: the call is refused at once, the sync completes."""
    gateway.faults.delay(5, 0.6)  # reqOpenOrders, the start-up sync's: answered late
    connection = IBKRConnection(gateway.host, gateway.port, client_id=78, reconnect=False)
    connecting = asyncio.ensure_future(connection.connect(5.0))
    try:
        for _ in range(200):
            if connection.ib.isConnected():  # the API session is up, the sync is running
                break
            await asyncio.sleep(0.01)
        assert connection.ib.isConnected() and not connecting.done()
        assert not connection.is_connected
        with pytest.raises(GatewayNotConnectedError):
            await connection.get_open_orders(5.0)
        await asyncio.wait_for(connecting, 5.0)  # the sync got its answer
        assert connection.is_connected
        gateway.faults.clear()
        assert await asyncio.wait_for(connection.get_open_orders(5.0), 3.0) == []
    finally:
        await connection.disconnect()
