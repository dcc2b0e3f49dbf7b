"""Options and helpers shared by the commands (typer and rich stay inside ``cli/``).

Light on purpose: typer only; the configuration (pydantic), rich, structlog, the journal,
the broker and the calendar are imported by the commands that use them, when they run.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from ibkr_trader.config import AppConfig

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="TOML configuration file (default: $IBKR_TRADER_CONFIG, else the defaults).",
    ),
]
ModeOption = Annotated[
    str | None, typer.Option("--mode", help="dry_run or paper (live trading is blocked).")
]
HostOption = Annotated[str | None, typer.Option("--host", help="Gateway host (loopback).")]
PortOption = Annotated[
    int | None,
    typer.Option(
        "--port",
        help="Gateway API port (4002 = IB Gateway paper); none: the in-process simulator "
        "(dry-run only).",
    ),
]
ClientIdOption = Annotated[
    int | None,
    typer.Option(
        "--client-id",
        help="Client id of this connection (default: [gateway] client_id + 1, so it works "
        "while `run` holds client_id).",
        min=0,
    ),
]
JournalOption = Annotated[Path | None, typer.Option("--journal", help="Journal file.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
AtOption = Annotated[
    str | None,
    typer.Option(
        "--at",
        help='Rehearse at a New York market instant, e.g. "2026-12-01 10:30" (in-process '
        "simulator only).",
    ),
]

SpeedOption = Annotated[
    float,
    typer.Option(
        "--speed",
        help="Run the simulator's market clock N times faster than real time (with --at or "
        "the in-process simulator; cycles every --interval seconds of market time).",
        min=0.001,
        max=3600.0,
    ),
]

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


def setup_logging() -> None:
    """Configure structlog (stderr) when a command needs it, not for every command:
    importing structlog costs more than ``--help`` or ``journal`` should."""
    from ibkr_trader.logging import configure_logging

    saved: TextIO = sys.stderr
    proxy: Any = _CurrentStderr()
    sys.stderr = proxy
    try:
        configure_logging(_LOG_LEVEL[0])
    finally:
        sys.stderr = saved


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
    raise typer.BadParameter(
        f"{text!r}: use a New York time as YYYY-MM-DD HH:MM (e.g. 2026-12-01 10:30)",
        param_hint="--at",
    )


def console(width: int | None = None) -> Console:
    from rich.console import Console

    out = Console(width=width) if width else Console()
    if not out.is_terminal and width is None:
        out = Console(width=160)
    return out


def emit_json(payload: Any) -> None:
    """One JSON document on stdout, IB account ids masked (issue 14, item 9)."""
    from ibkr_trader.redaction import redact

    typer.echo(redact(json.dumps(payload, default=str)))


def echo_lines(payload: dict[str, Any]) -> None:
    """``key: value`` lines for a flat payload (None values left out)."""
    for key, value in payload.items():
        if value is not None:
            typer.echo(f"{key.replace('_', ' ')}: {value}")
