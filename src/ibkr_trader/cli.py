"""Command line: ``ibkr-trader``. Thin: commands parse, wire and delegate."""

from __future__ import annotations

import typer

from ibkr_trader.journal import commands as journal_commands
from ibkr_trader.risk import commands as risk_commands
from ibkr_trader.sim import commands as sim_commands

app = typer.Typer(no_args_is_help=True, add_completion=False, help="ibkr-trader command line")


@app.callback()
def _root() -> None:
    """ibkr-trader: the layer between an options-trading bot and Interactive Brokers."""


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


sim_commands.register(app)
journal_commands.register(app)
risk_commands.register(app)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="ibkr-trader")


if __name__ == "__main__":  # pragma: no cover
    main()
