"""Subprocess for the kill test: append forever, print each acknowledged write, flush.

Usage: python kill_writer.py JOURNAL_PATH ROUND
Lines: ``ready``, then ``event <id>``, ``intent <coid>``, ``fill <exec_id>``,
``sim <exec_id>`` once the corresponding call has RETURNED (i.e. committed).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ibkr_trader.journal import Journal
from ibkr_trader.models import ContractSpec, ExecutionMode, TradeRequest

CALL = ContractSpec(symbol="SPY", expiry="20260320", strike=580.0, right="C")


def main() -> None:
    path, round_no = Path(sys.argv[1]), int(sys.argv[2])
    journal = Journal.open(path, ExecutionMode.DRY_RUN)
    journal.seed_simulated_cash(1_000_000.0)
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    i = 0
    while True:
        tag = f"r{round_no}-{i}"
        step = i % 4
        if step == 0:
            line = f"event {journal.append_event('tick', {'tag': tag})}"
        elif step == 1:
            request = TradeRequest(
                symbol="SPY",
                action="BUY",
                quantity=1,
                order_type="LMT",
                limit_price=1.0,
                strategy_id="K",
                strategy_name="kill",
                risk_per_trade=0.01,
                take_profit_pct=0.5,
                stop_loss_pct=0.4,
                expiry="20260320",
                strike=580.0,
                right="C",
                operator_id="CSATSPRIM",
                signal_id=tag,
            )
            line = (
                f"intent {journal.record_intent(request, decision_id=None).intent.client_order_id}"
            )
        elif step == 2:
            journal.record_fill(
                f"x-{tag}",
                client_order_id=None,
                symbol="SPY",
                contract_key=CALL.key,
                side="BUY",
                quantity=1,
                price=1.0,
            )
            line = f"fill x-{tag}"
        else:
            action = "BUY" if (i // 4) % 2 == 0 else "SELL"
            journal.apply_simulated_fill(
                exec_id=f"s-{tag}",
                client_order_id=None,
                contract=CALL,
                action=action,
                quantity=1,
                price=1.0 + (i % 7) / 10,
            )
            line = f"sim s-{tag}"
        out.write(line + "\n")
        out.flush()
        i += 1


if __name__ == "__main__":
    main()
