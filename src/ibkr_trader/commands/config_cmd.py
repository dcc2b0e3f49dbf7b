"""``ibkr-trader config show``: the effective configuration (account ids redacted)."""

from __future__ import annotations

import json

import typer

from ibkr_trader.commands.common import ConfigOption, JsonOption, app_config, console

config_app = typer.Typer(no_args_is_help=True, help="The configuration.")


@config_app.command("show")
def show(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Show the effective configuration: defaults <- file <- IBKR_TRADER__SECTION__KEY."""
    cfg = app_config(config)
    data = cfg.redacted()
    if as_json:
        typer.echo(json.dumps(data, default=str))
        return
    out = console()
    out.print(f"[bold]configuration[/bold] (source: {cfg.source or 'defaults'})")
    for section, values in data.items():
        out.print(f"\n[bold]\\[{section}][/bold]")
        if isinstance(values, dict):
            for key, value in values.items():
                out.print(f"{key} = {json.dumps(value, default=str)}", markup=False)
        else:
            out.print(json.dumps(values, default=str), markup=False)
