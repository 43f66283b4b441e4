"""The board's CAN telemetry as a :class:`~rig.protocols.BmsLink` (python-can + cantools).

Which DBC signal means what comes from a signal map (:mod:`rig.links.signal_map`). The
link does not own a thread: :meth:`CanBmsLink.pump` drains the bus without blocking and is
registered as a clock listener, so every ``clock.sleep`` leaves the history current. On
the virtual bench frame timestamps are virtual time already (``frame_time`` is the
identity); on a real rig pass ``frame_time=CanBmsLink.epoch_frame_time(clock)`` (or your
interface's own conversion) so samples carry rig time.

Decode path: one dict lookup of the frame id in a table precomputed from the map, one
``cantools`` ``Message.decode(data, decode_choices=False)``, one slot store per signal.
A sample is assembled when the map's ``sample_on`` message arrives.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ConfigError, LinkFault
from ..protocols import BmsFlags, DutIdentity
from .base import HISTORY_LEN, LinkBase, LinkSample
from .signal_map import CanPlan, IdentityPlan, compile_signal_map, load_dbc

_NEG_INF = -math.inf


class CanBmsLink(LinkBase):
    """The DUT's view over CAN.

    - ``bus``: an open ``can.BusABC`` (the link reads it; ``own_bus=True`` shuts it down on close)
    - ``dbc_path``, ``signal_map_path``: the board's DBC and the rig's signal map
    - ``n_cells``: the profile's cell count (the map must cover exactly that many)
    - ``clock``: the rig clock; ``timeout_s``: no sample within this is a :class:`LinkFault`
      (``None``: the map's ``timeout_s``, else 2 s); ``poll_s``: wait granularity, s
    - ``frame_time``: frame timestamp -> rig time, s (``None`` = identity, the bench)
    """

    def __init__(self, name: str, bus, dbc_path: str | Path, signal_map_path: str | Path, n_cells: int,
                 clock, timeout_s: float | None = 2.0, poll_s: float = 0.1,
                 frame_time: Callable[[float], float] | None = None, own_bus: bool = False,
                 history_len: int = HISTORY_LEN):
        self.db = load_dbc(dbc_path)
        self.plan: CanPlan = compile_signal_map(signal_map_path, dbc_path, int(n_cells), db=self.db)
        if timeout_s is None:
            timeout_s = self.plan.timeout_s or 2.0
        super().__init__(name, n_cells, clock, timeout_s, poll_s, history_len)
        self._bus = bus
        self._own_bus = own_bus
        self._frame_time = frame_time
        plan = self.plan
        self._raw: list = [None] * len(plan.slot_names)
        self._seen: dict[int, float] = {}
        # frame id -> (decode, {signal: slot}, completes_sample)
        self._dispatch = {
            fid: (h.message.decode, h.slots, h.completes_sample) for fid, h in plan.handlers.items()
        }
        self._complete = False
        self._problem = ""
        self.frames_received = 0
        self.frames_decoded = 0
        self.decode_errors = 0
        self.error_frames = 0
        self.incomplete_cycles = 0
        # precomputed assembly
        self._cell_slots = plan.cell_v.slots
        self._cell_a = np.asarray(plan.cell_v.a, float)
        self._cell_b = np.asarray(plan.cell_v.b, float)
        self._temp_slots = plan.temps.slots
        self._temp_a = np.asarray(plan.temps.a, float)
        self._temp_b = np.asarray(plan.temps.b, float)
        self._nbytes_mask = 0
        if plan.balancing_mask:
            self._nbytes_mask = (sum(w for _, w in plan.balancing_mask) + 7) // 8 + 1
        self.mapped = frozenset(
            ["cell_v"]
            + (["temps_c"] if self._temp_slots else [])
            + (["balancing"] if (plan.balancing_mask or plan.balancing_bits) else [])
            + [f"flags.{k}" for k, v in plan.flags.items() if v is not None]
            + [f"{k}_fet" for k, v in plan.fets.items() if v is not None]
            + (["pack_v"] if plan.pack_v else []) + (["pack_a"] if plan.pack_a else [])
            + (["state"] if plan.state_slot is not None else [])
        )
        self._listen()

    # ----------------------------------------------------------------- construction helpers

    @classmethod
    def from_profile(cls, profile, bus, clock, name: str = "dut-can", frame_time=None, own_bus: bool = False):
        """Build from a :class:`~rig.profile.BoardProfile` (its ``link`` section)."""
        link = profile.link
        if getattr(link, "dbc", None) is None:
            raise ConfigError(profile.source, "link.kind", f"a CAN link needs a CAN profile, got link kind {link.kind!r}")
        dbc = profile.resolve(link.dbc)
        self = cls(name, bus, dbc, profile.resolve(link.signal_map), profile.cells, clock,
                   timeout_s=link.timeout_s, poll_s=link.poll_s, frame_time=frame_time, own_bus=own_bus)
        dbc_rate = self.dbc_bitrate
        if dbc_rate and link.bitrate and dbc_rate != link.bitrate:
            self.close()
            raise ConfigError(profile.source, "link.bitrate",
                              f"{link.bitrate} bit/s but DBC {Path(dbc).name} says {dbc_rate} bit/s")
        return self

    @staticmethod
    def epoch_frame_time(clock) -> Callable[[float], float]:
        """For interfaces stamping frames in Unix time: ``ts -> ts - (epoch at rig t=0)``."""
        offset = time.time() - clock.now()
        return lambda ts: ts - offset

    @property
    def dbc_bitrate(self) -> int | None:
        """The bit rate the DBC declares (its ``Baudrate`` attribute), if any."""
        for b in getattr(self.db, "buses", []) or []:
            if getattr(b, "baudrate", None):
                return int(b.baudrate)
        return None

    # ----------------------------------------------------------------- decode path

    def pump(self) -> int:
        """Drain the bus without blocking; decode every frame; return frames read.

        Raises :class:`LinkFault` on a bus error (``can.CanError``).
        """
        import can

        recv = self._bus.recv
        dispatch = self._dispatch
        raw = self._raw
        seen = self._seen
        n = 0
        try:
            while True:
                msg = recv(0)
                if msg is None:
                    break
                n += 1
                h = dispatch.get(msg.arbitration_id)
                if h is None:
                    if msg.is_error_frame:
                        self.error_frames += 1
                    continue
                decode, slots, completes = h
                try:
                    values = decode(msg.data, decode_choices=False)
                except Exception as exc:  # short frame, bad mux index...: count, keep going
                    self.decode_errors += 1
                    self._problem = (f"frame 0x{msg.arbitration_id:X} ({self.plan.message_names.get(msg.arbitration_id)}) "
                                     f"did not decode: {exc}")
                    continue
                for k, v in values.items():
                    s = slots.get(k)
                    if s is not None:
                        raw[s] = v
                ts = msg.timestamp
                seen[msg.arbitration_id] = ts
                if completes:
                    self._assemble(ts)
        except can.CanError as exc:
            self.frames_received += n
            raise LinkFault(self.name, f"CAN bus error on {getattr(self._bus, 'channel_info', self._bus)}: {exc}") from exc
        self.frames_received += n
        return n

    def _refresh(self) -> None:
        self.pump()

    def _on_clock(self, now: float) -> None:
        self.pump()

    def _assemble(self, ts: float) -> None:
        plan = self.plan
        raw = self._raw
        if not self._complete:
            missing = [s for s in plan.sample_slots if raw[s] is None]
            if missing:
                self.incomplete_cycles += 1
                self._problem = f"{plan.sample_on} arrived but these signals never did: {plan.describe_slots(missing)}"
                return
            self._complete = True
        seen = self._seen
        tmo = self.timeout_s
        for fid in plan.sample_frame_ids:
            if ts - seen.get(fid, _NEG_INF) > tmo:
                self.incomplete_cycles += 1
                self._problem = (f"{plan.sample_on} arrived but {plan.message_names.get(fid, hex(fid))} "
                                 f"is older than the {tmo:g} s timeout")
                return
        t = ts if self._frame_time is None else self._frame_time(ts)
        cell_v = np.array([raw[i] for i in self._cell_slots], float) * self._cell_a + self._cell_b
        temps = np.array([raw[i] for i in self._temp_slots], float) * self._temp_a + self._temp_b
        n = self.n_cells
        if plan.balancing_mask:
            m, shift = 0, 0
            for slot, width in plan.balancing_mask:
                m |= (int(raw[slot]) & ((1 << width) - 1)) << shift
                shift += width
            bits = np.unpackbits(np.frombuffer(m.to_bytes(self._nbytes_mask, "little"), np.uint8),
                                 bitorder="little")[plan.balancing_bit_offset:plan.balancing_bit_offset + n]
            bal = bits.astype(bool) if plan.balancing_active else ~bits.astype(bool)
        elif plan.balancing_bits:
            act = plan.balancing_active
            bal = np.array([int(raw[i]) == act for i in plan.balancing_bits], bool)
        else:
            bal = np.zeros(n, bool)

        def bit(ref) -> bool:
            if ref is None:
                return False
            v = int(raw[ref.slot])
            if ref.bit is not None:
                v = (v >> ref.bit) & 1
            return v == ref.active

        f = plan.flags
        flags = BmsFlags(hvc=bit(f["hvc"]), lvc=bit(f["lvc"]), ot=bit(f["ot"]), ut=bit(f["ut"]))
        pack_v = pack_a = state = None
        if plan.pack_v is not None:
            pack_v = float(raw[plan.pack_v.slots[0]]) * plan.pack_v.a[0] + plan.pack_v.b[0]
        if plan.pack_a is not None:
            pack_a = float(raw[plan.pack_a.slots[0]]) * plan.pack_a.a[0] + plan.pack_a.b[0]
        if plan.state_slot is not None:
            code = int(raw[plan.state_slot])
            state = plan.state_choices.get(code, str(code))
        self._history.append(LinkSample(
            t=t, cell_v=cell_v, temps_c=temps, balancing=bal, flags=flags,
            charge_fet=bit(plan.fets["charge"]), discharge_fet=bit(plan.fets["discharge"]),
            pack_v=pack_v, pack_a=pack_a, state=state,
        ))
        self._problem = ""

    # ----------------------------------------------------------------- BmsLink

    def latest(self) -> LinkSample:
        """The newest sample not older than the link timeout; waits on the clock up to the
        timeout for one. Raises :class:`LinkFault` naming what did not arrive."""
        self.pump()
        clock = self.clock
        newest = self._history.newest()
        now = clock.now()
        if newest is not None and now - newest.t <= self.timeout_s:
            return newest
        start, count0 = now, self._history.count
        while True:
            waited = clock.now() - start
            if waited >= self.timeout_s:
                break
            clock.sleep(min(self.poll_s, self.timeout_s - waited))
            self.pump()
            if self._history.count > count0:
                return self._history.newest()
        raise LinkFault(self.name, f"no complete sample within {self.timeout_s:g} s of rig time "
                                   f"(t={clock.now():.3f} s); {self._silence_detail()}")

    def _silence_detail(self) -> str:
        plan = self.plan
        expected = ", ".join(f"{plan.message_names.get(fid, hex(fid))} (0x{fid:X})" for fid in plan.sample_frame_ids)
        if self.frames_received == 0:
            return f"no CAN frames received at all on {getattr(self._bus, 'channel_info', 'the bus')}; expected {expected}"
        never = [f"{plan.message_names.get(fid, hex(fid))} (0x{fid:X})" for fid in plan.sample_frame_ids
                 if fid not in self._seen]
        parts = [f"{self.frames_received} frames received so far"]
        if never:
            parts.append(f"never received: {', '.join(never)}")
        newest = self._history.newest()
        if newest is not None:
            parts.append(f"last sample at t={newest.t:.3f} s")
        if self._problem:
            parts.append(self._problem)
        return "; ".join(parts)

    def identity(self) -> DutIdentity:
        """Serial, HW revision and FW version from the identity signals (waits on the clock
        up to the link timeout for identity frames, which boards send about once a second)."""
        self.pump()
        plan = self.plan
        slots = [s for p in plan.identity.values() if p is not None for s in p.slots]
        clock = self.clock
        start = clock.now()
        while any(self._raw[s] is None for s in slots):
            waited = clock.now() - start
            if waited >= self.timeout_s:
                missing = [s for s in slots if self._raw[s] is None]
                raise LinkFault(self.name, f"identity not received within {self.timeout_s:g} s: missing "
                                           f"{plan.describe_slots(missing)}")
            clock.sleep(min(self.poll_s, self.timeout_s - waited))
            self.pump()
        out = {k: (self._identity_string(p) if p is not None else "unknown") for k, p in plan.identity.items()}
        self._identity = DutIdentity(serial=out["serial"], hw_revision=out["hw_revision"],
                                     fw_version=out["fw_version"])
        return self._identity

    def _identity_string(self, p: IdentityPlan) -> str:
        vals = [self._raw[s] for s in p.slots]
        if p.kind == "ascii":
            b = b"".join(int(v).to_bytes(n, order) for v, n, order in zip(vals, p.byte_lengths, p.byte_orders))
            return b.replace(b"\x00", b"").decode("ascii", errors="replace").strip()
        nums = {name: (int(v) if float(v).is_integer() else float(v)) for name, v in zip(p.names, vals)}
        if p.kind == "format":
            return p.fmt.format(**nums)
        return str(nums["value"])

    def close(self) -> None:
        super().close()
        if self._own_bus and self._bus is not None:
            self._bus.shutdown()
            self._bus = None
