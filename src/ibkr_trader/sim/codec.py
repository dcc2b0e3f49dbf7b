"""Sans-IO codec of the TWS API socket protocol, server side, at server version 178.

Bytes in -> client events out (:class:`ServerProtocol`), decoded fields -> typed requests
(:func:`decode_request`), and typed server messages -> field lists -> bytes (the ``enc_*``
builders and :func:`frame`). Nothing here touches a socket or a clock.

Field lists follow ``docs`` in ``shared/reference/ib_protocol_facts.md`` section 5 and are
checked against ib_async 2.1.0's own ``Decoder`` in the tests.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

SERVER_VERSION: Final = 178
MIN_SERVER_VERSION: Final = 176  # the oldest version whose layouts this codec writes and reads
MIN_CLIENT_VERSION: Final = MIN_SERVER_VERSION  # kept for callers of the old name
MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024
API_PREFIX: Final = b"API\0"
UNSET_DOUBLE_TEXT: Final = "1.7976931348623157E308"
UNSET_INTEGER: Final = 2**31 - 1
NY: Final = ZoneInfo("America/New_York")

Field = str | int | float | bool | None


# --------------------------------------------------------------------------- versions


@dataclass(frozen=True)
class VersionedField:
    """A field that exists only from ``since`` and/or only below ``until`` (server versions)."""

    message: str
    name: str
    since: int | None = None
    until: int | None = None
    where: str = ""

    def present(self, version: int) -> bool:
        return (self.since is None or version >= self.since) and (
            self.until is None or version < self.until
        )


# Every field whose presence depends on the negotiated server version, in one place, for
# every version the codec speaks (MIN_SERVER_VERSION..SERVER_VERSION). Checked against the
# encoders and decoders of ib_async 2.1.0, ib_insync 0.9.86 and ibapi 10.50.2 in the tests.
# Thresholds at or below MIN_SERVER_VERSION are constant over the supported range and are
# written unconditionally: 156 tickAttrib in tickOptionComputation (no version field), 164
# SIZE_RULES in contractData (no version field; minSize...), 166 advancedOrderRejectJson in
# errors and advancedErrorOverride in placeOrder, 169 manualOrderTime / manualCancelOrderTime,
# 170 PEG BEST/MID fields, 176 issuerId in reqContractDetails.
VERSIONED_FIELDS: Final[dict[str, VersionedField]] = {
    f.message + "." + f.name: f
    for f in (
        # FA_PROFILE_DESUPPORT (177): faProfile is gone from the order messages
        VersionedField("placeOrder", "faProfile", until=177, where="after faPercentage"),
        VersionedField("openOrder", "faProfile", until=177, where="after faPercentage"),
        VersionedField("completedOrder", "faProfile", until=177, where="after faPercentage"),
        # PENDING_PRICE_REVISION (178)
        VersionedField("execDetails", "pendingPriceRevision", since=178, where="last"),
    )
}


def has_field(key: str, version: int) -> bool:
    """Does ``message.field`` exist at this server version? (KeyError for unknown keys)"""
    return VERSIONED_FIELDS[key].present(version)


class FramingError(Exception):
    """The peer sent bytes that are not the TWS API protocol."""


class RequestDecodeError(Exception):
    """A request's fields could not be decoded."""


# --------------------------------------------------------------------------- framing


def fmt(value: Field) -> str:
    """One field as IB writes it: ints plain, floats without exponent or trailing zeros."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if math.isinf(value) or abs(value) >= 1e300:
            return UNSET_DOUBLE_TEXT
        text = f"{value:.8f}".rstrip("0").rstrip(".")
        return "0" if text in ("", "-0") else text
    return value


def frame(fields: Sequence[Field]) -> bytes:
    """A message as it travels: 4-byte big-endian length, then NUL-terminated fields."""
    payload = "".join(fmt(f) + "\0" for f in fields).encode()
    return struct.pack(">I", len(payload)) + payload


def split_frames(buffer: bytearray) -> list[list[str]]:
    """Remove every complete length-prefixed message from ``buffer`` and return its fields."""
    out: list[list[str]] = []
    while len(buffer) >= 4:
        (size,) = struct.unpack(">I", buffer[:4])
        if size > MAX_MESSAGE_BYTES:
            raise FramingError(f"message of {size} bytes")
        if len(buffer) < 4 + size:
            break
        payload = bytes(buffer[4 : 4 + size])
        del buffer[: 4 + size]
        fields = payload.decode(errors="backslashreplace").split("\0")
        if fields and fields[-1] == "":
            fields.pop()
        out.append(fields)
    return out


@dataclass(frozen=True)
class Handshake:
    """The client's opening: ``API\\0`` and its supported version range."""

    min_version: int
    max_version: int
    options: str = ""


@dataclass(frozen=True)
class Message:
    """One decoded client message (its raw fields)."""

    fields: tuple[str, ...]

    @property
    def msg_id(self) -> int:
        try:
            return int(self.fields[0])
        except (IndexError, ValueError):
            return -1


ClientEvent = Handshake | Message


class ServerProtocol:
    """Server side of one connection: feed bytes, get the handshake then messages."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._prefix_seen = False
        self._handshake_done = False

    @property
    def handshake_done(self) -> bool:
        return self._handshake_done

    def receive_data(self, data: bytes) -> list[ClientEvent]:
        self._buffer += data
        events: list[ClientEvent] = []
        if not self._prefix_seen:
            if len(self._buffer) < len(API_PREFIX):
                if not API_PREFIX.startswith(bytes(self._buffer)):
                    raise FramingError("not an API client")
                return events
            if bytes(self._buffer[: len(API_PREFIX)]) != API_PREFIX:
                raise FramingError("not an API client")
            del self._buffer[: len(API_PREFIX)]
            self._prefix_seen = True
        for fields in split_frames(self._buffer):
            if not self._handshake_done:
                events.append(parse_version_range("\0".join(fields)))
                self._handshake_done = True
            else:
                events.append(Message(tuple(fields)))
        return events

    @staticmethod
    def handshake_reply(now: datetime, server_version: int = SERVER_VERSION) -> bytes:
        return frame([server_version, connection_time(now)])

    @staticmethod
    def send(fields: Sequence[Field]) -> bytes:
        return frame(fields)


def parse_version_range(text: str) -> Handshake:
    """``v157..178`` (optionally followed by a space and connect options)."""
    head, _, options = text.partition(" ")
    if not head.startswith("v"):
        raise FramingError(f"bad version range {text!r}")
    low, sep, high = head[1:].partition("..")
    try:
        lo = int(low)
        hi = int(high) if sep else lo
    except ValueError as exc:
        raise FramingError(f"bad version range {text!r}") from exc
    return Handshake(lo, hi, options)


def negotiate_version(handshake: Handshake) -> int | None:
    """The version to announce, or None when the client cannot speak any of ours."""
    version = min(handshake.max_version, SERVER_VERSION)
    if version < max(handshake.min_version, MIN_SERVER_VERSION):
        return None
    return version


UNSUPPORTED_VERSION: Final = (
    506,
    f"Unsupported version: the client's maximum API version is below {MIN_SERVER_VERSION}",
)


def unsupported_version_reply() -> bytes:
    """What goes back to a client too old for us before the socket is closed: an error with
    reqId -1 (IB's "Unsupported version", 506) instead of the two-field handshake reply."""
    code, text = UNSUPPORTED_VERSION
    return frame(enc_error(-1, code, text))


def connection_time(now: datetime) -> str:
    """``yyyyMMdd HH:mm:ss <zone name>`` in New York time, as TWS writes it."""
    local = now.astimezone(NY)
    return f"{local:%Y%m%d %H:%M:%S} {local:%Z}"


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class ContractFields:
    """The 12-field contract block of requests (and of most server messages)."""

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    expiry: str = ""
    strike: float = 0.0
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""


class Cursor:
    """Sequential reader over a message's fields, at one negotiated server version."""

    def __init__(
        self, fields: Sequence[str], start: int = 1, version: int = SERVER_VERSION
    ) -> None:
        self.fields = fields
        self.pos = start
        self.version = version

    def text(self) -> str:
        if self.pos >= len(self.fields):
            raise RequestDecodeError(f"message too short ({len(self.fields)} fields)")
        value = self.fields[self.pos]
        self.pos += 1
        return value

    def integer(self, default: int = 0) -> int:
        text = self.text()
        if text == "":
            return default
        try:
            return int(float(text))
        except ValueError as exc:
            raise RequestDecodeError(f"not an integer: {text!r}") from exc

    def number(self) -> float | None:
        text = self.text()
        if text == "":
            return None
        try:
            value = float(text)
        except ValueError as exc:
            raise RequestDecodeError(f"not a number: {text!r}") from exc
        return None if value >= 1e300 else value

    def flag(self) -> bool:
        return self.integer() != 0

    def skip(self, n: int) -> None:
        for _ in range(n):
            self.text()

    def contract(self) -> ContractFields:
        con_id = self.integer()
        symbol = self.text()
        sec_type = self.text()
        expiry = self.text()
        strike = self.number() or 0.0
        return ContractFields(
            con_id=con_id,
            symbol=symbol,
            sec_type=sec_type,
            expiry=expiry,
            strike=strike,
            right=self.text(),
            multiplier=self.text(),
            exchange=self.text(),
            primary_exchange=self.text(),
            currency=self.text(),
            local_symbol=self.text(),
            trading_class=self.text(),
        )


@dataclass(frozen=True)
class StartApi:
    client_id: int
    optional_capabilities: str = ""


@dataclass(frozen=True)
class ReqMktData:
    req_id: int
    contract: ContractFields
    generic_ticks: str
    snapshot: bool
    regulatory_snapshot: bool


@dataclass(frozen=True)
class CancelMktData:
    req_id: int


@dataclass(frozen=True)
class OrderFields:
    """The parts of a placeOrder that the simulator acts on (the rest stays in ``raw``)."""

    action: str
    total_quantity: float
    order_type: str
    lmt_price: float | None
    aux_price: float | None
    tif: str
    oca_group: str
    account: str
    open_close: str
    origin: int
    order_ref: str
    transmit: bool
    parent_id: int
    outside_rth: bool
    hidden: bool
    what_if: bool
    ext_operator: str
    algo_strategy: str
    conditions: int


@dataclass(frozen=True)
class PlaceOrder:
    order_id: int
    contract: ContractFields
    order: OrderFields
    raw: tuple[str, ...]


@dataclass(frozen=True)
class CancelOrder:
    order_id: int
    manual_cancel_time: str = ""


@dataclass(frozen=True)
class ReqOpenOrders:
    pass


@dataclass(frozen=True)
class ReqAllOpenOrders:
    pass


@dataclass(frozen=True)
class ReqAutoOpenOrders:
    auto_bind: bool


@dataclass(frozen=True)
class ReqAccountUpdates:
    subscribe: bool
    account: str


@dataclass(frozen=True)
class ReqExecutions:
    req_id: int
    client_id: int
    account: str
    time: str
    symbol: str
    sec_type: str
    exchange: str
    side: str


@dataclass(frozen=True)
class ReqIds:
    count: int


@dataclass(frozen=True)
class ReqContractDetails:
    req_id: int
    contract: ContractFields
    include_expired: bool
    sec_id_type: str
    sec_id: str


@dataclass(frozen=True)
class ReqHistoricalData:
    req_id: int
    contract: ContractFields
    include_expired: bool
    end: str
    bar_size: str
    duration: str
    use_rth: bool
    what_to_show: str
    format_date: int
    keep_up_to_date: bool


@dataclass(frozen=True)
class CancelHistoricalData:
    req_id: int


@dataclass(frozen=True)
class ReqCurrentTime:
    pass


@dataclass(frozen=True)
class ReqMarketDataType:
    market_data_type: int


@dataclass(frozen=True)
class ReqPositions:
    pass


@dataclass(frozen=True)
class CancelPositions:
    pass


@dataclass(frozen=True)
class ReqAccountSummary:
    req_id: int
    group: str
    tags: str


@dataclass(frozen=True)
class CancelAccountSummary:
    req_id: int


@dataclass(frozen=True)
class ReqAccountUpdatesMulti:
    req_id: int
    account: str
    model_code: str
    ledger_and_nlv: bool


@dataclass(frozen=True)
class CancelAccountUpdatesMulti:
    req_id: int


@dataclass(frozen=True)
class ReqSecDefOptParams:
    req_id: int
    symbol: str
    fut_fop_exchange: str
    sec_type: str
    con_id: int


@dataclass(frozen=True)
class ReqCompletedOrders:
    api_only: bool


@dataclass(frozen=True)
class ReqGlobalCancel:
    pass


@dataclass(frozen=True)
class ReqManagedAccounts:
    pass


@dataclass(frozen=True)
class UnknownRequest:
    msg_id: int
    fields: tuple[str, ...]


Request = (
    StartApi
    | ReqMktData
    | CancelMktData
    | PlaceOrder
    | CancelOrder
    | ReqOpenOrders
    | ReqAllOpenOrders
    | ReqAutoOpenOrders
    | ReqAccountUpdates
    | ReqExecutions
    | ReqIds
    | ReqContractDetails
    | ReqHistoricalData
    | CancelHistoricalData
    | ReqCurrentTime
    | ReqMarketDataType
    | ReqPositions
    | CancelPositions
    | ReqAccountSummary
    | CancelAccountSummary
    | ReqAccountUpdatesMulti
    | CancelAccountUpdatesMulti
    | ReqSecDefOptParams
    | ReqCompletedOrders
    | ReqGlobalCancel
    | ReqManagedAccounts
    | UnknownRequest
)


def _start_api(c: Cursor) -> Request:
    c.skip(1)
    client_id = c.integer()
    caps = c.text() if c.pos < len(c.fields) else ""
    return StartApi(client_id, caps)


def _req_mkt_data(c: Cursor) -> Request:
    c.skip(1)
    req_id = c.integer()
    contract = c.contract()
    if contract.sec_type == "BAG":
        c.skip(4 * c.integer())
    if c.flag():
        c.skip(3)
    return ReqMktData(req_id, contract, c.text(), c.flag(), c.flag())


def _place_order(c: Cursor) -> Request:
    order_id = c.integer()
    contract = c.contract()
    c.skip(2)  # secIdType, secId
    action = c.text()
    total_quantity = c.number() or 0.0
    order_type = c.text()
    lmt_price = c.number()
    aux_price = c.number()
    tif = c.text()
    oca_group = c.text()
    account = c.text()
    open_close = c.text()
    origin = c.integer()
    order_ref = c.text()
    transmit = c.flag()
    parent_id = c.integer()
    c.skip(5)  # blockOrder, sweepToFill, displaySize, triggerMethod, outsideRth
    outside_rth = c.fields[c.pos - 1] == "1"
    hidden = c.flag()
    if contract.sec_type == "BAG":
        c.skip(8 * c.integer())
        c.skip(c.integer())
        c.skip(2 * c.integer())
    c.skip(7)  # "", discretionaryAmt, goodAfterTime, goodTillDate, faGroup/Method/Percentage
    if has_field("placeOrder.faProfile", c.version):
        c.skip(1)
    c.skip(22)  # modelCode .. volatilityType
    dn_order_type = c.text()
    c.skip(1)  # deltaNeutralAuxPrice
    if dn_order_type:
        c.skip(8)
    c.skip(6)  # continuousUpdate .. scaleSubsLevelSize
    increment = c.number()
    if increment is not None and increment > 0:
        c.skip(7)
    c.skip(3)  # scaleTable, activeStartTime, activeStopTime
    if c.text():  # hedgeType
        c.skip(1)
    c.skip(4)  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
    if c.flag():  # deltaNeutralContract
        c.skip(3)
    algo_strategy = c.text()
    if algo_strategy:
        c.skip(2 * c.integer())
    c.skip(1)  # algoId
    what_if = c.flag()
    c.skip(4)  # orderMiscOptions, solicited, randomizeSize, randomizePrice
    if order_type in ("PEG BENCH", "PEGBENCH"):
        c.skip(5)
    conditions = c.integer()
    ext_operator = ""
    if conditions == 0:
        c.skip(7)  # adjusted-order fields
        ext_operator = c.text()
    return PlaceOrder(
        order_id=order_id,
        contract=contract,
        order=OrderFields(
            action=action,
            total_quantity=total_quantity,
            order_type=order_type,
            lmt_price=lmt_price,
            aux_price=aux_price,
            tif=tif,
            oca_group=oca_group,
            account=account,
            open_close=open_close,
            origin=origin,
            order_ref=order_ref,
            transmit=transmit,
            parent_id=parent_id,
            outside_rth=outside_rth,
            hidden=hidden,
            what_if=what_if,
            ext_operator=ext_operator,
            algo_strategy=algo_strategy,
            conditions=conditions,
        ),
        raw=tuple(c.fields),
    )


def _cancel_order(c: Cursor) -> Request:
    c.skip(1)
    order_id = c.integer()
    manual = c.text() if c.pos < len(c.fields) else ""
    return CancelOrder(order_id, manual)


def _req_executions(c: Cursor) -> Request:
    c.skip(1)
    req_id = c.integer()
    client_id = c.integer()
    return ReqExecutions(
        req_id, client_id, c.text(), c.text(), c.text(), c.text(), c.text(), c.text()
    )


def _req_contract_details(c: Cursor) -> Request:
    c.skip(1)
    req_id = c.integer()
    contract = c.contract()
    return ReqContractDetails(req_id, contract, c.flag(), c.text(), c.text())


def _req_historical_data(c: Cursor) -> Request:
    req_id = c.integer()
    contract = c.contract()
    include_expired = c.flag()
    end = c.text()
    bar_size = c.text()
    duration = c.text()
    use_rth = c.flag()
    what_to_show = c.text()
    format_date = c.integer(1)
    if contract.sec_type == "BAG":
        c.skip(4 * c.integer())
    keep = c.flag() if c.pos < len(c.fields) else False
    return ReqHistoricalData(
        req_id,
        contract,
        include_expired,
        end,
        bar_size,
        duration,
        use_rth,
        what_to_show,
        format_date,
        keep,
    )


def _req_account_updates_multi(c: Cursor) -> Request:
    c.skip(1)
    req_id = c.integer()
    account = c.text()
    model = c.text()
    ledger = c.flag() if c.pos < len(c.fields) else False
    return ReqAccountUpdatesMulti(req_id, account, model, ledger)


def _req_sec_def_opt_params(c: Cursor) -> Request:
    req_id = c.integer()
    symbol = c.text()
    exchange = c.text()
    sec_type = c.text()
    return ReqSecDefOptParams(req_id, symbol, exchange, sec_type, c.integer())


def _versioned(build: Callable[[Cursor], Request]) -> Callable[[Cursor], Request]:
    def parse(c: Cursor) -> Request:
        c.skip(1)
        return build(c)

    return parse


REQUEST_PARSERS: Final[dict[int, Callable[[Cursor], Request]]] = {
    1: _req_mkt_data,
    2: _versioned(lambda c: CancelMktData(c.integer())),
    3: _place_order,
    4: _cancel_order,
    5: lambda c: ReqOpenOrders(),
    6: _versioned(lambda c: ReqAccountUpdates(c.flag(), c.text())),
    7: _req_executions,
    8: _versioned(lambda c: ReqIds(c.integer())),
    9: _req_contract_details,
    15: _versioned(lambda c: ReqAutoOpenOrders(c.flag())),
    16: lambda c: ReqAllOpenOrders(),
    17: lambda c: ReqManagedAccounts(),
    20: _req_historical_data,
    25: _versioned(lambda c: CancelHistoricalData(c.integer())),
    49: lambda c: ReqCurrentTime(),
    58: lambda c: ReqGlobalCancel(),
    59: _versioned(lambda c: ReqMarketDataType(c.integer())),
    61: lambda c: ReqPositions(),
    62: _versioned(lambda c: ReqAccountSummary(c.integer(), c.text(), c.text())),
    63: _versioned(lambda c: CancelAccountSummary(c.integer())),
    64: lambda c: CancelPositions(),
    71: _start_api,
    76: _req_account_updates_multi,
    77: _versioned(lambda c: CancelAccountUpdatesMulti(c.integer())),
    78: _req_sec_def_opt_params,
    99: lambda c: ReqCompletedOrders(c.flag()),
}


def decode_request(fields: Sequence[str], version: int = SERVER_VERSION) -> Request:
    """Turn one client message's fields, sent at the negotiated server ``version``, into a
    typed request (UnknownRequest if unhandled)."""
    if not fields:
        raise RequestDecodeError("empty message")
    try:
        msg_id = int(fields[0])
    except ValueError as exc:
        raise RequestDecodeError(f"bad message id {fields[0]!r}") from exc
    parser = REQUEST_PARSERS.get(msg_id)
    if parser is None:
        return UnknownRequest(msg_id, tuple(fields))
    return parser(Cursor(fields, version=version))


# --------------------------------------------------------------------------- server messages


class Out:
    """Server -> client message ids."""

    TICK_PRICE: Final = 1
    TICK_SIZE: Final = 2
    ORDER_STATUS: Final = 3
    ERROR: Final = 4
    TICK_OPTION_COMPUTATION: Final = 21
    OPEN_ORDER: Final = 5
    ACCT_VALUE: Final = 6
    PORTFOLIO_VALUE: Final = 7
    ACCT_UPDATE_TIME: Final = 8
    NEXT_VALID_ID: Final = 9
    CONTRACT_DATA: Final = 10
    EXECUTION_DATA: Final = 11
    MANAGED_ACCTS: Final = 15
    HISTORICAL_DATA: Final = 17
    TICK_GENERIC: Final = 45
    TICK_STRING: Final = 46
    CURRENT_TIME: Final = 49
    CONTRACT_DATA_END: Final = 52
    OPEN_ORDER_END: Final = 53
    ACCT_DOWNLOAD_END: Final = 54
    EXECUTION_DATA_END: Final = 55
    TICK_SNAPSHOT_END: Final = 57
    MARKET_DATA_TYPE: Final = 58
    COMMISSION_REPORT: Final = 59
    POSITION_DATA: Final = 61
    POSITION_END: Final = 62
    ACCOUNT_SUMMARY: Final = 63
    ACCOUNT_SUMMARY_END: Final = 64
    ACCOUNT_UPDATE_MULTI: Final = 73
    ACCOUNT_UPDATE_MULTI_END: Final = 74
    SECURITY_DEFINITION_OPTION_PARAMETER: Final = 75
    SECURITY_DEFINITION_OPTION_PARAMETER_END: Final = 76
    TICK_REQ_PARAMS: Final = 81
    COMPLETED_ORDER: Final = 101
    COMPLETED_ORDERS_END: Final = 102


Fields = list[Field]


def enc_managed_accounts(accounts: Iterable[str]) -> Fields:
    return [Out.MANAGED_ACCTS, 1, ",".join(accounts)]


def enc_next_valid_id(order_id: int) -> Fields:
    return [Out.NEXT_VALID_ID, 1, order_id]


def enc_error(req_id: int, code: int, text: str, advanced_json: str = "") -> Fields:
    """Error / notice: 6 fields at version >= 166 (trailing advancedOrderRejectJson)."""
    return [Out.ERROR, 2, req_id, code, text, advanced_json]


def enc_current_time(epoch: int) -> Fields:
    return [Out.CURRENT_TIME, 1, epoch]


def _contract11(c: ContractFields, exchange: str | None = None) -> Fields:
    """conId .. tradingClass without primaryExchange (position, execDetails, openOrder)."""
    return [
        c.con_id,
        c.symbol,
        c.sec_type,
        c.expiry,
        c.strike,
        c.right,
        c.multiplier,
        c.exchange if exchange is None else exchange,
        c.currency,
        c.local_symbol,
        c.trading_class,
    ]


# market data


def enc_tick_price(
    req_id: int, tick_type: int, price: float, size: float, attrib: int = 0
) -> Fields:
    return [Out.TICK_PRICE, 6, req_id, tick_type, price, size, attrib]


def enc_tick_size(req_id: int, tick_type: int, size: float) -> Fields:
    return [Out.TICK_SIZE, 6, req_id, tick_type, size]


def enc_tick_string(req_id: int, tick_type: int, value: str) -> Fields:
    return [Out.TICK_STRING, 6, req_id, tick_type, value]


def enc_tick_generic(req_id: int, tick_type: int, value: float) -> Fields:
    return [Out.TICK_GENERIC, 6, req_id, tick_type, value]


def enc_tick_option_computation(
    req_id: int,
    tick_type: int,
    implied_vol: float | None,
    delta: float | None,
    opt_price: float | None,
    pv_dividend: float | None,
    gamma: float | None,
    vega: float | None,
    theta: float | None,
    und_price: float | None,
    tick_attrib: int = 0,
) -> Fields:
    """tickOptionComputation (msg 21): 12 fields, no version field, with tickAttrib (>= 156,
    so in every version we speak). IB's unset: -1 for vol, prices and pvDividend, -2 for the
    greeks (None or NaN here)."""

    def value(x: float | None, unset: int) -> Field:
        return unset if x is None or math.isnan(x) else x

    return [
        Out.TICK_OPTION_COMPUTATION,
        req_id,
        tick_type,
        tick_attrib,
        value(implied_vol, -1),
        value(delta, -2),
        value(opt_price, -1),
        value(pv_dividend, -1),
        value(gamma, -2),
        value(vega, -2),
        value(theta, -2),
        value(und_price, -1),
    ]


def enc_tick_req_params(
    req_id: int, min_tick: float, bbo_exchange: str = "9c0001", permissions: int = 3
) -> Fields:
    return [Out.TICK_REQ_PARAMS, req_id, min_tick, bbo_exchange, permissions]


def enc_market_data_type(req_id: int, market_data_type: int) -> Fields:
    return [Out.MARKET_DATA_TYPE, 1, req_id, market_data_type]


def enc_tick_snapshot_end(req_id: int) -> Fields:
    return [Out.TICK_SNAPSHOT_END, 1, req_id]


# contracts


@dataclass(frozen=True)
class ContractDetailsFields:
    """Everything contractData (msg 10) carries."""

    contract: ContractFields
    market_name: str
    min_tick: float
    order_types: str
    valid_exchanges: str
    long_name: str
    under_con_id: int = 0
    contract_month: str = ""
    industry: str = ""
    category: str = ""
    subcategory: str = ""
    time_zone_id: str = "US/Eastern"
    trading_hours: str = ""
    liquid_hours: str = ""
    sec_ids: tuple[tuple[str, str], ...] = ()
    agg_group: int = 1
    under_symbol: str = ""
    under_sec_type: str = ""
    market_rule_ids: str = "26"
    real_expiration_date: str = ""
    stock_type: str = ""
    last_trade_time: str = ""
    min_size: str = "1"
    size_increment: str = "1"
    suggested_size_increment: str = "1"


def enc_contract_data(req_id: int, d: ContractDetailsFields) -> Fields:
    c = d.contract
    expiry = c.expiry
    if expiry and d.last_trade_time:
        expiry = f"{expiry} {d.last_trade_time} {d.time_zone_id}"
    out: Fields = [
        Out.CONTRACT_DATA,
        req_id,
        c.symbol,
        c.sec_type,
        expiry,
        c.strike,
        c.right,
        c.exchange,
        c.currency,
        c.local_symbol,
        d.market_name,
        c.trading_class,
        c.con_id,
        d.min_tick,
        c.multiplier,
        d.order_types,
        d.valid_exchanges,
        1,  # priceMagnifier
        d.under_con_id,
        d.long_name,
        c.primary_exchange,
        d.contract_month,
        d.industry,
        d.category,
        d.subcategory,
        d.time_zone_id,
        d.trading_hours,
        d.liquid_hours,
        "",  # evRule
        "",  # evMultiplier
        len(d.sec_ids),
    ]
    for tag, value in d.sec_ids:
        out += [tag, value]
    out += [
        d.agg_group,
        d.under_symbol,
        d.under_sec_type,
        d.market_rule_ids,
        d.real_expiration_date,
        d.stock_type,
        d.min_size,
        d.size_increment,
        d.suggested_size_increment,
    ]
    return out


def enc_contract_data_end(req_id: int) -> Fields:
    return [Out.CONTRACT_DATA_END, 1, req_id]


def enc_sec_def_opt_params(
    req_id: int,
    exchange: str,
    under_con_id: int,
    trading_class: str,
    multiplier: str,
    expirations: Sequence[str],
    strikes: Sequence[float],
) -> Fields:
    out: Fields = [
        Out.SECURITY_DEFINITION_OPTION_PARAMETER,
        req_id,
        exchange,
        under_con_id,
        trading_class,
        multiplier,
        len(expirations),
    ]
    out += list(expirations)
    out.append(len(strikes))
    out += list(strikes)
    return out


def enc_sec_def_opt_params_end(req_id: int) -> Fields:
    return [Out.SECURITY_DEFINITION_OPTION_PARAMETER_END, req_id]


# historical data


@dataclass(frozen=True)
class BarFields:
    date: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    wap: float
    bar_count: int


def enc_historical_data(req_id: int, start: str, end: str, bars: Sequence[BarFields]) -> Fields:
    out: Fields = [Out.HISTORICAL_DATA, req_id, start, end, len(bars)]
    for b in bars:
        out += [b.date, b.open, b.high, b.low, b.close, b.volume, b.wap, b.bar_count]
    return out


# orders


@dataclass(frozen=True)
class OrderWire:
    """The order and its state as openOrder / completedOrder / orderStatus report them."""

    order_id: int
    client_id: int
    perm_id: int
    contract: ContractFields
    action: str
    total_quantity: float
    order_type: str
    lmt_price: float | None
    aux_price: float | None
    tif: str
    account: str
    order_ref: str
    status: str
    filled: float = 0.0
    remaining: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    parent_id: int = 0
    oca_group: str = ""
    open_close: str = ""
    origin: int = 0
    outside_rth: bool = False
    commission: float | None = None
    completed_time: str = ""
    completed_status: str = ""
    why_held: str = ""
    warning_text: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def enc_order_status(o: OrderWire) -> Fields:
    """orderStatus: no version field at >= 131; the client id is echoed."""
    return [
        Out.ORDER_STATUS,
        o.order_id,
        o.status,
        o.filled,
        o.remaining,
        o.avg_fill_price,
        o.perm_id,
        o.parent_id,
        o.last_fill_price,
        o.client_id,
        o.why_held,
        "",  # mktCapPrice
    ]


def enc_open_order(o: OrderWire, version: int = SERVER_VERSION) -> Fields:
    """openOrder, no version field: 127 fields for a plain order at 177/178, 128 at 176."""
    commission = o.commission
    out: Fields = [Out.OPEN_ORDER, o.order_id]
    out += _contract11(o.contract)
    out += [
        o.action,
        o.total_quantity,
        o.order_type,
        o.lmt_price if o.lmt_price is not None else 0.0,
        o.aux_price if o.aux_price is not None else 0.0,
        o.tif,
        o.oca_group,
        o.account,
        o.open_close,
        o.origin,
        o.order_ref,
        o.client_id,
        o.perm_id,
        o.outside_rth,
        False,  # hidden
        0,  # discretionaryAmt
        "",  # goodAfterTime
        "",  # sharesAllocation
        "",  # faGroup
        "",  # faMethod
        "",  # faPercentage
    ]
    if has_field("openOrder.faProfile", version):
        out.append("")
    out += [
        "",  # modelCode
        "",  # goodTillDate
        "",  # rule80A
        "",  # percentOffset
        "",  # settlingFirm
        0,  # shortSaleSlot
        "",  # designatedLocation
        -1,  # exemptCode
        0,  # auctionStrategy
        "",  # startingPrice
        "",  # stockRefPrice
        "",  # delta
        "",  # stockRangeLower
        "",  # stockRangeUpper
        "",  # displaySize
        False,  # blockOrder
        False,  # sweepToFill
        False,  # allOrNone
        "",  # minQty
        3,  # ocaType
        False,  # eTradeOnly
        False,  # firmQuoteOnly
        "",  # nbboPriceCap
        o.parent_id,
        0,  # triggerMethod
        "",  # volatility
        0,  # volatilityType
        "",  # deltaNeutralOrderType (empty: no delta-neutral block)
        "",  # deltaNeutralAuxPrice
        0,  # continuousUpdate
        0,  # referencePriceType
        "",  # trailStopPrice
        "",  # trailingPercent
        "",  # basisPoints
        "",  # basisPointsType
        "",  # comboLegsDescrip
        0,  # comboLegs count
        0,  # orderComboLegs count
        0,  # smartComboRoutingParams count
        "",  # scaleInitLevelSize
        "",  # scaleSubsLevelSize
        "",  # scalePriceIncrement (empty: no scale block)
        "",  # hedgeType
        False,  # optOutSmartRouting
        "",  # clearingAccount
        "IB",  # clearingIntent
        False,  # notHeld
        False,  # deltaNeutralContract present
        "",  # algoStrategy
        False,  # solicited
        False,  # whatIf
        o.status,
        "",  # initMarginBefore
        "",  # maintMarginBefore
        "",  # equityWithLoanBefore
        "",  # initMarginChange
        "",  # maintMarginChange
        "",  # equityWithLoanChange
        "",  # initMarginAfter
        "",  # maintMarginAfter
        "",  # equityWithLoanAfter
        commission if commission is not None else "",
        "",  # minCommission
        "",  # maxCommission
        "USD" if commission is not None else "",
        o.warning_text,
        False,  # randomizeSize
        False,  # randomizePrice
        0,  # conditions count
        "None",  # adjustedOrderType (what real TWS sends)
        "",  # triggerPrice
        "",  # trailStopPrice
        "",  # lmtPriceOffset
        "",  # adjustedStopPrice
        "",  # adjustedStopLimitPrice
        "",  # adjustedTrailingAmount
        0,  # adjustableTrailingUnit
        "",  # softDollarTier name
        "",  # softDollarTier value
        "",  # softDollarTier displayName
        "",  # cashQty
        False,  # dontUseAutoPriceForHedge
        False,  # isOmsContainer
        False,  # discretionaryUpToLimitPrice
        False,  # usePriceMgmtAlgo
        "",  # duration
        "",  # postToAts
        False,  # autoCancelParent
        "",  # minTradeQty
        "",  # minCompeteSize
        "",  # competeAgainstBestOffset
        "",  # midOffsetAtWhole
        "",  # midOffsetAtHalf
    ]
    return out


def enc_open_order_end() -> Fields:
    return [Out.OPEN_ORDER_END, 1]


def enc_completed_order(o: OrderWire, version: int = SERVER_VERSION) -> Fields:
    """completedOrder: 96 fields at 177/178 (97 at 176), no order id and no client id."""
    out: Fields = [Out.COMPLETED_ORDER]
    out += _contract11(o.contract)
    out += [
        o.action,
        o.total_quantity,
        o.order_type,
        o.lmt_price if o.lmt_price is not None else 0.0,
        o.aux_price if o.aux_price is not None else 0.0,
        o.tif,
        o.oca_group,
        o.account,
        o.open_close,
        o.origin,
        o.order_ref,
        o.perm_id,
        o.outside_rth,
        False,  # hidden
        0,  # discretionaryAmt
        "",  # goodAfterTime
        "",  # faGroup
        "",  # faMethod
        "",  # faPercentage
    ]
    if has_field("completedOrder.faProfile", version):
        out.append("")
    out += [
        "",  # modelCode
        "",  # goodTillDate
        "",  # rule80A
        "",  # percentOffset
        "",  # settlingFirm
        0,  # shortSaleSlot
        "",  # designatedLocation
        -1,  # exemptCode
        "",  # startingPrice
        "",  # stockRefPrice
        "",  # delta
        "",  # stockRangeLower
        "",  # stockRangeUpper
        "",  # displaySize
        False,  # sweepToFill
        False,  # allOrNone
        "",  # minQty
        3,  # ocaType
        0,  # triggerMethod
        "",  # volatility
        0,  # volatilityType
        "",  # deltaNeutralOrderType
        "",  # deltaNeutralAuxPrice
        0,  # continuousUpdate
        0,  # referencePriceType
        "",  # trailStopPrice
        "",  # trailingPercent
        "",  # comboLegsDescrip
        0,  # comboLegs count
        0,  # orderComboLegs count
        0,  # smartComboRoutingParams count
        "",  # scaleInitLevelSize
        "",  # scaleSubsLevelSize
        "",  # scalePriceIncrement
        "",  # hedgeType
        "",  # clearingAccount
        "IB",  # clearingIntent
        False,  # notHeld
        False,  # deltaNeutralContract present
        "",  # algoStrategy
        False,  # solicited
        o.status,
        False,  # randomizeSize
        False,  # randomizePrice
        0,  # conditions count
        "",  # trailStopPrice
        "",  # lmtPriceOffset
        "",  # cashQty
        False,  # dontUseAutoPriceForHedge
        False,  # isOmsContainer
        "",  # autoCancelDate
        o.filled,
        0,  # refFuturesConId
        False,  # autoCancelParent
        "",  # shareholder
        False,  # imbalanceOnly
        False,  # routeMarketableToBbo
        0,  # parentPermId
        o.completed_time,
        o.completed_status,
        "",  # minTradeQty
        "",  # minCompeteSize
        "",  # competeAgainstBestOffset
        "",  # midOffsetAtWhole
        "",  # midOffsetAtHalf
    ]
    return out


def enc_completed_orders_end() -> Fields:
    return [Out.COMPLETED_ORDERS_END]


# executions


@dataclass(frozen=True)
class ExecutionWire:
    req_id: int
    order_id: int
    client_id: int
    perm_id: int
    contract: ContractFields
    exec_id: str
    time: str
    account: str
    exchange: str
    side: str
    shares: float
    price: float
    cum_qty: float
    avg_price: float
    order_ref: str
    last_liquidity: int = 2


def enc_exec_details(e: ExecutionWire, version: int = SERVER_VERSION) -> Fields:
    """execDetails, no version field: 32 fields at 178 (pendingPriceRevision last), 31 below."""
    out: Fields = [Out.EXECUTION_DATA, e.req_id, e.order_id]
    out += _contract11(e.contract, exchange=e.exchange)
    out += [
        e.exec_id,
        e.time,
        e.account,
        e.exchange,
        e.side,
        e.shares,
        e.price,
        e.perm_id,
        e.client_id,
        0,  # liquidation
        e.cum_qty,
        e.avg_price,
        e.order_ref,
        "",  # evRule
        "",  # evMultiplier
        "",  # modelCode
        e.last_liquidity,
    ]
    if has_field("execDetails.pendingPriceRevision", version):
        out.append(False)
    return out


def enc_exec_details_end(req_id: int) -> Fields:
    return [Out.EXECUTION_DATA_END, 1, req_id]


def enc_commission_report(
    exec_id: str, commission: float, currency: str, realized_pnl: float | None
) -> Fields:
    return [
        Out.COMMISSION_REPORT,
        1,
        exec_id,
        commission,
        currency,
        UNSET_DOUBLE_TEXT if realized_pnl is None else realized_pnl,
        UNSET_DOUBLE_TEXT,
        "",
    ]


# positions and accounts


def enc_position(
    account: str, c: ContractFields, position: float, avg_cost: float, exchange: str = ""
) -> Fields:
    """position: 16 fields; IB puts the primary exchange in ``exchange``."""
    out: Fields = [Out.POSITION_DATA, 3, account]
    out += _contract11(c, exchange=exchange or c.primary_exchange)
    out += [position, avg_cost]
    return out


def enc_position_end() -> Fields:
    return [Out.POSITION_END, 1]


def enc_account_value(key: str, value: str, currency: str, account: str) -> Fields:
    return [Out.ACCT_VALUE, 2, key, value, currency, account]


def enc_portfolio(
    c: ContractFields,
    position: float,
    market_price: float,
    market_value: float,
    avg_cost: float,
    unrealized_pnl: float,
    realized_pnl: float,
    account: str,
) -> Fields:
    """updatePortfolio: 20 fields, primaryExchange in the exchange slot."""
    out: Fields = [Out.PORTFOLIO_VALUE, 8]
    out += _contract11(c, exchange=c.primary_exchange)
    out += [
        position,
        market_price,
        market_value,
        avg_cost,
        unrealized_pnl,
        realized_pnl,
        account,
    ]
    return out


def enc_account_time(hhmm: str) -> Fields:
    return [Out.ACCT_UPDATE_TIME, 1, hhmm]


def enc_account_download_end(account: str) -> Fields:
    return [Out.ACCT_DOWNLOAD_END, 1, account]


def enc_account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> Fields:
    return [Out.ACCOUNT_SUMMARY, 1, req_id, account, tag, value, currency]


def enc_account_summary_end(req_id: int) -> Fields:
    return [Out.ACCOUNT_SUMMARY_END, 1, req_id]


def enc_account_update_multi(
    req_id: int, account: str, model_code: str, key: str, value: str, currency: str
) -> Fields:
    return [Out.ACCOUNT_UPDATE_MULTI, 1, req_id, account, model_code, key, value, currency]


def enc_account_update_multi_end(req_id: int) -> Fields:
    return [Out.ACCOUNT_UPDATE_MULTI_END, 1, req_id]
