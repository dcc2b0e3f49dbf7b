"""``ibkr-trader halt`` and ``ibkr-trader resume``: the operator's kill switch.

``halt`` creates the kill-switch file (every RiskManager watching that path halts on its next
decision or refresh); ``resume`` removes it. With ``--journal`` the state change is also recorded
in the journal through a RiskManager, so a process sharing that journal adopts it, and a resume
still yields to a governor that applies for the day or week (the state becomes REDUCING).

Exit codes: 0 done, 1 the journal could not be opened or written, 2 invalid arguments.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ibkr_trader.clock import SystemClock
from ibkr_trader.models import ExecutionMode, TradingState
from ibkr_trader.risk import killswitch
from ibkr_trader.risk.config import RiskLimits

KillSwitchOption = Annotated[
    Path | None,
    typer.Option(
        "--kill-switch",
        help="kill-switch file (default: $IBKR_TRADER_KILL_SWITCH or ~/.ibkr-trader/HALT)",
    ),
]
JournalOption = Annotated[
    Path | None,
    typer.Option("--journal", help="also record the state change in this journal file"),
]
ModeOption = Annotated[
    str, typer.Option("--mode", help="the journal's execution mode: dry_run or paper")
]
JsonOption = Annotated[bool, typer.Option("--json", help="print a JSON object")]


def _mode(value: str) -> ExecutionMode:
    try:
        mode = ExecutionMode(value.strip().lower())
    except ValueError:
        mode = ExecutionMode.LIVE
    if mode is ExecutionMode.LIVE:
        typer.echo(f"error: --mode must be dry_run or paper, not {value!r}", err=True)
        raise typer.Exit(2)
    return mode


def _record(
    journal_path: Path, mode: ExecutionMode, kill_switch: Path, action: str, reason: str
) -> TradingState:
    """Open the journal lazily and apply ``halt`` or ``resume`` through a RiskManager."""
    try:
        from ibkr_trader.journal import Journal  # lazy: the CLI must not need it to halt
    except ImportError as exc:  # pragma: no cover - the journal ships with the package
        typer.echo(
            f"error: journal unavailable ({exc}); the kill-switch file was updated", err=True
        )
        raise typer.Exit(1) from exc
    from ibkr_trader.risk.manager import RiskManager

    try:
        journal = Journal.open(journal_path, mode)
    except Exception as exc:
        typer.echo(f"error: cannot open journal {journal_path}: {exc}", err=True)
        raise typer.Exit(1) from exc
    try:
        manager = RiskManager(RiskLimits(), journal, SystemClock(), kill_switch_path=kill_switch)
        if action == "halt":
            return manager.halt(reason)
        return manager.resume(reason)
    except Exception as exc:
        typer.echo(f"error: cannot record the state change in {journal_path}: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        journal.close()


def _emit(payload: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(payload, sort_keys=True))
        return
    for key, value in payload.items():
        if value is not None:
            typer.echo(f"{key}: {value}")


def halt(
    reason: Annotated[str, typer.Option("--reason", help="why trading stops")] = "operator halt",
    kill_switch: KillSwitchOption = None,
    journal: JournalOption = None,
    mode: ModeOption = "dry_run",
    as_json: JsonOption = False,
) -> None:
    """Halt trading: create the kill-switch file (and record it in the journal)."""
    exec_mode = _mode(mode)
    path = kill_switch or killswitch.default_kill_switch_path()
    cause = f"operator halt via CLI: {reason}"
    killswitch.engage(path, cause, SystemClock().now())
    state = _record(journal, exec_mode, path, "halt", cause) if journal else TradingState.HALTED
    _emit(
        {
            "trading_state": state.value,
            "kill_switch": str(path),
            "journal": str(journal) if journal else None,
            "reason": cause,
        },
        as_json,
    )


def resume(
    reason: Annotated[
        str, typer.Option("--reason", help="why trading resumes")
    ] = "operator resume",
    kill_switch: KillSwitchOption = None,
    journal: JournalOption = None,
    mode: ModeOption = "dry_run",
    as_json: JsonOption = False,
) -> None:
    """Resume trading: remove the kill-switch file (governors still apply)."""
    exec_mode = _mode(mode)
    path = kill_switch or killswitch.default_kill_switch_path()
    removed = killswitch.disengage(path)
    cause = f"operator resume via CLI: {reason}"
    state: TradingState | None = None
    if journal:
        state = _record(journal, exec_mode, path, "resume", cause)
    _emit(
        {
            "trading_state": state.value if state else None,
            "kill_switch": str(path),
            "kill_switch_removed": removed,
            "journal": str(journal) if journal else None,
            "reason": cause,
        },
        as_json,
    )


def register(app: typer.Typer) -> None:
    """Add ``halt`` and ``resume`` to the top-level command line."""
    app.command("halt")(halt)
    app.command("resume")(resume)
