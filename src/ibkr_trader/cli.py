"""Command line: ``ibkr-trader``. Thin: commands parse, wire and delegate.

One exit-code policy for every command (:mod:`ibkr_trader.commands.errors`): 0 ok, 1 an
operational failure or refusal, 2 a usage or configuration error, 130 interrupted.
Logging (structlog) is configured first and always writes to stderr, so ``--json`` output on
stdout stays machine-readable.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any, TextIO

import typer

from ibkr_trader import commands as app_commands
from ibkr_trader.journal import commands as journal_commands
from ibkr_trader.logging import configure_logging
from ibkr_trader.risk import commands as risk_commands
from ibkr_trader.sim import commands as sim_commands

app = typer.Typer(
    cls=app_commands.PolicyGroup,
    no_args_is_help=True,
    add_completion=False,
    help="ibkr-trader command line",
    pretty_exceptions_show_locals=False,
)


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the moment of writing (not when configured),
    so a replaced and closed stream (a test runner's) is never kept by the loggers."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def _configure_logging(level: str) -> None:
    saved: TextIO = sys.stderr
    proxy: Any = _CurrentStderr()
    sys.stderr = proxy
    try:
        configure_logging(level)
    finally:
        sys.stderr = saved


@app.callback()
def _root(
    log_level: Annotated[
        str,
        typer.Option(
            "--log-level", help="Log level (logs go to stderr).", envvar="IBKR_TRADER_LOG"
        ),
    ] = "WARNING",
) -> None:
    """ibkr-trader: the layer between an options-trading bot and Interactive Brokers."""
    _configure_logging(log_level)


@app.command()
def version() -> None:
    """Print the version."""
    from ibkr_trader import __version__

    typer.echo(__version__)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def demo(ctx: typer.Context) -> None:
    """The handoff's full cycle once (dry-run, in-process simulated gateway by default).

    Takes the options of ``python -m ibkr_trader.integrations.ibkr_gateway``.
    """
    from ibkr_trader.demo import main as demo_main

    raise typer.Exit(demo_main(list(ctx.args)))


app_commands.register(app)
sim_commands.register(app)
journal_commands.register(app)
risk_commands.register(app)


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app(prog_name="ibkr-trader")


if __name__ == "__main__":  # pragma: no cover
    main()
