"""Client -> server: decoded fields -> typed requests (:func:`decode_request`), at the
negotiated server version. Checked against the encoders of ib_async, ib_insync and ibapi."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from ibkr_trader.sim.wire import SERVER_VERSION, has_field


class RequestDecodeError(Exception):
    """A request's fields could not be decoded."""


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
