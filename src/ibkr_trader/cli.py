"""Command line: ``ibkr-trader``."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="ibkr-trader command line")


@app.command()
def version() -> None:
    """Print the version."""
    from ibkr_trader import __version__

    typer.echo(__version__)


def main() -> None:
    """Console-script entry point."""
    app()
