"""``ibkr-trader run``: the orchestrator, once or in a loop, with a live status view.

``--at "2026-12-01 10:30"`` rehearses at a New York market instant against the in-process
simulator (dry-run): its clock starts there and runs at real speed. The journal records, at the
start and the end of a session, both the wall-clock and the market time (``session_clock``
events), so every row's market time stamp maps back to when it really happened.

The live view appears at once, shows how long the cycle in flight has run and how long each
working order has waited for its fill, and is replaced by the cycle's panel when it is done.
Logs go to stderr above the view (rich's redirection), never through it. On Ctrl-C (and at the
end of a loop) a session summary is printed: orders, fills, closures with their reasons,
realized P&L with commissions, governors used.

Exit codes (the common policy): 0 the run finished (``--once``: its cycle had no error and
did not end HALTED; a loop: stopped by SIGTERM), 1 the gateway could not be reached / refused
(paper interlock, another account's journal) or the last cycle reported an error, ended
HALTED (the kill switch, the paper interlock) or found an unknown broker order (REDUCING: closes
allowed, no entries), 2 a usage or configuration error, 130
stopped by Ctrl-C.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ibkr_trader.cli.common import (
    PATH,
    add_commands,
    app_config,
    at_option,
    command,
    config_option,
    console,
    emit_json,
    exit_with,
    float_range,
    host_option,
    journal_option,
    json_option,
    mode_option,
    option,
    parse_at,
    port_option,
    setup_logging,
    speed_option,
)
from ibkr_trader.cli.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK
from ibkr_trader.clock import SystemClock

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from ibkr_trader.cli.view import SessionSummary
    from ibkr_trader.config import AppConfig
    from ibkr_trader.journal import OrderRow
    from ibkr_trader.orchestrator import CycleReport, OrchestratorRunner
    from ibkr_trader.runtime import Runtime


@command("run")
@mode_option
@option("--once", "once", is_flag=True, default=False, help="One cycle, then exit.")
@option(
    "--interval",
    "interval",
    type=float_range(min=0.1),
    metavar="<float range>",
    help="Seconds between cycles.",
)
@option(
    "--gameplan",
    "gameplan",
    type=PATH,
    metavar="<path>",
    help="Today's gameplan (.toml or .json).",
)
@host_option
@port_option
@config_option
@journal_option
@at_option
@speed_option
@json_option
def run(
    mode: str | None,
    once: bool,
    interval: float | None,
    gameplan: Path | None,
    host: str | None,
    port: int | None,
    config: Path | None,
    journal: Path | None,
    at: str | None,
    speed: float,
    as_json: bool,
) -> None:
    """Run the trading cycle (dry-run against the in-process simulator by default)."""
    cfg = app_config(
        config,
        mode=mode,
        host=host,
        port=port,
        journal=journal,
        interval=interval,
        gameplan=gameplan,
    )
    start = parse_at(at)
    check_rehearsal(cfg, start, speed)
    setup_logging()
    import asyncio

    code = asyncio.run(_run(cfg, once=once, as_json=as_json, start=start, speed=speed))
    raise exit_with(code)


def check_rehearsal(cfg: AppConfig, start: datetime | None, speed: float = 1.0) -> None:
    """``--at`` and ``--speed`` move the in-process simulator's clock; a real gateway's clock
    is its own."""
    if cfg.gateway.port is None:
        return
    from ibkr_trader.config import ConfigError

    if start is not None:
        raise ConfigError(
            "--at rehearses against the in-process simulator only (no gateway port); "
            "for `ibkr-trader sim` give --at to the sim itself"
        )
    if speed != 1.0:
        raise ConfigError(
            "--speed runs the in-process simulator's clock only (no gateway port): the bot's "
            "clock against a gateway is the machine's"
        )


async def record_clock(rt: Runtime, phase: str, start: datetime | None) -> None:
    """Journal both clocks: wall time (the machine's) and market time (the run's clock)."""
    wall = SystemClock().now()
    market = rt.clock.now()
    await rt.ajournal.record_event(
        "session_clock",
        {
            "phase": phase,
            "wall_time": wall.isoformat(),
            "market_time": market.isoformat(),
            "offset_seconds": round((market - wall).total_seconds(), 3),
            "rehearsal_at": start.isoformat() if start else None,
            "speed": getattr(rt.clock, "speed", 1.0),
            "simulated": rt.simulator is not None,
        },
    )


async def _open_orders(rt: Runtime) -> list[OrderRow]:
    try:
        return await rt.ajournal.call(rt.journal.unresolved_intents)
    except Exception:  # the view must never take the loop down
        return []


async def _run(
    cfg: AppConfig,
    *,
    once: bool,
    as_json: bool,
    start: datetime | None,
    speed: float = 1.0,
) -> int:
    import asyncio

    from ibkr_trader.orchestrator import OrchestratorRunner
    from ibkr_trader.runtime import open_runtime

    out = console()
    async with open_runtime(cfg, start=start, speed=speed) as rt:
        runner = OrchestratorRunner(
            rt.orchestrator, interval=cfg.run.interval, once=once, speed=speed
        )
        await record_clock(rt, "start", start)
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, runner.request_stop, sig.name)
                installed.append(sig)
        session_start = rt.clock.now()
        if not as_json:
            when = ""
            if start is not None:
                when = f", rehearsing at {start:%Y-%m-%d %H:%M} New York"
            if speed != 1.0:
                when += f", market clock at {speed:g}x"
            out.print(
                f"[bold]ibkr-trader[/bold] {rt.mode.value} against the {rt.target}{when} "
                f"({'one cycle' if once else f'every {cfg.run.interval:g} s; Ctrl-C stops'})"
            )
        try:
            if as_json:
                runner.on_report = lambda report: emit_json(_payload(rt, report))
                await runner.run()
            elif once or not out.is_terminal:
                orders: list[OrderRow] = []

                def show(report: CycleReport) -> None:
                    out.print(_view(rt, report, runner.reports, orders))

                async def collect() -> None:
                    orders[:] = await _open_orders(rt)

                runner.on_report = lambda report: show(report)
                await _with_orders(runner, collect)
            else:
                await _live(rt, runner, out)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            with contextlib.suppress(Exception):
                await record_clock(rt, "end", start)
        if not once and not as_json:
            summary = await session_summary(rt, runner, session_start)
            from ibkr_trader.cli.view import summary_view

            out.print(summary_view(summary))
        if runner.stopped_by == signal.SIGINT.name:
            return EXIT_INTERRUPTED
        if runner.stopped_by is not None:
            return EXIT_OK
        last = runner.reports[-1] if runner.reports else None
        if last is None or last.errors:
            return EXIT_FAILURE
        if last.trading_state == "HALTED":
            if not as_json:
                click.echo(f"error: trading is HALTED: {last.state_cause}", err=True)
            return EXIT_FAILURE
        unknown = last.reconciliation.unknown_orders if last.reconciliation else ()
        if unknown:  # REDUCING until the operator looks: entries refused, closes allowed
            if not as_json:
                click.echo(
                    f"error: {len(unknown)} unknown broker order(s); trading is "
                    f"{last.trading_state} until acknowledged (ibkr-trader ack) or resumed",
                    err=True,
                )
            return EXIT_FAILURE
        return EXIT_OK


async def _with_orders(runner: OrchestratorRunner, collect: Any) -> None:
    """Run the runner; the open orders are read before each report is shown."""
    import asyncio

    shown = runner.on_report
    pending: list[CycleReport] = []
    runner.on_report = pending.append
    task = asyncio.get_running_loop().create_task(runner.run())
    while not task.done():
        await asyncio.wait({task}, timeout=0.05)
        while pending:
            await collect()
            if shown is not None:
                shown(pending.pop(0))
    task.result()
    while pending:
        await collect()
        if shown is not None:
            shown(pending.pop(0))


async def _live(rt: Runtime, runner: OrchestratorRunner, out: Console) -> None:
    """The live view: at once, ticking while a cycle runs, then each cycle's panel."""
    import asyncio

    from rich.live import Live

    from ibkr_trader.cli.view import running_view

    last: list[RenderableType] = []
    reports_seen = [0]
    cycle_started = [time.monotonic()]

    def render(orders: list[OrderRow]) -> RenderableType:
        if len(runner.reports) > reports_seen[0]:
            reports_seen[0] = len(runner.reports)
            last[:] = [_view(rt, runner.reports[-1], runner.reports, orders)]
            cycle_started[0] = time.monotonic()
        if runner.reports and not orders and last:
            return last[0]
        return running_view(
            mode=rt.mode.value,
            target=rt.target,
            cycle=len(runner.reports) + 1,
            running_for=time.monotonic() - cycle_started[0],
            open_orders=orders,
            now=rt.clock.now(),
            order_timeout=rt.config.run.order_timeout,
            last=last[0] if last else None,
        )

    with Live(console=out, refresh_per_second=2, transient=False, redirect_stderr=True) as live:
        task = asyncio.get_running_loop().create_task(runner.run())
        while not task.done():
            live.update(render(await _open_orders(rt)))
            await asyncio.wait({task}, timeout=1.0)
        task.result()
        live.update(render(await _open_orders(rt)))


def _view(
    rt: Runtime, report: CycleReport, reports: list[CycleReport], orders: list[OrderRow]
) -> RenderableType:
    from ibkr_trader.cli.view import cycle_view
    from ibkr_trader.risk.usage import governor_usage

    return cycle_view(
        report,
        target=rt.target,
        governors=governor_usage(rt.risk, rt.clock),
        journal=str(rt.journal.path),
        recent=reports,
        account=rt.gateway.last_account,
        open_orders=orders,
        now=rt.clock.now(),
        order_timeout=rt.config.run.order_timeout,
    )


def _payload(rt: Runtime, report: CycleReport) -> dict[str, object]:
    from ibkr_trader.risk.usage import governor_usage

    data = report.to_dict()
    data["governors"] = governor_usage(rt.risk, rt.clock)
    data["journal"] = str(rt.journal.path)
    data["target"] = rt.target
    data["wall_time"] = SystemClock().now().isoformat()
    return data


def _finite(value: float | None) -> float:
    if value is None or not math.isfinite(value) or abs(value) > 1e300:
        return 0.0
    return float(value)


async def session_summary(
    rt: Runtime, runner: OrchestratorRunner, since: datetime
) -> SessionSummary:
    """Orders, fills, closures with reasons, realized P&L with commissions, governors used."""
    from ibkr_trader.cli.view import SessionSummary
    from ibkr_trader.risk.usage import governor_usage

    journal = rt.journal
    summary = SessionSummary(
        mode=rt.mode.value,
        cycles=len(runner.reports),
        market_started=since,
        market_ended=rt.clock.now(),
        governors=governor_usage(rt.risk, rt.clock),
        trading_state=rt.risk.trading_state.value,
        stopped_by=runner.stopped_by,
    )
    with contextlib.suppress(Exception):
        orders = await rt.ajournal.call(journal.orders, since, None, 10_000)
        fills = await rt.ajournal.call(journal.fills, since, None, 10_000)
        closures = await rt.ajournal.call(journal.closures, since, None, 10_000)
        summary.orders = [
            {
                "order": o.intent.client_order_id,
                "contract": o.intent.contract_key,
                "action": o.intent.action,
                "status": o.state.status,
                "closing": o.intent.is_closing,
            }
            for o in orders
        ]
        summary.fills = [
            {"exec_id": f.exec_id, "contract": f.contract_key, "qty": f.quantity, "price": f.price}
            for f in fills
        ]
        summary.closures = [{"contract": c.contract_key, "reason": c.reason} for c in closures]
        summary.realized_pnl = sum(_finite(f.realized_pnl) for f in fills)
        summary.commissions = sum(_finite(f.commission) for f in fills)
    return summary


def register(group: click.Group) -> None:
    """Add ``run`` to a click group."""
    add_commands(group, run)
