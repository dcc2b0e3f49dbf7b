"""Pacing: IB's historical-data rules and the 50 messages/second limit, kept by waiting.

Two small schedulers, both on an injectable monotonic clock and sleep so tests never sleep:

* :class:`MessageBudget` - a sliding window over every message we send: never more than
  ``max_messages`` (default 47) in any ``window`` seconds and never more than IB's 50 in any
  1.08 s (what a receiver counts when arrivals bunch by up to 80 ms), order messages first.
  ib_async's own throttle is set above it (``IB_ASYNC_MAX_REQUESTS``, 49) so that it only
  ever catches messages we do not count (it would otherwise queue ours and release them in a
  bunch); a burst still goes out at once, sustained the budget gives 46 messages a second.
* :class:`HistoricalPacer` - IB's historical pacing rules (error 162): no identical request
  within 15 s, at most 5 requests for one contract/exchange/tick type within 2 s (6 break
  it), at most 60 requests in any 10 minutes; BID_ASK counts twice. A request that would
  break a rule waits for its slot; if the slot lies beyond the caller's deadline the call
  fails at once with :class:`BrokerTimeoutError` instead of sleeping into a timeout.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Final, TypeVar

from ibkr_trader.broker.exceptions import BrokerTimeoutError

MonotonicClock = Callable[[], float]
K = TypeVar("K")
Sleep = Callable[[float], Awaitable[None]]

IB_MESSAGES_PER_SECOND: Final[int] = 50
DEFAULT_MESSAGE_BUDGET: Final[int] = 47
RECEIVER_WINDOW: Final[float] = 1.08  # IB's 50 in any 1.08 s: 80 ms of arrival jitter
IB_ASYNC_MAX_REQUESTS: Final[int] = 49  # ib_async's Client.MaxRequests (its default is 45)
PRIORITY_ORDER: Final[int] = 0  # placeOrder / cancelOrder: closes must never wait behind data
PRIORITY_DATA: Final[int] = 1
IDENTICAL_REQUEST_INTERVAL: Final[float] = 15.0
SAME_CONTRACT_WINDOW: Final[float] = 2.0
SAME_CONTRACT_LIMIT: Final[int] = 5
GLOBAL_WINDOW: Final[float] = 600.0
GLOBAL_LIMIT: Final[int] = 60


class MessageBudget:
    """At most ``max_messages`` sends in any ``window`` seconds (sliding window), by waiting,
    and at most ``outer_max`` in any ``outer_window`` seconds (default IB's 50 in 1.08 s).

    The second window is what a receiver on another clock counts: messages that leave within
    1.08 s may arrive within one second when the first are delayed by up to 80 ms, so IB never
    counts more than 50 in one second. A burst (a close_all) still goes out at once (up to
    ``max_messages``); sustained, the budget gives 50 / 1.08 = 46 messages a second."""

    def __init__(
        self,
        max_messages: int = DEFAULT_MESSAGE_BUDGET,
        window: float = 1.0,
        *,
        clock: MonotonicClock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        outer_max: int | None = IB_MESSAGES_PER_SECOND,
        outer_window: float = RECEIVER_WINDOW,
    ) -> None:
        if max_messages < 1 or window <= 0:
            raise ValueError("max_messages must be >= 1 and window > 0")
        self.max_messages = max_messages
        self.window = window
        rules = [(max_messages, window)]
        if outer_max is not None and outer_window > window and outer_max >= max_messages:
            rules.append((outer_max, outer_window))
        self._rules = tuple(rules)
        self._horizon = max(w for _n, w in self._rules)
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._lock = asyncio.Lock()
        self._pending: Counter[int] = Counter()

    def _prune(self, now: float) -> None:
        while self._sent and now - self._sent[0] >= self._horizon:
            self._sent.popleft()

    def _in_window(self, now: float, window: float) -> int:
        sent = self._sent
        count = 0
        for index in range(len(sent) - 1, -1, -1):
            if now - sent[index] >= window:
                break
            count += 1
        return count

    def _wait(self, now: float, count: int) -> float:
        """Seconds until ``count`` more messages fit every rule (0: now)."""
        wait = 0.0
        for limit, window in self._rules:
            inside = self._in_window(now, window)
            if inside + count <= limit:
                continue
            # the oldest message that has to leave the window first
            first = len(self._sent) - inside
            oldest = self._sent[first + inside + count - limit - 1]
            wait = max(wait, oldest + window - now)
        return wait

    def record(self, count: int = 1) -> None:
        """Count messages that had to go out at once (cancels during cleanup)."""
        now = self._clock()
        self._prune(now)
        for _ in range(count):
            self._sent.append(now)

    def available(self) -> int:
        """How many messages may go out right now."""
        now = self._clock()
        self._prune(now)
        return min(limit - self._in_window(now, window) for limit, window in self._rules)

    async def acquire(
        self, count: int = 1, deadline: float | None = None, priority: int = PRIORITY_DATA
    ) -> None:
        """Wait until ``count`` messages may be sent, then record them as sent.

        ``deadline`` is on the same monotonic clock; passing it raises BrokerTimeoutError.
        A lower ``priority`` goes first: while an order message (``PRIORITY_ORDER``) waits,
        no data request takes a free slot, so closes go out before market-data refreshes.
        """
        if count > self.max_messages:
            raise ValueError(f"{count} messages exceed the budget of {self.max_messages}")
        self._pending[priority] += 1
        try:
            while True:
                async with self._lock:
                    now = self._clock()
                    self._prune(now)
                    wait = self._wait(now, count)
                    outranked = any(p < priority and n > 0 for p, n in self._pending.items())
                    if wait <= 0 and not outranked:
                        for _ in range(count):
                            self._sent.append(now)
                        return
                    if wait <= 0:  # a higher-priority sender is about to take this slot
                        wait = self.window / self.max_messages
                    if deadline is not None and now + wait > deadline:
                        raise BrokerTimeoutError(
                            f"message budget ({self.max_messages}/{self.window:g}s) has no room "
                            "before the deadline"
                        )
                await self._sleep(max(wait, 0.0))
        finally:
            self._pending[priority] -= 1


@dataclass(frozen=True, slots=True)
class HistoricalRequestKey:
    """What IB compares when it paces historical requests."""

    con_id: int
    exchange: str
    what_to_show: str
    bar_size: str
    duration: str
    end: str = ""
    use_rth: bool = True

    @property
    def contract_key(self) -> tuple[int, str, str]:
        return (self.con_id, self.exchange, self.what_to_show)

    @property
    def weight(self) -> int:
        return 2 if self.what_to_show.upper() == "BID_ASK" else 1


class _Times:
    """Sorted send times (a weighted request appears ``weight`` times)."""

    __slots__ = ("t",)

    def __init__(self) -> None:
        self.t: list[float] = []

    def prune(self, cutoff: float) -> None:
        index = bisect.bisect_right(self.t, cutoff)
        if index:
            del self.t[:index]

    def add(self, at: float, weight: int) -> None:
        for _ in range(weight):
            bisect.insort(self.t, at)

    def fits(self, at: float, weight: int, limit: int, window: float) -> bool:
        """True if ``weight`` more entries at ``at`` leave at most ``limit`` entries in every
        half-open window of length ``window``. Looks only at entries within one window of
        ``at``: O(limit), whatever the number of kept entries."""
        t = self.t
        if len(t) + weight <= limit:
            return True
        near = t[bisect.bisect_right(t, at - window) : bisect.bisect_left(t, at + window)]
        if len(near) + weight <= limit:
            return True
        merged = sorted([*near, *([at] * weight)])
        return all(merged[i + limit] - merged[i] >= window for i in range(len(merged) - limit))

    def candidates(self, after: float, shift: float) -> Iterator[float]:
        """``entry + shift`` for every entry, ascending, those beyond ``after`` only."""
        t = self.t
        for index in range(bisect.bisect_right(t, after - shift), len(t)):
            yield t[index] + shift


def _sweep(table: dict[K, _Times], cutoff: float) -> None:
    for k in list(table):
        table[k].prune(cutoff)
        if not table[k].t:
            del table[k]


class HistoricalPacer:
    """Keeps historical requests inside IB's pacing rules by handing out send slots.

    O(limit) per request, whatever the number of kept slots: each rule keeps its own sorted
    send times (per identical request, per contract, global) and a slot is checked against
    the entries within one window of it only."""

    def __init__(
        self,
        *,
        clock: MonotonicClock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        identical_interval: float = IDENTICAL_REQUEST_INTERVAL,
        contract_window: float = SAME_CONTRACT_WINDOW,
        contract_limit: int = SAME_CONTRACT_LIMIT,
        global_window: float = GLOBAL_WINDOW,
        global_limit: int = GLOBAL_LIMIT,
        margin: float = 0.05,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self.identical_interval = identical_interval
        self.contract_window = contract_window
        self.contract_limit = contract_limit
        self.global_window = global_window
        self.global_limit = global_limit
        self.margin = margin
        self._identical: dict[HistoricalRequestKey, _Times] = {}
        self._contract: dict[tuple[int, str, str], _Times] = {}
        self._global = _Times()
        self._handed_out = 0

    def _prune(self, now: float) -> None:
        self._global.prune(now - self.global_window - self.margin)
        self._handed_out += 1
        if self._handed_out % 256 == 0:  # amortized sweep of keys not asked about again
            _sweep(self._identical, now - self.identical_interval - self.margin)
            _sweep(self._contract, now - self.contract_window - self.margin)

    def _fits(self, at: float, key: HistoricalRequestKey) -> bool:
        gap = self.identical_interval + self.margin
        same = self._identical.get(key)
        if same is not None:
            t = same.t
            index = bisect.bisect_right(t, at - gap)
            if index < len(t) and t[index] < at + gap:
                return False
        contract = self._contract.get(key.contract_key)
        if contract is not None and not contract.fits(
            at, key.weight, self.contract_limit, self.contract_window + self.margin
        ):
            return False
        return self._global.fits(
            at, key.weight, self.global_limit, self.global_window + self.margin
        )

    def next_slot(self, key: HistoricalRequestKey) -> float:
        """The earliest time (monotonic clock) at which ``key`` may be sent."""
        now = self._clock()
        self._prune(now)
        same = self._identical.get(key)
        contract = self._contract.get(key.contract_key)
        if same is not None:
            same.prune(now - self.identical_interval - self.margin)
        if contract is not None:
            contract.prune(now - self.contract_window - self.margin)
        if self._fits(now, key):
            return now
        extra = self.margin + 1e-6
        streams = [self._global.candidates(now, self.global_window + extra)]
        if same is not None:
            streams.append(same.candidates(now, self.identical_interval + extra))
        if contract is not None:
            streams.append(contract.candidates(now, self.contract_window + extra))
        for candidate in heapq.merge(*streams):
            if candidate > now and self._fits(candidate, key):
                return candidate
        raise AssertionError("unreachable: a slot after every window always fits")

    def now(self) -> float:
        """The pacer's monotonic clock (deadlines passed to :meth:`acquire` use it)."""
        return self._clock()

    def wait_for(self, key: HistoricalRequestKey) -> float:
        """Seconds ``key`` would wait if requested now (without reserving)."""
        return max(self.next_slot(key) - self._clock(), 0.0)

    async def acquire(self, key: HistoricalRequestKey, deadline: float | None = None) -> float:
        """Reserve the earliest slot for ``key`` and sleep until it; returns the wait."""
        slot = self.next_slot(key)
        if deadline is not None and slot > deadline:
            wait = slot - self._clock()
            raise BrokerTimeoutError(
                f"historical pacing needs a {wait:.1f}s wait, beyond the call's timeout"
            )
        self._identical.setdefault(key, _Times()).add(slot, 1)
        self._contract.setdefault(key.contract_key, _Times()).add(slot, key.weight)
        self._global.add(slot, key.weight)
        wait = slot - self._clock()
        if wait > 0:
            await self._sleep(wait)
        return max(wait, 0.0)


__all__ = [
    "DEFAULT_MESSAGE_BUDGET",
    "IB_ASYNC_MAX_REQUESTS",
    "IB_MESSAGES_PER_SECOND",
    "PRIORITY_DATA",
    "PRIORITY_ORDER",
    "HistoricalPacer",
    "HistoricalRequestKey",
    "MessageBudget",
]
