"""Fast-forward against the fine reference, and the balancing rate (short windows; the long
scenarios live in ``bmsrig bench``)."""

from __future__ import annotations

import numpy as np
import pytest

from rig.bench import CV_CELL_V, _imbalanced_world, ff_vs_fine, predicted_duty

from ._util import PROFILE


def test_ff_vs_fine_agree_within_1pct():
    r = ff_vs_fine(window_s=600.0)["result"]
    assert abs(r["charge_rel_error"]) < 0.01, r
    assert abs(r["delta_rel_error"]) < 0.01, r
    assert r["ff"]["events"] < r["fine"]["events"] / 100


def test_balancing_rate_matches_bleed_current_times_duty():
    w = _imbalanced_world(PROFILE)
    w.set_charger(5.0, PROFILE.cells * CV_CELL_V)
    w.advance(1800.0)  # settle the hot spot on its derating fixed point
    q0 = w.bleed_charge_c.copy()
    w.advance(4 * 3600.0)
    rate = (w.bleed_charge_c - q0)[:-1] / (4 * 3600.0)  # A, mean per high cell
    v = float(np.median(w.terminal_voltages()[:-1]))
    pred = predicted_duty(PROFILE, v, PROFILE.cells - 1)
    assert float(np.mean(rate)) == pytest.approx(pred["i_bleed_a"] * pred["duty"], rel=0.10)
    assert w.bleed_charge_c[-1] == 0.0
