"""Modbus chamber driver against a real pymodbus TCP server emulating a chamber controller.

The server listens on 127.0.0.1 on an ephemeral port (loopback only) and is stopped after
each test; the rig is built from a labgrid environment YAML and its VirtualClock's advance
function is the chamber's physics (PV moves toward SP at the ramp rate).
"""

from __future__ import annotations

import socket

import pytest

from rig.clock import VirtualClock
from rig.errors import RigFault, SafetyLimitError
from rig.protocols import ThermalChamber

from .chamber_server import PV_REG, RAMP_REG, SP_REG, ChamberServer


@pytest.fixture
def server():
    srv = ChamberServer(pv_c=25.0, sp_c=25.0).start()
    yield srv
    srv.stop()


def _env(port, host="127.0.0.1", **driver):
    resources = [{"ModbusChamberPort": {"name": "chamber", "host": host, "port": port, "unit_id": 1,
                                        "setpoint_register": SP_REG, "pv_register": PV_REG, "scale": 10.0,
                                        "model": "climatic chamber, Modbus TCP controller", "serial": "CH-3300"}}]
    drivers = [{"ModbusChamberDriver": {"temperature_range_c": [-40.0, 85.0], "max_ramp_c_per_min": 3.0,
                                        "timeout_s": 0.5, "retries": 0, **driver}}]
    return resources, drivers


@pytest.fixture
def world(server):
    """A VirtualClock whose world is the emulated chamber."""
    state = {"t": 0.0}

    def advance(dt):
        server.advance(dt)
        state["t"] += dt

    return VirtualClock(advance, lambda: state["t"])


@pytest.fixture
def chamber(server, world, make_target):
    return make_target(*_env(server.port, ramp_register=RAMP_REG), clock=world).get_driver(ThermalChamber)


def test_set_point_is_written_scaled_and_signed(chamber, server):
    chamber.set_temperature(-20.5)
    assert server.sp == -20.5
    chamber.set_temperature(60.0, ramp_c_per_min=2.5)
    assert server.sp == 60.0 and server.ramp == 2.5
    assert chamber.read_setpoint() == 60.0


@pytest.mark.parametrize("pv", [-38.7, -0.1, 0.0, 23.4, 84.9])
def test_process_value_read_including_negative(chamber, server, pv):
    server.pv = pv
    assert chamber.read_temperature() == pytest.approx(pv)


def test_sensor_break_code_is_a_rig_fault(chamber, server):
    server.set_raw_pv(0x8000)
    with pytest.raises(RigFault, match=r"thermal chamber 'chamber'.*sensor break"):
        chamber.read_temperature()


@pytest.mark.parametrize(
    "celsius, ramp", [(85.1, None), (-40.5, None), (float("nan"), None), (40.0, 3.5), (40.0, -1.0)],
    ids=["hot", "cold", "nan", "ramp-too-fast", "ramp-negative"],
)
def test_limits_refused_before_any_write(chamber, server, celsius, ramp):
    chamber.set_temperature(30.0, ramp_c_per_min=1.0)
    with pytest.raises(SafetyLimitError, match="nothing was sent"):
        chamber.set_temperature(celsius, ramp_c_per_min=ramp)
    assert server.sp == 30.0 and server.ramp == 1.0  # neither register was touched


def test_activation_adopts_the_controllers_set_point(server, world, make_target):
    server.sp = -10.0
    server.pv = -10.0
    chamber = make_target(*_env(server.port), clock=world).get_driver(ThermalChamber)
    assert chamber.wait_stable(tolerance_c=0.5, dwell_s=30.0) == pytest.approx(30.0)  # stable at -10, not "25"


def test_wait_stable_follows_the_ramp_on_the_rig_clock(chamber, server, world):
    chamber.set_temperature(-15.0, ramp_c_per_min=2.0)  # 40 °C down at 2 °C/min: 20 min
    waited = chamber.wait_stable(tolerance_c=0.5, dwell_s=60.0, timeout_s=3600.0)
    # within 0.5 °C after 19.75 min; first poll inside the band at 1185 s (5 s polls), then 60 s dwell
    assert waited == pytest.approx(1185.0 + 60.0)
    assert world.now() == pytest.approx(waited)
    assert chamber.read_temperature() == pytest.approx(-15.0)


def test_wait_stable_times_out_as_a_rig_fault(chamber, server, world):
    chamber.set_temperature(80.0, ramp_c_per_min=1.0)  # 55 °C at 1 °C/min: not in 10 min
    with pytest.raises(RigFault, match=r"not stable within ±0.5 °C of 80 °C after 600 s \(process value 35 °C\)"):
        chamber.wait_stable(tolerance_c=0.5, dwell_s=60.0, timeout_s=600.0)
    assert world.now() == pytest.approx(600.0)


def test_safe_state_sets_ambient_and_never_raises(chamber, server):
    chamber.set_temperature(-30.0)
    chamber.safe_state()
    assert server.sp == 25.0
    server.stop()  # the controller goes away
    chamber.safe_state()
    with pytest.raises(RigFault, match=r"thermal chamber 'chamber' \(.*127.0.0.1:\d+.*\): process value read \(input register 100\) failed: ConnectionException"):
        chamber.read_temperature()
    chamber.on_deactivate()
    chamber.safe_state()


def _closed_port():
    with socket.socket() as s:  # bind and release: nothing listens there now
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_failure_is_a_rig_fault_naming_the_chamber(make_target):
    port = _closed_port()
    target = make_target(*_env(port))
    with pytest.raises(RigFault, match=rf"thermal chamber 'chamber' \(climatic chamber, Modbus TCP controller, 127.0.0.1:{port}, device 1\): cannot connect"):
        target.get_driver(ThermalChamber)


def test_wrong_device_id_is_a_rig_fault(server, world, make_target):
    res, drv = _env(server.port)
    res[0]["ModbusChamberPort"]["unit_id"] = 7
    with pytest.raises(RigFault, match=r"device 7\): set point read \(holding register 300\) failed"):
        make_target(res, drv, clock=world).get_driver(ThermalChamber)
