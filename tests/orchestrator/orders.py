"""Test helpers that act at the gateway the way a crashed process or a person would."""

from __future__ import annotations

import asyncio
from datetime import datetime

from ibkr_trader.broker.orders import OrderSpec, TradeHandle
from ibkr_trader.clock import days_to_expiry
from ibkr_trader.integrations.ibkr_gateway import IBKRGateway
from ibkr_trader.journal import IntentResult, Journal
from ibkr_trader.models import ContractSpec, TradeRequest


async def near_money_option(gw: IBKRGateway, now: datetime, symbol: str = "SPY") -> ContractSpec:
    """A qualified call 7-21 days out, nearest the money."""
    chain = await gw.contracts.option_chain(symbol, 10.0)
    expiry = min(
        (e for e in chain.expirations if 7 <= (days_to_expiry(e, now) or 0) <= 21),
        key=lambda e: days_to_expiry(e, now) or 0,
    )
    md = await gw.get_market_data(symbol, 10.0)
    strike = min(chain.strikes, key=lambda s: abs(s - md.last_price))
    return await gw.contracts.qualify_option_contract(symbol, expiry, strike, "C", 10.0)


def journal_intent(journal: Journal, contract: ContractSpec, signal_id: str) -> IntentResult:
    """An intent journaled as if the process had died right after writing it."""
    request = TradeRequest(
        symbol=contract.symbol,
        action="BUY",
        quantity=1,
        order_type="MKT",
        limit_price=None,
        strategy_id="T",
        strategy_name="test",
        risk_per_trade=0.01,
        take_profit_pct=0.5,
        stop_loss_pct=0.25,
        expiry=contract.expiry,
        strike=contract.strike,
        right=contract.right,
        operator_id="CSATSPRIM",
        signal_id=signal_id,
    )
    return journal.record_intent(request, decision_id=None, con_id=contract.con_id)


async def place_raw(
    gw: IBKRGateway, contract: ContractSpec, order_ref: str, *, wait: bool = True
) -> TradeHandle:
    """An order straight at the gateway, bypassing the executor (a crash / a manual order)."""
    account = gw.connection.managed_accounts[0]
    handle = await gw.connection.place_order(
        contract,
        OrderSpec(action="BUY", quantity=1, order_type="MKT", order_ref=order_ref, account=account),
        timeout=10.0,
    )
    if wait:
        await handle.wait_done(10.0)
    else:
        await asyncio.sleep(0.1)
    return handle
