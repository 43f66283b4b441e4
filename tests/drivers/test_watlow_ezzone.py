"""Watlow EZ-Zone driver: the vendor library ``watlow`` (``TemperatureController``) end to end
against a simulated EZ-Zone PM speaking Standard Bus (BACnet MS/TP framing, CRC-8 header,
CRC-16 body, °F floats) on a pseudo-terminal (tests/drivers/chamber_sims.py).

The controller's thermal response runs on the StepClock. The library does not sleep; a
silent controller costs it three reads of the port timeout (wall time) before it gives up.
"""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("watlow", reason="vendor library missing: pip install 'bmsrig[watlow]'")

from rig.errors import RigFault, SafetyLimitError  # noqa: E402
from rig.protocols import ThermalChamber  # noqa: E402

from .chamber_sims import EZZoneSim  # noqa: E402


@pytest.fixture
def ez(step_clock):
    sim = EZZoneSim(pv_c=25.0, sp_c=25.0, default_ramp_c_per_min=2.0).start()
    step_clock.on_step.append(sim.on_step)
    yield sim
    sim.stop()


def _env(port, **driver):
    resources = [{"EZZonePort": {"name": "chamber", "port": port, "timeout_s": 0.2, "model": "Watlow EZ-Zone PM (oven)",
                                 "serial": "PM6-117", "calibration_due": "2027-02-28"}}]
    drivers = [{"EZZoneChamberDriver": {"temperature_range_c": [5.0, 120.0], "max_ramp_c_per_min": 3.0,
                                        "ambient_c": 25.0, **driver}}]
    return resources, drivers


@pytest.fixture
def chamber(ez, make_target):
    return make_target(*_env(ez.port)).get_driver(ThermalChamber)


def test_set_point_reaches_the_controller_in_fahrenheit(chamber, ez):
    chamber.set_temperature(85.0)
    assert ez.writes == [("7001", pytest.approx(185.0))]  # °F on the wire
    assert ez.sp == pytest.approx(85.0)
    assert chamber.read_setpoint() == pytest.approx(85.0, abs=1e-4)
    assert ez.bad_frames == 0  # every request carried valid CRCs


@pytest.mark.parametrize("pv", [0.5, 23.4, 119.9])
def test_process_value_read(chamber, ez, pv):
    ez.pv = pv
    assert chamber.read_temperature() == pytest.approx(pv, abs=1e-4)


@pytest.mark.parametrize(
    "celsius, ramp", [(120.1, None), (4.9, None), (float("nan"), None), (60.0, 3.5), (60.0, -1.0)],
    ids=["hot", "cold", "nan", "ramp-too-fast", "ramp-negative"],
)
def test_beyond_limit_reaches_nothing(chamber, ez, celsius, ramp):
    chamber.set_temperature(30.0)
    before = list(ez.writes)
    with pytest.raises(SafetyLimitError, match="nothing was sent"):
        chamber.set_temperature(celsius, ramp_c_per_min=ramp)
    assert ez.writes == before and ez.sp == pytest.approx(30.0)


def test_wait_stable_on_the_rig_clock(chamber, ez, step_clock):
    chamber.set_temperature(65.0, ramp_c_per_min=2.0)  # the ramp is not settable: the controller's 2 °C/min
    waited = chamber.wait_stable(tolerance_c=0.5, dwell_s=60.0, timeout_s=3600.0)
    assert waited == pytest.approx(1185.0 + 60.0)  # 40 °C at 2 °C/min, 5 s polls, 60 s dwell
    assert step_clock.now() == pytest.approx(waited)


def test_range_the_library_cannot_carry_is_refused_at_construction(ez, make_target):
    # the library drops any reading below 0 °C as a garbled frame
    with pytest.raises(Exception, match=r"temperature_range_c: set point \[-20, 120\] °C is outside the rated range \[0, 250\] °C"):
        make_target(*_env(ez.port, temperature_range_c=[-20.0, 120.0]))


def test_info_and_safe_state(chamber, ez):
    info = chamber.info()
    assert (info.model, info.serial, info.calibration_due) == ("Watlow EZ-Zone PM (oven)", "PM6-117", "2027-02-28")
    chamber.set_temperature(100.0)
    chamber.safe_state()
    assert ez.sp == pytest.approx(25.0)
    ez.silent = True
    chamber.safe_state()  # never raises
    with pytest.raises(RigFault, match=r"thermal chamber 'chamber' \(.*Standard Bus\): process value read failed: OSError: Could not communicate"):
        chamber.read_temperature()
    ez.silent = False  # back on the bus: the next command reopens the port the library closed
    ez.pv = 31.5
    assert chamber.read_temperature() == pytest.approx(31.5, abs=1e-4)


def test_missing_vendor_library_names_the_extra(ez, make_target, monkeypatch):
    monkeypatch.setitem(sys.modules, "watlow", None)
    with pytest.raises(RigFault, match=r"vendor library 'watlow' is not installed .*pip install 'bmsrig\[watlow\]'"):
        make_target(*_env(ez.port)).get_driver(ThermalChamber)
