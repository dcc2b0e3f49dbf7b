"""The one configuration loader: defaults <- one TOML file <- the environment <- the command line.

Every command reads its configuration here (``load_config``), so ``config show`` prints exactly
what ``run`` uses, with where each value came from.

```toml
[gateway]            # where IB Gateway listens; no port = an in-process simulated gateway
host = "127.0.0.1"   # (dry-run only: paper mode needs an explicit port)
port = 4002          # IB Gateway paper
client_id = 17       # the running bot's id; `positions` / `close` use client_id + 1 (README)
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

[protection]         # Strategy C (README, "Strategy C"): settings may tighten, never loosen
emergency_stop_pct = 0.40     # close a position at this loss (at most 0.40)
dte_days = 3                  # close at this many calendar days to expiry (at least 3) ...
dte_sessions = 2              # ... or this many trading sessions (at least 2)
quarantine_after_seconds = 300.0  # no usable data for this long closes everything (<= 300)
cooldown_minutes = 30.0       # after a close, no entry in that contract or symbol for this long
open_delay_seconds = 120.0    # closes at the open wait this long past the opening print
late_expiry_minutes = 60.0    # a position still open this close to its expiry is an alert

[flags]              # the handoff's rollout flags (live execution cannot be enabled)
enable_paper_execution = true

[risk]               # RiskLimits fields (README.md, "Risk limits")
max_open_positions = 2
```

**One environment form**: ``IBKR_TRADER__<SECTION>__<KEY>``, for example
``IBKR_TRADER__GATEWAY__PORT=4002`` or ``IBKR_TRADER__RISK__MAX_OPEN_POSITIONS=1`` (a value
starting with ``[`` is read as JSON). Besides it only a few process variables exist
(``IBKR_TRADER_CONFIG`` the file, ``IBKR_TRADER_HOME`` the journals' directory,
``IBKR_TRADER_KILL_SWITCH`` the kill switch's default location, ``IBKR_TRADER_LOG`` the log
level). Any other ``IBKR_TRADER_*`` variable (``IBKR_TRADER_RISK__X``,
``IBKR_TRADER_RISK_MAX_OPEN_POSITIONS``, ``IBKR_TRADER_FLAG_X``) is refused with the right
spelling, never silently applied or ignored. Unknown sections and keys are refused everywhere:
a typo must never leave a setting at a value the operator did not mean.

The defaults are safe: dry-run, the simulated gateway in-process, loopback only.
This module imports nothing heavy (no pydantic: :mod:`ibkr_trader.settings`): every command,
even ``halt``, loads it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from ibkr_trader.redaction import redact
from ibkr_trader.risk.config import RiskLimits
from ibkr_trader.settings import (
    Section,
    SettingError,
    argv,
    choice,
    comma_list,
    flag,
    integer,
    number,
    path,
    text,
    words,
)

__all__ = [
    "CLIENT_ID_OFFSET",
    "CONFIG_ENV",
    "DEFAULT_KILL_SWITCH",
    "ENV_PREFIX",
    "HOME_ENV",
    "KILL_SWITCH_ENV",
    "AlertsConfig",
    "AppConfig",
    "ConfigError",
    "FlagsConfig",
    "GatewaySection",
    "PathsConfig",
    "ProtectionConfig",
    "RunConfig",
    "default_home",
    "is_loopback_host",
    "load_config",
]

ENV_PREFIX: Final = "IBKR_TRADER__"
CONFIG_ENV: Final = "IBKR_TRADER_CONFIG"
HOME_ENV: Final = "IBKR_TRADER_HOME"
KILL_SWITCH_ENV: Final = "IBKR_TRADER_KILL_SWITCH"
LOG_ENV: Final = "IBKR_TRADER_LOG"
DEFAULT_KILL_SWITCH: Final = Path("~/.ibkr-trader/HALT")
# A second connection while `run` holds client_id: positions / close / doctor use this offset.
CLIENT_ID_OFFSET: Final = 1
# Process variables that are not configuration keys (and the alert hook's, set for its child;
# the test suites' knobs).
_PROCESS_VARIABLES: Final = frozenset(
    {
        CONFIG_ENV,
        HOME_ENV,
        KILL_SWITCH_ENV,
        LOG_ENV,
        "IBKR_TRADER_ALERT_KIND",
        "IBKR_TRADER_ALERT_MESSAGE",
        "IBKR_TRADER_ALERT_DETAIL",
    }
)
_PROCESS_PREFIXES: Final = ("IBKR_TRADER_CHAOS_", "IBKR_TRADER_FUZZ_", "IBKR_TRADER_TEST_")
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


def default_home(env: Mapping[str, str] | None = None) -> Path:
    """The journals' directory: ``$IBKR_TRADER_HOME``, else ``$XDG_DATA_HOME/ibkr-trader``
    (default ``~/.local/share/ibkr-trader``)."""
    environ = os.environ if env is None else env
    home = environ.get(HOME_ENV, "").strip()
    if home:
        return Path(home).expanduser()
    xdg = environ.get("XDG_DATA_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share") / "ibkr-trader"


@dataclass(frozen=True, slots=True)
class GatewaySection(Section):
    """Where the gateway is. ``port`` None: an in-process simulated gateway (dry-run only)."""

    host: str = text("127.0.0.1", strip=True, min_length=1)
    port: int | None = integer(None, gt=0, lt=65536, optional=True)
    client_id: int = integer(17, ge=0)
    account: str = text("", repr_=False)
    timeout: float = number(30.0, gt=0, le=600)
    allow_remote: bool = flag(False)  # a non-loopback host must be allowed explicitly

    def _check(self) -> list[tuple[str, str]]:
        if not self.allow_remote and not is_loopback_host(self.host):
            return [
                (
                    "allow_remote",
                    f"host {self.host!r} is not a loopback address; set [gateway] "
                    "allow_remote = true to connect to another machine",
                )
            ]
        return []


def _upper(symbol: str) -> str:
    return symbol.strip().upper()


@dataclass(frozen=True, slots=True)
class RunConfig(Section):
    """How the orchestrator runs."""

    mode: Literal["dry_run", "paper"] = choice("dry_run", ("dry_run", "paper"), fold_case=True)
    interval: float = number(60.0, gt=0, le=86_400)
    no_entry_minutes_before_close: float = number(15.0, ge=0, le=390)
    symbols: tuple[str, ...] = words(("SPY",), split=comma_list, each=_upper)
    entry_limit: Literal["mid", "ask"] = choice("mid", ("mid", "ask"))
    order_timeout: float = number(30.0, gt=0, le=600)
    rest_entries: bool = flag(True)
    # automatic closes (Strategy C, quarantine, governors) also close positions the bot did
    # not open (a manual trade, another program); off: they are reported and left alone
    manage_foreign_positions: bool = flag(False)
    # printable ASCII: it travels as extOperator
    operator_id: str = text("CSATSPRIM", min_length=1, max_length=32, pattern=r"[ -~]+")


@dataclass(frozen=True, slots=True)
class PathsConfig(Section):
    """Files. None: the defaults (see :meth:`AppConfig.journal_path` / ``kill_switch_path``)."""

    journal: Path | None = path()
    kill_switch: Path | None = path()
    gameplan: Path | None = path()


@dataclass(frozen=True, slots=True)
class AlertsConfig(Section):
    """The alert hook: a command (argv, no shell) run on HALT, emergency closes, disconnects."""

    command: tuple[str, ...] = words((), split=argv)
    disconnect_minutes: float = number(5.0, gt=0, le=1440)
    timeout: float = number(10.0, gt=0, le=300)


@dataclass(frozen=True, slots=True)
class ProtectionConfig(Section):
    """Strategy C's settings (``orchestrator.protection.ProtectionPolicy``). Each may only
    tighten the handoff's promises (a 40% stop, 3 days to expiry, stale data within 5
    minutes), never loosen them: a looser value is refused, not clamped."""

    emergency_stop_pct: float = number(0.40, gt=0, le=0.40)
    dte_days: int = integer(3, ge=3, le=60)
    dte_sessions: int = integer(2, ge=2, le=40)
    quarantine_after_seconds: float = number(300.0, gt=0, le=300.0)
    cooldown_minutes: float = number(30.0, ge=0, le=1440)
    open_delay_seconds: float = number(120.0, ge=0, le=1800)
    late_expiry_minutes: float = number(60.0, ge=0, le=390)
    quote_timeout: float = number(5.0, gt=0, le=60)
    clock_timeout: float = number(1.0, gt=0, le=30)


@dataclass(frozen=True, slots=True)
class FlagsConfig(Section):
    """The handoff's rollout flags (``integrations.feature_flags``); live cannot be enabled."""

    enable_integration_layer: bool = flag(True)
    enable_paper_execution: bool = flag(True)
    fallback_to_direct_broker: bool = flag(False)


_SECTIONS: Final[dict[str, type[Section]]] = {
    "gateway": GatewaySection,
    "run": RunConfig,
    "paths": PathsConfig,
    "alerts": AlertsConfig,
    "protection": ProtectionConfig,
    "flags": FlagsConfig,
    "risk": RiskLimits,
}


@dataclass(frozen=True, slots=True)
class AppConfig:
    """The whole configuration, with where each value came from (``origins``).

    Build it with :func:`load_config` (or :meth:`from_sections`): every section is validated
    when it is built, an unknown section or key is refused."""

    gateway: GatewaySection = field(default_factory=GatewaySection)
    run: RunConfig = field(default_factory=RunConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    protection: ProtectionConfig = field(default_factory=ProtectionConfig)
    flags: FlagsConfig = field(default_factory=FlagsConfig)
    risk: RiskLimits = field(default_factory=RiskLimits)
    source: Path | None = field(default=None, compare=False)
    # "section.key" -> "file PATH" | "env NAME" | "command line --opt" (absent: the default)
    origins: dict[str, str] = field(default_factory=dict, compare=False)
    environ: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_sections(
        cls,
        data: Mapping[str, Any],
        *,
        source: Path | None = None,
        origins: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> AppConfig:
        """Every section from its table (``{"risk": {...}, ...}``); the problems of all of
        them in one SettingError, each named ``section.key``."""
        sections: dict[str, Any] = {}
        problems: list[tuple[str, str]] = []
        for name, values in data.items():
            model = _SECTIONS.get(name)
            if model is None:
                problems.append((name, f"unknown section; known: {', '.join(_SECTIONS)}"))
                continue
            try:
                sections[name] = model.from_mapping(values)
            except SettingError as exc:
                problems.extend(exc.within(name).problems)
        if problems:
            raise SettingError(problems)
        return cls(
            **sections,
            source=source,
            origins=dict(origins or {}),
            environ=dict(environ or {}),
        )

    def _tables(self) -> dict[str, Section]:
        return {name: getattr(self, name) for name in _SECTIONS}

    # --------------------------------------------------------------- resolved values

    @property
    def mode(self) -> str:
        return self.run.mode

    def journal_path(self) -> Path:
        """The journal file in use: ``[paths] journal``, else ``<home>/journal-<mode>.sqlite3``."""
        if self.paths.journal is not None:
            return self.paths.journal
        return default_home(self.environ) / f"journal-{self.run.mode}.sqlite3"

    def kill_switch_path(self) -> Path:
        """``[paths] kill_switch``, else ``$IBKR_TRADER_KILL_SWITCH``, else ``~/.ibkr-trader/HALT``."""
        if self.paths.kill_switch is not None:
            return self.paths.kill_switch
        value = self.environ.get(KILL_SWITCH_ENV, "").strip()
        return Path(value).expanduser() if value else DEFAULT_KILL_SWITCH.expanduser()

    def side_client_id(self) -> int:
        """The client id of a second connection while ``run`` holds ``client_id``."""
        return self.gateway.client_id + CLIENT_ID_OFFSET

    def origin(self, section: str, key: str) -> str:
        found = self.origins.get(f"{section}.{key}")
        if found is not None:
            return found
        if section == "paths" and key == "journal":
            return f"default (${HOME_ENV} or ~/.local/share/ibkr-trader, per mode)"
        if section == "paths" and key == "kill_switch" and self.environ.get(KILL_SWITCH_ENV):
            return f"env {KILL_SWITCH_ENV}"
        return "default"

    # --------------------------------------------------------------- copies

    def with_overrides(self, **sections: Mapping[str, Any]) -> AppConfig:
        """A copy with some keys replaced (command-line options), validated again."""
        data = {name: section.as_dict() for name, section in self._tables().items()}
        origins = dict(self.origins)
        for section, values in sections.items():
            updates = {k: v for k, v in values.items() if v is not None}
            if updates:
                data.setdefault(section, {}).update(updates)
                for key in updates:
                    origins[f"{section}.{key}"] = "command line"
        return _validate(data, self.source, origins, self.environ)

    def redacted(self) -> dict[str, Any]:
        """A JSON-ready view of every value in force (account ids masked, paths resolved)."""
        data = {name: section.as_json() for name, section in self._tables().items()}
        account = data["gateway"].get("account") or ""
        data["gateway"]["account"] = redact(account) if account else ""
        data["paths"]["journal"] = str(self.journal_path())
        data["paths"]["kill_switch"] = str(self.kill_switch_path())
        data["paths"]["gameplan"] = (
            str(self.paths.gameplan) if self.paths.gameplan else "(none: strategy C, no entries)"
        )
        data["gateway"]["in_process_simulator"] = self.gateway.port is None
        data["gateway"]["side_client_id"] = self.side_client_id()
        return data

    def sources(self) -> dict[str, dict[str, str]]:
        """For every key shown by :meth:`redacted`, where its value came from."""
        out: dict[str, dict[str, str]] = {}
        for section, values in self.redacted().items():
            out[section] = {key: self.origin(section, key) for key in values}
        out["gateway"]["in_process_simulator"] = self.origin("gateway", "port")
        out["gateway"]["side_client_id"] = f"gateway.client_id + {CLIENT_ID_OFFSET}"
        return out


# ------------------------------------------------------------------- environment


def _env_overrides(env: Mapping[str, str]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """``IBKR_TRADER__SECTION__KEY`` values; any other ``IBKR_TRADER_*`` name is refused."""
    out: dict[str, dict[str, Any]] = {}
    origins: dict[str, str] = {}
    for name, raw in sorted(env.items()):
        upper = name.upper()
        if not upper.startswith("IBKR_TRADER"):
            continue
        if upper in _PROCESS_VARIABLES or upper.startswith(_PROCESS_PREFIXES):
            continue
        if not upper.startswith(ENV_PREFIX):
            raise ConfigError(_wrong_form(name))
        parts = upper[len(ENV_PREFIX) :].lower().split("__")
        if len(parts) != 2 or not all(parts):
            raise ConfigError(
                f"environment variable {name}: expected {ENV_PREFIX}<SECTION>__<KEY> "
                f"(sections: {', '.join(_SECTIONS)})"
            )
        section, key = parts
        model = _SECTIONS.get(section)
        if model is None:
            raise ConfigError(
                f"environment variable {name}: unknown section {section!r}; "
                f"known: {', '.join(_SECTIONS)}"
            )
        if key not in model.field_names():
            raise ConfigError(
                f"environment variable {name}: unknown key {key!r} in [{section}]; "
                f"known: {', '.join(sorted(model.field_names()))}"
            )
        text = raw.strip()
        value: Any = text
        if text.startswith("["):
            try:
                value = json.loads(text)
            except (ValueError, RecursionError) as exc:  # a JSONDecodeError, 4,300+ digits
                raise ConfigError(f"{name}: not a JSON list: {exc}") from exc
        elif text == "" and (section, key) == ("gateway", "port"):
            value = None
        out.setdefault(section, {})[key] = value
        origins[f"{section}.{key}"] = f"env {name}"
    return out, origins


def _wrong_form(name: str) -> str:
    """The refusal of an ``IBKR_TRADER_*`` name, with the one form it probably meant."""
    rest = name.upper()[len("IBKR_TRADER") :].lstrip("_")
    hint = ""
    for section, model in _SECTIONS.items():
        prefix = section.upper()
        if rest.startswith(prefix):
            key = rest[len(prefix) :].lstrip("_").lower()
            if key in model.field_names():
                hint = f"; did you mean {ENV_PREFIX}{prefix}__{key.upper()}?"
            break
    if rest.startswith("FLAG_"):
        key = rest[len("FLAG_") :].lower()
        if key in FlagsConfig.field_names():
            hint = f"; did you mean {ENV_PREFIX}FLAGS__{key.upper()}?"
    return (
        f"environment variable {name} is not a setting: configuration keys are set as "
        f"{ENV_PREFIX}<SECTION>__<KEY> (two underscores each){hint}"
    )


def _validate(
    data: dict[str, Any],
    source: Path | None,
    origins: dict[str, str],
    environ: Mapping[str, str],
) -> AppConfig:
    env_view = {k: v for k, v in environ.items() if k.upper().startswith("IBKR_TRADER")}
    if "XDG_DATA_HOME" in environ:
        env_view["XDG_DATA_HOME"] = environ["XDG_DATA_HOME"]
    try:
        return AppConfig.from_sections(data, source=source, origins=origins, environ=env_view)
    except SettingError as exc:
        where = f"{source}: " if source else ""
        raise ConfigError(f"{where}invalid configuration: {exc}") from exc


def load_config(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> AppConfig:
    """Defaults <- the TOML file (``path``, else ``$IBKR_TRADER_CONFIG``) <- the environment.

    Raises ConfigError for an unreadable file, invalid TOML, an unknown section or key, an
    ``IBKR_TRADER_*`` variable in another form than ``IBKR_TRADER__SECTION__KEY``, or an
    invalid value.
    """
    environ = os.environ if env is None else env
    if path is None or str(path) == "":
        from_env = environ.get(CONFIG_ENV, "").strip()
        path = from_env or None
    data: dict[str, Any] = {}
    source: Path | None = None
    origins: dict[str, str] = {}
    if path is not None:
        try:
            source = Path(path).expanduser()
        except RuntimeError as exc:  # "~nosuchuser/config.toml"
            raise ConfigError(f"cannot expand the configuration path {path!r}: {exc}") from exc
        try:
            with source.open("rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError as exc:
            raise ConfigError(f"configuration file not found: {source}") from exc
        except OSError as exc:
            raise ConfigError(f"cannot read configuration {source}: {exc}") from exc
        except (ValueError, RecursionError) as exc:  # TOMLDecodeError, UTF-8, 4,300+ digits
            raise ConfigError(f"{source}: invalid TOML: {exc}") from exc
        for section, values in data.items():
            if section not in _SECTIONS:
                raise ConfigError(
                    f"{source}: unknown section [{section}]; known: {', '.join(_SECTIONS)}"
                )
            if not isinstance(values, dict):
                raise ConfigError(f"{source}: [{section}] must be a table")
            for key in values:
                origins[f"{section}.{key}"] = f"file {source}"
    overrides, env_origins = _env_overrides(environ)
    for section, values in overrides.items():
        data.setdefault(section, {}).update(values)
    origins.update(env_origins)
    return _validate(data, source, origins, environ)
