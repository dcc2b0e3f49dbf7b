"""Every server version the simulator speaks, checked against each client's own code.

ib_async 2.1.0 and IB's ibapi 10.50.2 negotiate 178, ib_insync 0.9.86 at most 176. Requests
are produced by each client's real encoder at each version and decoded by the simulator;
server messages are fed to each client's real decoder at that version. Then the whole flow
runs over a socket with each client (see ``client_flows``). Tests that build an ib_insync
Client are async: its constructor wants a current event loop.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable
from typing import Any

import ib_async
import ib_insync
import pytest

from ibkr_trader.sim import SimConfig, SimulatedGateway, codec
from ibkr_trader.sim.clock import nyse_holidays_and_weekends
from ibkr_trader.sim.codec import ContractFields

from . import client_flows
from .test_codec import SPY, SPY_CALL, _Capture, _Recorder

VERSIONS = (176, 177, 178)
CLIENT_VERSIONS = {"ib_async": VERSIONS, "ib_insync": (176,), "ibapi": VERSIONS}


# --------------------------------------------------------------------------- the table


def test_the_table_holds_the_fields_that_change_between_176_and_178() -> None:
    assert codec.MIN_SERVER_VERSION == 176 and codec.SERVER_VERSION == 178
    present = {
        key: [v for v in VERSIONS if codec.has_field(key, v)] for key in codec.VERSIONED_FIELDS
    }
    assert present == {
        "placeOrder.faProfile": [176],
        "openOrder.faProfile": [176],
        "completedOrder.faProfile": [176],
        "execDetails.pendingPriceRevision": [178],
    }
    with pytest.raises(KeyError):
        codec.has_field("openOrder.noSuchField", 178)


def test_negotiation_takes_the_clients_maximum_within_ours() -> None:
    assert codec.negotiate_version(codec.Handshake(157, 176)) == 176  # ib_insync
    assert codec.negotiate_version(codec.Handshake(157, 178)) == 178  # ib_async
    assert codec.negotiate_version(codec.Handshake(100, 226)) == 178  # ibapi 10.50
    assert codec.negotiate_version(codec.Handshake(157, 175)) is None
    assert codec.negotiate_version(codec.Handshake(179, 190)) is None


async def test_a_client_below_the_minimum_gets_ibs_error_and_is_closed() -> None:
    async with SimulatedGateway(SimConfig()) as gw:
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        text = b"v100..175"
        writer.write(b"API\0" + struct.pack(">I", len(text)) + text)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 5)  # until the gateway closes
        writer.close()
    fields = codec.split_frames(bytearray(data))
    assert fields == [["4", "2", "-1", "506", codec.UNSUPPORTED_VERSION[1], ""]]


# --------------------------------------------------------------------------- requests


def _ib_async_wire(version: int, call: Callable[[Any], None]) -> list[list[str]]:
    client = ib_async.client.Client(wrapper=_Recorder())
    return _capture(client, version, call)


def _ib_insync_wire(version: int, call: Callable[[Any], None]) -> list[list[str]]:
    client = ib_insync.client.Client(wrapper=_Recorder())
    return _capture(client, version, call)


def _capture(client: Any, version: int, call: Callable[[Any], None]) -> list[list[str]]:
    capture = _Capture()
    client.conn = capture
    client.connState = client.CONNECTED
    client._serverVersion = version
    client.MaxRequests = 0
    call(client)
    return codec.split_frames(bytearray(b"".join(capture.sent)))


def _ibapi_wire(version: int, call: Callable[[Any], None]) -> list[list[str]]:
    from ibapi.client import EClient

    class Conn(_Capture):
        def isConnected(self) -> bool:
            return True

    client = EClient(wrapper=None)
    capture = Conn()
    client.conn = capture
    client.connState = EClient.CONNECTED
    client.serverVersion_ = version
    call(client)
    return codec.split_frames(bytearray(b"".join(capture.sent)))


def _ibapi_contract(c: ContractFields) -> Any:
    from ibapi.contract import Contract

    k = Contract()
    k.conId, k.symbol, k.secType = c.con_id, c.symbol, c.sec_type
    k.lastTradeDateOrContractMonth, k.strike, k.right = c.expiry, c.strike, c.right
    k.multiplier, k.exchange, k.currency = c.multiplier, c.exchange, c.currency
    k.localSymbol, k.tradingClass = c.local_symbol, c.trading_class
    return k


def _ibapi_order(action: str, qty: float, kind: str, lmt: float | None, ref: str) -> Any:
    from ibapi.order import Order

    o = Order()
    o.action, o.totalQuantity, o.orderType, o.orderRef = action, qty, kind, ref
    o.eTradeOnly = o.firmQuoteOnly = False
    o.tif = "DAY"
    if lmt is not None:
        o.lmtPrice = lmt
    return o


def _async_contract(lib: Any, c: ContractFields) -> Any:
    return lib.Contract(
        conId=c.con_id,
        symbol=c.symbol,
        secType=c.sec_type,
        lastTradeDateOrContractMonth=c.expiry,
        strike=c.strike,
        right=c.right,
        multiplier=c.multiplier,
        exchange=c.exchange,
        currency=c.currency,
        localSymbol=c.local_symbol,
        tradingClass=c.trading_class,
    )


def _place_orders(client_name: str, version: int) -> list[list[str]]:
    """A MKT and a LMT order (with orderRef) as this client writes them at ``version``."""
    if client_name == "ibapi":

        def ibapi_calls(c: Any) -> None:
            c.placeOrder(7, _ibapi_contract(SPY_CALL), _ibapi_order("BUY", 2, "MKT", None, "r-1"))
            c.placeOrder(8, _ibapi_contract(SPY), _ibapi_order("SELL", 5, "LMT", 601.25, "r-2"))

        return _ibapi_wire(version, ibapi_calls)
    lib: Any = ib_async if client_name == "ib_async" else ib_insync

    def calls(c: Any) -> None:
        c.placeOrder(7, _async_contract(lib, SPY_CALL), lib.MarketOrder("BUY", 2, orderRef="r-1"))
        c.placeOrder(
            8,
            _async_contract(lib, SPY),
            lib.LimitOrder("SELL", 5, 601.25, orderRef="r-2", tif="DAY"),
        )

    wire = _ib_async_wire if client_name == "ib_async" else _ib_insync_wire
    return wire(version, calls)


@pytest.mark.parametrize(
    ("client_name", "version"),
    [(name, v) for name, versions in CLIENT_VERSIONS.items() for v in versions],
)
async def test_place_order_from_each_client_decodes_at_its_version(
    client_name: str, version: int
) -> None:
    mkt, lmt = (codec.decode_request(f, version) for f in _place_orders(client_name, version))
    assert isinstance(mkt, codec.PlaceOrder) and isinstance(lmt, codec.PlaceOrder)
    assert (mkt.order_id, mkt.contract.con_id, mkt.contract.right) == (7, SPY_CALL.con_id, "C")
    o = mkt.order
    assert (o.action, o.total_quantity, o.order_type, o.lmt_price, o.order_ref) == (
        "BUY",
        2.0,
        "MKT",
        None,
        "r-1",
    )
    # the fields after faProfile: a one-field slip reads algoStrategy "0" (the old 321)
    assert (o.algo_strategy, o.conditions, o.what_if) == ("", 0, False)
    o = lmt.order
    assert (o.action, o.total_quantity, o.order_type, o.lmt_price, o.tif, o.order_ref) == (
        "SELL",
        5.0,
        "LMT",
        601.25,
        "DAY",
        "r-2",
    )
    assert o.algo_strategy == ""


async def test_reading_a_176_order_at_178_would_slip_one_field() -> None:
    """The table matters: ib_insync's order read in the 178 layout is the issue's 321."""
    [mkt, _] = _place_orders("ib_insync", 176)
    slipped = codec.decode_request(mkt, 178)
    assert isinstance(slipped, codec.PlaceOrder)
    assert slipped.order.algo_strategy != "" or slipped.order.conditions != 0


# --------------------------------------------------------------------------- server messages


def _order(status: str = "Filled") -> codec.OrderWire:
    return codec.OrderWire(
        order_id=7,
        client_id=3,
        perm_id=1_000_000_001,
        contract=SPY_CALL,
        action="BUY",
        total_quantity=2.0,
        order_type="LMT",
        lmt_price=2.35,
        aux_price=None,
        tif="DAY",
        account="DU1234567",
        order_ref="bot-42",
        status=status,
        filled=2.0,
        remaining=0.0,
        avg_fill_price=2.3,
        commission=1.3,
        completed_time="20261124 10:00:00 US/Eastern",
        completed_status="Filled Size: 2",
    )


def _execution() -> codec.ExecutionWire:
    return codec.ExecutionWire(
        req_id=-1,
        order_id=7,
        client_id=3,
        perm_id=1_000_000_001,
        contract=SPY_CALL,
        exec_id="0000e0d5.00000001.01.01",
        time="20261124 10:00:00 US/Eastern",
        account="DU1234567",
        exchange="SMART",
        side="BOT",
        shares=2.0,
        price=2.3,
        cum_qty=2.0,
        avg_price=2.3,
        order_ref="bot-42",
    )


def _messages(version: int) -> dict[str, codec.Fields]:
    return {
        "openOrder": codec.enc_open_order(_order(), version),
        "completedOrder": codec.enc_completed_order(_order(), version),
        "execDetails": codec.enc_exec_details(_execution(), version),
        "tickOptionComputation": codec.enc_tick_option_computation(
            4, 13, 0.2, 0.51, 2.3, 0.0, 0.04, 0.3, -0.2, 606.5
        ),
    }


FIELD_COUNTS = {  # at 176 / 177 / 178, for a plain order
    "openOrder": (128, 127, 127),
    "completedOrder": (97, 96, 96),
    "execDetails": (31, 31, 32),
    "tickOptionComputation": (12, 12, 12),
}


@pytest.mark.parametrize("version", VERSIONS)
def test_field_counts_per_version(version: int) -> None:
    i = VERSIONS.index(version)
    counts = {name: len(f) for name, f in _messages(version).items()}
    assert counts == {name: c[i] for name, c in FIELD_COUNTS.items()}


def _decode_insync_style(lib: Any, fields: codec.Fields, version: int) -> list[Any]:
    data = codec.frame(fields)
    parts = data[4:].decode().split("\0")
    parts.pop()
    wrapper = _Recorder()
    decoder = lib.decoder.Decoder(wrapper, version)
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.ERROR)
    logging.getLogger(lib.__name__).addHandler(handler)
    try:
        decoder.interpret(parts)
    finally:
        logging.getLogger(lib.__name__).removeHandler(handler)
    assert [r.getMessage() for r in records] == []
    return wrapper.calls


@pytest.mark.parametrize(
    ("client_name", "version"),
    [("ib_async", v) for v in VERSIONS] + [("ib_insync", 176)],
)
async def test_order_and_fill_messages_decode_in_ib_async_and_ib_insync(
    client_name: str, version: int
) -> None:
    lib = ib_async if client_name == "ib_async" else ib_insync
    msgs = _messages(version)
    [(name, (order_id, contract, order, state))] = _decode_insync_style(
        lib, msgs["openOrder"], version
    )
    assert (name, order_id, contract.conId) == ("openOrder", 7, SPY_CALL.con_id)
    assert (order.permId, order.orderRef, order.faProfile if version < 177 else "") == (
        1_000_000_001,
        "bot-42",
        "",
    )
    assert (state.status, state.commission) == ("Filled", 1.3)
    [(name, (contract, order, state))] = _decode_insync_style(lib, msgs["completedOrder"], version)
    assert (name, state.status, order.filledQuantity) == ("completedOrder", "Filled", 2.0)
    assert state.completedStatus == "Filled Size: 2"
    [(name, (_req_id, contract, execution))] = _decode_insync_style(
        lib, msgs["execDetails"], version
    )
    assert (name, execution.execId, execution.shares, execution.lastLiquidity) == (
        "execDetails",
        "0000e0d5.00000001.01.01",
        2.0,
        2,
    )
    [(name, args)] = _decode_insync_style(lib, msgs["tickOptionComputation"], version)
    assert name == "tickOptionComputation"
    assert args[:3] == (4, 13, 0)
    assert args[3:] == (0.2, 0.51, 2.3, 0.0, 0.04, 0.3, -0.2, 606.5)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_field_is_consumed_by_ibapis_decoder(version: int) -> None:
    """ibapi reads with an iterator: after each message it must be exhausted exactly."""
    from ibapi.decoder import Decoder

    for name, fields in _messages(version).items():
        wrapper = _Recorder()
        decoder = Decoder(wrapper, version)
        info = decoder.msgId2handleInfo[int(str(fields[0]))]
        raw = [codec.fmt(f).encode() for f in fields[1:]]
        if info.processMeth is not None:
            it = iter(raw)
            info.processMeth(decoder, it)
            assert next(it, None) is None, f"{name}: fields left over at {version}"
        else:
            decoder.interpret(tuple(raw), int(str(fields[0])))
        assert [call for call, _ in wrapper.calls] == [name], name


# --------------------------------------------------------------------------- whole flows


FLOWS: dict[str, Callable[[int, int], client_flows.FlowResult]] = {
    "ib_async": lambda port, cid: client_flows.insync_flow(ib_async, port, cid),
    "ib_insync": lambda port, cid: client_flows.insync_flow(ib_insync, port, cid),
    "ibapi": client_flows.ibapi_flow,
}
EXPECTED_VERSION = {"ib_async": 178, "ib_insync": 176, "ibapi": 178}
NOTICES = {2104, 2106, 2158}


@pytest.mark.parametrize("client_name", list(FLOWS))
async def test_the_whole_flow_with_each_client(client_name: str) -> None:
    nyse_holidays_and_weekends()  # built once per process (seconds): not inside the flow
    config = SimConfig(tick_interval=0.05, portfolio_interval=0.5)
    async with SimulatedGateway(config) as gw:
        r = await asyncio.to_thread(FLOWS[client_name], gw.port, 21)
        await asyncio.sleep(0.05)
        [wire] = gw.wire_log(21)
    c = r.checks
    assert r.server_version == wire.version == EXPECTED_VERSION[client_name]
    # nothing dropped: every message sent reached the client's decoder, none failed there
    assert r.received == wire.messages
    assert [line for line in r.log if "202" not in line] == []
    assert {code for _, code, _ in r.errors} <= NOTICES | {202}
    assert [rid for rid, code, _ in r.errors if code == 202] == [c["resting_id"]]
    # the flow's results
    assert c["stock_con_id"] == 756733
    assert c["chain"][0] > 0 and c["chain"][1] > 0 and c["chain"][2] == "100"
    con_id, multiplier, local_symbol = c["option"]
    assert multiplier == "100" and local_symbol.startswith("SPY ")
    bid, ask = c["option_quote"]
    assert 0 < bid <= ask
    delta, vol, und = c["greeks"]
    assert 0.05 < delta < 0.95 and 0.05 < vol < 1.0 and und > 100
    assert c["bid_greeks"]
    assert c["bars"] == 60
    assert c["mkt"][:2] == ("Filled", 1.0)
    assert c["open_orders"] == [c["resting_id"]] and c["lmt"] == "Cancelled"
    assert [p[:2] for p in c["positions"]] == [(con_id, 1.0)]
    assert c["portfolio"] == [(con_id, 1.0)]
    assert c["summary_tags"] >= 3 and c["net_liq"] > 900_000
    assert c["account_values"] > 20
    assert c["completed"] == [("Cancelled", True), ("Filled", True)]
    assert c["executions"] == [("BOT", 1.0, con_id)]
    # the shapes that depend on the version
    shapes = dict(wire.shapes)
    version = wire.version
    i = VERSIONS.index(version)
    for msg_id, name in ((5, "openOrder"), (101, "completedOrder"), (11, "execDetails")):
        assert any(mid == msg_id and n == FIELD_COUNTS[name][i] for mid, n in shapes)
        assert all(n == FIELD_COUNTS[name][i] for mid, n in shapes if mid == msg_id)
    assert any(mid == 21 for mid, _ in shapes)


async def test_orders_fill_through_the_slipping_field_no_more() -> None:
    """Guard: an ib_insync MKT order is accepted (no 321) by the gateway state at 176."""
    from ibkr_trader.sim.clock import MarketCalendar, SimClock
    from ibkr_trader.sim.contracts import ContractCatalog
    from ibkr_trader.sim.faults import FaultInjector
    from ibkr_trader.sim.market import MarketModel
    from ibkr_trader.sim.state import GatewayState, Send

    clock = SimClock(None)
    calendar = MarketCalendar(False)
    catalog = ContractCatalog(clock, calendar)
    state = GatewayState(
        SimConfig(),
        clock=clock,
        catalog=catalog,
        market=MarketModel(catalog, clock, calendar, 7),
        calendar=calendar,
        faults=FaultInjector(),
    )
    state.set_version(1, 176)
    state.handle(1, ["71", "2", "1", ""])

    def place(c: Any) -> None:
        c.placeOrder(5, _async_contract(ib_insync, SPY), ib_insync.MarketOrder("BUY", 3))

    [fields] = _ib_insync_wire(176, place)
    out = state.handle(1, fields)
    codes = [a.fields[3] for a in out if isinstance(a, Send) and a.fields[0] == 4]
    assert codes == []
    assert state.received_orders[-1].status == "Filled"
    opens = [a.fields for a in out if isinstance(a, Send) and a.fields[0] == 5]
    assert opens and all(len(f) == 128 for f in opens)
