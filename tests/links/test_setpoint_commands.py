"""Set-points the board takes from a host command (profile ``setpoints_by_command``): the
start commands' real frames (cantools, python-can virtual bus) and real pymodbus writes over a
pty, decoded by the bench, equal what the profile promises; the scaling round trip; the check
refusing a map that would configure the board to anything else."""

from __future__ import annotations

import pytest

from rig.errors import ConfigError
from rig.links.can_link import CanBmsLink
from rig.links.modbus_link import ModbusBmsLink
from rig.profile import PROFILE_DIR, load_profile
from rig.profile_setpoints import SETPOINT_UNITS, SetpointByCommand, promised_value
from rig.sim.can_tx import CanTransmitter
from rig.sim.modbus_slave import ModbusSlave

from .conftest import REF_REGS, SimBoard, make_telemetry

P_DBC = PROFILE_DIR / "example-polled.dbc"
C_MAP = PROFILE_DIR / "example-polled-commands-can.yaml"
BOARD = "example-polled-commands"


def can_pair(clock, can_bus, channel, smap=C_MAP):
    tx = CanTransmitter(P_DBC, channel, 8, signal_map_path=smap)
    b = SimBoard(clock, tx, period=0.25)
    b.telemetry = make_telemetry(8, serial="P-000777")
    return tx, CanBmsLink("sp", can_bus, P_DBC, smap, 8, clock)


def test_start_setpoints_decoded_by_the_bench_equal_the_profile_promise(can_bus, channel, clock):
    profile = load_profile(BOARD)
    assert set(profile.setpoints_by_command) == {"protection.hvc.threshold_v", "protection.lvc.threshold_v",
                                                 "balancing.start_delta_mv"}
    tx, link = can_pair(clock, can_bus, channel)
    try:
        clock.sleep(1.0)
        got = tx.commands_received
        for key, d in profile.setpoints_by_command.items():
            commanded = d.to_profile(key, got[d.command][d.value])   # what the board model reads
            assert commanded == pytest.approx(promised_value(profile, key), abs=1e-9), key
            assert commanded != pytest.approx(d.factory_default), key   # the command changes the board
        assert not link.commands.failed and link.commands.acknowledged == link.commands.sent == 4
    finally:
        link.close()
        tx.close()


@pytest.mark.parametrize("command, value, step", [("hvc_setpoint", 3.6004, 0.001), ("lvc_setpoint", 2.5126, 0.001)])
def test_on_demand_setpoint_round_trips_through_the_dbc_scaling(can_bus, channel, clock, command, value, step):
    tx, link = can_pair(clock, can_bus, channel)
    try:
        clock.sleep(0.5)
        link.command(command, threshold_v=value)
        got = tx.commands_received[command]["threshold_v"]
        assert abs(got - value) <= step / 2 + 1e-12
        assert got == pytest.approx(round(value / step) * step)
    finally:
        link.close()
        tx.close()


def test_unit_conversion_between_command_and_profile():
    d = SetpointByCommand(command="c", value="v", factory_default=50, unit="V")
    assert d.to_command("balancing.start_delta_mv", 30) == pytest.approx(0.030)
    assert d.to_profile("balancing.start_delta_mv", 0.030) == pytest.approx(30)
    mv = SetpointByCommand(command="c", value="v", factory_default=3.75, unit="mV")
    assert mv.to_profile("protection.hvc.threshold_v", 3650) == pytest.approx(3.65)
    assert SetpointByCommand(command="c", value="v", factory_default=1).command_unit("balancing.stop_delta_mv") == "mV"
    assert set(SETPOINT_UNITS) >= {"protection.hvc.threshold_v", "protection.lvc.threshold_v",
                                   "balancing.start_delta_mv"}


# ----------------------------------------------------------------------------- the check


def copy_board(tmp_path, map_old=None, map_new=None, prof_old=None, prof_new=None):
    (tmp_path / P_DBC.name).write_text(P_DBC.read_text())
    smap, prof = C_MAP.read_text(), (PROFILE_DIR / f"{BOARD}.yaml").read_text()
    if map_old is not None:
        assert map_old in smap
        smap = smap.replace(map_old, map_new)
    if prof_old is not None:
        assert prof_old in prof
        prof = prof.replace(prof_old, prof_new)
    (tmp_path / C_MAP.name).write_text(smap)
    (tmp_path / f"{BOARD}.yaml").write_text(prof)
    return tmp_path / f"{BOARD}.yaml"


HVC_KEY = "setpoints_by_command.protection.hvc.threshold_v"


@pytest.mark.parametrize("old, new, key, words", [
    ("HvcSetpoint: 3.65}", "HvcSetpoint: 3.60}", HVC_KEY,
     ["command hvc_at_start, which sends threshold_v = 3.6 V", "the profile promises 3.65 V", "encoding step 0.001 V"]),
    ("BalStartDelta: 30}", "BalStartDelta: 10}", "setpoints_by_command.balancing.start_delta_mv",
     ["command bal_delta_at_start, which sends BalStartDelta = 10 mV", "promises 30 mV"]),
    ("LvcSetpoint: 2.50}", "LvcSetpoint: 2.52}", "setpoints_by_command.protection.lvc.threshold_v",
     ["sends threshold_v = 2.52 V", "promises 2.5 V"]),
    ("  lvc_setpoint:  ", "  lvc_set:  ", "setpoints_by_command.protection.lvc.threshold_v.command",
     ["example-polled-commands-can.yaml declares no command 'lvc_setpoint'"]),
    ("parameters: {threshold_v: HvcSetpoint}", "parameters: {volts: HvcSetpoint}", f"{HVC_KEY}.value",
     ["command hvc_setpoint of example-polled-commands-can.yaml carries no 'threshold_v' (it has: CmdType, volts)"]),
])
def test_a_map_that_would_configure_another_value_is_refused(tmp_path, old, new, key, words):
    with pytest.raises(ConfigError) as ei:
        load_profile(copy_board(tmp_path, old, new))
    msg = str(ei.value)
    assert f"{BOARD}.yaml" in msg and key in msg and all(w in msg for w in words), msg


@pytest.mark.parametrize("promised, ok", [("3.6504", True), ("3.6496", True), ("3.652", False), ("3.649", False)])
def test_the_promise_is_compared_within_the_encoding_resolution(tmp_path, promised, ok):
    path = copy_board(tmp_path, prof_old="    threshold_v: 3.65\n", prof_new=f"    threshold_v: {promised}\n")
    if ok:
        assert load_profile(path).protection.hvc.threshold_v == float(promised)
        return
    with pytest.raises(ConfigError, match="promises") as ei:
        load_profile(path)
    assert HVC_KEY in str(ei.value)


@pytest.mark.parametrize("old, new, key, words", [
    ("  protection.hvc.threshold_v: {command: hvc_setpoint, value: threshold_v, factory_default: 3.75}",
     "  protection.hvc.threshold_v: {command: hvc_setpoint, value: threshold_v, factory_default: 3.75, unit: mV}",
     f"{HVC_KEY}.unit", ["is in V (DBC)", "reads it in mV"]),
    ("  protection.hvc.threshold_v: {", "  protection.hvc.threshold: {", "setpoints_by_command", []),
    ("  balancing.start_delta_mv: {", "  balancing.start_cell_v: {", "setpoints_by_command.balancing.start_cell_v",
     ["promises no balancing.start_cell_v"]),
    ("factory_default: 3.75}", "factory_default: -1}", "factory_default", []),
])
def test_declaration_errors_name_file_key_and_problem(tmp_path, old, new, key, words):
    with pytest.raises(ConfigError) as ei:
        load_profile(copy_board(tmp_path, prof_old=old, prof_new=new))
    msg = str(ei.value)
    assert f"{BOARD}.yaml" in msg and key in msg and all(w in msg for w in words), msg


def test_without_the_start_command_the_map_loads_and_the_board_keeps_its_factory_default(tmp_path):
    path = copy_board(tmp_path, "HvcSetpoint: 3.65}\n    when: start", "HvcSetpoint: 3.65}\n    when: demand")
    assert load_profile(path).setpoints_by_command["protection.hvc.threshold_v"].factory_default == 3.75


# ----------------------------------------------------------------------------- Modbus: real pymodbus writes

MODBUS_COMMANDS = """
commands:
  hvc_setpoint:
    function: 6
    address: 200
    values: [{parameter: threshold_v, scale: 0.001, minimum: 3.0, maximum: 4.0}]
  hvc_at_start: {function: 6, address: 200, values: [{raw}], when: start}
"""


def modbus_board(tmp_path, raw):
    regs = tmp_path / "sp-modbus.yaml"
    regs.write_text(REF_REGS.read_text() + MODBUS_COMMANDS.replace("{raw}", str(raw)))
    prof = (PROFILE_DIR / "reference-4s-lfp-uart.yaml").read_text()
    assert "register_map: reference-bms-modbus.yaml" in prof and "\nbench:" in prof
    prof = prof.replace("register_map: reference-bms-modbus.yaml", "register_map: sp-modbus.yaml")
    prof = prof.replace("\nbench:", "\nsetpoints_by_command:\n  protection.hvc.threshold_v: "
                                    "{command: hvc_setpoint, value: threshold_v, factory_default: 3.75}\nbench:", 1)
    (tmp_path / "sp.yaml").write_text(prof)
    return tmp_path / "sp.yaml", regs


def test_modbus_start_write_decoded_by_the_bench_equals_the_promise(tmp_path, clock):
    path, regs = modbus_board(tmp_path, 3650)
    profile = load_profile(path)
    slave = ModbusSlave(regs, 4).start()
    slave.update(make_telemetry(4))
    try:
        link = ModbusBmsLink("uart-dut", slave.port, regs, 4, clock, response_timeout_s=0.1)
        try:
            d = profile.setpoints_by_command["protection.hvc.threshold_v"]
            got = slave.commands_received
            assert got["hvc_at_start"] == {"raw": [3650]}      # written as FC 06 when the link opened
            assert d.to_profile("protection.hvc.threshold_v", got[d.command][d.value]) == \
                pytest.approx(profile.protection.hvc.threshold_v)
            link.command("hvc_setpoint", threshold_v=3.6004)   # on demand: 0.001 V per LSB
            assert slave.commands_received["hvc_setpoint"] == {"raw": [3600], "threshold_v": pytest.approx(3.6)}
        finally:
            link.close()
    finally:
        slave.close()


def test_modbus_start_write_of_another_value_is_refused(tmp_path):
    path, _ = modbus_board(tmp_path, 3600)
    with pytest.raises(ConfigError) as ei:
        load_profile(path)
    msg = str(ei.value)
    assert "sp.yaml" in msg and HVC_KEY in msg and "sends threshold_v = 3.6 V" in msg and "promises 3.65 V" in msg
