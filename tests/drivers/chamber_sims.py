"""Simulated chamber controllers speaking the vendors' wire protocols, for the driver tests.

- :class:`F4Sim` — a Watlow F4: Modbus RTU frames (decoded and built by pymodbus's
  ``FramerRTU``) on a pseudo-terminal; holding registers 100 (PV) and 300 (SP), signed
  °C × 10, and an optional ramp register (°C/min × 10). Functions 03, 06 and 16.
- :class:`EZZoneSim` — a Watlow EZ-Zone PM: Watlow Standard Bus (BACnet MS/TP framing:
  preamble ``55 FF``, header with CRC-8, body with CRC-16) on a pseudo-terminal; parameter
  4001 (PV) read, 7001 (closed-loop set point) read and written, IEEE floats in °F.
- :class:`F4TSim` — a Watlow F4T: Modbus TCP (pymodbus framing), float registers of loop 1.
- :class:`F4TSim` — a Watlow F4T: Modbus TCP (pymodbus's framing), float registers of loop 1.
- :class:`EspecSim` — an Espec P-300 / SCP-220: its ASCII command set over TCP
  (``TEMP?``, ``TEMP, S<sp>``, ``MON?``, ``ROM?``, ``TYPE?``, ``MODE,<mode>``), CR LF.

Each has the same thermal response, :meth:`Thermal.advance`: the process value approaches
the set point at the ramp rate (or the controller's default ramp), for a StepClock's
``on_step``; or, when a rig in another process drives it, ``auto_advance_s`` of controller
time per request. Each logs every write it received (``writes``) so a test can show that a
refused command reached nothing.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import threading
import tty


class Thermal:
    """PV → SP at ``ramp`` °C/min (``default_ramp`` when no ramp was set). Temperatures in °C.

    :meth:`couple` hands the controller's thermal state to the virtual bench's world instead:
    the process value is then the world's chamber air temperature, the set point the world's
    chamber target, and every set-point or ramp write the controller receives is a
    ``World.set_chamber`` call (the bench's chamber model does the physics, in rig time).
    """

    def __init__(self, pv_c: float, sp_c: float, default_ramp_c_per_min: float):
        self._world = None  # a callable returning the bench's World when coupled
        self._pv, self._sp = float(pv_c), float(sp_c)
        self._ramp: float | None = None
        self.default_ramp = float(default_ramp_c_per_min)
        self.writes: list[tuple] = []
        self.auto_advance_s = 0.0  # controller time passed per request (a rig in another process)

    def couple(self, world) -> None:
        """Let the bench world ``world()`` be the chamber (a callable: the world is built when the
        bench activates and gone when it deactivates; while it returns None the controller
        keeps its own state)."""
        self._world = world

    def _w(self):
        return self._world() if self._world is not None else None

    @property
    def pv(self) -> float:
        w = self._w()
        return float(w.chamber_temperature()) if w is not None else self._pv

    @pv.setter
    def pv(self, celsius: float) -> None:
        self._pv = float(celsius)

    @property
    def sp(self) -> float:
        w = self._w()
        return float(w.chamber_setpoint()) if w is not None else self._sp

    @sp.setter
    def sp(self, celsius: float) -> None:
        self._sp = float(celsius)
        w = self._w()
        if w is not None:
            w.set_chamber(self._sp, self._ramp or None)

    @property
    def ramp(self) -> float | None:
        return self._ramp

    @ramp.setter
    def ramp(self, c_per_min: float | None) -> None:
        self._ramp = c_per_min
        w = self._w()
        if w is not None:  # the ramp applies from now on, toward the present target
            w.set_chamber(w.chamber_setpoint(), c_per_min or None)

    def tick(self) -> None:
        if self.auto_advance_s and self._world is None:
            self.advance(self.auto_advance_s)

    def advance(self, dt: float) -> None:
        rate = (self.ramp or self.default_ramp) / 60.0
        self._pv += max(-rate * dt, min(rate * dt, self._sp - self._pv))

    def on_step(self, t0: float, t1: float) -> None:
        self.advance(t1 - t0)


class _PtyServer:
    """Serves the master side of a pty from a daemon thread; ``.port`` is the tty path."""

    def __init__(self):
        self.port: str | None = None
        self._fds: tuple[int, int] | None = None
        self._wake: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None
        self.silent = False  # True: swallow requests (a controller that went away)

    def start(self):
        master, slave = os.openpty()
        tty.setraw(slave)
        self._fds = (master, slave)
        self.port = os.ttyname(slave)
        self._wake = os.pipe()
        self._thread = threading.Thread(target=self._serve, name=f"{type(self).__name__} {self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._wake is None:
            return
        os.write(self._wake[1], b"x")
        self._thread.join(2.0)
        for fd in (*self._fds, *self._wake):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake = None

    def _serve(self):
        master, wake = self._fds[0], self._wake[0]
        buf = b""
        while True:
            ready, _, _ = select.select([master, wake], [], [], 0.5)
            if wake in ready:
                return
            if master not in ready:
                continue
            try:
                buf += os.read(master, 4096)
            except OSError:
                return
            while buf:
                used, reply = self.handle(buf)
                if used == 0:
                    break
                buf = buf[used:]
                if reply and not self.silent:
                    os.write(master, reply)

    def handle(self, buf: bytes) -> tuple[int, bytes | None]:  # pragma: no cover - abstract
        raise NotImplementedError


class _TcpServer:
    """Serves one TCP connection at a time on 127.0.0.1 from a daemon thread; ``.port`` is
    the TCP port. Subclasses answer through :meth:`handle` (as :class:`_PtyServer`) and may
    reset per-connection state in :meth:`connected`."""

    def _init_tcp(self):
        self._sock: socket.socket | None = None
        self._conn: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    def start(self):
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name=f"{type(self).__name__} {self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Close the listener and the connection being served (the controller goes away)."""
        sock, self._sock = self._sock, None
        for s in (sock, self._conn):
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
        if sock is not None:
            self._thread.join(2.0)

    def connected(self) -> None:
        """A client connected (reset per-connection state)."""

    def _serve(self):
        while self._sock is not None:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connected()
            self._conn = conn
            with conn:
                buf = b""
                while self._sock is not None:
                    try:
                        data = conn.recv(1024)
                    except OSError:
                        break
                    if not data:
                        break
                    buf += data
                    while buf:
                        used, reply = self.handle(buf)
                        if used == 0:
                            break
                        buf = buf[used:]
                        if reply:
                            conn.sendall(reply)

    def handle(self, buf: bytes) -> tuple[int, bytes | None]:  # pragma: no cover - abstract
        raise NotImplementedError


# ----------------------------------------------------------------------------- Watlow F4


def _s16(raw: int) -> int:
    return raw - 0x10000 if raw & 0x8000 else raw


class F4Sim(_PtyServer, Thermal):
    PV_REG, SP_REG = 100, 300

    def __init__(self, pv_c=25.0, sp_c=25.0, default_ramp_c_per_min=2.0, address=1, ramp_register=None):
        _PtyServer.__init__(self)
        Thermal.__init__(self, pv_c, sp_c, default_ramp_c_per_min)
        from pymodbus.framer import FramerRTU
        from pymodbus.pdu import DecodePDU

        self.address, self.ramp_register = address, ramp_register
        self.raw_pv: int | None = None  # force a raw PV register value (sensor-break codes)
        self._framer = FramerRTU(DecodePDU(is_server=True))

    def _registers(self) -> dict[int, int]:
        regs = {self.PV_REG: int(round(self.pv * 10)) & 0xFFFF if self.raw_pv is None else self.raw_pv,
                self.SP_REG: int(round(self.sp * 10)) & 0xFFFF}
        if self.ramp_register is not None:
            regs[self.ramp_register] = int(round((self.ramp or 0.0) * 10)) & 0xFFFF
        return regs

    def _store(self, address: int, raw: int) -> bool:
        self.writes.append((address, _s16(raw)))
        if address == self.SP_REG:
            self.sp = _s16(raw) / 10
        elif address == self.ramp_register:
            self.ramp = _s16(raw) / 10
        else:
            return False
        return True

    def handle(self, buf):
        from pymodbus.pdu import ExceptionResponse
        from pymodbus.pdu.register_message import (ReadHoldingRegistersResponse, WriteMultipleRegistersResponse,
                                                   WriteSingleRegisterResponse)

        used, pdu = self._framer.handleFrame(buf, 0, 0)
        if pdu is None or pdu.dev_id != self.address:
            return used, None
        self.tick()
        fc, regs = pdu.function_code, self._registers()
        if fc == 3:
            addrs = range(pdu.address, pdu.address + pdu.count)
            if not all(a in regs for a in addrs):
                reply = ExceptionResponse(fc, exception_code=2, device_id=self.address)
            else:
                reply = ReadHoldingRegistersResponse(registers=[regs[a] for a in addrs], dev_id=self.address)
        elif fc == 6:
            ok = self._store(pdu.address, pdu.registers[0])
            reply = (WriteSingleRegisterResponse(address=pdu.address, registers=pdu.registers, dev_id=self.address)
                     if ok else ExceptionResponse(fc, exception_code=2, device_id=self.address))
        elif fc == 16:
            ok = all(self._store(pdu.address + i, r) for i, r in enumerate(pdu.registers))
            reply = (WriteMultipleRegistersResponse(address=pdu.address, count=len(pdu.registers), dev_id=self.address)
                     if ok else ExceptionResponse(fc, exception_code=2, device_id=self.address))
        else:
            reply = ExceptionResponse(fc, exception_code=1, device_id=self.address)
        return used, self._framer.buildFrame(reply)


# ----------------------------------------------------------------------------- EZ-Zone Std Bus


def _crc8_header(data: bytes) -> int:
    """BACnet MS/TP header CRC (ANSI/ASHRAE 135 Annex G.1), as sent: ones' complement."""
    crc = 0xFF
    for b in data:
        crc ^= b
        wide = crc ^ (crc << 1) ^ (crc << 2) ^ (crc << 3) ^ (crc << 4) ^ (crc << 5) ^ (crc << 6) ^ (crc << 7)
        crc = ((wide & 0xFE) ^ ((wide >> 8) & 1)) & 0xFF
    return (~crc) & 0xFF


def _crc16_data(data: bytes) -> bytes:
    """BACnet MS/TP data CRC (CRC-CCITT, reflected, init 0xFFFF), ones' complement, low byte first."""
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return struct.pack("<H", (~crc) & 0xFFFF)


def _f_to_c(f):
    return (f - 32.0) / 1.8


def _c_to_f(c):
    return c * 1.8 + 32.0


class EZZoneSim(_PtyServer, Thermal):
    """Watlow EZ-Zone PM on Standard Bus, zone address 0x10 (what the ``watlow`` package sends)."""

    PV, SP = (4, 1), (7, 1)  # parameter 4001 (analog input value), 7001 (closed-loop set point)

    def __init__(self, pv_c=25.0, sp_c=25.0, default_ramp_c_per_min=2.0):
        _PtyServer.__init__(self)
        Thermal.__init__(self, pv_c, sp_c, default_ramp_c_per_min)
        self.bad_frames = 0

    @staticmethod
    def frame(header: bytes, body: bytes) -> bytes:
        return b"\x55\xff" + header + bytes([_crc8_header(header)]) + body + _crc16_data(body)

    def handle(self, buf):
        start = buf.find(b"\x55\xff")
        if start < 0:
            return len(buf), None
        if start:
            return start, None
        if len(buf) < 8:
            return 0, None
        header = buf[2:7]
        n = int.from_bytes(header[3:5], "big")
        if len(buf) < 8 + n + 2:
            return 0, None
        used = 8 + n + 2
        body = buf[8:8 + n]
        if buf[7] != _crc8_header(header) or buf[8 + n:used] != _crc16_data(body) or header[:2] != b"\x05\x10":
            self.bad_frames += 1
            return used, None
        self.tick()
        # read:  01 03 01 <class> <member> <instance>
        # write: 01 04 <class> <member> <instance> 08 <float>
        service = body[:2]
        if service == b"\x01\x03" and n == 6 and (body[3], body[4]) in (self.PV, self.SP):
            param = (body[3], body[4])
            value = self.pv if param == self.PV else self.sp
            out = b"\x02\x03\x01" + bytes(param) + b"\x01\x08" + struct.pack(">f", _c_to_f(value))
        elif service == b"\x01\x04" and n == 10 and (body[2], body[3]) == self.SP and body[5:6] == b"\x08":
            f = struct.unpack(">f", body[6:10])[0]
            self.writes.append(("7001", f))
            self.sp = _f_to_c(f)
            out = b"\x02\x04" + body[2:6] + struct.pack(">f", f)
        else:
            self.bad_frames += 1
            return used, None
        return used, self.frame(b"\x06\x00\x10" + len(out).to_bytes(2, "big"), out)


# ----------------------------------------------------------------------------- Espec P-300


class EspecSim(_TcpServer, Thermal):
    """An Espec P-300 (or SCP-220) chamber on TCP: one client at a time, CR LF lines."""

    def __init__(self, pv_c=25.0, sp_c=25.0, default_ramp_c_per_min=2.0, rom="P3-V1.05", controller="P300",
                 upper_c=180.0, lower_c=-75.0):
        Thermal.__init__(self, pv_c, sp_c, default_ramp_c_per_min)
        self.rom, self.controller = rom, controller
        self.upper, self.lower = upper_c, lower_c
        self.mode = "STANDBY"
        self.received: list[str] = []
        self._init_tcp()

    def handle(self, buf: bytes):
        """One CR LF terminated command line -> its answer line."""
        if b"\r\n" not in buf:
            return 0, None
        line = buf.split(b"\r\n", 1)[0]
        return len(line) + 2, self.answer(line.decode("ascii")).encode("ascii") + b"\r\n"

    def answer(self, cmd: str) -> str:
        self.received.append(cmd)
        self.tick()
        if cmd == "TEMP?":
            return f"{self.pv:.1f},{self.sp:.1f},{self.upper:.1f},{self.lower:.1f}"
        if cmd == "MON?":
            return f"{self.pv:.1f},,{self.mode},0"
        if cmd == "ROM?":
            return self.rom
        if cmd == "TYPE?":
            return f"T,{self.controller},{self.upper:.0f}"
        if cmd == "MODE?":
            return self.mode
        if cmd.startswith("TEMP,"):
            args = cmd[5:].split()
            if len(args) != 1 or not args[0].startswith("S"):
                return "NA:PARA ERR"
            try:
                sp = float(args[0][1:])
            except ValueError:
                return "NA:PARA ERR"
            if not self.lower <= sp <= self.upper:
                return "NA:DATA OUT OF RANGE"
            self.writes.append(("TEMP", sp))
            self.sp = sp
            return f"OK:{cmd}"
        if cmd.startswith("MODE,"):
            mode = cmd[5:]
            if mode not in ("OFF", "STANDBY", "CONSTANT"):
                return "NA:PARA ERR"
            self.writes.append(("MODE", mode))
            self.mode = mode
            return f"OK:{cmd}"
        return "NA:CMD ERR"


class EspecSerialSim(_PtyServer):
    """The same Espec controller on RS-485 (a pty): lines ``<address>,<command>`` CR LF."""

    def __init__(self, chamber: EspecSim, address: int = 1):
        super().__init__()
        self.chamber, self.address = chamber, address

    def handle(self, buf):
        end = buf.find(b"\r\n")
        if end < 0:
            return 0, None
        addr, _, cmd = buf[:end].decode("ascii").partition(",")
        if addr != str(self.address):
            return end + 2, None  # another controller on the bus
        return end + 2, self.chamber.answer(cmd).encode("ascii") + b"\r\n"


# ----------------------------------------------------------------------------- Watlow F4T


class F4TSim(_TcpServer, Thermal):
    """A Watlow F4T on Modbus TCP (127.0.0.1, an ephemeral port): frames decoded and built by
    pymodbus's ``FramerSocket``; holding registers of control loop 1 as the F4T documents them
    (floats in two registers, low word first): constant set point 2782, current set point 2810,
    process value 2820, range 2774/2776, control mode 2730 (62 off, 10 auto). Functions 03, 06, 16."""

    MODE, RMIN, RMAX, SP, SP_NOW, PV = 2730, 2774, 2776, 2782, 2810, 2820

    def __init__(self, pv_c=25.0, sp_c=25.0, default_ramp_c_per_min=2.0, address=1, range_c=(-70.0, 180.0)):
        Thermal.__init__(self, pv_c, sp_c, default_ramp_c_per_min)
        self.address, self.range_c = address, range_c
        self.mode = 62  # off until a set point switches the loop to auto
        self.received: list[tuple[int, int]] = []  # (function code, address) of every request
        self._init_tcp()
        self._framer = None

    def connected(self) -> None:
        from pymodbus.framer import FramerSocket
        from pymodbus.pdu import DecodePDU

        self._framer = FramerSocket(DecodePDU(is_server=True))

    def handle(self, buf: bytes):
        """One Modbus TCP frame -> its reply frame (pymodbus's own framing)."""
        used, pdu = self._framer.handleFrame(buf, 0, 0)
        if used == 0 or pdu is None:
            return used, None
        reply = self.handle_pdu(pdu)
        reply.transaction_id = pdu.transaction_id
        return used, self._framer.buildFrame(reply)

    @staticmethod
    def _f(value):
        lo, hi = struct.unpack("<HH", struct.pack("<f", float(value)))
        return [lo, hi]

    def _registers(self) -> dict[int, int]:
        regs = {self.MODE: self.mode}
        for base, value in ((self.RMIN, self.range_c[0]), (self.RMAX, self.range_c[1]), (self.SP, self.sp),
                            (self.SP_NOW, self.sp), (self.PV, self.pv)):
            regs[base], regs[base + 1] = self._f(value)
        return regs

    def handle_pdu(self, pdu):
        from pymodbus.pdu import ExceptionResponse
        from pymodbus.pdu.register_message import (ReadHoldingRegistersResponse, WriteMultipleRegistersResponse,
                                                   WriteSingleRegisterResponse)

        fc = pdu.function_code
        self.received.append((fc, pdu.address))
        self.tick()
        if pdu.dev_id != self.address:
            return ExceptionResponse(fc, exception_code=11, device_id=pdu.dev_id)
        if fc == 3:
            regs = self._registers()
            addrs = range(pdu.address, pdu.address + pdu.count)
            if not all(a in regs for a in addrs):
                return ExceptionResponse(fc, exception_code=2, device_id=self.address)
            return ReadHoldingRegistersResponse(registers=[regs[a] for a in addrs], dev_id=self.address)
        if fc == 6 and pdu.address == self.MODE and pdu.registers[0] in (62, 10, 54):
            self.writes.append(("mode", pdu.registers[0]))
            self.mode = pdu.registers[0]
            return WriteSingleRegisterResponse(address=pdu.address, registers=pdu.registers, dev_id=self.address)
        if fc == 16 and pdu.address == self.SP and len(pdu.registers) == 2:
            value = struct.unpack("<f", struct.pack("<HH", *pdu.registers))[0]
            if not self.range_c[0] <= value <= self.range_c[1]:
                return ExceptionResponse(fc, exception_code=3, device_id=self.address)
            self.writes.append(("sp", value))
            self.sp = value
            return WriteMultipleRegistersResponse(address=pdu.address, count=2, dev_id=self.address)
        return ExceptionResponse(fc, exception_code=2 if fc in (6, 16) else 1, device_id=self.address)
