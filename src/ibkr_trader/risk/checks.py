"""The risk checks: small pure functions, each returning a :class:`CheckResult`.

Every check takes the request and a frozen :class:`RiskSnapshot` (everything the manager knows
at decision time) and returns its name, whether it passed, the value it saw, the limit and, when
it failed, a reason a person can read. :func:`run_checks` runs all of them (a check that raises
counts as failed: the system fails closed) so that every reason is reported, not only the first.

Entry checks (sizing, affordability, PDT, governors, data gate, allowlist) do not apply to closing
orders — reducing risk must always be possible — and are reported as skipped for them. Closing
orders are instead checked against the synced positions: they must reduce an existing position and
never flip or enlarge it.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, Final

from ibkr_trader.models import CheckResult, TradeRequest, TradingState
from ibkr_trader.risk.config import RiskLimits

PDT_WINDOW_BUSINESS_DAYS: Final = 5
SKIPPED_FOR_CLOSE: Final = "skipped: closing order"
NOT_A_CLOSE: Final = "n/a: opening order"


@dataclass(frozen=True, slots=True)
class RiskSnapshot:
    """What the manager knows when it decides (the checks read nothing else)."""

    limits: RiskLimits
    today: date  # New York date
    trading_state: TradingState = TradingState.ACTIVE
    state_cause: str = ""
    equity: float | None = None
    available_funds: float | None = None
    positions: Mapping[str, int] = field(default_factory=dict)  # contract key -> signed quantity
    pending_close: Mapping[str, int] = field(default_factory=dict)  # closes working, per key
    # the exposure ledger's working entries: signed contracts they may still add, per key
    working_entries: Mapping[str, int] = field(default_factory=dict)
    working_entry_cost: float = 0.0  # premium working buy entries may still commit
    same_day_exits_reserved: int = 0  # PDT: day trades today's open positions may need
    committed_premium: float = 0.0  # premium tied up in open long positions
    day_trades_used: int = 0  # journal count over the PDT window
    ib_day_trades_remaining: int | None = None  # None: not reported
    start_of_day_equity: float | None = None
    week_high: float | None = None


# ---------------------------------------------------------------- small typed helpers


def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """A finite int or float (bool excluded)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except (OverflowError, ValueError):
        return False


def as_real(value: Any) -> float | None:
    """The value as a float if it is a finite real number (bool excluded), else None."""
    return float(value) if is_real(value) else None


def is_closing(request: TradeRequest) -> bool:
    """Only an explicit ``True`` makes a closing order; anything else is judged as an entry."""
    return request.is_closing is True


def valid_quantity(request: TradeRequest) -> int | None:
    qty = request.quantity
    return int(qty) if is_int(qty) and int(qty) > 0 else None


def signed_quantity(request: TradeRequest) -> int | None:
    qty = valid_quantity(request)
    if qty is None or request.action not in ("BUY", "SELL"):
        return None
    return qty if request.action == "BUY" else -qty


def contract_key(request: TradeRequest) -> str | None:
    try:
        return request.contract_key
    except (TypeError, ValueError):
        return None


def entry_unit_price(request: TradeRequest) -> float | None:
    """The per-unit premium an entry may pay: its limit, or for MKT the worse of reference/ask."""
    if request.order_type == "LMT":
        price = as_real(request.limit_price)
        return price if price is not None and price > 0 else None
    if request.order_type == "MKT":
        candidates = [request.reference_price]
        if request.quote is not None:
            candidates.append(request.quote.ask)
        prices = [p for p in map(as_real, candidates) if p is not None and p > 0]
        return max(prices) if prices else None
    return None


def premium_at_risk(request: TradeRequest) -> float | None:
    """Premium an entry puts at risk: unit price x contracts x multiplier."""
    price = entry_unit_price(request)
    qty = valid_quantity(request)
    mult = request.multiplier
    if price is None or qty is None or not is_int(mult) or int(mult) <= 0:
        return None
    return price * qty * int(mult)


def estimated_commission(request: TradeRequest, limits: RiskLimits) -> float | None:
    qty = valid_quantity(request)
    return None if qty is None else limits.estimated_commission(qty)


def order_cost(request: TradeRequest, limits: RiskLimits) -> float | None:
    premium = premium_at_risk(request)
    commission = estimated_commission(request, limits)
    return None if premium is None or commission is None else premium + commission


def risk_fraction(request: TradeRequest, limits: RiskLimits) -> float | None:
    """min(the strategy's risk_per_trade, the configured cap), or None if the context is bad."""
    rpt = as_real(request.risk_per_trade)
    if rpt is None or not 0 < rpt <= 1:
        return None
    return min(rpt, limits.max_risk_per_trade_pct)


def daily_pnl_pct(snap: RiskSnapshot) -> float | None:
    sod = snap.start_of_day_equity
    if snap.equity is None or sod is None or sod <= 0:
        return None
    return (snap.equity - sod) / sod


def drawdown_pct(snap: RiskSnapshot) -> float | None:
    high = snap.week_high
    if snap.equity is None or high is None or high <= 0:
        return None
    return max(0.0, (high - snap.equity) / high)


def pdt_applies(snap: RiskSnapshot) -> bool:
    return snap.equity is None or snap.equity < snap.limits.pdt_equity_threshold


def day_trades_remaining(snap: RiskSnapshot) -> int:
    """The stricter of our own count and IB's DayTradesRemaining (when IB reports it)."""
    local = max(0, snap.limits.pdt_max_day_trades - snap.day_trades_used)
    ib = snap.ib_day_trades_remaining
    return local if ib is None or ib < 0 else min(local, ib)


def parse_expiry(expiry: Any) -> date | None:
    if not isinstance(expiry, str) or len(expiry) != 8 or not expiry.isdigit():
        return None
    try:
        return datetime.strptime(expiry, "%Y%m%d").date()
    except ValueError:
        return None


# ---------------------------------------------------------------- PDT window


@lru_cache(maxsize=1)
def _xnys() -> Any:
    try:
        import exchange_calendars

        with warnings.catch_warnings():  # pandas deprecation noise inside the library
            warnings.simplefilter("ignore")
            return exchange_calendars.get_calendar("XNYS")
    except Exception:  # pragma: no cover - the library is a declared dependency
        return None


def pdt_window_start(today: date, business_days: int = PDT_WINDOW_BUSINESS_DAYS) -> date:
    """First day of the rolling window of ``business_days`` NYSE sessions ending on ``today``.

    Uses the XNYS calendar (holidays skipped) inside its range and plain weekdays outside it;
    counting a holiday as a business day would shorten the window, so the calendar is stricter.
    """
    cal = _xnys()
    if cal is not None:
        try:
            day_text = today.isoformat()
            if cal.first_session.date() <= today <= cal.last_session.date():
                anchor = (
                    day_text
                    if cal.is_session(day_text)
                    else cal.date_to_session(day_text, "previous")
                )
                sessions = cal.sessions_window(anchor, -business_days)
                return date.fromisoformat(str(sessions[0].date()))
        except Exception:  # pragma: no cover - fall back to weekdays
            pass
    day = today
    counted = 0
    while True:
        if day.weekday() < 5:
            counted += 1
            if counted == business_days:
                return day
        day -= timedelta(days=1)


# ---------------------------------------------------------------- the checks

Check = Callable[[TradeRequest, RiskSnapshot], CheckResult]


def _ok(name: str, value: Any = None, limit: Any = None) -> CheckResult:
    return CheckResult(name=name, passed=True, value=value, limit=limit)


def _fail(name: str, reason: str, value: Any = None, limit: Any = None) -> CheckResult:
    return CheckResult(name=name, passed=False, value=value, limit=limit, reason=reason)


def check_trading_state(request: TradeRequest, snap: RiskSnapshot) -> CheckResult:
    name = "trading_state"
    state = snap.trading_state
    cause = f" ({snap.state_cause})" if snap.state_cause else ""
    if state is TradingState.HALTED:
        return _fail(name, f"trading is HALTED{cause}: no orders accepted", state.value, "ACTIVE")
    if is_closing(request):
        return _ok(name, state.value, "not HALTED")
    if state is TradingState.REDUCING:
        return _fail(
            name,
            f"trading is REDUCING{cause}: only orders that reduce a position",
            state.value,
            "ACTIVE",
        )
    if state is TradingState.RECONCILING:
        return _fail(
            name,
            f"trading is RECONCILING{cause}: no new orders until reconciliation finishes",
            state.value,
            "ACTIVE",
        )
    return _ok(name, state.value, "ACTIVE")


def check_quantity(request: TradeRequest, snap: RiskSnapshot) -> CheckResult:
    qty = request.quantity
    if valid_quantity(request) is None:
        return _fail("quantity", f"quantity must be a positive integer, got {qty!r}", qty, "> 0")
    return _ok("quantity", qty, "> 0")


def check_action(request: TradeRequest, snap: RiskSnapshot) -> CheckResult:
    if request.action not in ("BUY", "SELL"):
        return _fail("action", f"unknown action {request.action!r}", request.action, "BUY|SELL")
    return _ok("action", request.action, "BUY|SELL")


def check_order_type(request: TradeRequest, snap: RiskSnapshot) -> CheckResult:
    if request.order_type not in ("MKT", "LMT"):
        return _fail(
            "order_type",
            f"unknown order type {request.order_type!r}",
            request.order_type,
            "MKT|LMT",
        )
    return _ok("order_type", request.order_type, "MKT|LMT")


def check_limit_price(request: TradeRequest, snap: RiskSnapshot) -> CheckResult:
    name = "limit_price"
    price = request.limit_price
    tick = snap.limits.tick_size
    if request.order_type == "MKT":
        if price is not None:
            return _fail(name, f"a MKT order must not carry a limit price ({price!r})", price)
        return _ok(name, None, "none for MKT")
    if request.order_type != "LMT":
        return _fail(name, "limit price not evaluated: unknown order type", price)
    value = as_real(price)
    if value is None or value <= 0:
        return _fail(name, f"limit price must be positive and finite, got {price!r}", price, "> 0")
    ticks = value / tick
    if round(ticks) < 1 or abs(ticks - round(ticks)) > 1e-6:
        return _fail(name, f"limit price {price} is not on the {tick:g} tick", price, tick)
    return _ok(name, value, f"> 0, tick {tick:g}")


def check_contract(request: TradeRequest, snap: RiskSnapshot) -> CheckResult:
    """Instrument fields: option fields complete, expiry not past (NY date), multiplier sane."""
    name = "contract"
    problems: list[str] = []
    sec_type = request.sec_type
    closing = is_closing(request)
    mult = request.multiplier
    if sec_type == "OPT":
        expiry = parse_expiry(request.expiry)
        if expiry is None:
            problems.append(f"expiry must be YYYYMMDD, got {request.expiry!r}")
        elif expiry < snap.today:
            problems.append(f"expiry {request.expiry} is in the past (New York date {snap.today})")
        strike = as_real(request.strike)
        if strike is None or strike <= 0:
            problems.append(f"strike must be positive and finite, got {request.strike!r}")
        if request.right not in ("C", "P"):
            problems.append(f"right must be C or P, got {request.right!r}")
        if not is_int(mult) or int(mult) <= 0:
            problems.append(f"multiplier must be a positive integer, got {mult!r}")
        elif not closing and int(mult) != snap.limits.option_multiplier:
            problems.append(
                f"multiplier {mult} is not the standard {snap.limits.option_multiplier} "
                "(adjusted or mini options are not traded)"
            )
    elif sec_type == "STK" and closing:
        if not is_int(mult) or int(mult) <= 0:
            problems.append(f"multiplier must be a positive integer, got {mult!r}")
    else:
        problems.append(f"security type {sec_type!r} is not traded (entries: OPT only)")
    if problems:
        return _fail(name, "; ".join(problems), contract_key(request))
    return _ok(name, contract_key(request))


OPERATOR_ID_MAX: Final = 32  # the longest extOperator we send (config: max_length=32)


def is_wire_text(text: str, max_length: int) -> bool:
    """Printable ASCII (0x20..0x7e) of at most ``max_length``: nothing that can shift the
    NUL-separated fields of an IB message (a NUL) or be mangled on the way."""
    return len(text) <= max_length and all(" " <= ch <= "~" for ch in text)


def check_operator_id(request: TradeRequest, snap: RiskSnapshot) -> CheckResult:
    op = request.operator_id
    if not isinstance(op, str) or not op.strip():
        return _fail("operator_id", "operator id is missing", op, "non-empty")
    if not is_wire_text(op, OPERATOR_ID_MAX):
        return _fail(
            "operator_id",
            f"operator id must be printable ASCII of at most {OPERATOR_ID_MAX} characters",
            op,
            f"printable ASCII <= {OPERATOR_ID_MAX}",
        )
    return _ok("operator_id", op, "non-empty printable ASCII")


def check_closing_position(request: TradeRequest, snap: RiskSnapshot) -> CheckResult:
    """A closing order must reduce a held position and never flip or enlarge it."""
    name = "closing_position"
    if not is_closing(request):
        return _ok(name, NOT_A_CLOSE)
    key = contract_key(request)
    signed = signed_quantity(request)
    if key is None or signed is None:
        return _fail(name, "closing order not evaluated: invalid contract, quantity or action")
    held = snap.positions.get(key, 0)
    pending = max(0, snap.pending_close.get(key, 0))
    if held == 0:
        return _fail(name, f"closing order for {key} but no position is held", 0, "held != 0")
    if (held > 0) == (signed > 0):
        return _fail(
            name,
            f"closing order {request.action} {abs(signed)} would enlarge the held {held:+d} of {key}",
            held,
            "opposite side",
        )
    closable = abs(held) - pending
    if abs(signed) > closable:
        extra = f" ({pending} already being closed)" if pending else ""
        return _fail(
            name,
            f"closing quantity {abs(signed)} exceeds the {closable} closable of {key}{extra}: "
            "it would flip the position",
            abs(signed),
            closable,
        )
    return _ok(name, abs(signed), closable)


def check_symbol_allowlist(request: TradeRequest, snap: RiskSnapshot) -> CheckResult:
    allow = snap.limits.symbol_allowlist
    symbol = request.symbol
    if not isinstance(symbol, str) or symbol.strip().upper() not in allow:
        return _fail(
            "symbol_allowlist", f"symbol {symbol!r} is not on the allowlist {list(allow)}", symbol
        )
    return _ok("symbol_allowlist", symbol, list(allow))


def check_entry_side(request: TradeRequest, snap: RiskSnapshot) -> CheckResult:
    if request.action == "SELL" and not snap.limits.allow_short_options:
        return _fail(
            "entry_side",
            "an opening SELL (a short option) is not allowed; a sale that reduces a long "
            "position must be sent as a closing order",
            "SELL",
            "BUY",
        )
    return _ok("entry_side", request.action)


def check_entry_order_type(request: TradeRequest, snap: RiskSnapshot) -> CheckResult:
    if request.order_type == "MKT" and not snap.limits.allow_market_orders_for_entry:
        return _fail(
            "entry_order_type", "market orders are not allowed for entries (use LMT)", "MKT", "LMT"
        )
    return _ok("entry_order_type", request.order_type)


def check_days_to_expiry(request: TradeRequest, snap: RiskSnapshot) -> CheckResult:
    name = "days_to_expiry"
    minimum = snap.limits.min_days_to_expiry_entry
    if request.sec_type != "OPT":
        return _ok(name, None, minimum)
    expiry = parse_expiry(request.expiry)
    if expiry is None:
        return _fail(name, "days to expiry not evaluated: invalid expiry", None, minimum)
    dte = (expiry - snap.today).days
    if dte < minimum:
        return _fail(name, f"{dte} days to expiry is under the minimum of {minimum}", dte, minimum)
    return _ok(name, dte, minimum)


def check_account_data(request: TradeRequest, snap: RiskSnapshot) -> CheckResult:
    if snap.equity is None or snap.equity <= 0 or snap.available_funds is None:
        return _fail(
            "account_data", "no account data (equity / available funds) yet", snap.equity, "> 0"
        )
    return _ok("account_data", snap.equity, "> 0")


def check_contracts_per_order(request: TradeRequest, snap: RiskSnapshot) -> CheckResult:
    limit = snap.limits.max_contracts_per_order
    qty = valid_quantity(request)
    if qty is None:
        return _fail("contracts_per_order", "not evaluated: invalid quantity", None, limit)
    if qty > limit:
        return _fail(
            "contracts_per_order",
            f"{qty} contracts per order exceeds the limit of {limit}",
            qty,
            limit,
        )
    return _ok("contracts_per_order", qty, limit)


def check_contracts_per_position(request: TradeRequest, snap: RiskSnapshot) -> CheckResult:
    name = "contracts_per_position"
    limit = snap.limits.max_contracts_per_position
    key = contract_key(request)
    signed = signed_quantity(request)
    if key is None or signed is None:
        return _fail(name, "not evaluated: invalid contract, quantity or action", None, limit)
    after = abs(snap.positions.get(key, 0) + snap.working_entries.get(key, 0) + signed)
    if after > limit:
        return _fail(
            name, f"position of {after} contracts would exceed the limit of {limit}", after, limit
        )
    return _ok(name, after, limit)


def exposed_keys(snap: RiskSnapshot) -> set[str]:
    """Contracts held or with a working entry (each one an open position, or about to be)."""
    keys = {k for k, qty in snap.positions.items() if qty != 0}
    keys.update(k for k, qty in snap.working_entries.items() if qty != 0)
    return keys


def check_open_positions(request: TradeRequest, snap: RiskSnapshot) -> CheckResult:
    name = "open_positions"
    limit = snap.limits.max_open_positions
    key = contract_key(request)
    exposed = exposed_keys(snap)
    open_now = len(exposed)
    if key is None:
        return _fail(name, "not evaluated: invalid contract", open_now, limit)
    after = open_now if key in exposed else open_now + 1
    if after > limit:
        return _fail(
            name,
            f"{after} open positions would exceed the limit of {limit} ({open_now} open or "
            "working now)",
            after,
            limit,
        )
    return _ok(name, after, limit)


def check_premium_at_risk(request: TradeRequest, snap: RiskSnapshot) -> CheckResult:
    name = "premium_at_risk"
    premium = premium_at_risk(request)
    fraction = risk_fraction(request, snap.limits)
    if fraction is None:
        return _fail(
            name, f"risk_per_trade must be in (0, 1], got {request.risk_per_trade!r}", premium
        )
    if snap.equity is None or snap.equity <= 0:
        return _fail(name, "not evaluated: equity unknown", premium)
    budget = fraction * snap.equity
    if premium is None:
        return _fail(
            name, "not evaluated: no valid price (LMT limit, or MKT reference/ask)", None, budget
        )
    if premium > budget:
        return _fail(
            name,
            f"premium at risk {premium:.2f} exceeds {fraction:.2%} of equity "
            f"({budget:.2f} of {snap.equity:.2f})",
            round(premium, 2),
            round(budget, 2),
        )
    return _ok(name, round(premium, 2), round(budget, 2))


def check_available_funds(request: TradeRequest, snap: RiskSnapshot) -> CheckResult:
    name = "available_funds"
    cost = order_cost(request, snap.limits)
    funds = snap.available_funds
    if cost is None or funds is None:
        return _fail(name, "not evaluated: no valid cost or available funds", cost, funds)
    if cost > funds:
        return _fail(
            name,
            f"order cost {cost:.2f} (premium plus commission) exceeds available funds {funds:.2f}",
            round(cost, 2),
            round(funds, 2),
        )
    return _ok(name, round(cost, 2), round(funds, 2))


def check_cash_allocation(request: TradeRequest, snap: RiskSnapshot) -> CheckResult:
    name = "cash_allocation"
    cost = order_cost(request, snap.limits)
    pct = snap.limits.cash_allocation_pct
    if cost is None or snap.equity is None or snap.equity <= 0:
        return _fail(name, "not evaluated: no valid cost or equity", cost)
    allocation = pct * snap.equity
    working = max(0.0, snap.working_entry_cost)
    total = snap.committed_premium + working + cost
    if total > allocation:
        return _fail(
            name,
            f"premium committed {total:.2f} (open {snap.committed_premium:.2f} + working "
            f"{working:.2f} + this order {cost:.2f}) exceeds the {pct:.0%} cash allocation "
            f"of {allocation:.2f}",
            round(total, 2),
            round(allocation, 2),
        )
    return _ok(name, round(total, 2), round(allocation, 2))


def check_pdt(request: TradeRequest, snap: RiskSnapshot) -> CheckResult:
    name = "pdt"
    threshold = snap.limits.pdt_equity_threshold
    if snap.equity is None:
        return _fail(name, "PDT not evaluated: equity unknown", None, threshold)
    if not pdt_applies(snap):
        return _ok(name, f"equity {snap.equity:.2f} >= {threshold:.0f}: PDT does not apply")
    remaining = day_trades_remaining(snap)
    reserved = max(0, snap.same_day_exits_reserved)
    if remaining - reserved < 1:
        ib = snap.ib_day_trades_remaining
        ib_text = f", IB reports {ib} remaining" if ib is not None and ib >= 0 else ""
        reserved_text = (
            f"; {reserved} kept for the same-day exits of positions opened today"
            if reserved
            else ""
        )
        return _fail(
            name,
            f"PDT: {remaining} day trades remaining ({snap.day_trades_used} used in the last "
            f"{PDT_WINDOW_BUSINESS_DAYS} business days{ib_text}, equity {snap.equity:.2f} "
            f"< {threshold:.0f}{reserved_text}); a new entry needs one left so a same-day "
            "exit stays possible",
            remaining - reserved,
            1,
        )
    return _ok(name, remaining - reserved, 1)


def check_daily_loss(request: TradeRequest, snap: RiskSnapshot) -> CheckResult:
    name = "daily_loss"
    limit = -snap.limits.daily_loss_limit_pct
    pct = daily_pnl_pct(snap)
    if pct is None:
        return _fail(name, "daily P&L not evaluated: start-of-day equity unknown", None, limit)
    if pct <= limit:
        return _fail(
            name,
            f"daily P&L {pct:.2%} is at or below the daily loss limit of {limit:.2%}",
            round(pct, 6),
            limit,
        )
    return _ok(name, round(pct, 6), limit)


def check_weekly_drawdown(request: TradeRequest, snap: RiskSnapshot) -> CheckResult:
    name = "weekly_drawdown"
    limit = snap.limits.weekly_drawdown_pct
    dd = drawdown_pct(snap)
    if dd is None:
        return _fail(name, "weekly drawdown not evaluated: week's high unknown", None, limit)
    if dd >= limit:
        return _fail(
            name,
            f"equity is {dd:.2%} below the week's high, at or beyond the {limit:.2%} limit",
            round(dd, 6),
            limit,
        )
    return _ok(name, round(dd, 6), limit)


def _bad_price(value: Any) -> bool:
    price = as_real(value)
    return price is None or price <= 0


def check_market_data(request: TradeRequest, snap: RiskSnapshot) -> CheckResult:
    name = "market_data"
    quote = request.quote
    if quote is None:
        return _fail(name, "no market data behind this entry", None, "fresh, real-time bid/ask")
    problems: list[str] = []
    if quote.is_stale:
        problems.append("quote is stale")
    if quote.is_delayed:
        problems.append("quote is delayed (not real-time)")
    missing = {f.lower() for f in quote.missing_fields}
    if _bad_price(quote.bid) or "bid" in missing:
        problems.append(f"bid missing or invalid ({quote.bid!r})")
    if _bad_price(quote.ask) or "ask" in missing:
        problems.append(f"ask missing or invalid ({quote.ask!r})")
    bid, ask = as_real(quote.bid), as_real(quote.ask)
    if not problems and bid is not None and ask is not None and ask < bid:
        problems.append(f"crossed quote (bid {quote.bid} > ask {quote.ask})")
    if problems:
        return _fail(
            name, "data gate: " + "; ".join(problems), quote.as_of, "fresh, real-time bid/ask"
        )
    return _ok(name, {"bid": quote.bid, "ask": quote.ask}, "fresh, real-time bid/ask")


COMMON_CHECKS: Final[tuple[Check, ...]] = (
    check_trading_state,
    check_quantity,
    check_action,
    check_order_type,
    check_limit_price,
    check_contract,
    check_operator_id,
    check_closing_position,
)

ENTRY_CHECKS: Final[tuple[Check, ...]] = (
    check_symbol_allowlist,
    check_entry_side,
    check_entry_order_type,
    check_days_to_expiry,
    check_account_data,
    check_contracts_per_order,
    check_contracts_per_position,
    check_open_positions,
    check_premium_at_risk,
    check_available_funds,
    check_cash_allocation,
    check_pdt,
    check_daily_loss,
    check_weekly_drawdown,
    check_market_data,
)

ALL_CHECKS: Final[tuple[Check, ...]] = COMMON_CHECKS + ENTRY_CHECKS


def _check_name(check: Check) -> str:
    return getattr(check, "__name__", "check").removeprefix("check_")


def run_checks(
    request: TradeRequest, snap: RiskSnapshot, checks: Sequence[Check] = ALL_CHECKS
) -> tuple[CheckResult, ...]:
    """Run every check; entry checks are skipped for closing orders; a raising check fails."""
    closing = is_closing(request)
    results: list[CheckResult] = []
    for check in checks:
        name = _check_name(check)
        if closing and check in ENTRY_CHECKS:
            results.append(_ok(name, SKIPPED_FOR_CLOSE))
            continue
        try:
            results.append(check(request, snap))
        except Exception as exc:  # fail closed: a malformed request never raises out
            results.append(_fail(name, f"{name} check could not run: {type(exc).__name__}: {exc}"))
    return tuple(results)


def risk_metrics(request: TradeRequest, snap: RiskSnapshot) -> dict[str, Any]:
    """The values the checks saw, for the decision record."""

    def safe(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception:
            return None

    remaining = safe(lambda: day_trades_remaining(snap)) if pdt_applies(snap) else None
    premium = safe(lambda: premium_at_risk(request))
    cost = safe(lambda: order_cost(request, snap.limits))
    fraction = safe(lambda: risk_fraction(request, snap.limits))
    key = contract_key(request)
    return {
        "is_closing": is_closing(request),
        "trading_state": snap.trading_state.value,
        "contract_key": key,
        "held_quantity": snap.positions.get(key, 0) if key is not None else None,
        "open_positions": len(exposed_keys(snap)),
        "working_entries": dict(snap.working_entries),
        "working_closes": {k: v for k, v in snap.pending_close.items() if v},
        "working_entry_cost": round(snap.working_entry_cost, 2),
        "same_day_exits_reserved": snap.same_day_exits_reserved,
        "equity": snap.equity,
        "available_funds": snap.available_funds,
        "premium_at_risk": None if premium is None else round(premium, 2),
        "estimated_commission": safe(lambda: estimated_commission(request, snap.limits)),
        "order_cost": None if cost is None else round(cost, 2),
        "risk_fraction": fraction,
        "risk_budget": (
            round(fraction * snap.equity, 2)
            if fraction is not None and snap.equity is not None
            else None
        ),
        "committed_premium": round(snap.committed_premium, 2),
        "pdt_applies": pdt_applies(snap),
        "day_trades_used": snap.day_trades_used,
        "day_trades_remaining": remaining,
        "ib_day_trades_remaining": snap.ib_day_trades_remaining,
        "start_of_day_equity": snap.start_of_day_equity,
        "daily_pnl_pct": safe(lambda: daily_pnl_pct(snap)),
        "week_high": snap.week_high,
        "drawdown_pct": safe(lambda: drawdown_pct(snap)),
        "new_york_date": snap.today.isoformat(),
    }
