"""Pacing: IB's historical-data rules and the 50 messages/second limit, kept by waiting.

Two small schedulers, both on an injectable monotonic clock and sleep so tests never sleep:

* :class:`MessageBudget` - a sliding window over every message we send: never more than
  ``max_messages`` (default 45) in any ``window`` seconds, order messages first. ib_async's
  own throttle is set one above it (``IB_ASYNC_MAX_REQUESTS``, 46) so that it only ever catches messages we do not
  count; both stay under IB's 50/s limit with room for arrival jitter, while a burst still
  sustains 45/s or more.
* :class:`HistoricalPacer` - IB's historical pacing rules (error 162): no identical request
  within 15 s, at most 5 requests for one contract/exchange/tick type within 2 s (6 break
  it), at most 60 requests in any 10 minutes; BID_ASK counts twice. A request that would
  break a rule waits for its slot; if the slot lies beyond the caller's deadline the call
  fails at once with :class:`BrokerTimeoutError` instead of sleeping into a timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from ibkr_trader.broker.exceptions import BrokerTimeoutError

MonotonicClock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

IB_MESSAGES_PER_SECOND: Final[int] = 50
DEFAULT_MESSAGE_BUDGET: Final[int] = 45
IB_ASYNC_MAX_REQUESTS: Final[int] = 46  # ib_async's Client.MaxRequests (its default is 45)
PRIORITY_ORDER: Final[int] = 0  # placeOrder / cancelOrder: closes must never wait behind data
PRIORITY_DATA: Final[int] = 1
IDENTICAL_REQUEST_INTERVAL: Final[float] = 15.0
SAME_CONTRACT_WINDOW: Final[float] = 2.0
SAME_CONTRACT_LIMIT: Final[int] = 5
GLOBAL_WINDOW: Final[float] = 600.0
GLOBAL_LIMIT: Final[int] = 60


class MessageBudget:
    """At most ``max_messages`` sends in any ``window`` seconds (sliding window), by waiting."""

    def __init__(
        self,
        max_messages: int = DEFAULT_MESSAGE_BUDGET,
        window: float = 1.0,
        *,
        clock: MonotonicClock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if max_messages < 1 or window <= 0:
            raise ValueError("max_messages must be >= 1 and window > 0")
        self.max_messages = max_messages
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._lock = asyncio.Lock()
        self._pending: Counter[int] = Counter()

    def _prune(self, now: float) -> None:
        while self._sent and now - self._sent[0] >= self.window:
            self._sent.popleft()

    def record(self, count: int = 1) -> None:
        """Count messages that had to go out at once (cancels during cleanup)."""
        now = self._clock()
        self._prune(now)
        for _ in range(count):
            self._sent.append(now)

    def available(self) -> int:
        """How many messages may go out right now."""
        self._prune(self._clock())
        return self.max_messages - len(self._sent)

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
                    room = len(self._sent) + count <= self.max_messages
                    outranked = any(p < priority and n > 0 for p, n in self._pending.items())
                    if room and not outranked:
                        for _ in range(count):
                            self._sent.append(now)
                        return
                    if room:  # a higher-priority sender is about to take this slot
                        wait = self.window / self.max_messages
                    else:
                        wait_until = self._sent[len(self._sent) + count - self.max_messages - 1]
                        wait = wait_until + self.window - now
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


def _window_max(entries: list[float], at: float, window: float) -> int:
    """The most entries in one half-open window of length ``window`` that contains ``at``."""
    starts = [at] + [e for e in entries if at - window < e <= at]
    best = 0
    for start in starts:
        count = sum(1 for e in entries if start <= e < start + window)
        best = max(best, count)
    return best


class HistoricalPacer:
    """Keeps historical requests inside IB's pacing rules by handing out send slots."""

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
        # (slot time, key) for every request handed a slot, including future slots.
        self._slots: list[tuple[float, HistoricalRequestKey]] = []

    def _prune(self, now: float) -> None:
        horizon = max(self.global_window, self.identical_interval, self.contract_window)
        cutoff = now - horizon - self.margin
        self._slots = [(t, k) for t, k in self._slots if t > cutoff]

    def _fits(self, at: float, key: HistoricalRequestKey) -> bool:
        gap = self.identical_interval + self.margin
        for t, k in self._slots:
            if k == key and abs(t - at) < gap:
                return False
        same_contract: list[float] = []
        everything: list[float] = []
        for t, k in self._slots:
            weight_times = [t] * k.weight
            everything.extend(weight_times)
            if k.contract_key == key.contract_key:
                same_contract.extend(weight_times)
        contract_window = self.contract_window + self.margin
        if _window_max(same_contract, at, contract_window) + key.weight > self.contract_limit:
            return False
        global_window = self.global_window + self.margin
        return _window_max(everything, at, global_window) + key.weight <= self.global_limit

    def next_slot(self, key: HistoricalRequestKey) -> float:
        """The earliest time (monotonic clock) at which ``key`` may be sent."""
        now = self._clock()
        self._prune(now)
        candidates = {now}
        for t, _ in self._slots:
            for window in (
                self.identical_interval,
                self.contract_window,
                self.global_window,
            ):
                candidate = t + window + self.margin + 1e-6
                if candidate > now:
                    candidates.add(candidate)
        for candidate in sorted(candidates):
            if self._fits(candidate, key):
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
        self._slots.append((slot, key))
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
