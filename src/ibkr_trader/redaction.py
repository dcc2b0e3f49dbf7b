"""Account-id redaction (no dependencies: imported by the configuration and the logging)."""

from __future__ import annotations

import re

_ACCOUNT_RE = re.compile(r"\b(DU|DF|U|F)\d{5,9}\b")
_MAYBE_ACCOUNT = re.compile(r"[UF]\d{5}")  # in every account id: a quick test for none


def redact(text: str) -> str:
    """Mask IB account ids (DU1234567 -> DU***567) in a string."""
    if _MAYBE_ACCOUNT.search(text) is None:  # most text (a decision's JSON): nothing to mask
        return text
    return _ACCOUNT_RE.sub(lambda m: f"{m.group(1)}***{m.group(0)[-3:]}", text)
