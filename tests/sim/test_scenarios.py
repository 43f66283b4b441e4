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


def _knee_charge(fine_step_s=None):
    """A CC/CV charge that carries one cell slowly across HVC on the LFP knee."""
    from rig.sim.world import World
    w = World(PROFILE, seed=2, fine_step_s=fine_step_s)
    soc = np.full(PROFILE.cells, 0.99)
    soc[-1] = 0.97
    soc[5] = 0.995
    w.set_cell_model(PROFILE.chemistry, PROFILE.capacity_ah, soc)
    w.set_charger(5.0, PROFILE.cells * 3.50)
    for _ in range(4):
        w.advance(300.0)
    trips = [e.t for e in w.daq_edges if e.line == "hvc_out" and e.level]
    out = {"trips": trips, "bled_c": float(w.bleed_charge_c.sum()), "stats": dict(w.stats)}
    w.close()
    return out


def test_fast_forward_near_hvc_trips_when_the_fine_path_does():
    ff, fine = _knee_charge(), _knee_charge(fine_step_s=PROFILE.sampling.period_s)
    assert len(ff["trips"]) == len(fine["trips"]) == 1
    # same crossing; the conversions' noise differs (ff skips some), so within a second
    assert ff["trips"][0] == pytest.approx(fine["trips"][0], abs=1.0)
    assert ff["bled_c"] == pytest.approx(fine["bled_c"], rel=0.01)
    assert ff["stats"]["ff_s"] > 600.0  # it did fast-forward around the approach
    # the drift promise held in every window
    assert 0.0 < ff["stats"]["ff_drift_used_max"] <= 1.0
