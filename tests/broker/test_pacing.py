"""MessageBudget and HistoricalPacer on a fake clock (no real sleeping)."""

from __future__ import annotations

import pytest

from ibkr_trader.broker.exceptions import BrokerTimeoutError
from ibkr_trader.broker.pacing import HistoricalPacer, HistoricalRequestKey, MessageBudget


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _key(con_id: int = 1, duration: str = "3600 S", what: str = "TRADES") -> HistoricalRequestKey:
    return HistoricalRequestKey(
        con_id=con_id, exchange="SMART", what_to_show=what, bar_size="1 min", duration=duration
    )


async def test_budget_lets_a_burst_through_then_waits_for_the_window() -> None:
    clock = FakeClock()
    budget = MessageBudget(40, 1.0, clock=clock, sleep=clock.sleep)
    sent_at = []
    for _ in range(100):
        await budget.acquire()
        sent_at.append(clock.now)
    for start in sent_at:
        in_window = [t for t in sent_at if start <= t < start + 1.0]
        assert len(in_window) <= 40
    assert clock.sleeps  # the burst had to wait


async def test_budget_refuses_a_wait_beyond_the_deadline() -> None:
    clock = FakeClock()
    budget = MessageBudget(2, 1.0, clock=clock, sleep=clock.sleep)
    await budget.acquire(2)
    with pytest.raises(BrokerTimeoutError):
        await budget.acquire(1, deadline=clock.now + 0.5)


async def test_identical_historical_request_waits_fifteen_seconds() -> None:
    clock = FakeClock()
    pacer = HistoricalPacer(clock=clock, sleep=clock.sleep, margin=0.0)
    assert await pacer.acquire(_key()) == 0.0
    waited = await pacer.acquire(_key())
    assert waited == pytest.approx(15.0, abs=0.01)


async def test_sixth_request_for_one_contract_within_two_seconds_waits() -> None:
    clock = FakeClock()
    pacer = HistoricalPacer(clock=clock, sleep=clock.sleep, margin=0.0)
    for i in range(5):
        assert await pacer.acquire(_key(duration=f"{60 * (i + 1)} S")) == 0.0
    waited = await pacer.acquire(_key(duration="3000 S"))
    assert waited == pytest.approx(2.0, abs=0.01)


async def test_other_contracts_are_not_held_by_the_per_contract_rule() -> None:
    clock = FakeClock()
    pacer = HistoricalPacer(clock=clock, sleep=clock.sleep, margin=0.0)
    for i in range(5):
        await pacer.acquire(_key(duration=f"{60 * (i + 1)} S"))
    assert await pacer.acquire(_key(con_id=2)) == 0.0


async def test_bid_ask_counts_twice() -> None:
    clock = FakeClock()
    pacer = HistoricalPacer(clock=clock, sleep=clock.sleep, margin=0.0)
    for i in range(2):
        await pacer.acquire(_key(duration=f"{60 * (i + 1)} S", what="BID_ASK"))
    assert pacer.wait_for(_key(duration="600 S", what="BID_ASK")) == pytest.approx(2.0, abs=0.01)


async def test_sixty_first_request_in_ten_minutes_waits_for_the_window() -> None:
    clock = FakeClock()
    pacer = HistoricalPacer(clock=clock, sleep=clock.sleep, margin=0.0)
    sent = []
    for i in range(61):
        await pacer.acquire(_key(con_id=i))
        sent.append(clock.now)
    assert sent[59] == sent[0]
    assert sent[60] - sent[0] == pytest.approx(600.0, abs=0.01)


async def test_pacer_fails_at_once_when_the_slot_is_beyond_the_deadline() -> None:
    clock = FakeClock()
    pacer = HistoricalPacer(clock=clock, sleep=clock.sleep)
    await pacer.acquire(_key())
    with pytest.raises(BrokerTimeoutError):
        await pacer.acquire(_key(), deadline=clock.now + 5.0)
    assert clock.sleeps == []


async def test_an_order_message_takes_a_free_slot_before_a_waiting_data_request() -> None:
    import asyncio

    from ibkr_trader.broker.pacing import PRIORITY_DATA, PRIORITY_ORDER

    clock = FakeClock()
    gate = asyncio.Event()  # time stands still until both senders are waiting

    async def yielding_sleep(seconds: float) -> None:
        clock.sleeps.append(seconds)
        await gate.wait()
        await asyncio.sleep(0)  # let the other sender run, as a real sleep would
        clock.now += seconds

    budget = MessageBudget(2, 1.0, clock=clock, sleep=yielding_sleep)
    await budget.acquire(2)  # the window is full
    order: list[str] = []

    async def send(name: str, priority: int) -> None:
        await budget.acquire(1, priority=priority)
        order.append(name)

    data = asyncio.create_task(send("data", PRIORITY_DATA))
    await asyncio.sleep(0)  # the data request is waiting first
    close = asyncio.create_task(send("close", PRIORITY_ORDER))
    await asyncio.sleep(0)  # ... and then the close
    gate.set()
    await asyncio.gather(data, close)
    assert order == ["close", "data"]


async def test_budget_keeps_ibs_fifty_in_every_receiver_window() -> None:
    clock = FakeClock()
    budget = MessageBudget(47, 1.0, clock=clock, sleep=clock.sleep)
    sent_at = []
    for _ in range(300):
        await budget.acquire()
        sent_at.append(clock.now)
    assert sent_at[46] == sent_at[0]  # a burst goes out at once
    for start in sent_at:
        assert sum(1 for t in sent_at if start <= t < start + 1.0) <= 47
        assert sum(1 for t in sent_at if start <= t < start + 1.08) <= 50
    first_window_end = sent_at[0] + 1.0
    after_first = [t for t in sent_at if t >= first_window_end]
    rate = len(after_first) / (after_first[-1] - first_window_end)
    assert rate >= 45.0  # sustained, once the first window is used


async def test_budget_without_the_receiver_window_is_one_sliding_window() -> None:
    clock = FakeClock()
    budget = MessageBudget(10, 1.0, clock=clock, sleep=clock.sleep, outer_max=None)
    for _ in range(10):
        await budget.acquire()
    assert budget.available() == 0
    budget.record(1)
    clock.now += 1.0
    assert budget.available() == 10


async def test_pacer_slots_keep_every_rule_under_a_random_load() -> None:
    import random

    rng = random.Random(18)
    clock = FakeClock()
    pacer = HistoricalPacer(clock=clock, sleep=clock.sleep, margin=0.0)
    handed: list[tuple[float, HistoricalRequestKey]] = []
    for _ in range(150):
        key = _key(con_id=rng.randint(1, 4), duration=rng.choice(["60 S", "600 S", "3600 S"]))
        slot = pacer.next_slot(key)
        handed.append((slot, key))
        pacer._identical.setdefault(key, type(pacer._global)()).add(slot, 1)
        pacer._contract.setdefault(key.contract_key, type(pacer._global)()).add(slot, 1)
        pacer._global.add(slot, 1)
        clock.now += rng.random() * 0.5
    for t, key in handed:
        same = [u for u, k in handed if k == key and abs(u - t) < 15.0]
        assert len(same) == 1
        contract = [u for u, k in handed if k.contract_key == key.contract_key]
        assert sum(1 for u in contract if t <= u < t + 2.0) <= 5
        assert sum(1 for u, _k in handed if t <= u < t + 600.0) <= 60
