"""Chamber ramp, lag and overshoot; thermal lags; per-cell temperatures."""

import math

import numpy as np
import pytest

from rig.sim.cells import CellParams
from rig.sim.thermal import CellThermal, ChamberModel, ThermalLag, cell_position_gradient


def run(ch, seconds, dt=1.0):
    """Step ``ch`` for ``seconds``; return the air temperature after each step."""
    out = np.empty(int(round(seconds / dt)))
    for i in range(out.size):
        ch.step(dt)
        out[i] = ch.air_c
    return out


def test_ramp_rate_of_the_set_point_is_respected():
    ch = ChamberModel(ambient_c=25.0)
    ch.set_point(45.0, ramp_c_per_min=2.0)
    ch.step(300.0)
    assert ch.setpoint_c == pytest.approx(25.0 + 2.0 / 60 * 300, abs=1e-12)  # 35 °C
    assert ch.ramping and ch.target_c == 45.0
    ch.step(300.0)  # 600 s at 2 °C/min is exactly 20 °C
    assert ch.setpoint_c == 45.0 and not ch.ramping


def test_ramp_faster_than_the_chamber_can_is_limited():
    ch = ChamberModel(ambient_c=25.0, max_ramp_c_per_min=3.0)
    ch.set_point(85.0, ramp_c_per_min=10.0)
    assert ch.ramp_c_per_min == 3.0
    ch.step(600.0)
    assert ch.setpoint_c == pytest.approx(55.0, abs=1e-12)


def test_air_lags_then_settles_with_overshoot_within_spec():
    ch = ChamberModel(ambient_c=25.0, overshoot_c=0.3)
    ch.set_point(85.0)  # 20 min at the maximum 3 °C/min: the worst case for overshoot
    air = run(ch, 3600.0)
    # the air never moves (much) faster than the ramp: 3 °C/min = 0.05 °C per 1 s step
    assert np.max(np.diff(air)) <= 0.05 * 1.02
    # during the ramp it trails the set point by (1 - alpha) tau r (1 - E) + alpha tau r
    # (t/tau) E, E = exp(-t/tau): from 0 toward (1 - alpha) * 6 °C as the feed-forward builds
    a, t, tau, r = ch.alpha, 1000.0, 120.0, 0.05
    e = math.exp(-t / tau)
    lag = (1 - a) * tau * r * (1 - e) + a * tau * r * (t / tau) * e
    assert 25.0 + r * t - air[999] == pytest.approx(lag, abs=1e-9)
    assert lag == pytest.approx((1 - a) * 6.0, abs=0.01)
    # the worst-case ramp overshoots by the spec, no more
    assert np.max(air) - 85.0 == pytest.approx(0.3, abs=1e-3)
    assert np.max(air) - 85.0 <= 0.3
    assert abs(air[-1] - 85.0) < 0.01 and ch.quiet(0.05)


@pytest.mark.parametrize("target, ramp", [(26.0, None), (40.0, 1.0), (-10.0, None)])
def test_any_ramp_overshoots_at_most_the_spec(target, ramp):
    ch = ChamberModel(ambient_c=25.0, overshoot_c=0.3)
    ch.set_point(target, ramp)
    air = run(ch, 3600.0, dt=2.0)
    past = (air - target) * math.copysign(1.0, target - 25.0)
    assert np.max(past) <= 0.3
    assert abs(air[-1] - target) < 0.01


def test_no_overshoot_when_spec_is_zero():
    ch = ChamberModel(ambient_c=25.0, overshoot_c=0.0)
    ch.set_point(35.0)
    assert np.max(run(ch, 3000.0)) <= 35.0


def test_one_big_step_equals_small_steps_even_across_the_ramp_end():
    a, b = ChamberModel(), ChamberModel()
    for ch in (a, b):
        ch.set_point(60.0, 2.5)
    a.step(1234.5)  # the ramp ends at 840 s, inside this step
    for _ in range(12345):
        b.step(0.1)
    assert a.air_c == pytest.approx(b.air_c, abs=1e-9)
    assert a.setpoint_c == b.setpoint_c == 60.0


def test_quiet_means_it_stays_within_tolerance():
    ch = ChamberModel()
    ch.set_point(40.0)
    assert not ch.quiet(0.1)
    while not ch.quiet(0.1):
        ch.step(5.0)
    assert np.max(np.abs(run(ch, 3600.0, 5.0) - 40.0)) < 0.1


def test_reading_noise_is_seeded_and_does_not_touch_the_physics():
    a = ChamberModel(rng=np.random.default_rng(5), noise_c=0.05)
    b = ChamberModel(rng=np.random.default_rng(5), noise_c=0.05)
    c = ChamberModel(rng=np.random.default_rng(6), noise_c=0.05)
    ra = [a.read_pv() for _ in range(2000)]
    rb = [b.read_pv() for _ in range(2000)]
    assert ra == rb and ra != [c.read_pv() for _ in range(2000)]
    assert np.std(ra) == pytest.approx(0.05, rel=0.1)
    assert a.air_c == 25.0  # readings did not move the air


def test_set_point_outside_the_chamber_range_is_refused():
    ch = ChamberModel(min_c=-40.0, max_c=120.0)
    with pytest.raises(ValueError, match="outside"):
        ch.set_point(150.0)
    with pytest.raises(ValueError):
        ch.set_point(30.0, ramp_c_per_min=0.0)


def test_thermal_lag_exact_and_vectorised():
    lag = ThermalLag(tau_s=np.array([300.0, 600.0]), temperature_c=[25.0, 25.0])
    lag.step(300.0, 45.0)
    # 20 K step: 20 (1 - e^-1) after tau, 20 (1 - e^-0.5) after tau/2
    assert lag.temperature_c == pytest.approx(
        [25 + 20 * (1 - math.exp(-1)), 25 + 20 * (1 - math.exp(-0.5))], rel=1e-12)
    one = ThermalLag(300.0, 25.0)
    one.step(900.0, 45.0)
    many = ThermalLag(300.0, 25.0)
    for _ in range(900):
        many.step(1.0, 45.0)
    assert float(one.temperature_c) == pytest.approx(float(many.temperature_c), abs=1e-12)
    assert one.time_to_within(45.0, 0.01) == pytest.approx(300 * math.log(20 * math.exp(-3) / 0.01))


def test_cell_position_gradient():
    g = cell_position_gradient(5, middle_rise_c=2.0)
    assert g == pytest.approx([0.0, 1.5, 2.0, 1.5, 0.0])  # 4 * 2 * x (1 - x)
    g16 = cell_position_gradient(16)
    assert g16[0] == g16[-1] == 0.0 and np.argmax(g16) in (7, 8)
    assert cell_position_gradient(1) == pytest.approx([0.0])


def test_cell_thermal_lags_toward_air_gradient_and_self_heating():
    params = CellParams.for_chemistry("lfp", 100.0)
    cells = CellThermal.for_params(params, 5, ambient_c=25.0, middle_rise_c=2.0)
    assert cells.temperature_c == pytest.approx([25.0, 26.5, 27.0, 26.5, 25.0])
    heat = np.array([0.0, 0.0, 10.0, 0.0, 0.0])  # 10 W in the middle cell, 0.9 K/W
    cells.step(1800.0, 35.0, heat)  # air +10 K; one tau of 1800 s
    k = 1 - math.exp(-1)
    expected = np.array([25.0, 26.5, 27.0, 26.5, 25.0]) + np.array([10, 10, 19, 10, 10]) * k
    assert cells.temperature_c == pytest.approx(expected, rel=1e-12)
    assert cells.target_c(35.0, heat) == pytest.approx([35.0, 36.5, 46.0, 36.5, 35.0])
