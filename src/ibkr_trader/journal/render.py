"""Rich rendering of journal listings and of ``explain`` (used by ``cli/journal.py`` only).

Times are shown in New York time (the exchange's clock), as a trader reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ibkr_trader.clock import NY
from ibkr_trader.journal.records import (
    ClosureRecord,
    DecisionRecord,
    EventRecord,
    Explanation,
    FillRecord,
    OrderRow,
)


def _t(when: datetime | None) -> str:
    if when is None:
        return ""
    return when.astimezone(NY).strftime("%Y-%m-%d %H:%M:%S")


def _n(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"
    return str(value)


def _ok(flag: bool) -> Text:
    return Text("yes", style="green") if flag else Text("NO", style="bold red")


def _status(status: str) -> Text:
    lowered = status.lower()
    style = (
        "green"
        if lowered in ("filled", "simulated")
        else (
            "red"
            if lowered in ("rejected", "failed", "cancelled", "apicancelled", "inactive")
            else "yellow"
        )
    )
    return Text(status, style=style)


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold", expand=False)
    for name in columns:
        table.add_column(name, no_wrap=name in ("order ref", "exec id", "time"))
    return table


def orders_table(rows: Sequence[OrderRow], title: str = "Orders") -> Table:
    table = _table(
        title,
        "time",
        "order ref",
        "contract",
        "side",
        "qty",
        "type",
        "limit",
        "status",
        "filled",
        "avg",
        "perm id",
        "closing",
        "operator",
    )
    for row in rows:
        i, s = row.intent, row.state
        table.add_row(
            _t(i.created_at),
            i.client_order_id,
            i.contract_key,
            i.action,
            str(i.quantity),
            i.order_type,
            _n(i.limit_price),
            _status(s.status),
            _n(s.filled),
            _n(s.avg_price),
            _n(s.perm_id),
            i.closure_reason or ("yes" if i.is_closing else ""),
            i.operator_id,
        )
    return table


def fills_table(rows: Sequence[FillRecord], title: str = "Fills") -> Table:
    table = _table(
        title, "time", "exec id", "order ref", "contract", "side", "qty", "price", "commission"
    )
    for f in rows:
        table.add_row(
            _t(f.at),
            f.exec_id + (" (sim)" if f.simulated else ""),
            f.client_order_id or "",
            f.contract_key,
            f.side,
            _n(f.quantity),
            _n(f.price),
            _n(f.commission),
        )
    return table


def closures_table(rows: Sequence[ClosureRecord], title: str = "Closures") -> Table:
    table = _table(title, "time", "reason", "contract", "qty", "order ref")
    for c in rows:
        table.add_row(
            _t(c.at),
            Text(c.reason, style="bold"),
            c.contract_key,
            _n(c.quantity),
            c.client_order_id or "",
        )
    return table


def decisions_table(rows: Sequence[DecisionRecord], title: str = "Risk decisions") -> Table:
    table = _table(
        title, "time", "id", "approved", "contract", "side", "qty", "state", "order ref", "reasons"
    )
    for d in rows:
        table.add_row(
            _t(d.at),
            str(d.id),
            _ok(d.approved),
            d.contract_key,
            d.action,
            str(d.quantity),
            d.trading_state,
            d.client_order_id,
            "; ".join(d.reasons),
        )
    return table


def events_table(rows: Sequence[EventRecord], title: str = "Events") -> Table:
    table = _table(title, "time", "source", "kind", "detail")
    for e in rows:
        detail = ", ".join(f"{k}={v}" for k, v in sorted(e.detail.items()))
        table.add_row(_t(e.at), e.source, e.kind, detail)
    return table


def checks_table(decision: DecisionRecord) -> Table:
    table = _table(
        f"Risk decision #{decision.id}: "
        f"{'APPROVED' if decision.approved else 'REJECTED'} "
        f"(state {decision.trading_state}, limits {decision.limits_hash or '-'})",
        "check",
        "passed",
        "value",
        "limit",
        "reason",
    )
    for c in decision.checks:
        table.add_row(c.name, _ok(c.passed), _n(c.value), _n(c.limit), c.reason or "")
    return table


def explanation(expl: Explanation) -> RenderableType:
    """The whole story of one order, top to bottom."""
    i, s = expl.intent, expl.state
    summary = Text()
    summary.append(f"{i.action} {i.quantity} {i.contract_key}", style="bold")
    summary.append(f"  {i.order_type}")
    if i.limit_price is not None:
        summary.append(f" @ {_n(i.limit_price)}")
    summary.append(
        f"\nstrategy {i.strategy_id}  signal {i.signal_id}  operator {i.operator_id}"
        f"  mode {i.mode}\nintent written {_t(i.created_at)} (New York)"
        f"\nnow: {s.status}  filled {_n(s.filled)}"
    )
    if s.avg_price is not None:
        summary.append(f" @ {_n(s.avg_price)}")
    if s.broker_order_id is not None or s.perm_id is not None:
        summary.append(f"\nbroker order id {_n(s.broker_order_id)}  permId {_n(s.perm_id)}")
    if s.error_code is not None or s.error_text:
        summary.append(f"\nlast error {_n(s.error_code)}: {s.error_text or ''}", style="red")
    reason = expl.closure_reason
    if i.is_closing or reason:
        summary.append(f"\nclosing order, reason: {reason or 'unknown'}", style="bold magenta")
    parts: list[RenderableType] = [Panel(summary, title=f"Order {i.client_order_id}", expand=False)]
    if expl.decision is not None:
        parts.append(checks_table(expl.decision))
        if expl.decision.reasons:
            parts.append(Text("Rejected: " + "; ".join(expl.decision.reasons), style="red"))
    else:
        parts.append(Text("No risk decision linked to this intent.", style="bold red"))
    statuses = _table("Status changes", "time", "status", "filled", "remaining", "avg", "error")
    for b in expl.broker_ids:
        statuses.add_row(
            _t(b.at), f"broker ids: order {_n(b.broker_order_id)} perm {_n(b.perm_id)}"
        )
    for st in expl.statuses:
        error = f"{_n(st.error_code)} {st.error_text or ''}".strip()
        statuses.add_row(
            _t(st.at),
            _status(st.status),
            _n(st.filled),
            _n(st.remaining),
            _n(st.avg_price),
            error,
        )
    parts.append(statuses)
    if expl.fills:
        parts.append(fills_table(expl.fills))
    for r in expl.results:
        line = f"Result {_t(r.at)}: {r.status}"
        if r.fill_quantity is not None:
            line += f" {_n(r.fill_quantity)} @ {_n(r.fill_price)}"
        if r.rejection_reason:
            line += f" ({r.rejection_reason})"
        parts.append(Text(line, style="bold"))
    if expl.closures:
        parts.append(closures_table(expl.closures))
    return Group(*parts)
