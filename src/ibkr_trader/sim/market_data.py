"""Contracts (details, option chains) and market data: snapshot and streaming ticks, option
greeks.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, Final

from ibkr_trader.sim import codec
from ibkr_trader.sim.codec import ContractFields, Fields
from ibkr_trader.sim.config import (
    ERR_NO_SECURITY,
)
from ibkr_trader.sim.contracts import ContractInfo
from ibkr_trader.sim.sessions import (
    Action,
    Send,
    Session,
    StateCore,
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


class MarketDataPart(StateCore):
    """The market data part of :class:`~ibkr_trader.sim.state.GatewayState`."""

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
