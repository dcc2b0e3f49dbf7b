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
    order_warning: tuple[int, str] | None = None
    correct_fills: bool = False
    errors_on: dict[int, tuple[int, str]] = field(default_factory=dict)
    no_bid: bool = False
    login_accounts: tuple[str, ...] | None = None
    no_marks: bool = False

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

    def warn_orders(self, code: int | None, text: str | None = None) -> None:
        """Send this order-level warning (e.g. 10349, 399, 404, 2109) for every new order
        right after it is accepted; the order keeps working and fills as usual (None: off).

        Real IB does this; ib_async 2.1 marks such an order Cancelled on codes outside its
        warning set (10349), or ValidationError on 399/404/2109, although it is live.
        """
        if code is None:
            self.order_warning = None
            return
        self.order_warning = (code, text if text is not None else warning_text(code))

    def correct_executions(self, on: bool = True) -> None:
        """Follow every fill with IB's correction of it: the same execution re-sent with the
        exec id revision ``.02`` instead of ``.01`` (same base; the later revision replaces
        the earlier one), and its commission report. The book counts the fill once."""
        self.correct_fills = on

    def error_every(self, msg_id: int, code: int, text: str = "") -> None:
        """Answer EVERY request with this message id with an error (e.g. reqMktData with 354:
        a total loss of market data) until cleared."""
        self.errors_on[msg_id] = (code, text)

    def missing_bid(self, on: bool = True) -> None:
        """Quote options with no bid (IB's -1) while the ask stays: nobody buys them."""
        self.no_bid = on

    def unmarked_portfolio(self, on: bool = True) -> None:
        """Portfolio rows with marketPrice 0 (IB's answer for a contract it cannot price)."""
        self.no_marks = on

    def log_in_as(self, *accounts: str) -> None:
        """The managed accounts the NEXT handshakes report (a gateway logged in to another
        account after a restart, e.g. a live-style ``U...``); none: the configured ones."""
        self.login_accounts = tuple(accounts) or None

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
        self.order_warning = None
        self.correct_fills = False
        self.errors_on.clear()
        self.no_bid = False
        self.login_accounts = None
        self.no_marks = False

    # -- used by the server and the state ----------------------------------------------------

    def take_error(self, msg_id: int) -> tuple[int, str] | None:
        """The one-shot error for this message id, consumed (or the standing one)."""
        return self.next_errors.pop(msg_id, None) or self.errors_on.get(msg_id)

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


# order-level warnings real IB sends on live orders (the order keeps working)
ORDER_WARNING_TEXT = {
    10349: "Order TIF was set to DAY based on order preset.",
    399: (
        "Order Message:\nWarning: Your order will not be placed at the exchange until "
        "the market opens."
    ),
    404: "Order held while securities are located.",
    2109: (
        "Order Event Warning:Attribute 'Outside Regular Trading Hours' is ignored based on "
        "the order type and destination. PlaceOrder is now being processed."
    ),
}


def warning_text(code: int) -> str:
    """IB's text for an order-level warning code (a generic one for others)."""
    return ORDER_WARNING_TEXT.get(code, f"Order warning {code}")


def parse_fault(spec: str) -> FaultSpec:
    """``delay:20=2.0``, ``drop_after:50``, ``drop_on:3``, ``refuse_handshake``,
    ``error_next:20=162``, ``reject_orders``, ``never_fill``, ``partial_fill:0.5``,
    ``stale_quotes:600``, ``missing_bid_ask``, ``warn_orders:10349``,
    ``correct_executions``."""
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
        if name == "warn_orders" and arg:
            return FaultSpec(name, (int(arg),))
        if name in ("partial_fill", "stale_quotes") and arg:
            return FaultSpec(name, (float(arg),))
        if name == "reject_orders":
            return FaultSpec(name, (arg or "Simulated rejection",))
        if (
            name in ("refuse_handshake", "never_fill", "missing_bid_ask", "correct_executions")
            and not arg
        ):
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
        elif self.name == "warn_orders":
            faults.warn_orders(int(a[0]))
        elif self.name == "correct_executions":
            faults.correct_executions()
