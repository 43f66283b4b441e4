"""Daly frames against a published capture of a Daly board talking to Daly's PC software.

The byte strings are the request/reply dump in "Decoding the DALY SmartBMS protocol"
(diysolarforum.com/threads/decoding-the-daly-smartbms-protocol.21898/): a 14-cell board with
one temperature sensor. Replies are read through pyserial's ``loop://`` port.
"""

from __future__ import annotations

import numpy as np
import pytest

from rig.links import daly_protocol as daly
from rig.links.serial_poll import FrameError

from .test_jbd_protocol import reply_reader

CAPTURE = {
    0x90: ["a5 01 90 08 02 10 00 00 75 30 01 f4 ea"],
    0x93: ["a5 01 93 08 00 01 01 10 00 00 4e 20 c1"],
    0x94: ["a5 01 94 08 0e 01 00 00 02 00 00 20 73"],
    0x95: ["a5 01 95 08 01 0e c0 0e c2 0e c7 20 d7", "a5 01 95 08 02 0e c8 0e c8 0e c6 20 e5",
           "a5 01 95 08 03 0e c2 0e c2 0e 9c 20 b0", "a5 01 95 08 04 0e c4 0e c4 0e c4 20 dd",
           "a5 01 95 08 05 0e c3 0e c0 0e c4 20 d9"],
    0x96: ["a5 01 96 08 01 3d 00 00 00 00 00 00 82", "a5 01 96 08 02 00 00 00 00 00 00 00 46"],
    0x97: ["a5 01 97 08 00 00 00 00 00 00 00 00 45"],
    0x98: ["a5 01 98 08 00 00 00 00 00 00 00 00 46"],
}


def frames(data_id: int) -> bytes:
    return b"".join(bytes.fromhex(f) for f in CAPTURE[data_id])


@pytest.mark.parametrize("data_id, checksum", [(0x90, 0x7D), (0x91, 0x7E), (0x92, 0x7F), (0x93, 0x80), (0x94, 0x81),
                                               (0x95, 0x82), (0x96, 0x83), (0x97, 0x84), (0x98, 0x85)])
def test_requests_match_the_capture(data_id, checksum):
    assert daly.encode_request(data_id) == bytes([0xA5, 0x40, data_id, 0x08]) + bytes(8) + bytes([checksum])
    # python-daly-bms documents the 0x80 host address variant: a5 80 95 08 00.. c2
    assert daly.encode_request(0x95, 0x80).hex() == "a58095080000000000000000c2"


def test_every_captured_reply_passes_its_checksum():
    for data_id in CAPTURE:
        for f in CAPTURE[data_id]:
            raw = bytes.fromhex(f)
            assert daly.checksum(raw[:12]) == raw[12], f


def test_soc_voltage_current_decodes():
    soc = daly.parse_soc(daly.read_frames(reply_reader(frames(0x90)), 0x90)[0])
    assert soc.pack_v == pytest.approx(52.8) and soc.current_a == 0.0 and soc.soc_pct == pytest.approx(50.0)


def test_mos_and_status_decode():
    mos = daly.parse_mos(daly.read_frames(reply_reader(frames(0x93)), 0x93)[0])
    assert (mos.state, mos.charge_fet, mos.discharge_fet, mos.life) == ("rest", True, True, 0x10)
    assert mos.remaining_ah == pytest.approx(20.0)                 # 0x4E20 mAh
    assert daly.parse_status(daly.read_frames(reply_reader(frames(0x94)), 0x94)[0]) == (14, 1)


def test_fourteen_cells_come_in_five_numbered_frames():
    data = daly.read_frames(reply_reader(frames(0x95)), 0x95, count=5, numbered=True)
    cells = daly.parse_cell_frames(data, 14)
    assert len(cells) == 14
    assert cells[:3] == pytest.approx([3.776, 3.778, 3.783]) and cells[8] == pytest.approx(3.740)
    assert cells[12:] == pytest.approx([3.779, 3.776])             # frame 5 carries one unused slot


def test_temperatures_are_offset_by_40():
    data = daly.read_frames(reply_reader(frames(0x96)), 0x96, count=1, numbered=True)
    assert daly.parse_temp_frames(data, 1) == pytest.approx([21.0])  # 0x3D = 61


def test_bench_frames_round_trip_cells_temperatures_balance_and_failures():
    v = 3.3 + 0.001 * np.arange(16)
    cells = daly.parse_cell_frames(daly.build_cell_frames(v), 16)
    assert cells == pytest.approx(v)
    assert len(daly.build_cell_frames(v)) == 6 and daly.build_cell_frames(v)[5][0] == 6
    t = np.array([-10.0, 25.0, 61.0, 3, 4, 5, 6, 7])
    assert daly.parse_temp_frames(daly.build_temp_frames(t), 8) == pytest.approx(t)
    mask = np.zeros(20, bool)
    mask[[0, 9, 19]] = True
    assert np.flatnonzero(daly.parse_balance(daly.build_balance(mask), 20)).tolist() == [0, 9, 19]
    assert daly.build_failures(1 << 1 | 1 << 9)[:2] == bytes([0x02, 0x02])   # bit k = byte k//8, bit k%8


def test_a_spoiled_frame_is_a_checksum_error():
    bad = bytearray(frames(0x90))
    bad[6] ^= 0x10
    with pytest.raises(FrameError) as ei:
        daly.read_frames(reply_reader(bytes(bad)), 0x90)
    assert ei.value.kind == "checksum" and "computed" in str(ei.value)


def test_missing_frames_time_out_and_out_of_order_frames_are_refused():
    raw = frames(0x95)
    with pytest.raises(FrameError) as ei:
        daly.read_frames(reply_reader(raw[:13 * 3], "Daly data id 0x95", 0.05), 0x95, count=5, numbered=True)
    assert ei.value.kind == "timeout" and "Daly data id 0x95" in str(ei.value)
    swapped = raw[:13] + raw[26:39] + raw[13:26] + raw[39:]    # 1, 3, 2, 4, 5: frame 2 lost its place
    with pytest.raises(FrameError) as ei:
        daly.read_frames(reply_reader(swapped), 0x95, count=5, numbered=True)
    assert ei.value.kind == "content" and "frame number 3, expected 2" in str(ei.value)


def test_late_frames_of_another_data_id_are_skipped():
    """A second 0x96 frame the board sent for one sensor, still on the line: skipped, not an error."""
    late = frames(0x96)[13:]
    assert daly.read_frames(reply_reader(late + frames(0x98)), 0x98) == [bytes(8)]
    with pytest.raises(FrameError) as ei:                       # nothing but late frames: no reply in time
        daly.read_frames(reply_reader(frames(0x97), "Daly data id 0x98", 0.05), 0x98)
    assert ei.value.kind == "framing" and "no reply frame for 0x98; 1 other frame(s)" in str(ei.value)
    with pytest.raises(FrameError) as ei:
        daly.read_frames(reply_reader(frames(0x97) * (daly.MAX_SKIPPED + 1)), 0x98)
    assert ei.value.kind == "framing" and f"{daly.MAX_SKIPPED + 1} frames that are not the reply" in str(ei.value)


def test_board_side_parses_requests_and_resynchronises():
    req = daly.encode_request(0x95)
    assert daly.parse_request(req) == (13, 0x95)
    assert daly.parse_request(b"\x11" + req) == (1, None)
    assert daly.parse_request(req[:7]) == (0, None)
    assert daly.parse_request(req[:12] + b"\x00") == (1, None)      # bad checksum: skip the start byte
