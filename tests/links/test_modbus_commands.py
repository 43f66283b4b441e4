"""Board commands on the Modbus link: writes (functions 05, 06, 16) through pymodbus over a real
pty to the bench slave, which takes them into its tables where the map declares them."""

from __future__ import annotations

import pytest

from rig.errors import CommandError, ConfigError, LinkFault
from rig.links.modbus_link import ModbusBmsLink
from rig.links.register_map import compile_register_map
from rig.sim.modbus_slave import ModbusSlave

from .conftest import REF_REGS, make_telemetry

COMMANDS = """
commands:
  balancing_on: {function: 5, address: 100, values: [1], when: start}
  hvc_setpoint:
    function: 6
    address: 200
    values: [{parameter: threshold_v, scale: 0.001, minimum: 3.0, maximum: 4.0}]
  trim:
    function: 16
    address: 210
    values: [7, {parameter: offset_mv, type: int16}, mask]
"""


@pytest.fixture
def cmd_map(tmp_path):
    p = tmp_path / "cmd-modbus.yaml"
    p.write_text(REF_REGS.read_text() + COMMANDS)
    return p


def open_pair(map_path, clock, slave_map=None, n=16):
    slave = ModbusSlave(slave_map or map_path, n).start()
    slave.update(make_telemetry(n))
    link = ModbusBmsLink("uart-dut", slave.port, map_path, n, clock, response_timeout_s=0.1)
    return slave, link


def test_start_write_and_commands_reach_the_bench_slave(cmd_map, clock):
    slave, link = open_pair(cmd_map, clock)
    try:
        assert slave.commands_received == {"balancing_on": {"raw": [1]}}   # FC 05 when the link opened
        link.command("hvc_setpoint", threshold_v=3.6)                      # FC 06, 0.001 V per LSB
        got = slave.commands_received["hvc_setpoint"]
        assert got["raw"] == [3600] and got["threshold_v"] == pytest.approx(3.6)
        link.command("trim", offset_mv=-12, mask=0x00F0)                   # FC 16, three registers
        assert slave.commands_received["trim"] == {"raw": [7, 0xFFF4, 0x00F0], "offset_mv": -12, "mask": 0xF0}
        assert link.latest().cell_v.shape == (16,)                         # reads still served
    finally:
        link.close()
        slave.close()


@pytest.mark.parametrize("values, words", [
    ({"threshold_v": 4.2}, ["hvc_setpoint", "threshold_v", "4.2 is outside the range 3..4"]),
    ({"threshold_v": 3.5, "x": 1}, ["unknown parameter(s) x"]),
    ({}, ["missing parameter(s) threshold_v"]),
])
def test_command_values_are_checked_before_anything_is_written(cmd_map, clock, values, words):
    slave, link = open_pair(cmd_map, clock)
    try:
        before = slave.requests
        with pytest.raises(CommandError) as ei:
            link.command("hvc_setpoint", **values)
        assert all(w in str(ei.value) for w in words), str(ei.value)
        assert slave.requests == before
        with pytest.raises(CommandError, match="declares no command 'reboot'"):
            link.command("reboot")
    finally:
        link.close()
        slave.close()


def test_a_write_the_board_does_not_take_is_a_link_fault_naming_the_command(cmd_map, tmp_path, clock):
    other = tmp_path / "board-modbus.yaml"   # the board accepts writes only at another address
    other.write_text(REF_REGS.read_text() + "commands:\n  x: {function: 6, address: 300, values: [v]}\n")
    slave = ModbusSlave(other, 16).start()
    slave.update(make_telemetry(16))
    try:
        with pytest.raises(LinkFault) as ei:
            ModbusBmsLink("uart-dut", slave.port, cmd_map, 16, clock, response_timeout_s=0.1)
        msg = str(ei.value)
        assert "command balancing_on: write single coil (05) at address 100" in msg
        assert "not acknowledged: the board answered Modbus exception 2 (illegal data address)" in msg
    finally:
        slave.close()


def test_a_silent_board_does_not_acknowledge(cmd_map, clock):
    slave, link = open_pair(cmd_map, clock)
    try:
        slave.muted = True
        with pytest.raises(LinkFault, match="command hvc_setpoint: write single register .* not acknowledged"):
            link.command("hvc_setpoint", threshold_v=3.5)
    finally:
        link.close()
        slave.close()


@pytest.mark.parametrize("body, key, words", [
    ("  x: {function: 5, address: 1, values: [2]}\n", "commands.x.values[0]", "a coil is 0 or 1"),
    ("  x: {function: 6, address: 1, values: [70000]}\n", "commands.x.values[0]", "holds 0..65535"),
    ("  x: {function: 6, address: 1, values: [1, 2]}\n", "commands.x", "writes one value, not 2"),
    ("  x: {function: 16, address: 1, values: [v], when: start}\n", "commands.x", "constants only"),
    ("  x: {function: 3, address: 1, values: [1]}\n", "commands.x.function", ""),
    ("  x: {function: 6, address: 1, values: [{value: 1, parameter: p}]}\n", "commands.x.values", "exactly one"),
])
def test_command_map_errors_name_file_key_and_problem(tmp_path, body, key, words):
    p = tmp_path / "bad-modbus.yaml"
    p.write_text(REF_REGS.read_text() + "commands:\n" + body)
    with pytest.raises(ConfigError) as ei:
        compile_register_map(p, 16)
    msg = str(ei.value)
    assert "bad-modbus.yaml" in msg and key in msg and words in msg, msg
