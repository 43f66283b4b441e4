"""The AFE: error budget, RC filter settling, quantisation, IR drop."""

from __future__ import annotations

import numpy as np
import pytest

from rig.sim.afe import Afe, LSB_V
from rig.sim.defects import parse_defects


def _afe(seed=0, defects=None, **kw):
    g = np.random.default_rng(seed)
    return Afe(16, np.random.default_rng(g.integers(1 << 30)), np.random.default_rng(g.integers(1 << 30)),
               parse_defects(defects), **kw)


def test_static_error_budget_worst_case_within_1p5_mv():
    worst = 0.0
    for seed in range(50):
        a = _afe(seed)
        for temp in (-20.0, 25.0, 60.0):
            for v in (2.5, 3.3, 3.65):
                worst = max(worst, float(np.max(np.abs(a.static_error_v(np.full(16, v), temp)))))
    assert worst < 1.5e-3


def test_quantisation_and_noise():
    a = _afe(noise_rms_v=0.0)
    a.reset(0.0, np.full(16, 3.3))
    v = a.convert(0.0, 25.0)
    assert np.allclose(np.round(v / LSB_V) * LSB_V, v)
    a = _afe(1)
    a.reset(0.0, np.full(16, 3.3))
    s = np.std([a.convert(0.0, 25.0) for _ in range(400)], axis=0)
    assert np.mean(s) == pytest.approx(0.3e-3 + 0.0, rel=0.2)


def test_rc_filter_settles_a_bleed_switch_in_a_few_tau():
    a = _afe(noise_rms_v=0.0)
    v = np.full(16, 3.5)
    a.reset(0.0, v)
    u = v.copy()
    u[3] -= 0.05 * 0.2  # switch on: IR drop
    a.set_input(0.0, u)
    early = a.convert(0.0005, 25.0)[3]
    a.set_input(0.001, v)  # mute at 1 ms
    later = a.convert(0.006, 25.0)[3]  # 5 ms = 5 tau after the mute
    e0 = a.static_error_v(v)[3]
    assert 3.5 + e0 - early == pytest.approx(0.01 * (1 - np.exp(-0.5)), abs=LSB_V)
    assert abs(later - (3.5 + e0)) < 0.01 * np.exp(-5) + LSB_V


def test_defects_in_the_afe():
    a = _afe(0, ["adc_offset:cell=1,mv=5", "cell_swap:a=2,b=3", "adc_noise:mv_rms=0"])
    v = np.linspace(3.0, 3.5, 16)
    a.reset(0.0, v)
    r = a.convert(0.0, 25.0)
    e = a.static_error_v(v)
    assert r[0] - v[0] == pytest.approx(e[0], abs=LSB_V)  # the offset is part of the static error
    assert e[0] == pytest.approx(5e-3, abs=0.7e-3)
    assert r[1] == pytest.approx(v[2], abs=2e-3) and r[2] == pytest.approx(v[1], abs=2e-3)
