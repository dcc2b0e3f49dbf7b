"""The ``ibkr-trader`` app: the root options, ``version``, and one module per command group.

One exit-code policy for every command (:mod:`ibkr_trader.cli.errors`): 0 ok, 1 an
operational failure or refusal, 2 a usage or configuration error, 130 interrupted.
Logging (structlog) writes to stderr only, so ``--json`` output on stdout stays
machine-readable; it is configured by the commands that need it (``common.setup_logging``).

Start-up is kept short (``bench/bench_cli.py`` measures it): the command line is plain click,
a command's module is imported only when that command runs (or ``--help`` lists it), and the
modules import click and the configuration only; rich, the journal, ib_async, pandas and
exchange_calendars are imported inside the commands that use them.
"""

from __future__ import annotations

import importlib
import os
from typing import Final

import click

from ibkr_trader.cli.common import option, set_log_level
from ibkr_trader.cli.errors import CommandGroup

# command name -> (module, attribute), in the order --help lists them
COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "version": ("ibkr_trader.cli.app", "version"),
    "run": ("ibkr_trader.cli.run", "run"),
    "status": ("ibkr_trader.cli.account", "status"),
    "positions": ("ibkr_trader.cli.account", "positions"),
    "close": ("ibkr_trader.cli.account", "close"),
    "halt": ("ibkr_trader.cli.control", "halt"),
    "reduce": ("ibkr_trader.cli.control", "reduce"),
    "resume": ("ibkr_trader.cli.control", "resume"),
    "ack": ("ibkr_trader.cli.control", "ack"),
    "journal": ("ibkr_trader.cli.journal", "journal"),
    "explain": ("ibkr_trader.cli.journal", "explain"),
    "sim": ("ibkr_trader.cli.sim", "sim"),
    "demo": ("ibkr_trader.cli.demo", "demo"),
    "doctor": ("ibkr_trader.cli.doctor", "doctor"),
    "config": ("ibkr_trader.cli.config_cmd", "config_group"),
}


class RootGroup(CommandGroup):
    """The top-level group: the exit-code policy, commands imported when they are used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = self.commands.get(cmd_name)
        if found is None and cmd_name in COMMANDS:
            module, attribute = COMMANDS[cmd_name]
            found = getattr(importlib.import_module(module), attribute)
            assert isinstance(found, click.Command)
            self.commands[cmd_name] = found
        return found


@click.group(
    "ibkr-trader",
    cls=RootGroup,
    no_args_is_help=True,
    help="ibkr-trader command line",
)
@option(
    "--log-level",
    "log_level",
    default="WARNING",
    envvar="IBKR_TRADER_LOG",
    show_envvar=True,
    help="Log level (logs go to stderr).",
)
def app(log_level: str) -> None:
    """ibkr-trader: the layer between an options-trading bot and Interactive Brokers."""
    set_log_level(log_level)


@click.command("version", cls=click.Command)
def version() -> None:
    """Print the version."""
    from ibkr_trader import __version__

    click.echo(__version__)


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app(prog_name="ibkr-trader")


if __name__ == "__main__":  # pragma: no cover
    main()
