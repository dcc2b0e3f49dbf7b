"""One exit-code policy for every command, implemented once in the top-level click group.

- 0: done;
- 1: an operational failure or a refusal (the gateway unreachable, a broker or journal error,
  the paper interlock, a close that did not fill, a position that is not open);
- 2: a usage or configuration error (bad option, unknown config key, invalid risk limits);
- 130: interrupted (Ctrl-C).

:class:`PolicyGroup` wraps every command's invocation: our errors become one ``error: ...``
line on stderr and their exit code, never a traceback.
"""

from __future__ import annotations

from typing import Any, Final

import typer
from pydantic import ValidationError
from typer.core import TyperGroup
from typer.exceptions import Abort, Exit, TyperException

from ibkr_trader.broker.exceptions import BrokerError
from ibkr_trader.config import ConfigError
from ibkr_trader.journal import JournalError
from ibkr_trader.logging import redact
from ibkr_trader.risk import RiskConfigError

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "PolicyGroup",
    "exit_code_for",
]

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130


def exit_code_for(exc: BaseException) -> int | None:
    """The exit code for one of our errors, or None for anything else (a bug: re-raised)."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, ConfigError | RiskConfigError | ValidationError):
        return EXIT_USAGE
    if isinstance(exc, BrokerError | JournalError | TimeoutError | OSError):
        return EXIT_FAILURE
    return None


def describe(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        ]
        return "invalid value: " + "; ".join(parts)
    return redact(str(exc) or type(exc).__name__)


class PolicyGroup(TyperGroup):
    """The top-level group: maps our errors to exit codes (module docstring)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (Exit, Abort, TyperException):
            raise
        except (Exception, KeyboardInterrupt) as exc:
            code = exit_code_for(exc)
            if code is None:
                raise
            typer.echo(f"error: {describe(exc)}", err=True)
            raise Exit(code) from exc
