"""The kill switch: a file whose presence halts trading.

``ibkr-trader halt`` creates it, ``ibkr-trader resume`` removes it; any process (or a person with
``touch``) can create it. A RiskManager given the path checks it on every decision and on every
:meth:`~ibkr_trader.risk.manager.RiskManager.refresh`; while it exists the trading state is HALTED.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Final

KILL_SWITCH_ENV: Final = "IBKR_TRADER_KILL_SWITCH"
DEFAULT_KILL_SWITCH_PATH: Final = Path.home() / ".ibkr-trader" / "HALT"


def default_kill_switch_path(env: Mapping[str, str] | None = None) -> Path:
    """``$IBKR_TRADER_KILL_SWITCH`` if set, else ``~/.ibkr-trader/HALT``."""
    source = os.environ if env is None else env
    value = source.get(KILL_SWITCH_ENV, "").strip()
    return Path(value).expanduser() if value else DEFAULT_KILL_SWITCH_PATH


def is_engaged(path: Path) -> bool:
    """True while the kill-switch file exists (an unreadable location counts as engaged)."""
    try:
        return path.exists()
    except OSError:
        return True


def engage(path: Path, reason: str, when: datetime) -> None:
    """Create the kill-switch file, recording why and when inside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"reason": reason, "at": when.isoformat()}) + "\n")
    os.replace(tmp, path)


def disengage(path: Path) -> bool:
    """Remove the kill-switch file; True if it was there."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def read_reason(path: Path) -> str:
    """The reason written in the file, or a generic one (the file may be a bare ``touch``)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return "kill-switch file present"
    if isinstance(data, dict) and isinstance(data.get("reason"), str) and data["reason"]:
        return str(data["reason"])
    return "kill-switch file present"
