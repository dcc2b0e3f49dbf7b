"""The ``ibkr-trader`` command line: ``app.py`` plus one module per command group.

Nothing outside this package imports it; click and rich are used here only.
"""

from ibkr_trader.cli.app import app, main

__all__ = ["app", "main"]
