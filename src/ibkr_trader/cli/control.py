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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ibkr_trader.cli.common import (
    INT,
    PATH,
    add_commands,
    app_config,
    argument,
    command,
    config_option,
    echo_lines,
    emit_json,
    exit_with,
    journal_option,
    json_option,
    mode_option,
    option,
)
from ibkr_trader.cli.errors import EXIT_FAILURE, EXIT_USAGE, CommandError

if TYPE_CHECKING:
    from ibkr_trader.config import AppConfig
    from ibkr_trader.models import TradingState

F = TypeVar("F", bound=Callable[..., Any])


def kill_switch_option(f: F) -> F:
    return option(
        "--kill-switch",
        "kill_switch",
        type=PATH,
        metavar="<path>",
        help="Kill-switch file (default: the configuration's [paths] kill_switch).",
    )(f)


def reason_option(default: str) -> Callable[[F], F]:
    return option("--reason", "reason", default=default, help="Why (journaled).")


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

    setup_logging(plain=True)
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
        click.echo(json.dumps(payload, sort_keys=True, default=str))
    else:
        echo_lines(payload)


@command("halt")
@reason_option("operator halt")
@config_option
@mode_option
@journal_option
@kill_switch_option
@json_option
def halt(
    reason: str,
    config: Path | None,
    mode: str | None,
    journal: Path | None,
    kill_switch: Path | None,
    as_json: bool,
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
        click.echo(f"error: {problem}", err=True)
        raise exit_with(EXIT_FAILURE)


@command("reduce")
@reason_option("operator reduce")
@config_option
@mode_option
@journal_option
@json_option
def reduce(
    reason: str, config: Path | None, mode: str | None, journal: Path | None, as_json: bool
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


@command("resume")
@reason_option("operator resume")
@config_option
@mode_option
@journal_option
@kill_switch_option
@json_option
def resume(
    reason: str,
    config: Path | None,
    mode: str | None,
    journal: Path | None,
    kill_switch: Path | None,
    as_json: bool,
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


@command("ack")
@argument("perm_id", type=INT, type_label="<int>", help="The broker order's permId (see `status`).")
@option("--by", "by", default="", show_default=False, help="Who accounts for the order.")
@option("--reason", "reason", default="", show_default=False, help="Why it is not ours / fine.")
@config_option
@mode_option
@journal_option
@json_option
def ack(
    perm_id: int,
    by: str,
    reason: str,
    config: Path | None,
    mode: str | None,
    journal: Path | None,
    as_json: bool,
) -> None:
    """Acknowledge a broker order unknown to the journal: reconciliation stops halting on it."""
    if perm_id <= 0 or not by.strip() or not reason.strip():
        click.echo("error: give a positive PERM_ID, --by NAME and --reason WHY", err=True)
        raise exit_with(EXIT_USAGE)
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
        click.echo("next: `ibkr-trader resume` if trading was halted for it")


def register(group: click.Group) -> None:
    """Add ``halt``, ``reduce``, ``resume`` and ``ack`` to a click group."""
    add_commands(group, halt, reduce, resume, ack)
