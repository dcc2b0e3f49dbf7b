"""Issue 16: a position of ours held through expiry in the calendar simulator. IB books the
expiry itself (executions without an order: the option leg at 0, the shares of an exercise
at the strike); reconciliation journals them as ours, so the bot's journal and positions
agree with the gateway afterwards, and nothing of it is an unknown order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ibkr_trader.clock import NY
from ibkr_trader.models import ClosureReason, TradingState
from ibkr_trader.testing import trading_rig
from orchestrator.orders import journal_intent, place_raw

WEDNESDAY = datetime(2026, 11, 18, 14, 0, tzinfo=NY).astimezone(UTC)
EXPIRY = "20261118"  # SPY lists daily expiries: this one ends at today's close
CLOSE = datetime(2026, 11, 18, 16, 0, tzinfo=NY).astimezone(UTC)


@pytest.mark.parametrize("itm", [True, False], ids=["exercised", "expired"])
async def test_a_position_held_through_expiry_is_journaled_as_ib_booked_it(
    tmp_path: Path, itm: bool
) -> None:
    async with trading_rig(tmp_path, at=WEDNESDAY) as rig:
        sim, gw = rig.sim, rig.gateway
        spot = sim.market.underlying_price("SPY", CLOSE)
        strikes = sim.catalog.strikes("SPY")
        strike = (
            max(k for k in strikes if k < spot - 3)
            if itm
            else min(k for k in strikes if k > spot + 3)
        )
        contract = await gw.contracts.qualify_option_contract("SPY", EXPIRY, strike, "C", 10.0)
        intent = journal_intent(rig.journal, contract, "through-expiry")
        await place_raw(gw, contract, intent.intent.client_order_id)  # BUY 1 MKT, ours
        first = await rig.reconciler.reconcile("after the buy", 10.0)
        assert first.ok and len(first.fills_recorded) == 1, first
        assert rig.journal.our_net_positions() == {contract.key: 1}

        sim.clock.set(CLOSE + timedelta(minutes=1))  # the close of expiry day passes
        for _ in range(200):
            if (sim.accounts[0], contract.con_id) not in sim.state.positions or not (
                sim.state.positions[(sim.accounts[0], contract.con_id)].quantity
            ):
                break
            await asyncio.sleep(0.02)
        report = await rig.reconciler.reconcile("after expiry", 10.0)
        assert report.ok, report.unknown_orders  # IB's own booking is not an unknown order
        assert rig.risk.trading_state is TradingState.ACTIVE
        assert len(report.fills_recorded) == (2 if itm else 1)

        # the journal == the gateway: the option is gone, the exercise's shares are ours
        at_sim = {
            row.contract.symbol if row.contract.sec_type == "STK" else contract.key: round(
                row.quantity
            )
            for (acct, _c), row in sim.state.positions.items()
            if acct == sim.accounts[0] and row.quantity
        }
        ours = rig.journal.our_net_positions()
        assert ours == ({"SPY:STK": 100} if itm else {})
        assert at_sim == ({"SPY": 100} if itm else {})
        [closure] = rig.journal.closures()
        assert closure.reason == ClosureReason.OPTION_EXPIRY.value
        assert closure.contract_key == contract.key and closure.quantity == 1
        [event, *rest] = rig.journal.events(kind="option_settled")
        assert {event.detail["outcome"], *(e.detail["outcome"] for e in rest)} == {
            "exercised" if itm else "expired"
        }
        again = await rig.reconciler.reconcile("once more", 10.0)  # recorded exactly once
        assert again.ok and again.fills_recorded == ()
        assert rig.journal.our_net_positions() == ours
