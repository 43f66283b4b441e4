"""rig.build's hardware path with every instrument emulated by the machinery of the other tests.

A real-rig description like ``rig/envs/example-real-rig.yaml`` (SCPI emulator and pack supply,
NI-DAQmx DAQ, Modbus chamber, CAN port) is built by :func:`rig.build.build_rig`, the code a
lab's ``bmsrig run`` uses: the drivers activate through labgrid, the rig reports its
instruments for the record, and its safe state reaches every instrument.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import yaml

from rig.build import build_rig
from rig.clock import WallClock
from rig.context import context_of

from .chamber_server import PV_REG, SP_REG, ChamberServer
from .fake_daqmx import FakeDaqmx


@pytest.fixture
def chamber_server():
    srv = ChamberServer(pv_c=25.0, sp_c=25.0).start()
    yield srv
    srv.stop()


@pytest.mark.parametrize("reverse", [False, True], ids=["as-written", "drivers-reversed"])
def test_build_rig_hardware_path_with_emulated_instruments(tmp_path, scpi_library, chamber_server, board_profile,
                                                           monkeypatch, reverse):
    """The same rig whatever order its drivers are listed (and so activated) in."""
    import nidaqmx.utils

    daq_dev = FakeDaqmx()
    daq_dev.volts = np.full(16, 3.3)
    monkeypatch.setattr(nidaqmx.utils, "_select_interpreter", lambda *a, **k: daq_dev)
    env = {
        "imports": ["rig.labgrid"],
        "targets": {"main": {
            "resources": [
                {"ScpiInstrument": {"name": "emulator", "address": "TCPIP::192.0.2.10::INSTR", "visa_library": scpi_library,
                                    "model": "16-channel cell simulator", "serial": "CS16-00042",
                                    "calibration_due": "2027-03-31"}},
                {"ScpiInstrument": {"name": "pack_supply", "address": "TCPIP::192.0.2.11::INSTR",
                                    "visa_library": scpi_library, "model": "bidirectional DC supply", "serial": "BD80-1177"}},
                {"NiDaqDevice": {"device": "Dev1", "serial": "1F2E3D4C", "voltage_channels": "Dev1/ai0:15",
                                 "digital_lines": {"hvc_out": "Dev1/port0/line2"}, "thermocouples": {}}},
                {"ModbusChamberPort": {"host": "127.0.0.1", "port": chamber_server.port, "serial": "CH-3300",
                                       "setpoint_register": SP_REG, "pv_register": PV_REG}},
                {"CANPort": {"interface": "virtual", "channel": f"bmsrig-{uuid.uuid4().hex}", "bitrate": 500000}},
            ],
            "drivers": [
                {"ScpiCellEmulatorDriver": {"name": "emulator", "bindings": {"res": "emulator"}, "channels": 16,
                                            "voltage_range_v": [0.0, 4.5]}},
                {"ScpiPackSourceDriver": {"name": "pack_supply", "bindings": {"res": "pack_supply"}}},
                {"NiDaqDriver": {"channels": 16}},
                {"ModbusChamberDriver": {"temperature_range_c": [-40.0, 85.0], "timeout_s": 0.5}},
                {"CanLinkDriver": {}},
            ],
        }},
    }
    if reverse:
        env["targets"]["main"]["drivers"].reverse()
        env["targets"]["main"]["resources"].reverse()
    env_path = tmp_path / "real-rig.yaml"
    env_path.write_text(yaml.safe_dump(env, sort_keys=False))

    rig = build_rig(env_path, board_profile)
    try:
        assert rig.kind == "hardware" and isinstance(rig.clock, WallClock) and rig.seed is None
        assert not hasattr(rig.target, "bmsrig") and context_of(rig.target).clock is rig.clock
        roles = {i.role: i for i in rig.instruments()}
        assert set(roles) == {"cell emulator", "pack current source", "thermal chamber", "reference DAQ"}
        assert roles["cell emulator"].extra["idn"].startswith("BMSRIG-SIM,CS16")
        assert roles["reference DAQ"].extra["product_type"] == "PXIe-4300"

        rig.emulator.set_voltages(np.full(16, 3.45))
        rig.pack_source.set_current(5.0, voltage_limit_v=58.0)
        rig.chamber.set_temperature(45.0)
        np.testing.assert_allclose(rig.daq.read_cell_voltages(samples=4), 3.3)

        rig.safe_state()
        np.testing.assert_allclose(rig.emulator.read_voltages(), np.full(16, 3.3))
        assert rig.pack_source.read_current() == 0.0
        assert chamber_server.sp == 25.0
    finally:
        rig.close()
    assert daq_dev.open_tasks() == [] and daq_dev.unmodelled == []
