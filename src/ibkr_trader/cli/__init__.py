"""The ``ibkr-trader`` command line: ``app.py`` plus one module per command group.

Nothing outside this package imports it; click and rich are used here only (typer only by
:mod:`ibkr_trader.cli.typer_compat`, for code still written against the typer CLI).
"""

from ibkr_trader.cli.app import app, main

__all__ = ["app", "main"]
