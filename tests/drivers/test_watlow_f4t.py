"""Watlow F4T driver against a simulated F4T speaking Modbus TCP on the loopback
(tests/drivers/chamber_sims.py ``F4TSim``: pymodbus's own framing, the F4T's float
registers of control loop 1). The chamber's thermal response runs on the StepClock.

The F4T's library (Espec's ``chamberconnectlibrary``) is Python 2 only, so the driver speaks
the register map itself with pymodbus; these tests run it over a real socket.
"""

from __future__ import annotations

import socket

import pytest

from rig.drivers.watlow_f4t import from_registers, to_registers
from rig.errors import RigFault, SafetyLimitError
from rig.protocols import ThermalChamber

from .chamber_sims import F4TSim


@pytest.fixture
def f4t(step_clock):
    sim = F4TSim(pv_c=25.0, sp_c=25.0, default_ramp_c_per_min=2.0).start()
    step_clock.on_step.append(sim.on_step)
    yield sim
    sim.stop()


def _env(port, **driver):
    resources = [{"WatlowF4TPort": {"name": "chamber", "host": "127.0.0.1", "port": port, "timeout_s": 1.0,
                                    "model": "Watlow F4T", "serial": "F4T-0042", "calibration_due": "2027-04-30"}}]
    drivers = [{"WatlowF4TChamberDriver": {"temperature_range_c": [-40.0, 85.0], "max_ramp_c_per_min": 3.0,
                                           "ambient_c": 25.0, **driver}}]
    return resources, drivers


@pytest.fixture
def chamber(f4t, make_target):
    return make_target(*_env(f4t.port)).get_driver(ThermalChamber)


def test_float_registers_are_low_word_first():
    assert to_registers(25.0) == [0x0000, 0x41C8]
    assert from_registers([0x0000, 0x41C8]) == 25.0


def test_set_point_switches_the_loop_on_and_reads_back(chamber, f4t):
    chamber.set_temperature(-20.5)
    assert f4t.writes == [("mode", 10), ("sp", -20.5)]  # off -> auto, then the constant set point
    chamber.set_temperature(40.0)
    assert f4t.writes[-1] == ("sp", 40.0) and len(f4t.writes) == 3  # already on: no second mode write
    assert chamber.read_setpoint() == 40.0
    info = chamber.info()
    assert info.model == "Watlow F4T" and info.serial == "F4T-0042"
    assert info.extra["controller_setpoint_range_c"] == "[-70, 180]"


def test_wait_stable_on_the_rig_clock(chamber, f4t, step_clock):
    chamber.set_temperature(35.0)
    waited = chamber.wait_stable(tolerance_c=0.5, dwell_s=60.0, timeout_s=3600.0)
    assert 300.0 <= waited <= 420.0  # 10 °C at 2 °C/min, then the dwell
    assert chamber.read_temperature() == pytest.approx(35.0, abs=0.5)
    chamber.safe_state()
    assert f4t.sp == 25.0


@pytest.mark.parametrize(
    "celsius, ramp", [(85.1, None), (-40.5, None), (float("nan"), None), (40.0, 3.5), (40.0, -1.0)],
    ids=["hot", "cold", "nan", "ramp-too-fast", "ramp-negative"],
)
def test_beyond_limit_reaches_nothing(chamber, f4t, celsius, ramp):
    before = len(f4t.received)
    with pytest.raises(SafetyLimitError):
        chamber.set_temperature(celsius, ramp_c_per_min=ramp)
    assert len(f4t.received) == before and f4t.writes == []  # not a single Modbus request


def test_a_rig_limit_beyond_the_controllers_own_range_is_refused(f4t, make_target):
    f4t.range_c = (-20.0, 150.0)
    target = make_target(*_env(f4t.port))
    with pytest.raises(RigFault, match=r"\[-40, 85\] °C is outside the controller's own range \[-20, 150\] °C"):
        target.get_driver(ThermalChamber)
    assert f4t.writes == []


def test_a_refused_write_and_a_silent_controller_are_rig_faults(chamber, f4t):
    f4t.range_c = (-70.0, 30.0)  # the controller refuses 40 °C (illegal data value)
    with pytest.raises(RigFault, match="set point write"):
        chamber.set_temperature(40.0)
    f4t.stop()
    with pytest.raises(RigFault, match="process value read failed"):
        chamber.read_temperature()


def test_no_controller_at_the_address_is_a_rig_fault(make_target):
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    target = make_target(*_env(port))
    with pytest.raises(RigFault, match="cannot open"):
        target.get_driver(ThermalChamber)
