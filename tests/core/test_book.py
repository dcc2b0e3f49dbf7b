"""The one position arithmetic (ibkr_trader.book): IB's convention, commission included."""

from __future__ import annotations

import pytest

from ibkr_trader.book import Holding, apply_fill


def test_opening_carries_the_commission_in_the_average_cost() -> None:
    effect = apply_fill(Holding(), 2, 1.50, 100, commission=1.30)
    assert effect.opened and effect.realized == 0.0
    assert effect.holding.quantity == 2
    assert effect.holding.avg_cost == pytest.approx(1.5065)
    assert effect.cash_delta == pytest.approx(-301.30)


def test_closing_realizes_net_of_both_commissions() -> None:
    held = apply_fill(Holding(), 1, 2.00, 100, commission=1.00).holding
    out = apply_fill(held, -1, 2.50, 100, commission=1.00)
    assert out.holding.is_flat and out.closed_quantity == 1
    assert out.realized == pytest.approx(50.0 - 1.0 - 1.0)  # what the account gained
    assert out.cash_delta == pytest.approx(250.0 - 1.0)


def test_short_loss_has_the_right_sign() -> None:
    short = apply_fill(Holding(), -1, 2.0, 100).holding
    out = apply_fill(short, 1, 3.0, 100)
    assert out.realized == pytest.approx(-100.0)


def test_a_flip_splits_the_commission_and_opens_the_rest_at_the_fill_price() -> None:
    short = apply_fill(Holding(), -1, 2.0, 100).holding
    out = apply_fill(short, 3, 3.0, 100, commission=3.0)
    assert out.opened and out.closed_quantity == 1
    assert out.realized == pytest.approx(-100.0 - 1.0)
    assert out.holding.quantity == 2
    assert out.holding.avg_cost == pytest.approx(3.0 + 2.0 / 200)


def test_reducing_keeps_the_average_cost() -> None:
    held = apply_fill(Holding(), 4, 1.0, 100).holding
    out = apply_fill(held, -1, 1.2, 100)
    assert out.holding == Holding(3, 1.0)
    assert out.realized == pytest.approx(20.0)


@pytest.mark.parametrize(
    ("qty", "price", "commission"),
    [(0, 1.0, 0.0), (1, 0.0, 0.0), (1, float("nan"), 0.0), (1, 1.0, -1.0)],
)
def test_bad_fills_are_refused(qty: float, price: float, commission: float) -> None:
    with pytest.raises(ValueError):
        apply_fill(Holding(), qty, price, 100, commission)
