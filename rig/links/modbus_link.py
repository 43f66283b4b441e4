"""The board's UART telemetry as a :class:`~rig.protocols.BmsLink`: Modbus RTU (pymodbus).

The link polls the board: one poll is the register map's reads (function 01 coils, 02
discrete inputs, 03 holding or 04 input registers; one transaction per declared block or
per 125 registers, never across a gap between declared blocks), decoded into a sample stamped ``clock.now()``. It polls
on :meth:`latest`, and after a ``clock.sleep`` when ``poll_s`` of rig time has passed since
the last poll (a clock listener), so :meth:`history` fills as the rig clock runs.

Every failed transaction is a :class:`~rig.errors.LinkFault` naming the link, the port, the
register range and what went wrong: no reply, a short reply, a CRC error (the received and
the computed CRC), a garbled reply, or a Modbus exception from the board. ``retries``
(default 0) lets pymodbus repeat a failed request first; each retry is counted in
``self.retried``.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import ConfigError, LinkFault
from ..protocols import BmsFlags, DutIdentity
from .base import HISTORY_LEN, LinkBase, LinkSample
from .register_map import TABLE_NAMES, RegisterPlan, compile_register_map

_EXC_NAMES = {1: "illegal function", 2: "illegal data address", 3: "illegal data value",
              4: "server device failure", 5: "acknowledge", 6: "server device busy",
              10: "gateway path unavailable", 11: "gateway target failed to respond"}


class ModbusBmsLink(LinkBase):
    """The DUT's view over Modbus RTU on a serial port.

    - ``port``: tty path (``/dev/ttyUSB0``; on the bench the sim board's pty) or pyserial URL
      (``rfc2217://host:port``, ``socket://host:port``: an exported tty)
    - ``register_map_path``: the board's register map (YAML); ``n_cells``: the profile's count
    - ``unit_id``: the board's Modbus device id; ``baudrate``: UART speed (8N1)
    - ``timeout_s``: link timeout (no sample for this long while waiting is a LinkFault)
    - ``poll_s``: minimum rig time between listener polls
    - ``response_timeout_s``: wall-clock wait for one reply; ``retries``: pymodbus retries
    """

    def __init__(self, name: str, port: str, register_map_path: str | Path, n_cells: int, clock,
                 unit_id: int = 1, baudrate: int = 115_200, timeout_s: float = 2.0, poll_s: float = 0.25,
                 response_timeout_s: float | None = None, retries: int = 0, history_len: int = HISTORY_LEN):
        from pymodbus.client import ModbusSerialClient
        from pymodbus.framer import FramerType

        self.plan: RegisterPlan = compile_register_map(register_map_path, int(n_cells))
        super().__init__(name, n_cells, clock, timeout_s, poll_s, history_len)
        self.port = str(port)
        self.unit_id = int(unit_id)
        self.baudrate = int(baudrate)
        self.response_timeout_s = float(response_timeout_s if response_timeout_s is not None
                                        else min(0.5, self.timeout_s))
        self._rx = b""
        self._tx = b""
        self.transactions = 0
        self.retried = 0
        self.last_transaction_s = 0.0
        self._last_poll_t: float | None = None
        self._client = ModbusSerialClient(
            self.port, framer=FramerType.RTU, baudrate=self.baudrate, bytesize=8, parity="N", stopbits=1,
            timeout=self.response_timeout_s, retries=int(retries), name=name, trace_packet=self._trace,
        )
        if self.port.startswith("/dev/pts/") and hasattr(self._client, "_recv_interval"):
            # a pty delivers a reply at once; pymodbus's 1 ms "is more coming" poll (meant for
            # USB adapters) would dominate the transaction. An early look is harmless: pymodbus
            # keeps reading until the frame is complete or the timeout passes.
            self._client._recv_interval = 0.0002
        if "://" in self.port:
            self._open_url()
        if not self._client.connect():
            raise LinkFault(self.name, f"cannot open serial port {self.port} at {self.baudrate} baud")
        c = self._client
        self._reads = {1: c.read_coils, 2: c.read_discrete_inputs, 3: c.read_holding_registers,
                       4: c.read_input_registers}
        self.mapped = frozenset(
            ["cell_v", "temps_c"] + (["balancing"] if self.plan.balancing else [])
            + [f"flags.{k}" for k, v in self.plan.flags.items() if v is not None]
            + [f"{k}_fet" for k, v in self.plan.fets.items() if v is not None]
            + (["pack_v"] if self.plan.pack_v else []) + (["pack_a"] if self.plan.pack_a else [])
            + (["state"] if self.plan.state else [])
        )
        self._listen()
        for c in self.plan.commands.values():  # configuration written when the link opens
            if c.when == "start":
                self._write_command(c, {})

    def command(self, name: str, **values) -> None:
        """Write board command ``name`` of the register map with parameter ``values`` (engineering
        units); the board's write response acknowledges it (LinkFault naming the command if not)."""
        from ..errors import CommandError

        c = self.plan.commands.get(name)
        if c is None:
            known = ", ".join(sorted(self.plan.commands)) or "none"
            raise CommandError(f"{self.name}: this link declares no command {name!r} (declared: {known})")
        self._write_command(c, values)

    def _write_command(self, c, values: dict) -> None:
        from pymodbus.exceptions import ModbusException

        from .modbus_commands import FUNCTION_NAMES

        raws = c.encode(values)
        client = self._client
        what = (f"command {c.name}: {FUNCTION_NAMES[c.function]} at address {c.address} of unit {self.unit_id} "
                f"on {self.port}")
        try:
            if c.function == 5:
                rr = client.write_coil(c.address, bool(raws[0]), device_id=self.unit_id)
            elif c.function == 6:
                rr = client.write_register(c.address, raws[0], device_id=self.unit_id)
            else:
                rr = client.write_registers(c.address, raws, device_id=self.unit_id)
        except ModbusException as exc:
            raise LinkFault(self.name, f"{what}: not acknowledged: {self._diagnose(0, 5)}") from exc
        except (OSError, ValueError) as exc:
            raise LinkFault(self.name, f"{what}: serial port error: {exc}") from exc
        finally:
            self.transactions += 1
        if rr.isError():
            code = getattr(rr, "exception_code", None)
            raise LinkFault(self.name, f"{what}: not acknowledged: the board answered Modbus exception {code} "
                                       f"({_EXC_NAMES.get(code, 'unknown')})")

    def _open_url(self):
        """Open a pyserial URL port (``rfc2217://``, ``socket://``: an exported tty) for the client.

        pymodbus would pass a write timeout, which pyserial's RFC 2217 client refuses; the port
        is opened here with the same framing and handed to the client (``connect`` keeps it)."""
        import serial

        try:
            sock = serial.serial_for_url(self.port, timeout=self.response_timeout_s, baudrate=self.baudrate,
                                         bytesize=8, parity="N", stopbits=1)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LinkFault(self.name, f"cannot open serial port {self.port} at {self.baudrate} baud: {exc}") from exc
        sock.inter_byte_timeout = self._client.inter_byte_timeout
        self._client.socket = sock

    @classmethod
    def from_profile(cls, profile, port: str, clock, name: str = "dut-uart", **kw):
        """Build from a :class:`~rig.profile.BoardProfile` (its ``link`` section)."""
        link = profile.link
        if getattr(link, "register_map", None) is None:
            raise ConfigError(profile.source, "link.kind", f"a Modbus link needs a Modbus profile, got link kind {link.kind!r}")
        return cls(name, port, profile.resolve(link.register_map), profile.cells, clock, unit_id=link.unit_id,
                   baudrate=link.baudrate, timeout_s=link.timeout_s, poll_s=link.poll_s, **kw)

    # ----------------------------------------------------------------- transactions
    def _trace(self, sending: bool, data: bytes) -> bytes:
        if sending:
            self._tx, self._rx = data, b""
        elif len(data) >= len(self._rx):
            self._rx = bytes(data)
        return data

    def _diagnose(self, count: int, function: int = 3) -> str:
        from pymodbus.framer import FramerRTU

        rx = self._rx
        expected = 5 + (2 * count if function in (3, 4) else (count + 7) // 8)
        if not rx:
            return f"no reply within {self.response_timeout_s:g} s"
        shown = rx[:24].hex(" ") + (" ..." if len(rx) > 24 else "")
        if len(rx) >= 2 and rx[1] & 0x80 and len(rx) >= 5:
            expected = 5
        if rx[0] != self.unit_id:
            return f"garbled reply: device id {rx[0]} instead of {self.unit_id} ({len(rx)} bytes: {shown})"
        if len(rx) < expected:
            return f"short reply: {len(rx)} of {expected} bytes ({shown})"
        got = int.from_bytes(rx[expected - 2:expected], "big")
        calc = FramerRTU.compute_CRC(rx[:expected - 2])
        if got != calc:
            return f"CRC error: reply carries 0x{got:04X}, computed 0x{calc:04X} ({len(rx)} bytes: {shown})"
        return f"garbled reply ({len(rx)} bytes: {shown})"

    def read_block(self, start: int, count: int, function: int | None = None) -> list[int]:
        """One read transaction: ``count`` registers (function 03/04: 16-bit words) or coils /
        discrete inputs (01/02: 0 or 1 each) from ``start``; LinkFault on any failure."""
        from pymodbus.exceptions import ModbusException

        fc = int(function if function is not None else (3 if self.plan.table == "holding" else 4))
        what = (f"{TABLE_NAMES[fc]} {start}..{start + count - 1} of unit {self.unit_id} "
                f"on {self.port}")
        t0 = time.perf_counter()
        try:
            rr = self._reads[fc](start, count=count, device_id=self.unit_id)
        except ModbusException as exc:
            detail = self._diagnose(count, fc)
            raise LinkFault(self.name, f"{what}: {detail}") from exc
        except (OSError, ValueError) as exc:
            raise LinkFault(self.name, f"{what}: serial port error: {exc}") from exc
        finally:
            self.transactions += 1
            self.last_transaction_s = time.perf_counter() - t0
        if rr.isError():
            code = getattr(rr, "exception_code", None)
            raise LinkFault(self.name, f"{what}: the board answered Modbus exception {code} "
                                       f"({_EXC_NAMES.get(code, 'unknown')})")
        self.retried += getattr(rr, "retries", 0) or 0
        got = [int(b) for b in rr.bits] if fc in (1, 2) else list(rr.registers)
        if len(got) < count:
            unit = "bits" if fc in (1, 2) else "registers"
            raise LinkFault(self.name, f"{what}: short reply: {len(got)} of {count} {unit}")
        return got[:count]

    def _read_all(self, reads) -> dict:
        """The tables (function -> array by address) filled by every read of ``reads`` (one
        transaction each)."""
        tables = self.plan.new_image()
        for r in reads:
            start, count = r
            tables[r.function][start:start + count] = self.read_block(start, count, r.function)
        return tables

    def poll(self) -> LinkSample:
        """Read the sample registers now and append the sample (t = clock.now())."""
        t = self.clock.now()
        regs = self._read_all(self.plan.sample_reads)
        cell_v, temps, bal, flags, fets, pack_v, pack_a, state = self.plan.decode_sample(regs)
        s = LinkSample(t=t, cell_v=cell_v, temps_c=temps, balancing=bal, flags=BmsFlags(**flags),
                       charge_fet=fets["charge"], discharge_fet=fets["discharge"],
                       pack_v=pack_v, pack_a=pack_a, state=state)
        self._history.append(s)
        self._last_poll_t = t
        return s

    # ----------------------------------------------------------------- BmsLink
    def latest(self) -> LinkSample:
        """Poll the board and return the sample (LinkFault if the transaction fails)."""
        return self.poll()

    def _refresh(self) -> None:
        if self._last_poll_t is None or self.clock.now() > self._last_poll_t:
            self.poll()

    def _on_clock(self, now: float) -> None:
        if self._last_poll_t is None or now - self._last_poll_t >= self.poll_s:
            self.poll()

    def identity(self) -> DutIdentity:
        regs = self._read_all(self.plan.identity_reads)
        d = self.plan.decode_identity(regs)
        self._identity = DutIdentity(serial=d["serial"], hw_revision=d["hw_revision"], fw_version=d["fw_version"])
        return self._identity

    def close(self) -> None:
        super().close()
        if self._client is not None:
            self._client.close()
            self._client = None
