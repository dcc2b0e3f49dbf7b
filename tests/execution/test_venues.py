"""The dry-run venue's matching engine, on a scripted quote feed (the venue's own input: the
quotes the gateway delivers) and a real journal: touch rule at the displayed size, partial
fills, resting, DAY expiry at the close, cancels, the open, commissions from the risk limits
and the book derived from the fills. The simulator-driven tests (tests/orchestrator,
tests/integrations) run the same venue behind the executor over real sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ibkr_trader.broker.exceptions import BrokerError, BrokerTimeoutError
from ibkr_trader.broker.market_data import Quote
from ibkr_trader.broker.orders import OrderSpec
from ibkr_trader.clock import NY, ManualClock
from ibkr_trader.execution import DryRunVenue
from ibkr_trader.journal import AsyncJournal, Journal
from ibkr_trader.market_hours import MarketHours
from ibkr_trader.models import ContractSpec, ExecutionMode
from ibkr_trader.risk import RiskLimits

MONDAY_1030 = datetime(2026, 11, 16, 10, 30, tzinfo=NY).astimezone(UTC)
CALL = ContractSpec(symbol="SPY", expiry="20261127", strike=600.0, right="C", con_id=42)


class Feed:
    """The quotes the gateway would deliver, one at a time."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.bid: float | None = 5.00
        self.ask: float | None = 5.10
        self.bid_size: float | None = 50
        self.ask_size: float | None = 50
        self.requests = 0
        self.fail = False

    async def __call__(self, contract: ContractSpec, timeout: float) -> Quote:
        self.requests += 1
        if self.fail:
            raise BrokerError("market data farm down")
        now = self.clock.now()
        return Quote(
            symbol=contract.symbol,
            con_id=contract.con_id,
            bid=self.bid,
            ask=self.ask,
            last=None,
            bid_size=self.bid_size,
            ask_size=self.ask_size,
            last_size=None,
            volume=None,
            close=None,
            last_trade_time=None,
            request_time=now,
            receipt_time=now,
            market_data_type=1,
        )


class Bench:
    def __init__(self, tmp: Path) -> None:
        self.clock = ManualClock(MONDAY_1030)
        self.journal = Journal.open(tmp / "journal.sqlite3", ExecutionMode.DRY_RUN, self.clock)
        self.journal.seed_simulated_cash(10_000.0)
        self.ajournal = AsyncJournal(self.journal)
        self.feed = Feed(self.clock)
        self.limits = RiskLimits()
        self.venue = DryRunVenue(
            self.feed,
            self.ajournal,
            lambda: self.limits,
            self.clock,
            market_hours=MarketHours(self.clock),
            reprice_seconds=0.01,
        )

    def buy(self, quantity: int = 1, limit: float = 5.05, ref: str = "T-1") -> OrderSpec:
        return OrderSpec("BUY", quantity, "LMT", limit, order_ref=ref, account="SIMULATED")


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    b = Bench(tmp_path)
    yield b
    await b.ajournal.aclose()


async def test_a_limit_rests_until_the_ask_touches_it_then_fills_at_the_ask(bench: Bench) -> None:
    order = await bench.venue.place(CALL, bench.buy(limit=5.05), 1.0)
    assert order.status == "Submitted" and order.snapshot().filled == 0
    with pytest.raises(BrokerTimeoutError):
        await order.wait_done(0.05)
    assert [o.order_ref for o in bench.venue.open_orders()] == ["T-1"]
    bench.feed.ask = 5.04  # through the limit: filled at the touch, not at the limit
    snap = await order.wait_done(1.0)
    assert snap.status == "Filled" and snap.filled == 1 and snap.avg_fill_price == 5.04
    assert snap.confirmed_done and bench.venue.open_orders() == []
    [fill] = bench.journal.fills()
    assert fill.simulated and fill.price == 5.04 and fill.client_order_id == "T-1"


async def test_a_short_displayed_size_fills_part_and_the_rest_keeps_working(bench: Bench) -> None:
    bench.feed.ask, bench.feed.ask_size = 5.00, 2
    order = await bench.venue.place(CALL, bench.buy(quantity=3), 1.0)
    snap = order.snapshot()
    assert (snap.status, snap.filled, snap.remaining) == ("Submitted", 2, 1)
    bench.feed.ask_size = 5
    await bench.venue.refresh(order, 1.0)
    snap = order.snapshot()
    assert (snap.status, snap.filled) == ("Filled", 3)
    # IB's per-order minimum over the order's fills: max(1.00, 0.65 x 2), then up to 0.65 x 3
    assert [f.commission for f in snap.fills] == [1.30, 0.65]
    [position] = bench.journal.simulated_positions()
    assert position.quantity == 3
    assert position.avg_price == pytest.approx(5.00 + 1.95 / 300)  # the commission is a cost
    assert bench.journal.simulated_cash() == pytest.approx(10_000 - 1_500 - 1.95)


async def test_commissions_come_from_the_limits_the_risk_check_uses(bench: Bench) -> None:
    bench.limits = RiskLimits(commission_per_contract=1.25, min_commission_per_order=2.0)
    bench.feed.ask = 5.00
    order = await bench.venue.place(CALL, bench.buy(quantity=2), 1.0)
    assert order.snapshot().commission == pytest.approx(2.50)


async def test_a_day_order_expires_at_the_close(bench: Bench) -> None:
    order = await bench.venue.place(CALL, bench.buy(limit=4.00), 1.0)
    bench.clock.set(datetime(2026, 11, 16, 15, 59, tzinfo=NY).astimezone(UTC))
    await bench.venue.refresh(order, 1.0)
    assert order.status == "Submitted"
    bench.clock.set(datetime(2026, 11, 16, 16, 0, tzinfo=NY).astimezone(UTC))
    bench.feed.ask = 3.00  # after the close nothing fills
    await bench.venue.refresh(order, 1.0)
    snap = order.snapshot()
    assert snap.status == "Cancelled" and snap.filled == 0
    assert "expired at the close" in (snap.last_error_text or "")
    assert bench.journal.fills() == []


async def test_cancel_ends_it_and_a_second_cancel_is_harmless(bench: Bench) -> None:
    order = await bench.venue.place(CALL, bench.buy(limit=4.00), 1.0)
    await bench.venue.cancel(order, 1.0)
    assert order.status == "Cancelled"
    await bench.venue.cancel(order, 1.0)
    bench.feed.ask = 3.00
    await bench.venue.refresh(order, 1.0)
    assert order.snapshot().filled == 0 and order.status == "Cancelled"


async def test_outside_regular_hours_it_waits_for_the_open(bench: Bench) -> None:
    bench.clock.set(datetime(2026, 11, 16, 8, 0, tzinfo=NY).astimezone(UTC))
    order = await bench.venue.place(CALL, bench.buy(limit=5.20), 1.0)
    assert order.status == "PreSubmitted" and order.snapshot().filled == 0
    assert bench.feed.requests == 0  # not even priced before the open
    bench.clock.set(datetime(2026, 11, 16, 9, 31, tzinfo=NY).astimezone(UTC))
    await bench.venue.refresh(order, 1.0)
    assert order.status == "Filled"


async def test_no_quote_no_fill_never_at_zero(bench: Bench) -> None:
    bench.feed.ask = None
    order = await bench.venue.place(CALL, OrderSpec("BUY", 1, "MKT", order_ref="M"), 1.0)
    assert order.status == "Submitted"
    bench.feed.fail = True
    await bench.venue.refresh(order, 1.0)  # the feed failing is logged, not raised
    bench.feed.fail, bench.feed.ask, bench.feed.ask_size = False, 5.10, 0  # no size shown
    await bench.venue.refresh(order, 1.0)
    assert order.status == "Filled" and order.snapshot().avg_fill_price == 5.10


async def test_a_restored_order_keeps_its_fills_and_session(bench: Bench) -> None:
    bench.feed.ask, bench.feed.ask_size = 5.00, 1
    first = await bench.venue.place(CALL, bench.buy(quantity=2), 1.0)
    fills = list(first.snapshot().fills)
    assert len(fills) == 1
    other = DryRunVenue(
        bench.feed,
        bench.ajournal,
        lambda: bench.limits,
        bench.clock,
        market_hours=MarketHours(bench.clock),
    )
    restored = other.restore(CALL, bench.buy(quantity=2), MONDAY_1030, fills)
    assert restored.remaining == 1 and restored.status == "Submitted"
    await other.refresh(restored, 1.0)
    assert restored.status == "Filled"
    # one exec id per fill of the order: the restored venue does not reuse the first one
    assert len({f.exec_id for f in bench.journal.fills()}) == 2
    assert [p.quantity for p in bench.journal.simulated_positions()] == [2]


async def test_an_order_of_another_venue_is_refused(bench: Bench) -> None:
    first = await bench.venue.place(CALL, bench.buy(limit=4.0), 1.0)
    other = DryRunVenue(bench.feed, bench.ajournal, lambda: bench.limits, bench.clock)
    with pytest.raises(BrokerError):
        await other.refresh(first, 1.0)
