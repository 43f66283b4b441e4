"""PackModel: RC response, coulomb counting, self-discharge, Arrhenius resistance."""

import math

import numpy as np
import pytest

from rig.sim.cells import HOURS_PER_MONTH, CellParams, PackModel
from rig.sim.ocv import ocv


def lfp_pack(n=16, soc=0.5, seed=1, temperature_c=25.0, **overrides):
    params = CellParams.for_chemistry("lfp", 100.0, **overrides) if overrides else None
    return PackModel("lfp", n, 100.0, soc, np.random.default_rng(seed), params=params,
                     temperature_c=temperature_c)


def test_defaults_per_chemistry_and_capacity_scaling():
    lfp = CellParams.for_chemistry("lfp")
    assert (lfp.r0_ohm, lfp.r1_ohm, lfp.tau1_s) == (0.4e-3, 0.4e-3, 30.0)
    assert lfp.ea_j_per_mol == 20e3 and lfp.soc_r_factor == 1.2
    assert lfp.tau_thermal_s == pytest.approx(1800.0)
    big = CellParams.for_chemistry("lfp", 200.0)
    assert big.r0_ohm == pytest.approx(0.2e-3) and big.r1_ohm == pytest.approx(0.2e-3)
    assert big.thermal_mass_j_per_k == pytest.approx(4000.0)
    nmc = CellParams.for_chemistry("nmc", 3.0)
    assert (nmc.r0_ohm, nmc.r1_ohm) == (25e-3, 15e-3)
    with pytest.raises(ValueError):
        CellParams.for_chemistry("lco")


def test_initial_state_and_terminal_voltage():
    pack = lfp_pack(n=4, soc=[0.0, 0.5, 0.95, 1.0])
    assert pack.ocv() == pytest.approx([2.833, 3.265, 3.314, 3.598], abs=1e-12)
    # 100 A charge at 50 %, 25 °C: 3.265 + 0.4 mOhm * 100 A = 3.305 V (v_rc still 0)
    assert pack.terminal_voltage(100.0)[1] == pytest.approx(3.305, abs=1e-12)
    assert pack.terminal_voltage(-100.0)[1] == pytest.approx(3.225, abs=1e-12)


def test_resistance_soc_factor():
    pack = lfp_pack(n=3, soc=[0.0, 0.5, 1.0])
    # PyBaMM ECM_Example: 1.2x at 0 % and 100 % SOC
    assert pack.resistance_r0() == pytest.approx([0.48e-3, 0.4e-3, 0.48e-3], rel=1e-12)


def test_resistance_arrhenius_about_doubles_at_0c():
    pack = lfp_pack(n=2, temperature_c=[25.0, 0.0])
    r = pack.resistance_r0()
    # exp(20000/8.314 * (1/273.15 - 1/298.15)) = exp(0.73841) = 2.0926
    assert r[1] / r[0] == pytest.approx(2.0926, rel=1e-4)
    assert r[0] == pytest.approx(0.4e-3, rel=1e-12)
    pack.temperature_c = 45.0  # warmer: lower resistance
    assert pack.resistance_r0()[0] < 0.4e-3 * 0.7


def test_rc_step_response_after_tau_is_63_percent():
    pack = lfp_pack(n=1)
    pack.step(30.0, 100.0)  # one step of tau
    # R1 * I * (1 - e^-1) = 0.4e-3 * 100 * 0.6321206
    assert pack.v_rc[0] == pytest.approx(0.04 * (1 - math.exp(-1)), rel=1e-12)
    assert pack.v_rc[0] / 0.04 == pytest.approx(0.632, abs=5e-4)
    # relax with no current for another tau: decays by e^-1
    v0 = pack.v_rc[0]
    pack.step(30.0, 0.0)
    assert pack.v_rc[0] == pytest.approx(v0 * math.exp(-1), rel=1e-12)


def test_one_long_step_equals_many_small_steps():
    # constant resistance over the step (soc factor 1) makes the update exactly composable
    cur = np.linspace(-50.0, 80.0, 16)
    a = lfp_pack(soc_r_factor=1.0)
    b = lfp_pack(soc_r_factor=1.0)
    a.step(30.0, cur)
    for _ in range(3000):
        b.step(0.01, cur)
    assert np.max(np.abs(a.v_rc - b.v_rc)) < 1e-12
    assert np.max(np.abs(a.soc - b.soc)) < 1e-12
    assert np.max(np.abs(a.charge_ah() - b.charge_ah())) < 1e-12


def test_two_rc_branch():
    pack = lfp_pack(n=1, r2_ohm=0.2e-3, tau2_s=600.0)
    pack.step(600.0, 100.0)
    assert pack.v_rc2[0] == pytest.approx(0.02 * (1 - math.exp(-1)), rel=1e-9)
    assert pack.v_rc[0] == pytest.approx(0.04 * (1 - math.exp(-20)), rel=1e-6)


def test_coulomb_counting_10a_for_1h_is_10_percent():
    pack = lfp_pack(n=2, self_discharge_per_month=0.0)
    pack.step(3600.0, 10.0)
    assert pack.soc == pytest.approx([0.6, 0.6], abs=1e-12)
    assert pack.charge_ah() == pytest.approx([10.0, 10.0], abs=1e-12)
    # in 360 steps of 10 s with per-cell currents, discharging the second cell
    pack = lfp_pack(n=2, self_discharge_per_month=0.0)
    for _ in range(360):
        pack.step(10.0, np.array([10.0, -10.0]))
    assert pack.soc == pytest.approx([0.6, 0.4], abs=1e-12)
    assert pack.charge_ah() == pytest.approx([10.0, -10.0], abs=1e-12)


def test_self_discharge_30_days_at_25c_within_spread():
    pack = lfp_pack(n=16, soc=0.8)
    pack.step(30 * 86400.0, 0.0)
    lost = 0.8 - pack.soc
    # 2 %/month nominal, uniform +-50 % spread per cell: every cell 1..3 %/month (LFP <= 3 %)
    assert np.all(lost >= 0.01) and np.all(lost <= 0.03)
    assert np.mean(lost) == pytest.approx(0.02, abs=0.005)
    assert np.ptp(lost) > 0.005  # the spread is really there
    assert lost == pytest.approx(pack.self_discharge_a * HOURS_PER_MONTH / 100.0, rel=1e-9)
    assert pack.leaked_ah() == pytest.approx(lost * 100.0, rel=1e-9)
    assert pack.charge_ah() == pytest.approx(np.zeros(16), abs=0)


def test_self_discharge_doubles_at_35c_and_about_20_percent_at_60c():
    base = lfp_pack(soc=0.8)
    base.step(30 * 86400.0, 0.0)
    warm = lfp_pack(soc=0.8, temperature_c=35.0)
    warm.step(30 * 86400.0, 0.0)
    assert (0.8 - warm.soc) / (0.8 - base.soc) == pytest.approx(np.full(16, 2.0), rel=1e-9)
    hot = lfp_pack(soc=0.8, temperature_c=60.0)
    hot.step(30 * 86400.0, 0.0)
    # REFERENCE.md: a new cell at 60 °C can lose about 20 %/month
    assert np.mean(0.8 - hot.soc) == pytest.approx(0.19, abs=0.02)


def test_temperature_change_in_place_is_seen_by_step():
    pack = lfp_pack(n=2, soc=0.8)
    leak25 = pack.leakage_a()
    pack.temperature_c[1] = 35.0  # the world writes into the array
    pack.step(86400.0, 0.0)
    lost = 0.8 - pack.soc
    assert lost[0] == pytest.approx(leak25[0] * 24 / 100, rel=1e-9)
    assert lost[1] == pytest.approx(2 * leak25[1] * 24 / 100, rel=1e-9)


def test_heat():
    pack = lfp_pack(n=1, self_discharge_per_month=0.0)
    assert pack.heat_w(100.0) == pytest.approx([100.0**2 * 0.4e-3], rel=1e-12)  # 4 W, v_rc 0
    pack.step(600.0, 100.0)  # 20 tau: v_rc = R1 I = 40 mV (R1 taken at the start, 50 %)
    assert pack.v_rc[0] == pytest.approx(0.04, rel=1e-8)
    # now at 50 % + 1/6: R0 = 0.4 mOhm * (1 + 0.8 * (1/6)^2) = 0.408889 mOhm
    r0 = 0.4e-3 * (1 + 0.8 / 36)
    assert pack.heat_w(100.0) == pytest.approx([1e4 * r0 + 4.0], rel=1e-8)  # 4.0889 + 4 W


def test_lfp_reaches_charge_cutoff_under_1c_charge():
    pack = lfp_pack(n=1, soc=0.99)
    v_prev = pack.terminal_voltage(100.0)[0]
    for second in range(1, 120):
        pack.step(1.0, 100.0)
        v = pack.terminal_voltage(100.0)[0]
        if v >= 3.65:
            break
        v_prev = v
    assert v >= 3.65
    assert 25 <= second <= 40  # 1 % at 1C is 36 s
    assert v - v_prev == pytest.approx(0.010, abs=0.002)  # ~10 mV/s at the knee


def test_determinism_and_seed_dependence():
    a, b, c = lfp_pack(seed=3), lfp_pack(seed=3), lfp_pack(seed=4)
    assert np.array_equal(a.self_discharge_a, b.self_discharge_a)
    assert not np.array_equal(a.self_discharge_a, c.self_discharge_a)
    cur = np.linspace(0, 30, 16)
    for p in (a, b):
        for _ in range(100):
            p.step(0.5, cur)
    assert np.array_equal(a.soc, b.soc) and np.array_equal(a.v_rc, b.v_rc)


def test_copy_set_soc_and_argument_checks():
    pack = lfp_pack(n=2)
    pack.step(10.0, 50.0)
    snap = pack.copy()
    pack.step(10.0, 50.0)
    assert snap.soc[0] < pack.soc[0]
    pack.set_soc([0.2, 0.3])
    assert pack.soc == pytest.approx([0.2, 0.3]) and np.all(pack.v_rc == 0)
    assert np.all(pack.charge_ah() == 0)
    pack.step(0.0, 1e6)  # dt 0 is a no-op
    assert pack.soc == pytest.approx([0.2, 0.3])
    with pytest.raises(ValueError):
        pack.step(-1.0, 0.0)
    with pytest.raises(ValueError):
        PackModel("lfp", 3, [100.0, 100.0], 0.5, np.random.default_rng(0))
    nmc = PackModel("nmc", 2, 3.0, 0.5, np.random.default_rng(0))
    assert nmc.ocv() == pytest.approx(ocv("nmc", [0.5, 0.5]))
    assert nmc.resistance_r0() == pytest.approx([25e-3, 25e-3], rel=1e-12)


def test_ocv_slope_is_the_derivative_of_the_ocv():
    pack = lfp_pack(n=3, soc=[0.234, 0.467, 0.973])  # inside segments of the table
    slope = pack.ocv_slope()
    ds = 1e-6
    base = pack.soc.copy()
    pack.set_soc(base + ds)
    hi = pack.ocv()
    pack.set_soc(base - ds)
    lo = pack.ocv()
    assert slope.shape == (3,) and np.all(slope > 0.0)
    assert np.allclose(slope, (hi - lo) / (2 * ds), rtol=1e-3)
    assert slope[2] > 5 * slope[1]  # the LFP knee is steeper than the plateau
