"""JBD frames against the worked examples of the public protocol description.

Every byte string below is copied from Jiabaida's "Software Board General Protocol" (V13,
sections 3.1-3.3 and 11; transcription github.com/mahmoudamr1205/Electra_Bike
JBD_BMS/Software_Board_Universal_Protocol_V13.md), checksums included. Replies are read
through pyserial's ``loop://`` port: the bytes go through a real pyserial port object.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import serial

from rig.links import jbd_protocol as jbd
from rig.links.serial_poll import ByteReader, FrameError

# section 3.1 example reply, without the "AA BB CC" callback-id placeholder the V13 text
# shows after the data: the printed checksum FB FF covers the 27 data bytes alone
BASIC_INFO_REPLY = bytes.fromhex(
    "DD 03 00 1B 17 00 00 00 02 D0 03 E8 00 00 20 78 00 00 00 00 00 00 10 48 03 0F 02 0B 76 0B 82 FB FF 77")
CELLS_REPLY = bytes.fromhex(
    "DD 04 00 1E 0F 66 0F 63 0F 63 0F 64 0F 3E 0F 63 0F 37 0F 5B 0F 65 0F 3B 0F 63 0F 63 0F 3C 0F 66 0F 3D F9 F9 77")
HW_REPLY = bytes.fromhex("DD 05 00 0A 30 31 32 33 34 35 36 37 38 39 FD E9 77")


def reply_reader(raw: bytes, what: str = "test reply", timeout_s: float = 0.2) -> ByteReader:
    """A ByteReader over a pyserial loop:// port holding ``raw`` (what a board would have sent)."""
    port = serial.serial_for_url("loop://", timeout=timeout_s)
    port.write(raw)
    return ByteReader(port, time.monotonic() + timeout_s, what)


@pytest.mark.parametrize("register, frame", [
    (0x03, "DD A5 03 00 FF FD 77"),
    (0x04, "DD A5 04 00 FF FC 77"),
    (0x05, "DD A5 05 00 FF FB 77"),
    (0xAA, "DD A5 AA 00 FF 56 77"),
])
def test_read_requests_match_the_protocol_examples(register, frame):
    assert jbd.encode_request(register) == bytes.fromhex(frame)


def test_replies_built_by_the_bench_match_the_protocol_examples():
    assert jbd.encode_reply(0x05, b"0123456789") == HW_REPLY
    assert jbd.encode_reply(0x04, CELLS_REPLY[4:-3]) == CELLS_REPLY
    assert jbd.encode_reply(0x03, BASIC_INFO_REPLY[4:-3]) == BASIC_INFO_REPLY


def test_basic_info_example_decodes_field_by_field():
    data = jbd.read_reply(reply_reader(BASIC_INFO_REPLY), 0x03)
    info = jbd.parse_basic_info(data)
    assert info.pack_v == pytest.approx(58.88)          # 0x1700 x 10 mV
    assert info.pack_a == 0.0
    assert info.remaining_ah == pytest.approx(7.20)     # 0x02D0 x 10 mAh
    assert info.nominal_ah == pytest.approx(10.00)      # 0x03E8 x 10 mAh
    assert info.production_date == 0x2078
    assert info.fw_version == "1.0" and info.rsoc_pct == 72
    assert info.charge_fet and info.discharge_fet       # FET byte 0x03
    assert info.cell_count == 15 and not info.balancing.any() and info.protection_names() == []
    assert info.temps_c == pytest.approx([20.3, 21.5])  # 2934 and 2946 x 0.1 K - 273.1


def test_cell_voltage_example_decodes_in_volts():
    cells = jbd.parse_cells(jbd.read_reply(reply_reader(CELLS_REPLY), 0x04))
    assert len(cells) == 15
    assert cells[0] == pytest.approx(3.942) and cells[4] == pytest.approx(3.902) and cells[14] == pytest.approx(3.901)


def test_hardware_version_example_is_text():
    assert jbd.parse_text(jbd.read_reply(reply_reader(HW_REPLY), 0x05)) == "0123456789"
    assert jbd.parse_text(bytes([4]) + b"JBD1") == "JBD1"  # bms-tools: EEPROM strings carry a length byte


def test_basic_info_round_trips_balance_protection_and_fets():
    info = jbd.BasicInfo(pack_v=13.21, pack_a=-2.5, balancing=np.array([1, 0, 0, 1] + [0] * 13 + [1], bool),
                         protection=0b1_0001_0001, software_version=0x23, charge_fet=False, discharge_fet=True,
                         cell_count=18, temps_c=np.array([-5.0, 45.3]))
    back = jbd.parse_basic_info(jbd.build_basic_info(info))
    assert back.pack_v == pytest.approx(13.21) and back.pack_a == pytest.approx(-2.5)
    assert np.flatnonzero(back.balancing).tolist() == [0, 3, 17]   # cell 18 is bit 1 of the high word
    assert back.protection_names() == ["cell overvoltage", "charge over-temperature", "charge overcurrent"]
    assert (back.charge_fet, back.discharge_fet, back.fw_version) == (False, True, "2.3")
    assert back.temps_c == pytest.approx([-5.0, 45.3])


def test_a_flipped_byte_is_a_checksum_error_naming_both_sums():
    bad = bytearray(CELLS_REPLY)
    bad[10] ^= 0x01
    with pytest.raises(FrameError) as ei:
        jbd.read_reply(reply_reader(bytes(bad)), 0x04)
    assert ei.value.kind == "checksum" and "0xF9F9" in str(ei.value)


def test_a_short_reply_is_a_timeout_naming_what_arrived():
    with pytest.raises(FrameError) as ei:
        jbd.read_reply(reply_reader(HW_REPLY[:9], "JBD register 0x05", timeout_s=0.05), 0x05)
    assert ei.value.kind == "timeout" and "JBD register 0x05" in str(ei.value) and "9 bytes" in str(ei.value)


def test_error_status_and_wrong_register_are_refused_or_framing():
    with pytest.raises(FrameError) as ei:
        jbd.read_reply(reply_reader(jbd.encode_reply(0xA2, status=jbd.STATUS_ERROR)), 0xA2)
    assert ei.value.kind == "refused"
    with pytest.raises(FrameError) as ei:
        jbd.read_reply(reply_reader(HW_REPLY), 0x03)
    assert ei.value.kind == "framing" and "no reply for register 0x03" in str(ei.value)
    assert "the last for register 0x05" in str(ei.value)


def test_board_side_parses_requests_and_ignores_bad_ones():
    req = jbd.encode_request(0x00, b"\x56\x78", jbd.WRITE)
    assert jbd.parse_request(req + b"\xDD") == (len(req), (jbd.WRITE, 0x00, b"\x56\x78"))
    assert jbd.parse_request(b"\x00\x01" + req) == (2, None)          # noise before a start byte
    assert jbd.parse_request(req[:5]) == (0, None)                    # wait for the rest
    spoiled = req[:-2] + b"\x00\x77"
    assert jbd.parse_request(spoiled) == (len(spoiled), None)         # bad checksum: consumed, ignored
