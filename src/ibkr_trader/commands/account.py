"""``status``, ``positions`` and ``close``.

``status`` reads the journal and the kill-switch file only (it never connects and never
writes): the trading state and its cause, the governors, day trades, the last cycle and the
last reconciliation. ``positions`` and ``close`` connect to the gateway (the in-process
simulator when no port is configured); ``close`` reconciles first and sends nothing if the
reconciliation fails. Exit codes: the common policy (close: 1 unless every close filled).
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Any

import typer

from ibkr_trader.clock import SystemClock
from ibkr_trader.commands.common import (
    ConfigOption,
    HostOption,
    JournalOption,
    JsonOption,
    ModeOption,
    PortOption,
    app_config,
    console,
    emit_json,
)
from ibkr_trader.commands.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from ibkr_trader.commands.view import governors_text, positions_table, results_table
from ibkr_trader.config import AppConfig
from ibkr_trader.integrations.order_executor import OrderResult
from ibkr_trader.journal import Journal
from ibkr_trader.models import (
    ClosureReason,
    ExecutionMode,
    OrderStatus,
    TradeRequest,
    TradingState,
    ValidationResult,
)
from ibkr_trader.orchestrator import governor_usage, position_dict
from ibkr_trader.risk import RiskManager
from ibkr_trader.runtime import journal_path_for, open_runtime

_OK = frozenset({OrderStatus.FILLED, OrderStatus.SIMULATED})


class _ReadOnlyStore:
    """A RiskStateStore over a read-only journal: reads pass through, writes are dropped."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    def record_risk_decision(self, request: TradeRequest, result: ValidationResult) -> int:
        return 0

    def record_trading_state(self, state: TradingState, cause: str) -> None:
        return None

    def last_trading_state(self) -> tuple[TradingState, str] | None:
        return self._journal.last_trading_state()

    def record_day_trade(self, contract_key: str, symbol: str, trade_date: date) -> None:
        return None

    def day_trades_between(self, start: date, end: date) -> list[tuple[str, date]]:
        return self._journal.day_trades_between(start, end)

    def put_risk_state(self, key: str, value: float | str | None, as_of: date | None) -> None:
        return None

    def get_risk_state(self, key: str) -> tuple[float | str | None, date | None] | None:
        return self._journal.get_risk_state(key)

    def record_event(self, kind: str, detail: dict[str, Any]) -> None:
        return None


def status(
    mode: ModeOption = None,
    config: ConfigOption = None,
    journal: JournalOption = None,
    as_json: JsonOption = False,
) -> None:
    """Trading state, governors, kill switch, the last cycle (from the journal; no gateway)."""
    cfg = app_config(config, mode=mode, journal=journal)
    payload = _status(cfg)
    if as_json:
        emit_json(payload)
        return
    out = console()
    out.print(f"[bold]ibkr-trader status[/bold] ({payload['mode']}, journal {payload['journal']})")
    out.print(f"trading state: [bold]{payload['trading_state']}[/bold] ({payload['cause']})")
    switch = payload["kill_switch"]
    out.print(
        f"kill switch: {'ENGAGED' if switch['engaged'] else 'off'} ({switch['path']})",
        markup=False,
    )
    out.print(f"governors: {governors_text(payload['governors'])}", markup=False)
    out.print(f"unresolved orders: {payload['unresolved_orders']}")
    for key in ("last_cycle", "last_reconciliation"):
        if payload.get(key):
            out.print(f"{key.replace('_', ' ')}: {payload[key]}", markup=False)


def _status(cfg: AppConfig) -> dict[str, Any]:
    mode = ExecutionMode(cfg.run.mode)
    path = journal_path_for(cfg)
    switch = cfg.kill_switch_path()
    clock = SystemClock()
    base: dict[str, Any] = {
        "mode": mode.value,
        "journal": str(path),
        "kill_switch": {"path": str(switch), "engaged": switch.exists()},
    }
    if not path.exists():
        risk_state = "HALTED" if switch.exists() else "ACTIVE"
        return {
            **base,
            "trading_state": risk_state,
            "cause": "nothing journaled yet",
            "governors": {},
            "unresolved_orders": 0,
            "last_cycle": None,
            "last_reconciliation": None,
        }
    with Journal.open(path, mode, clock, read_only=True) as journal:
        limits = cfg.risk
        risk = RiskManager(limits, _ReadOnlyStore(journal), clock, kill_switch_path=switch)
        unresolved = journal.unresolved_intents()
        cycles = journal.events(limit=1, kind="cycle")
        recs = journal.events(limit=1, kind="reconciliation")
        last_cycle = cycles[-1] if cycles else None
        last_rec = recs[-1] if recs else None
        return {
            **base,
            "trading_state": risk.trading_state.value,
            "cause": risk.state_cause,
            "governors": governor_usage(risk, clock),
            "unresolved_orders": len(unresolved),
            "last_cycle": (
                {"at": last_cycle.at.isoformat(), **last_cycle.detail} if last_cycle else None
            ),
            "last_reconciliation": (
                {"at": last_rec.at.isoformat(), **last_rec.detail} if last_rec else None
            ),
        }


def positions(
    mode: ModeOption = None,
    host: HostOption = None,
    port: PortOption = None,
    config: ConfigOption = None,
    journal: JournalOption = None,
    as_json: JsonOption = False,
) -> None:
    """Open positions with P&L, days to expiry and the Strategy C closure flags."""
    cfg = app_config(config, mode=mode, host=host, port=port, journal=journal)

    async def fetch() -> list[dict[str, Any]]:
        async with open_runtime(cfg) as rt:
            held = await rt.gateway.get_positions(cfg.gateway.timeout)
            if not as_json:
                console().print(positions_table(held, title=f"Positions ({rt.target})"))
            return [position_dict(p) for p in held]

    rows = asyncio.run(fetch())
    if as_json:
        emit_json({"mode": cfg.run.mode, "positions": rows})


def close(
    position_id: Annotated[
        str | None, typer.Argument(help="The position to close (see `positions`).")
    ] = None,
    close_all: Annotated[bool, typer.Option("--all", help="Close every position.")] = False,
    reason: Annotated[
        str, typer.Option("--reason", help="Closure reason, e.g. MANUAL or DATA_QUARANTINE.")
    ] = ClosureReason.MANUAL.value,
    mode: ModeOption = None,
    host: HostOption = None,
    port: PortOption = None,
    config: ConfigOption = None,
    journal: JournalOption = None,
    as_json: JsonOption = False,
) -> None:
    """Close one position or all of them, through the RiskManager, with the reason journaled."""
    if (position_id is None) == (not close_all):
        typer.echo("error: give a POSITION_ID or --all (not both)", err=True)
        raise typer.Exit(EXIT_USAGE)
    try:
        closure = ClosureReason(reason.strip().upper())
    except ValueError:
        typer.echo(
            f"error: unknown reason {reason!r}; one of "
            + ", ".join(r.value for r in ClosureReason),
            err=True,
        )
        raise typer.Exit(EXIT_USAGE) from None
    cfg = app_config(config, mode=mode, host=host, port=port, journal=journal)

    async def act() -> tuple[list[OrderResult], str | None]:
        async with open_runtime(cfg) as rt:
            rec = await rt.orchestrator.reconciler.reconcile("close command", cfg.gateway.timeout)
            if rec.error is not None:
                return [], f"reconciliation failed, nothing sent: {rec.error}"
            if close_all:
                results = await rt.gateway.close_all_positions(
                    closure.value, cfg.run.order_timeout * 2
                )
            else:
                assert position_id is not None
                results = [
                    await rt.gateway.close_position(
                        position_id, closure.value, cfg.run.order_timeout
                    )
                ]
            if not as_json:
                console().print(results_table(results, title=f"Closes ({closure.value})"))
            return results, None

    results, problem = asyncio.run(act())
    ok = problem is None and all(r.status in _OK for r in results)
    if as_json:
        emit_json(
            {
                "reason": closure.value,
                "ok": ok,
                "error": problem,
                "results": [
                    {
                        "order_id": r.order_id,
                        "contract": r.contract_key,
                        "status": r.status.value,
                        "fill_quantity": r.fill_quantity,
                        "fill_price": r.fill_price,
                        "reason": r.rejection_reason,
                    }
                    for r in results
                ],
            }
        )
    elif problem:
        typer.echo(f"error: {problem}", err=True)
    elif not results:
        typer.echo("no open positions")
    raise typer.Exit(EXIT_OK if ok else EXIT_FAILURE)
