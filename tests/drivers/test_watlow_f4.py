"""Watlow F4 driver: the vendor library ``watlow-f4`` (minimalmodbus) end to end against a
simulated F4 speaking Modbus RTU on a pseudo-terminal (tests/drivers/chamber_sims.py).

The F4's thermal response runs on the StepClock (PV approaches SP at the ramp rate), so
wait-stable is exercised in virtual time. The library itself sleeps 0.1 s of wall time
after every set-point write (its read-back check) and minimalmodbus waits the RTU
inter-frame silence (a few ms) before each request.
"""

from __future__ import annotations

import pytest

pytest.importorskip("watlow_f4", reason="vendor library missing: pip install 'bmsrig[watlow-f4]'")

from rig.errors import RigFault, SafetyLimitError  # noqa: E402
from rig.protocols import ThermalChamber  # noqa: E402

from .chamber_sims import F4Sim  # noqa: E402

RAMP_REG = 310


@pytest.fixture
def f4(step_clock):
    sim = F4Sim(pv_c=25.0, sp_c=25.0, ramp_register=RAMP_REG).start()
    step_clock.on_step.append(sim.on_step)
    yield sim
    sim.stop()


def _env(port, **driver):
    resources = [{"WatlowF4Port": {"name": "chamber", "port": port, "address": 1, "model": "Watlow F4 (test chamber)",
                                   "serial": "F4-0042", "calibration_due": "2027-05-31"}}]
    drivers = [{"WatlowF4ChamberDriver": {"temperature_range_c": [-40.0, 85.0], "max_ramp_c_per_min": 3.0,
                                          "ambient_c": 23.0, **driver}}]
    return resources, drivers


@pytest.fixture
def chamber(f4, make_target):
    return make_target(*_env(f4.port, ramp_register=RAMP_REG)).get_driver(ThermalChamber)


def test_set_point_and_ramp_reach_the_f4_registers(chamber, f4):
    chamber.set_temperature(-20.5, ramp_c_per_min=2.5)
    assert f4.sp == -20.5 and f4.ramp == 2.5
    assert (300, -205) in f4.writes and (RAMP_REG, 25) in f4.writes
    assert chamber.read_setpoint() == -20.5
    chamber.set_temperature(40.04)  # sent in the register's 0.1 °C step
    assert f4.sp == 40.0


@pytest.mark.parametrize("pv", [-38.7, -0.1, 0.0, 23.4, 84.9])
def test_process_value_read_including_negative(chamber, f4, pv):
    f4.pv = pv
    assert chamber.read_temperature() == pytest.approx(pv)


@pytest.mark.parametrize(
    "celsius, ramp", [(85.1, None), (-40.5, None), (float("nan"), None), (40.0, 3.5), (40.0, -1.0), (40.0, float("inf"))],
    ids=["hot", "cold", "nan", "ramp-too-fast", "ramp-negative", "ramp-inf"],
)
def test_beyond_limit_reaches_nothing(chamber, f4, celsius, ramp):
    chamber.set_temperature(30.0, ramp_c_per_min=1.0)
    before = list(f4.writes)
    with pytest.raises(SafetyLimitError, match="nothing was sent"):
        chamber.set_temperature(celsius, ramp_c_per_min=ramp)
    assert f4.writes == before  # no register written, not even the ramp of a refused pair
    assert f4.sp == 30.0 and f4.ramp == 1.0


def test_limits_are_set_once(chamber):
    for name, value in (("temperature_range_c", (-100.0, 200.0)), ("max_ramp_c_per_min", 50.0), ("ambient_c", 80.0)):
        with pytest.raises(AttributeError, match="hard limit fixed when the rig was built"):
            setattr(chamber, name, value)
    assert chamber.temperature_range_c == (-40.0, 85.0) and chamber.max_ramp_c_per_min == 3.0


def test_wait_stable_follows_the_ramp_on_the_rig_clock(chamber, f4, step_clock):
    chamber.set_temperature(-15.0, ramp_c_per_min=2.0)  # 40 °C down at 2 °C/min: 20 min
    waited = chamber.wait_stable(tolerance_c=0.5, dwell_s=60.0, timeout_s=3600.0)
    # within 0.5 °C after 19.75 min; first poll inside the band at 1185 s (5 s polls), then 60 s dwell
    assert waited == pytest.approx(1185.0 + 60.0)
    assert step_clock.now() == pytest.approx(waited)
    assert chamber.read_temperature() == pytest.approx(-15.0)


def test_wait_stable_times_out_as_a_rig_fault(chamber, f4, step_clock):
    chamber.set_temperature(80.0, ramp_c_per_min=1.0)
    with pytest.raises(RigFault, match=r"not stable within ±0.5 °C of 80 °C after 600 s \(process value 35 °C\)"):
        chamber.wait_stable(tolerance_c=0.5, dwell_s=60.0, timeout_s=600.0)


def test_without_ramp_register_a_ramp_is_checked_but_not_sent(f4, make_target, caplog):
    chamber = make_target(*_env(f4.port)).get_driver(ThermalChamber)
    with pytest.raises(SafetyLimitError):
        chamber.set_temperature(40.0, ramp_c_per_min=9.0)
    chamber.set_temperature(40.0, ramp_c_per_min=1.0)
    assert f4.writes == [(300, 400)] and "not enforced" in caplog.text


def test_activation_adopts_the_controllers_set_point_and_info(f4, make_target):
    f4.sp = f4.pv = -10.0
    chamber = make_target(*_env(f4.port)).get_driver(ThermalChamber)
    assert chamber.wait_stable(tolerance_c=0.5, dwell_s=30.0) == pytest.approx(30.0)  # stable at -10, not ambient
    info = chamber.info()
    assert (info.model, info.serial, info.calibration_due) == ("Watlow F4 (test chamber)", "F4-0042", "2027-05-31")
    assert f4.port in info.notes


def test_sensor_break_is_a_rig_fault(chamber, f4):
    f4.raw_pv = 0x8000
    with pytest.raises(RigFault, match=r"thermal chamber 'chamber'.*sensor break"):
        chamber.read_temperature()


def test_safe_state_sets_ambient_and_never_raises(chamber, f4):
    chamber.set_temperature(-30.0)
    chamber.safe_state()
    assert f4.sp == 23.0
    f4.silent = True  # the controller stops answering
    chamber.safe_state()
    with pytest.raises(RigFault, match=r"thermal chamber 'chamber' \(Watlow F4 \(test chamber\), /dev/pts/\d+, Modbus address 1\): process value read failed"):
        chamber.read_temperature()


def test_wrong_address_is_a_rig_fault_at_activation(f4, make_target):
    res, drv = _env(f4.port)
    res[0]["WatlowF4Port"]["address"] = 7
    with pytest.raises(RigFault, match=r"Modbus address 7\): set point read failed"):
        make_target(res, drv).get_driver(ThermalChamber)


def test_ambient_outside_the_range_is_refused_at_construction(f4, make_target):
    with pytest.raises(Exception, match=r"ambient_c: safe-state value 90 °C is outside the hard limit temperature_range_c \[-40, 85\] °C"):
        make_target(*_env(f4.port, ambient_c=90.0))


def test_missing_vendor_library_names_the_extra(f4, make_target, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "watlow_f4", None)  # import watlow_f4 -> ImportError
    with pytest.raises(RigFault, match=r"vendor library 'watlow-f4' is not installed .*pip install 'bmsrig\[watlow-f4\]'"):
        make_target(*_env(f4.port)).get_driver(ThermalChamber)
    assert f4.writes == []
