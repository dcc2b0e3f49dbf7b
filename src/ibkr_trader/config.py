"""The application configuration: one TOML file plus environment overrides, validated.

```toml
[gateway]            # where IB Gateway listens; no port = an in-process simulated gateway
host = "127.0.0.1"
port = 4002          # IB Gateway paper; omit for the built-in simulator
client_id = 17
account = "DU1234567"
timeout = 30.0

[run]
mode = "dry_run"     # dry_run or paper (live is blocked)
interval = 60.0      # seconds between cycles
no_entry_minutes_before_close = 15.0
symbols = ["SPY"]    # watched when the gameplan names none (stale-data quarantine)
entry_limit = "mid"  # "mid" (the strategies' rule) or "ask" (marketable)
order_timeout = 30.0 # a close, or a market order, not filled by then is cancelled
rest_entries = true  # a limit entry not filled by then rests (DAY) until filled or the close

[paths]
journal = "~/.local/share/ibkr-trader/journal-paper.sqlite3"
kill_switch = "~/.ibkr-trader/HALT"
gameplan = "~/gameplans/today.toml"

[alerts]
command = ["/usr/local/bin/notify", "--channel", "trading"]
disconnect_minutes = 5.0
timeout = 10.0

[risk]               # RiskLimits fields (README.md, "Risk limits")
max_open_positions = 2
```

Every value can be overridden from the environment: ``IBKR_TRADER__<SECTION>__<KEY>``, for
example ``IBKR_TRADER__GATEWAY__PORT=4002`` or ``IBKR_TRADER__RUN__SYMBOLS='["SPY","QQQ"]'``
(a value starting with ``[`` is read as JSON). Unknown sections and keys are refused
(``extra="forbid"``): a typo must never leave a setting at a value the operator did not mean.

The defaults are safe: dry-run, the simulated gateway in-process, loopback only.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import shlex
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ibkr_trader.logging import redact

__all__ = [
    "CONFIG_ENV",
    "ENV_PREFIX",
    "AlertsConfig",
    "AppConfig",
    "ConfigError",
    "GatewaySection",
    "PathsConfig",
    "RunConfig",
    "is_loopback_host",
    "load_config",
]

ENV_PREFIX: Final = "IBKR_TRADER__"
CONFIG_ENV: Final = "IBKR_TRADER_CONFIG"
_LOOPBACK_NAMES: Final = frozenset({"127.0.0.1", "::1", "localhost"})


class ConfigError(ValueError):
    """The configuration cannot be used (unreadable file, unknown key, invalid value)."""


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback IP address (127.0.0.0/8, ::1), parsed as an address: a
    name such as ``127.0.0.1.attacker.example`` is not one (it would be looked up in DNS)."""
    name = host.strip().lower()
    if name in _LOOPBACK_NAMES:
        return True
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class GatewaySection(_Section):
    """Where the gateway is. ``port`` None: an in-process simulated gateway."""

    host: str = "127.0.0.1"
    port: int | None = Field(default=None, gt=0, lt=65536)
    client_id: int = Field(default=17, ge=0)
    account: str = Field(default="", repr=False)
    timeout: float = Field(default=30.0, gt=0, le=600)
    allow_remote: bool = False  # a non-loopback host must be allowed explicitly

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("host must not be empty")
        return value

    @field_validator("allow_remote")
    @classmethod
    def _remote(cls, value: bool, info: Any) -> bool:
        host = info.data.get("host", "127.0.0.1")
        if not value and not is_loopback_host(host):
            raise ValueError(
                f"host {host!r} is not a loopback address; set [gateway] allow_remote = true "
                "to connect to another machine"
            )
        return value


class RunConfig(_Section):
    """How the orchestrator runs."""

    mode: Literal["dry_run", "paper"] = "dry_run"
    interval: float = Field(default=60.0, gt=0, le=86_400)
    no_entry_minutes_before_close: float = Field(default=15.0, ge=0, le=390)
    symbols: tuple[str, ...] = ("SPY",)
    entry_limit: Literal["mid", "ask"] = "mid"
    order_timeout: float = Field(default=30.0, gt=0, le=600)
    rest_entries: bool = True
    # automatic closes (Strategy C, quarantine, governors) also close positions the bot did
    # not open (a manual trade, another program); off: they are reported and left alone
    manage_foreign_positions: bool = False
    operator_id: str = Field(
        default="CSATSPRIM", min_length=1, max_length=32, pattern=r"^[ -~]+$"
    )  # printable ASCII: it travels as extOperator

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("symbols", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            return tuple(s.strip().upper() if isinstance(s, str) else s for s in value)
        return value

    @field_validator("interval", "no_entry_minutes_before_close", "order_timeout")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class PathsConfig(_Section):
    """Files. None: the defaults (journal per mode, ``$IBKR_TRADER_KILL_SWITCH``, no gameplan)."""

    journal: Path | None = None
    kill_switch: Path | None = None
    gameplan: Path | None = None

    @field_validator("journal", "kill_switch", "gameplan", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return None if value is None or str(value) == "" else value.expanduser()


class AlertsConfig(_Section):
    """The alert hook: a command (argv, no shell) run on HALT, emergency closes, disconnects."""

    command: tuple[str, ...] = ()
    disconnect_minutes: float = Field(default=5.0, gt=0, le=1440)
    timeout: float = Field(default=10.0, gt=0, le=300)

    @field_validator("command", mode="before")
    @classmethod
    def _argv(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(shlex.split(value))
        return value


class AppConfig(_Section):
    """The whole configuration. ``risk`` is passed to ``risk.load_risk_limits(section=...)``."""

    gateway: GatewaySection = Field(default_factory=GatewaySection)
    run: RunConfig = Field(default_factory=RunConfig)
    paths: PathsConfig = Field(default_factory=PathsConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    risk: dict[str, Any] = Field(default_factory=dict)
    source: Path | None = Field(default=None, exclude=True)

    def with_overrides(self, **sections: Mapping[str, Any]) -> AppConfig:
        """A copy with some keys replaced (command-line options), validated again."""
        data = self.model_dump(mode="python", exclude={"source"})
        for section, values in sections.items():
            updates = {k: v for k, v in values.items() if v is not None}
            if updates:
                data.setdefault(section, {}).update(updates)
        return _validate(data, self.source)

    def redacted(self) -> dict[str, Any]:
        """A JSON-ready view for ``config show`` (account ids masked)."""
        data = self.model_dump(mode="json", exclude={"source"})
        account = data["gateway"].get("account") or ""
        data["gateway"]["account"] = redact(account) if account else ""
        data["gateway"]["in_process_simulator"] = self.gateway.port is None
        data["source"] = str(self.source) if self.source else None
        return data


def _env_overrides(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, raw in env.items():
        if not name.upper().startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        if len(parts) != 2 or not all(parts):
            raise ConfigError(f"environment variable {name}: expected {ENV_PREFIX}<SECTION>__<KEY>")
        section, key = parts
        text = raw.strip()
        value: Any = text
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{name}: not a JSON list: {exc}") from exc
        elif text == "" and section == "gateway" and key == "port":
            value = None
        out.setdefault(section, {})[key] = value
    return out


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def _validate(data: dict[str, Any], source: Path | None) -> AppConfig:
    try:
        config = AppConfig.model_validate(data)
    except ValidationError as exc:
        where = f"{source}: " if source else ""
        raise ConfigError(f"{where}invalid configuration: {_describe(exc)}") from exc
    return config.model_copy(update={"source": source})


def load_config(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> AppConfig:
    """Defaults <- the TOML file (``path``, else ``$IBKR_TRADER_CONFIG``) <- the environment.

    Raises ConfigError for an unreadable file, invalid TOML, an unknown section or key, or an
    invalid value.
    """
    environ = os.environ if env is None else env
    if path is None or str(path) == "":
        from_env = environ.get(CONFIG_ENV, "").strip()
        path = from_env or None
    data: dict[str, Any] = {}
    source: Path | None = None
    if path is not None:
        source = Path(path).expanduser()
        try:
            with source.open("rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError as exc:
            raise ConfigError(f"configuration file not found: {source}") from exc
        except OSError as exc:
            raise ConfigError(f"cannot read configuration {source}: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: invalid TOML: {exc}") from exc
    for section, values in _env_overrides(environ).items():
        table = data.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"[{section}] must be a table")
        table.update(values)
    return _validate(data, source)
