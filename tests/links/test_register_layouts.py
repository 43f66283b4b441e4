"""Register layouts real boards use: byte halves, bit ranges, 32-bit word orders, flags as
bit-ORs and value sets; and every mistake in a map is a ConfigError naming file, key, problem."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml

from rig.errors import ConfigError
from rig.links.kinds.modbus import check_maps
from rig.links.modbus_link import ModbusBmsLink
from rig.links.register_map import compile_register_map
from rig.profile import PROFILE_DIR, load_profile
from rig.sim.modbus_slave import ModbusSlave

from .conftest import make_telemetry

COILS_MAP = PROFILE_DIR / "example-bms-modbus-coils.yaml"
COILS_PROFILE = PROFILE_DIR / "example-4s-lfp-modbus-coils.yaml"

PACKED = {
    "table": "holding",
    "cells": {"voltage": {"address": 0, "unit": "mV"}},
    "temperatures": {"sensors": [
        {"address": 10, "type": "int8", "halves": "high_first", "sensors": 3, "unit": "degC"},
        {"address": 12, "type": "int16", "bits": [4, 11], "unit": "degC"},
    ]},
    "flags": {
        "hvc": {"address": 20, "bits": [0, 3]},                       # any bit of a nibble
        "lvc": {"address": 20, "bit": 4, "active_value": 0},
        "ot": {"any": [{"address": 21, "bit": 0}, {"address": 21, "bit": 9}]},
        "ut": {"address": 22, "byte": "high", "values": [2, 5]},
    },
    "fets": {
        "charge": {"address": 23, "bits": [0, 1], "choices": {0: "open", 1: "closed", 2: "welded", 3: "fault"},
                   "values": ["closed", "welded"]},
        "discharge": {"address": 23, "bit": 2, "closed_value": 0},
    },
    "pack": {"voltage": {"address": 30, "type": "uint32", "word_order": "little", "scale": 0.001, "unit": "V"},
             "current": {"address": 32, "type": "int32", "unit": "mA"}},
}


@pytest.fixture
def packed(tmp_path):
    p = tmp_path / "packed.yaml"
    p.write_text(yaml.safe_dump(PACKED))
    return p


def holding(plan, words: dict[int, int], n: int = 4) -> dict:
    """The board's holding registers as the link reads them: cells 3300 + i mV, then ``words``."""
    tables = plan.new_image()
    tables[3][:n] = 3300 + np.arange(n)
    for a, w in words.items():
        tables[3][a] = w
    return tables


def test_halves_bits_and_word_orders_decode_as_the_datasheet_says(packed):
    plan = compile_register_map(packed, 4)
    regs = holding(plan, {10: 0xFE05, 11: 0x80AA, 12: 0x0F60, 20: 0b0_0100, 21: 1 << 9, 22: 0x05FF, 23: 0b010,
                    30: 0x5678, 31: 0x1234, 32: 0xFFFF, 33: 0xFFF6})
    cell_v, temps, _, flags, fets, pack_v, pack_a, _ = plan.decode_sample(regs)
    assert cell_v == pytest.approx([3.300, 3.301, 3.302, 3.303])
    # 0xFE high = -2, 0x05 low = 5, 0x80 high of the next = -128; bits 4..11 of 0x0F60 = 0xF6 = -10
    assert list(temps) == [-2.0, 5.0, -128.0, -10.0]
    assert flags == {"hvc": True, "lvc": True, "ot": True, "ut": True}
    assert fets == {"charge": True, "discharge": True}          # welded conducts; bit 2 = 0 means closed
    assert pack_v == pytest.approx(0x12345678 * 0.001)          # low word first
    assert pack_a == pytest.approx(-0.010)                      # high word first (the map's default)


def test_the_opposite_words_clear_every_flag(packed):
    plan = compile_register_map(packed, 4)
    regs = holding(plan, {20: 0b1_0000, 21: 0b1_0111_1110, 22: 0x0305, 23: 0b111})
    _, _, _, flags, fets, _, _, _ = plan.decode_sample(regs)
    assert flags == {"hvc": False, "lvc": False, "ot": False, "ut": False}
    assert fets == {"charge": False, "discharge": False}        # 3 = fault is not closed; bit 2 = 1 is open


@pytest.mark.parametrize("state", [
    dict(hvc=True, lvc=False, ot=True, ut=False, charge_fet=True, discharge_fet=False),
    dict(hvc=False, lvc=True, ot=False, ut=True, charge_fet=False, discharge_fet=True),
])
def test_packed_layout_round_trips_over_rtu(packed, clock, state):
    """The simulated board writes the packed layout, the link reads it back over the pty."""
    tel = make_telemetry(4, temps_c=np.array([-2.0, 5.0, -40.0, 61.0]), pack_v=13.2, pack_a=-3.5, **state)
    with ModbusSlave(packed, 4) as board:
        board.update(tel)
        link = ModbusBmsLink("uart-dut", board.port, packed, 4, clock, response_timeout_s=0.2)
        try:
            s = link.latest()
        finally:
            link.close()
    assert list(s.temps_c) == [-2.0, 5.0, -40.0, 61.0]
    assert (s.flags.hvc, s.flags.lvc, s.flags.ot, s.flags.ut) == tuple(state[k] for k in ("hvc", "lvc", "ot", "ut"))
    assert (s.charge_fet, s.discharge_fet) == (state["charge_fet"], state["discharge_fet"])
    assert s.pack_v == pytest.approx(13.2) and s.pack_a == pytest.approx(-3.5)


def test_a_32_bit_balancing_mask_stored_high_word_first(tmp_path):
    """Balance status as a big-endian uint32 at 40..41: cells 1-16 in register 41, 17-20 in 40."""
    p = tmp_path / "mask.yaml"
    p.write_text(yaml.safe_dump({"cells": {"voltage": {"address": 0, "unit": "mV"},
                                           "balancing": {"address": 40, "registers": 2, "word_order": "high_first"}}}))
    plan = compile_register_map(p, 20)
    tables = plan.new_image()
    tables[3][40], tables[3][41] = 0b1000, 0b1000_0000_0000_0001       # cell 20; cells 16 and 1
    bal = plan.decode_sample(tables)[2]
    assert [i + 1 for i in np.flatnonzero(bal)] == [1, 16, 20]
    with pytest.raises(ConfigError) as ei:
        compile_register_map(p, 33)
    assert ei.value.key == "cells.balancing.registers" and "room for 32" in ei.value.problem


# ----------------------------------------------------------------- map errors


def edited(tmp_path, edit):
    raw = copy.deepcopy(yaml.safe_load(COILS_MAP.read_text()))
    edit(raw)
    p = tmp_path / "board-map.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def block(raw, name):
    return next(b for b in raw["blocks"] if b["name"] == name)


@pytest.mark.parametrize("edit, key, words", [
    (lambda m: m["blocks"].append({"function": 4, "start": 10, "count": 12}),
     "blocks.7", "overlap blocks.0 (0..15)"),
    (lambda m: m["blocks"][0].update(function=5), "blocks.0.function", "function code 5 is not a Modbus read"),
    (lambda m: m["blocks"][0].update(start=65530, count=10), "blocks.0", "runs past the last Modbus address"),
    (lambda m: m["pack"]["voltage"].update(address=16), "pack.voltage",
     "input registers 16..17 lie outside every declared block"),
    (lambda m: m["pack"]["current"].update(address=23), "pack.current",
     "input registers 23..24 lie outside every declared block"),
    (lambda m: block(m, "temperatures").update(count=2), "temperatures.sensors.1",
     "address 102 lies outside every declared block"),
    (lambda m: m["state"].update(address=0), "state", "blocks of function 1 and 2 and 4: say which"),
    (lambda m: m["state"].update(address=150), "state", "address 150 lies outside every declared block"),
    (lambda m: m["fets"]["discharge"].update(bits=[8, 16]), "fets.discharge.bits.1", "less than or equal to 15"),
    (lambda m: m["flags"]["hvc"].update(bit=3), "flags.hvc.bit", "discrete input 0 is one bit by itself"),
    (lambda m: m["pack"]["current"].update(function=1, address=8), "pack.current.function",
     "coils are single bits; a int32 value needs holding (3) or input (4) registers"),
    (lambda m: m["flags"]["ut"].update(address=0), "flags.ut", "discrete input 0 is also used by flags.hvc"),
    (lambda m: m["temperatures"]["sensors"][1].update(byte="low"), "temperatures.sensors.2",
     "bit 0 of register 102 is also used by temperatures.sensors.1"),
    (lambda m: m["temperatures"]["sensors"][1].pop("byte"), "temperatures.sensors.1", "needs 'byte: high'"),
    (lambda m: m["pack"]["voltage"].update(byte="high"), "pack.voltage", "type uint32 is not one"),
    (lambda m: m["fets"]["discharge"].update(values=["closed", "melted"]), "fets.discharge", "'melted'"),
    (lambda m: m["fets"]["discharge"].update(values=[0, 1, 2, 3]), "fets.discharge.values", "never be clear"),
    (lambda m: m["fets"]["discharge"].update(values=[4]), "fets.discharge.values", "does not fit 2 bit(s)"),
    (lambda m: m["cells"]["balancing"].update(registers=2), "cells.balancing", "coils are one bit per cell"),
    (lambda m: m["flags"]["ot"]["any"].append({"address": 9, "function": 2}), "flags.ot.any.2",
     "discrete input 9 lies outside every declared block (function 2: 0..7)"),
])
def test_map_errors_name_file_key_and_problem(tmp_path, edit, key, words):
    p = edited(tmp_path, edit)
    with pytest.raises(ConfigError) as ei:
        compile_register_map(p, 4)
    e = ei.value
    assert e.file == str(p) and e.key == key, e
    assert words in e.problem, e


def test_a_role_the_map_does_not_report_is_named_in_the_profile(tmp_path):
    raw = yaml.safe_load(COILS_PROFILE.read_text())
    raw["temperatures"]["ambient"] = [8]
    raw["link"]["register_map"] = str(COILS_MAP)
    p = tmp_path / "board.yaml"
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as ei:
        check_maps(load_profile(p))
    assert ei.value.file == str(p) and ei.value.key == "temperatures.ambient" and "position 8" in ei.value.problem


def test_maps_without_blocks_keep_reading_across_gaps():
    """The reference map declares no blocks: one read of 0..111 covers flags, cells and temperatures."""
    plan = compile_register_map(PROFILE_DIR / "reference-bms-modbus.yaml", 32)
    assert [(r.function, r.start, r.count) for r in plan.sample_reads] == [(3, 0, 112)]
    assert plan.served == {3: [(0, 213)]}


@pytest.mark.parametrize("body, key, words", [
    ("state: {address: 5, bits: {charge: {address: 6, bit: 0}}}\n", "state", "give 'address'"),
    ("state: {bits: {}}\n", "state", "at least one"),
    ("state: {bits: {charge: {address: 6, bit: 0}}, choices: {1: charge}}\n", "state", "no 'choices'"),
])
def test_a_one_hot_state_map_error_names_the_key(tmp_path, body, key, words):
    p = tmp_path / "state-modbus.yaml"
    p.write_text("cells: {voltage: {address: 0, unit: mV}}\n" + body)
    with pytest.raises(ConfigError) as ei:
        compile_register_map(p, 4)
    assert "state-modbus.yaml" in str(ei.value) and key in str(ei.value) and words in str(ei.value), str(ei.value)


def test_a_one_hot_state_decodes_the_first_set_flag_and_encodes_back(tmp_path):
    p = tmp_path / "onehot-modbus.yaml"
    p.write_text("cells: {voltage: {address: 0, unit: mV}}\n"
                 "state: {bits: {charge: {address: 8, bit: 1}, discharge: {address: 8, bit: 0},"
                 " rest: {address: 8, bits: [4, 5]}}}\n")
    plan = compile_register_map(p, 4)
    assert plan.capabilities().quantities >= {"state"}
    img = plan.new_image()
    for word, want in [(0b10, "charge"), (0b11, "charge"), (0b01, "discharge"), (0b100000, "rest"), (0, "unknown")]:
        img[3][8] = word
        assert plan.decode_sample(img)[-1] == want
    tel = make_telemetry(4, state="discharge")
    img = plan.new_image()
    plan.encode_telemetry(tel, img)
    assert int(img[3][8]) == 0b01 and plan.decode_sample(img)[-1] == "discharge"
