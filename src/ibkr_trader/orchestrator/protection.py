"""The protective layer: the data quarantine, the loss governors and the Strategy C closures.

Run by the orchestrator every cycle, before any entry (see ``orchestrator`` step 5).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from ibkr_trader.alerts import ALERT_EMERGENCY_CLOSE, AlertHook
from ibkr_trader.broker.exceptions import BrokerError
from ibkr_trader.integrations.ibkr_gateway import IBKRGateway
from ibkr_trader.integrations.market_data_types import MarketData
from ibkr_trader.integrations.order_executor import OrderResult
from ibkr_trader.logging import get_logger
from ibkr_trader.models import ClosureReason, Position, TradingState
from ibkr_trader.orchestrator.report import CycleAction, CycleReport, _num, _short
from ibkr_trader.risk import RiskManager

__all__ = ["QUARANTINE_AFTER_SECONDS", "Protection"]

_log = get_logger("ibkr_trader.orchestrator")

QUARANTINE_AFTER_SECONDS: Final = 300.0


class Protection:
    """The quarantine, the governors and the Strategy C closures of one orchestrator."""

    def __init__(
        self,
        gateway: IBKRGateway,
        risk: RiskManager,
        alerts: AlertHook,
        *,
        send_block: Callable[[], str | None],
        order_timeout: float,
        quarantine_after_seconds: float = QUARANTINE_AFTER_SECONDS,
        manage_foreign_positions: bool = False,
    ) -> None:
        self.gateway = gateway
        self.risk = risk
        self.alerts = alerts
        self._send_block = send_block
        self.order_timeout = float(order_timeout)
        self.quarantine_after_seconds = float(quarantine_after_seconds)
        self.manage_foreign_positions = bool(manage_foreign_positions)

    async def protect(
        self, report: CycleReport, positions: Sequence[Position], data: dict[str, MarketData]
    ) -> bool:
        """The quarantine, the governors and the Strategy C closures. True if it closed."""
        state = self.risk.trading_state
        stale = [
            s
            for s, md in data.items()
            if md.is_stale and md.staleness_seconds > self.quarantine_after_seconds
        ]
        governor = self.risk.governor_cause() if state is TradingState.REDUCING else None
        due = [p for p in positions if p.closure_trigger and p.quantity != 0]
        if not self.manage_foreign_positions:
            ledger = self.risk.exposure
            foreign = [p for p in due if ledger.ours_quantity(p.contract.key) == 0]
            for p in foreign:
                report.add(
                    CycleAction(
                        "foreign",
                        f"{p.closure_trigger} due on {p.quantity:+g} {p.contract.key}, a "
                        "position the bot did not open: left alone (manage_foreign_positions "
                        "is off)",
                        symbol=p.symbol,
                        detail={"position_id": p.position_id},
                    )
                )
            due = [p for p in due if p not in foreign]
        if not report.market_open:
            for p in due:
                report.add(
                    CycleAction(
                        "deferred",
                        f"{p.closure_trigger} due; market closed, closing at the open",
                        symbol=p.symbol,
                        detail={"position_id": p.position_id},
                    )
                )
            return False
        if stale:
            report.add(
                CycleAction(
                    "quarantine",
                    "DATA_QUARANTINE: stale data for "
                    + ", ".join(f"{s} ({data[s].staleness_seconds:.0f} s)" for s in stale),
                )
            )
        if state is TradingState.HALTED:
            for p in due:
                report.add(
                    CycleAction(
                        "deferred",
                        f"{p.closure_trigger} due; trading HALTED ({self.risk.state_cause}): "
                        "no orders at all until resumed",
                        symbol=p.symbol,
                        detail={"position_id": p.position_id},
                    )
                )
            return False
        open_positions = [p for p in positions if p.quantity != 0]
        if not self.manage_foreign_positions:
            open_positions = [
                p for p in open_positions if self.risk.exposure.ours_quantity(p.contract.key) != 0
            ]
        if stale:
            if open_positions:
                await self._close_all(report, ClosureReason.DATA_QUARANTINE, "stale data")
            return True
        if governor is not None:
            reason = (
                ClosureReason.WEEKLY_DRAWDOWN
                if governor.startswith("WEEKLY")
                else ClosureReason.DAILY_LOSS_LIMIT
            )
            if open_positions:
                await self._close_all(report, reason, governor)
                return True
            return False
        closed = False
        for p in due:
            trigger = p.closure_trigger or ""
            hold = self._send_block()
            if hold is not None:
                report.add(CycleAction("deferred", f"{trigger} due; {hold}", symbol=p.symbol))
                continue
            try:
                result = await self.gateway.close_position(
                    p.position_id,
                    trigger,
                    self.order_timeout,
                    only_ours=not self.manage_foreign_positions,
                )
            except (BrokerError, TimeoutError) as exc:
                report.add(
                    CycleAction(
                        "error",
                        f"closing {p.position_id} ({trigger}) failed: {_short(exc)}",
                        symbol=p.symbol,
                    )
                )
                continue
            closed = True
            report.add(self._close_action("close", p, trigger, result))
            if trigger == ClosureReason.EMERGENCY_STOP.value:
                self.alerts.fire(
                    ALERT_EMERGENCY_CLOSE,
                    f"EMERGENCY_STOP: {p.position_id} at {p.unrealized_pnl_pct:.1%} "
                    f"-> {result.status.value}",
                    {"position_id": p.position_id, "status": result.status.value},
                )
        return closed

    def _close_action(
        self, kind: str, p: Position | None, reason: str, result: OrderResult
    ) -> CycleAction:
        detail: dict[str, Any] = {"fill_price": result.fill_price}
        if p is not None:
            detail.update(
                position_id=p.position_id,
                days_to_expiry=p.days_to_expiry,
                pnl_pct=_num(p.unrealized_pnl_pct),
            )
        text = reason if not result.rejection_reason else f"{reason}: {result.rejection_reason}"
        return CycleAction(
            kind,
            text,
            symbol=result.symbol or (p.symbol if p else ""),
            status=result.status.value,
            order_id=result.order_id,
            strategy="C",
            detail=detail,
        )

    async def _close_all(self, report: CycleReport, reason: ClosureReason, why: str) -> None:
        _log.warning("close_all", reason=reason.value, why=why)
        hold = self._send_block()
        if hold is not None:
            report.add(CycleAction("deferred", f"{reason.value} ({why}) due; {hold}"))
            return
        try:
            results = await self.gateway.close_all_positions(
                reason.value,
                self.order_timeout * 2,
                only_ours=not self.manage_foreign_positions,
            )
        except (BrokerError, TimeoutError) as exc:
            report.add(CycleAction("error", f"{reason.value} close-all failed: {_short(exc)}"))
            results = []
        for result in results:
            report.add(self._close_action("close_all", None, f"{reason.value}: {why}", result))
        statuses = [r.status.value for r in results]
        await self.gateway.journal.record_event(
            "emergency_close",
            {"reason": reason.value, "why": why, "results": statuses},
        )
        self.alerts.fire(
            ALERT_EMERGENCY_CLOSE,
            f"{reason.value}: closing {len(results)} position(s) ({why}) -> {statuses}",
            {"reason": reason.value, "why": why, "results": statuses},
        )
