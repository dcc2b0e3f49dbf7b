"""``status``, ``positions`` and ``close``.

``status`` reads the configured journal and kill-switch file only (it never connects and never
writes): the trading state and its cause, the governors, day trades, the last cycle and the
last reconciliation. With no journal yet it says so (and still shows the kill switch).

``positions`` and ``close`` connect to the gateway with a **second client id** (``[gateway]
client_id + 1``, or ``--client-id``), so they work while ``run`` holds ``client_id``; ``close``
reconciles first and sends nothing if the reconciliation fails. Exit codes: the common policy
(close: 1 unless every close filled).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ibkr_trader.cli.common import (
    add_commands,
    app_config,
    argument,
    client_id_option,
    command,
    config_option,
    console,
    emit_json,
    exit_with,
    host_option,
    journal_option,
    json_option,
    mode_option,
    option,
    port_option,
    setup_logging,
)
from ibkr_trader.cli.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from ibkr_trader.config import AppConfig
    from ibkr_trader.integrations.order_executor import OrderResult
    from ibkr_trader.journal import Journal
    from ibkr_trader.models import TradeRequest, TradingState, ValidationResult


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


@command("status")
@mode_option
@config_option
@journal_option
@json_option
def status(mode: str | None, config: Path | None, journal: Path | None, as_json: bool) -> None:
    """Trading state, governors, kill switch, the last cycle (from the journal; no gateway)."""
    cfg = app_config(config, mode=mode, journal=journal)
    payload = status_payload(cfg)
    if as_json:
        emit_json(payload)
        return
    for line in status_lines(payload):
        click.echo(line)


def status_lines(payload: dict[str, Any]) -> list[str]:
    """The human-readable status: one line per fact, no raw dicts."""
    from ibkr_trader.cli.text import governors_text

    lines = [f"ibkr-trader status ({payload['mode']}, journal {payload['journal']})"]
    switch = payload["kill_switch"]
    if not payload["journal_exists"]:
        lines.append(
            f"no journal yet at {payload['journal']}: the bot has not run with this "
            "configuration (check --config / --mode)"
        )
        lines.append(f"kill switch: {'ENGAGED' if switch['engaged'] else 'off'} ({switch['path']})")
        return lines
    lines.append(f"trading state: {payload['trading_state']} ({payload['cause']})")
    lines.append(f"kill switch: {'ENGAGED' if switch['engaged'] else 'off'} ({switch['path']})")
    lines.append(f"governors: {governors_text(payload['governors'])}")
    lines.append(f"unresolved orders: {payload['unresolved_orders']}")
    cycle = payload.get("last_cycle")
    if cycle:
        actions = cycle.get("actions") or []
        kinds = ", ".join(sorted({str(a.get("kind")) for a in actions})) or "nothing to do"
        lines.append(
            f"last cycle: #{cycle.get('cycle')} at {cycle.get('at')}, "
            f"{cycle.get('trading_state')}, entries "
            f"{'allowed' if cycle.get('entries_allowed') else 'blocked'}"
            + (f" ({cycle.get('entry_block')})" if cycle.get("entry_block") else "")
            + f"; {len(actions)} decision(s): {kinds}"
            + (f"; {len(cycle['errors'])} error(s)" if cycle.get("errors") else "")
        )
    rec = payload.get("last_reconciliation")
    if rec:
        unknown = rec.get("unknown_orders") or []
        lines.append(
            f"last reconciliation: {rec.get('at')} ({rec.get('trigger')}): "
            + (f"FAILED: {rec.get('error')}" if rec.get("error") else "ok")
            + f", {rec.get('open_orders', 0)} open / {rec.get('completed_orders', 0)} "
            f"completed orders, {len(rec.get('fills_recorded') or [])} fills recorded"
        )
        for order in unknown:
            lines.append(f"  UNKNOWN broker order: {order} (ibkr-trader ack PERM_ID --by --reason)")
        for note in rec.get("notes") or []:
            lines.append(f"  {note}")
    return lines


def status_payload(cfg: AppConfig) -> dict[str, Any]:
    path = cfg.journal_path()
    switch = cfg.kill_switch_path()
    base: dict[str, Any] = {
        "mode": cfg.run.mode,
        "journal": str(path),
        "journal_exists": path.exists(),
        "kill_switch": {"path": str(switch), "engaged": switch.exists()},
    }
    if not path.exists():
        return {
            **base,
            "trading_state": "HALTED" if switch.exists() else None,
            "cause": ("kill switch engaged" if switch.exists() else "nothing journaled yet"),
            "governors": {},
            "unresolved_orders": 0,
            "last_cycle": None,
            "last_reconciliation": None,
        }
    setup_logging()
    from ibkr_trader.clock import SystemClock
    from ibkr_trader.journal import Journal
    from ibkr_trader.models import ExecutionMode
    from ibkr_trader.risk.manager import RiskManager
    from ibkr_trader.risk.usage import governor_usage

    clock = SystemClock()
    with Journal.open(path, ExecutionMode(cfg.run.mode), clock, read_only=True) as journal:
        risk = RiskManager(cfg.risk, _ReadOnlyStore(journal), clock, kill_switch_path=switch)
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


def _side_id(cfg: AppConfig, client_id: int | None) -> int:
    return cfg.side_client_id() if client_id is None else client_id


@command("positions")
@mode_option
@host_option
@port_option
@client_id_option
@config_option
@journal_option
@json_option
def positions(
    mode: str | None,
    host: str | None,
    port: int | None,
    client_id: int | None,
    config: Path | None,
    journal: Path | None,
    as_json: bool,
) -> None:
    """Open positions with P&L, days to expiry and the Strategy C closure flags."""
    cfg = app_config(config, mode=mode, host=host, port=port, journal=journal)
    setup_logging()
    import asyncio

    from ibkr_trader.cli.view import positions_table
    from ibkr_trader.orchestrator import position_dict
    from ibkr_trader.runtime import open_runtime

    async def fetch() -> list[dict[str, Any]]:
        async with open_runtime(cfg, client_id=_side_id(cfg, client_id)) as rt:
            held = await rt.gateway.get_positions(cfg.gateway.timeout)
            if not as_json:
                console().print(positions_table(held, title=f"Positions ({rt.target})"))
            return [position_dict(p) for p in held]

    rows = asyncio.run(fetch())
    if as_json:
        emit_json({"mode": cfg.run.mode, "positions": rows})


@command("close")
@argument("position_id", required=False, help="The position to close (see `positions`).")
@option("--all", "close_all", is_flag=True, default=False, help="Close every position.")
@option(
    "--reason",
    "reason",
    default="MANUAL",
    help="Closure reason, e.g. MANUAL or DATA_QUARANTINE.",
)
@mode_option
@host_option
@port_option
@client_id_option
@config_option
@journal_option
@json_option
def close(
    position_id: str | None,
    close_all: bool,
    reason: str,
    mode: str | None,
    host: str | None,
    port: int | None,
    client_id: int | None,
    config: Path | None,
    journal: Path | None,
    as_json: bool,
) -> None:
    """Close one position or all of them, through the RiskManager, with the reason journaled."""
    if (position_id is None) == (not close_all):
        click.echo("error: give a POSITION_ID or --all (not both)", err=True)
        raise exit_with(EXIT_USAGE)
    from ibkr_trader.models import ClosureReason

    try:
        closure = ClosureReason(reason.strip().upper())
    except ValueError:
        click.echo(
            f"error: unknown reason {reason!r}; one of "
            + ", ".join(r.value for r in ClosureReason),
            err=True,
        )
        raise exit_with(EXIT_USAGE) from None
    cfg = app_config(config, mode=mode, host=host, port=port, journal=journal)
    setup_logging()
    import asyncio

    from ibkr_trader.cli.view import results_table
    from ibkr_trader.models import OrderStatus
    from ibkr_trader.runtime import open_runtime

    async def act() -> tuple[list[OrderResult], str | None]:
        async with open_runtime(cfg, client_id=_side_id(cfg, client_id)) as rt:
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
    done = frozenset({OrderStatus.FILLED, OrderStatus.SIMULATED})
    ok = problem is None and all(r.status in done for r in results)
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
        click.echo(f"error: {problem}", err=True)
    elif not results:
        click.echo("no open positions")
    raise exit_with(EXIT_OK if ok else EXIT_FAILURE)


def register(group: click.Group) -> None:
    """Add ``status``, ``positions`` and ``close`` to a click group."""
    add_commands(group, status, positions, close)
