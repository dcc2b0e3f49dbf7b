"""Options and helpers shared by the commands (click and rich stay inside ``cli/``).

Light on purpose: click only; the configuration (pydantic), rich, structlog, the journal,
the broker and the calendar are imported by the commands that use them, when they run.

The options keep the help and the error messages the former typer CLI printed (``<str>``-style
metavars, an ``Arguments`` section, pydantic's wording for a value out of range), so moving
to click changed no output an operator or a script reads.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import click

if TYPE_CHECKING:
    from rich.console import Console

    from ibkr_trader.config import AppConfig

F = TypeVar("F", bound=Callable[..., Any])

# ------------------------------------------------------------------------- parameter types


class _Int(click.ParamType[int, Any]):
    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            return int(str(value))
        except ValueError:
            self.fail(
                "Input should be a valid integer, unable to parse string as an integer", param, ctx
            )


class _Float(click.ParamType[float, Any]):
    name = "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        try:
            return float(str(value))
        except ValueError:
            self.fail(
                "Input should be a valid number, unable to parse string as a number", param, ctx
            )


def _bound(value: float) -> str:
    return f"{value:g}"


def _check_range(
    kind: click.ParamType[Any, Any],
    number: float,
    low: float | None,
    high: float | None,
    param: click.Parameter | None,
    ctx: click.Context | None,
) -> None:
    if low is not None and number < low:
        kind.fail(f"Input should be greater than or equal to {_bound(low)}", param, ctx)
    if high is not None and number > high:
        kind.fail(f"Input should be less than or equal to {_bound(high)}", param, ctx)


class _IntRange(click.IntRange):
    """``[x>=0]`` in the help, as click shows it; pydantic's messages, as the former typer CLI
    printed them."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = _Int().convert(value, param, ctx)
        _check_range(self, number, self.min, self.max, param, ctx)
        return number


class _FloatRange(click.FloatRange):
    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = _Float().convert(value, param, ctx)
        _check_range(self, number, self.min, self.max, param, ctx)
        return number


class _Choice(click.Choice[str]):
    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value in self.choices:
            return value
        choices = ", ".join(repr(c) for c in self.choices)
        self.fail(f"Value error, {value!r} is not one of {choices}.", param, ctx)


class _Path(click.ParamType[Path, Any]):
    name = "path"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return value if isinstance(value, Path) else Path(value)


INT = _Int()
FLOAT = _Float()
PATH = _Path()


def int_range(min: int | None = None, max: int | None = None) -> click.ParamType[Any, Any]:
    return _IntRange(min=min, max=max)


def float_range(min: float | None = None, max: float | None = None) -> click.ParamType[Any, Any]:
    return _FloatRange(min=min, max=max)


def choice(values: Sequence[str]) -> click.ParamType[Any, Any]:
    return _Choice(list(values))


# ------------------------------------------------------------------------- commands and params


class Argument(click.Argument):
    """A positional argument listed under ``Arguments`` in the help (``name <type>``), shown
    as ``[name]`` (optional) or ``{name}`` (required) in the usage line."""

    def __init__(self, *args: Any, type_label: str = "<str>", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.type_label = type_label

    def _shown(self) -> str:
        return f"{{{self.name}}}" if self.required else f"[{self.name}]"

    def get_usage_pieces(self, ctx: click.Context) -> list[str]:
        return [self._shown()]

    def get_error_hint(self, ctx: click.Context | None) -> str:
        return f"'{self.name}'"

    def get_help_record(self, ctx: click.Context) -> tuple[str, str]:
        extra = []
        if not self.required and isinstance(self.default, str | int | float):
            extra.append(f"default: {self.default}")
        if self.required:
            extra.append("required")
        text = self.help or ""
        if extra:
            text = f"{text}  [{'; '.join(extra)}]" if text else f"[{'; '.join(extra)}]"
        return f"{self.name} {self.type_label}", text


class Command(click.Command):
    """Arguments, then options, each in their own help section; usage errors worded as the
    former typer CLI worded them."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        from ibkr_trader.cli.errors import typer_wording

        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise typer_wording(exc) from None

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        args = [p.get_help_record(ctx) for p in self.get_params(ctx) if isinstance(p, Argument)]
        if args:
            with formatter.section("Arguments"):
                formatter.write_dl(args)
        super().format_options(ctx, formatter)

    def format_arguments(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        return None  # in format_options, under "Arguments"


def command(name: str) -> Callable[[Callable[..., Any]], Command]:
    """``@command("halt")``: a :class:`Command` whose help is the function's docstring."""

    def decorate(function: Callable[..., Any]) -> Command:
        return click.command(name, cls=Command)(function)

    return decorate


def option(*decls: str, metavar: str | None = "<str>", **kwargs: Any) -> Callable[[F], F]:
    """An option shown as the former typer CLI showed it: ``--name <type>``, its default if any."""
    if kwargs.get("is_flag"):
        metavar = None
    kwargs.setdefault("show_default", kwargs.get("default") not in (None, False))
    return click.option(*decls, metavar=metavar, **kwargs)


def argument(name: str, **kwargs: Any) -> Callable[[F], F]:
    return click.argument(name, cls=Argument, **kwargs)


def config_option(f: F) -> F:
    return option(
        "--config",
        "config",
        type=PATH,
        metavar="<path>",
        help="TOML configuration file (default: $IBKR_TRADER_CONFIG, else the defaults).",
    )(f)


def mode_option(f: F) -> F:
    return option("--mode", "mode", help="dry_run or paper (live trading is blocked).")(f)


def host_option(f: F) -> F:
    return option("--host", "host", help="Gateway host (loopback).")(f)


def port_option(f: F) -> F:
    return option(
        "--port",
        "port",
        type=INT,
        metavar="<int>",
        help="Gateway API port (4002 = IB Gateway paper); none: the in-process simulator "
        "(dry-run only).",
    )(f)


def client_id_option(f: F) -> F:
    return option(
        "--client-id",
        "client_id",
        type=int_range(min=0),
        metavar="<int range>",
        help="Client id of this connection (default: [gateway] client_id + 1, so it works "
        "while `run` holds client_id).",
    )(f)


def journal_option(f: F) -> F:
    return option("--journal", "journal", type=PATH, metavar="<path>", help="Journal file.")(f)


def json_option(f: F) -> F:
    return option(
        "--json", "as_json", is_flag=True, default=False, help="Machine-readable JSON on stdout."
    )(f)


def at_option(f: F) -> F:
    return option(
        "--at",
        "at",
        help='Rehearse at a New York market instant, e.g. "2026-12-01 10:30" (in-process '
        "simulator only).",
    )(f)


def speed_option(f: F) -> F:
    return option(
        "--speed",
        "speed",
        type=float_range(min=0.001, max=3600.0),
        metavar="<float range>",
        default=1.0,
        help="Run the simulator's market clock N times faster than real time (with --at or "
        "the in-process simulator; cycles every --interval seconds of market time).",
    )(f)


def exit_with(code: int) -> click.exceptions.Exit:
    """``raise exit_with(1)``: end the command with that exit code."""
    return click.exceptions.Exit(code)


def echo(text: str = "", err: bool = False) -> None:
    click.echo(text, err=err)


# ------------------------------------------------------------------------- logging

_LOG_LEVEL = ["WARNING"]


def set_log_level(level: str) -> None:
    _LOG_LEVEL[0] = level


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the moment of writing (not when configured),
    so a replaced and closed stream (a test runner's) is never kept by the loggers."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def setup_logging(*, plain: bool = False) -> None:
    """Configure logging (stderr) when a command may log, not for every command; structlog
    itself is configured, and imported, at the command's first event (``halt`` of a bot
    already halted logs nothing): importing it costs more than a command that answers from the
    journal should. ``plain``: the events are rendered in structlog's format without it (a
    ``halt`` that changes the state logs one line)."""
    from ibkr_trader.logging import configure_logging

    saved: TextIO = sys.stderr
    proxy: Any = _CurrentStderr()
    sys.stderr = proxy
    try:
        configure_logging(_LOG_LEVEL[0], on_first_use=True, plain=plain)
    finally:
        sys.stderr = saved


# ------------------------------------------------------------------------- configuration


def app_config(
    path: Path | None,
    *,
    mode: str | None = None,
    host: str | None = None,
    port: int | None = None,
    journal: Path | None = None,
    **run: Any,
) -> AppConfig:
    """The configuration with the command line's overrides applied (ConfigError -> exit 2)."""
    from ibkr_trader.config import ConfigError, load_config

    if mode is not None and mode.strip().lower() not in ("dry_run", "paper"):
        raise ConfigError(f"--mode must be dry_run or paper, not {mode!r} (live is blocked)")
    config = load_config(path)
    gateway: dict[str, Any] = {"host": host, "port": port}
    paths: dict[str, Any] = {"journal": journal, "gameplan": run.pop("gameplan", None)}
    return config.with_overrides(gateway=gateway, run={"mode": mode, **run}, paths=paths)


def parse_at(text: str | None) -> datetime | None:
    """``--at "2026-12-01 10:30"``: a New York wall-clock instant (ISO forms accepted)."""
    if text is None:
        return None
    from ibkr_trader.clock import NY

    cleaned = text.strip().replace("T", " ")
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            parsed = datetime.strptime(cleaned, fmt)
        except ValueError:
            continue
        if fmt == "%Y-%m-%d":
            parsed = parsed.replace(hour=10, minute=30)
        return parsed.replace(tzinfo=NY)
    raise click.BadParameter(
        f"{text!r}: use a New York time as YYYY-MM-DD HH:MM (e.g. 2026-12-01 10:30)",
        param_hint="--at",
    )


# ------------------------------------------------------------------------- output


def console(width: int | None = None) -> Console:
    from rich.console import Console

    out = Console(width=width) if width else Console()
    if not out.is_terminal and width is None:
        out = Console(width=160)
    return out


def emit_json(payload: Any) -> None:
    """One JSON document on stdout, IB account ids masked (issue 14, item 9)."""
    from ibkr_trader.redaction import redact

    click.echo(redact(json.dumps(payload, default=str)))


def echo_lines(payload: dict[str, Any]) -> None:
    """``key: value`` lines for a flat payload (None values left out)."""
    for key, value in payload.items():
        if value is not None:
            click.echo(f"{key.replace('_', ' ')}: {value}")


def add_commands(group: click.Group, *commands: click.Command) -> None:
    """Add click commands to a click group."""
    for cmd in commands:
        group.add_command(cmd)
