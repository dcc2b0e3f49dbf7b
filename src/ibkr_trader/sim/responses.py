"""Server -> client: typed messages -> field lists (the ``enc_*`` builders), in the layout
of the negotiated server version (see ``wire.VERSIONED_FIELDS``). Field lists follow
``shared/reference/ib_protocol_facts.md`` section 5 and are checked against the decoders of
ib_async, ib_insync and ibapi in the tests."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from ibkr_trader.sim.requests import ContractFields
from ibkr_trader.sim.wire import SERVER_VERSION, UNSET_DOUBLE_TEXT, Field, has_field

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
