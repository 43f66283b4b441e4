"""J1939 matching by PGN, a board that answers only when asked (requests with timeouts),
per-cell validity flags: real frames encoded by cantools on a python-can virtual bus."""

from __future__ import annotations

import can
import cantools
import numpy as np
import pytest

from rig.errors import ConfigError, LinkFault
from rig.links.can_link import CanBmsLink
from rig.profile import PROFILE_DIR
from rig.sim.can_tx import CanTransmitter

from .conftest import SimBoard, make_telemetry

J_DBC, J_MAP = PROFILE_DIR / "example-j1939.dbc", PROFILE_DIR / "example-j1939-can.yaml"
P_DBC, P_MAP = PROFILE_DIR / "example-polled.dbc", PROFILE_DIR / "example-polled-can.yaml"


def j1939_id(pgn: int, sa: int, priority: int) -> int:
    return (priority << 26) | (pgn << 8) | sa


def send_j1939_cycle(sender, sa: int, priority: int, t: float, cells_v, alarm_bits: int = 0) -> None:
    db = cantools.database.load_file(str(J_DBC))
    frames = []
    for g in range(3):
        vals = {"CellGroup": g, **{f"Vcell{3 * g + k + 1}": float(cells_v[min(3 * g + k, 7)]) for k in range(3)}}
        frames.append(("J_CellVolt", vals))
    frames.append(("J_CellTemp", {f"Tcell{i + 1}": 20.0 + i for i in range(8)}))
    frames.append(("J_Status", {"AlarmBits": alarm_bits, "ChgFet": 1, "DsgFet": 0, "BalMask": 0b11,
                                "PackVolt": 26.4, "BoardTemp": 33}))
    for name, vals in frames:
        m = db.get_message_by_name(name)
        pgn = (m.frame_id >> 8) & 0x3FFFF
        sender.send(can.Message(arbitration_id=j1939_id(pgn, sa, priority), is_extended_id=True,
                                data=m.encode(vals, strict=False), timestamp=t))


@pytest.mark.parametrize("sa, priority", [(0x80, 6), (0x81, 6), (0x81, 3), (0x80, 7)])
def test_j1939_same_pgn_from_another_source_address_or_priority_decodes(can_bus, sender, clock, sa, priority):
    link = CanBmsLink("j", can_bus, J_DBC, J_MAP, 8, clock)
    v = np.round(3.2 + 0.01 * np.arange(8), 3)
    send_j1939_cycle(sender, sa, priority, 1.0, v, alarm_bits=0b1000)  # OT on discharge: mask 0x0C
    s = link.latest()
    np.testing.assert_allclose(s.cell_v, v, atol=1e-9)
    np.testing.assert_allclose(s.temps_c, np.r_[20.0 + np.arange(8), 33.0])
    assert s.flags.ot and not s.flags.hvc and s.charge_fet and not s.discharge_fet
    link.close()


def test_j1939_source_address_not_listed_is_ignored(can_bus, sender, clock):
    link = CanBmsLink("j", can_bus, J_DBC, J_MAP, 8, clock, timeout_s=1.0)
    send_j1939_cycle(sender, 0x90, 6, 0.5, np.full(8, 3.3))
    with pytest.raises(LinkFault) as ei:
        link.latest()
    assert "never received: J_CellVolt (0x18FF1080), J_CellTemp" in str(ei.value)
    assert link.frames_received == 5
    link.close()


def test_j1939_two_messages_with_one_pgn_is_a_map_error(tmp_path, can_bus, clock):
    dbc = tmp_path / "j.dbc"
    dbc.write_text(J_DBC.read_text().replace(f"BO_ {0x80000000 | j1939_id(0xFF13, 0x80, 7)} J_Ident",
                                             f"BO_ {0x80000000 | j1939_id(0xFF12, 0x22, 7)} J_Ident"))
    with pytest.raises(ConfigError) as ei:
        CanBmsLink("j", can_bus, dbc, J_MAP, 8, clock)
    assert "example-j1939-can.yaml" in str(ei.value) and "j1939" in str(ei.value) and "same PGN" in str(ei.value)


# ----------------------------------------------------------------------------- polled board


def test_polled_board_answers_only_when_asked_and_the_link_asks(can_bus, channel, clock):
    tx = CanTransmitter(P_DBC, channel, 8, signal_map_path=P_MAP)
    board = SimBoard(clock, tx, period=0.25)
    board.telemetry = make_telemetry(8, serial="P-000777", hvc=True, charge_fet=False)
    clock.sleep(1.0)
    assert tx.frames_sent == 0                  # nobody asked: the board said nothing
    link = CanBmsLink("polled", can_bus, P_DBC, P_MAP, 8, clock)
    for _ in range(20):                         # the rig clock in 50 ms steps, as on the bench
        clock.sleep(0.05)
    s = link.latest()
    np.testing.assert_allclose(s.cell_v, make_telemetry(8).cell_v, atol=0.6e-4)
    assert s.flags.hvc and not s.charge_fet and s.discharge_fet
    assert link.requests.frames_sent >= 5 * 3   # cell pages 0..2, temps, status every 0.25 s
    assert link.identity().serial == "P-000777"  # asked for with an identity request
    assert link.requests.unanswered == 0
    link.close()
    tx.close()


def test_unanswered_request_is_resent_then_named(can_bus, sender, clock):
    link = CanBmsLink("polled", can_bus, P_DBC, P_MAP, 8, clock, timeout_s=2.0)
    seen = []
    clock.sleep(0.05)
    while (m := sender.recv(0)) is not None:
        seen.append(bytes(m.data))
    # at start: cell pages 0..2 (ReqType 1), temps (3), status (2), identity (4)
    assert seen == [b"\x01\x00", b"\x01\x01", b"\x01\x02", b"\x03\x00", b"\x02\x00", b"\x04\x00"]
    with pytest.raises(LinkFault) as ei:
        link.latest()
    msg = str(ei.value)
    assert "request POLL_Request got no POLL_CellPage within 0.6 s (2 tries)" in msg or \
        "got no POLL_Status within 0.6 s" in msg, msg
    assert link.requests.unanswered >= 1
    link.close()


# ----------------------------------------------------------------------------- validity flags


VALID_DBC = """VERSION ""
BU_: B H
BO_ 100 Cells: 8 B
 SG_ Va : 0|16@1+ (0.001,0) [0|65.535] "V" H
 SG_ Vb : 16|16@1+ (0.001,0) [0|65.535] "V" H
 SG_ Vc : 32|16@1+ (0.001,0) [0|65.535] "V" H
 SG_ ValidBits : 48|3@1+ (1,0) [0|7] "" H
BO_ 101 Status: 1 B
 SG_ Alive : 0|8@1+ (1,0) [0|255] "" H
"""


def test_validity_bit_per_cell_reports_invalid_cells(tmp_path, can_bus, sender, clock):
    dbc = tmp_path / "v.dbc"
    dbc.write_text(VALID_DBC)
    smap = tmp_path / "v.yaml"
    smap.write_text("sample_on: Status\ncells:\n  voltage: {signals: [Va, Vb, Vc]}\n"
                    "  valid: {mask: ValidBits}\n")
    link = CanBmsLink("v", can_bus, dbc, smap, 3, clock)
    db = cantools.database.load_file(str(dbc))
    cells = db.get_message_by_name("Cells")
    sender.send(can.Message(arbitration_id=100, data=cells.encode({"Va": 3.3, "Vb": 0.0, "Vc": 3.4, "ValidBits": 0b101}),
                            is_extended_id=False, timestamp=1.0))
    sender.send(can.Message(arbitration_id=101, data=b"\x01", is_extended_id=False, timestamp=1.0))
    s = link.latest()
    assert list(s.cells_valid) == [True, False, True]
    assert s.cell_v[0] == pytest.approx(3.3) and np.isnan(s.cell_v[1])  # never a 0.000 V reading
    link.close()
