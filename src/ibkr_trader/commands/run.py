"""``ibkr-trader run``: the orchestrator, once or in a loop, with a live status view.

Exit codes (the common policy): 0 the run finished (``--once``: its cycle had no error; a
loop: stopped by SIGTERM), 1 the gateway could not be reached / refused (paper interlock) or
the last cycle reported an error, 2 a usage or configuration error, 130 stopped by Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import RenderableType
from rich.live import Live

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
from ibkr_trader.commands.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK
from ibkr_trader.commands.view import cycle_view
from ibkr_trader.config import AppConfig
from ibkr_trader.orchestrator import CycleReport, OrchestratorRunner, governor_usage
from ibkr_trader.runtime import Runtime, open_runtime


def run(
    mode: ModeOption = None,
    once: Annotated[bool, typer.Option("--once", help="One cycle, then exit.")] = False,
    interval: Annotated[
        float | None, typer.Option("--interval", help="Seconds between cycles.", min=0.1)
    ] = None,
    gameplan: Annotated[
        Path | None, typer.Option("--gameplan", help="Today's gameplan (.toml or .json).")
    ] = None,
    host: HostOption = None,
    port: PortOption = None,
    config: ConfigOption = None,
    journal: JournalOption = None,
    as_json: JsonOption = False,
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
    code = asyncio.run(_run(cfg, once=once, as_json=as_json))
    raise typer.Exit(code)


async def _run(cfg: AppConfig, *, once: bool, as_json: bool) -> int:
    out = console()
    async with open_runtime(cfg) as rt:
        runner = OrchestratorRunner(rt.orchestrator, interval=cfg.run.interval, once=once)
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, runner.request_stop, sig.name)
                installed.append(sig)
        if not as_json:
            out.print(
                f"[bold]ibkr-trader[/bold] {rt.mode.value} against the {rt.target} "
                f"({'one cycle' if once else f'every {cfg.run.interval:g} s; Ctrl-C stops'})"
            )
        try:
            if as_json:
                runner.on_report = lambda report: emit_json(_payload(rt, report))
                await runner.run()
            elif once or not out.is_terminal:
                runner.on_report = lambda report: out.print(_view(rt, report, runner.reports))
                await runner.run()
            else:
                with Live(console=out, refresh_per_second=2, transient=False) as live:
                    runner.on_report = lambda report: live.update(_view(rt, report, runner.reports))
                    await runner.run()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
        if runner.stopped_by == signal.SIGINT.name:
            return EXIT_INTERRUPTED
        if runner.stopped_by is not None:
            return EXIT_OK
        last = runner.reports[-1] if runner.reports else None
        return EXIT_FAILURE if last is None or last.errors else EXIT_OK


def _view(rt: Runtime, report: CycleReport, reports: list[CycleReport]) -> RenderableType:
    return cycle_view(
        report,
        target=rt.target,
        governors=governor_usage(rt.risk, rt.clock),
        journal=str(rt.journal.path),
        recent=reports,
    )


def _payload(rt: Runtime, report: CycleReport) -> dict[str, object]:
    data = report.to_dict()
    data["governors"] = governor_usage(rt.risk, rt.clock)
    data["journal"] = str(rt.journal.path)
    data["target"] = rt.target
    return data
