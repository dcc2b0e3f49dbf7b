"""``ibkr-trader journal`` and ``ibkr-trader explain ORDER_REF``.

Both read the journal the configuration names (``--config`` / ``$IBKR_TRADER_CONFIG``, the
mode's journal, ``--journal FILE``), READ-ONLY: they never write. Exit codes (the common
policy): 0 success, 1 not found (no journal yet, or an order reference that is not in it) or
a journal problem (not a journal, damaged, locked, other mode), 2 a usage error; the message
is on stderr.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ibkr_trader.cli.common import (
    PATH,
    add_commands,
    app_config,
    argument,
    choice,
    command,
    config_option,
    int_range,
    json_option,
    option,
)
from ibkr_trader.cli.errors import EXIT_FAILURE
from ibkr_trader.clock import NY, Clock, SystemClock

if TYPE_CHECKING:
    from rich.console import Console

    from ibkr_trader.journal.store import Journal

EXIT_NOT_FOUND = EXIT_FAILURE
EXIT_JOURNAL_ERROR = EXIT_FAILURE

_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class JournalMode(StrEnum):
    DRY_RUN = "dry_run"
    PAPER = "paper"


class Listing(StrEnum):
    ORDERS = "orders"
    FILLS = "fills"
    CLOSURES = "closures"
    DECISIONS = "decisions"
    EVENTS = "events"


def parse_since(text: str, now: datetime) -> datetime:
    """``30m``/``2h``/``7d``/``1w`` ago, an ISO date (New York midnight) or datetime.

    A datetime without a zone is read as New York time.
    """
    match = _RELATIVE.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2).lower()
        return now - timedelta(**{_UNITS[unit]: amount})
    try:
        if len(text.strip()) == 10:
            return datetime.combine(date.fromisoformat(text.strip()), time(), tzinfo=NY)
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: use 30m, 2h, 7d, 1w, YYYY-MM-DD or an ISO datetime", param_hint="--since"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=NY)


def _console() -> Console:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    return console


def _fail(message: str, code: int) -> click.exceptions.Exit:
    click.echo(f"error: {message}", err=True)
    return click.exceptions.Exit(code)


def _open(config: Path | None, mode: str | None, path: Path | None) -> Journal:
    """The configured journal, read-only (not found / damaged -> exit 1, with the path)."""
    from ibkr_trader.journal.records import JournalError
    from ibkr_trader.journal.store import Journal
    from ibkr_trader.models import ExecutionMode

    cfg = app_config(config, mode=mode, journal=path)
    target = cfg.journal_path()
    if not target.exists():
        raise _fail(
            f"no journal at {target}: nothing journaled yet in {cfg.run.mode} mode "
            "(check --config / --mode / --journal)",
            EXIT_NOT_FOUND,
        )
    try:
        return Journal.open(target, ExecutionMode(cfg.run.mode), read_only=True)
    except JournalError as exc:
        raise _fail(str(exc), EXIT_JOURNAL_ERROR) from exc


def _mode_option(f: Any) -> Any:
    return option(
        "--mode",
        "mode",
        type=choice([m.value for m in JournalMode]),
        metavar="<dry_run|paper>",
        help="Which journal: dry_run or paper (default: the configuration's).",
    )(f)


def _path_option(f: Any) -> Any:
    return option(
        "--journal",
        "--path",
        "path",
        type=PATH,
        metavar="<path>",
        help="Journal file (default: the configured one).",
    )(f)


def commands(clock: Clock | None = None) -> tuple[click.Command, click.Command]:
    """``journal`` and ``explain``, reading the time from ``clock`` (default: the system's)."""
    the_clock: Clock = clock or SystemClock()

    @command("journal")
    @argument(
        "listing",
        type=choice([item.value for item in Listing]),
        type_label="<orders|fills|closures|decisions|events>",
        default=Listing.ORDERS.value,
        required=False,
        help="orders, fills, closures, decisions or events.",
    )
    @option("--since", "since", help="30m, 2h, 7d, 1w, YYYY-MM-DD or ISO datetime.")
    @option("--symbol", "symbol", help="Underlying symbol.")
    @json_option
    @_mode_option
    @_path_option
    @config_option
    @option(
        "--limit",
        "limit",
        type=int_range(min=1),
        metavar="<int range>",
        default=50,
        help="Latest N rows.",
    )
    def journal_command(
        listing: str,
        since: str | None,
        symbol: str | None,
        as_json: bool,
        mode: str | None,
        path: Path | None,
        config: Path | None,
        limit: int,
    ) -> None:
        """List what the journal recorded (newest last)."""
        from ibkr_trader.journal.records import JournalError, jsonable

        kind = Listing(listing)
        since_at = parse_since(since, the_clock.now()) if since else None
        with _open(config, mode, path) as journal:
            try:
                rows: list[Any]
                if kind is Listing.ORDERS:
                    rows = journal.orders(since_at, symbol, limit)
                elif kind is Listing.FILLS:
                    rows = journal.fills(since_at, symbol, limit)
                elif kind is Listing.CLOSURES:
                    rows = journal.closures(since_at, symbol, limit)
                elif kind is Listing.DECISIONS:
                    rows = journal.decisions(since_at, symbol, limit)
                else:
                    rows = journal.events(since_at, symbol, limit)
            except JournalError as exc:
                raise _fail(str(exc), EXIT_JOURNAL_ERROR) from exc
            if as_json:
                click.echo(
                    json.dumps(
                        {
                            "journal": str(journal.path),
                            "mode": journal.mode.value,
                            "listing": kind.value,
                            "rows": [jsonable(r) for r in rows],
                        }
                    )
                )
                return
            from ibkr_trader.journal import render

            console = _console()
            tables: dict[Listing, Callable[[Any], Any]] = {
                Listing.ORDERS: render.orders_table,
                Listing.FILLS: render.fills_table,
                Listing.CLOSURES: render.closures_table,
                Listing.DECISIONS: render.decisions_table,
                Listing.EVENTS: render.events_table,
            }
            console.print(tables[kind](rows))
            console.print(
                f"[dim]{len(rows)} {kind.value} from {journal.path} ({journal.mode.value})[/dim]"
            )

    @command("explain")
    @argument("order_ref", help="The client order id (IB orderRef).")
    @json_option
    @_mode_option
    @_path_option
    @config_option
    def explain_command(
        order_ref: str, as_json: bool, mode: str | None, path: Path | None, config: Path | None
    ) -> None:
        """Why did it do that? The intent, every risk check, every status, fills, closure."""
        from ibkr_trader.journal.records import JournalError

        with _open(config, mode, path) as journal:
            try:
                found = journal.explain(order_ref.strip())
            except JournalError as exc:
                raise _fail(str(exc), EXIT_JOURNAL_ERROR) from exc
            if found is None:
                raise _fail(
                    f"no order {order_ref!r} in the {journal.mode.value} journal {journal.path}",
                    EXIT_NOT_FOUND,
                )
            if as_json:
                payload = found.to_dict()
                payload["closure_reason"] = found.closure_reason
                click.echo(json.dumps(payload))
                return
            from ibkr_trader.journal import render

            _console().print(render.explanation(found))

    return journal_command, explain_command


journal, explain = commands()


def register(group: click.Group, clock: Clock | None = None) -> None:
    """Add ``journal`` and ``explain`` to a click group."""
    add_commands(group, *(commands(clock) if clock is not None else (journal, explain)))
