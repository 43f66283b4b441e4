"""The simulated board's Modbus RTU slave on a pseudo-terminal.

``start()`` opens a pty: the slave side is a real tty (``.port``, e.g. ``/dev/pts/7``)
that the rig opens with pyserial exactly as it would open a USB-RS485 adapter; this
object serves the master side from one daemon thread. Requests and replies are real RTU
frames (pymodbus ``FramerRTU``: device id, PDU, CRC-16) decoded and built by pymodbus.
The register image comes from the same register map the rig reads
(:class:`~rig.links.register_map.RegisterPlan`), written by :meth:`update` (thread-safe).

Served: read coils (01), discrete inputs (02), holding registers (03) and input registers
(04) as the map places values in them. A map that declares ``blocks`` is served block by
block: a read not wholly inside one declared block of its function gets exception 02 (as
many real boards answer), a function with no block exception 01; a read of part of a block
the map marks ``read: whole`` (or of any block, with ``refuse_partial``) gets exception 02
(or the code given). Without ``blocks`` each
used table is served from address 0 to its highest mapped address. A count beyond the
Modbus limit (125 registers, 2000 bits) gets exception 03.
Writes: function 05 (one coil), 15 (several coils), 06 (one holding register) and 16 (several) are accepted
where the map's ``commands:`` declare a write (:mod:`rig.links.modbus_commands`), anywhere
else exception 02 (a map without commands: exception 01). A write lands in the board's
tables (a read of that address returns it) and, when it is a declared command, in
:attr:`ModbusSlave.commands_received`, which the board model reads through its harness.
Requests for another device id are ignored (a multi-drop bus). For tests,
:meth:`inject_corruption` spoils the next replies (a flipped byte -> CRC error, a short
reply, or silence).
"""

from __future__ import annotations

import os
import select
import struct
import threading
import time
from pathlib import Path

import numpy as np

from ..links.register_map import RegisterPlan, compile_register_map
from .pty_slave import PtyServer

REFERENCE_REGISTER_MAP = Path(__file__).resolve().parents[2] / "testplans" / "profiles" / "reference-bms-modbus.yaml"
_WRITES = (5, 6, 15, 16)  # write single coil, single register, multiple coils, multiple registers
_FRAME_GAP_S = 0.05  # a partial frame older than this is dropped (RTU inter-frame silence, generous)


class ModbusSlave(PtyServer):
    """Modbus RTU slave of the simulated board: ``ModbusSlave(map, n_cells).start().port``."""

    def __init__(self, register_map_path: str | Path | None, n_cells: int, unit_id: int = 1,
                 temperature_roles=None, refuse_partial: int | None = None, reply_unit_id: int | None = None):
        """``temperature_roles``: the profile's :class:`~rig.profile.Temperatures`; when it
        names roles, each position of the map gets the simulated temperature of its role.
        ``refuse_partial``: a board that answers only whole-block reads: a read of part of a
        declared block gets this exception code (2 illegal data address or 3 illegal data
        value); blocks the map marks ``read: whole`` are always served whole only (exception 02).
        ``reply_unit_id``: answer from this device id instead of ``unit_id`` (a non-standard board)."""
        if refuse_partial not in (None, 2, 3):
            raise ValueError(f"refuse_partial must be None, 2 or 3, got {refuse_partial!r}")
        super().__init__()
        self.refuse_partial = refuse_partial
        self.reply_unit_id = reply_unit_id
        self.plan: RegisterPlan = compile_register_map(register_map_path or REFERENCE_REGISTER_MAP, int(n_cells))
        self.unit_id = int(unit_id)
        self.temperature_roles = temperature_roles
        self._image = self.plan.new_image()
        self._lock = threading.Lock()
        self._corrupt: list[str] = []
        self.requests = 0
        self.replies = 0
        self.bad_frames = 0
        self.muted = False
        """True: the board answers nothing (a silent UART; requests are still counted)."""
        self._writable: dict[int, set[int]] = {}   # table (1 coils, 3 holding) -> writable addresses
        for c in self.plan.commands.values():
            self._writable.setdefault(c.table, set()).update(c.addresses())
        self._written: dict[tuple[int, int], int] = {}  # (table, address) -> raw value written by the host
        self._commands: dict[str, dict] = {}

    # ----------------------------------------------------------------- lifecycle: PtyServer
    def __del__(self):  # pragma: no cover - safety net
        try:
            self.close()
        except Exception:
            pass

    # ----------------------------------------------------------------- board side
    def update(self, telemetry) -> None:
        """Write a Telemetry into the register image (thread-safe; replies see all or nothing)."""
        image = {fc: arr.copy() for fc, arr in self._image.items()}
        temps = place_temperatures(telemetry.temps_c, self.plan.n_cells, self.plan.n_temperatures,
                                   self.temperature_roles)
        self.plan.encode_telemetry(telemetry, image, temps)
        with self._lock:
            self._overlay(image)
            self._image = image

    def _overlay(self, image: dict) -> None:
        """The host's writes over the board's own values (under the lock)."""
        for (tbl, a), v in self._written.items():
            arr = image.get(tbl)
            if arr is not None and a < len(arr):
                arr[a] = v

    @property
    def commands_received(self) -> dict:
        """Board commands the host wrote: name -> {parameter: value (engineering units), raw: [words]}."""
        with self._lock:
            return dict(self._commands)

    # ----------------------------------------------------------------- bench counterpart (rig.links.registry)
    def publish(self, telemetry, t: float) -> None:
        """One telemetry cycle at board time ``t`` (s): the register image now serves it."""
        self.update(telemetry)

    def hold(self, telemetry) -> None:
        """Serve ``telemetry`` until the next cycle."""
        self.update(telemetry)

    def registers(self, function: int | None = None) -> np.ndarray:
        """A copy of one table (address = index): ``function`` 1..4, default the map's ``table``."""
        fc = function if function is not None else (3 if self.plan.table == "holding" else 4)
        with self._lock:
            arr = self._image.get(fc)
            return arr.copy() if arr is not None else np.zeros(0, np.uint16)

    def set_raw(self, function: int, address: int, values) -> None:
        """Hand-set raw contents (thread-safe) until the next :meth:`update`: 16-bit words of
        table ``function`` 3/4, or 0/1 bits of 1/2, from ``address`` (a document's example frame)."""
        vals = np.asarray([int(v) & 0xFFFF for v in values], np.uint16)
        with self._lock:
            image = {fc: arr.copy() for fc, arr in self._image.items()}
            arr = image.get(function)
            if arr is None or address + len(vals) > len(arr):
                raise ValueError(f"function {function} table has no addresses {address}..{address + len(vals) - 1}")
            arr[address:address + len(vals)] = vals
            self._image = image

    def inject_corruption(self, n_replies: int = 1, mode: str = "flip") -> None:
        """Spoil the next ``n_replies`` replies: ``flip`` a byte (CRC error), ``short``
        (truncate), ``silent`` (no reply) or ``garbage`` (random bytes)."""
        if mode not in ("flip", "short", "silent", "garbage"):
            raise ValueError(f"unknown corruption mode {mode!r}")
        with self._lock:
            self._corrupt.extend([mode] * int(n_replies))

    # ----------------------------------------------------------------- server thread
    def _serve(self) -> None:
        from pymodbus.exceptions import ModbusException
        from pymodbus.framer import FramerRTU
        from pymodbus.pdu import DecodePDU

        framer = FramerRTU(DecodePDU(is_server=True))
        master, wake_r = self._master, self._wake[0]
        buf = b""
        last_rx = 0.0
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([master, wake_r], [], [], 0.5)
            except (OSError, ValueError):
                return
            if wake_r in ready or self._stop.is_set():
                return
            if master not in ready:
                continue
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data:
                continue
            now = time.monotonic()
            if buf and now - last_rx > _FRAME_GAP_S:
                buf = b""
                self.bad_frames += 1
            last_rx = now
            buf += data
            while buf:
                try:
                    used, pdu = framer.handleFrame(buf, 0, 0)
                except (ModbusException, ValueError, IndexError, struct.error):
                    buf = b""  # undecodable request: drop it, as a board would; keep serving
                    self.bad_frames += 1
                    break
                buf = buf[used:]
                if pdu is None:
                    break
                try:
                    self._respond(framer, pdu)
                except Exception:  # never let one odd request kill the board's UART
                    self.bad_frames += 1

    def _check(self, fc: int, addr: int, count: int) -> int:
        """0 when the read is served, else the Modbus exception code to answer."""
        ranges = self.plan.served.get(fc)
        if not ranges:
            return 1  # illegal function: the board has no such table
        if not 1 <= count <= (2000 if fc in (1, 2) else 125):
            return 3  # illegal data value: a count beyond the Modbus limit
        block = next(((s, n) for s, n in ranges if s <= addr and addr + count <= s + n), None)
        if block is None:
            return 2  # illegal data address: outside every block
        if (addr, count) != block and self.plan.blocks_declared:
            if self.refuse_partial is not None:
                return self.refuse_partial  # a board that answers whole blocks only
            if (fc, *block) in self.plan.whole_blocks:
                return 2
        return 0

    def _respond(self, framer, pdu) -> None:
        from pymodbus.pdu import ExceptionResponse
        from pymodbus.pdu.bit_message import ReadCoilsResponse, ReadDiscreteInputsResponse
        from pymodbus.pdu.register_message import ReadHoldingRegistersResponse, ReadInputRegistersResponse

        if pdu.dev_id not in (self.unit_id,):
            return  # another device on the bus (or a broadcast, which reads never use)
        self.requests += 1
        if self.muted:
            return
        fc = pdu.function_code
        if fc not in (1, 2, 3, 4) and not (fc in _WRITES and self._writable):
            self._write(self._frame(framer, ExceptionResponse(fc, exception_code=1, device_id=self.unit_id)))
            return
        addr, count = int(pdu.address), int(pdu.count)
        with self._lock:
            image = self._image
            mode = self._corrupt.pop(0) if self._corrupt else None
        code = self._check(fc, addr, count) if fc in (1, 2, 3, 4) else 0
        if fc in _WRITES:
            reply = self._take_write(pdu)
        elif code:
            reply = ExceptionResponse(fc, exception_code=code, device_id=self.unit_id)
        else:
            values = image[fc][addr:addr + count].tolist()
            if fc in (1, 2):
                cls = ReadCoilsResponse if fc == 1 else ReadDiscreteInputsResponse
                reply = cls(bits=[bool(v) for v in values], dev_id=self.unit_id, transaction_id=pdu.transaction_id)
            else:
                cls = ReadHoldingRegistersResponse if fc == 3 else ReadInputRegistersResponse
                reply = cls(registers=values, dev_id=self.unit_id, transaction_id=pdu.transaction_id)
        frame = bytearray(self._frame(framer, reply))
        if mode == "silent":
            return
        if mode == "flip":
            frame[len(frame) // 2] ^= 0x5A
        elif mode == "short":
            frame = frame[: max(3, len(frame) // 2)]
        elif mode == "garbage":
            frame = bytearray(os.urandom(len(frame)))
        self._write(bytes(frame))

    def _frame(self, framer, reply) -> bytes:
        """The RTU frame of ``reply``, from ``reply_unit_id`` when the board answers from another id."""
        frame = bytearray(framer.buildFrame(reply))
        if self.reply_unit_id is not None:
            from pymodbus.framer import FramerRTU

            frame[0] = self.reply_unit_id
            frame[-2:] = FramerRTU.compute_CRC(bytes(frame[:-2])).to_bytes(2, "big")
        return bytes(frame)

    def _take_write(self, pdu):
        """Apply a write request where the map declares it writable; its reply (echo or exception 02)."""
        from pymodbus.pdu import ExceptionResponse
        from pymodbus.pdu.bit_message import WriteMultipleCoilsResponse, WriteSingleCoilResponse
        from pymodbus.pdu.register_message import WriteMultipleRegistersResponse, WriteSingleRegisterResponse

        fc, addr = pdu.function_code, int(pdu.address)
        if fc in (5, 15):
            # pymodbus < 3.14 leaves a decoded FC 15 request's count at 0 (its bits are already cut to it)
            n = 1 if fc == 5 else (getattr(pdu, "count", 0) or len(pdu.bits))
            raws = [int(bool(b)) for b in pdu.bits[:n]]
        else:
            raws = [int(r) & 0xFFFF for r in pdu.registers]
        table = 1 if fc in (5, 15) else 3
        ok = self._writable.get(table, set())
        if not raws or any(a not in ok for a in range(addr, addr + len(raws))):
            return ExceptionResponse(fc, exception_code=2, device_id=self.unit_id)
        with self._lock:
            for k, v in enumerate(raws):
                self._written[(table, addr + k)] = v
            image = {f: arr.copy() for f, arr in self._image.items()}
            self._overlay(image)
            self._image = image
            for c in self.plan.commands.values():
                if c.matches(fc, addr, raws):
                    self._commands[c.name] = c.decode(raws)
        kw = dict(dev_id=self.unit_id, transaction_id=pdu.transaction_id, address=addr)
        if fc == 5:
            return WriteSingleCoilResponse(bits=[bool(raws[0])], **kw)
        if fc == 6:
            return WriteSingleRegisterResponse(registers=raws, **kw)
        if fc == 15:
            return WriteMultipleCoilsResponse(count=len(raws), **kw)
        return WriteMultipleRegistersResponse(count=len(raws), **kw)

    def _write(self, frame: bytes) -> None:
        view = memoryview(frame)
        while view:
            try:
                k = os.write(self._master, view)
            except OSError:
                return
            view = view[k:]
        self.replies += 1


def place_temperatures(temps_c, n_cells: int, n_reported: int, roles=None) -> np.ndarray | None:
    """The simulated board's temperatures in the map's order, °C, by the profile's roles.

    ``temps_c`` is the board model's list (cell NTCs, then the bleed-resistor NTC). A
    ``cells`` position gets the cell NTCs in turn, ``bleed_resistor`` the bleed NTC,
    ``fet``/``ambient`` and positions in no role the mean cell temperature (the bench
    models no separate FET or ambient sensor). None (keep the model's order) when the
    profile names no role."""
    if roles is None or not getattr(roles, "stated", False):
        return None
    t = np.asarray(temps_c, float)
    cells = t[:n_cells] if len(t) >= n_cells else t
    mean = float(np.mean(cells)) if len(cells) else 25.0
    bleed = float(t[n_cells]) if len(t) > n_cells else mean
    from ..profile import TEMPERATURE_ROLES

    out = np.full(n_reported, mean)
    for role in TEMPERATURE_ROLES:
        for j, i in enumerate(roles.indices(role, n_reported)):
            out[i] = float(cells[j % len(cells)]) if role == "cells" and len(cells) else (
                bleed if role == "bleed_resistor" else mean)
    return out
