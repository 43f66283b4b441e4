"""Espec P-300/SCP-220 driver against a simulated controller speaking the Espec ASCII command
set over TCP on the loopback (tests/drivers/chamber_sims.py).

Espec's ``chamberconnectlibrary`` is Python 2 only (it does not import here), so the driver
speaks the command set itself; these tests run it over a real socket. The chamber's thermal
response runs on the StepClock.
"""

from __future__ import annotations

import socket

import pytest

from rig.errors import RigFault, SafetyLimitError
from rig.protocols import ThermalChamber

from .chamber_sims import EspecSim


@pytest.fixture
def espec(step_clock):
    sim = EspecSim(pv_c=25.0, sp_c=25.0, default_ramp_c_per_min=2.0).start()
    step_clock.on_step.append(sim.on_step)
    yield sim
    sim.stop()


def _env(port, **driver):
    resources = [{"EspecPort": {"name": "chamber", "host": "127.0.0.1", "port": port, "timeout_s": 1.0,
                                "serial": "SH-642-0815", "calibration_due": "2027-04-30"}}]
    drivers = [{"EspecChamberDriver": {"temperature_range_c": [-40.0, 85.0], "max_ramp_c_per_min": 3.0,
                                       "ambient_c": 25.0, **driver}}]
    return resources, drivers


@pytest.fixture
def chamber(espec, make_target):
    return make_target(*_env(espec.port)).get_driver(ThermalChamber)


def test_set_point_is_sent_and_the_chamber_runs_constant(chamber, espec):
    chamber.set_temperature(-20.55)
    assert espec.writes == [("TEMP", -20.6), ("MODE", "CONSTANT")]  # the controller's 0.1 °C format
    assert espec.received[-3:] == ["TEMP, S-20.6", "MODE?", "MODE,CONSTANT"]
    chamber.set_temperature(40.0)
    assert espec.writes[-1] == ("TEMP", 40.0)  # already running: no second MODE command
    assert chamber.read_setpoint() == 40.0


def test_identity_read_from_the_controller(chamber, espec):
    info = chamber.info()
    assert info.model == "Espec P300"  # from TYPE?, the rig description names no model
    assert info.serial == "SH-642-0815" and info.calibration_due == "2027-04-30"
    assert "firmware P3-V1.05" in info.notes and info.extra["controller_max_temperature_c"] == 180.0


@pytest.mark.parametrize(
    "celsius, ramp", [(85.1, None), (-40.5, None), (float("nan"), None), (40.0, 3.5), (40.0, -1.0)],
    ids=["hot", "cold", "nan", "ramp-too-fast", "ramp-negative"],
)
def test_beyond_limit_reaches_nothing(chamber, espec, celsius, ramp):
    chamber.set_temperature(30.0)
    before = list(espec.received)
    with pytest.raises(SafetyLimitError, match="nothing was sent"):
        chamber.set_temperature(celsius, ramp_c_per_min=ramp)
    assert espec.received == before  # not a single command reached the controller
    assert espec.sp == 30.0


def test_controller_refusal_is_a_rig_fault(espec, make_target):
    chamber = make_target(*_env(espec.port, temperature_range_c=[-100.0, 85.0], ambient_c=20.0)).get_driver(ThermalChamber)
    with pytest.raises(RigFault, match=r"set point write failed: OSError: controller refused 'TEMP, S-90.0': DATA OUT OF RANGE"):
        chamber.set_temperature(-90.0)


def test_wait_stable_on_the_rig_clock(chamber, espec, step_clock):
    chamber.set_temperature(65.0, ramp_c_per_min=1.0)  # the ramp is not settable: the chamber's 2 °C/min
    waited = chamber.wait_stable(tolerance_c=0.5, dwell_s=60.0, timeout_s=3600.0)
    assert waited == pytest.approx(1185.0 + 60.0)
    assert step_clock.now() == pytest.approx(waited)
    assert chamber.read_temperature() == pytest.approx(65.0)


def test_safe_state_sets_ambient_and_never_raises(chamber, espec):
    chamber.set_temperature(-30.0)
    chamber.safe_state()
    assert espec.sp == 25.0
    espec.stop()
    chamber.safe_state()
    with pytest.raises(RigFault, match=r"thermal chamber 'chamber' \(127.0.0.1:\d+\): process value read failed"):
        chamber.read_temperature()


def test_connection_failure_is_a_rig_fault(make_target):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RigFault, match=rf"thermal chamber 'chamber' \(127.0.0.1:{port}\): cannot open: ConnectionRefusedError"):
        make_target(*_env(port)).get_driver(ThermalChamber)


def test_rs485_addressed_serial_link(step_clock, make_target):
    from .chamber_sims import EspecSerialSim

    chamber_sim = EspecSim(pv_c=30.0, sp_c=30.0)
    bus = EspecSerialSim(chamber_sim, address=3).start()
    try:
        resources = [{"EspecPort": {"name": "chamber", "serial_port": bus.port, "address": 3, "timeout_s": 0.5}}]
        drivers = [{"EspecChamberDriver": {"temperature_range_c": [-40.0, 85.0], "ambient_c": 25.0}}]
        chamber = make_target(resources, drivers).get_driver(ThermalChamber)
        chamber.set_temperature(12.5)
        assert chamber_sim.writes == [("TEMP", 12.5), ("MODE", "CONSTANT")]
        assert chamber.read_temperature() == 30.0 and chamber.info().model == "Espec P300"
        before = list(chamber_sim.received)
        with pytest.raises(SafetyLimitError):
            chamber.set_temperature(99.0)
        assert chamber_sim.received == before  # the refused command never reached the bus
    finally:
        bus.stop()
