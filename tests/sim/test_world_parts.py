"""The World's parts: each usable and readable through its public interface."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from rig.build import Rig
from rig.chemistry import chemistry
from rig.sim import stepping
from rig.sim.bleed import QUIESCENT_A, BleedHardware
from rig.sim.charge_history import ChargeHistory
from rig.sim.defects import parse_defects
from rig.sim.emulator import ChannelEmulator
from rig.sim.power import PowerPath
from rig.sim.world import STREAMS

from ._util import PROFILE, world


def test_world_exposes_its_parts_and_their_state():
    w = world()
    w.set_charger(5.0, 55.0)
    w.set_emulator_noise(1e-3)
    w.set_emulator_enabled(False)
    assert (w.power.i_set, w.power.v_limit) == (5.0, 55.0)
    assert w.emulator.noise_rms == 1e-3 and not w.emulator.enabled and w.mode == w.emulator.mode == "source"
    assert set(w.rngs) == set(STREAMS)
    w.advance(3.0)
    assert w.t == w.clock.t == 3.0
    assert w.stats is w.stepping.stats and w.stats["events"] > 0
    assert w.bleed_on_s is w.history.bleed_on_s and w.daq_edges is w.board_io.edges
    assert w.chamber is w.thermal.chamber
    assert w.harness.ff_drift_limit_v == stepping.FF_DV_MAX_V
    assert w.harness.ff_drift_cap_v == stepping.FF_DV_CAP_V and w.harness.ff_drift_limit_c == stepping.FF_DT_MAX_C


def test_the_bench_and_the_rig_baseline_start_at_the_chemistry_nominal():
    nominal = chemistry(PROFILE.chemistry).nominal_v
    assert np.all(world().emulator_setpoints() == nominal)
    assert Rig.baseline_cell_v.fget(SimpleNamespace(profile=PROFILE)) == nominal


def test_bleed_hardware_is_built_from_the_defects():
    bal = PROFILE.balancing
    good = BleedHardware(4, bal, parse_defects(None))
    assert good.resistor_ohm == bal.bleed_resistor_ohm and not good.conduct.any()
    bad = BleedHardware(4, bal, parse_defects(["bleed_stuck:cell=2", "bleed_dead:cell=3"], n_cells=4))
    assert bad.conduct.tolist() == [False, True, False, False] and bad.g[2] == 0.0
    bad.command([True, False, False, False])
    assert bad.apply() and bad.conduct.tolist() == [True, True, False, False]
    assert not bad.apply()  # nothing changed
    bad.update(np.full(4, 3.4), powered=True)
    assert bad.i_bleed[0] == pytest.approx(3.4 / bal.bleed_resistor_ohm)
    assert bad.i_ch[3] == QUIESCENT_A
    with pytest.raises(ValueError, match="shape"):
        bad.command([True])
    weak = BleedHardware(4, bal, parse_defects(["bleed_current:ma=10"], n_cells=4))
    assert weak.resistor_ohm == pytest.approx(bal.min_cell_v / 10e-3)


def test_power_path_gates_and_limits_in_source_mode():
    em = ChannelEmulator(4, 3.3, np.random.default_rng(0))
    power = PowerPath(em)
    power.set_request(10.0, None)
    assert power.current(0.0) == 10.0
    power.set_request(10.0, 4 * 3.3)  # the set points already sit at the limit
    assert power.current(0.0) == 0.0
    power.set_request(-10.0, 12.0)
    assert power.current(0.0) == -10.0
    assert power.set_fets(True, False) and not power.set_fets(True, False)
    assert power.current(0.0) == 0.0 and power.gate(3.0) == 3.0


def test_charge_history_means_are_exact_between_rows():
    hist = ChargeHistory(2)
    i = np.array([1.0, 2.0])
    for k in range(1, 11):  # 1 s steps of constant current
        hist.q += i * 1.0
        hist.record(float(k))
    assert np.allclose(hist.mean_current(10.0, 2.5, i), i)
    assert np.allclose(hist.charge_at(4.5), i * 4.5)
    assert hist.charge_at(-1.0) is None
    assert np.array_equal(hist.mean_current(10.0, 0.0, i), i)


def test_emulator_protection_trips_once_and_latches_off():
    em = ChannelEmulator(2, 3.3, np.random.default_rng(0))
    em.mode, em.ovp = "model", (2.5, 3.65)
    assert not em.check_protection(np.array([3.3, 3.6]), 1.0)
    assert em.check_protection(np.array([3.3, 3.7]), 2.0)
    assert (em.mode, em.enabled, em.ovp, em.pack) == ("source", False, None, None)
    msg = em.take_trip()
    assert "channel 2" in msg and "t = 2.0 s" in msg and em.take_trip() is None
