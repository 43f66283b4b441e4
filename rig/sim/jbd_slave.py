"""Bench counterpart of the ``jbd`` link kind: the simulated board speaking the JBD protocol on a pty.

It answers read requests for registers 0x03 (basic info), 0x04 (cell voltages) and 0x05
(hardware version) from the board model's last :class:`~rig.sim.harness.Telemetry`, encoded by
:mod:`rig.links.jbd_protocol` exactly as a JBD board lays them out; in factory mode (write
0x00 <- 0x5678, leave with 0x01) also 0xA2 (barcode = the bench serial) and 0x16 (serial
number, the digits of the bench serial as U16). Anything else is answered with status 0x80.

What the board model knows and a JBD board reports:

- NTCs: the first ``ntc_count`` temperatures of the telemetry (cell NTCs, then the
  bleed-resistor NTC; °C -> 0.1 K): a profile with fewer NTCs than cells sends no
  bleed-resistor temperature, as a JBD board has none;
- protection bits: each of ``hvc lvc ot ut`` sets the first bit the profile's ``flags`` maps it to;
- software version: ``fw_version`` as ``major.minor`` nibbles; hardware version: ``hw_revision``;
- capacities and RSOC: the nominal capacity is the profile's; the bench estimates no state of
  charge (remaining capacity and RSOC are sent as 0).
"""

from __future__ import annotations

import re

import numpy as np

from ..links import jbd_protocol as jbd
from ..links.jbd_link import DEFAULT_FLAG_BITS
from .pty_slave import PtySlave


class JbdSlave(PtySlave):
    """``JbdSlave(n_cells, ntc_count, flags, capacity_ah).start().address`` (a pty path)."""

    def __init__(self, n_cells: int, ntc_count: int, flags: dict | None = None, capacity_ah: float = 0.0):
        super().__init__()
        self.n_cells = int(n_cells)
        self.ntc_count = int(ntc_count)
        bits = {**DEFAULT_FLAG_BITS, **(flags or {})}
        self.flag_bit = {k: v[0] for k, v in bits.items() if v}
        self.capacity_ah = float(capacity_ah)
        self.factory_mode = False
        self._regs: dict[int, bytes] = {}
        self._serial = ""

    # ----------------------------------------------------------------- board side
    def update(self, tel) -> None:
        """Encode a Telemetry into the register image (thread-safe: replies see all or nothing)."""
        n = self.n_cells
        temps = np.asarray(tel.temps_c, float)[: self.ntc_count]
        prot = 0
        for name, bit in self.flag_bit.items():
            if getattr(tel, name, False):
                prot |= 1 << bit
        info = jbd.BasicInfo(
            pack_v=float(tel.pack_v), pack_a=float(tel.pack_a), nominal_ah=self.capacity_ah,
            balancing=np.asarray(tel.balancing, bool), protection=prot,
            software_version=jbd.software_version_byte(tel.fw_version), charge_fet=bool(tel.charge_fet),
            discharge_fet=bool(tel.discharge_fet), cell_count=n, temps_c=temps,
        )
        regs = {jbd.BASIC_INFO: jbd.build_basic_info(info), jbd.CELL_VOLTAGES: jbd.build_cells(tel.cell_v),
                jbd.HW_VERSION: str(tel.hw_revision).encode("ascii", "replace")}
        with self.lock:
            self._regs = regs
            self._serial = str(tel.serial)

    def publish(self, tel, t: float) -> None:
        """One telemetry cycle at board time ``t`` (s): the registers now serve it."""
        self.update(tel)

    def hold(self, tel) -> None:
        """Serve ``tel`` until the next cycle."""
        self.update(tel)

    # ----------------------------------------------------------------- protocol
    def answer(self, buf: bytes):
        used, req = jbd.parse_request(buf)
        if req is None:
            return used, None
        command, register, data = req
        return used, self._reply(command, register, data)

    def _reply(self, command: int, register: int, data: bytes) -> bytes:
        if command == jbd.WRITE:
            if register == jbd.ENTER_FACTORY and data == jbd.FACTORY_KEY:
                self.factory_mode = True
                return jbd.encode_reply(register)
            if register == jbd.EXIT_FACTORY:
                self.factory_mode = False
                return jbd.encode_reply(register)
            return jbd.encode_reply(register, status=jbd.STATUS_ERROR)
        if command != jbd.READ:
            return jbd.encode_reply(register, status=jbd.STATUS_ERROR)
        with self.lock:
            payload, serial = self._regs.get(register), self._serial
        if payload is not None:
            return jbd.encode_reply(register, payload)
        if self.factory_mode and register == jbd.BARCODE:
            return jbd.encode_reply(register, serial.encode("ascii", "replace"))
        if self.factory_mode and register == jbd.SERIAL_NUM:
            digits = re.sub(r"\D", "", serial)
            return jbd.encode_reply(register, (int(digits[-4:] or 0) & 0xFFFF).to_bytes(2, "big"))
        return jbd.encode_reply(register, status=jbd.STATUS_ERROR)
