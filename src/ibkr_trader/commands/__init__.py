"""The operator's commands: ``run``, ``status``, ``positions``, ``close``, ``config show``.

``register(app)`` adds them to the top-level app; :class:`~ibkr_trader.commands.errors.PolicyGroup`
is the app's group class (the one exit-code policy).
"""

from __future__ import annotations

import typer

from ibkr_trader.commands.errors import PolicyGroup

__all__ = ["PolicyGroup", "register"]


def register(app: typer.Typer) -> None:
    """Add the operator's commands to the top-level app."""
    from ibkr_trader.commands import account, config_cmd, run

    app.command("run")(run.run)
    app.command("status")(account.status)
    app.command("positions")(account.positions)
    app.command("close")(account.close)
    app.add_typer(config_cmd.config_app, name="config")
