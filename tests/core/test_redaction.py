"""Account-id redaction: the quick test for "no account id here" never skips one."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from ibkr_trader.redaction import redact

_FULL = re.compile(r"\b(DU|DF|U|F)\d{5,9}\b")


def _reference(text: str) -> str:
    return _FULL.sub(lambda m: f"{m.group(1)}***{m.group(0)[-3:]}", text)


_PIECES = st.sampled_from(
    ["DU", "DF", "U", "F", "B", " ", '"', ":", "-", "x", "_", "1", "12345", "0"]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(_PIECES, st.text(max_size=4)), max_size=12).map("".join))
def test_redaction_is_the_full_rule_on_any_text(text: str) -> None:
    assert redact(text) == _reference(text)


def test_account_ids_are_masked_and_other_numbers_kept() -> None:
    assert (
        redact('{"account": "DU1234567", "qty": 123456}')
        == '{"account": "DU***567", "qty": 123456}'
    )
    assert redact("BUY 12345 U1234") == "BUY 12345 U1234"
