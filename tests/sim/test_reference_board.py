"""The reference firmware: mute around conversions, alternation, strategies, protection, fast-forward."""

from __future__ import annotations

import numpy as np
import pytest

from ._util import PROFILE, collect, world


def _bal(v_hi_cells, base=3.45, hi=3.50, **kw):
    w = world(**kw)
    v = np.full(16, base)
    v[list(v_hi_cells)] = hi
    w.set_emulator_voltages(v)
    w.advance(10.0)
    return w


def test_bleed_is_off_at_every_conversion():
    w = _bal([4])
    seen = []
    orig = w.afe.convert

    def spy(t, temp, extra=None):
        seen.append(bool(w.bleed_conducting()[4]))
        return orig(t, temp, extra)

    w.afe.convert = spy
    w.advance(5.0)
    assert len(seen) == 20 and not any(seen)
    assert w.channel_currents()[4] > 0.04  # and on between them


def test_alternation_non_adjacent_and_max_channels():
    w = _bal(range(15))  # 15 adjacent candidates above cell 16
    masks = [t.balancing.copy() for t in collect(w, 30.0, step=5.0)]
    for m in masks:
        assert m.sum() <= PROFILE.balancing.max_channels
        assert not np.any(m[1:] & m[:-1])
    assert {tuple(np.flatnonzero(m) % 2) for m in masks} == {(0,) * 8, (1,) * 7}
    i = w.channel_currents(30.0)[:15] - 1e-3
    assert np.all(i > 0.2 * 3.5 / 68)  # every high cell gets its share


def test_discharge_strategy_zero_blocks_balancing():
    w = world()
    w.set_cell_model("lfp", 100.0, np.r_[np.full(15, 0.998), 0.99])
    w.advance(10.0)
    assert w.telemetry.balancing.any() and w.telemetry.state == "rest"
    w.set_charger(-20.0)
    w.advance(10.0)
    assert w.telemetry.state == "discharge" and not w.telemetry.balancing.any()


def _tripped_hvc(cell: int, base: float):
    """A world whose HVC has tripped on ``cell`` (3.70 V, the others at ``base``)."""
    w = world()
    v = np.full(16, base)
    v[cell] = 3.70
    w.set_emulator_voltages(v)
    w.advance(3.0)
    assert not w.charge_fet
    return w, v


def _recovery_delay_s(w, v, cell: int, seconds: float = 5.0) -> list[float]:
    """Bring ``cell`` back to 3.40 V now; the charge-FET re-close delays seen, s."""
    v[cell] = 3.40
    t = w.t
    w.set_emulator_voltages(v)
    w.advance(seconds)
    return [e.t - t for e in w.daq_edges if e.line == "charge_enable" and e.level]


def test_hvc_recovery_after_hysteresis_and_recovery_time():
    w, v = _tripped_hvc(3, base=3.40)
    up = _recovery_delay_s(w, v, 3)
    assert up and up[0] == pytest.approx(PROFILE.protection.hvc.recovery_s, abs=0.26)


def test_over_temperature_opens_charge_fet_only():
    w = world()
    w.set_chamber(50.0, 3.0)
    w.advance(1800.0)
    assert w.telemetry.ot and not w.charge_fet and w.discharge_fet


def test_fast_forward_when_quiet_not_near_thresholds():
    w = world()
    w.advance(3600.0)
    assert w.stats["ff_s"] > 3500.0 and w.stats["events"] < 200


def test_no_fast_forward_within_the_noise_guard_of_hvc():
    from rig.sim.reference_board import FF_MIN_DRIFT_V
    w = world()
    v = np.full(16, 3.30)
    v[0] = PROFILE.protection.hvc.threshold_v - 0.002  # closer than the ~2.5 mV guard
    w.set_emulator_voltages(v)
    w.advance(5.0)
    ff = w.stats["ff_s"]
    w.advance(60.0)
    assert w.stats["ff_s"] == ff  # every conversion runs: noise could trip it
    assert w.board.drift_allowance_v() < FF_MIN_DRIFT_V
    v[0] = PROFILE.protection.hvc.threshold_v - 0.030
    w.set_emulator_voltages(v)
    w.advance(600.0)
    assert w.stats["ff_s"] > ff + 500.0  # 30 mV away: quiet


def test_injected_noise_widens_the_guard_and_stops_fast_forward():
    w = world()
    v = np.full(16, 3.30)
    v[0] = PROFILE.protection.hvc.threshold_v - 0.030
    w.set_emulator_voltages(v)
    w.advance(5.0)
    quiet_guard = w.board.noise_guard_v()
    assert quiet_guard < 6e-3
    w.set_emulator_noise(5e-3)
    w.advance(5.0)
    assert w.board.noise_guard_v() > 20e-3 > 3 * quiet_guard
    ff = w.stats["ff_s"]
    w.advance(120.0)
    assert w.stats["ff_s"] == ff


def test_latched_hvc_is_fast_forwarded_and_recovers_on_time():
    w, v = _tripped_hvc(0, base=3.30)
    v[0] = 3.60  # below the trip level, 100 mV above the recovery level: stays latched
    w.set_emulator_voltages(v)
    ff = w.stats["ff_s"]
    w.advance(3600.0)
    assert w.stats["ff_s"] > ff + 3000.0
    assert not w.charge_fet and w.telemetry.hvc
    up = _recovery_delay_s(w, v, 0, seconds=10.0)
    assert len(up) == 1 and up[0] == pytest.approx(PROFILE.protection.hvc.recovery_s, abs=0.26)


def test_derating_duty_curve_from_profile():
    b = _bal([0])
    assert b.board.derating_duty(PROFILE.balancing.derating.start_c - 1) == 1.0
    assert b.board.derating_duty(70.0) == pytest.approx(0.5)
    assert b.board.derating_duty(PROFILE.balancing.derating.zero_c + 1) == 0.0


def test_reference_board_declares_its_state_and_the_bench_plans_the_window():
    from rig.sim import fastforward as ff

    w = _bal([0, 2, 4])
    b = w.board
    w.advance(60.0)
    state = b.quiet_state()
    assert state is not None and state.levels and state.gate is not None
    assert ff.is_quiet(state)  # balancing three non-adjacent cells at rest: decisions alternate two masks
    dec = state.decisions
    assert len(dec.masks) == 2 and dec.every == b.D and dec.lead == PROFILE.sampling.filter_samples - 1
    assert dec.derating is not None and dec.on_share == pytest.approx(1 - PROFILE.sampling.mute_s / PROFILE.sampling.period_s)
    assert b.drift_allowance_v() == ff.drift_allowance_v(b.protection_levels(), b.noise_guard_v(), b.balancing_gate(),
                                                          w.harness.ff_drift_limit_v)
    ff_s = w.stats["ff_s"]
    w.advance(1800.0)
    assert w.stats["ff_s"] > ff_s + 1500.0  # the bench jumps while the board balances
