"""The Daly BMS UART protocol (``A5`` frames, fixed 13 bytes): frames and data ids, both directions.

Sources (public protocol descriptions):

- Daly "UART / RS485 communication protocol" V1.2 (the PDF shared on diysolarforum.com,
  "Daly smart BMS manual and documentation"; summarised in github.com/maland16/daly-bms-uart
  README and implemented in github.com/dreadnought/python-daly-bms ``dalybms/daly_bms.py``):
  frame layout, data ids 0x90..0x98 and their fields;
- the request/reply capture in "Decoding the DALY SmartBMS protocol"
  (diysolarforum.com/threads/decoding-the-daly-smartbms-protocol.21898/), which the tests
  check byte for byte (``a5 40 90 08 00 .. 00 7d`` -> ``a5 01 90 08 02 10 00 00 75 30 01 f4 ea``).

Frame (9600 8N1)::

    A5  address  data_id  08  data[8]  checksum       checksum = sum of the 12 bytes & 0xFF

Address 0x40 host -> BMS (0x80 on some UART/Bluetooth firmware), 0x01 BMS -> host. A request
carries 8 zero data bytes. Data ids (byte offsets in the 8 data bytes, 16-bit big-endian):

- 0x90: 0 pack voltage (0.1 V), 2 acquisition voltage (0.1 V), 4 current (0.1 A, offset
  30000), 6 SOC (0.1 %)
- 0x91: 0 max cell mV, 2 its cell number, 3 min cell mV, 5 its cell number
- 0x92: 0 max temperature (°C + 40), 1 its sensor, 2 min temperature (+40), 3 its sensor
- 0x93: 0 state (0 stationary, 1 charge, 2 discharge), 1 charge MOS, 2 discharge MOS
  (1 = on), 3 BMS life (0..255 cycles), 4 remaining capacity (U32, mAh)
- 0x94: 0 cell count, 1 temperature sensor count, 2 charger, 3 load, 4 DI/DO bits, 5 cycles
- 0x95: one reply frame per 3 cells: 0 frame number (from 1), 1.. three cell voltages (mV)
- 0x96: one reply frame per 7 sensors: 0 frame number, 1.. seven temperatures (°C + 40)
- 0x97: balance state, bit i of the 48-bit field (byte 0 bit 0 = cell 1)
- 0x98: failure status bits (byte 0: bit 0/1 cell voltage high level 1/2, bit 2/3 cell voltage
  low level 1/2, bit 4..7 pack voltage high/low; byte 1: bit 0/1 charge temperature high
  level 1/2, bit 2/3 charge temperature low, bit 4/5 discharge temperature high, bit 6/7
  discharge temperature low; ...), byte 7 fault code. Bit ``k`` of the flag mapping is bit
  ``k % 8`` of byte ``k // 8``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from .serial_poll import ByteReader, FrameError

START = 0xA5
HOST, BOARD = 0x40, 0x01
LENGTH = 8
FRAME_LEN = 13
SOC_V_I, MINMAX_CELL, MINMAX_TEMP, MOS, STATUS, CELL_VOLTAGES, TEMPERATURES, BALANCE, FAILURES = range(0x90, 0x99)
CURRENT_OFFSET = 30000  # 0.1 A
TEMP_OFFSET_C = 40
CELLS_PER_FRAME, TEMPS_PER_FRAME = 3, 7
MAX_CELLS = 48  # the 0x97 balance field: 6 bytes
MAX_SKIPPED = 24  # whole frames that are not the reply, skipped while reading one (16 + echo + late frames)
STATES = {0: "rest", 1: "charge", 2: "discharge"}
"""0x93 byte 0 -> the project's state names (Daly: stationary, charge, discharge)."""


def checksum(frame12: bytes) -> int:
    """Sum of the first 12 bytes, low 8 bits."""
    return sum(frame12) & 0xFF


def encode_frame(address: int, data_id: int, data: bytes = bytes(LENGTH)) -> bytes:
    """One 13-byte frame (data padded with zeros to 8 bytes)."""
    body = bytes([START, address, data_id, LENGTH]) + bytes(data).ljust(LENGTH, b"\x00")[:LENGTH]
    return body + bytes([checksum(body)])


def encode_request(data_id: int, address: int = HOST) -> bytes:
    """A host request for ``data_id``: ``A5 40 id 08 00*8 chk``."""
    return encode_frame(address, data_id)


def _frame_at(buf: bytearray, k: int, what: str):
    """The 13-byte frame whose start byte is ``buf[k]``: None while incomplete, a FrameError
    (``checksum``; ``framing``: length byte not 8) when broken, else the frame."""
    if len(buf) < k + FRAME_LEN:
        return None
    frame = bytes(buf[k:k + FRAME_LEN])
    if checksum(frame[:12]) != frame[12]:
        return FrameError("checksum", f"{what}: frame carries checksum 0x{frame[12]:02X}, computed "
                                      f"0x{checksum(frame[:12]):02X} ({frame.hex(' ')})")
    if frame[3] != LENGTH:
        return FrameError("framing", f"{what}: length byte {frame[3]}, not {LENGTH} ({frame.hex(' ')})")
    return frame


def read_frames(reader: ByteReader, data_id: int, count: int = 1, numbered: bool = False) -> list[bytes]:
    """Read ``count`` reply frames for ``data_id``; their 8 data bytes each.

    The bytes are scanned as a UART delivers them: a broken candidate at a start byte (bad
    checksum or length byte: noise, a partial frame) is passed over and the scan resumes at
    the next start byte. Whole frames that are not the reply are skipped, at most
    :data:`MAX_SKIPPED`: frames of another data id (a late frame of an earlier request: Daly
    boards send frames beyond those asked for, e.g. all 16 frames of 0x95 or a second 0x96
    frame for one sensor) and frames not from the board (the request's own echo on an RS485
    adapter with local echo). With ``numbered`` (0x95, 0x96: byte 0 is the frame number from
    1), a frame other than the next expected is skipped while none has been taken (a stale
    frame of an earlier reply) or when its number is beyond ``count`` (a frame the link does
    not need); a frame 1 starts the sequence again; any other gap is FrameError ``content``.
    FrameError when the frames do not come within the reader's deadline: the first broken
    frame's ``checksum`` or ``framing``, ``framing`` when only other frames came, else ``timeout``."""
    buf = bytearray()
    out: list[bytes] = []
    pos = skipped = 0
    problem: FrameError | None = None
    last_skipped = b""
    while True:
        while len(out) < count:
            k = buf.find(START, pos)
            if k < 0:
                pos = len(buf)
                break
            frame = _frame_at(buf, k, reader.what)
            if frame is None:
                pos = k
                break
            if isinstance(frame, FrameError):
                problem = problem or frame
                pos = k + 1
                continue
            pos = k + FRAME_LEN
            data = frame[4:12]
            want = len(out) + 1
            if frame[1] == BOARD and frame[2] == data_id and numbered and data[0] != want:
                if data[0] == 1:
                    out = []
                elif out and data[0] <= count:
                    raise FrameError("content", f"{reader.what}: frame number {data[0]}, expected {want} "
                                                f"({frame.hex(' ')})")
            if frame[1] != BOARD or frame[2] != data_id or (numbered and data[0] != len(out) + 1):
                skipped += 1
                last_skipped = frame
                if skipped > MAX_SKIPPED:
                    raise FrameError("framing", f"{reader.what}: {skipped} frames that are not the reply, last "
                                                f"{frame.hex(' ')}")
                continue
            out.append(data)
        if len(out) == count:
            return out
        try:
            buf += reader.read_some()
        except FrameError as err:
            if problem is not None:
                raise problem from None
            if skipped and not out:
                raise FrameError("framing", f"{reader.what}: no reply frame for 0x{data_id:02X}; {skipped} other "
                                            f"frame(s), the last {last_skipped.hex(' ')}") from None
            raise FrameError("timeout", f"{err.detail}; {len(out)} of {count} frames") from None


def parse_request(buf: bytes) -> tuple[int, int | None]:
    """Board side: ``(bytes used, requested data id or None)`` from the head of ``buf``.

    ``used == 0``: wait for more bytes; a frame with a bad checksum or another address is
    consumed and yields None (a board ignores it)."""
    k = buf.find(bytes([START]))
    if k < 0:
        return len(buf), None
    if k > 0:
        return k, None
    if len(buf) < FRAME_LEN:
        return 0, None
    frame = buf[:FRAME_LEN]
    if checksum(frame[:12]) != frame[12] or frame[1] not in (HOST, 0x80) or frame[3] != LENGTH:
        return 1, None  # not a request: resynchronise on the next start byte
    return FRAME_LEN, frame[2]


# ------------------------------------------------------------------ data ids


@dataclass
class SocVoltageCurrent:
    """0x90 in SI: pack V (V), acquisition V (V), current (A, sign as sent), SOC (%)."""

    pack_v: float
    acquisition_v: float
    current_a: float
    soc_pct: float


def parse_soc(data: bytes) -> SocVoltageCurrent:
    pack, acq, cur, soc = struct.unpack(">HHHH", data)
    return SocVoltageCurrent(pack * 0.1, acq * 0.1, (cur - CURRENT_OFFSET) * 0.1, soc * 0.1)


def build_soc(pack_v: float, current_a: float, soc_pct: float = 0.0) -> bytes:
    """0x90 from SI values (current as it is to be sent: the caller applies the sign convention)."""
    return struct.pack(">HHHH", _u16(pack_v * 10), _u16(pack_v * 10), _u16(current_a * 10 + CURRENT_OFFSET),
                       _u16(soc_pct * 10))


@dataclass
class MinMax:
    """0x91 (cells, V) or 0x92 (sensors, °C): the highest and lowest value and their 1-based numbers."""

    max_value: float
    max_index: int
    min_value: float
    min_index: int


def parse_minmax_cells(data: bytes) -> MinMax:
    """0x91: max cell mV (U16), its cell, min cell mV, its cell -> V."""
    vmax, imax, vmin, imin = struct.unpack(">HBHBxx", data)
    return MinMax(vmax * 1e-3, imax, vmin * 1e-3, imin)


def parse_minmax_temps(data: bytes) -> MinMax:
    """0x92: max temperature (°C + 40), its sensor, min temperature, its sensor -> °C."""
    return MinMax(data[0] - TEMP_OFFSET_C, data[1], data[2] - TEMP_OFFSET_C, data[3])


@dataclass
class MosStatus:
    """0x93: state name, FETs (True = on), BMS life counter, remaining capacity (Ah)."""

    state: str
    charge_fet: bool
    discharge_fet: bool
    life: int
    remaining_ah: float


def parse_mos(data: bytes) -> MosStatus:
    state, chg, dsg, life, rem = struct.unpack(">BBBBI", data)
    return MosStatus(STATES.get(state, f"state {state}"), bool(chg), bool(dsg), life, rem * 1e-3)


def build_mos(state: str, charge_fet: bool, discharge_fet: bool, life: int = 0, remaining_ah: float = 0.0) -> bytes:
    code = {"charge": 1, "float": 1, "discharge": 2}.get(state, 0)
    return struct.pack(">BBBBI", code, int(bool(charge_fet)), int(bool(discharge_fet)), life & 0xFF,
                       int(max(0.0, remaining_ah) * 1000) & 0xFFFFFFFF)


def parse_status(data: bytes) -> tuple[int, int]:
    """0x94: (cell count, temperature sensor count)."""
    return data[0], data[1]


def build_status(n_cells: int, n_temps: int, charging: bool = False, load: bool = False, cycles: int = 0) -> bytes:
    return struct.pack(">BBBBBHx", n_cells, n_temps, int(charging), int(load), 0, cycles & 0xFFFF)


def parse_cell_frames(frames: list[bytes], n: int) -> np.ndarray:
    """0x95 frames -> the first ``n`` cell voltages, V."""
    mv = [v for f in frames for v in struct.unpack(">3H", f[1:7])]
    return np.asarray(mv[:n], float) * 1e-3


def build_cell_frames(cell_v) -> list[bytes]:
    mv = [_u16(v * 1000) for v in np.asarray(cell_v, float)]
    frames = []
    for k in range(0, len(mv), CELLS_PER_FRAME):
        chunk = (mv[k:k + CELLS_PER_FRAME] + [0, 0])[:CELLS_PER_FRAME]
        frames.append(struct.pack(">B3Hx", k // CELLS_PER_FRAME + 1, *chunk))
    return frames


def parse_temp_frames(frames: list[bytes], n: int) -> np.ndarray:
    """0x96 frames -> the first ``n`` temperatures, °C."""
    raw = [b for f in frames for b in f[1:8]]
    return np.asarray(raw[:n], float) - TEMP_OFFSET_C


def build_temp_frames(temps_c) -> list[bytes]:
    raw = [int(min(255, max(0, round(t + TEMP_OFFSET_C)))) for t in np.asarray(temps_c, float)]
    frames = []
    for k in range(0, len(raw), TEMPS_PER_FRAME):
        chunk = (raw[k:k + TEMPS_PER_FRAME] + [0] * TEMPS_PER_FRAME)[:TEMPS_PER_FRAME]
        frames.append(bytes([k // TEMPS_PER_FRAME + 1, *chunk]))
    return frames


def bits_of(data: bytes) -> int:
    """The data bytes as one little-endian-by-byte bit field: bit k = bit k%8 of byte k//8."""
    return int.from_bytes(data, "little")


def parse_balance(data: bytes, n: int) -> np.ndarray:
    """0x97: balancing mask of ``n`` cells."""
    field = bits_of(data[:6])
    return np.array([bool(field >> i & 1) for i in range(n)], bool)


def build_balance(mask) -> bytes:
    field = sum(1 << i for i, b in enumerate(np.asarray(mask, bool)[:48]) if b)
    return field.to_bytes(6, "little") + b"\x00\x00"


def build_failures(bits: int, fault_code: int = 0) -> bytes:
    """0x98 from a bit field over bytes 0..6 (bit k = bit k%8 of byte k//8) and the fault code."""
    return (bits & (1 << 56) - 1).to_bytes(7, "little") + bytes([fault_code & 0xFF])


def _u16(x: float) -> int:
    return int(min(0xFFFF, max(0, round(x))))
