"""``ibkr-trader config show``: exactly what ``run`` will use, and where each value came from.

The same loader as every other command (an unknown key or a bad value is refused here just as
``run`` refuses it: exit 2). Every section is printed in full, every risk limit in force
included; the journal and kill-switch paths are resolved; account ids are redacted.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ibkr_trader.cli.common import (
    Command,
    add_commands,
    app_config,
    config_option,
    json_option,
    mode_option,
)
from ibkr_trader.cli.errors import CommandGroup


@click.group("config", cls=CommandGroup, no_args_is_help=True, help="The configuration.")
def config_group() -> None:
    """The configuration."""


@config_group.command("show", cls=Command)
@config_option
@mode_option
@json_option
def show(config: Path | None, mode: str | None, as_json: bool) -> None:
    """Every value in force: defaults <- file <- IBKR_TRADER__SECTION__KEY <- options."""
    cfg = app_config(config, mode=mode)
    data = cfg.redacted()
    sources = cfg.sources()
    if as_json:
        payload = {**data, "source": str(cfg.source) if cfg.source else None, "sources": sources}
        click.echo(json.dumps(payload, default=str))
        return
    click.echo(f"# configuration: {cfg.source or 'no file (defaults and environment)'}")
    click.echo("# every value in force; after '#': where it came from")
    for section, values in data.items():
        click.echo(f"\n[{section}]")
        width = max((len(k) for k in values), default=0)
        for key, value in values.items():
            origin = sources.get(section, {}).get(key, "default")
            click.echo(f"{key.ljust(width)} = {json.dumps(value, default=str)}  # {origin}")


def register(group: click.Group) -> None:
    """Add the ``config`` group to a click group."""
    add_commands(group, config_group)
