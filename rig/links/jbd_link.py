"""The JBD board's UART telemetry as a :class:`~rig.protocols.BmsLink` (polled).

One poll reads register 0x03 (basic info: pack V/A, balance bits, protection bits, FETs,
NTCs) and 0x04 (cell voltages) and makes one sample stamped ``clock.now()`` (rig time, s).
The protocol is :mod:`rig.links.jbd_protocol`; the polling, timeouts and error counting are
:class:`~rig.links.serial_poll.PolledSerialLink`.

Flags: the project's ``hvc lvc ot ut`` are each the OR of the protection bits ``flags`` names
(default: hvc = bit 0 cell overvoltage, lvc = bit 1 cell undervoltage, ot = bits 4 and 6
charge/discharge over-temperature, ut = bits 5 and 7). A reply whose cell count or NTC count
differs from the profile's is a counted link error (``content``) naming both.

Identity: ``hw_revision`` is register 0x05 (hardware version text), ``fw_version`` the
software version byte of 0x03 (``major.minor``). The serial number is not part of the
telemetry registers: with ``serial: barcode`` or ``serial: serial_num`` the link enters
factory mode (register 0x00 <- 0x5678), reads EEPROM register 0xA2 (text) or 0x16 (U16) and
leaves it (0x01 <- 0x0000); with ``serial: none`` (the default) the serial is not read and
the board is unidentified (:mod:`rig.identity`).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..protocols import BmsFlags, DutIdentity
from . import jbd_protocol as jbd
from .base import HISTORY_LEN, QUANTITIES, LinkSample
from .serial_poll import FrameError, PolledSerialLink, ProtocolCapabilities

DEFAULT_FLAG_BITS = {"hvc": (0,), "lvc": (1,), "ot": (4, 6), "ut": (5, 7)}
SERIAL_SOURCES = ("none", "barcode", "serial_num")
REPORTED = ("cell_voltages", "temperatures", "balancing", "hvc", "lvc", "ot", "ut", "charge_fet",
            "discharge_fet", "pack_v", "pack_a")
"""What the JBD telemetry registers carry (no board state: the protocol has none)."""


def capabilities(flags: dict, ntc_count: int, unreported=(), serial: str = "none") -> ProtocolCapabilities:
    """What a JBD board reports: the protocol's quantities, less the flags mapped to no bit and
    the quantities the profile says the board leaves empty (``unreported``)."""
    why = {q: "the JBD protocol has no field for it" for q in QUANTITIES if q not in REPORTED}
    why |= {x: f"link.flags.{x} names no bit" for x in flags if x in REPORTED and not flags[x]}
    why |= {x: "link.unreported lists it" for x in unreported}
    if ntc_count == 0:
        why["temperatures"] = "link.ntc_count is 0"
    ident = {"hw_revision", "fw_version"} | ({"serial"} if serial != "none" else set())
    return ProtocolCapabilities(frozenset(q for q in REPORTED if q not in why), int(ntc_count), frozenset(ident),
                                "JBD protocol", "", tuple(why.items()))


class JbdBmsLink(PolledSerialLink):
    """The DUT's view over the JBD UART protocol.

    - ``port``: tty path or pyserial URL; ``n_cells``: the profile's count
    - ``ntc_count``: NTCs the board reports (checked on every reply)
    - ``flags``: ``{"hvc": (bit, ...), ...}`` protection bits ORed into each flag
    - ``serial``: ``none``, ``barcode`` or ``serial_num`` (see the module docstring)
    - ``unreported``: quantities (:data:`rig.links.base.QUANTITIES`) the board leaves empty
    - timing as :class:`~rig.links.serial_poll.PolledSerialLink` (s)
    """

    def __init__(self, name: str, port: str, n_cells: int, clock, *, ntc_count: int, baudrate: int = 9600,
                 flags: dict | None = None, serial: str = "none", unreported=(), timeout_s: float = 2.0,
                 poll_s: float = 0.25, response_timeout_s: float = 0.5, retries: int = 2,
                 history_len: int = HISTORY_LEN):
        if serial not in SERIAL_SOURCES:
            raise ValueError(f"serial must be one of {SERIAL_SOURCES}, got {serial!r}")
        unknown = set(unreported) - set(QUANTITIES)
        if unknown:
            raise ValueError(f"unknown quantities {sorted(unknown)}")
        super().__init__(name, port, n_cells, clock, baudrate=baudrate, timeout_s=timeout_s, poll_s=poll_s,
                         response_timeout_s=response_timeout_s, retries=retries, history_len=history_len)
        self.ntc_count = int(ntc_count)
        self.flag_bits = {k: tuple(v) for k, v in {**DEFAULT_FLAG_BITS, **(flags or {})}.items()}
        self.serial_source = serial
        self.unreported = frozenset(unreported)
        self.capabilities = capabilities(self.flag_bits, self.ntc_count, self.unreported, serial)
        self._listen()

    # ----------------------------------------------------------------- exchanges
    def read_register(self, register: int) -> bytes:
        """Read one register (FrameError on any failure)."""
        what = f"JBD register 0x{register:02X} on {self.port}"
        return self.exchange(jbd.encode_request(register), partial(jbd.read_reply, register=register), what)

    def write_register(self, register: int, data: bytes) -> None:
        """Write one register (FrameError on any failure, a refusal included)."""
        what = f"JBD write of register 0x{register:02X} on {self.port}"
        self.exchange(jbd.encode_request(register, data, jbd.WRITE), partial(jbd.read_reply, register=register), what)

    def read_basic_info(self) -> jbd.BasicInfo:
        """Register 0x03, checked against the profile's cell count and the declared NTC count."""
        info = jbd.parse_basic_info(self.read_register(jbd.BASIC_INFO))
        if info.cell_count != self.n_cells:
            raise FrameError("content", f"JBD register 0x03 on {self.port}: the board reports {info.cell_count} "
                                        f"cells, the profile {self.n_cells}")
        if len(info.temps_c) != self.ntc_count:
            raise FrameError("content", f"JBD register 0x03 on {self.port}: the board reports {len(info.temps_c)} "
                                        f"NTCs, the profile's link.ntc_count is {self.ntc_count}")
        return info

    def read_sample(self, t: float) -> LinkSample:
        info = self.read_basic_info()
        cells = jbd.parse_cells(self.read_register(jbd.CELL_VOLTAGES))
        if len(cells) != self.n_cells:
            raise FrameError("content", f"JBD register 0x04 on {self.port}: {len(cells)} cell voltages, "
                                        f"the profile has {self.n_cells} cells")
        flags = {k: any(info.protection >> b & 1 for b in bits) for k, bits in self.flag_bits.items()}
        return LinkSample(t=t, cell_v=cells, temps_c=np.asarray(info.temps_c, float), balancing=info.balancing,
                          flags=BmsFlags(**flags), charge_fet=info.charge_fet, discharge_fet=info.discharge_fet,
                          pack_v=info.pack_v, pack_a=info.pack_a, state=None)

    # ----------------------------------------------------------------- identity
    def _serial_number(self) -> str:
        if self.serial_source == "none":
            return ""
        self.write_register(jbd.ENTER_FACTORY, jbd.FACTORY_KEY)
        try:
            if self.serial_source == "barcode":
                return jbd.parse_text(self.read_register(jbd.BARCODE))
            raw = self.read_register(jbd.SERIAL_NUM)
            return str(int.from_bytes(raw[:2], "big")) if len(raw) >= 2 else ""
        finally:
            self.write_register(jbd.EXIT_FACTORY, b"\x00\x00")

    def identity(self) -> DutIdentity:
        """Hardware version (0x05), software version (0x03) and the serial as configured.

        Each read is tried ``retries + 1`` times; then a LinkFault (identity is read once, not polled)."""
        from ..errors import LinkFault

        try:
            hw = jbd.parse_text(self.attempt(lambda: self.read_register(jbd.HW_VERSION)))
            fw = jbd.parse_basic_info(self.attempt(lambda: self.read_register(jbd.BASIC_INFO))).fw_version
            serial = self.attempt(self._serial_number)
        except FrameError as err:
            raise LinkFault(self.name, f"identity not read: {err}") from None
        self._identity = DutIdentity(serial=serial, hw_revision=hw, fw_version=fw)
        return self._identity
