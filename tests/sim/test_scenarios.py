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


def test_daily_cycle_closes_the_gap_by_the_bled_charge():
    """Three days of the daily-60d cycle: 24 h days, the true SOC gap closes, by about what
    the high cells bled (plus the low end cell's smaller, cooler self-discharge), and the
    drift promise held in every window."""
    from rig.bench import daily_60d
    r = daily_60d(days=3)["result"]
    assert r["days_simulated"] == 3 and r["mean_day_h"] == pytest.approx(24.0, abs=0.05)
    gaps = r["soc_gap_mah_by_day"]
    assert gaps[0] > gaps[1] > gaps[2]
    bled_per_day_mah = r["charge_bled_ah_per_high_cell_per_day"] * 1e3
    assert 10.0 < bled_per_day_mah < 40.0  # 50 mA x duty ~0.5 x ~1 h near the top
    assert r["soc_gap_closing_mah_per_day"] == pytest.approx(bled_per_day_mah, rel=0.5)
    assert r["world_stats"]["ff_drift_used_max"] <= 1.0
