"""The bench's generic fast-forward (rig/sim/fastforward.py): derating fixed point, drift
allowance, window planning from a board's declaration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rig.sim import fastforward as ff

from ._util import PROFILE


def test_derating_fixed_point_solves_a_linear_loop():
    # curve 1 at 60 °C -> 0 at 80 °C; hot spot 25 + 50·d °C: d = (80 - 25 - 50 d)/20 -> d = 55/70
    duty_at = PROFILE.balancing.derating.duty_at
    d = ff.derating_fixed_point(duty_at, lambda x: 25.0 + 50.0 * x)
    assert d == pytest.approx(55.0 / 70.0, abs=1e-9)
    assert ff.derating_fixed_point(duty_at, lambda x: 25.0 + 10.0 * x) == 1.0  # never derates


def test_bench_prediction_uses_the_shared_fixed_point():
    from rig.bench import predicted_duty

    hot = PROFILE.model_copy(update={"balancing": PROFILE.balancing.model_copy(update={"resistor_thermal_c_per_w": 80.0})})
    p = predicted_duty(hot, 3.47, 15)
    b = hot.balancing
    p_avg = 0.5 * (8 + 7) * 3.47 * (3.47 / b.bleed_resistor_ohm) * p["mute"]
    expected = ff.derating_fixed_point(b.derating.duty_at, lambda d: 25.0 + b.resistor_thermal_c_per_w * p_avg * d)
    assert 0.0 < p["derating"] < 1.0 and p["derating"] == expected


def test_pwm_hot_spot_band_brackets_the_mean():
    t_min, t_mean = ff.pwm_hot_spot_c(0.5, 20.0, 30.0, 5.0, 60.0)
    assert 30.0 < t_min < t_mean == pytest.approx(40.0)
    assert ff.pwm_hot_spot_c(1.0, 20.0, 30.0, 5.0, 60.0)[0] == pytest.approx(50.0)


def test_allowance_exact_levels_less_guard_and_resolved_gate_floor():
    levels = (ff.Level(3.65, 3.60, rising=True), ff.Level(2.50, 3.30, rising=False))
    assert ff.drift_allowance_v(levels, 0.004, None, 0.005) == pytest.approx(0.046)
    off = ff.Gate((ff.Condition(3.35, 3.40, inclusive=True), ff.Condition(0.040, 0.030, share=0.5)))
    assert not off.conditions[0].holds and off.allowance_v == pytest.approx(0.05)  # the failing one holds it off
    on = ff.Gate((ff.Condition(3.45, 3.40, inclusive=True), ff.Condition(0.012, 0.010, share=0.5)), (0.004,))
    assert on.allowance_v == pytest.approx(0.001)
    assert ff.drift_allowance_v(levels, 0.004, on, 0.005) == pytest.approx(0.005)  # resolved to the default


def _state(**kw):
    dec = dict(period_s=0.25, offset_s=0.0, first_cycle=20, every=20, interval_s=5.0, lead=3)
    dec.update(kw.pop("decisions", {}))
    return ff.QuietState(at=0.0, decisions=ff.Decisions(**dec), levels=(ff.Level(3.65, 3.30, rising=True),), **kw)


def test_plan_window_ends_lead_cycles_before_the_last_decision_that_fits():
    w = ff.plan_window(_state(), 100.0, 0.0, 0.005, 0.020, n_cells=4)
    # decisions at cycles 20, 40, ..., 400 (t = 100 s); the board resumes 3 cycles before
    assert w.resume_cycle == 397 and w.t_resume == pytest.approx(99.25)
    assert w.drift_limit_v == 0.020 and not w.duty.any()
    assert ff.plan_window(_state(timers=(5.0,)), 100.0, 0.0, 0.005, 0.020, n_cells=4) is None
    assert ff.plan_window(_state(temperature_edges=((44.0, 45.0),)), 100.0, 0.0, 0.005, 0.020, n_cells=4) is None
    assert ff.plan_window(_state(), 100.0, 0.1, 0.005, 0.020, n_cells=4) is None  # not at the declaration


def test_plan_window_bleed_duty_of_skipped_decisions():
    a, b = np.array([1, 0, 1, 0], bool), np.array([0, 1, 0, 1], bool)
    st = _state(decisions=dict(masks=(a, b), first_mask=1, strategy=0.5, on_share=0.98, limit=10))
    w = ff.plan_window(st, 1000.0, 0.0, 0.005, 0.020, n_cells=4)
    assert w.resume_cycle == 20 + 10 * 20 - 3
    # ten decisions alternate b, a, b, ...: each bleeds 0.5 x 5 s
    assert w.duty[1] == pytest.approx(5 * 2.5 / w.t_resume * 0.98)
    assert w.duty[0] == pytest.approx(5 * 2.5 / w.t_resume * 0.98)
    q, mask, duty, t_off = w.last_decision(w.t_resume)
    assert q == 0 and mask is a and duty == 0.5 and t_off == pytest.approx(9 * 5.0 + 5.0 + 2.5)
    assert math.isinf(ff.Decisions(0.25, 0.0, 0, 1, 5.0).limit)
