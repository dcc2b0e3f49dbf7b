"""The alert hook: a configured command run when a person should look.

Fired on a HALT, on a degradation (no usable data, a failed step of the cycle, an unknown
price, the journal not writable, REDUCING for a cause other than a governor), on an emergency
close (data quarantine, a loss governor, the 40% emergency stop), on a gateway disconnect that
lasts longer than ``disconnect_minutes``, and when a position the bot did not open appears
(``FOREIGN``: left alone unless ``manage_foreign_positions`` is on).

The command is an argv list run WITHOUT a shell, with the alert appended as two arguments
(``KIND MESSAGE``) and also passed in the environment (``IBKR_TRADER_ALERT_KIND``,
``IBKR_TRADER_ALERT_MESSAGE``, ``IBKR_TRADER_ALERT_DETAIL`` as JSON). It gets at most
``timeout`` seconds and is then killed. A failure (missing program, non-zero exit, timeout) is
logged and journaled, never raised: an alert must not stop the bot from protecting capital.
Alerts run as tasks owned by the hook; :meth:`AlertHook.aclose` waits for them (bounded).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ibkr_trader.logging import get_logger, redact

__all__ = [
    "ALERT_DEGRADED",
    "ALERT_DISCONNECT",
    "ALERT_EMERGENCY_CLOSE",
    "ALERT_FOREIGN",
    "ALERT_HALT",
    "AlertHook",
    "AlertOutcome",
]

ALERT_HALT: Final = "HALT"
ALERT_EMERGENCY_CLOSE: Final = "EMERGENCY_CLOSE"
ALERT_DISCONNECT: Final = "DISCONNECT"
#: a protective path works in a degraded way (no data, a failed step, the journal): look
ALERT_DEGRADED: Final = "DEGRADED"
#: a position the bot did not open is in the account (a manual trade, another program)
ALERT_FOREIGN: Final = "FOREIGN"

_log = get_logger("ibkr_trader.alerts")

EventSink = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class AlertOutcome:
    kind: str
    message: str
    ok: bool
    returncode: int | None = None
    error: str | None = None


class AlertHook:
    """Runs ``command`` for each alert (see the module docstring). No command: log only."""

    def __init__(
        self,
        command: Sequence[str] = (),
        timeout: float = 10.0,
        *,
        disconnect_minutes: float = 5.0,
        sink: EventSink | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.command = tuple(command)
        self.timeout = float(timeout)
        self.disconnect_minutes = float(disconnect_minutes)
        self._sink = sink
        self._tasks: set[asyncio.Task[AlertOutcome]] = set()
        self._disconnect_timer: asyncio.Task[None] | None = None
        self.sent: list[AlertOutcome] = []

    @property
    def has_sink(self) -> bool:
        return self._sink is not None

    def set_sink(self, sink: EventSink | None) -> None:
        """Where alert outcomes are journaled (``AsyncJournal.record_event``)."""
        self._sink = sink

    # ------------------------------------------------------------------ firing

    def fire(self, kind: str, message: str, detail: dict[str, Any] | None = None) -> None:
        """Start an alert in the background (owned task); never raises."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            _log.error("alert_without_loop", kind=kind, message=message)
            return
        task = loop.create_task(self.send(kind, message, detail or {}))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def send(self, kind: str, message: str, detail: dict[str, Any]) -> AlertOutcome:
        """Run the command for one alert and wait (bounded) for it; never raises."""
        message = redact(message)
        _log.warning("alert", kind=kind, message=message)
        if not self.command:
            outcome = AlertOutcome(kind, message, ok=True, error="no alert command configured")
        else:
            outcome = await self._run(kind, message, detail)
        self.sent.append(outcome)
        if self._sink is not None:
            try:
                await self._sink(
                    "alert",
                    {
                        "kind": kind,
                        "message": message,
                        "ok": outcome.ok,
                        "returncode": outcome.returncode,
                        "error": outcome.error,
                    },
                )
            except Exception as exc:  # an alert is never lost silently, nor raised
                _log.error("alert_not_journaled", error=repr(exc))
        return outcome

    async def _run(self, kind: str, message: str, detail: dict[str, Any]) -> AlertOutcome:
        env = dict(os.environ)
        env["IBKR_TRADER_ALERT_KIND"] = kind
        env["IBKR_TRADER_ALERT_MESSAGE"] = message
        env["IBKR_TRADER_ALERT_DETAIL"] = redact(json.dumps(detail, default=str))
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.command,
                kind,
                message,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
        except OSError as exc:
            _log.error("alert_command_failed", kind=kind, error=str(exc))
            return AlertOutcome(kind, message, ok=False, error=f"cannot start: {exc}")
        try:
            _, stderr = await asyncio.wait_for(proc.communicate(), self.timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 2.0)
            _log.error("alert_command_timeout", kind=kind, timeout=self.timeout)
            return AlertOutcome(kind, message, ok=False, error=f"timed out after {self.timeout:g}s")
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise
        code = proc.returncode
        if code != 0:
            text = (stderr or b"").decode(errors="replace").strip()[:500]
            _log.error("alert_command_failed", kind=kind, returncode=code, stderr=text)
            return AlertOutcome(
                kind, message, ok=False, returncode=code, error=text or f"exit code {code}"
            )
        return AlertOutcome(kind, message, ok=True, returncode=0)

    # ------------------------------------------------------------------ disconnects

    def disconnected(self) -> None:
        """The gateway went away: alert if it stays away for ``disconnect_minutes``."""
        if self._disconnect_timer is not None and not self._disconnect_timer.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._disconnect_timer = loop.create_task(self._disconnect_alert())

    def reconnected(self) -> None:
        """The gateway is back: no disconnect alert (any more)."""
        timer, self._disconnect_timer = self._disconnect_timer, None
        if timer is not None and not timer.done():
            timer.cancel()

    async def _disconnect_alert(self) -> None:
        await asyncio.sleep(self.disconnect_minutes * 60.0)
        await self.send(
            ALERT_DISCONNECT,
            f"gateway disconnected for more than {self.disconnect_minutes:g} minutes",
            {"disconnect_minutes": self.disconnect_minutes},
        )

    # ------------------------------------------------------------------ shutdown

    async def aclose(self, timeout: float | None = None) -> None:
        """Cancel the disconnect timer; let running alerts finish (bounded), then cancel them."""
        self.reconnected()
        tasks = list(self._tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout or self.timeout + 2.0)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
