"""Rich renderables for the operator: the live status view, positions, closes, the summary.

Everything fits 80 columns (tested at 80 and 120): compact columns, no vertical borders,
long text folds instead of being cut off. Contracts are named as a trader reads them
(``SPY 2026-12-11 606 C``), never by conId. While the gateway is away the view says what it
does not know instead of showing stale facts as current ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ibkr_trader.cli.text import fmt as _fmt
from ibkr_trader.cli.text import governors_text
from ibkr_trader.cli.text import signed as _signed
from ibkr_trader.clock import NY

if TYPE_CHECKING:
    from ibkr_trader.integrations.order_executor import OrderResult
    from ibkr_trader.journal import OrderRow
    from ibkr_trader.models import AccountSnapshot, ContractSpec, Position
    from ibkr_trader.orchestrator import CycleReport

__all__ = [
    "SessionSummary",
    "account_text",
    "contract_name",
    "cycle_view",
    "governors_text",
    "open_orders_table",
    "positions_table",
    "results_table",
    "running_view",
    "summary_view",
]

_STATE_STYLE = {
    "ACTIVE": "bold green",
    "REDUCING": "bold yellow",
    "RECONCILING": "bold cyan",
    "HALTED": "bold red",
}


def _table(title: str) -> Table:
    return Table(
        title=title,
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
        expand=False,
    )


def contract_name(contract: ContractSpec) -> str:
    """``SPY 2026-12-11 606 C`` for an option, ``SPY`` for stock."""
    if contract.sec_type == "STK" or not contract.expiry:
        return contract.symbol
    expiry = contract.expiry
    if len(expiry) == 8 and expiry.isdigit():
        expiry = f"{expiry[:4]}-{expiry[4:6]}-{expiry[6:]}"
    return f"{contract.symbol} {expiry} {contract.strike:g} {contract.right}"


def _key_name(contract_key: str) -> str:
    """A journal contract key (``SPY:20261211:C:606``) in the trader's form."""
    parts = contract_key.split(":")
    if len(parts) == 4 and len(parts[1]) == 8:
        day = parts[1]
        return f"{parts[0]} {day[:4]}-{day[4:6]}-{day[6:]} {parts[3]} {parts[2]}"
    return parts[0] if parts else contract_key


def account_text(account: AccountSnapshot | None, start_of_day: float | None) -> str:
    """ "net liq $1,000,000.00 · cash $998,000.00 · day P&L +$120.00"."""
    if account is None:
        return "unknown (no account update yet)"
    day = None
    if start_of_day and math.isfinite(account.net_liquidation):
        day = account.net_liquidation - start_of_day
    return (
        f"net liq ${_fmt(account.net_liquidation)} · cash ${_fmt(account.cash)} · "
        f"day P&L {_signed(day)}"
    )


def positions_table(
    positions: Sequence[Position], title: str = "Positions", *, known: bool = True
) -> Table:
    table = _table(title)
    table.add_column("contract", no_wrap=True)
    for column in ("qty", "entry", "mark", "P&L", "DTE"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("flag", overflow="fold")
    for p in positions:
        pnl = _fmt(p.unrealized_pnl)
        if p.unrealized_pnl_pct is not None and math.isfinite(p.unrealized_pnl_pct):
            pnl += f" ({p.unrealized_pnl_pct * 100:+.0f}%)"
        table.add_row(
            contract_name(p.contract),
            str(p.quantity),
            _fmt(p.entry_price),
            _fmt(p.current_price),
            pnl,
            str(p.days_to_expiry if p.days_to_expiry is not None else "-"),
            Text(p.closure_trigger or "-", style="bold red" if p.closure_trigger else ""),
        )
    if not positions:
        table.add_row("(none)" if known else "(unknown: gateway disconnected)", *[""] * 6)
    return table


def open_orders_table(
    orders: Sequence[OrderRow], now: datetime | None, order_timeout: float
) -> Table:
    """Our working orders, with how long each has waited for its fill."""
    table = _table("Open orders")
    table.add_column("order (orderRef)", overflow="fold")
    table.add_column("contract", no_wrap=True)
    table.add_column("side", no_wrap=True)
    table.add_column("qty", justify="right", no_wrap=True)
    table.add_column("limit", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for row in orders:
        intent, state = row.intent, row.state
        status = state.status or "new"
        if now is not None:
            waited = max(0.0, (now - intent.created_at).total_seconds())
            status += f"\nwaiting for fill {waited:.0f}/{order_timeout:.0f} s"
        table.add_row(
            intent.client_order_id,
            _key_name(intent.contract_key),
            intent.action,
            f"{state.filled:g}/{intent.quantity}",
            _fmt(intent.limit_price) if intent.limit_price is not None else "MKT",
            status,
        )
    if not orders:
        table.add_row("(none)", "", "", "", "", "")
    return table


def results_table(results: Sequence[OrderResult], title: str = "Orders") -> Table:
    table = _table(title)
    table.add_column("order (orderRef)", overflow="fold")
    table.add_column("contract", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("fill", no_wrap=True)
    table.add_column("reason", overflow="fold")
    for r in results:
        fill = f"{r.fill_quantity or 0} @ {_fmt(r.fill_price)}" if r.fill_quantity else "-"
        table.add_row(
            r.order_id,
            _key_name(r.contract_key) if r.contract_key else r.symbol,
            r.status.value.upper(),
            fill,
            r.closure_reason or r.rejection_reason or "",
        )
    return table


def _decisions(report: CycleReport) -> Table:
    table = _table("Decisions this cycle")
    table.add_column("what", no_wrap=True)
    table.add_column("symbol", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("reason", overflow="fold")
    for a in report.actions:
        table.add_row(a.kind, a.symbol, a.status.upper(), a.reason)
    if not report.actions:
        table.add_row("-", "", "", "nothing to do")
    return table


def _market(report: CycleReport) -> Table:
    table = _table("Market data")
    for column in ("symbol", "last", "bid/ask", "EMA 8/21", "RSI", "VWAP", "stale", "q"):
        table.add_column(column, justify="right", no_wrap=True)
    for symbol, md in report.market_data.items():
        stale = md.get("staleness_seconds")
        table.add_row(
            symbol,
            _fmt(md.get("last")),
            f"{_fmt(md.get('bid'))}/{_fmt(md.get('ask'))}",
            f"{_fmt(md.get('ema_fast'))}/{_fmt(md.get('ema_slow'))}",
            _fmt(md.get("rsi"), 1),
            _fmt(md.get("vwap")),
            Text(
                f"{'STALE ' if md.get('is_stale') else ''}{_fmt(stale, 0)}s",
                style="bold red" if md.get("is_stale") else "",
            ),
            _fmt(md.get("quality"), 1),
        )
    return table


def _when(at: datetime) -> str:
    return at.astimezone(NY).strftime("%Y-%m-%d %H:%M:%S NY")


def cycle_view(
    report: CycleReport,
    *,
    target: str,
    governors: dict[str, Any],
    journal: str,
    recent: Sequence[CycleReport] = (),
    account: AccountSnapshot | None = None,
    open_orders: Sequence[OrderRow] = (),
    now: datetime | None = None,
    order_timeout: float = 30.0,
) -> RenderableType:
    """The status panel, account, market data, open orders, positions and decisions."""
    state = report.trading_state
    status = Table.grid(padding=(0, 1))
    status.add_column(style="bold", no_wrap=True)
    status.add_column(overflow="fold")
    connected = report.connected
    status.add_row(
        "connection",
        Text(
            f"connected to {target}" if connected else f"DISCONNECTED ({target})",
            style="green" if connected else "bold red",
        ),
    )
    sod = report.risk_status.get("start_of_day_equity") if report.risk_status else None
    status.add_row(
        "account",
        account_text(account, sod) if connected else "unknown while disconnected",
    )
    status.add_row(
        "trading state",
        Text(f"{state}  ({report.state_cause})", style=_STATE_STYLE.get(state, "")),
    )
    if connected:
        market = "open" if report.market_open else "closed"
        if report.minutes_to_close is not None:
            market += f", {report.minutes_to_close:.0f} min to the close"
    else:
        market = "unknown (no gateway clock while disconnected)"
    status.add_row("market (NYSE)", market)
    entries = (
        Text("allowed", style="green")
        if report.entries_allowed
        else Text(f"blocked: {report.entry_block}", style="yellow")
    )
    status.add_row("entries", entries)
    status.add_row("strategy", f"{report.strategy} — {report.gameplan}")
    status.add_row("governors", governors_text(governors))
    if report.reconciliation is not None:
        status.add_row("reconciliation", report.reconciliation.summary())
    status.add_row("journal", journal)
    parts: list[RenderableType] = [
        Panel(
            status,
            title=f"ibkr-trader {report.mode} · cycle {report.cycle} · {_when(report.started_at)}",
            title_align="left",
        )
    ]
    if report.market_data:
        parts.append(_market(report))
    parts.append(open_orders_table(open_orders, now, order_timeout))
    title = "Positions" if connected else "Positions (last known; gateway disconnected)"
    parts.append(positions_table(report.positions, title, known=connected))
    parts.append(_decisions(report))
    earlier = [r for r in recent if r is not report and r.actions][-3:]
    if earlier:
        table = _table("Earlier decisions")
        table.add_column("cycle", no_wrap=True)
        table.add_column("what", no_wrap=True)
        table.add_column("symbol", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("reason", overflow="fold")
        for r in earlier:
            for a in r.actions[-5:]:
                table.add_row(str(r.cycle), a.kind, a.symbol, a.status.upper(), a.reason)
        parts.append(table)
    if report.errors:
        parts.append(Text("\n".join(f"error: {e}" for e in report.errors), style="red"))
    return Group(*parts)


def running_view(
    *,
    mode: str,
    target: str,
    cycle: int,
    running_for: float,
    open_orders: Sequence[OrderRow] = (),
    now: datetime | None = None,
    order_timeout: float = 30.0,
    last: RenderableType | None = None,
) -> RenderableType:
    """Shown at once and while a cycle runs: what it is doing, and the orders waiting."""
    line = Text(
        f"ibkr-trader {mode} against the {target}: cycle {cycle} running for "
        f"{running_for:.0f} s (connect, reconcile, market data, decide)",
        style="cyan",
    )
    parts: list[RenderableType] = [line]
    if open_orders:
        parts.append(open_orders_table(open_orders, now, order_timeout))
    if last is not None:
        parts.append(last)
    return Group(*parts)


@dataclass
class SessionSummary:
    """What a session did, for the Ctrl-C / end-of-run summary."""

    mode: str
    cycles: int = 0
    wall_started: datetime | None = None
    market_started: datetime | None = None
    market_ended: datetime | None = None
    orders: list[dict[str, Any]] = field(default_factory=list)
    fills: list[dict[str, Any]] = field(default_factory=list)
    closures: list[dict[str, Any]] = field(default_factory=list)
    realized_pnl: float = 0.0
    commissions: float = 0.0
    governors: dict[str, Any] = field(default_factory=dict)
    trading_state: str = ""
    stopped_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "cycles": self.cycles,
            "wall_started": self.wall_started.isoformat() if self.wall_started else None,
            "market_started": self.market_started.isoformat() if self.market_started else None,
            "market_ended": self.market_ended.isoformat() if self.market_ended else None,
            "orders": self.orders,
            "fills": self.fills,
            "closures": self.closures,
            "realized_pnl": round(self.realized_pnl, 2),
            "commissions": round(self.commissions, 2),
            "governors": self.governors,
            "trading_state": self.trading_state,
            "stopped_by": self.stopped_by,
        }


def summary_view(summary: SessionSummary) -> RenderableType:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    span = ""
    if summary.market_started and summary.market_ended:
        span = f" · market time {_when(summary.market_started)} → {_when(summary.market_ended)}"
    table.add_row("cycles", f"{summary.cycles}{span}")
    entries = sum(1 for o in summary.orders if not o.get("closing"))
    table.add_row(
        "orders",
        f"{len(summary.orders)} ({entries} entries, {len(summary.orders) - entries} closes)",
    )
    table.add_row("fills", str(len(summary.fills)))
    if summary.closures:
        reasons: dict[str, int] = {}
        for c in summary.closures:
            reasons[str(c.get("reason"))] = reasons.get(str(c.get("reason")), 0) + 1
        text = ", ".join(f"{n} {why}" for why, n in sorted(reasons.items()))
        table.add_row("closures", f"{len(summary.closures)}: {text}")
    else:
        table.add_row("closures", "0")
    table.add_row(
        "realized P&L",
        f"{_signed(summary.realized_pnl)} (commissions ${_fmt(summary.commissions)} included)",
    )
    table.add_row("governors", governors_text(summary.governors))
    table.add_row("trading state", summary.trading_state or "-")
    why = f" ({summary.stopped_by})" if summary.stopped_by else ""
    return Panel(table, title=f"Session summary · {summary.mode}{why}", title_align="left")
