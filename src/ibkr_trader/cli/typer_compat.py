"""The click commands inside a typer app, for code still written against the typer CLI.

The command line is click (``ibkr_trader.cli.app``): typer 0.29 built every command's
parameters from its signature and coerced each value through a pydantic ``TypeAdapter``, which
cost every command ~0.3 s at start-up (``docs/benchmarks.md``, "Command start-up"). Test
modules written for the typer CLI still build ``typer.Typer(cls=PolicyGroup)`` apps, call a
command module's ``register(app)`` and run them with ``typer.testing.CliRunner``; this module
keeps that working, with the same exit codes and output:

- :class:`PolicyGroup`: the exit-code policy of :class:`ibkr_trader.cli.errors.CommandGroup`
  as a ``TyperGroup``;
- :func:`adopt`: a click command registered in a typer app (its arguments are handed to click
  as they are; click's usage errors and exits become typer's);
- :func:`as_typer`: a typer app whose one command is a click command (the top-level group, for
  ``typer.testing.CliRunner().invoke(ibkr_trader.cli.app, ...)``).

Imported only by such code: the command line itself never imports typer.
"""

from __future__ import annotations

from typing import Any

import click
import typer
from typer.core import TyperCommand, TyperGroup
from typer.exceptions import Abort, Exit, TyperException

from ibkr_trader.cli.errors import end_of_command, handle

__all__ = ["PolicyGroup", "adopt", "as_typer"]

_ARGS = "ibkr_trader.cli.args"


class PolicyGroup(TyperGroup):
    """A typer app's top-level group with the command line's exit-code policy."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (Exit, Abort, TyperException):
            raise
        except (Exception, KeyboardInterrupt) as exc:
            code = handle(exc)
            if code is None:
                raise
            raise Exit(code) from exc


class _Adopted(TyperCommand):
    """A typer command that hands its arguments to a click command (``command``)."""

    command: click.Command

    def __init__(self, **attrs: Any) -> None:
        attrs["help"] = self.command.help
        attrs["short_help"] = self.command.short_help
        attrs["params"] = []
        attrs["add_help_option"] = False
        attrs["context_settings"] = {
            "ignore_unknown_options": True,
            "allow_extra_args": True,
            "allow_interspersed_args": False,
        }
        super().__init__(**attrs)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta[_ARGS] = list(args)
        return []

    def invoke(self, ctx: Any) -> Any:
        args = ctx.meta.pop(_ARGS, [])
        try:
            with self.command.make_context(ctx.command_path, args) as sub:
                return self.command.invoke(sub)
        except click.exceptions.Exit as exc:
            raise Exit(exc.exit_code) from None
        except click.ClickException as exc:
            exc.show()
            raise Exit(exc.exit_code) from None
        except click.Abort:
            raise Abort() from None
        finally:
            end_of_command()


def _adopter(command: click.Command) -> type[_Adopted]:
    return type(f"Adopted_{command.name}", (_Adopted,), {"command": command})


def _nothing() -> None:
    """The typer-side callback of an adopted command (click's runs)."""


def adopt(app: typer.Typer, command: click.Command, name: str | None = None) -> None:
    """Register the click ``command`` in the typer ``app``."""
    app.command(name or command.name, cls=_adopter(command))(_nothing)


_APPS: dict[int, typer.Typer] = {}


def as_typer(command: click.Command) -> typer.Typer:
    """A typer app whose one command is ``command`` (built once per command)."""
    app = _APPS.get(id(command))
    if app is None:
        app = _APPS[id(command)] = typer.Typer(add_completion=False)
        adopt(app, command)
    return app
