"""Options and helpers shared by the commands (typer stays inside ``commands/``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ibkr_trader.config import AppConfig, ConfigError, load_config
from ibkr_trader.logging import redact

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", help="TOML configuration file (default: $IBKR_TRADER_CONFIG, else defaults)."
    ),
]
ModeOption = Annotated[
    str | None, typer.Option("--mode", help="dry_run or paper (live trading is blocked).")
]
HostOption = Annotated[str | None, typer.Option("--host", help="Gateway host (loopback).")]
PortOption = Annotated[
    int | None,
    typer.Option(
        "--port", help="Gateway API port (4002 = IB Gateway paper); none: in-process simulator."
    ),
]
JournalOption = Annotated[Path | None, typer.Option("--journal", help="Journal file.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


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
    if mode is not None and mode.strip().lower() not in ("dry_run", "paper"):
        raise ConfigError(f"--mode must be dry_run or paper, not {mode!r} (live is blocked)")
    config = load_config(path)
    gateway: dict[str, Any] = {"host": host, "port": port}
    paths: dict[str, Any] = {"journal": journal, "gameplan": run.pop("gameplan", None)}
    return config.with_overrides(gateway=gateway, run={"mode": mode, **run}, paths=paths)


def console() -> Console:
    out = Console()
    if not out.is_terminal:
        out = Console(width=160)
    return out


def emit_json(payload: Any) -> None:
    """One JSON document on stdout, IB account ids masked (issue 14, item 9)."""
    typer.echo(redact(json.dumps(payload, default=str)))
