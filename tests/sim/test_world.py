"""World: determinism, physics of the bleed and charger, HVC timing, pluggable boards."""

from __future__ import annotations

import numpy as np
import pytest

from rig.errors import ConfigError
from rig.sim.harness import Telemetry
from rig.sim.world import QUIESCENT_A, World

from ._util import PROFILE, conv_times_after, world


def _scenario(w: World) -> dict:
    v = np.full(16, 3.45)
    v[4] = 3.50
    w.set_emulator_voltages(v)
    w.advance(30.0)
    v[7] = 3.70
    w.set_emulator_voltages(v)
    w.advance(5.0)
    return {"cell_v": w.telemetry.cell_v.copy(), "mask": w.telemetry.balancing.copy(),
            "edges": [(e.t, e.line, e.level) for e in w.daq_edges], "daq": w.daq_voltages(),
            "i": w.channel_currents(5.0), "t": w.t}


def test_same_seed_same_result_bit_for_bit():
    a, b = _scenario(world(seed=7)), _scenario(world(seed=7))
    for k in a:
        assert np.array_equal(np.asarray(a[k]), np.asarray(b[k])), k


def test_different_seeds_differ_only_in_noise():
    a, b = _scenario(world(seed=7)), _scenario(world(seed=8))
    assert not np.array_equal(a["cell_v"], b["cell_v"])
    # ...but both are good boards: same decisions, same edges, readings within the AFE's error
    assert np.array_equal(a["mask"], b["mask"])
    assert [e[1:] for e in a["edges"]] == [e[1:] for e in b["edges"]]
    assert np.max(np.abs(a["cell_v"] - b["cell_v"])) < 3e-3


def test_defect_does_not_reshuffle_unrelated_noise():
    a = world(seed=3)
    b = world(seed=3, defects=["adc_offset:cell=5,mv=8"])
    a.advance(2.0)
    b.advance(2.0)
    diff = b.telemetry.cell_v - a.telemetry.cell_v
    assert diff[4] == pytest.approx(8e-3, abs=0.2e-3)
    assert np.all(np.abs(np.delete(diff, 4)) == 0.0)


def test_bleed_current_is_v_over_r_as_channel_current():
    w = world()
    v = np.full(16, 3.45)
    v[4] = 3.50
    w.set_emulator_voltages(v)
    w.advance(20.0)
    assert w.telemetry.balancing[4]
    i_inst = w.channel_currents()  # now: the switch is on between conversions
    assert i_inst[4] == pytest.approx(3.50 / 68.0 + QUIESCENT_A, rel=1e-9)
    i = w.channel_currents(5.0)  # exact mean over 5 s: on except the 5 ms mutes
    assert i[4] == pytest.approx(3.50 / 68.0 * (1 - 0.005 / 0.25) + QUIESCENT_A, rel=2e-3)
    assert np.allclose(np.delete(i, 4), QUIESCENT_A)


def test_charger_cc_cv_and_fet_gating():
    w = world()
    w.set_cell_model("lfp", 100.0, 0.5)
    w.set_charger(20.0, 16 * 3.5)
    w.advance(60.0)
    assert w.pack_current() == pytest.approx(20.0)
    assert w.soc()[0] == pytest.approx(0.5 + 20 * 60 / 360000, abs=2e-4)
    # charge to HVC: a cell pushed over 3.65 V trips, the charge FET opens, current stops
    w.set_cell_model("lfp", 100.0, np.r_[np.full(15, 0.9), 0.999])
    w.set_charger(50.0, 16 * 3.8)
    for _ in range(120):
        w.advance(1.0)
        if not w.charge_fet:
            break
    assert not w.charge_fet and w.telemetry.hvc
    assert w.pack_current() == 0.0
    # discharge still flows through the closed discharge FET
    w.set_charger(-10.0)
    w.advance(1.0)
    assert w.pack_current() == pytest.approx(-10.0)


def test_cv_limit_holds_pack_voltage():
    w = world()
    w.set_cell_model("lfp", 100.0, 0.99)
    vlim = 16 * 3.45
    w.set_charger(10.0, vlim)
    w.advance(3600.0)
    assert w.pack_voltage() == pytest.approx(vlim, abs=0.02)
    assert 0.0 <= w.pack_current() < 10.0


def test_hvc_trip_time_exact_to_1ms():
    w = world()
    w.advance(10.1)
    v = np.full(16, 3.40)
    v[7] = 3.70
    t_step = w.t
    w.set_emulator_voltages(v)
    w.advance(4.0)
    edges = [e for e in w.daq_edges if e.line == "charge_enable" and not e.level]
    assert len(edges) == 1
    t_cross = conv_times_after(t_step)  # the first conversion that sees the cell over HVC
    assert edges[0].t == pytest.approx(t_cross + PROFILE.protection.hvc.delay_s, abs=1e-3)
    hvc_out = [e for e in w.daq_edges if e.line == "hvc_out"]
    assert hvc_out[0].t == edges[0].t and hvc_out[0].level


def test_ff_off_before_board_has_seen_a_change():
    w = world()
    w.advance(100.0)  # quiet: fast-forwarded
    assert w.stats["ff"] >= 1
    v = np.full(16, 3.30)
    v[2] = 3.70
    w.set_emulator_voltages(v)
    w.advance(600.0)  # a long sleep right after a change must still trip on time
    e = [x for x in w.daq_edges if x.line == "charge_enable"]
    assert e and e[0].t < 100.0 + 1.0 + 0.3


# ---------------------------------------------------------------- pluggable boards


class TinyBoard:
    """A third party's minimal firmware: bleeds cell 1 forever, reports raw readings at 1 Hz."""

    def __init__(self, harness, profile, defects):
        self.h = harness
        mask = np.zeros(harness.n_cells, bool)
        mask[0] = True
        harness.set_bleed(mask)

    def wake(self, now):
        v = self.h.read_cell_voltages()
        n = self.h.n_cells
        self.h.publish(Telemetry(cell_v=v, temps_c=np.zeros(n + 1), balancing=np.eye(n, dtype=bool)[0],
                                 serial="TINY-1", hw_revision="A", fw_version="0.0.1"))
        return now + 1.0


def test_pluggable_board_by_module_class():
    w = World(PROFILE, seed=1, board_model="tests.sim.test_world:TinyBoard")
    w.advance(10.0)
    assert w.telemetry.serial == "TINY-1"
    assert w.telemetry.t == pytest.approx(10.0 - 1.0 + 0.0, abs=1.0)
    i = w.channel_currents(5.0)
    assert i[0] == pytest.approx(3.30 / 68.0 + QUIESCENT_A, rel=1e-6)  # never muted: no mute logic
    assert w.stats["ff"] == 0  # no fast_forward method: always fine


@pytest.mark.parametrize("spec, fragment", [
    ("nope", "module:Class"),
    ("no.such.module:Board", "cannot import"),
    ("tests.sim.test_world:Missing", "no board model class"),
    ("tests.sim.test_world:_scenario", "wake"),
])
def test_bad_board_model_names_the_option(spec, fragment):
    with pytest.raises(ConfigError) as ei:
        World(PROFILE, board_model=spec)
    assert ei.value.key == "--board-model" and fragment in str(ei.value)


def test_bad_profile_board_model_names_bench_model():
    bad = PROFILE.model_copy(update={"bench": PROFILE.bench.model_copy(update={"model": "x.y:Z"})})
    with pytest.raises(ConfigError) as ei:
        World(bad)
    assert ei.value.key == "bench.model"
    assert "reference-16s-lfp.yaml" in ei.value.file


def test_thermocouples_and_daq():
    w = world()
    w.set_chamber(40.0, 3.0)
    w.advance(1800.0)
    tc = w.thermocouples()
    assert set(tc) == {"bleed_resistors", "cells_mid", "ambient"}
    assert tc["ambient"] == pytest.approx(40.0, abs=0.5)
    assert tc["cells_mid"] > tc["ambient"]  # middle cells run warmer
    d = w.daq_voltages() - w.terminal_voltages()
    assert np.std(d) < 0.2e-3 and w.daq_uncertainty_v() == 0.5e-3


def test_unique_can_channel_per_world():
    a, b = world(seed=1), world(seed=1)
    ca, cb = a.dut_ports.endpoint(), b.dut_ports.endpoint()
    assert ca != cb
    a.advance(1.0)
    a.close()
    b.close()
