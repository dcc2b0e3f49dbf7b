"""The ``ibkr-trader`` app: the root options, ``version``, and one module per command group.

One exit-code policy for every command (:mod:`ibkr_trader.cli.errors`): 0 ok, 1 an
operational failure or refusal, 2 a usage or configuration error, 130 interrupted.
Logging (structlog) writes to stderr only, so ``--json`` output on stdout stays
machine-readable; it is configured by the commands that need it (``common.setup_logging``).

Start-up is kept short: the command modules import typer and the configuration only; rich,
the journal, ib_async, pandas and exchange_calendars are imported inside the commands that use
them (``bench/bench_cli.py`` measures it).
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from ibkr_trader.cli import account, config_cmd, control, demo, doctor, journal, run, sim
from ibkr_trader.cli.common import set_log_level
from ibkr_trader.cli.errors import PolicyGroup

app = typer.Typer(
    cls=PolicyGroup,
    no_args_is_help=True,
    add_completion=False,
    help="ibkr-trader command line",
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)


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
    set_log_level(log_level)


@app.command()
def version() -> None:
    """Print the version."""
    from ibkr_trader import __version__

    typer.echo(__version__)


run.register(app)
account.register(app)
control.register(app)
journal.register(app)
config_cmd.register(app)
sim.register(app)
demo.register(app)
doctor.register(app)


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app(prog_name="ibkr-trader")


if __name__ == "__main__":  # pragma: no cover
    main()
