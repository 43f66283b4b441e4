"""A Modbus board that keeps its bits in coils and discrete inputs and answers only inside its
blocks: real RTU frames (pymodbus) on a pty, every function code, exception 02 outside a block."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml
from pymodbus.client import ModbusSerialClient
from pymodbus.framer import FramerType

from rig.errors import LinkFault
from rig.links.modbus_link import ModbusBmsLink
from rig.profile import PROFILE_DIR, load_profile
from rig.sim.modbus_slave import ModbusSlave
from testplans.procedures import temperatures_of

from .conftest import make_telemetry

COILS_MAP = PROFILE_DIR / "example-bms-modbus-coils.yaml"
COILS_PROFILE = PROFILE_DIR / "example-4s-lfp-modbus-coils.yaml"
N = 4


@pytest.fixture
def board():
    """The example board's slave (temperatures placed by the example profile's roles)."""
    profile = load_profile(COILS_PROFILE)
    s = ModbusSlave(COILS_MAP, N, temperature_roles=profile.temperatures).start()
    yield s
    s.close()


@pytest.fixture
def master(board):
    """A plain pymodbus RTU master on the board's pty: what any Modbus tool would send."""
    c = ModbusSerialClient(board.port, framer=FramerType.RTU, baudrate=115200, timeout=0.2, retries=0)
    assert c.connect()
    yield c
    c.close()


def telemetry(**kw):
    base = dict(cell_v=np.array([3.301, 3.302, 3.287, 3.350]), temps_c=np.array([24.0, 25.0, 26.0, 27.0, 55.5]),
                balancing=np.array([False, True, False, True]), pack_v=13.24, pack_a=-7.5,
                serial="EXMB4-000042", hw_revision="C", fw_version="2.3.1", state="discharge")
    base.update(kw)
    return make_telemetry(N, **base)


def test_each_function_code_reads_its_table(board, master):
    """The board answers 01, 02, 03 and 04 inside its blocks with the telemetry it holds."""
    board.update(telemetry(hvc=True, ot=False, charge_fet=True, discharge_fet=False))
    coils = master.read_coils(0, count=4, device_id=1)
    assert not coils.isError() and coils.bits[:4] == [False, True, False, True]     # balancing, one coil per cell
    inputs = master.read_discrete_inputs(0, count=8, device_id=1)
    assert not inputs.isError()
    assert inputs.bits[0] is True and inputs.bits[1] is False and inputs.bits[6] is True  # HVC, LVC, charge FET
    cells = master.read_input_registers(0, count=4, device_id=1)
    assert cells.registers == [3301, 3302, 3287, 3350]                                # mV
    temps = master.read_holding_registers(100, count=4, device_id=1)
    # cell NTCs two to a register, high byte first, offset -40 degC: 24 -> 64 = 0x40, 25 -> 0x41
    assert temps.registers[0] == 0x4041 and temps.registers[1] == 0x4243
    assert temps.registers[3] == 555                                                   # bleed NTC, 0.1 degC


@pytest.mark.parametrize("fc, start, count", [
    (4, 0, 24),      # cells and pack blocks read as one: across the gap 16..19
    (4, 16, 1),      # inside the gap
    (3, 98, 4),      # starts before the temperatures block
    (1, 10, 8),      # runs past the last coil
    (2, 8, 1),       # a discrete input that does not exist
])
def test_outside_a_block_is_exception_02(board, master, fc, start, count):
    read = {1: master.read_coils, 2: master.read_discrete_inputs, 3: master.read_holding_registers,
            4: master.read_input_registers}[fc]
    rr = read(start, count=count, device_id=1)
    assert rr.isError() and rr.exception_code == 2


def test_link_reads_every_block_without_crossing_a_gap(board, clock):
    board.update(telemetry(ot=True, lvc=False, charge_fet=False, discharge_fet=True))
    link = ModbusBmsLink("uart-dut", board.port, COILS_MAP, N, clock, response_timeout_s=0.2)
    try:
        reads = [(r.function, r.start, r.count) for r in link.plan.sample_reads]
        assert reads == [(1, 0, 4), (2, 0, 7), (3, 100, 4), (3, 200, 2), (4, 0, 4), (4, 20, 4)]
        s = link.latest()
        assert link.transactions == len(reads)
        assert s.cell_v == pytest.approx([3.301, 3.302, 3.287, 3.350])
        assert list(s.balancing) == [False, True, False, True]
        assert s.flags.ot and not s.flags.lvc and not s.flags.hvc
        assert (s.charge_fet, s.discharge_fet) == (False, True)
        assert s.pack_v == pytest.approx(13.24) and s.pack_a == pytest.approx(-7.5)
        assert s.state == "discharge"
        ident = link.identity()
        assert (ident.serial, ident.hw_revision, ident.fw_version) == ("EXMB4-000042", "C", "2.3.1")
    finally:
        link.close()


def test_temperatures_by_the_profiles_roles(board, clock):
    """Four cell NTCs (8-bit halves), a FET and an ambient byte, the bleed NTC last: the
    profile's roles find each wherever the map put it."""
    profile = load_profile(COILS_PROFILE)
    board.update(telemetry())
    link = ModbusBmsLink("uart-dut", board.port, COILS_MAP, N, clock, response_timeout_s=0.2)
    try:
        s = link.latest()
    finally:
        link.close()
    assert len(s.temps_c) == 7
    assert temperatures_of(s, profile, "cells") == pytest.approx([24.0, 25.0, 26.0, 27.0])
    assert temperatures_of(s, profile, "bleed_resistor") == pytest.approx([55.5])
    assert temperatures_of(s, profile, "fet") == pytest.approx([26.0])      # bench: mean cell temperature, 1 degC steps
    assert temperatures_of(s, profile, "ambient") == pytest.approx([26.0])


def test_a_map_that_reads_across_a_gap_meets_exception_02(board, clock, tmp_path):
    """The same board, a map declaring one block over the cells and the pack: the read spans
    the registers the board does not have and the link says so."""
    raw = copy.deepcopy(yaml.safe_load(COILS_MAP.read_text()))
    raw["blocks"] = [b for b in raw["blocks"] if b["function"] != 4] + [{"function": 4, "start": 0, "count": 24}]
    p = tmp_path / "one-block.yaml"
    p.write_text(yaml.safe_dump(raw))
    link = ModbusBmsLink("uart-dut", board.port, p, N, clock, response_timeout_s=0.2)
    try:
        with pytest.raises(LinkFault, match=r"input registers 0\.\.23 .*exception 2 \(illegal data address\)"):
            link.latest()
    finally:
        link.close()


def test_a_table_the_board_lacks_is_exception_01(clock):
    """The reference map uses holding registers only: a read of coils is an illegal function."""
    with ModbusSlave(None, 4) as s:
        c = ModbusSerialClient(s.port, framer=FramerType.RTU, baudrate=115200, timeout=0.2, retries=0)
        assert c.connect()
        try:
            assert c.read_coils(0, count=1, device_id=1).exception_code == 1
            assert not c.read_holding_registers(0, count=4, device_id=1).isError()
        finally:
            c.close()


def _with_read(tmp_path, read: str | None):
    raw = copy.deepcopy(yaml.safe_load(COILS_MAP.read_text()))
    for b in raw["blocks"]:
        if read:
            b["read"] = read
    p = tmp_path / f"coils-{read or 'default'}.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


@pytest.mark.parametrize("code", [2, 3])
def test_a_board_that_answers_only_whole_blocks(clock, tmp_path, code):
    """The default reads only the used span of a block (4 of 16 cell registers): a board that
    refuses partial reads answers it with an exception; ``read: whole`` reads each block whole
    (one transaction per block) and decodes the same sample."""
    board = ModbusSlave(COILS_MAP, N, refuse_partial=code).start()
    board.update(telemetry())
    try:
        used = ModbusBmsLink("uart-dut", board.port, _with_read(tmp_path, None), N, clock, response_timeout_s=0.2)
        try:
            with pytest.raises(LinkFault, match=rf"Modbus exception {code} "):
                used.latest()
        finally:
            used.close()
        whole = ModbusBmsLink("uart-dut", board.port, _with_read(tmp_path, "whole"), N, clock, response_timeout_s=0.2)
        try:
            reads = [(r.function, r.start, r.count) for r in whole.plan.sample_reads]
            assert reads == [(1, 0, 16), (2, 0, 8), (3, 100, 4), (3, 200, 2), (4, 0, 16), (4, 20, 4)]
            s = whole.latest()
            assert s.cell_v == pytest.approx([3.301, 3.302, 3.287, 3.350]) and list(s.balancing) == [False, True, False, True]
            assert whole.identity().serial == "EXMB4-000042"
        finally:
            whole.close()
    finally:
        board.close()


def test_a_block_the_map_marks_whole_is_served_whole_only(board, master, tmp_path):
    """Without the option the bench slave refuses partial reads of the blocks marked ``read: whole`` only."""
    raw = copy.deepcopy(yaml.safe_load(COILS_MAP.read_text()))
    raw["blocks"][0]["read"] = "whole"                     # input registers 0..15: the cell voltages
    p = tmp_path / "cells-whole.yaml"
    p.write_text(yaml.safe_dump(raw))
    s = ModbusSlave(p, N).start()
    c = ModbusSerialClient(s.port, framer=FramerType.RTU, baudrate=115200, timeout=0.2, retries=0)
    assert c.connect()
    try:
        assert c.read_input_registers(0, count=4, device_id=1).exception_code == 2
        assert not c.read_input_registers(0, count=16, device_id=1).isError()
        assert not c.read_holding_registers(100, count=2, device_id=1).isError()   # a 'used' block: any span
    finally:
        c.close()
        s.close()


def test_a_whole_block_larger_than_one_read_is_refused_naming_the_key(tmp_path):
    from rig.errors import ConfigError
    from rig.links.register_map import compile_register_map

    raw = copy.deepcopy(yaml.safe_load(COILS_MAP.read_text()))
    raw["blocks"][0].update(count=200, read="whole")
    p = tmp_path / "big-whole.yaml"
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"big-whole\.yaml.*blocks\.0\.read.*200 registers exceed the 125"):
        compile_register_map(p, N)
