"""BS1200 driver at the wire: Bloomy's ``bs1200`` library end to end against simulated units.

The simulated units (tests/drivers/bs1200_sim.py) speak the BS1200 CAN frames on a python-can
``virtual`` bus; the driver opens that bus from its ``BS1200Bus`` resource and every command
and readback goes through the library's own frame builders and readback cache. Nothing of
``bs1200`` is mocked. The rig: a 16-cell emulator from box 1 (12 channels) and box 2 (4).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from rig.errors import RigFault, SafetyLimitError
from rig.protocols import CellEmulator

from .bs1200_sim import SimBS1200Bus

pytest.importorskip("bs1200")


def _units(channels2=4):
    return [
        {"box_id": 1, "serial": "BS1200-0101", "calibration_due": "2027-05-31", "channels": 12},
        {"box_id": 2, "serial": "BS1200-0102", "calibration_due": "2027-02-28", "channels": channels2},
    ]


@pytest.fixture
def sim():
    with SimBS1200Bus(box_ids=(1, 2)) as bus:
        yield bus


@pytest.fixture
def emulator(make_target, sim):
    target = make_target(
        {"BS1200Bus": {"interface": "virtual", "channel": sim.channel, "bitrate": 1000000, "units": _units()}},
        {"BS1200CellEmulatorDriver": {"voltage_range_v": [0.0, 4.5], "max_current_a": 0.3, "safe_voltage_v": 3.3}},
    )
    emu = target.get_driver(CellEmulator)
    assert emu.n_channels == 16
    return emu


def test_set_points_and_readback_through_the_library(emulator, sim):
    volts = np.linspace(3.0, 3.6, 16)
    emulator.set_voltages(volts)
    emulator.enable(True)
    sim.sync()
    np.testing.assert_allclose(sim.units[1].set_v, volts[:12], atol=0.6e-4)
    np.testing.assert_allclose(sim.units[2].set_v[:4], volts[12:], atol=0.6e-4)
    assert not sim.units[2].enabled[4:].any(), "unmapped channels of box 2 must stay off"
    np.testing.assert_allclose(emulator.read_voltages(), volts, atol=0.6e-4)

    emulator.set_voltage(13, 3.2)  # cell 14 = box 2 channel 2
    sim.sync()
    assert sim.units[2].set_v[1] == pytest.approx(3.2, abs=1e-9)
    assert emulator.read_voltages()[13] == pytest.approx(3.2, abs=1e-9)


def test_set_points_are_rounded_to_the_units_code_not_truncated(emulator, sim):
    emulator.set_voltages(3.3)  # 3.3 / 1e-4 = 32999.999...: the library alone would send 3.2999 V
    sim.sync()
    assert sim.units[1].set_v[0] == pytest.approx(3.3, abs=1e-9)
    kinds = [k for k, box, _ in sim.commands()]
    assert kinds.count("set_V_all") == 1, "a uniform set point on a fully mapped unit is one frame"


def test_channel_currents_follow_the_mapping_and_limits(emulator, sim):
    emulator.set_current_limits(source_a=0.25, sink_a=0.1)
    emulator.set_voltages(3.3)
    emulator.enable(True)
    sim.sync()
    sim.units[1].load_a[:] = 0.0
    sim.units[1].load_a[5] = 0.045       # cell 6 bleeding
    sim.units[2].load_a[2] = 0.060       # cell 15 bleeding
    sim.units[2].load_a[3] = 0.400       # cell 16 beyond the source limit: clamped by the unit
    np.testing.assert_allclose(sim.units[1].source_a, 0.25)
    np.testing.assert_allclose(sim.units[1].sink_a, 0.1)
    # the loads changed after the last command: wait for readbacks newer than now
    emulator.set_current_limits(source_a=0.25, sink_a=0.1)
    amps = emulator.read_currents(aperture_s=0.02)
    expect = np.zeros(16)
    expect[5], expect[14], expect[15] = 0.045, 0.060, 0.25
    np.testing.assert_allclose(amps, expect, atol=2e-4)


def test_disable_switches_every_output_of_each_unit(emulator, sim):
    emulator.set_voltages(3.4)
    emulator.enable(True)
    sim.sync()
    assert sim.units[1].enabled.all() and sim.units[2].enabled[:4].all()
    emulator.enable(False)
    sim.sync()
    assert not sim.units[1].enabled.any() and not sim.units[2].enabled.any()
    np.testing.assert_allclose(emulator.read_voltages(), 0.0)


def _proves_nothing_sent(sim, emulator, refused):
    """Run ``refused`` (must raise SafetyLimitError), then a harmless command as a marker.

    The virtual bus delivers in order, so if the marker's frame is the only one the units
    received after the mark, the refused command put nothing on the wire.
    """
    sim.sync()
    mark = len(sim.received)
    with pytest.raises(SafetyLimitError) as err:
        refused()
    emulator.enable(True)  # a harmless command: cell_enable_all (box 1) + 4 x cell_enable (box 2)
    sim.sync()
    assert len(sim.received) == mark + 5
    kinds = {k for k, _, _ in sim.commands(mark)}
    assert kinds <= {"enable_all", "enable_cell"}, f"a refused command reached the units: {sim.commands(mark)}"
    return err.value


def test_beyond_limit_commands_put_nothing_on_the_bus(emulator, sim):
    emulator.set_voltages(3.3)
    err = _proves_nothing_sent(sim, emulator, lambda: emulator.set_voltage(15, 4.6))
    assert "cell 16 voltage" in str(err) and "nothing was sent" in str(err)
    # one bad value among sixteen: none of the sixteen is sent
    bad = np.full(16, 3.3)
    bad[7] = -0.1
    _proves_nothing_sent(sim, emulator, lambda: emulator.set_voltages(bad))
    _proves_nothing_sent(sim, emulator, lambda: emulator.set_voltages(float("nan")))
    _proves_nothing_sent(sim, emulator, lambda: emulator.set_current_limits(0.31, 0.1))
    _proves_nothing_sent(sim, emulator, lambda: emulator.set_current_limits(0.1, -0.01))
    sim.sync()
    np.testing.assert_allclose(sim.units[1].set_v, 3.3, atol=1e-9)


def test_limits_are_fixed_at_construction(emulator):
    for name, value in (("voltage_range_v", (0.0, 6.0)), ("max_current_a", 5.0), ("safe_voltage_v", 4.0)):
        with pytest.raises(AttributeError, match="hard limit fixed when the rig was built"):
            setattr(emulator, name, value)
    assert emulator.voltage_range_v == (0.0, 4.5) and isinstance(emulator.voltage_range_v, tuple)


def test_safe_state_goes_through_the_checked_path(emulator, sim):
    emulator.set_voltages(3.6)
    emulator.enable(True)
    emulator.safe_state()
    np.testing.assert_allclose(emulator.read_voltages(), 3.3, atol=1e-9)


def test_info_carries_identity_mapping_and_earliest_calibration(emulator):
    info = emulator.info()
    assert info.model == "Bloomy BS1200 x2"
    assert info.serial == "BS1200-0101, BS1200-0102"
    assert info.calibration_due == "2027-02-28"
    assert "cells 1-12 = box 1 ch 1-12; cells 13-16 = box 2 ch 1-4" in info.notes
    assert info.extra["units"][0]["board_temps_c"] == [31, 33, 29]


def test_explicit_channel_list_maps_cells_out_of_order(make_target, sim):
    units = _units(channels2=[3, 4, 1, 2])
    target = make_target({"BS1200Bus": {"interface": "virtual", "channel": sim.channel, "units": units}},
                         {"BS1200CellEmulatorDriver": {}})
    emu = target.get_driver(CellEmulator)
    emu.set_voltage(12, 3.1)   # cell 13 = box 2 channel 3
    sim.sync()
    assert sim.units[2].set_v[2] == pytest.approx(3.1, abs=1e-9)
    assert "cells 13-14 = box 2 ch 3-4; cells 15-16 = box 2 ch 1-2" in emu.info().notes


def test_silent_unit_is_a_rig_fault_naming_the_box(make_target, sim):
    units = _units() + [{"box_id": 7, "serial": "X", "channels": 2}]
    target = make_target({"BS1200Bus": {"interface": "virtual", "channel": sim.channel, "units": units}},
                         {"BS1200CellEmulatorDriver": {}})
    with pytest.raises(RigFault, match=r"box ID\(s\) \[7\]"):
        target.get_driver(CellEmulator)


def test_stale_readbacks_are_a_rig_fault(emulator, sim):
    emulator.set_voltages(3.3)
    sim.publishing = False
    emulator.set_voltages(3.4)
    with pytest.raises(RigFault, match="fresh readbacks"):
        emulator.read_voltages()


def test_missing_library_names_the_extra(make_target, sim, monkeypatch):
    monkeypatch.setitem(sys.modules, "bs1200", None)
    target = make_target({"BS1200Bus": {"interface": "virtual", "channel": sim.channel, "units": _units()}},
                         {"BS1200CellEmulatorDriver": {}})
    with pytest.raises(RigFault, match=r"pip install 'bmsrig\[bs1200\]'"):
        target.get_driver(CellEmulator)


@pytest.mark.parametrize("units, drivers, message", [
    ([{"box_id": 1}, {"box_id": 1}], {}, r"units\[1\].box_id: box ID 1 is listed twice"),
    ([{"box_id": 16}], {}, r"units\[0\].box_id: must be an integer 1..15"),
    ([{"box_id": 1, "channels": 13}], {}, r"units\[0\].channels: count 13 outside 1..12"),
    ([{"box_id": 1, "channels": [1, 1]}], {}, r"units\[0\].channels: a channel is listed twice"),
    ([{"box_id": 1}], {"voltage_range_v": [0.0, 5.5]}, r"voltage_range_v: channel voltage \[0, 5.5\] V is outside the rated range \[0, 5\] V"),
    ([{"box_id": 1}], {"max_current_a": 1.0}, r"max_current_a: current limit \[0, 1\] A is outside the rated range \[0, 0.5\] A"),
])
def test_bad_rig_description_is_a_config_error(tmp_path, units, drivers, message):
    import yaml

    from rig.check import check_env
    from rig.errors import ConfigError

    env = tmp_path / "bad.yaml"
    env.write_text(yaml.safe_dump({"imports": ["rig.labgrid"], "targets": {"main": {
        "resources": {"BS1200Bus": {"interface": "virtual", "channel": "x", "units": units}},
        "drivers": {"BS1200CellEmulatorDriver": drivers}}}}))
    with pytest.raises(ConfigError, match=message) as err:
        check_env(env)
    assert str(env) in str(err.value)


EXAMPLE = __import__("pathlib").Path(__file__).resolve().parents[2] / "rig" / "envs" / "example-bs1200.yaml"

GUARDED_CHECK = r"""
import sys, can

def no_bus(*args, **kwargs):
    raise AssertionError(f"bmsrig check opened a CAN bus: {args} {kwargs}")

can.Bus = can.interface.Bus = no_bus
from rig.cli import main
sys.exit(main(["check", "--rig", sys.argv[1]]))
"""


def test_check_validates_the_example_without_opening_the_bus():
    import subprocess

    proc = subprocess.run([sys.executable, "-c", GUARDED_CHECK, str(EXAMPLE)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"rig description {EXAMPLE}: OK (hardware)" in proc.stdout


def test_example_maps_sixteen_cells_over_two_units(tmp_path):
    import yaml
    from labgrid import Environment

    import rig.labgrid  # noqa: F401

    env = yaml.safe_load(EXAMPLE.read_text())
    env["targets"]["main"]["resources"][0]["BS1200Bus"].update(interface="virtual", channel="unused")
    path = tmp_path / "example.yaml"
    path.write_text(yaml.safe_dump(env))
    target = Environment(str(path)).get_target("main")
    try:
        from rig.drivers.bs1200 import BS1200CellEmulatorDriver

        emu = target.get_driver(BS1200CellEmulatorDriver, activate=False)
        assert emu.n_channels == 16
        assert "cells 1-12 = box 1 ch 1-12; cells 13-16 = box 2 ch 1-4" in emu.info().notes
    finally:
        target.cleanup()


def test_current_average_is_over_the_rig_clock_not_wall_time(emulator, sim, step_clock):
    """``read_currents(aperture_s)`` averages over rig time: 300 s of rig time at 40 mA, then
    100 s at 0 mA, passed in milliseconds of wall time, average to 30 mA over 400 s and to
    40 mA over the 300 s before the last 100 s is excluded, whatever the wall-time spacing of
    the readbacks. (A wall-time average took the readbacks of the last wall seconds instead:
    all of them, mostly at 0 mA here.)"""
    emulator.set_current_limits(source_a=0.25, sink_a=0.25)
    emulator.set_voltages(3.3)
    emulator.enable(True)
    sim.sync()

    def run(amps, seconds, pieces=3):
        """``seconds`` of rig time at ``amps`` on cell 6, the units publishing after each piece."""
        for _ in range(pieces):
            with sim.paused():
                sim.flush_receivers()
                step_clock.sleep(seconds / pieces)
                sim.units[1].load_a[5] = amps
                sim.publish()
                sim.flush_receivers()

    run(0.040, 300.0)
    for _ in range(20):  # plenty of readbacks at 0 mA within wall time, no rig time passing
        sim.units[1].load_a[5] = 0.0
        sim.publish()
    run(0.0, 100.0)
    sim.flush_receivers()
    assert emulator.read_currents(aperture_s=400.0)[5] == pytest.approx(0.030, abs=2e-4)
    assert emulator.read_currents(aperture_s=100.0)[5] == pytest.approx(0.0, abs=2e-4)
    assert emulator.read_currents(aperture_s=250.0)[5] == pytest.approx(0.040 * 150 / 250, abs=2e-4)
    assert emulator.read_currents(aperture_s=1e-4)[5] == pytest.approx(0.0, abs=2e-4)  # the latest readback


def test_the_emulator_says_it_has_no_noise_injection(emulator):
    """Plans marked ``needs("noise_injection")`` are skipped with the reason on this emulator."""
    assert emulator.noise_injection is False
    emulator.set_noise(0.0)  # switching noise off is fine
    with pytest.raises(RigFault, match="no noise injection"):
        emulator.set_noise(0.002)
