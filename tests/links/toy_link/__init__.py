"""A toy link kind ``toy``: one text line per telemetry cycle over an in-process queue.

It exists to prove that a link kind is one module + one entry point: nothing in ``rig/``
names it. Registered by ``tests/links/test_registry.py`` through a temporary dist-info
(``[bmsrig.links] toy = tests.links.toy_link:KIND``) or by patching the entry-point lookup.

Wire format (ASCII lines, one per cycle; V, °C, A, rig time s)::

    S t=1.250 v=3.3000,3.3010 T=25.0,25.1,41.5 b=01 f=0000 fet=11 pv=6.600 pa=1.250 st=charge
    I serial=SIM-0001 hw=B fw=1.4.2

``f`` = hvc lvc ot ut (1 = set), ``fet`` = charge discharge (1 = closed), ``b`` one digit per
cell (1 = bleeding). The bench sends ``I`` on the first cycle and whenever it changes.
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import Literal

import numpy as np
from pydantic import Field

from rig.errors import LinkFault
from rig.links.base import LinkBase, LinkSample
from rig.links.registry import Endpoint, LinkKind, LinkSettings
from rig.protocols import BmsFlags, DutIdentity

_WIRES: dict[str, deque] = {}
"""name -> the line queue between the bench's board and the host link (a 'wire')."""
_ids = itertools.count()


class ToySettings(LinkSettings):
    """``link: {kind: toy, decimals: 4}``: cell voltages sent with ``decimals`` digits (V)."""

    kind: Literal["toy"]
    decimals: int = Field(4, ge=1, le=6)


class ToyBench:
    """The bench counterpart: writes one line per cycle onto a fresh wire."""

    def __init__(self, profile, name: str):
        self.address = f"toy:{name}:{next(_ids)}"
        self._wire = _WIRES.setdefault(self.address, deque())
        self._fmt = f"{{:.{profile.link.decimals}f}}"
        self._ident = None
        self.muted = False
        self.lines_sent = 0

    def publish(self, tel, t: float) -> None:
        ident = (tel.serial, tel.hw_revision, tel.fw_version)
        if ident != self._ident:
            self._wire.append(f"I serial={tel.serial} hw={tel.hw_revision} fw={tel.fw_version}")
            self._ident = ident
        v = ",".join(self._fmt.format(x) for x in np.asarray(tel.cell_v, float))
        temps = ",".join(f"{x:.1f}" for x in np.asarray(tel.temps_c, float))
        bits = "".join("1" if b else "0" for b in np.asarray(tel.balancing, bool))
        flags = "".join("1" if getattr(tel, k) else "0" for k in ("hvc", "lvc", "ot", "ut"))
        fet = f"{int(bool(tel.charge_fet))}{int(bool(tel.discharge_fet))}"
        self._wire.append(f"S t={t:.6f} v={v} T={temps} b={bits} f={flags} fet={fet} "
                          f"pv={tel.pack_v:.3f} pa={tel.pack_a:.3f} st={tel.state}")
        self.lines_sent += 1

    def hold(self, tel) -> None:
        """A streaming board holds nothing."""

    def close(self) -> None:
        _WIRES.pop(self.address, None)


class ToyLink(LinkBase):
    """Host side: reads the wire's lines into samples (stamped with the line's rig time)."""

    def __init__(self, name: str, wire: deque, n_cells: int, clock, timeout_s: float, poll_s: float):
        super().__init__(name, n_cells, clock, timeout_s, poll_s)
        self._wire = wire
        self.lines = 0
        self._listen()

    def _refresh(self) -> None:
        wire = self._wire
        while wire:
            line = wire.popleft()
            self.lines += 1
            kind, _, rest = line.partition(" ")
            f = dict(item.split("=", 1) for item in rest.split(" "))
            if kind == "I":
                self._identity = DutIdentity(serial=f["serial"], hw_revision=f["hw"], fw_version=f["fw"])
                continue
            flags = [c == "1" for c in f["f"]]
            self._history.append(LinkSample(
                t=float(f["t"]), cell_v=np.array([float(x) for x in f["v"].split(",")]),
                temps_c=np.array([float(x) for x in f["T"].split(",")]),
                balancing=np.array([c == "1" for c in f["b"]], bool),
                flags=BmsFlags(hvc=flags[0], lvc=flags[1], ot=flags[2], ut=flags[3]),
                charge_fet=f["fet"][0] == "1", discharge_fet=f["fet"][1] == "1",
                pack_v=float(f["pv"]), pack_a=float(f["pa"]), state=f["st"],
            ))

    def _on_clock(self, now: float) -> None:
        self._refresh()

    def latest(self) -> LinkSample:
        """The newest sample not older than the timeout (waits on the rig clock up to it)."""
        start = self.clock.now()
        while True:
            self._refresh()
            newest = self._history.newest()
            now = self.clock.now()
            if newest is not None and now - newest.t <= self.timeout_s:
                return newest
            if now - start >= self.timeout_s:
                raise LinkFault(self.name, f"no line within {self.timeout_s:g} s ({self.lines} lines so far)")
            self.clock.sleep(self.poll_s)

    def identity(self) -> DutIdentity:
        start = self.clock.now()
        while True:
            self._refresh()
            if self._identity is not None:
                return self._identity
            if self.clock.now() - start >= self.timeout_s:
                raise LinkFault(self.name, f"no identity line within {self.timeout_s:g} s")
            self.clock.sleep(self.poll_s)


def open_link(profile, endpoint: Endpoint, clock) -> ToyLink:
    wire = _WIRES.get(endpoint.address)
    if wire is None:
        raise LinkFault(f"toy {endpoint.address}", "no such wire (the toy link exists only on the virtual bench)")
    link = profile.link
    return ToyLink(f"toy {endpoint.address}", wire, profile.cells, clock, link.timeout_s, link.poll_s)


KIND = LinkKind(name="toy", settings=ToySettings, link_class=ToyLink, open=open_link, bench=ToyBench,
                description="toy: text lines over an in-process queue (bench only)")
