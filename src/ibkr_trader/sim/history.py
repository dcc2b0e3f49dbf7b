"""Historical bars: reqHistoricalData with IB's pacing rules, end times and durations in IB's
formats.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from ibkr_trader.sim import codec
from ibkr_trader.sim.config import (
    ERR_NO_SECURITY,
    NY,
)
from ibkr_trader.sim.market_data import (
    MarketDataPart,
)
from ibkr_trader.sim.sessions import (
    Action,
    Send,
    Session,
)


def parse_end_time(text: str, now: datetime) -> datetime:
    """endDateTime of reqHistoricalData: empty = now; ``YYYYMMDD HH:MM:SS [zone]`` or
    ``YYYYMMDD-HH:MM:SS`` (UTC); a bare date is 23:59:59 New York."""
    text = text.strip()
    if not text:
        return now
    zone: ZoneInfo = NY
    if "-" in text[:9] and text[8:9] == "-":
        stamp, zone = text, ZoneInfo("UTC")
        return datetime.strptime(stamp, "%Y%m%d-%H:%M:%S").replace(tzinfo=zone).astimezone(UTC)
    parts = text.split()
    if len(parts) == 1:
        d = datetime.strptime(parts[0], "%Y%m%d")
        return d.replace(hour=23, minute=59, second=59, tzinfo=NY).astimezone(UTC)
    stamp = f"{parts[0]} {parts[1]}"
    if len(parts) > 2:
        name = parts[2]
        zone = ZoneInfo("UTC") if name in ("UTC", "GMT") else ZoneInfo(name)
    return datetime.strptime(stamp, "%Y%m%d %H:%M:%S").replace(tzinfo=zone).astimezone(UTC)


def duration_seconds(text: str) -> int:
    """``1800 S``, ``2 D``, ``1 W``, ``1 M``, ``1 Y`` -> seconds."""
    amount, _, unit = text.strip().partition(" ")
    n = int(amount)
    scale = {"S": 1, "D": 86_400, "W": 7 * 86_400, "M": 30 * 86_400, "Y": 365 * 86_400}
    if unit.strip().upper() not in scale or n <= 0:
        raise ValueError(f"bad duration {text!r}")
    return n * scale[unit.strip().upper()]


BAR_MINUTES: Final = {
    "1 min": 1,
    "2 mins": 2,
    "3 mins": 3,
    "5 mins": 5,
    "10 mins": 10,
    "15 mins": 15,
    "20 mins": 20,
    "30 mins": 30,
    "1 hour": 60,
}


def aggregate_bars(bars: Sequence[Any], minutes: int) -> list[codec.BarFields]:
    """Group 1-minute bars into ``minutes``-minute bars aligned on the hour."""
    groups: dict[int, list[Any]] = {}
    for b in bars:
        ts = int(b.time.timestamp())
        key = ts - ts % (minutes * 60)
        groups.setdefault(key, []).append(b)
    out: list[codec.BarFields] = []
    for key in sorted(groups):
        g = groups[key]
        vol = sum(float(b.volume) for b in g)
        wap = (
            sum(float(b.wap) * float(b.volume) for b in g) / vol if vol > 0 else float(g[-1].close)
        )
        out.append(
            codec.BarFields(
                date=str(key),
                open=float(g[0].open),
                high=max(float(b.high) for b in g),
                low=min(float(b.low) for b in g),
                close=float(g[-1].close),
                volume=vol,
                wap=round(wap, 4),
                bar_count=sum(int(b.bar_count) for b in g),
            )
        )
    return out


class HistoryPart(MarketDataPart):
    """The history part of :class:`~ibkr_trader.sim.state.GatewayState`."""

    def _pacing_violation(
        self, key: tuple[Any, ...], contract_key: tuple[Any, ...], weight: int
    ) -> bool:
        now = self.wall()
        log = self._hist_log
        while log and now - log[0][0] > 600:
            log.popleft()
        if any(k == key and now - t < 15 for t, k, _, _ in log):
            return True
        same = sum(w for t, k, _, w in log if k[:3] == contract_key and now - t < 2)
        if same + weight >= 6:
            return True
        if sum(w for _, _, _, w in log) + weight > 60:
            return True
        log.append((now, key, 0, weight))
        return False

    def _req_historical_data(self, session: Session, req: codec.ReqHistoricalData) -> list[Action]:
        cid = session.conn_id

        def hmds(text: str) -> list[Action]:
            return [
                Send(
                    cid,
                    codec.enc_error(
                        req.req_id, 162, f"Historical Market Data Service error message:{text}"
                    ),
                )
            ]

        info = self._resolve(req.contract)
        if info is None:
            return [Send(cid, codec.enc_error(req.req_id, 200, ERR_NO_SECURITY))]
        what = req.what_to_show.upper()
        if what not in ("TRADES", "MIDPOINT", "BID", "ASK", "BID_ASK"):
            return hmds(f"No data of type {req.what_to_show} is available for {info.symbol}")
        minutes = BAR_MINUTES.get(req.bar_size.strip())
        if minutes is None:
            return hmds(f"Bar size {req.bar_size!r} is not supported by the simulator")
        try:
            seconds = duration_seconds(req.duration)
            end = parse_end_time(req.end, self.clock.now())
        except (ValueError, KeyError) as exc:
            return hmds(f"invalid request: {exc}")
        if self.config.pacing:
            key = (
                info.con_id,
                req.contract.exchange,
                what,
                req.end,
                req.duration,
                req.bar_size,
                req.use_rth,
            )
            weight = 2 if what == "BID_ASK" else 1
            if self._pacing_violation(key, key[:3], weight):
                return hmds("Historical data request pacing violation")
        # IB counts a duration in trading time: "3600 S" on a Saturday is Friday's last hour.
        per_day = 390 if (self.calendar.calendar and req.use_rth) else 1440
        count = seconds // 60 if seconds < 86_400 else (seconds // 86_400) * per_day
        count = max(1, min(count, 20_000))
        raw = list(self.market.bars(info.con_id, end, count, req.use_rth))
        if not raw:
            return hmds(
                f"HMDS query returned no data: {info.symbol}@{req.contract.exchange or 'SMART'} Trades"
            )
        bars = aggregate_bars(raw, minutes)
        no_volume = what != "TRADES"
        if req.format_date == 2:
            render: Callable[[int], str] = str
        else:

            def render(ts: int) -> str:
                return f"{datetime.fromtimestamp(ts, NY):%Y%m%d %H:%M:%S} US/Eastern"

        wire = [
            codec.BarFields(
                date=render(int(b.date)),
                open=b.open,
                high=b.high,
                low=b.low,
                close=b.close,
                volume=-1 if no_volume else b.volume,
                wap=-1 if no_volume else b.wap,
                bar_count=-1 if no_volume else b.bar_count,
            )
            for b in bars
        ]
        return [
            Send(
                cid,
                codec.enc_historical_data(
                    req.req_id,
                    render(int(raw[0].time.timestamp())),
                    render(int(end.timestamp())),
                    wire,
                ),
            )
        ]
