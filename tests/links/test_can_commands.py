"""Board commands on the CAN link, requests answered by page, J1939 from the bench's other
source addresses / priorities: real frames (cantools encoding, python-can virtual bus)
between the host link and the bench transmitter."""

from __future__ import annotations

import can
import cantools
import numpy as np
import pytest

from rig.errors import CommandError, ConfigError, LinkFault
from rig.links.can_link import CanBmsLink
from rig.profile import PROFILE_DIR
from rig.sim.can_tx import CanTransmitter

from .conftest import SimBoard, make_telemetry

P_DBC = PROFILE_DIR / "example-polled.dbc"
P_MAP = PROFILE_DIR / "example-polled-can.yaml"
C_MAP = PROFILE_DIR / "example-polled-commands-can.yaml"
J_DBC, J_MAP = PROFILE_DIR / "example-j1939.dbc", PROFILE_DIR / "example-j1939-can.yaml"


def board(clock, channel, smap=C_MAP):
    tx = CanTransmitter(P_DBC, channel, 8, signal_map_path=smap)
    b = SimBoard(clock, tx, period=0.25)
    b.telemetry = make_telemetry(8, serial="P-000777")
    return tx, b


def drain(bus) -> list:
    out = []
    while (m := bus.recv(0)) is not None:
        out.append(m)
    return out


def test_start_command_reaches_the_bench_board_and_is_acknowledged(can_bus, channel, clock):
    tx, _b = board(clock, channel)
    link = CanBmsLink("cmd", can_bus, P_DBC, C_MAP, 8, clock)
    clock.sleep(1.0)
    s = link.latest()
    assert s.cell_v.shape == (8,)
    assert tx.commands_received == {"balancing_on": {"CmdType": 1.0, "BalEnable": 1.0}}
    assert link.commands.sent == 1 and link.commands.acknowledged == 1 and not link.commands.failed
    link.close()
    tx.close()


def test_command_with_a_parameter_is_encoded_by_the_dbc(can_bus, channel, sender, clock):
    tx, _b = board(clock, channel)
    link = CanBmsLink("cmd", can_bus, P_DBC, C_MAP, 8, clock)
    clock.sleep(0.5)
    drain(sender)
    link.command("hvc_setpoint", threshold_v=3.6)
    frames = [m for m in drain(sender) if m.arbitration_id == 1797]
    db = cantools.database.load_file(str(P_DBC))
    assert db.decode_message(1797, frames[0].data, decode_choices=False) == \
        {"CmdType": 2, "BalEnable": 0, "HvcSetpoint": pytest.approx(3.6)}
    assert tx.commands_received["hvc_setpoint"] == {"CmdType": 2.0, "threshold_v": pytest.approx(3.6)}
    assert link.commands.acknowledged == 2
    link.close()
    tx.close()


@pytest.mark.parametrize("values, words", [
    ({"threshold_v": 4.5}, ["hvc_setpoint", "threshold_v", "4.5 V is outside the range 3..4 V", "HvcSetpoint"]),
    ({"threshold_v": 3.6, "extra": 1}, ["unknown parameter(s) extra", "it takes: threshold_v"]),
    ({}, ["missing parameter(s) threshold_v"]),
])
def test_command_values_are_checked_before_anything_is_sent(can_bus, sender, clock, values, words):
    link = CanBmsLink("cmd", can_bus, P_DBC, C_MAP, 8, clock)
    drain(sender)
    with pytest.raises(CommandError) as ei:
        link.command("hvc_setpoint", **values)
    for w in words:
        assert w in str(ei.value)
    assert drain(sender) == []
    link.close()


def test_undeclared_command_is_a_clear_error_on_every_link_kind(can_bus, clock):
    link = CanBmsLink("cmd", can_bus, P_DBC, P_MAP, 8, clock)
    with pytest.raises(CommandError, match="declares no command 'balancing_on'"):
        link.command("balancing_on")
    link.close()
    from tests.links.toy_link import ToyLink  # another kind: the BmsLink default refuses

    toy = ToyLink.__new__(ToyLink)
    toy.name = "toy"
    with pytest.raises(CommandError, match="toy: this link declares no command 'x'"):
        toy.command("x", v=1)


def test_unacknowledged_command_is_a_link_fault_naming_it(can_bus, channel, clock):
    tx, b = board(clock, channel)
    link = CanBmsLink("cmd", can_bus, P_DBC, C_MAP, 8, clock)
    clock.sleep(1.0)
    b.silent = True
    with pytest.raises(LinkFault) as ei:
        link.command("hvc_setpoint", threshold_v=3.5)
    msg = str(ei.value)
    assert "command hvc_setpoint (POLL_Command) was not acknowledged: no POLL_CmdAck within 1 s (3 tries)" in msg
    link.close()
    tx.close()


def test_start_command_never_acknowledged_stops_the_link(can_bus, clock):
    link = CanBmsLink("cmd", can_bus, P_DBC, C_MAP, 8, clock, timeout_s=5.0)  # nobody on the bus
    for _ in range(40):  # the rig clock in 0.1 s steps, as on the bench (the link pumps on each)
        clock.sleep(0.1)
    with pytest.raises(LinkFault, match=r"command balancing_on \(POLL_Command\) was not acknowledged"):
        link.latest()
    link.close()


# ----------------------------------------------------------------------------- map errors

BASE = C_MAP.read_text().split("\ncommands:")[0] + "\n"


@pytest.mark.parametrize("body, key, words", [
    ("  x: {message: NoSuch}\n", "commands.x.message", "message 'NoSuch' not found in DBC example-polled.dbc"),
    ("  x: {message: POLL_Command, signals: {Nope: 1}}\n", "commands.x.signals.Nope", "not in message POLL_Command"),
    ("  x: {message: POLL_Command, signals: {HvcSetpoint: 9}}\n", "commands.x.signals.HvcSetpoint",
     "9 V is outside the range 3..4 V"),
    ("  x: {message: POLL_Command, signals: {CmdType: REBOOT}}\n", "commands.x.signals.CmdType",
     "'REBOOT' is not a value name of signal CmdType"),
    ("  x: {message: POLL_Command, parameters: {v: Nope}}\n", "commands.x.parameters.v", "not in message"),
    ("  x: {message: POLL_Command, parameters: {v: HvcSetpoint}, when: start}\n", "commands.x",
     "constants only"),
    ("  x: {message: POLL_Command, ack: {message: Nope}}\n", "commands.x.ack.message", "'Nope' not found"),
    ("  x: {message: POLL_Command, ack: {message: POLL_Command}}\n", "commands.x.ack.message",
     "cannot be the command's own message"),
    ("  x: {message: POLL_Command, when: sometimes}\n", "commands.x.when", ""),
])
def test_command_map_errors_name_file_key_and_problem(tmp_path, can_bus, clock, body, key, words):
    smap = tmp_path / "bad-can.yaml"
    smap.write_text(BASE + "commands:\n" + body)
    with pytest.raises(ConfigError) as ei:
        CanBmsLink("cmd", can_bus, P_DBC, smap, 8, clock)
    msg = str(ei.value)
    assert "bad-can.yaml" in msg and key in msg and words in msg, msg


# ----------------------------------------------------------------------------- requests answered by page


class PageBoard:
    """Answers every cell-page request with page ``answer`` (or the page asked when None), real frames."""

    def __init__(self, clock, bus, answer=None):
        self.db = cantools.database.load_file(str(P_DBC))
        self.bus, self.answer = bus, answer
        clock.on_step.append(self._step)

    def _step(self, t0, t1):
        page_msg, status = self.db.get_message_by_name("POLL_CellPage"), self.db.get_message_by_name("POLL_Status")
        temps = self.db.get_message_by_name("POLL_Temps")
        for m in drain(self.bus):
            req = self.db.decode_message(m.arbitration_id, m.data, decode_choices=False) if m.arbitration_id == 1792 else {}
            if req.get("ReqType") == 1:
                page = req["ReqPage"] if self.answer is None else self.answer
                data = page_msg.encode({"Page": page, "V_a": 3.3, "V_b": 3.3, "V_c": 3.3})
                self.bus.send(can.Message(arbitration_id=1793, data=data, is_extended_id=False, timestamp=t1))
            elif req.get("ReqType") == 3:
                data = temps.encode({f"T{i}": 25 for i in range(1, 9)})
                self.bus.send(can.Message(arbitration_id=1795, data=data, is_extended_id=False, timestamp=t1))
            elif req.get("ReqType") == 2:
                data = status.encode({"Alarm": 0, "Fets": 3, "BalMask": 0, "BoardTemp": 30})
                self.bus.send(can.Message(arbitration_id=1794, data=data, is_extended_id=False, timestamp=t1))


def test_a_reply_of_another_page_does_not_answer_a_page_request(can_bus, sender, clock):
    PageBoard(clock, sender, answer=0)  # three replies per poll, all page 0
    link = CanBmsLink("pg", can_bus, P_DBC, P_MAP, 8, clock, timeout_s=3.0)
    assert "POLL_CellPage" not in {link.plan.message_names[f] for f in link.fast_frame_ids}
    for _ in range(40):  # 2 s of rig time in 50 ms steps, as on the bench
        clock.sleep(0.05)
    assert link.requests.unanswered >= 1
    assert "request POLL_Request got no POLL_CellPage page 1, 2 within 0.6 s" in link.requests.problem
    link.close()


def test_each_page_asked_and_answered_counts_as_answered(can_bus, sender, clock):
    PageBoard(clock, sender)
    link = CanBmsLink("pg", can_bus, P_DBC, P_MAP, 8, clock, timeout_s=3.0)
    for _ in range(40):  # 2 s of rig time in 50 ms steps, as on the bench
        clock.sleep(0.05)
    assert "POLL_CellPage" not in link.requests.problem   # (identity is not answered by this board)
    assert "POLL_Status" not in link.requests.problem
    assert link.latest().cell_v == pytest.approx(np.full(8, 3.3))
    link.close()


# ----------------------------------------------------------------------------- J1939 from the bench


def j_board(clock, channel, **kw):
    tx = CanTransmitter(J_DBC, channel, 8, signal_map_path=kw.pop("smap", J_MAP), **kw)
    b = SimBoard(clock, tx, period=0.25)
    b.telemetry = make_telemetry(8, serial="J-000042")
    return tx


@pytest.mark.parametrize("sa, priority", [(0x81, None), (0x80, 3), (0x81, 7)])
def test_bench_j1939_from_an_allowed_source_address_decodes(can_bus, sender, channel, clock, sa, priority):
    tx = j_board(clock, channel, j1939_source_address=sa, j1939_priority=priority)
    link = CanBmsLink("j", can_bus, J_DBC, J_MAP, 8, clock)
    clock.sleep(1.0)
    ids = {m.arbitration_id & 0xFF for m in drain(sender)}
    assert ids == {sa}
    s = link.latest()
    np.testing.assert_allclose(s.cell_v, make_telemetry(8).cell_v, atol=1e-3)
    link.close()
    tx.close()


@pytest.mark.parametrize("sa, priority", [(0x90, None), (0x81, 3)])
def test_bench_j1939_from_a_disallowed_source_address_or_priority_is_ignored(tmp_path, can_bus, channel, clock,
                                                                           sa, priority):
    smap = tmp_path / "j-can.yaml"
    smap.write_text(J_MAP.read_text().replace("j1939: {source_addresses: [0x80, 0x81]}",
                                              "j1939: {source_addresses: [0x80, 0x81], priorities: [6]}"))
    tx = j_board(clock, channel, smap=smap, j1939_source_address=sa, j1939_priority=priority)
    link = CanBmsLink("j", can_bus, J_DBC, smap, 8, clock, timeout_s=1.0)
    clock.sleep(1.0)
    with pytest.raises(LinkFault, match="never received: J_CellVolt"):
        link.latest()
    assert link.frames_received > 0
    link.close()
    tx.close()


@pytest.mark.parametrize("old, new, key", [
    ("  enabled_by_command: {command: balancing_on, value: BalEnable}", "  enabled_by_command: {value: BalEnable}",
     "balancing.enabled_by_command.command"),
    ("  fw_version: 2.3.1", "  fw_version: 2.3.1\n  j1939_priority: 9", "bench.j1939_priority"),
    ("  fw_version: 2.3.1", "  fw_version: 2.3.1\n  j1939_source_address: 256", "bench.j1939_source_address"),
])
def test_profile_command_and_j1939_options_are_checked(tmp_path, old, new, key):
    from rig.profile import load_profile

    for name in ("example-polled.dbc", "example-polled-commands-can.yaml"):
        (tmp_path / name).write_text((PROFILE_DIR / name).read_text())
    src = (PROFILE_DIR / "example-polled-commands.yaml").read_text()
    assert old in src
    (tmp_path / "b.yaml").write_text(src.replace(old, new))
    with pytest.raises(ConfigError) as ei:
        load_profile(tmp_path / "b.yaml")
    assert "b.yaml" in str(ei.value) and key in str(ei.value), str(ei.value)


@pytest.mark.parametrize("old, new, key, words", [
    ("  balancing_on:  ", "  enable_bal:  ", "balancing.enabled_by_command.command",
     "example-polled-commands-can.yaml declares no command 'balancing_on' (declared: enable_bal, hvc_setpoint)"),
    ("{CmdType: BALANCE, BalEnable: 1}", "{CmdType: BALANCE}", "balancing.enabled_by_command.value",
     "command balancing_on of example-polled-commands-can.yaml carries no 'BalEnable' (it has: CmdType)"),
])
def test_a_gate_naming_a_command_the_map_lacks_is_refused_by_check(tmp_path, old, new, key, words):
    from rig.check import check_profile_links
    from rig.profile import load_profile

    for name in ("example-polled.dbc", "example-polled-commands.yaml"):
        (tmp_path / name).write_text((PROFILE_DIR / name).read_text())
    smap = C_MAP.read_text()
    assert old in smap
    (tmp_path / C_MAP.name).write_text(smap.replace(old, new))
    with pytest.raises(ConfigError) as ei:
        check_profile_links(load_profile(tmp_path / "example-polled-commands.yaml"))
    assert key in str(ei.value) and words in str(ei.value), str(ei.value)
