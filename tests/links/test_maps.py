"""Signal maps and register maps: every mistake is a ConfigError naming file, key, problem."""

from __future__ import annotations

import copy

import pytest
import yaml

from rig.errors import ConfigError
from rig.links.register_map import blocks, compile_register_map
from rig.links.signal_map import compile_signal_map

from .conftest import OBX_DBC, OBX_MAP, REF_DBC, REF_MAP, REF_REGS


def write_map(tmp_path, base, edit, name="map.yaml"):
    raw = copy.deepcopy(yaml.safe_load(base.read_text()))
    edit(raw)
    p = tmp_path / name
    p.write_text(yaml.safe_dump(raw))
    return p


def config_error(fn, *args) -> ConfigError:
    with pytest.raises(ConfigError) as ei:
        fn(*args)
    return ei.value


# ----------------------------------------------------------------- signal maps


def test_shipped_maps_compile():
    for n in (1, 4, 16, 32, 64):
        plan = compile_signal_map(REF_MAP, REF_DBC, n)
        assert len(plan.cell_v.slots) == n and len(plan.temps.slots) == n + 1
    assert compile_signal_map(OBX_MAP, OBX_DBC, 16).sample_on == "OBX_Summary"


def test_signal_not_in_dbc_names_the_dbc_and_key(tmp_path):
    p = write_map(tmp_path, REF_MAP, lambda m: m["flags"].update(hvc="Flag_HVX"))
    e = config_error(compile_signal_map, p, REF_DBC, 16)
    assert e.file == str(p) and e.key == "flags.hvc"
    assert "Flag_HVX" in e.problem and "reference-bms.dbc" in e.problem and "Flag_HVC" in e.problem  # suggestion


def test_template_without_enough_cells_names_the_count(tmp_path):
    e = config_error(compile_signal_map, OBX_MAP, OBX_DBC, 20)
    assert e.key == "cells.voltage.template"
    assert "20 cells" in e.problem and "Cell17_mV" in e.problem and "other-bms.dbc" in e.problem
    e = config_error(compile_signal_map, REF_MAP, REF_DBC, 65)
    assert e.key == "cells.voltage.template" and "Cell65_Voltage" in e.problem


def test_explicit_list_must_match_the_profile(tmp_path):
    p = write_map(tmp_path, OBX_MAP, lambda m: m["cells"].update(voltage={"signals": [f"Cell{i}_mV" for i in range(1, 13)]}))
    e = config_error(compile_signal_map, p, OBX_DBC, 16)
    assert e.key == "cells.voltage.signals" and "12 signals" in e.problem and "16 cells" in e.problem


def test_bad_yaml_names_the_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("sample_on: BMS_Status\ncells:\n  voltage: {template: 'Cell{i}_Voltage'\n")
    e = config_error(compile_signal_map, p, REF_DBC, 4)
    assert e.file == str(p) and e.key.startswith("line ") and "not valid YAML" in e.problem


@pytest.mark.parametrize("edit, key, words", [
    (lambda m: m["cells"]["voltage"].update(tempalte="x"), "cells.voltage.tempalte", "unknown key"),
    (lambda m: m.pop("sample_on"), "sample_on", "required"),
    (lambda m: m.update(sample_on="BMS_Nope"), "sample_on", "BMS_Nope"),
    (lambda m: m["cells"]["voltage"].update(signals=["a"]), "cells.voltage", "exactly one of"),
    (lambda m: m["cells"]["voltage"].update(template="Cell{n}_Voltage"), "cells.voltage.template", "{i}"),
    (lambda m: m["cells"]["voltage"].update(unit="kV"), "cells.voltage.unit", "unknown voltage unit"),
    (lambda m: m["fets"].update(charge={"signal": "ChargeFET", "invert": True, "closed_value": 0}), "fets.charge", "not both"),
    (lambda m: m["identity"]["fw_version"].update(format="{major}.{minor}.{build}"), "identity.fw_version.format", "{build}"),
    (lambda m: m["cells"]["balancing"].update(mask="PackVoltage"), "cells.balancing.mask", "16 bits"),
    (lambda m: m["flags"].update(hvc={"signal": "Flag_HVC", "bit": 3}), "flags.hvc.bit", "outside"),
    (lambda m: m.update(timeout_s=-1), "timeout_s", "greater than 0"),
])
def test_schema_and_dbc_errors_name_the_key(tmp_path, edit, key, words):
    p = write_map(tmp_path, REF_MAP, edit)
    e = config_error(compile_signal_map, p, REF_DBC, 32)
    assert e.key == key, e
    assert words in e.problem, e


def test_dbc_unit_unknown_asks_for_unit(tmp_path):
    dbc = tmp_path / "u.dbc"
    dbc.write_text(REF_DBC.read_text().replace('(0.0001,0) [0|6.5535] "V"', '(0.0001,0) [0|6.5535] "Volt"'))
    e = config_error(compile_signal_map, REF_MAP, dbc, 4)
    assert e.key == "cells.voltage" and "'Volt'" in e.problem and "unit:" in e.problem


def test_ambiguous_signal_must_be_qualified(tmp_path):
    dbc = tmp_path / "amb.dbc"
    dbc.write_text(REF_DBC.read_text().replace(
        'BO_ 289 BMS_BoardTemperatures: 8 BMS\n SG_ BleedResistor_Temp : 0|16@1- (0.1,0) [-40|200] "degC" RIG',
        'BO_ 289 BMS_BoardTemperatures: 8 BMS\n SG_ BleedResistor_Temp : 0|16@1- (0.1,0) [-40|200] "degC" RIG\n'
        ' SG_ Flag_HVC : 16|1@1+ (1,0) [0|1] "" RIG'))
    e = config_error(compile_signal_map, REF_MAP, dbc, 4)
    assert e.key == "flags.hvc" and "BMS_Status.Flag_HVC" in e.problem
    p = write_map(tmp_path, REF_MAP, lambda m: m["flags"].update(hvc="BMS_Status.Flag_HVC"))
    assert compile_signal_map(p, dbc, 4).flags["hvc"] is not None


def test_malformed_dbc_names_the_dbc(tmp_path):
    dbc = tmp_path / "broken.dbc"
    dbc.write_text(REF_DBC.read_text().replace("BO_ 257 BMS_Balancing: 8 BMS", "BO_ 257 BMS_Balancing 8 BMS"))
    e = config_error(compile_signal_map, REF_MAP, dbc, 4)
    assert e.file == str(dbc) and "not a valid DBC" in e.problem
    e = config_error(compile_signal_map, REF_MAP, tmp_path / "missing.dbc", 4)
    assert e.file == str(tmp_path / "missing.dbc") and "not found" in e.problem


# ----------------------------------------------------------------- register maps


def test_register_blocks_are_minimal():
    assert blocks({0, 1, 2, 9, 16, 17, 80, 83}, 125) == [(0, 84)]
    assert blocks(set(range(0, 10)) | set(range(16, 80)) | set(range(80, 144)), 125) == [(0, 125), (125, 19)]
    assert blocks({5, 300}, 125) == [(5, 1), (300, 1)]
    plan = compile_register_map(REF_REGS, 32)
    assert plan.sample_reads == [(0, 112)] and plan.identity_reads == [(200, 13)]


def test_register_map_room_for_cells(tmp_path):
    e = config_error(compile_register_map, REF_REGS, 65)
    assert e.file == str(REF_REGS) and e.key == "cells.voltage" and "65 cells" in e.problem and "64" in e.problem
    p = write_map(tmp_path, REF_REGS, lambda m: (m["cells"]["voltage"].pop("max_cells"),
                                                 m["temperatures"]["cells"].pop("max_cells")))
    e = config_error(compile_register_map, p, 65)
    assert e.key == "temperatures.cells" and "register 80" in e.problem and "cells.voltage" in e.problem


@pytest.mark.parametrize("edit, key, words", [
    (lambda m: m["cells"]["voltage"].update(type="float16"), "cells.voltage.type", "uint16"),
    (lambda m: m["flags"]["hvc"].update(bit=16), "flags.hvc.bit", "less than or equal to 15"),
    (lambda m: m["flags"]["lvc"].update(bit=0), "flags.lvc", "bit 0 of register 0 is also used by flags.hvc"),
    (lambda m: m["pack"]["voltage"].update(address=16), "pack.voltage", "register 16 is also used by cells.voltage"),
    (lambda m: m["identity"]["serial"].pop("count"), "identity.serial", "count"),
    (lambda m: m.update(table="coils"), "table", "holding"),
    (lambda m: m["temperatures"]["cells"].update(unit="F"), "temperatures.cells.unit", "unknown temperature unit"),
    (lambda m: m["identity"]["fw_version"].update(format="{major}.{minr}"), "identity.fw_version.format", "{minr}"),
])
def test_register_map_errors_name_the_key(tmp_path, edit, key, words):
    p = write_map(tmp_path, REF_REGS, edit)
    e = config_error(compile_register_map, p, 16)
    assert e.key == key, e
    assert words in e.problem, e
