"""Accounts and positions: account values, portfolio rows, account summary, positions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from ibkr_trader.sim import codec
from ibkr_trader.sim.codec import ContractFields
from ibkr_trader.sim.config import (
    NY,
)
from ibkr_trader.sim.contracts import ContractInfo
from ibkr_trader.sim.history import (
    HistoryPart,
)
from ibkr_trader.sim.market_data import (
    contract_fields,
)
from ibkr_trader.sim.sessions import (
    Action,
    Send,
    Session,
)

ACCOUNT_SUMMARY_TAGS: Final = (
    "AccountType",
    "NetLiquidation",
    "TotalCashValue",
    "SettledCash",
    "AccruedCash",
    "BuyingPower",
    "EquityWithLoanValue",
    "PreviousDayEquityWithLoanValue",
    "GrossPositionValue",
    "RegTEquity",
    "RegTMargin",
    "SMA",
    "InitMarginReq",
    "MaintMarginReq",
    "AvailableFunds",
    "ExcessLiquidity",
    "Cushion",
    "FullInitMarginReq",
    "FullMaintMarginReq",
    "FullAvailableFunds",
    "FullExcessLiquidity",
    "LookAheadNextChange",
    "LookAheadInitMarginReq",
    "LookAheadMaintMarginReq",
    "LookAheadAvailableFunds",
    "LookAheadExcessLiquidity",
    "HighestSeverity",
    "DayTradesRemaining",
    "Leverage",
)


@dataclass
class PositionRow:
    account: str
    contract: ContractFields
    con_id: int
    multiplier: float
    quantity: float = 0.0
    avg_cost: float = 0.0  # IB convention: per share / per contract (price x multiplier)
    realized_pnl: float = 0.0
    opened_day: str = ""


@dataclass
class Account:
    account: str
    cash: float
    realized_pnl: float = 0.0
    commissions: float = 0.0
    day_trades: list[tuple[str, int]] = field(default_factory=list)  # (NY date, con_id)


class AccountsPart(HistoryPart):
    """The accounts part of :class:`~ibkr_trader.sim.state.GatewayState`."""

    def _position_msgs(self, conn_id: int) -> list[Action]:
        return [
            Send(conn_id, codec.enc_position(p.account, p.contract, p.quantity, self._cost(p)))
            for p in self.positions.values()
        ]

    @staticmethod
    def _cost(p: PositionRow) -> float:
        return round(p.avg_cost, 6) if p.quantity else 0.0

    def _req_positions(self, session: Session, req: Any) -> list[Action]:
        session.positions = True
        return [
            *self._position_msgs(session.conn_id),
            Send(session.conn_id, codec.enc_position_end()),
        ]

    def _cancel_positions(self, session: Session, req: Any) -> list[Action]:
        session.positions = False
        return []

    def _mark(self, p: PositionRow) -> float:
        try:
            price = float(self.market.price(p.con_id))
        except Exception:
            price = p.avg_cost / p.multiplier if p.multiplier else 0.0
        return round(price, 4)

    def account_values(self, account: str) -> dict[str, float | str]:
        acct = self.accounts[account]
        long_stock = short_stock = long_opt = short_opt = unrealized = 0.0
        for p in self.positions.values():
            if p.account != account or not p.quantity:
                continue
            value = p.quantity * self._mark(p) * p.multiplier
            unrealized += value - p.quantity * p.avg_cost
            if p.contract.sec_type == "OPT":
                if value >= 0:
                    long_opt += value
                else:
                    short_opt += value
            elif value >= 0:
                long_stock += value
            else:
                short_stock += value
        gross = long_stock - short_stock + long_opt - short_opt
        net_liq = acct.cash + long_stock + short_stock + long_opt + short_opt
        init_margin = 0.25 * (long_stock - short_stock) + (-short_opt) * 1.2
        maint_margin = init_margin * 0.9
        available = net_liq - init_margin
        excess = net_liq - maint_margin
        day_trades: float = -1.0
        if net_liq < 25_000:
            day_trades = float(max(0, 3 - self._recent_day_trades(acct)))
        return {
            "AccountCode": account,
            "AccountType": "INDIVIDUAL",
            "Currency": "USD",
            "NetLiquidation": round(net_liq, 2),
            "TotalCashValue": round(acct.cash, 2),
            "CashBalance": round(acct.cash, 2),
            "SettledCash": round(acct.cash, 2),
            "AccruedCash": 0.0,
            "BuyingPower": round(max(available, 0.0) * 4, 2),
            "EquityWithLoanValue": round(net_liq, 2),
            "PreviousDayEquityWithLoanValue": round(net_liq, 2),
            "GrossPositionValue": round(gross, 2),
            "StockMarketValue": round(long_stock + short_stock, 2),
            "OptionMarketValue": round(long_opt + short_opt, 2),
            "RegTEquity": round(net_liq, 2),
            "RegTMargin": round(init_margin * 2, 2),
            "SMA": round(max(available, 0.0), 2),
            "InitMarginReq": round(init_margin, 2),
            "MaintMarginReq": round(maint_margin, 2),
            "AvailableFunds": round(available, 2),
            "ExcessLiquidity": round(excess, 2),
            "Cushion": round(excess / net_liq, 4) if net_liq else 0.0,
            "FullInitMarginReq": round(init_margin, 2),
            "FullMaintMarginReq": round(maint_margin, 2),
            "FullAvailableFunds": round(available, 2),
            "FullExcessLiquidity": round(excess, 2),
            "LookAheadNextChange": 0.0,
            "LookAheadInitMarginReq": round(init_margin, 2),
            "LookAheadMaintMarginReq": round(maint_margin, 2),
            "LookAheadAvailableFunds": round(available, 2),
            "LookAheadExcessLiquidity": round(excess, 2),
            "HighestSeverity": 0.0,
            "DayTradesRemaining": day_trades,
            "Leverage": round(gross / net_liq, 4) if net_liq else 0.0,
            "UnrealizedPnL": round(unrealized, 2),
            "RealizedPnL": round(acct.realized_pnl, 2),
        }

    def _recent_day_trades(self, acct: Account) -> int:
        today = self.clock.now().astimezone(NY).date()
        days: set[str] = set()
        d = today
        while len(days) < 5:
            if self.calendar.is_trading_day(d) or not self.calendar.calendar:
                days.add(d.strftime("%Y%m%d"))
            d -= timedelta(days=1)
        return sum(1 for day, _ in acct.day_trades if day in days)

    @staticmethod
    def _currency(key: str, value: float | str) -> str:
        if key in ("AccountCode", "AccountType", "Currency"):
            return ""
        return (
            ""
            if key
            in (
                "Cushion",
                "Leverage",
                "DayTradesRemaining",
                "HighestSeverity",
                "LookAheadNextChange",
            )
            else "USD"
        )

    def _account_values(self, conn_id: int, account: str) -> list[Action]:
        out: list[Action] = []
        for key, value in self.account_values(account).items():
            out.append(
                Send(
                    conn_id,
                    codec.enc_account_value(
                        key, codec.fmt(value), self._currency(key, value), account
                    ),
                )
            )
        return out

    def _portfolio_rows(self, conn_id: int, account: str) -> list[Action]:
        out: list[Action] = []
        for p in self.positions.values():
            if p.account != account:
                continue
            price = self._mark(p)
            value = round(p.quantity * price * p.multiplier, 2)
            unrealized = round(value - p.quantity * p.avg_cost, 2) if p.quantity else 0.0
            out.append(
                Send(
                    conn_id,
                    codec.enc_portfolio(
                        p.contract,
                        p.quantity,
                        price,
                        value,
                        self._cost(p),
                        unrealized,
                        round(p.realized_pnl, 2),
                        account,
                    ),
                )
            )
        return out

    def _account_time(self, conn_id: int) -> Action:
        return Send(conn_id, codec.enc_account_time(f"{self.clock.now().astimezone(NY):%H:%M}"))

    def _req_account_updates(self, session: Session, req: codec.ReqAccountUpdates) -> list[Action]:
        account = req.account or self.config.accounts[0]
        if not req.subscribe:
            session.account_updates = None
            return []
        if account not in self.accounts:
            return [
                Send(
                    session.conn_id,
                    codec.enc_error(
                        -1,
                        321,
                        f"Error validating request.-'bB' : cause - Invalid account code {account}",
                    ),
                )
            ]
        session.account_updates = account
        cid = session.conn_id
        return [
            *self._account_values(cid, account),
            *self._portfolio_rows(cid, account),
            self._account_time(cid),
            Send(cid, codec.enc_account_download_end(account)),
        ]

    def _req_account_updates_multi(
        self, session: Session, req: codec.ReqAccountUpdatesMulti
    ) -> list[Action]:
        cid = session.conn_id
        accounts = [req.account] if req.account in self.accounts else list(self.accounts)
        session.multis[req.req_id] = req.account
        out: list[Action] = []
        for account in accounts:
            for key, value in self.account_values(account).items():
                out.append(
                    Send(
                        cid,
                        codec.enc_account_update_multi(
                            req.req_id,
                            account,
                            req.model_code,
                            key,
                            codec.fmt(value),
                            self._currency(key, value),
                        ),
                    )
                )
        out.append(Send(cid, codec.enc_account_update_multi_end(req.req_id)))
        return out

    def _cancel_account_updates_multi(
        self, session: Session, req: codec.CancelAccountUpdatesMulti
    ) -> list[Action]:
        session.multis.pop(req.req_id, None)
        return []

    def _summary_rows(self, conn_id: int, req_id: int, tags: str) -> list[Action]:
        wanted = {t.strip() for t in tags.split(",") if t.strip()}
        out: list[Action] = []
        for account in self.accounts:
            values = self.account_values(account)
            for tag in ACCOUNT_SUMMARY_TAGS:
                if tag in wanted:
                    value = values[tag]
                    out.append(
                        Send(
                            conn_id,
                            codec.enc_account_summary(
                                req_id, account, tag, codec.fmt(value), self._currency(tag, value)
                            ),
                        )
                    )
        return out

    def _req_account_summary(self, session: Session, req: codec.ReqAccountSummary) -> list[Action]:
        if len(session.summaries) >= 2 and req.req_id not in session.summaries:
            text = "Error processing request:Maximum number of account summary requests exceeded"
            return [Send(session.conn_id, codec.enc_error(req.req_id, 322, text))]
        session.summaries[req.req_id] = req.tags
        return [
            *self._summary_rows(session.conn_id, req.req_id, req.tags),
            Send(session.conn_id, codec.enc_account_summary_end(req.req_id)),
        ]

    def _cancel_account_summary(
        self, session: Session, req: codec.CancelAccountSummary
    ) -> list[Action]:
        session.summaries.pop(req.req_id, None)
        return []

    def seed_position(
        self,
        account: str,
        symbol: str,
        quantity: float,
        avg_cost: float,
        *,
        sec_type: str = "STK",
        expiry: str = "",
        strike: float = 0.0,
        right: str = "",
        con_id: int = 0,
    ) -> ContractInfo:
        """Put a position on the book as if filled earlier (avg_cost in IB's convention)."""
        if account not in self.accounts:
            raise ValueError(f"unknown account {account}")
        found = (
            [i for i in [self.catalog.by_con_id(con_id)] if i is not None]
            if con_id
            else self.catalog.find(
                symbol=symbol, sec_type=sec_type, expiry=expiry, strike=strike, right=right
            )
        )
        if len(found) != 1:
            raise ValueError(
                f"no single contract for {symbol} {sec_type} {expiry} {strike} {right}"
            )
        info = found[0]
        row = PositionRow(
            account,
            contract_fields(info),
            info.con_id,
            float(info.multiplier_value),
            quantity,
            avg_cost,
        )
        self.positions[(account, info.con_id)] = row
        return info
