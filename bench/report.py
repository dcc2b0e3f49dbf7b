"""The issue-18 table: goal / target / measured / verdict, from the benchmarks' JSON.

``make bench`` runs every benchmark with ``BENCH_OUT`` set, then this script, which reads
``$BENCH_OUT/integration.json`` (bench_integration.py) and ``$BENCH_OUT/pacing.json``
(bench_pacing.py) and prints the table (Markdown) plus one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def _load(out: Path, name: str) -> dict[str, Any] | None:
    path = out / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def rows(integration: dict[str, Any] | None, pacing: dict[str, Any] | None) -> list[list[str]]:
    table: list[list[str]] = []
    if integration is not None:
        p1, p2 = integration["p1_submit_vs_place"], integration["p2_fill_bytes_to_result"]
        cold = integration["p1_cold_first_order"]
        table.append(
            [
                "P1 `submit_order` (paper, instant fill) minus raw `placeOrder`->Filled, warm",
                "<= +1 ms median, <= +3 ms p99",
                f"+{p1['delta_median_ms']:.2f} ms median, +{p1['delta_p99_ms']:.2f} ms p99 "
                f"({p1['ours']['median_ms']:.2f} vs {p1['raw']['median_ms']:.2f} ms, "
                f"N={p1['ours']['n']})",
                _verdict(p1["delta_median_ms"] <= 1.0 and p1["delta_p99_ms"] <= 3.0),
            ]
        )
        table.append(
            [
                "P1 cold: the first order of a fresh process",
                "(reported apart)",
                f"{cold['ours']['median_ms']:.1f} vs raw {cold['raw']['median_ms']:.1f} ms "
                f"(median of {cold['ours']['n']} processes)",
                "-",
            ]
        )
        table.append(
            [
                "P2 fill bytes at the client's socket -> OrderResult",
                "<= 1 ms",
                f"{p2['ours']['median_ms']:.2f} ms median, p99 {p2['ours']['p99_ms']:.2f} "
                f"(raw ib_async's floor {p2['raw']['median_ms']:.2f} ms)",
                _verdict(p2["ours"]["median_ms"] <= 1.0),
            ]
        )
        for label, key in (("warm", "p3_warm"), ("cold", "p3_cold")):
            p3 = integration[key]
            n = p3.get("samples", p3.get("processes"))
            table.append(
                [
                    f"P3 `close_all` of 20 at 200 ms fill latency vs one close, {label}",
                    "<= 1.5x",
                    f"x{p3['ratio_median']:.2f} ({p3['close_all_20']['median_ms']:.0f} vs "
                    f"{p3['close_one']['median_ms']:.0f} ms, {n} samples)",
                    _verdict(p3["ratio_median"] <= 1.5),
                ]
            )
        one, ten = integration["p4_one_symbol"], integration["p4_ten_symbols"]
        table.append(
            [
                "P4 `get_market_data` vs raw snapshot + 60 bars",
                "<= 1.1x",
                f"x{one['ratio_median']:.2f} ({one['ours']['median_ms']:.2f} vs "
                f"{one['raw']['median_ms']:.2f} ms)",
                _verdict(one["ratio_median"] <= 1.1),
            ]
        )
        table.append(
            [
                "P4 10 symbols vs raw's 10 symbols",
                "<= 1.1x",
                f"x{ten['ratio_median']:.2f} ({ten['ours']['median_ms']:.1f} vs "
                f"{ten['raw']['median_ms']:.1f} ms)",
                _verdict(ten["ratio_median"] <= 1.1),
            ]
        )
        bb = integration["back_to_back"]
        table.append(
            [
                "back-to-back orders",
                ">= 40 orders/s within IB's 50 msg/s",
                f"{bb['orders_per_second']}/s, {bb['messages_per_order']} msg/order, max "
                f"{bb['max_messages_in_sliding_second_at_sim']} msg in a sliding second",
                _verdict(
                    bb["orders_per_second"] >= 40
                    and bb["max_messages_in_sliding_second_at_sim"] <= 50
                ),
            ]
        )
    if pacing is not None:
        table.append(
            [
                "P6 pacing at a separate-process receiver (close_all of 100 + data refresh)",
                "<= 50 in every sliding second, >= 45/s sustained after the first window",
                f"max {pacing['max_messages_in_sliding_second']}, sustained >= "
                f"{pacing['min_sustained_rate']}/s ({len(pacing['runs'])} runs)",
                _verdict(bool(pacing["ok_max"] and pacing["ok_sustained"])),
            ]
        )
    return table


def main() -> int:
    out = Path(os.environ.get("BENCH_OUT", ".bench"))
    integration, pacing = _load(out, "integration"), _load(out, "pacing")
    table = rows(integration, pacing)
    load = (integration or pacing or {}).get("load_average")
    print("| goal | target | measured | verdict |")
    print("|---|---|---|---|")
    for row in table:
        print("| " + " | ".join(row) + " |")
    if load:
        print(f"\nload average during the run: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    print(json.dumps({"bench": "report", "rows": table, "load_average": load}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
