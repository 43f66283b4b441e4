"""Bench speed without losing the answer: a long sleep while balancing is fast-forwarded in
windows longer than an hour and bleeds the same charge as hourly looks; the per-state cell
terms follow every change of state; the peer comparison reports a missing peer plainly."""

from __future__ import annotations

import numpy as np
import pytest

from rig.bench import CV_CELL_V, _imbalanced_world, duration_scaling, fine_path
from rig.bench_peer import peer_available, peer_ecm
from rig.sim.cells import PackModel

from ._util import PROFILE


def _balancing_pack():
    w = _imbalanced_world(PROFILE)
    w.set_charger(5.0, PROFILE.cells * CV_CELL_V)
    return w


def test_a_long_sleep_while_balancing_jumps_hours_and_bleeds_what_hourly_looks_bleed():
    one = _balancing_pack()
    one.advance(30 * 3600.0)  # a plan's single long sleep
    hourly = _balancing_pack()
    for _ in range(30):
        hourly.advance(3600.0)
    # the quiet stretches are jumped in windows longer than an hour (no hourly cap) ...
    assert one.stats["ff_s"] / one.stats["ff"] > 3600.0, one.stats
    assert one.stats["ff"] < hourly.stats["ff"] / 2, (one.stats, hourly.stats)
    # ... and the answer is the one of hourly looks: charge bled per cell and the final spread
    q_one, q_hourly = one.bleed_charge_c[:-1], hourly.bleed_charge_c[:-1]
    assert float(q_hourly.min()) > 0.5 * 3600  # each high cell bled at least 0.5 Ah: balancing ran
    assert np.allclose(q_one, q_hourly, rtol=0.01), (q_one / 3600, q_hourly / 3600)
    d_one = np.ptp(one.terminal_voltages())
    d_hourly = np.ptp(hourly.terminal_voltages())
    assert abs(d_one - d_hourly) < 2e-3, (d_one, d_hourly)
    assert one.stats["ff_drift_used_max"] <= 1.0


def test_duration_scaling_costs_fewer_windows_than_hours():
    r = duration_scaling(hours=(10.0, 80.0))["result"]
    short, long_ = r["runs"]
    assert r["duration_ratio"] == 8.0
    # eight times the simulated time, far fewer than eight times the windows (they are not
    # cut at every hour), whatever the machine's load does to the wall-clock figures
    assert long_["ff_windows"] < 4 * short["ff_windows"], r


def test_cell_terms_follow_soc_and_temperature_and_are_read_only():
    pack = PackModel("lfp", 4, 100.0, 0.5, np.random.default_rng(1))
    v0, r0 = pack.ocv().copy(), pack.resistance_r0().copy()
    assert pack.ocv() is pack.ocv()  # evaluated once per state
    with pytest.raises(ValueError):
        pack.ocv()[0] = 0.0  # a reader cannot corrupt the shared terms
    pack.soc[1] = 0.99  # an in-place write is a new state
    assert pack.ocv()[1] > v0[1] + 0.05 and pack.ocv()[0] == v0[0]
    pack.temperature_c[2] = 0.0
    assert pack.resistance_r0()[2] > 1.5 * r0[2]
    pack.step(600.0, 50.0)  # a step is a new state: the SOC rose
    assert np.all(pack.ocv() > v0 - 1e-12) and pack.ocv()[3] > v0[3]


@pytest.mark.skipif(peer_available(), reason="PyBaMM is installed here: the side-by-side figure is measured")
def test_peer_comparison_says_the_peer_is_absent_and_invents_no_figure():
    r = peer_ecm(PROFILE.name)
    assert r["scenario"] == "peer-ecm"
    assert r["result"]["status"] == "absent" and "not installed" in r["result"]["reason"]
    assert r["simulated_s"] == 0.0 and r["ratio"] is None and "by_output" not in r["result"]


def test_a_window_under_cv_keeps_its_drift_promise_while_the_current_tapers():
    # charging into the LFP knee until the CV limit takes over: the regulator's current falls
    # by amperes per second, the fine path re-evaluates it once a second; a window opened in
    # between with a tight drift limit (a cell near a protection level) must count its drift
    # from the present current, and end before a current change alone overshoots it
    w = _imbalanced_world(PROFILE, soc_high=0.996)
    w.set_charger(20.0, float(w.pack_voltage()) + 0.35)
    stepper = w.stepping
    windows = 0
    for _ in range(12):
        w.advance(1.37)
        if not stepper.power.in_cv():
            continue
        windows += 1
        stepper.stats["ff_drift_used_max"] = 0.0
        stepper.fast_forward(w.t + 5.0, np.zeros(PROFILE.cells), 0.6e-3)
        assert stepper.stats["ff_drift_used_max"] <= 1.0, (w.t, stepper.power.i_pack)
    assert windows >= 5  # the taper was exercised


def test_fine_path_reports_the_cost_of_an_event_and_the_link_does_not_change_the_physics():
    r = fine_path(window_s=20.0)
    no_link, can = r["result"]["no_link"], r["result"]["can"]
    for run in (no_link, can):
        # balancing: a mute and a conversion every period, each one event and one wake
        assert run["events"] == run["wakes"] == 2 * 20.0 / PROFILE.sampling.period_s
        assert run["us_per_event"] > 0.0 and run["s_per_simulated_hour"] > 0.0
    # encoding the telemetry into CAN frames is the link's business: the same pack either way
    assert can["soc_sum"] == no_link["soc_sum"]
    assert can["charge_bled_c_total"] == no_link["charge_bled_c_total"] > 0.0


def test_can_payload_memo_gives_the_bytes_a_fresh_encoding_gives():
    from rig.sim.can_tx import CanTransmitter
    from rig.sim.harness import Telemetry

    n = PROFILE.cells
    kept = CanTransmitter(PROFILE.resolve(PROFILE.link.dbc), "bmsrig-test-memo-kept", n)
    rng = np.random.default_rng(5)
    try:
        for i in range(60):
            # a few distinct values, so that most frames repeat an earlier payload
            tel = Telemetry(cell_v=3.3 + rng.integers(0, 3, n) * 1e-3, temps_c=np.full(n + 1, 25.0 + i % 2),
                            balancing=rng.random(n) > 0.5, hvc=bool(i % 7 == 0), pack_v=52.8, pack_a=float(i % 3),
                            serial="REF16-000123", hw_revision="C", fw_version="2.3.1", state="charge")
            fresh = CanTransmitter(PROFILE.resolve(PROFILE.link.dbc), f"bmsrig-test-memo-{i}", n)
            try:
                assert kept.encode(float(i), tel) == fresh.encode(float(i), tel), i
            finally:
                fresh.close()
    finally:
        kept.close()
