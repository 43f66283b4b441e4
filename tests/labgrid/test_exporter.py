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
    address: TCPIP::192.0.2.10::INSTR
    calibration_due: 2027-03-31
  can:
    cls: CANPort
    interface: virtual
    channel: "@bench"
  chamber:
    cls: ModbusChamberPort
    host: 192.0.2.20
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

    assert all(exports[n] is ProjectResourceExport for n in names)
    assert exports["RawSerialPort"] is not ProjectResourceExport  # labgrid's own exports are kept


def test_exporter_serves_project_resources_through_a_real_coordinator(exporter, session):
    """The exporter survives dict and date parameters and a bad resource; the client rebuilds
    each resource from what the coordinator carries."""
    proc = exporter("rig-a", EXPORTER_CONFIG)
    found = session.wait_resources("rig-a", 6, proc)
    assert proc.poll() is None, proc.log.read_text()  # still running
    daq = found[("bench-a", "daq")]
    assert daq.cls == "NiDaqDevice" and daq.avail
    assert daq.args["calibration_due"] == "2027-03-31"
    assert json.loads(daq.args["digital_lines"])["charge_enable"] == "Dev1/port0/line0"
    rebuilt = target_factory.resources["NiDaqDevice"](target=None, name=None, **daq.args)
    assert rebuilt.digital_lines == {"charge_enable": "Dev1/port0/line0", "discharge_enable": "Dev1/port0/line1"}
    assert rebuilt.thermocouples == {"pack": "Dev1/ai16"} and rebuilt.serial == "01A2B3C4"
    for key, cls in (("emulator", "ScpiInstrument"), ("can", "CANPort"), ("chamber", "ModbusChamberPort"),
                     ("bench", "SimBench")):
        entry = found[("bench-a", key)]
        assert entry.cls == cls and entry.avail
        target_factory.resources[cls](target=None, name=None, **entry.args)
    bad = found[("bench-a", "bad")]
    assert not bad.avail and "bogus_key" in bad.extra.get("broken", "")
