"""Hypothesis strategies for bad input: signals, strategy contexts and plain garbage.

Every mutation here makes a signal (or context) that must be refused: malformed for the
pydantic models, or well-formed but outside what the broker lists or the risk limits allow.
Mutations that a lenient parser could legitimately accept (``"605"`` for a strike, ``"call"``
for a right) are left out on purpose: they are valid input, not bad input.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from hypothesis import strategies as st

ALLOWED = {"SPY", "QQQ", "IWM"}
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
# not bytes: pydantic's lax str decodes them (b"SPY" is "SPY"), so they are not bad input
JUNK = st.one_of(
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _text_not(*valid: str) -> st.SearchStrategy[str]:
    banned = {v.upper() for v in valid}
    return st.text(max_size=16).filter(lambda s: s.strip().upper() not in banned)


def _symbol() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(["", " ", "spy", "SPY!", "1SPY", "S P Y", "TOOLONGSYMBOL", "ZZZZ"]),
        st.sampled_from(["AAPL", "MSFT", "TSLA"]),  # real tickers outside the allowlist
        _text_not(*ALLOWED),
        st.integers(),
        NON_FINITE,
        JUNK,
    )


def _quantity() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(max_value=0),
        st.integers(min_value=3, max_value=10_000),  # over max_contracts_per_order (2)
        st.integers(min_value=10_001),
        st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: x != 1.0 and x != 2.0),
        st.sampled_from(["1", "one", True, False]),
        JUNK,
    )


def _limit_price() -> st.SearchStrategy[Any]:
    return st.one_of(
        NON_FINITE,
        st.floats(max_value=0.0, allow_nan=False),
        st.floats(min_value=1e6, allow_nan=False, allow_infinity=False),  # unaffordable
        st.sampled_from(["abc", "", "5,63", None]),
        JUNK,
    )


def _expiry() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(
            [
                "",
                "2026-12-01",
                "20261399",
                "20260230",
                "abcdefgh",
                "2026120",
                "202612011",
                "20200117",  # long gone
                "20991218",  # no such listing
                "00000000",
            ]
        ),
        st.integers(),
        st.dates().map(lambda d: d.strftime("%Y/%m/%d")),
        JUNK,
    )


def _strike() -> st.SearchStrategy[Any]:
    return st.one_of(
        NON_FINITE,
        st.floats(max_value=0.0, allow_nan=False),
        st.sampled_from([0.013, 1e7, 123456.5]),  # not listed
        st.sampled_from(["x", "", None]),
        JUNK,
    )


def _timestamp() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.datetimes(),  # naive
        st.datetimes().map(datetime.isoformat),  # naive ISO text
        st.sampled_from(["yesterday", "", None]),
        JUNK,
    )


# field -> strategy of values that make the signal invalid
SIGNAL_MUTATIONS: dict[str, st.SearchStrategy[Any]] = {
    "symbol": _symbol(),
    "action": st.one_of(_text_not("BUY", "SELL"), st.integers(), JUNK),
    "quantity": _quantity(),
    "order_type": st.one_of(_text_not("LMT", "LIMIT", "MKT", "MARKET"), st.just("MKT"), JUNK),
    "limit_price": _limit_price(),
    "expiry": _expiry(),
    "strike": _strike(),
    "right": st.one_of(_text_not("C", "CALL", "P", "PUT"), st.integers(), JUNK),
    "timestamp": _timestamp(),
    "signal_strength": st.one_of(
        NON_FINITE,
        st.floats(max_value=-1e-9, allow_nan=False),
        st.floats(min_value=1.000001, allow_nan=False),
        st.sampled_from(["high"]),
        JUNK,
    ),
    "strategy_id": st.one_of(
        st.just(""), st.text(min_size=65, max_size=80), st.just("someone-else"), JUNK
    ),
    "signal_id": st.one_of(st.text(min_size=129, max_size=140), st.integers(), JUNK),
}

EXTRA_KEYS = st.sampled_from(["account", "price", "operator_id", "live", "orderRef", "qty"])


@st.composite
def bad_signal(draw: st.DrawFn, base: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The base signal with one to three invalid mutations (returns it and what changed)."""
    signal = dict(base)
    fields = draw(
        st.lists(st.sampled_from(sorted(SIGNAL_MUTATIONS)), min_size=1, max_size=3, unique=True)
    )
    changes = []
    for name in fields:
        signal[name] = draw(SIGNAL_MUTATIONS[name])
        changes.append(name)
    if draw(st.booleans()):
        key = draw(EXTRA_KEYS)
        signal[key] = draw(st.one_of(st.text(max_size=8), st.integers(), JUNK))
        changes.append(f"+{key}")
    if draw(st.integers(0, 5)) == 0:
        gone = draw(st.sampled_from(["symbol", "action", "quantity", "expiry", "strike", "right"]))
        signal.pop(gone, None)
        changes.append(f"-{gone}")
    return signal, changes


CONTEXT_MUTATIONS: dict[str, st.SearchStrategy[Any]] = {
    "strategy_id": st.one_of(st.just(""), st.just("not-the-signals"), JUNK),
    "strategy_name": st.one_of(st.just(""), st.text(min_size=65, max_size=70), JUNK),
    "risk_per_trade": st.one_of(
        NON_FINITE,
        st.floats(max_value=0.0, allow_nan=False),
        st.floats(min_value=1.000001, allow_nan=False),
        st.sampled_from(["lots", None]),
    ),
    "take_profit_pct": st.one_of(
        NON_FINITE, st.floats(max_value=-1e-9), st.floats(min_value=10.000001), st.just("x")
    ),
    "stop_loss_pct": st.one_of(
        NON_FINITE, st.floats(max_value=-1e-9), st.floats(min_value=1.000001), JUNK
    ),
}


@st.composite
def bad_context(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """A strategy context with one or more invalid fields (or an extra / a missing key)."""
    context = dict(base)
    fields = draw(
        st.lists(st.sampled_from(sorted(CONTEXT_MUTATIONS)), min_size=0, max_size=3, unique=True)
    )
    for name in fields:
        context[name] = draw(CONTEXT_MUTATIONS[name])
    if not fields or draw(st.booleans()):
        if draw(st.booleans()):
            context[draw(st.sampled_from(["max_loss", "account", "live"]))] = 1
        else:
            context.pop(draw(st.sampled_from(sorted(base))))
    return context


GARBAGE = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=10),
        st.binary(max_size=8),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=12,
)
