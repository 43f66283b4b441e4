"""The Daly board's UART telemetry as a :class:`~rig.protocols.BmsLink` (polled).

One poll asks the data ids the profile names (``data_ids``; default 0x90 pack V/A, 0x93 FETs
and state, 0x95 cell voltages, 0x96 temperatures, 0x97 balance bits, 0x98 failure bits) and
makes one sample stamped ``clock.now()`` (rig time, s). 0x95/0x96 are answered with one frame
per 3 cells / 7 sensors; the link reads as many as the profile's cell count and
``temperature_count`` need, in order. The protocol is :mod:`rig.links.daly_protocol`; the
polling, timeouts and error counting are :class:`~rig.links.serial_poll.PolledSerialLink`.

A data id not polled leaves its quantities unreported (:class:`~rig.links.base.Capabilities`):
without 0x97 the board's balancing is "not verified". Flags: ``hvc lvc ot ut`` are each the
OR of the 0x98 failure bits ``flags`` names (default the level-2, i.e. protection, bits: hvc =
1 cell voltage high, lvc = 3 cell voltage low, ot = 9 and 13 charge/discharge temperature
high, ut = 11 and 15). Current: Daly firmware differs on the sign; ``current_positive`` says
which direction the board sends as positive (the sample's ``pack_a`` is + charge).

Identity: the Daly protocol has no serial number, firmware or hardware version: the identity
is blank and the board is unidentified (:mod:`rig.identity`), never invented.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np

from ..protocols import BmsFlags, DutIdentity
from . import daly_protocol as daly
from .base import HISTORY_LEN, QUANTITIES, LinkSample
from .serial_poll import FrameError, PolledSerialLink, ProtocolCapabilities

DEFAULT_FLAG_BITS = {"hvc": (1,), "lvc": (3,), "ot": (9, 13), "ut": (11, 15)}
DEFAULT_DATA_IDS = (daly.SOC_V_I, daly.MOS, daly.CELL_VOLTAGES, daly.TEMPERATURES, daly.BALANCE, daly.FAILURES)
POLLABLE = {
    daly.SOC_V_I: ("pack_v", "pack_a"),
    daly.MOS: ("charge_fet", "discharge_fet", "state"),
    daly.STATUS: (),
    daly.CELL_VOLTAGES: ("cell_voltages",),
    daly.TEMPERATURES: ("temperatures",),
    daly.BALANCE: ("balancing",),
    daly.FAILURES: ("hvc", "lvc", "ot", "ut"),
}
"""Data ids a poll may ask, and the quantities each carries."""


def capabilities(data_ids, flags: dict, temperature_count: int, unreported=()) -> ProtocolCapabilities:
    """What a Daly board reports: the quantities of the polled data ids, less flags mapped to no
    bit and what the profile says the board leaves empty."""
    carried = {x for q in POLLABLE.values() for x in q}
    why = {q: "the Daly protocol has no field for it" for q in QUANTITIES if q not in carried}
    for data_id, qs in POLLABLE.items():
        if data_id not in data_ids:
            why |= {x: f"link.data_ids does not ask 0x{data_id:02X}" for x in qs}
    why |= {x: f"link.flags.{x} names no bit" for x in flags if x in carried and not flags[x] and x not in why}
    why |= {x: "link.unreported lists it" for x in unreported}
    if temperature_count == 0:
        why["temperatures"] = "link.temperature_count is 0"
    return ProtocolCapabilities(frozenset(q for q in carried if q not in why), int(temperature_count), frozenset(),
                                "Daly protocol", "", tuple(why.items()))


class DalyBmsLink(PolledSerialLink):
    """The DUT's view over the Daly UART protocol.

    - ``port``: tty path or pyserial URL; ``n_cells``: the profile's count
    - ``temperature_count``: sensors the board reports (0x96)
    - ``data_ids``: the data ids one poll asks (keys of :data:`POLLABLE`); 0x95 is required
    - ``flags``: ``{"hvc": (bit, ...), ...}`` 0x98 bits ORed into each flag
    - ``current_positive``: ``charge`` or ``discharge`` (what the board sends as positive)
    - ``address``: host address of the requests (0x40; 0x80 on some firmware)
    - ``unreported``: quantities the board leaves empty; timing as PolledSerialLink (s)
    """

    def __init__(self, name: str, port: str, n_cells: int, clock, *, temperature_count: int,
                 data_ids=DEFAULT_DATA_IDS, flags: dict | None = None, current_positive: str = "charge",
                 address: int = daly.HOST, baudrate: int = 9600, unreported=(), timeout_s: float = 2.0,
                 poll_s: float = 0.25, response_timeout_s: float = 0.5, retries: int = 2,
                 history_len: int = HISTORY_LEN):
        data_ids = tuple(int(i) for i in data_ids)
        bad = [i for i in data_ids if i not in POLLABLE]
        if bad or daly.CELL_VOLTAGES not in data_ids:
            raise ValueError(f"data_ids must include 0x95 and only {sorted(POLLABLE)}, got {data_ids}")
        if current_positive not in ("charge", "discharge"):
            raise ValueError(f"current_positive must be 'charge' or 'discharge', got {current_positive!r}")
        unknown = set(unreported) - set(QUANTITIES)
        if unknown:
            raise ValueError(f"unknown quantities {sorted(unknown)}")
        super().__init__(name, port, n_cells, clock, baudrate=baudrate, timeout_s=timeout_s, poll_s=poll_s,
                         response_timeout_s=response_timeout_s, retries=retries, history_len=history_len)
        self.temperature_count = int(temperature_count)
        self.data_ids = data_ids
        self.flag_bits = {k: tuple(v) for k, v in {**DEFAULT_FLAG_BITS, **(flags or {})}.items()}
        self.current_sign = 1.0 if current_positive == "charge" else -1.0
        self.address = int(address)
        self.capabilities = capabilities(data_ids, self.flag_bits, self.temperature_count, unreported)
        self._listen()

    # ----------------------------------------------------------------- exchanges
    def ask(self, data_id: int, frames: int = 1, numbered: bool = False) -> list[bytes]:
        """Request ``data_id`` and read ``frames`` reply frames (FrameError on any failure)."""
        what = f"Daly data id 0x{data_id:02X} on {self.port}"
        return self.exchange(daly.encode_request(data_id, self.address),
                             partial(daly.read_frames, data_id=data_id, count=frames, numbered=numbered), what)

    def read_sample(self, t: float) -> LinkSample:
        n, nt = self.n_cells, self.temperature_count
        pack_v = pack_a = state = None
        chg = dsg = False
        temps = np.zeros(0)
        bal = np.zeros(n, bool)
        flags = {}
        for data_id in self.data_ids:
            if data_id == daly.CELL_VOLTAGES:
                cells = daly.parse_cell_frames(self.ask(data_id, math.ceil(n / daly.CELLS_PER_FRAME), True), n)
            elif data_id == daly.TEMPERATURES and nt:
                temps = daly.parse_temp_frames(self.ask(data_id, math.ceil(nt / daly.TEMPS_PER_FRAME), True), nt)
            elif data_id == daly.SOC_V_I:
                soc = daly.parse_soc(self.ask(data_id)[0])
                pack_v, pack_a = soc.pack_v, self.current_sign * soc.current_a
            elif data_id == daly.MOS:
                mos = daly.parse_mos(self.ask(data_id)[0])
                chg, dsg, state = mos.charge_fet, mos.discharge_fet, mos.state
            elif data_id == daly.BALANCE:
                bal = daly.parse_balance(self.ask(data_id)[0], n)
            elif data_id == daly.FAILURES:
                bits = daly.bits_of(self.ask(data_id)[0][:7])
                flags = {k: any(bits >> b & 1 for b in v) for k, v in self.flag_bits.items()}
            elif data_id == daly.STATUS:
                self.check_counts(self.ask(data_id)[0])
        return LinkSample(t=t, cell_v=cells, temps_c=temps, balancing=bal, flags=BmsFlags(**flags),
                          charge_fet=chg, discharge_fet=dsg, pack_v=pack_v, pack_a=pack_a, state=state)

    def check_counts(self, data: bytes) -> None:
        """0x94: the board's cell and sensor counts must be the profile's (FrameError ``content``)."""
        cells, sensors = daly.parse_status(data)
        if (cells, sensors) != (self.n_cells, self.temperature_count):
            raise FrameError("content", f"Daly data id 0x94 on {self.port}: the board reports {cells} cells and "
                                        f"{sensors} temperature sensors, the profile {self.n_cells} cells and "
                                        f"link.temperature_count {self.temperature_count}")

    def identity(self) -> DutIdentity:
        """Blank: the Daly protocol carries no serial number or version (checked: the board
        answers 0x94 with the profile's counts, else LinkFault)."""
        from ..errors import LinkFault

        try:
            self.check_counts(self.attempt(lambda: self.ask(daly.STATUS))[0])
        except FrameError as err:
            raise LinkFault(self.name, f"identity not read: {err}") from None
        self._identity = DutIdentity(serial="", hw_revision="", fw_version="")
        return self._identity
