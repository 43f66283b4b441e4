"""Every project resource exportable through a real labgrid coordinator and bmsrig-exporter."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import yaml
from labgrid.factory import target_factory

import rig.labgrid  # noqa: F401  (the project's resource classes, as labgrid-client would import them)
from rig.exporter import ProjectResourceExport, project_resources, register_exports
from rig.resources import iso_date, json_dict, wire_value

EXPORTER_CONFIG = """
bench-a:
  daq:
    cls: NiDaqDevice
    device: Dev1
    voltage_channels: Dev1/ai0:15
    digital_lines: {charge_enable: Dev1/port0/line0, discharge_enable: Dev1/port0/line1}
    thermocouples: {pack: Dev1/ai16}
    model: NI USB-6363
    serial: 01A2B3C4
    calibration_due: 2027-03-31
  emulator:
    cls: ScpiInstrument
    address: TCPIP::127.0.0.1::{scpi_port}::SOCKET
    calibration_due: 2027-03-31
  supply:
    cls: ScpiInstrument
    address: TCPIP::127.0.0.1::{closed_port}::SOCKET
  can:
    cls: CANPort
    interface: virtual
    channel: "@bench"
  chamber:
    cls: ModbusChamberPort
    serial_port: /dev/ttyNOSUCHPORT
  bench:
    cls: SimBench
    ambient_c: 23.5
  bad:
    cls: NiDaqDevice
    bogus_key: 1
"""


def test_wire_values_and_converters_round_trip():
    assert iso_date(dt.date(2027, 3, 31)) == "2027-03-31" and iso_date("2027-03-31") == "2027-03-31"
    assert iso_date(None) is None
    lines = {"charge_enable": "Dev1/port0/line0"}
    assert wire_value(lines) == json.dumps(lines) and json_dict(wire_value(lines)) == lines
    assert wire_value(dt.date(2027, 3, 31)) == "2027-03-31" and wire_value(3) == 3 and wire_value(None) is None
    with pytest.raises(ValueError, match="expected a mapping"):
        json_dict("[1, 2]")


def test_a_yaml_date_and_dict_parameters_build_the_resource():
    cfg = yaml.safe_load(EXPORTER_CONFIG)["bench-a"]["daq"]
    assert isinstance(cfg["calibration_due"], dt.date)  # what YAML makes of an unquoted date
    cls = target_factory.resources["NiDaqDevice"]
    res = cls(target=None, name=None, **{k: v for k, v in cfg.items() if k != "cls"})
    assert res.calibration_due == "2027-03-31" and res.digital_lines["discharge_enable"] == "Dev1/port0/line1"


def test_every_project_resource_has_an_export():
    names = register_exports()
    assert {"NiDaqDevice", "ScpiInstrument", "CANPort", "ModbusChamberPort", "SimBench", "BenchPort"} <= set(names)
    assert "RunContext" not in names and names == project_resources()
    from labgrid.remote.exporter import exports

    assert all(issubclass(exports[n], ProjectResourceExport) for n in names)
    assert exports["RawSerialPort"] is not ProjectResourceExport  # labgrid's own exports are kept


def test_exporter_serves_project_resources_through_a_real_coordinator(exporter, session):
    """The exporter survives dict and date parameters and a bad resource; the client rebuilds
    each resource from what the coordinator carries; availability says whether the
    instrument answers on the exporter host."""
    import socket

    from .conftest import _free_port

    with socket.socket() as instrument:  # an instrument listening on the lab network
        instrument.bind(("127.0.0.1", 0))
        instrument.listen()
        config = EXPORTER_CONFIG.replace("{scpi_port}", str(instrument.getsockname()[1])).replace(
            "{closed_port}", str(_free_port()))
        proc = exporter("rig-a", config)
        found = session.wait_resources("rig-a", 7, proc)
        assert proc.poll() is None, proc.log.read_text()  # still running
        daq = found[("bench-a", "daq")]
        assert daq.cls == "NiDaqDevice" and daq.avail
        assert daq.args["calibration_due"] == "2027-03-31"
        assert json.loads(daq.args["digital_lines"])["charge_enable"] == "Dev1/port0/line0"
        rebuilt = target_factory.resources["NiDaqDevice"](target=None, name=None, **daq.args)
        assert rebuilt.digital_lines == {"charge_enable": "Dev1/port0/line0", "discharge_enable": "Dev1/port0/line1"}
        assert rebuilt.thermocouples == {"pack": "Dev1/ai16"} and rebuilt.serial == "01A2B3C4"
        for key, cls in (("emulator", "ScpiInstrument"), ("can", "CANPort"), ("bench", "SimBench")):
            entry = found[("bench-a", key)]
            assert entry.cls == cls and entry.avail, (key, entry.extra)
            target_factory.resources[cls](target=None, name=None, **entry.args)
        supply, chamber = found[("bench-a", "supply")], found[("bench-a", "chamber")]
        assert not supply.avail and "does not answer" in supply.extra["unavailable"]
        assert not chamber.avail and "/dev/ttyNOSUCHPORT does not exist" in chamber.extra["unavailable"]
        bad = found[("bench-a", "bad")]
        assert not bad.avail and "unknown key 'bogus_key'; NiDaqDevice takes" in bad.extra.get("broken", "")


def test_availability_of_a_socketcan_interface():
    from rig.exporter import availability

    can_port = target_factory.resources["CANPort"](target=None, name=None, interface="socketcan", channel="nocan9")
    assert availability(can_port) == (False, "CAN interface nocan9 does not exist on this host")
    virtual = target_factory.resources["CANPort"](target=None, name=None, interface="virtual", channel="x")
    assert availability(virtual) == (True, None)


def test_labgrid_client_knows_the_project_classes_with_rig_labgrid_imported(coordinator, exporter, session, tmp_path):
    """A place holding a CANPort: plain labgrid-client cannot build its target (unknown
    class); with rig.labgrid imported (python -m rig.lgclient, or a rig file's imports:)
    it can, and only the missing power driver is left to complain about."""
    import shutil
    import subprocess
    import sys

    from .conftest import _env

    proc = exporter("rig-e", "bench-e:\n  can:\n    cls: CANPort\n    interface: virtual\n    channel: vcan-e\n")
    session.wait_resources("rig-e", 1, proc)
    env = dict(_env(), LG_COORDINATOR=session.address.replace("ipv4:", ""), LG_PLACE="bench-e")
    plain = [shutil.which("labgrid-client")]
    ours = [sys.executable, "-m", "rig.lgclient"]
    for cmd in (["create"], ["add-match", "rig-e/bench-e/*"], ["acquire"]):
        subprocess.run(plain + cmd, env=env, check=True, capture_output=True, timeout=60)
    unknown = subprocess.run(plain + ["power", "get"], env=env, capture_output=True, text=True, timeout=60)
    assert "unknown resource class CANPort" in unknown.stderr
    known = subprocess.run(ours + ["power", "get"], env=env, capture_output=True, text=True, timeout=60,
                           cwd=tmp_path)
    assert known.returncode != 0 and "unknown resource class" not in known.stderr, known.stderr
    assert "target has no compatible resource available" in known.stderr, known.stderr  # no power switch
    subprocess.run(plain + ["release"], env=env, check=True, capture_output=True, timeout=60)


def test_list_parameters_cross_the_coordinator_and_back():
    """BS1200Bus units and PickeringLxi modules (lists of mappings, with dates) are carried as
    JSON text and read back by the resources' own converters."""
    bs = target_factory.resources["BS1200Bus"]
    units = [{"box_id": 1, "channels": 12, "serial": "BS-1", "calibration_due": dt.date(2027, 3, 31)},
             {"box_id": 2, "channels": [1, 2, 3, 4]}]
    local = bs(target=None, name=None, units=units)
    remote = bs(target=None, name=None, units=wire_value(local.units))
    assert remote.units == local.units and remote.units[1]["channels"] == (1, 2, 3, 4)
    assert remote.units[0]["calibration_due"] == "2027-03-31"
    lxi = target_factory.resources["PickeringLxi"]
    mods = lxi(target=None, name=None, address="10.0.0.5", modules=[{"bus": 1, "device": 15, "channels": 6}])
    assert lxi(target=None, name=None, address="10.0.0.5", modules=wire_value(mods.modules)).modules == mods.modules
    with pytest.raises(ValueError, match="BS1200Bus.units: not a list and not JSON text"):
        bs(target=None, name=None, units="[{broken")
