"""Fault injection for the simulated gateway, scriptable from tests and the command line."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FaultInjector:
    """What the simulated gateway should get wrong, until :meth:`clear`.

    Connection faults (delay, drop, refuse) are applied by the server; request, order and
    quote faults by the gateway state. Every setter returns None; read the public attributes.
    """

    delays: dict[int, float] = field(default_factory=dict)
    drop_after_messages: int | None = None
    drop_on_ids: set[int] = field(default_factory=set)
    refuse: bool = False
    next_errors: dict[int, tuple[int, str]] = field(default_factory=dict)
    reject_reason: str | None = None
    no_fills: bool = False
    partial_fraction: float | None = None
    stale_age: float | None = None
    no_bid_ask: bool = False

    def delay(self, msg_id: int, seconds: float) -> None:
        """Delay the answers to every incoming request with this message id."""
        if seconds < 0:
            raise ValueError("delay must be >= 0")
        if seconds == 0:
            self.delays.pop(msg_id, None)
        else:
            self.delays[msg_id] = seconds

    def drop_after(self, n_messages: int) -> None:
        """Close every client's socket after ``n_messages`` more client messages in total."""
        if n_messages < 0:
            raise ValueError("n_messages must be >= 0")
        self.drop_after_messages = n_messages

    def drop_on(self, msg_id: int) -> None:
        """Close the socket when a request with this message id arrives."""
        self.drop_on_ids.add(msg_id)

    def refuse_handshake(self, on: bool = True) -> None:
        """Close the socket during the handshake instead of answering it."""
        self.refuse = on

    def error_next(self, msg_id: int, code: int, text: str = "") -> None:
        """Answer the next request with this message id with an error instead."""
        self.next_errors[msg_id] = (code, text)

    def reject_orders(self, reason: str | None = "Simulated rejection") -> None:
        """Reject every new order with error 201 (None switches it off)."""
        self.reject_reason = reason

    def never_fill(self, on: bool = True) -> None:
        """Accept orders but never fill them."""
        self.no_fills = on

    def partial_fill(self, fraction: float | None) -> None:
        """Fill only this fraction of each order and leave the rest working (None: off)."""
        if fraction is not None and not 0.0 < fraction < 1.0:
            raise ValueError("fraction must be in (0, 1)")
        self.partial_fraction = fraction

    def stale_quotes(self, age_seconds: float | None) -> None:
        """Report last-trade timestamps this many seconds old (None: off)."""
        self.stale_age = age_seconds

    def missing_bid_ask(self, on: bool = True) -> None:
        """Quote no bid and no ask (IB's -1 price with size 0)."""
        self.no_bid_ask = on

    def clear(self) -> None:
        """Switch every fault off."""
        self.delays.clear()
        self.drop_after_messages = None
        self.drop_on_ids.clear()
        self.refuse = False
        self.next_errors.clear()
        self.reject_reason = None
        self.no_fills = False
        self.partial_fraction = None
        self.stale_age = None
        self.no_bid_ask = False

    # -- used by the server and the state ----------------------------------------------------

    def take_error(self, msg_id: int) -> tuple[int, str] | None:
        """The one-shot error for this message id, consumed."""
        return self.next_errors.pop(msg_id, None)

    def count_message(self) -> bool:
        """Count one client message; True when the drop_after budget is exhausted."""
        if self.drop_after_messages is None:
            return False
        if self.drop_after_messages <= 0:
            self.drop_after_messages = None
            return True
        self.drop_after_messages -= 1
        return False

    def apply(self, spec: str) -> None:
        """Apply one command-line fault spec (see :func:`parse_fault`)."""
        parse_fault(spec)(self)


_DEFAULT_ERROR_TEXT = {
    162: "Historical Market Data Service error message:Historical data request pacing violation",
    200: "No security definition has been found for the request",
    354: "Requested market data is not subscribed.",
    10089: "Requested market data requires additional subscription for API.",
}


def parse_fault(spec: str) -> FaultSpec:
    """``delay:20=2.0``, ``drop_after:50``, ``drop_on:3``, ``refuse_handshake``,
    ``error_next:20=162``, ``reject_orders``, ``never_fill``, ``partial_fill:0.5``,
    ``stale_quotes:600``, ``missing_bid_ask``."""
    name, _, arg = spec.strip().partition(":")
    key, _, value = arg.partition("=")
    try:
        if name == "delay" and value:
            return FaultSpec(name, (int(key), float(value)))
        if name in ("drop_after", "drop_on") and arg:
            return FaultSpec(name, (int(arg),))
        if name == "error_next" and value:
            code = int(value)
            return FaultSpec(
                name, (int(key), code, _DEFAULT_ERROR_TEXT.get(code, "Simulated error"))
            )
        if name in ("partial_fill", "stale_quotes") and arg:
            return FaultSpec(name, (float(arg),))
        if name == "reject_orders":
            return FaultSpec(name, (arg or "Simulated rejection",))
        if name in ("refuse_handshake", "never_fill", "missing_bid_ask") and not arg:
            return FaultSpec(name, ())
    except ValueError as exc:
        raise ValueError(f"bad fault spec {spec!r}") from exc
    raise ValueError(f"bad fault spec {spec!r}")


@dataclass(frozen=True)
class FaultSpec:
    """A parsed command-line fault: call it on an injector to apply it."""

    name: str
    args: tuple[int | float | str, ...]

    def __call__(self, faults: FaultInjector) -> None:
        a = self.args
        if self.name == "delay":
            faults.delay(int(a[0]), float(a[1]))
        elif self.name == "drop_after":
            faults.drop_after(int(a[0]))
        elif self.name == "drop_on":
            faults.drop_on(int(a[0]))
        elif self.name == "error_next":
            faults.error_next(int(a[0]), int(a[1]), str(a[2]))
        elif self.name == "partial_fill":
            faults.partial_fill(float(a[0]))
        elif self.name == "stale_quotes":
            faults.stale_quotes(float(a[0]))
        elif self.name == "reject_orders":
            faults.reject_orders(str(a[0]))
        elif self.name == "refuse_handshake":
            faults.refuse_handshake()
        elif self.name == "never_fill":
            faults.never_fill()
        elif self.name == "missing_bid_ask":
            faults.missing_bid_ask()
