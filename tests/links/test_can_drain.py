"""Reading a python-can bus in one go (:mod:`rig.links.can_drain`) gives the frames ``recv``
gives, in order; a closed bus still raises; a filtered bus is read frame by frame."""

from __future__ import annotations

import uuid

import can
import pytest

from rig.links.can_drain import frame_reader
from rig.sim.can_tx import CanTransmitter


def _fields(m: can.Message) -> tuple:
    return (m.timestamp, m.arbitration_id, m.is_extended_id, m.is_remote_frame, m.is_error_frame, m.channel,
            m.dlc, bytes(m.data), m.is_fd, m.is_rx, m.bitrate_switch, m.error_state_indicator)


def _sent(tx_bus, k: int) -> list:
    out = []
    for i in range(k):
        m = can.Message(arbitration_id=0x100 + i, is_extended_id=i % 2 == 0, data=bytes([i] * (i % 9)),
                        timestamp=0.25 * i, is_fd=False)
        tx_bus.send(m)
        out.append(m)
    return out


def test_the_reader_gives_what_recv_gives_in_order():
    ch = f"drain-{uuid.uuid4().hex[:8]}"
    tx = can.Bus(interface="virtual", channel=ch, preserve_timestamps=True)
    a = can.Bus(interface="virtual", channel=ch, preserve_timestamps=True)
    b = can.Bus(interface="virtual", channel=ch, preserve_timestamps=True)
    try:
        _sent(tx, 12)
        by_recv = list(iter(lambda: a.recv(0), None))
        read = frame_reader(b)
        got = list(read())
        assert [_fields(m) for m in got] == [_fields(m) for m in by_recv] and len(got) == 12
        assert list(read()) == []  # nothing left, nothing twice
        _sent(tx, 3)
        assert [m.arbitration_id for m in read()] == [0x100, 0x101, 0x102]
    finally:
        for bus in (tx, a, b):
            bus.shutdown()


def test_a_closed_bus_raises_and_a_filtered_bus_is_read_with_recv():
    ch = f"drain-{uuid.uuid4().hex[:8]}"
    tx = can.Bus(interface="virtual", channel=ch, preserve_timestamps=True)
    rx = can.Bus(interface="virtual", channel=ch, preserve_timestamps=True,
                 can_filters=[{"can_id": 0x101, "can_mask": 0x7FF, "extended": False}])
    try:
        read = frame_reader(rx)
        _sent(tx, 4)
        # the bus's own filter applies (recv(0) returns None at a frame it filters out: read on)
        assert [m.arbitration_id for _ in range(4) for m in read()] == [0x101]
        rx.shutdown()
        with pytest.raises(can.CanError):
            list(read())
    finally:
        tx.shutdown()
        rx.shutdown()


def test_the_transmitters_frame_arrives_as_a_plain_message_of_its_own():
    ch = f"drain-{uuid.uuid4().hex[:8]}"
    tx = CanTransmitter(None, ch, 16)
    rx = can.Bus(interface="virtual", channel=ch, preserve_timestamps=True)
    try:
        from types import SimpleNamespace

        import numpy as np

        tel = SimpleNamespace(cell_v=np.full(16, 3.3), temps_c=np.full(17, 25.0), balancing=np.zeros(16, bool),
                              hvc=False, lvc=False, ot=False, ut=False, charge_fet=True, discharge_fet=True,
                              pack_v=52.8, pack_a=1.0, serial="X-1", hw_revision="C", fw_version="2.3.1", state="idle")
        twin = CanTransmitter(None, f"{ch}-twin", 16)
        try:
            frames = twin.encode(1.5, tel)
        finally:
            twin.close()
        tx.send(1.5, tel)
        got = list(frame_reader(rx)())
        assert [(m.arbitration_id, bytes(m.data)) for m in got] == frames
        for m in got:
            assert type(m) is can.Message and isinstance(m.data, bytearray)
            assert (m.timestamp, m.channel, m.is_rx, m.dlc) == (1.5, ch, True, len(m.data))
        assert len({id(m.data) for m in got}) == len(got)  # each copy owns its data
    finally:
        tx.close()
        rx.shutdown()
