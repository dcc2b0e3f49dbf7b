"""``ibkr-trader journal`` and ``ibkr-trader explain ORDER_REF``.

Both open the journal READ-ONLY (they never write). Exit codes: 0 success, 1 an order
reference that is not in the journal, 2 a journal problem (missing, not a journal, damaged,
locked, other mode) with the message on stderr.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, RenderableType

from ibkr_trader.clock import NY, Clock, SystemClock
from ibkr_trader.journal import render
from ibkr_trader.journal.records import JournalError, jsonable
from ibkr_trader.journal.store import Journal, default_journal_path
from ibkr_trader.models import ExecutionMode

EXIT_NOT_FOUND = 1
EXIT_JOURNAL_ERROR = 2

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
        raise typer.BadParameter(
            f"{text!r}: use 30m, 2h, 7d, 1w, YYYY-MM-DD or an ISO datetime", param_hint="--since"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=NY)


def _console() -> Console:
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    return console


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _open(path: Path | None, mode: JournalMode) -> Journal:
    target = path if path is not None else default_journal_path(mode.value)
    try:
        return Journal.open(target, ExecutionMode(mode.value), read_only=True)
    except JournalError as exc:
        hint = "" if target.exists() else f" (nothing journaled yet in {mode.value} mode)"
        raise _fail(f"{exc}{hint}", EXIT_JOURNAL_ERROR) from exc


ModeOption = Annotated[JournalMode, typer.Option("--mode", help="Which journal: dry_run or paper.")]
PathOption = Annotated[
    Path | None,
    typer.Option("--path", help="Journal file (default: the mode's default path)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


def register(app: typer.Typer, clock: Clock | None = None) -> None:
    """Add ``journal`` and ``explain`` to the top-level app."""
    the_clock: Clock = clock or SystemClock()

    @app.command("journal")
    def journal_command(
        listing: Annotated[
            Listing, typer.Argument(help="orders, fills, closures, decisions or events.")
        ] = Listing.ORDERS,
        since: Annotated[
            str | None,
            typer.Option("--since", help="30m, 2h, 7d, 1w, YYYY-MM-DD or ISO datetime."),
        ] = None,
        symbol: Annotated[str | None, typer.Option("--symbol", help="Underlying symbol.")] = None,
        json_out: JsonOption = False,
        mode: ModeOption = JournalMode.DRY_RUN,
        path: PathOption = None,
        limit: Annotated[int, typer.Option("--limit", min=1, help="Latest N rows.")] = 50,
    ) -> None:
        """List what the journal recorded (newest last)."""
        since_at = parse_since(since, the_clock.now()) if since else None
        with _open(path, mode) as journal:
            try:
                rows: list[Any]
                if listing is Listing.ORDERS:
                    rows = journal.orders(since_at, symbol, limit)
                elif listing is Listing.FILLS:
                    rows = journal.fills(since_at, symbol, limit)
                elif listing is Listing.CLOSURES:
                    rows = journal.closures(since_at, symbol, limit)
                elif listing is Listing.DECISIONS:
                    rows = journal.decisions(since_at, symbol, limit)
                else:
                    rows = journal.events(since_at, symbol, limit)
            except JournalError as exc:
                raise _fail(str(exc), EXIT_JOURNAL_ERROR) from exc
            if json_out:
                typer.echo(
                    json.dumps(
                        {
                            "journal": str(journal.path),
                            "mode": mode.value,
                            "listing": listing.value,
                            "rows": [jsonable(r) for r in rows],
                        }
                    )
                )
                return
            console = _console()
            tables: dict[Listing, Callable[[Any], RenderableType]] = {
                Listing.ORDERS: render.orders_table,
                Listing.FILLS: render.fills_table,
                Listing.CLOSURES: render.closures_table,
                Listing.DECISIONS: render.decisions_table,
                Listing.EVENTS: render.events_table,
            }
            console.print(tables[listing](rows))
            console.print(
                f"[dim]{len(rows)} {listing.value} from {journal.path} ({mode.value})[/dim]"
            )

    @app.command("explain")
    def explain_command(
        order_ref: Annotated[str, typer.Argument(help="The client order id (IB orderRef).")],
        json_out: JsonOption = False,
        mode: ModeOption = JournalMode.DRY_RUN,
        path: PathOption = None,
    ) -> None:
        """Why did it do that? The intent, every risk check, every status, fills, closure."""
        with _open(path, mode) as journal:
            try:
                found = journal.explain(order_ref.strip())
            except JournalError as exc:
                raise _fail(str(exc), EXIT_JOURNAL_ERROR) from exc
            if found is None:
                raise _fail(
                    f"no order {order_ref!r} in the {mode.value} journal {journal.path}",
                    EXIT_NOT_FOUND,
                )
            if json_out:
                payload = found.to_dict()
                payload["closure_reason"] = found.closure_reason
                typer.echo(json.dumps(payload))
                return
            _console().print(render.explanation(found))
