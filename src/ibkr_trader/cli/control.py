"""The operator's controls on a running bot: ``halt``, ``reduce``, ``resume`` and ``ack``.

They act on the kill switch and the journal *the configuration names* (``--config`` /
``$IBKR_TRADER_CONFIG``, the same loader as ``run``), so they reach the bot that runs with that
configuration:

- ``halt`` creates the kill-switch file (every RiskManager watching it halts on its next
  decision or refresh: no order at all, closes included) and records the HALT in the journal;
- ``reduce`` records REDUCING in the journal: no new entries, while every protective close
  keeps running (the running bot adopts it on its next cycle; a restart keeps it);
- ``resume`` removes the kill-switch file and records the resume (ACTIVE, or REDUCING while a
  loss governor still applies);
- ``ack PERM_ID --by NAME --reason WHY`` records that a broker order the journal does not know
  (a manual order in TWS, another program) is accounted for: reconciliation then reports it
  without halting. It does not resume; run ``resume`` after it.

Exit codes: 0 done, 1 the journal could not be written (``halt``: the kill switch is engaged
all the same, and the output says the journal was not updated), 2 invalid arguments.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ibkr_trader.cli.common import (
    ConfigOption,
    JournalOption,
    JsonOption,
    ModeOption,
    app_config,
    echo_lines,
    emit_json,
)
from ibkr_trader.cli.errors import EXIT_FAILURE, EXIT_USAGE, CommandError

if TYPE_CHECKING:
    from ibkr_trader.config import AppConfig
    from ibkr_trader.models import TradingState

KillSwitchOption = Annotated[
    Path | None,
    typer.Option(
        "--kill-switch",
        help="Kill-switch file (default: the configuration's [paths] kill_switch).",
    ),
]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why (journaled).")]


def _config(
    config: Path | None, mode: str | None, journal: Path | None, kill_switch: Path | None
) -> AppConfig:
    cfg = app_config(config, mode=mode, journal=journal)
    if kill_switch is not None:
        cfg = cfg.with_overrides(paths={"kill_switch": kill_switch})
    return cfg


def _record(cfg: AppConfig, action: str, cause: str) -> TradingState:
    """Apply ``halt`` / ``reduce`` / ``resume`` through a RiskManager on the journal."""
    from ibkr_trader.cli.common import setup_logging

    setup_logging()
    from ibkr_trader.clock import SystemClock
    from ibkr_trader.journal import Journal
    from ibkr_trader.models import ExecutionMode, TradingState
    from ibkr_trader.risk.manager import RiskManager

    with Journal.open(cfg.journal_path(), ExecutionMode(cfg.run.mode)) as journal:
        manager = RiskManager(
            cfg.risk, journal, SystemClock(), kill_switch_path=cfg.kill_switch_path()
        )
        if action == "halt":
            return manager.halt(cause)
        if action == "reduce":
            return manager.set_trading_state(TradingState.REDUCING, cause)
        return manager.resume(cause)


def _emit(payload: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(payload, sort_keys=True, default=str))
    else:
        echo_lines(payload)


def halt(
    reason: ReasonOption = "operator halt",
    config: ConfigOption = None,
    mode: ModeOption = None,
    journal: JournalOption = None,
    kill_switch: KillSwitchOption = None,
    as_json: JsonOption = False,
) -> None:
    """Halt trading: no order at all, closes included (kill-switch file + journal)."""
    from ibkr_trader.clock import SystemClock
    from ibkr_trader.risk import killswitch

    cfg = _config(config, mode, journal, kill_switch)
    path = cfg.kill_switch_path()
    cause = f"operator halt via CLI: {reason}"
    killswitch.engage(path, cause, SystemClock().now())
    payload: dict[str, Any] = {
        "trading_state": "HALTED",
        "kill_switch": str(path),
        "journal": str(cfg.journal_path()),
        "reason": cause,
    }
    problem = None
    try:
        payload["trading_state"] = _record(cfg, "halt", cause).value
    except Exception as exc:  # the kill switch is engaged either way: say so, exit 1
        problem = f"kill switch engaged, but the journal was not updated: {exc}"
        payload["journal_error"] = problem
    _emit(payload, as_json)
    if problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(EXIT_FAILURE)


def reduce(
    reason: ReasonOption = "operator reduce",
    config: ConfigOption = None,
    mode: ModeOption = None,
    journal: JournalOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stop new entries, keep protecting: every close still runs (REDUCING, journaled)."""
    cfg = _config(config, mode, journal, None)
    cause = f"operator reduce via CLI: {reason}"
    state = _record(cfg, "reduce", cause)
    _emit(
        {
            "trading_state": state.value,
            "journal": str(cfg.journal_path()),
            "reason": cause,
            "note": "entries stop; protective closes keep running; `resume` lifts it",
        },
        as_json,
    )


def resume(
    reason: ReasonOption = "operator resume",
    config: ConfigOption = None,
    mode: ModeOption = None,
    journal: JournalOption = None,
    kill_switch: KillSwitchOption = None,
    as_json: JsonOption = False,
) -> None:
    """Resume trading: remove the kill-switch file, lift HALT / REDUCING (governors apply)."""
    from ibkr_trader.risk import killswitch

    cfg = _config(config, mode, journal, kill_switch)
    path = cfg.kill_switch_path()
    removed = killswitch.disengage(path)
    cause = f"operator resume via CLI: {reason}"
    state = _record(cfg, "resume", cause)
    _emit(
        {
            "trading_state": state.value,
            "kill_switch": str(path),
            "kill_switch_removed": removed,
            "journal": str(cfg.journal_path()),
            "reason": cause,
        },
        as_json,
    )


def ack(
    perm_id: Annotated[int, typer.Argument(help="The broker order's permId (see `status`).")],
    by: Annotated[str, typer.Option("--by", help="Who accounts for the order.")] = "",
    reason: Annotated[str, typer.Option("--reason", help="Why it is not ours / fine.")] = "",
    config: ConfigOption = None,
    mode: ModeOption = None,
    journal: JournalOption = None,
    as_json: JsonOption = False,
) -> None:
    """Acknowledge a broker order unknown to the journal: reconciliation stops halting on it."""
    if perm_id <= 0 or not by.strip() or not reason.strip():
        typer.echo("error: give a positive PERM_ID, --by NAME and --reason WHY", err=True)
        raise typer.Exit(EXIT_USAGE)
    cfg = _config(config, mode, journal, None)
    from ibkr_trader.clock import SystemClock
    from ibkr_trader.journal import Journal
    from ibkr_trader.models import ExecutionMode
    from ibkr_trader.orders.reconcile import ACK_KEY_PREFIX

    path = cfg.journal_path()
    if not path.exists():
        raise CommandError(f"no journal at {path}: nothing to acknowledge against")
    detail = {
        "perm_id": perm_id,
        "by": by.strip(),
        "reason": reason.strip(),
        "at": SystemClock().now().isoformat(),
    }
    with Journal.open(path, ExecutionMode(cfg.run.mode)) as j:
        j.put_risk_state(f"{ACK_KEY_PREFIX}{perm_id}", json.dumps(detail), None)
        j.record_event("unknown_order_acknowledged", detail)
    payload = {"acknowledged": perm_id, "journal": str(path), **detail}
    if as_json:
        emit_json(payload)
    else:
        echo_lines(payload)
        typer.echo("next: `ibkr-trader resume` if trading was halted for it")


def register(app: typer.Typer) -> None:
    app.command("halt")(halt)
    app.command("reduce")(reduce)
    app.command("resume")(resume)
    app.command("ack")(ack)
