"""Rich renderables for the operator: the cycle summary / live status view, positions, closes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ibkr_trader.clock import NY
from ibkr_trader.integrations.order_executor import OrderResult
from ibkr_trader.models import Position
from ibkr_trader.orchestrator import CycleReport

__all__ = ["cycle_view", "governors_text", "positions_table", "results_table"]

_STATE_STYLE = {
    "ACTIVE": "bold green",
    "REDUCING": "bold yellow",
    "RECONCILING": "bold cyan",
    "HALTED": "bold red",
}


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:,.{digits}f}"


def _pct(value: float | None, digits: int = 1) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value * 100:.{digits}f}%"


def governors_text(usage: dict[str, Any]) -> str:
    """ "daily loss 0.4% of 2.0% used (1.6% left) · weekly ... · day trades 1 used, 2 left"."""
    daily = (
        f"daily loss {_pct(usage.get('daily_loss_used_pct'))} of "
        f"{_pct(usage.get('daily_loss_limit_pct'))} used "
        f"({_pct(usage.get('daily_loss_left_pct'))} left)"
    )
    weekly = (
        f"weekly drawdown {_pct(usage.get('weekly_drawdown_used_pct'))} of "
        f"{_pct(usage.get('weekly_drawdown_pct'))} used "
        f"({_pct(usage.get('weekly_drawdown_left_pct'))} left)"
    )
    left = usage.get("day_trades_remaining")
    trades = f"day trades {usage.get('day_trades_used') or 0} used" + (
        f", {left} left" if left is not None else " (PDT rule not applicable)"
    )
    text = " · ".join([daily, weekly, trades])
    if usage.get("governor"):
        text += f"\nGOVERNOR: {usage['governor']}"
    return text


def positions_table(positions: Sequence[Position], title: str = "Positions") -> Table:
    table = Table(title=title, title_justify="left", expand=False)
    for column in ("position", "qty", "entry", "mark", "P&L", "P&L %", "DTE", "closure flag"):
        table.add_column(column, justify="right" if column not in ("position",) else "left")
    for p in positions:
        flag = p.closure_trigger or "-"
        table.add_row(
            p.position_id,
            str(p.quantity),
            _fmt(p.entry_price),
            _fmt(p.current_price),
            _fmt(p.unrealized_pnl),
            _pct(p.unrealized_pnl_pct),
            str(p.days_to_expiry if p.days_to_expiry is not None else "-"),
            Text(flag, style="bold red" if p.closure_trigger else ""),
        )
    if not positions:
        table.add_row("(none)", "", "", "", "", "", "", "")
    return table


def results_table(results: Sequence[OrderResult], title: str = "Orders") -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("order (orderRef)", "symbol", "status", "fill", "reason"):
        table.add_column(column)
    for r in results:
        fill = f"{r.fill_quantity or 0} @ {_fmt(r.fill_price)}" if r.fill_quantity else "-"
        table.add_row(
            r.order_id,
            r.contract_key or r.symbol,
            r.status.value.upper(),
            fill,
            r.closure_reason or r.rejection_reason or "",
        )
    return table


def _decisions(report: CycleReport) -> Table:
    table = Table(title="Decisions this cycle", title_justify="left")
    for column in ("what", "symbol", "strategy", "status", "reason"):
        table.add_column(column, overflow="fold")
    for a in report.actions:
        table.add_row(a.kind, a.symbol, a.strategy, a.status.upper(), a.reason)
    if not report.actions:
        table.add_row("-", "", "", "", "nothing to do")
    return table


def _market(report: CycleReport) -> Table:
    table = Table(title="Market data", title_justify="left")
    for column in ("symbol", "last", "bid/ask", "EMA8/21", "RSI", "VWAP", "stale", "quality"):
        table.add_column(column, justify="right")
    for symbol, md in report.market_data.items():
        table.add_row(
            symbol,
            _fmt(md.get("last")),
            f"{_fmt(md.get('bid'))}/{_fmt(md.get('ask'))}",
            f"{_fmt(md.get('ema_fast'))}/{_fmt(md.get('ema_slow'))}",
            _fmt(md.get("rsi"), 1),
            _fmt(md.get("vwap")),
            f"{'YES' if md.get('is_stale') else 'no'} ({_fmt(md.get('staleness_seconds'), 0)} s)",
            _fmt(md.get("quality")),
        )
    return table


def cycle_view(
    report: CycleReport,
    *,
    target: str,
    governors: dict[str, Any],
    journal: str,
    recent: Sequence[CycleReport] = (),
) -> RenderableType:
    """The status panel, market data, positions and decisions of one cycle."""
    state = report.trading_state
    when = report.started_at.astimezone(NY).strftime("%Y-%m-%d %H:%M:%S New York")
    status = Table.grid(padding=(0, 2))
    status.add_column(style="bold")
    status.add_column()
    status.add_row(
        "connection",
        Text(
            f"connected to {target}" if report.connected else f"DISCONNECTED ({target})",
            style="green" if report.connected else "bold red",
        ),
    )
    status.add_row(
        "trading state",
        Text(f"{state}  ({report.state_cause})", style=_STATE_STYLE.get(state, "")),
    )
    market = "open" if report.market_open else "closed"
    if report.minutes_to_close is not None:
        market += f", {report.minutes_to_close:.0f} min to the close"
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
            title=f"ibkr-trader {report.mode} · cycle {report.cycle} · {when}",
            title_align="left",
        )
    ]
    if report.market_data:
        parts.append(_market(report))
    parts.append(positions_table(report.positions))
    parts.append(_decisions(report))
    earlier = [r for r in recent if r is not report and r.actions][-3:]
    if earlier:
        table = Table(title="Earlier decisions", title_justify="left")
        for column in ("cycle", "what", "symbol", "status", "reason"):
            table.add_column(column, overflow="fold")
        for r in earlier:
            for a in r.actions[-5:]:
                table.add_row(str(r.cycle), a.kind, a.symbol, a.status.upper(), a.reason)
        parts.append(table)
    if report.errors:
        parts.append(Text("\n".join(f"error: {e}" for e in report.errors), style="red"))
    return Group(*parts)
