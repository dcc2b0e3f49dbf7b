"""``ibkr-trader config show``: exactly what ``run`` will use, and where each value came from.

The same loader as every other command (an unknown key or a bad value is refused here just as
``run`` refuses it: exit 2). Every section is printed in full, every risk limit in force
included; the journal and kill-switch paths are resolved; account ids are redacted.
"""

from __future__ import annotations

import json

import typer

from ibkr_trader.cli.common import ConfigOption, JsonOption, ModeOption, app_config

config_app = typer.Typer(no_args_is_help=True, help="The configuration.")


@config_app.command("show")
def show(config: ConfigOption = None, mode: ModeOption = None, as_json: JsonOption = False) -> None:
    """Every value in force: defaults <- file <- IBKR_TRADER__SECTION__KEY <- options."""
    cfg = app_config(config, mode=mode)
    data = cfg.redacted()
    sources = cfg.sources()
    if as_json:
        payload = {**data, "source": str(cfg.source) if cfg.source else None, "sources": sources}
        typer.echo(json.dumps(payload, default=str))
        return
    typer.echo(f"# configuration: {cfg.source or 'no file (defaults and environment)'}")
    typer.echo("# every value in force; after '#': where it came from")
    for section, values in data.items():
        typer.echo(f"\n[{section}]")
        width = max((len(k) for k in values), default=0)
        for key, value in values.items():
            origin = sources.get(section, {}).get(key, "default")
            typer.echo(f"{key.ljust(width)} = {json.dumps(value, default=str)}  # {origin}")


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
