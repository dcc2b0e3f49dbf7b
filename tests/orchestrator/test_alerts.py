"""The alert hook: a command without a shell, bounded in time, failures logged never raised."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from ibkr_trader.alerts import AlertHook


async def test_alert_runs_the_command_with_kind_and_message_and_journals_it(
    tmp_path: Path,
) -> None:
    out = tmp_path / "alert.txt"
    script = f"import sys, pathlib; pathlib.Path({str(out)!r}).write_text('|'.join(sys.argv[1:]))"
    events: list[tuple[str, dict[str, Any]]] = []

    async def sink(kind: str, detail: dict[str, Any]) -> None:
        events.append((kind, detail))

    hook = AlertHook((sys.executable, "-c", script), 5.0, sink=sink)
    outcome = await hook.send("HALT", "trading HALTED: account DU1234567; $(rm -rf /)", {})
    assert outcome.ok
    # no shell: the message arrives verbatim as one argument, account ids redacted
    assert out.read_text() == "HALT|trading HALTED: account DU***567; $(rm -rf /)"
    assert events and events[0][0] == "alert" and events[0][1]["ok"] is True


async def test_failing_or_missing_command_is_reported_not_raised(tmp_path: Path) -> None:
    failing = AlertHook((sys.executable, "-c", "import sys; sys.exit(3)"), 5.0)
    outcome = await failing.send("HALT", "x", {})
    assert not outcome.ok and outcome.returncode == 3
    missing = AlertHook((str(tmp_path / "no-such-program"),), 5.0)
    outcome = await missing.send("HALT", "x", {})
    assert not outcome.ok and "cannot start" in (outcome.error or "")


async def test_a_hanging_command_is_killed_after_its_timeout() -> None:
    hook = AlertHook((sys.executable, "-c", "import time; time.sleep(30)"), 0.3)
    outcome = await hook.send("HALT", "x", {})
    assert not outcome.ok and "timed out" in (outcome.error or "")


async def test_disconnect_alert_only_after_the_configured_minutes() -> None:
    hook = AlertHook((), 1.0, disconnect_minutes=0.002)  # 120 ms
    hook.disconnected()
    hook.reconnected()  # back in time: no alert
    await asyncio.sleep(0.3)
    assert hook.sent == []
    hook.disconnected()
    await asyncio.sleep(0.4)
    assert [a.kind for a in hook.sent] == ["DISCONNECT"]
    await hook.aclose()
