"""One exit-code policy for every command, implemented once in the top-level click group.

- 0: done;
- 1: an operational failure or a refusal (the gateway unreachable, a broker or journal error,
  the paper interlock, a close that did not fill, a position that is not open, an order
  reference that is not in the journal, a cycle that ended HALTED, a rejected demo order);
- 2: a usage or configuration error (bad option, unknown config key, invalid risk limits);
- 130: interrupted (Ctrl-C).

:class:`CommandGroup` wraps every command's invocation: our errors become one ``error: ...``
line on stderr and their exit code, never a traceback.

Nothing heavy is imported here (``--help`` and ``version`` load neither pydantic nor the
configuration): an exception class can only be raised once its module is loaded, so the
configuration's, pydantic's, the broker's and the journal's error classes are looked up in
``sys.modules``.
"""

from __future__ import annotations

import sys
from typing import Any, Final

import click

from ibkr_trader.redaction import redact

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CommandError",
    "CommandGroup",
    "exit_code_for",
]

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130

_USAGE: Final = (
    ("ibkr_trader.config", "ConfigError"),
    ("ibkr_trader.risk.config", "RiskConfigError"),
    ("pydantic_core", "ValidationError"),
)
_FAILURES: Final = (
    ("ibkr_trader.broker.exceptions", "BrokerError"),
    ("ibkr_trader.journal.records", "JournalError"),
)


class CommandError(Exception):
    """A command's own refusal, with its exit code (default 1)."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def _loaded(module: str, name: str) -> type[BaseException] | None:
    found = getattr(sys.modules.get(module), name, None)
    return found if isinstance(found, type) and issubclass(found, BaseException) else None


def exit_code_for(exc: BaseException) -> int | None:
    """The exit code for one of our errors, or None for anything else (a bug: re-raised)."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, CommandError):
        return exc.code
    for module, name in _USAGE:
        cls = _loaded(module, name)
        if cls is not None and isinstance(exc, cls):
            return EXIT_USAGE
    for module, name in _FAILURES:
        cls = _loaded(module, name)
        if cls is not None and isinstance(exc, cls):
            return EXIT_FAILURE
    if isinstance(exc, TimeoutError | OSError):
        return EXIT_FAILURE
    return None


def describe(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    validation = _loaded("pydantic_core", "ValidationError")
    if validation is not None and isinstance(exc, validation):
        errors: Any = getattr(exc, "errors")  # noqa: B009 - pydantic's, typed loosely here
        parts = [
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in errors()
        ]
        return "invalid value: " + "; ".join(parts)
    return redact(str(exc) or type(exc).__name__)


def typer_wording(exc: click.UsageError) -> click.UsageError:
    """A usage error worded as the former typer CLI worded it (its vendored click 8.3): scripts
    and operators may match these lines."""
    if isinstance(exc, click.NoSuchOption):
        text = f"No such option: {exc.option_name}"
        if exc.possibilities:
            text += f" (Possible options: {', '.join(sorted(exc.possibilities))})"
        return click.UsageError(text, exc.ctx)
    if exc.message.startswith("Got unexpected extra argument") and "(" in exc.message:
        extra = exc.message[exc.message.index("(") :]
        return click.UsageError(f"Got unexpected extra argument(s) {extra}", exc.ctx)
    return exc


def handle(exc: BaseException) -> int | None:
    """Our error: its ``error: ...`` line on stderr and its exit code; anything else: None."""
    code = exit_code_for(exc)
    if code is not None:
        click.echo(f"error: {describe(exc)}", err=True)
    return code


class CommandGroup(click.Group):
    """The top-level group: maps our errors to exit codes (module docstring)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise typer_wording(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, click.ClickException):
            raise
        except (Exception, KeyboardInterrupt) as exc:
            code = handle(exc)
            if code is None:
                raise
            raise click.exceptions.Exit(code) from exc
        finally:
            end_of_command()


def end_of_command() -> None:
    """A logging configuration the command asked for and never used is dropped (a later event
    in the same process, a test's, must not apply it)."""
    module = sys.modules.get("ibkr_trader.logging")
    if module is not None:
        module.drop_pending_configuration()
