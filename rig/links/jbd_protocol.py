"""The JBD (Jiabaida / "Xiaoxiang") BMS UART protocol: frames and registers, both directions.

Sources (public protocol descriptions):

- Jiabaida "Software Board General Protocol" V4 / V13 (JDB_RS485-RS232-UART-Bluetooth-
  Communication_Protocol.pdf; a transcription: github.com/mahmoudamr1205/Electra_Bike,
  ``JBD_BMS/Software_Board_Universal_Protocol_V13.md``): frame layout and the worked examples
  the tests check byte for byte (``DD A5 03 00 FF FD 77`` ...);
- bms-tools "JBD BMS serial interface and register map" (gitlab.com/bms-tools/bms-tools,
  ``JBD_REGISTER_MAP.md``): field layout of register 0x03, the factory-mode registers
  0x00/0x01 and the EEPROM identity registers 0x16 ``serial_num`` and 0xA2 ``barcode``.

Wire format (9600 8N1 by default, all 16-bit values big-endian)::

    request   DD  A5|5A  reg  len  data[len]  chk_hi chk_lo  77     (A5 read, 5A write)
    reply     DD  reg  status  len  data[len]  chk_hi chk_lo  77    (status 00 ok, 80 error)

The checksum is ``0x10000 - sum`` of the bytes between the command/register byte and the
checksum: ``reg, len, data`` in a request, ``status, len, data`` in a reply.

Register 0x03 "basic info" (offsets in bytes): 0 pack voltage (10 mV), 2 pack current (S16,
10 mA, + charge), 4 remaining capacity (10 mAh), 6 nominal capacity (10 mAh), 8 cycles,
10 production date, 12 balance status cells 1-16 (bit 0 = cell 1), 14 balance status cells
17-32, 16 protection status (bit 0 cell OV, 1 cell UV, 2 pack OV, 3 pack UV, 4 charge OT,
5 charge UT, 6 discharge OT, 7 discharge UT, 8 charge OC, 9 discharge OC, 10 short circuit,
11 AFE error, 12 software lock), 18 software version (0x10 = 1.0), 19 RSOC (%), 20 FET
status (bit 0 charge, bit 1 discharge; 1 = on), 21 cell count, 22 NTC count, 23.. NTC
temperatures (U16, 0.1 K, offset 2731: °C = (raw - 2731) / 10).
Register 0x04: cell voltages, U16 mV each. Register 0x05: hardware version, ASCII.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from .serial_poll import ByteReader, FrameError

START, END = 0xDD, 0x77
READ, WRITE = 0xA5, 0x5A
BASIC_INFO, CELL_VOLTAGES, HW_VERSION = 0x03, 0x04, 0x05
ENTER_FACTORY, EXIT_FACTORY = 0x00, 0x01
SERIAL_NUM, BARCODE = 0x16, 0xA2
FACTORY_KEY = b"\x56\x78"
STATUS_OK, STATUS_ERROR = 0x00, 0x80
KELVIN_OFFSET_DK = 2731  # 0.1 K: raw 2731 = 0.0 °C
MAX_CELLS = 32  # two 16-bit balance words
MAX_SKIPPED = 8  # whole frames that are not the awaited reply, skipped in one read

PROTECTION_BITS = {
    0: "cell overvoltage", 1: "cell undervoltage", 2: "pack overvoltage", 3: "pack undervoltage",
    4: "charge over-temperature", 5: "charge under-temperature", 6: "discharge over-temperature",
    7: "discharge under-temperature", 8: "charge overcurrent", 9: "discharge overcurrent",
    10: "short circuit", 11: "AFE error", 12: "software lock",
}


def checksum(body: bytes) -> int:
    """``0x10000 - sum(body)`` as 16 bits (body: reg/status, len, data)."""
    return (0x10000 - sum(body)) & 0xFFFF


def encode_request(register: int, data: bytes = b"", command: int = READ) -> bytes:
    """A host request frame: ``DD cmd reg len data chk 77``."""
    body = bytes([register, len(data)]) + bytes(data)
    return bytes([START, command]) + body + checksum(body).to_bytes(2, "big") + bytes([END])


def encode_reply(register: int, data: bytes = b"", status: int = STATUS_OK) -> bytes:
    """A board reply frame: ``DD reg status len data chk 77``."""
    body = bytes([status, len(data)]) + bytes(data)
    return bytes([START, register]) + body + checksum(body).to_bytes(2, "big") + bytes([END])


def _frame_at(buf: bytearray, k: int, what: str):
    """The reply frame whose start byte is ``buf[k]``: None while incomplete, a FrameError
    (``framing``: end byte; ``checksum``) when broken, else ``(register, status, data, end)``."""
    if len(buf) < k + 4:
        return None
    reg, status, length = buf[k + 1], buf[k + 2], buf[k + 3]
    end = k + 4 + length + 3
    if len(buf) < end:
        return None
    data = bytes(buf[k + 4:k + 4 + length])
    shown = bytes(buf[k:k + 4]).hex(" ")
    if buf[end - 1] != END:
        return FrameError("framing", f"{what}: end byte 0x{buf[end - 1]:02X} instead of 0x{END:02X} "
                                     f"after {length} data bytes ({shown} ...)")
    chk, calc = int.from_bytes(buf[end - 3:end - 1], "big"), checksum(bytes([status, length]) + data)
    if chk != calc:
        return FrameError("checksum", f"{what}: reply carries checksum 0x{chk:04X}, computed 0x{calc:04X} "
                                      f"({shown} ...)")
    return reg, status, data, end


def read_reply(reader: ByteReader, register: int) -> bytes:
    """Read one reply to a request for ``register``; its data.

    The bytes are scanned as a UART delivers them: in pieces, after noise or the tail of an
    earlier frame. Every start byte opens a candidate frame; a broken candidate (end byte or
    checksum wrong, or a length byte that runs past the real frame) is passed over and the
    scan resumes at the next start byte. Whole frames that are not the reply are skipped (at
    most :data:`MAX_SKIPPED`): a late reply to another register, or the request's own echo
    on an RS485 adapter with local echo (``DD A5 03 00 FF FD 77`` reads as a frame for
    "register" 0xA5). FrameError when no reply comes within the reader's deadline: the first
    broken frame's ``checksum`` or ``framing``, else ``framing`` naming the frames skipped,
    else ``timeout``; ``refused`` when the reply's status is not 0."""
    buf = bytearray()
    problem: FrameError | None = None
    skipped: dict[int, bytes] = {}
    while True:
        k = 0
        while (k := buf.find(START, k)) >= 0:
            res = _frame_at(buf, k, reader.what)
            if res is None:
                k += 1
            elif isinstance(res, FrameError):
                problem = problem or res
                k += 1
            elif res[0] != register:
                skipped.setdefault(k, bytes(buf[k:k + 4]))
                if len(skipped) > MAX_SKIPPED:
                    raise FrameError("framing", f"{reader.what}: {len(skipped)} frames that are not the reply to "
                                                f"register 0x{register:02X} ({skipped[k].hex(' ')} ...)")
                k = res[3]
            elif res[1] != STATUS_OK:
                raise FrameError("refused", f"{reader.what}: the board answered status 0x{res[1]:02X} (error)")
            else:
                return res[2]
        try:
            buf += reader.read_some()
        except FrameError as err:
            if problem is not None:
                raise problem from None
            if skipped:
                last = list(skipped.values())[-1]
                raise FrameError("framing", f"{reader.what}: no reply for register 0x{register:02X}; "
                                            f"{len(skipped)} other frame(s), the last for register 0x{last[1]:02X} "
                                            f"({last.hex(' ')} ...)") from None
            raise err from None


def parse_request(buf: bytes) -> tuple[int, tuple[int, int, bytes] | None]:
    """Board side: ``(bytes used, (command, register, data) or None)`` from the head of ``buf``.

    ``used == 0``: wait for more bytes. A frame with a bad checksum or end byte is consumed
    and yields None (a board ignores it); bytes before a start byte are dropped."""
    k = buf.find(bytes([START]))
    if k < 0:
        return len(buf), None
    if k > 0:
        return k, None
    if len(buf) < 4:
        return 0, None
    length = buf[3]
    total = 4 + length + 3
    if len(buf) < total:
        return 0, None
    frame = buf[:total]
    body = frame[2:4 + length]
    if frame[-1] != END or int.from_bytes(frame[-3:-1], "big") != checksum(body):
        return total, None
    return total, (frame[1], frame[2], bytes(frame[4:4 + length]))


@dataclass
class BasicInfo:
    """Register 0x03, decoded into SI units (V, A, Ah, °C)."""

    pack_v: float = 0.0
    pack_a: float = 0.0
    remaining_ah: float = 0.0
    nominal_ah: float = 0.0
    cycles: int = 0
    production_date: int = 0
    balancing: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    protection: int = 0
    software_version: int = 0
    rsoc_pct: int = 0
    charge_fet: bool = False
    discharge_fet: bool = False
    cell_count: int = 0
    temps_c: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def protection_names(self) -> list[str]:
        """The protection bits set, by name."""
        return [name for bit, name in PROTECTION_BITS.items() if self.protection >> bit & 1]

    @property
    def fw_version(self) -> str:
        """The software version byte as ``major.minor`` (0x10 -> ``1.0``)."""
        v = self.software_version
        return f"{v >> 4}.{v & 0x0F}"


_FIXED = struct.Struct(">HhHHHHHHHBBBBB")  # 23 bytes up to the NTC count


def parse_basic_info(data: bytes, what: str = "register 0x03") -> BasicInfo:
    """Decode register 0x03 (FrameError ``content`` when it is too short for what it says)."""
    if len(data) < _FIXED.size:
        raise FrameError("content", f"{what}: {len(data)} bytes, basic info needs at least {_FIXED.size}")
    (pack, cur, rem, nom, cycles, date, bal_lo, bal_hi, prot, ver, rsoc, fet, cells, ntc) = _FIXED.unpack_from(data)
    need = _FIXED.size + 2 * ntc
    if len(data) < need:
        raise FrameError("content", f"{what}: {len(data)} bytes, but {ntc} NTCs need {need}")
    raw_t = np.frombuffer(data, ">u2", ntc, _FIXED.size).astype(float)
    mask = bal_lo | bal_hi << 16
    return BasicInfo(
        pack_v=pack * 0.01, pack_a=cur * 0.01, remaining_ah=rem * 0.01, nominal_ah=nom * 0.01, cycles=cycles,
        production_date=date, balancing=np.array([bool(mask >> i & 1) for i in range(cells)], bool),
        protection=prot, software_version=ver, rsoc_pct=rsoc, charge_fet=bool(fet & 1),
        discharge_fet=bool(fet & 2), cell_count=cells, temps_c=(raw_t - KELVIN_OFFSET_DK) / 10.0,
    )


def _u16(x: float) -> int:
    return int(min(0xFFFF, max(0, round(x))))


def _s16(x: float) -> int:
    return int(min(0x7FFF, max(-0x8000, round(x))))


def build_basic_info(info: BasicInfo) -> bytes:
    """Encode register 0x03 (the bench board's side); values clamped to what the fields carry."""
    bal = np.asarray(info.balancing, bool)
    mask = sum(1 << i for i, b in enumerate(bal[:MAX_CELLS]) if b)
    temps = np.asarray(info.temps_c, float)
    head = _FIXED.pack(
        _u16(info.pack_v * 100), _s16(info.pack_a * 100), _u16(info.remaining_ah * 100), _u16(info.nominal_ah * 100),
        _u16(info.cycles), _u16(info.production_date), mask & 0xFFFF, mask >> 16 & 0xFFFF, info.protection & 0xFFFF,
        info.software_version & 0xFF, max(0, min(100, int(info.rsoc_pct))),
        (1 if info.charge_fet else 0) | (2 if info.discharge_fet else 0), int(info.cell_count) & 0xFF, len(temps),
    )
    return head + b"".join(_u16(t * 10 + KELVIN_OFFSET_DK).to_bytes(2, "big") for t in temps)


def parse_cells(data: bytes, what: str = "register 0x04") -> np.ndarray:
    """Register 0x04: cell voltages, V."""
    if len(data) % 2:
        raise FrameError("content", f"{what}: odd length {len(data)} (2 bytes per cell)")
    return np.frombuffer(data, ">u2").astype(float) * 1e-3


def build_cells(cell_v) -> bytes:
    """Register 0x04 from cell voltages in V (mV, rounded)."""
    return b"".join(_u16(v * 1000).to_bytes(2, "big") for v in np.asarray(cell_v, float))


def parse_text(data: bytes) -> str:
    """A string register (0x05 hardware version, 0xA2 barcode): ASCII, NUL padding removed.

    The V4/V13 protocol sends the characters alone; bms-tools documents a leading length
    byte for EEPROM strings: a first byte equal to the count of the rest is taken as one."""
    if data and data[0] == len(data) - 1 and (len(data) == 1 or data[0] < 0x20):
        data = data[1:]
    return data.replace(b"\x00", b"").decode("ascii", "replace").strip()


def software_version_byte(text: str) -> int:
    """``"2.3"`` or ``"2.3.1"`` -> 0x23 (major and minor nibbles); 0 when it does not fit."""
    parts = str(text).split(".")
    try:
        major, minor = int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except (ValueError, IndexError):
        return 0
    return major << 4 | minor if 0 <= major < 16 and 0 <= minor < 16 else 0
