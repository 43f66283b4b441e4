"""The JBD and Daly protocol modules against bytes from implementations written elsewhere.

``data/serial_vectors.yaml`` holds captures of real boards and other projects' test vectors,
each with its source; here the project's decoders read them (through a pyserial ``loop://``
port, as a reply arrives) and every value is compared with what the source says it means, and
the project's requests are compared byte for byte with the requests those implementations send.
The bench boards' encoders are checked against the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from rig.links import daly_protocol as daly
from rig.links import jbd_protocol as jbd

from .test_jbd_protocol import reply_reader

VECTORS = yaml.safe_load((Path(__file__).parent / "data" / "serial_vectors.yaml").read_text())
JBD, DALY = VECTORS["jbd"], VECTORS["daly"]


def raw(text: str) -> bytes:
    return bytes.fromhex(text)


def vid(v: dict) -> str:
    return v.get("id") or f"{v['source']['path'].rsplit('/', 1)[-1]}:{v['frame'][:20]}"


# ---------------------------------------------------------------------------- JBD


@pytest.mark.parametrize("v", JBD["requests"], ids=vid)
def test_jbd_requests_are_the_bytes_other_hosts_send(v):
    if "write" in v:
        assert jbd.encode_request(v["register"], raw(v["write"]), jbd.WRITE) == raw(v["frame"])
    else:
        assert jbd.encode_request(v["register"]) == raw(v["frame"])


@pytest.mark.parametrize("v", JBD["basic_info"], ids=vid)
def test_jbd_basic_info_decodes_as_the_source_reads_it(v):
    frame = raw(v["frame"])
    info = jbd.parse_basic_info(jbd.read_reply(reply_reader(frame), 0x03))
    expect = dict(v["expect"])
    if "production_date" in expect:   # bms-tools: bits 15:9 year - 2000, 8:5 month, 4:0 day
        d = info.production_date
        assert [(d >> 9) + 2000, d >> 5 & 0x0F, d & 0x1F] == expect.pop("production_date")
    if "fw_version" in expect:
        assert info.fw_version == expect.pop("fw_version")
    assert info.temps_c == pytest.approx(expect.pop("temps_c", info.temps_c), abs=1e-9)
    for name, want in expect.items():
        assert getattr(info, name) == pytest.approx(want, abs=1e-9), name
    assert len(info.balancing) == info.cell_count


def test_jbd_bench_encoder_reproduces_a_captured_basic_info_frame():
    """The bench board's encoder, fed what the SP04S034 capture decodes to, sends the same bytes."""
    frame = raw(JBD["basic_info"][0]["frame"])
    data = frame[4:-3]
    info = jbd.parse_basic_info(data)
    assert jbd.encode_reply(0x03, jbd.build_basic_info(info)) == frame


@pytest.mark.parametrize("v", JBD["cells"], ids=vid)
def test_jbd_cell_voltages_decode_in_volts(v):
    frame = raw(v["frame"])
    cells = jbd.parse_cells(jbd.read_reply(reply_reader(frame), 0x04))
    assert cells == pytest.approx(v["volts"], abs=1e-9)
    assert jbd.encode_reply(0x04, jbd.build_cells(cells)) == frame


@pytest.mark.parametrize("v", JBD["text"], ids=vid)
def test_jbd_hardware_version_is_the_boards_model_text(v):
    assert jbd.parse_text(jbd.read_reply(reply_reader(raw(v["frame"])), 0x05)) == v["text"]


@pytest.mark.parametrize("v", JBD["write_replies"], ids=vid)
def test_jbd_empty_write_replies_are_accepted_and_rebuilt_by_the_bench(v):
    frame = raw(v["frame"])
    assert jbd.read_reply(reply_reader(frame), v["register"]) == b""
    assert jbd.encode_reply(v["register"]) == frame


def test_jbd_reply_after_an_echo_of_the_request_is_read():
    """BMS_BLE-HA's JBD mock sends ``DD A5 03 00 FF FD 77`` before each reply (as an RS485
    adapter with local echo does): the echo is not the reply and must not spoil the poll."""
    echo = raw("DD A5 03 00 FF FD 77")
    reply = raw(JBD["basic_info"][1]["frame"])
    info = jbd.parse_basic_info(jbd.read_reply(reply_reader(echo + reply), 0x03))
    assert info.pack_a == pytest.approx(-2.87) and info.cycles == 42
    cells = raw(JBD["cells"][1]["frame"])
    assert jbd.parse_cells(jbd.read_reply(reply_reader(raw("DD A5 04 00 FF FC 77") + cells), 0x04)) == \
        pytest.approx([3.43, 3.425, 3.432, 3.417])


# ---------------------------------------------------------------------------- Daly


@pytest.mark.parametrize("v", DALY["requests"], ids=vid)
def test_daly_requests_are_the_bytes_other_hosts_send(v):
    assert daly.encode_request(v["data_id"], v["address"]) == raw(v["frame"])


def _one(v: dict, data_id: int) -> bytes:
    return daly.read_frames(reply_reader(raw(v["frame"])), data_id)[0]


@pytest.mark.parametrize("key", ["soc", "soc_charging", "soc_charging_24v"])
def test_daly_soc_voltage_current(key):
    v = DALY["replies"][key]
    soc = daly.parse_soc(_one(v, daly.SOC_V_I))
    for name, want in v["expect"].items():
        assert getattr(soc, name) == pytest.approx(want, abs=1e-9), name


def test_daly_min_max_cell():
    v = DALY["replies"]["minmax_cells"]
    mm = daly.parse_minmax_cells(_one(v, daly.MINMAX_CELL))
    e = v["expect"]
    assert (mm.max_value, mm.max_index, mm.min_value, mm.min_index) == \
        (pytest.approx(e["max_v"]), e["max_cell"], pytest.approx(e["min_v"]), e["min_cell"])


def test_daly_status_counts_and_the_bench_encoding():
    v = DALY["replies"]["status"]
    data = _one(v, daly.STATUS)
    e = v["expect"]
    assert daly.parse_status(data) == (e["cells"], e["sensors"])
    # bytes 0..6: counts, charger, load, DI/DO, cycles (U16); byte 7 reserved (0x40 on this board)
    assert daly.build_status(e["cells"], e["sensors"], e["charger"], e["load"], e["cycles"])[:7] == data[:7]


def test_daly_mos_status_and_the_bench_encoding():
    v = DALY["replies"]["mos"]
    data = _one(v, daly.MOS)
    mos = daly.parse_mos(data)
    e = v["expect"]
    assert (mos.state, mos.charge_fet, mos.discharge_fet, mos.life) == \
        (e["state"], e["charge_fet"], e["discharge_fet"], e["life"])
    assert mos.remaining_ah == pytest.approx(e["remaining_ah"])
    assert daly.build_mos(mos.state, mos.charge_fet, mos.discharge_fet, mos.life, mos.remaining_ah) == data


def test_daly_sixteen_cells_from_a_board_that_sends_sixteen_frames():
    """This board answers 0x95 with all 16 frames (48 cells, unused ones 0 mV); the link needs
    the first ceil(16/3) = 6 and the rest must not disturb the next exchange."""
    v = DALY["replies"]["cells_16_frames"]
    stream = b"".join(raw(f) for f in v["frames"])
    frames = daly.read_frames(reply_reader(stream), daly.CELL_VOLTAGES, count=6, numbered=True)
    assert daly.parse_cell_frames(frames, 16) == pytest.approx(v["volts"], abs=1e-9)
    # the bench encodes the same 16 voltages as the board's first 6 frames (byte 7 reserved)
    built = daly.build_cell_frames(np.asarray(v["volts"]))
    assert [b[:7] for b in built] == [raw(f)[4:11] for f in v["frames"][:6]]


def test_daly_min_max_temperature():
    v = DALY["replies"]["minmax_temps"]
    mm = daly.parse_minmax_temps(_one(v, daly.MINMAX_TEMP))
    e = v["expect"]
    assert (mm.max_value, mm.max_index, mm.min_value, mm.min_index) == \
        (e["max_c"], e["max_sensor"], e["min_c"], e["min_sensor"])


def test_daly_mos_status_discharging():
    v = DALY["replies"]["mos_discharging"]
    mos = daly.parse_mos(_one(v, daly.MOS))
    e = v["expect"]
    assert (mos.state, mos.charge_fet, mos.discharge_fet, mos.life) == \
        (e["state"], e["charge_fet"], e["discharge_fet"], e["life"])
    assert mos.remaining_ah == pytest.approx(e["remaining_ah"])


def test_daly_one_sensor_sent_in_two_frames():
    v = DALY["replies"]["temps_one_sensor_two_frames"]
    stream = b"".join(raw(f) for f in v["frames"])
    frames = daly.read_frames(reply_reader(stream), daly.TEMPERATURES, count=1, numbered=True)
    assert daly.parse_temp_frames(frames, 1) == pytest.approx(v["temps_c"])
    built = daly.build_temp_frames(np.asarray(v["temps_c"], float))
    assert daly.encode_frame(daly.BOARD, daly.TEMPERATURES, built[0]) == raw(v["frames"][0])


def test_daly_eight_cells_with_start_bytes_in_the_data_and_a_cut_frame_at_the_end():
    v = DALY["replies"]["cells_8s_more_frames_and_a_cut_one"]
    frames = daly.read_frames(reply_reader(raw(v["stream"])), daly.CELL_VOLTAGES, count=3, numbered=True)
    assert daly.parse_cell_frames(frames, 8) == pytest.approx(v["volts"], abs=1e-9)
