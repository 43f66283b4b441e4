"""OCV(SOC, T): table points, interpolation, the LFP knee, entropic term, inverse."""

import numpy as np
import pytest

from rig.sim import ocv as ocvmod
from rig.sim.ocv import dOCV_dSOC, dUdT, ocv, soc_from_ocv


def test_lfp_table_points_below_95_percent():
    # Libre Solar table rows (data/ocv_room_temperature.csv)
    soc = [0.0, 0.05, 0.30, 0.50, 0.90, 0.95]
    assert ocv("lfp", soc) == pytest.approx([2.833, 3.132, 3.240, 3.265, 3.309, 3.314], abs=1e-12)


def test_lfp_interpolated_midpoints():
    # 47.5 %: halfway 3.264 -> 3.265; 2.5 %: halfway 2.833 -> 3.132
    assert ocv("lfp", 0.475) == pytest.approx(3.2645, abs=1e-12)
    assert ocv("lfp", 0.025) == pytest.approx(2.9825, abs=1e-12)


def test_nmc_table_points_and_midpoints():
    v = ocv("nmc", [0.0, 0.05, 0.5, 1.0])
    assert v == pytest.approx([2.800, 3.588, 3.838, 4.198], abs=1e-9)
    assert ocv("nmc", 0.525) == pytest.approx((3.838 + 3.858) / 2, abs=1e-12)
    assert ocv("nmc", 0.075) == pytest.approx((3.588 + 3.684) / 2, abs=1e-12)


def test_lfp_knee_from_cross_check_points():
    # CSV header cross-check: 98.3 % 3.351 V, 99.5 % 3.418 V, 100 % 3.598 V
    assert ocv("lfp", [0.983, 0.995, 1.0]) == pytest.approx([3.351, 3.418, 3.598], abs=1e-12)
    # the table's own 100 % value (3.392 V) is not used
    assert ocv("lfp", 0.9975) == pytest.approx((3.418 + 3.598) / 2, abs=1e-12)
    # merge segment 95 % (3.314) -> 98.3 % (3.351): at 97 %, 3.314 + 0.037 * 2/3.3
    assert ocv("lfp", 0.97) == pytest.approx(3.314 + 0.037 * 0.02 / 0.033, abs=1e-12)
    # 1C through the last half percent: 36 V/unit / 3600 s = 10 mV/s (REFERENCE.md)
    assert dOCV_dSOC("lfp", 0.997) / 3600 == pytest.approx(0.010, abs=1e-12)


def test_overcharge_extrapolates_past_charge_voltage():
    assert ocv("lfp", [1.01, 1.02, 1.03]) == pytest.approx([3.85, 4.00, 4.15], abs=1e-12)
    # 3.65 V (charge voltage) crossed between 100 % (3.598) and 100.5 % (3.75)
    assert soc_from_ocv("lfp", 3.65) == pytest.approx(1.0 + 0.005 * 0.052 / 0.152, abs=1e-12)
    assert ocv("nmc", 1.03) == pytest.approx(4.34 + 8.0 * 0.01, abs=1e-12)


def test_below_zero_is_clipped():
    assert ocv("lfp", [-0.5, -0.01]) == pytest.approx([2.833, 2.833], abs=1e-12)
    assert soc_from_ocv("lfp", 2.0) == 0.0


@pytest.mark.parametrize("chem", ["lfp", "nmc"])
@pytest.mark.parametrize("temp", [-40.0, 25.0, 120.0])
def test_strictly_increasing_at_any_temperature(chem, temp):
    soc = np.linspace(0.0, 1.05, 10501)
    v = ocv(chem, soc, temp)
    assert np.all(np.diff(v) > 0)
    assert np.all(dOCV_dSOC(chem, soc, temp) > 0)


def test_entropic_shift_sign_and_size():
    # LFP plateau dU/dT = -0.1 mV/K: +20 K -> -2.0 mV, -25 K -> +2.5 mV
    assert ocv("lfp", 0.5, 45.0) == pytest.approx(3.265 - 0.0020, abs=1e-12)
    assert ocv("lfp", 0.5, 0.0) == pytest.approx(3.265 + 0.0025, abs=1e-12)
    # LFP at 0 %: -0.3 mV/K
    assert ocv("lfp", 0.0, 35.0) == pytest.approx(2.833 - 0.003, abs=1e-12)
    # NMC: -1.5 mV/K where the 25 °C curve is at 3.1 V, -0.4 mV/K at 3.3 V (PyBaMM note)
    s31, s33 = soc_from_ocv("nmc", [3.1, 3.3])
    assert ocv("nmc", s31, 35.0) == pytest.approx(3.1 - 0.015, abs=1e-9)
    assert ocv("nmc", s33, 15.0) == pytest.approx(3.3 + 0.004, abs=1e-9)
    assert dUdT("nmc", s31) == pytest.approx(-1.5e-3, abs=1e-12)
    # per-cell temperatures broadcast
    assert ocv("lfp", [0.5, 0.5], [25.0, 35.0]) == pytest.approx([3.265, 3.264], abs=1e-12)


@pytest.mark.parametrize("chem", ["lfp", "nmc"])
def test_inverse_round_trip(chem):
    rng = np.random.default_rng(7)
    soc = np.concatenate([rng.uniform(0.0, 1.04, 500), ocvmod.curve(chem).soc])
    for temp in (-20.0, 25.0, 60.0):
        back = soc_from_ocv(chem, ocv(chem, soc, temp), temp)
        assert np.max(np.abs(back - soc)) < 1e-12
    temps = rng.uniform(-40.0, 120.0, soc.size)  # per-element temperatures
    back = soc_from_ocv(chem, ocv(chem, soc, temps), temps)
    assert np.max(np.abs(back - soc)) < 1e-12


def test_inverse_at_interpolated_point():
    assert soc_from_ocv("lfp", 3.2645) == pytest.approx(0.475, abs=1e-12)
    assert soc_from_ocv("nmc", 3.848) == pytest.approx(0.525, abs=1e-12)
    # at 45 °C the plateau sits 2 mV lower
    assert soc_from_ocv("lfp", 3.2625, 45.0) == pytest.approx(0.475, abs=1e-12)


def test_slope_helper():
    assert dOCV_dSOC("lfp", 0.5) == pytest.approx((3.268 - 3.265) / 0.05, abs=1e-12)
    assert dOCV_dSOC("lfp", [-0.1, 1.05]) == pytest.approx([(3.132 - 2.833) / 0.05, 15.0])
    # 5-10 % segment: dU/dT -0.225 -> -0.15 mV/K adds 1.5 mV/K per unit SOC; at 45 °C +0.03
    assert dOCV_dSOC("lfp", 0.07, 45.0) == pytest.approx(0.9 + 0.03, abs=1e-12)
    assert dOCV_dSOC("nmc", 0.5) == pytest.approx(0.4, abs=1e-12)


def test_chemistry_names():
    assert ocv("LFP", 0.5) == pytest.approx(3.265)
    with pytest.raises(ValueError, match="unknown chemistry"):
        ocv("lco", 0.5)


@pytest.mark.parametrize("chem", ["lfp", "nmc"])
def test_the_pack_memo_gives_ocv_and_slope_bit_for_bit(chem):
    # OcvPoints keeps each cell's segment rows and temperature terms between states and
    # adds C·(T − 25) where dU/dT is flat: the numbers of ocv_and_slope, to the last bit,
    # across segments (flat and sloped dU/dT), temperatures, overcharge and below 0 %
    curve = ocvmod.curve(chem)
    memo = curve.points()
    rng = np.random.default_rng(4)
    temp = 25.0 + rng.uniform(-30.0, 40.0, 16)
    for i in range(400):
        if i % 50 == 0:
            temp = temp + rng.uniform(-1.0, 1.0, 16)  # a new temperature now and then
        soc = rng.choice([rng.uniform(-0.02, 1.03, 16), 0.97 + rng.uniform(0.0, 0.002, 16)])
        tb = temp.tobytes()
        v, s = curve.ocv_and_slope(soc, temp)
        assert memo.ocv(soc, temp, tb).tobytes() == v.tobytes()
        assert memo.slope(soc, temp, tb).tobytes() == s.tobytes()
