"""The sans-IO codec in memory: framing, handshake, request decoding, server encoders.

Requests are produced by ib_async's own Client (its real encoder); every server message is
fed to ib_async's own Decoder at server version 178 and must decode without an error.
"""

from __future__ import annotations

import json
import logging
import struct
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ib_async import Contract, LimitOrder, MarketOrder, Option, Stock
from ib_async.client import Client
from ib_async.decoder import Decoder
from ib_async.objects import ExecutionFilter

from ibkr_trader.sim import codec
from ibkr_trader.sim.codec import ContractFields

SHAPES = (
    Path(__file__).resolve().parents[1] / "reference" / "tws_recordings" / "reference_shapes.json"
)

SPY = ContractFields(
    con_id=756733,
    symbol="SPY",
    sec_type="STK",
    exchange="SMART",
    primary_exchange="ARCA",
    currency="USD",
    local_symbol="SPY",
    trading_class="SPY",
)
SPY_CALL = ContractFields(
    con_id=1020645052,
    symbol="SPY",
    sec_type="OPT",
    expiry="20261125",
    strike=606.0,
    right="C",
    multiplier="100",
    exchange="SMART",
    currency="USD",
    local_symbol="SPY   261125C00606000",
    trading_class="SPY",
)


# --------------------------------------------------------------------------- helpers


class _Recorder:
    """A stand-in for ib_async's Wrapper that records every call the Decoder makes."""

    class _IB:
        TimezoneTWS = None

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.ib = self._IB()
        self.defaultTimezone = UTC

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any) -> None:
            self.calls.append((name, args))

        return record


def decode_with_ib_async(
    fields: list[Any], caplog: pytest.LogCaptureFixture
) -> list[tuple[str, tuple[Any, ...]]]:
    """Frame the message, split it as ib_async does, run ib_async's Decoder on it."""
    data = codec.frame(fields)
    (size,) = struct.unpack(">I", data[:4])
    parts = data[4 : 4 + size].decode().split("\0")
    parts.pop()
    wrapper = _Recorder()
    decoder = Decoder(wrapper, 178)  # type: ignore[arg-type]
    with caplog.at_level(logging.DEBUG, logger="ib_async"):
        decoder.interpret(parts)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    return wrapper.calls


class _Capture:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendMsg(self, data: bytes) -> None:
        self.sent.append(data)


def client_messages(call: Any) -> list[list[str]]:
    """What ib_async's Client puts on the wire for ``call(client)``, split into fields."""
    client = Client(wrapper=_Recorder())
    capture = _Capture()
    client.conn = capture
    client.connState = Client.CONNECTED
    client._serverVersion = 178
    client.MaxRequests = 0
    call(client)
    buffer = bytearray(b"".join(capture.sent))
    return codec.split_frames(buffer)


# --------------------------------------------------------------------------- framing


def test_frame_round_trips_through_split_frames() -> None:
    buffer = bytearray(codec.frame([1, 6, 3, 1, 150.25, 100, 0]))
    assert codec.split_frames(buffer) == [["1", "6", "3", "1", "150.25", "100", "0"]]
    assert buffer == bytearray()


def test_fmt_writes_fields_as_ib_does() -> None:
    assert codec.fmt(None) == ""
    assert codec.fmt(True) == "1"
    assert codec.fmt(False) == "0"
    assert codec.fmt(312.5) == "312.5"
    assert codec.fmt(100.0) == "100"
    assert codec.fmt(0.1 + 0.2) == "0.3"
    assert codec.fmt(float("nan")) == ""
    assert codec.fmt(1.7976931348623157e308) == codec.UNSET_DOUBLE_TEXT
    assert codec.fmt(-0.0) == "0"


def test_split_frames_waits_for_a_message_split_across_chunks() -> None:
    data = codec.frame(["49", "1"]) + codec.frame(["61", "1"])
    buffer = bytearray()
    seen: list[list[str]] = []
    for byte in data:
        buffer.append(byte)
        seen += codec.split_frames(buffer)
    assert seen == [["49", "1"], ["61", "1"]]


def test_split_frames_returns_every_message_of_one_write() -> None:
    data = b"".join(codec.frame([msg, 1]) for msg in (61, 5, 99))
    assert codec.split_frames(bytearray(data)) == [["61", "1"], ["5", "1"], ["99", "1"]]


def test_split_frames_refuses_an_absurd_length() -> None:
    with pytest.raises(codec.FramingError):
        codec.split_frames(bytearray(struct.pack(">I", 1 << 30) + b"x"))


# --------------------------------------------------------------------------- handshake


def _hello(text: bytes = b"v157..178") -> bytes:
    return b"API\0" + struct.pack(">I", len(text)) + text


def test_handshake_is_parsed_even_one_byte_at_a_time() -> None:
    proto = codec.ServerProtocol()
    data = _hello() + codec.frame([71, 2, 7, ""])
    events: list[codec.ClientEvent] = []
    for i in range(len(data)):
        events += proto.receive_data(data[i : i + 1])
    assert events == [codec.Handshake(157, 178, ""), codec.Message(("71", "2", "7", ""))]
    assert events[1].msg_id == 71  # type: ignore[union-attr]


def test_handshake_keeps_connect_options() -> None:
    events = codec.ServerProtocol().receive_data(_hello(b"v100..178 +PACEAPI"))
    assert events == [codec.Handshake(100, 178, "+PACEAPI")]


def test_a_client_that_does_not_say_api_is_refused() -> None:
    with pytest.raises(codec.FramingError):
        codec.ServerProtocol().receive_data(b"GET / HTTP/1.1\r\n")


def test_a_bad_version_range_is_refused() -> None:
    with pytest.raises(codec.FramingError):
        codec.ServerProtocol().receive_data(_hello(b"hello"))


def test_the_server_announces_178_at_most_and_refuses_too_old_clients() -> None:
    assert codec.negotiate_version(codec.Handshake(157, 190)) == 178
    assert codec.negotiate_version(codec.Handshake(157, 176)) == 176
    assert codec.negotiate_version(codec.Handshake(100, 150)) is None


def test_handshake_reply_has_two_fields_with_a_zone_name() -> None:
    when = datetime(2025, 1, 2, 15, 4, 5, tzinfo=UTC)
    [fields] = codec.split_frames(bytearray(codec.ServerProtocol.handshake_reply(when)))
    assert fields == ["178", "20250102 10:04:05 EST"]


# --------------------------------------------------------------------------- requests


def test_start_api_from_ib_async_decodes() -> None:
    def call(c: Client) -> None:
        c.clientId = 9
        c.startApi()

    [fields] = client_messages(call)
    assert codec.decode_request(fields) == codec.StartApi(9, "")


def test_place_order_market_from_ib_async_decodes_with_order_ref_and_ext_operator() -> None:
    order = MarketOrder("BUY", 2, account="DU1234567", orderRef="bot-42", extOperator="op-7")
    contract = Option("SPY", "20261125", 606, "C", "SMART", conId=1020645052, currency="USD")
    [fields] = client_messages(lambda c: c.placeOrder(11, contract, order))
    assert len(fields) == 114
    req = codec.decode_request(fields)
    assert isinstance(req, codec.PlaceOrder)
    assert req.order_id == 11
    assert req.contract.con_id == 1020645052
    assert req.contract.right == "C"
    assert req.contract.strike == 606.0
    o = req.order
    assert (o.action, o.total_quantity, o.order_type, o.lmt_price) == ("BUY", 2.0, "MKT", None)
    assert (o.account, o.order_ref, o.ext_operator, o.tif) == ("DU1234567", "bot-42", "op-7", "")
    assert o.transmit is True
    assert req.raw == tuple(fields)


def test_place_order_limit_from_ib_async_decodes_price_and_tif() -> None:
    order = LimitOrder("SELL", 10, 150.25, tif="DAY", outsideRth=True)
    [fields] = client_messages(lambda c: c.placeOrder(12, Stock("AAPL", "SMART", "USD"), order))
    req = codec.decode_request(fields)
    assert isinstance(req, codec.PlaceOrder)
    assert (req.order.lmt_price, req.order.tif, req.order.outside_rth) == (150.25, "DAY", True)
    assert req.order.ext_operator == ""


def test_place_order_with_variable_sections_still_finds_ext_operator() -> None:
    order = LimitOrder("BUY", 1, 10.0, extOperator="me", hedgeType="D", hedgeParam="0.5")
    order.algoStrategy = "Adaptive"
    from ib_async import TagValue

    order.algoParams = [TagValue("adaptivePriority", "Normal")]
    order.deltaNeutralOrderType = "MKT"
    [fields] = client_messages(lambda c: c.placeOrder(13, Stock("AAPL", "SMART", "USD"), order))
    req = codec.decode_request(fields)
    assert isinstance(req, codec.PlaceOrder)
    assert req.order.algo_strategy == "Adaptive"
    assert req.order.ext_operator == "me"


def test_market_data_request_from_ib_async_decodes_snapshot_flag() -> None:
    stk = Stock("SPY", "SMART", "USD", conId=756733)
    [fields] = client_messages(lambda c: c.reqMktData(5, stk, "", True, False, []))
    assert len(fields) == 20
    assert codec.decode_request(fields) == codec.ReqMktData(
        5,
        ContractFields(
            con_id=756733, symbol="SPY", sec_type="STK", exchange="SMART", currency="USD"
        ),
        "",
        True,
        False,
    )


def test_historical_request_from_ib_async_decodes() -> None:
    stk = Stock("SPY", "SMART", "USD", conId=756733)
    end = datetime(2025, 1, 2, 16, 0, tzinfo=UTC)
    [fields] = client_messages(
        lambda c: c.reqHistoricalData(
            8, stk, "20250102 16:00:00 UTC", "3600 S", "1 min", "TRADES", 1, 2, False, []
        )
    )
    assert len(fields) == 23
    req = codec.decode_request(fields)
    assert isinstance(req, codec.ReqHistoricalData)
    assert (req.req_id, req.end, req.duration, req.bar_size) == (
        8,
        "20250102 16:00:00 UTC",
        "3600 S",
        "1 min",
    )
    assert (req.use_rth, req.what_to_show, req.format_date, req.keep_up_to_date) == (
        True,
        "TRADES",
        2,
        False,
    )
    assert end.year == 2025


def test_contract_details_and_executions_and_account_requests_decode() -> None:
    def calls(c: Client) -> None:
        c.reqContractDetails(3, Option("SPY", "20261125", 606, "C", "SMART"))
        c.reqExecutions(4, ExecutionFilter())
        c.reqAccountSummary(6, "All", "NetLiquidation,BuyingPower")
        c.reqAccountUpdatesMulti(7, "DU1234567", "", False)
        c.reqSecDefOptParams(8, "SPY", "", "STK", 756733)
        c.reqCompletedOrders(False)
        c.cancelOrder(12, "")
        c.reqMarketDataType(3)
        c.cancelMktData(5)

    decoded = [codec.decode_request(f) for f in client_messages(calls)]
    details = decoded[0]
    assert isinstance(details, codec.ReqContractDetails)
    assert (details.contract.expiry, details.contract.right, details.contract.strike) == (
        "20261125",
        "C",
        606.0,
    )
    assert decoded[1] == codec.ReqExecutions(4, 0, "", "", "", "", "", "")
    assert decoded[2] == codec.ReqAccountSummary(6, "All", "NetLiquidation,BuyingPower")
    assert decoded[3] == codec.ReqAccountUpdatesMulti(7, "DU1234567", "", False)
    assert decoded[4] == codec.ReqSecDefOptParams(8, "SPY", "", "STK", 756733)
    assert decoded[5] == codec.ReqCompletedOrders(False)
    assert decoded[6] == codec.CancelOrder(12, "")
    assert decoded[7] == codec.ReqMarketDataType(3)
    assert decoded[8] == codec.CancelMktData(5)


def test_unknown_and_malformed_requests() -> None:
    assert codec.decode_request(["999", "x"]) == codec.UnknownRequest(999, ("999", "x"))
    with pytest.raises(codec.RequestDecodeError):
        codec.decode_request(["3", "1"])
    with pytest.raises(codec.RequestDecodeError):
        codec.decode_request(["abc"])
    with pytest.raises(codec.RequestDecodeError):
        codec.decode_request([])


# --------------------------------------------------------------------------- server messages


def _order(status: str = "Submitted", **kw: Any) -> codec.OrderWire:
    base: dict[str, Any] = dict(
        order_id=7,
        client_id=3,
        perm_id=1000000001,
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
        filled=0.0,
        remaining=2.0,
    )
    base.update(kw)
    return codec.OrderWire(**base)


def test_error_message_has_six_fields_and_decodes(caplog: pytest.LogCaptureFixture) -> None:
    fields = codec.enc_error(-1, 2104, "Market data farm connection is OK:usfarm")
    assert len(fields) == 6
    calls = decode_with_ib_async(fields, caplog)
    assert calls == [("error", (-1, 2104, "Market data farm connection is OK:usfarm", ""))]


def test_tick_price_has_seven_fields_and_decodes(caplog: pytest.LogCaptureFixture) -> None:
    fields = codec.enc_tick_price(4, 1, 150.1, 300)
    assert len(fields) == 7
    assert decode_with_ib_async(fields, caplog) == [("priceSizeTick", (4, 1, 150.1, 300.0))]


def test_tick_messages_decode(caplog: pytest.LogCaptureFixture) -> None:
    assert decode_with_ib_async(codec.enc_tick_size(4, 8, 1234), caplog) == [
        ("tickSize", (4, 8, 1234.0))
    ]
    assert decode_with_ib_async(codec.enc_tick_string(4, 45, "1735828200"), caplog) == [
        ("tickString", (4, 45, "1735828200"))
    ]
    assert decode_with_ib_async(codec.enc_tick_generic(4, 49, 0.0), caplog) == [
        ("tickGeneric", (4, 49, 0.0))
    ]
    assert decode_with_ib_async(codec.enc_tick_req_params(4, 0.01), caplog) == [
        ("tickReqParams", (4, 0.01, "9c0001", 3))
    ]
    assert decode_with_ib_async(codec.enc_market_data_type(4, 3), caplog) == [
        ("marketDataType", (4, 3))
    ]
    assert decode_with_ib_async(codec.enc_tick_snapshot_end(4), caplog) == [
        ("tickSnapshotEnd", (4,))
    ]


def test_order_status_echoes_the_client_id(caplog: pytest.LogCaptureFixture) -> None:
    fields = codec.enc_order_status(_order("Filled", filled=2.0, remaining=0.0, avg_fill_price=2.3))
    assert len(fields) == 12
    [(name, args)] = decode_with_ib_async(fields, caplog)
    assert name == "orderStatus"
    assert args[:3] == (7, "Filled", 2.0)
    assert args[8] == 3  # clientId


def test_open_order_has_127_fields_and_decodes_every_one(caplog: pytest.LogCaptureFixture) -> None:
    fields = codec.enc_open_order(_order(commission=1.3))
    assert len(fields) == 127
    [(name, (order_id, contract, order, state))] = decode_with_ib_async(fields, caplog)
    assert name == "openOrder"
    assert order_id == 7
    assert (contract.conId, contract.right, contract.strike) == (1020645052, "C", 606.0)
    assert (order.clientId, order.permId, order.orderRef, order.lmtPrice) == (
        3,
        1000000001,
        "bot-42",
        2.35,
    )
    assert state.status == "Submitted"
    assert state.commission == 1.3
    assert order.midOffsetAtHalf == pytest.approx(1.7976931348623157e308)  # last field: unset


def test_completed_order_has_96_fields_and_decodes(caplog: pytest.LogCaptureFixture) -> None:
    fields = codec.enc_completed_order(
        _order(
            "Filled",
            filled=2.0,
            completed_time="20261124 10:00:00 US/Eastern",
            completed_status="Filled Size: 2",
        )
    )
    assert len(fields) == 96
    [(name, (contract, order, state))] = decode_with_ib_async(fields, caplog)
    assert name == "completedOrder"
    assert contract.conId == 1020645052
    assert (order.permId, order.filledQuantity, state.status) == (1000000001, 2.0, "Filled")
    assert (state.completedTime, state.completedStatus) == (
        "20261124 10:00:00 US/Eastern",
        "Filled Size: 2",
    )


def test_exec_details_has_32_fields_and_decodes(caplog: pytest.LogCaptureFixture) -> None:
    e = codec.ExecutionWire(
        req_id=-1,
        order_id=7,
        client_id=3,
        perm_id=1000000001,
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
    fields = codec.enc_exec_details(e)
    assert len(fields) == 32
    [(name, (req_id, contract, execution))] = decode_with_ib_async(fields, caplog)
    assert name == "execDetails"
    assert (req_id, contract.conId, execution.execId) == (-1, 1020645052, "0000e0d5.00000001.01.01")
    assert (execution.shares, execution.price, execution.clientId, execution.orderRef) == (
        2.0,
        2.3,
        3,
        "bot-42",
    )
    assert execution.time == datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def test_commission_report_has_eight_fields_and_opening_fill_pnl_is_unset(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fields = codec.enc_commission_report("x.1", 1.3, "USD", None)
    assert len(fields) == 8
    [(name, (report,))] = decode_with_ib_async(fields, caplog)
    assert (name, report.commission) == ("commissionReport", 1.3)
    assert report.realizedPNL == pytest.approx(1.7976931348623157e308)  # the wrapper reads it as 0


def test_position_and_portfolio_have_16_and_20_fields(caplog: pytest.LogCaptureFixture) -> None:
    pos = codec.enc_position("DU1234567", SPY_CALL, 1.0, 312.5)
    assert len(pos) == 16
    [(name, (account, contract, qty, avg))] = decode_with_ib_async(pos, caplog)
    assert (name, account, contract.conId, qty, avg) == (
        "position",
        "DU1234567",
        1020645052,
        1.0,
        312.5,
    )
    row = codec.enc_portfolio(SPY, 10.0, 600.0, 6000.0, 590.0, 100.0, 0.0, "DU1234567")
    assert len(row) == 20
    [(name, args)] = decode_with_ib_async(row, caplog)
    assert name == "updatePortfolio"
    assert args[0].primaryExchange == "ARCA"
    assert args[1:] == (10.0, 600.0, 6000.0, 590.0, 100.0, 0.0, "DU1234567")


def test_contract_data_matches_real_field_counts(caplog: pytest.LogCaptureFixture) -> None:
    stk = codec.ContractDetailsFields(
        contract=SPY,
        market_name="SPY",
        min_tick=0.01,
        order_types="LMT,MKT",
        valid_exchanges="SMART,ARCA",
        long_name="SPDR S&P 500 ETF TRUST",
        sec_ids=(("ISIN", "US78462F1030"),),
        stock_type="ETF",
    )
    fields = codec.enc_contract_data(3, stk)
    assert len(fields) == 42
    [(name, (req_id, details))] = decode_with_ib_async(fields, caplog)
    assert (name, req_id, details.contract.conId, details.longName) == (
        "contractDetails",
        3,
        756733,
        "SPDR S&P 500 ETF TRUST",
    )
    assert details.secIdList[0].value == "US78462F1030"
    opt = codec.ContractDetailsFields(
        contract=SPY_CALL,
        market_name="SPY",
        min_tick=0.01,
        order_types="LMT,MKT",
        valid_exchanges="SMART,CBOE",
        long_name="SPDR S&P 500 ETF TRUST",
        under_con_id=756733,
        last_trade_time="16:00",
        real_expiration_date="20261125",
    )
    fields = codec.enc_contract_data(4, opt)
    assert len(fields) == 40
    [(_, (_, details))] = decode_with_ib_async(fields, caplog)
    assert details.contract.lastTradeDateOrContractMonth == "20261125"
    assert (details.lastTradeTime, details.timeZoneId, details.underConId) == (
        "16:00",
        "US/Eastern",
        756733,
    )


def test_historical_data_and_option_params_decode(caplog: pytest.LogCaptureFixture) -> None:
    bars = [codec.BarFields("1735828200", 1.0, 2.0, 0.5, 1.5, 100.0, 1.2, 10)]
    calls = decode_with_ib_async(codec.enc_historical_data(9, "a", "b", bars), caplog)
    assert [c[0] for c in calls] == ["historicalData", "historicalDataEnd"]
    assert calls[0][1][1].close == 1.5
    params = codec.enc_sec_def_opt_params(
        5, "SMART", 756733, "SPY", "100", ["20261125"], [600.0, 605.0]
    )
    [(name, args)] = decode_with_ib_async(params, caplog)
    assert name == "securityDefinitionOptionParameter"
    assert args == (5, "SMART", "756733", "SPY", "100", ["20261125"], [600.0, 605.0])
    assert decode_with_ib_async(codec.enc_sec_def_opt_params_end(5), caplog) == [
        ("securityDefinitionOptionParameterEnd", (5,))
    ]


def test_account_and_end_messages_decode(caplog: pytest.LogCaptureFixture) -> None:
    cases: list[tuple[list[Any], str]] = [
        (codec.enc_managed_accounts(["DU1", "DU2"]), "managedAccounts"),
        (codec.enc_next_valid_id(5), "nextValidId"),
        (codec.enc_current_time(1735828200), "currentTime"),
        (codec.enc_account_value("NetLiquidation", "100", "USD", "DU1"), "updateAccountValue"),
        (codec.enc_account_time("10:05"), "updateAccountTime"),
        (codec.enc_account_download_end("DU1"), "accountDownloadEnd"),
        (codec.enc_account_summary(3, "DU1", "NetLiquidation", "100", "USD"), "accountSummary"),
        (codec.enc_account_summary_end(3), "accountSummaryEnd"),
        (codec.enc_account_update_multi(3, "DU1", "", "Cash", "1", "USD"), "accountUpdateMulti"),
        (codec.enc_account_update_multi_end(3), "accountUpdateMultiEnd"),
        (codec.enc_position_end(), "positionEnd"),
        (codec.enc_open_order_end(), "openOrderEnd"),
        (codec.enc_completed_orders_end(), "completedOrdersEnd"),
        (codec.enc_exec_details_end(3), "execDetailsEnd"),
        (codec.enc_contract_data_end(3), "contractDetailsEnd"),
    ]
    for fields, name in cases:
        calls = decode_with_ib_async(fields, caplog)
        assert [c[0] for c in calls] == [name]


def test_field_counts_match_the_real_tws_recordings() -> None:
    shapes = json.loads(SHAPES.read_text())["sources"]
    real: dict[str, set[int]] = {}
    for source in shapes.values():
        for msg_id, shape in source.get("shapes", {}).items():
            real.setdefault(msg_id, set()).update(shape["n_fields"])
    ours = {
        "15": codec.enc_managed_accounts(["DU1"]),
        "9": codec.enc_next_valid_id(1),
        "4": codec.enc_error(-1, 2104, "x"),
        "62": codec.enc_position_end(),
        "53": codec.enc_open_order_end(),
        "102": codec.enc_completed_orders_end(),
        "6": codec.enc_account_value("a", "b", "", "DU1"),
        "8": codec.enc_account_time("10:00"),
        "54": codec.enc_account_download_end("DU1"),
        "73": codec.enc_account_update_multi(1, "DU1", "", "k", "v", ""),
        "74": codec.enc_account_update_multi_end(1),
        "55": codec.enc_exec_details_end(1),
        "63": codec.enc_account_summary(1, "DU1", "t", "v", "USD"),
        "64": codec.enc_account_summary_end(1),
        "61": codec.enc_position("DU1", SPY, 1, 1),
        "49": codec.enc_current_time(1),
        "3": codec.enc_order_status(_order()),
    }
    for msg_id, fields in ours.items():
        assert len(fields) in real[msg_id], msg_id
    assert {"15", "9", "4", "62", "53", "102", "61", "3"} <= set(real)


def test_real_versions_are_sent() -> None:
    assert codec.enc_position_end()[1] == 1
    assert codec.enc_open_order_end()[1] == 1
    assert codec.enc_position("DU1", SPY, 1, 1)[1] == 3
    assert codec.enc_portfolio(SPY, 1, 1, 1, 1, 0, 0, "DU1")[1] == 8
    assert codec.enc_error(1, 2, "x")[1] == 2


def test_contract_block_of_twelve_fields_is_read_in_order() -> None:
    c = Contract(
        conId=1,
        symbol="A",
        secType="OPT",
        lastTradeDateOrContractMonth="20250117",
        strike=200.0,
        right="P",
        multiplier="100",
        exchange="SMART",
        primaryExchange="X",
        currency="USD",
        localSymbol="L",
        tradingClass="T",
    )
    [fields] = client_messages(lambda cl: cl.reqMktData(1, c, "", False, False, []))
    req = codec.decode_request(fields)
    assert isinstance(req, codec.ReqMktData)
    assert req.contract == ContractFields(
        1, "A", "OPT", "20250117", 200.0, "P", "100", "SMART", "X", "USD", "L", "T"
    )
