from __future__ import annotations

import pytest

from ibkr_trader.clock import ManualClock

from .helpers import NOW


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)
