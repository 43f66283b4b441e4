"""The simulated board's Modbus RTU slave on a pseudo-terminal.

``start()`` opens a pty: the slave side is a real tty (``.port``, e.g. ``/dev/pts/7``)
that the rig opens with pyserial exactly as it would open a USB-RS485 adapter; this
object serves the master side from one daemon thread. Requests and replies are real RTU
frames (pymodbus ``FramerRTU``: device id, PDU, CRC-16) decoded and built by pymodbus.
The register image comes from the same register map the rig reads
(:class:`~rig.links.register_map.RegisterPlan`), written by :meth:`update` (thread-safe).

Served: read holding registers (03) or read input registers (04), whichever table the map
names; anything else gets exception 01, an address outside the image exception 02.
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
import tty
from pathlib import Path

import numpy as np

from ..links.register_map import RegisterPlan, compile_register_map

REFERENCE_REGISTER_MAP = Path(__file__).resolve().parents[2] / "testplans" / "profiles" / "reference-bms-modbus.yaml"
_FRAME_GAP_S = 0.05  # a partial frame older than this is dropped (RTU inter-frame silence, generous)


class ModbusSlave:
    """Modbus RTU slave of the simulated board: ``ModbusSlave(map, n_cells).start().port``."""

    def __init__(self, register_map_path: str | Path | None, n_cells: int, unit_id: int = 1):
        self.plan: RegisterPlan = compile_register_map(register_map_path or REFERENCE_REGISTER_MAP, int(n_cells))
        self.unit_id = int(unit_id)
        self._image = np.zeros(self.plan.image_size, np.uint16)
        self._lock = threading.Lock()
        self._corrupt: list[str] = []
        self._master: int | None = None
        self._slave: int | None = None
        self._wake: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.port: str | None = None
        self.requests = 0
        self.replies = 0
        self.bad_frames = 0
        self.muted = False
        """True: the board answers nothing (a silent UART; requests are still counted)."""

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> "ModbusSlave":
        if self._thread is not None:
            return self
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line discipline: bytes pass untouched until pyserial configures it
        self._master, self._slave = master, slave
        self.port = os.ttyname(slave)
        self._wake = os.pipe()
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name=f"modbus-slave {self.port}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the thread and close every descriptor (idempotent)."""
        self._stop.set()
        if self._wake is not None:
            try:
                os.write(self._wake[1], b"x")
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        for fd in (self._master, self._slave, *(self._wake or ())):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = self._wake = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):  # pragma: no cover - safety net
        try:
            self.close()
        except Exception:
            pass

    # ----------------------------------------------------------------- board side
    def update(self, telemetry) -> None:
        """Write a Telemetry into the register image (thread-safe; replies see all or nothing)."""
        image = self._image.copy()
        self.plan.encode_telemetry(telemetry, image)
        with self._lock:
            self._image = image

    # ----------------------------------------------------------------- bench counterpart (rig.links.registry)
    @property
    def address(self) -> str:
        """The pty the host link opens (the slave is started if it was not)."""
        return self.start().port

    def publish(self, telemetry, t: float) -> None:
        """One telemetry cycle at board time ``t`` (s): the register image now serves it."""
        self.update(telemetry)

    def hold(self, telemetry) -> None:
        """Serve ``telemetry`` until the next cycle."""
        self.update(telemetry)

    def registers(self) -> np.ndarray:
        """A copy of the register image (address = index)."""
        with self._lock:
            return self._image.copy()

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

    def _respond(self, framer, pdu) -> None:
        from pymodbus.pdu import ExceptionResponse
        from pymodbus.pdu.register_message import ReadHoldingRegistersResponse, ReadInputRegistersResponse

        if pdu.dev_id not in (self.unit_id,):
            return  # another device on the bus (or a broadcast, which reads never use)
        self.requests += 1
        if self.muted:
            return
        fc = pdu.function_code
        want = 3 if self.plan.table == "holding" else 4
        if fc != want:
            reply = ExceptionResponse(fc, exception_code=1, device_id=self.unit_id)
        else:
            addr, count = int(pdu.address), int(pdu.count)
            with self._lock:
                image = self._image
                mode = self._corrupt.pop(0) if self._corrupt else None
            if count < 1 or count > 125 or addr + count > len(image):
                reply = ExceptionResponse(fc, exception_code=2, device_id=self.unit_id)
            else:
                cls = ReadHoldingRegistersResponse if fc == 3 else ReadInputRegistersResponse
                reply = cls(registers=image[addr:addr + count].tolist(), dev_id=self.unit_id,
                            transaction_id=pdu.transaction_id)
            frame = bytearray(framer.buildFrame(reply))
            if mode == "silent":
                return
            if mode == "flip":
                frame[len(frame) // 2] ^= 0x5A
            elif mode == "short":
                frame = frame[: max(3, len(frame) // 2)]
            elif mode == "garbage":
                frame = bytearray(os.urandom(len(frame)))
            self._write(bytes(frame))
            return
        self._write(framer.buildFrame(reply))

    def _write(self, frame: bytes) -> None:
        view = memoryview(frame)
        while view:
            try:
                k = os.write(self._master, view)
            except OSError:
                return
            view = view[k:]
        self.replies += 1
