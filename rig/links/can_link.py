"""The board's CAN telemetry as a :class:`~rig.protocols.BmsLink` (python-can + cantools).

Which DBC signal means what comes from a signal map (:mod:`rig.links.signal_map`). The
link does not own a thread: :meth:`CanBmsLink.pump` drains the bus without blocking and is
registered as a clock listener, so every ``clock.sleep`` leaves the history current. On
the virtual bench frame timestamps are virtual time already (``frame_time`` is the
identity); on a real rig pass ``frame_time=CanBmsLink.epoch_frame_time(clock)`` (or your
interface's own conversion) so samples carry rig time.

Decode path: one dict lookup of the frame id in a table precomputed from the map, then
the frame's compiled store (:mod:`rig.links.can_fastpath`: cantools' bitstruct formats,
each mapped signal scaled by its cantools conversion into its slot), or for what that does
not cover ``cantools`` ``Message.decode(data, decode_choices=False)`` and one slot store
per signal. A sample is assembled when the map's ``sample_on`` message arrives.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from operator import itemgetter
from typing import Callable

import numpy as np

from ..errors import ConfigError, LinkFault
from ..protocols import BmsFlags, DutIdentity
from .base import HISTORY_LEN, LinkBase, LinkSample
from .can_bits import CellBits
from .can_commands import CommandSender, CommandsMixin
from .can_drain import frame_reader
from .can_fastpath import compile_store
from .can_requests import RequestScheduler
from .dbc import codec
from .signal_map import CanPlan, IdentityPlan, compile_signal_map, load_dbc
from .signal_map_ext import PGN_MASK

_NEG_INF = -math.inf
_MISS = object()
_DISPATCH_CACHE = 4096  # identifiers remembered (J1939 matches and ignored ids)


def _getter(slots: list[int]):
    """``raw -> tuple of raw[i] for i in slots`` (operator.itemgetter, a tuple even for one slot)."""
    if not slots:
        return lambda raw: ()
    get = itemgetter(*slots)
    return (lambda raw: (get(raw),)) if len(slots) == 1 else get


class CanBmsLink(CommandsMixin, LinkBase):
    """The DUT's view over CAN.

    - ``bus``: an open ``can.BusABC`` (the link reads it; ``own_bus=True`` shuts it down on close)
    - ``dbc_path``, ``signal_map_path``: the board's DBC and the rig's signal map
    - ``n_cells``: the profile's cell count (the map must cover exactly that many)
    - ``clock``: the rig clock; ``timeout_s``: no sample within this is a :class:`LinkFault`
      (``None``: the map's ``timeout_s``, else 2 s); ``poll_s``: wait granularity, s
    - ``frame_time``: frame timestamp -> rig time, s (``None`` = identity, the bench)
    - ``fast_path``: unpack frames straight into slots (:mod:`rig.links.can_fastpath`);
      ``False`` decodes every frame with ``Message.decode`` (same samples, slower)
    """

    def __init__(self, name: str, bus, dbc_path: str | Path, signal_map_path: str | Path, n_cells: int,
                 clock, timeout_s: float | None = 2.0, poll_s: float = 0.1,
                 frame_time: Callable[[float], float] | None = None, own_bus: bool = False,
                 history_len: int = HISTORY_LEN, fast_path: bool = True):
        self.db = load_dbc(dbc_path)
        self.plan: CanPlan = compile_signal_map(signal_map_path, dbc_path, int(n_cells), db=self.db)
        if timeout_s is None:
            timeout_s = self.plan.timeout_s or 2.0
        super().__init__(name, n_cells, clock, timeout_s, poll_s, history_len)
        self._bus = bus
        self._own_bus = own_bus
        self._waiting = frame_reader(bus)  # () -> the frames waiting on the bus (can_drain)
        self._frame_time = frame_time
        plan = self.plan
        self._raw: list = [None] * len(plan.slot_names)
        self._seen: dict[tuple, float] = {}   # source (frame id, page or None) -> last frame time
        # frame id -> (frame id, decode, {signal: slot}, completes_sample, page index, {page: {signal: slot}})
        self._dispatch = {fid: self._entry(fid, h, codec(self.db, h.message), plan.events, self._raw, self._seen,
                                           fast_path) for fid, h in plan.handlers.items()}
        # frame id -> (compiled store, anything after the store: event / response / sample)
        responses = frozenset(r.response_id for r in plan.requests if r.response_id is not None)
        self.commands = CommandSender(plan.commands, self._send)  # acks, paged answers: Message.decode
        self.requests = RequestScheduler(plan.requests, self._send, plan.message_names, plan.handlers)
        self._fast = {fid: (h[-1], h[3] or h[8] or fid in responses, fid) for fid, h in self._dispatch.items()
                      if h[-1] is not None and fid not in self.commands.ack_ids | self.requests.paged_ids}
        #: frame ids decoded by the compiled fast path (the rest by ``Message.decode``)
        self.fast_frame_ids = frozenset(self._fast)
        self._j1939 = dict(plan.j1939)
        self._complete = False
        self._events_this_cycle: set[int] = set()  # event frames received since the last sample
        self._problem = ""
        self.frames_received = 0
        self.frames_decoded = 0   # frames of a mapped message that decoded (fast path or Message.decode)
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
        self._cell_get = _getter(self._cell_slots)
        self._temp_get = _getter(self._temp_slots)
        self._cell_src = sorted({src for ss in plan.cell_sources for src in ss}, key=str)
        pos = {src: j for j, src in enumerate(self._cell_src)}
        self._cell_src_idx = [[pos[src] for src in ss] for ss in plan.cell_sources]
        self._required = [self._key(src) for src in plan.required_sources]
        self._cell_keys = [self._key(src) for src in self._cell_src]
        self._event_slots: dict[int, list[int]] = {}
        for slot in plan.event_slots:
            self._event_slots.setdefault(plan.slot_source[slot][0], []).append(slot)
        self._cell_src_simple = (np.array([ix[0] for ix in self._cell_src_idx], int)
                                 if all(len(ix) == 1 for ix in self._cell_src_idx) else None)
        n = self.n_cells  # per-cell bits (can_bits): balancing (bleeding = True), validity
        self._bal_bits = CellBits(n, plan.balancing_mask, plan.balancing_bit_offset, plan.balancing_bits,
                                  plan.balancing_at, invert=not plan.balancing_active) \
            if (plan.balancing_mask or plan.balancing_bits or plan.balancing_at) else None
        self._valid_bits = CellBits(n, *plan.valid[:3], plan.valid_at) if plan.valid is not None else None
        self.mapped = frozenset(
            ["cell_v"]
            + (["temps_c"] if self._temp_slots else [])
            + (["balancing"] if (plan.balancing_mask or plan.balancing_bits or plan.balancing_at) else [])
            + [f"flags.{k}" for k, v in plan.flags.items() if v is not None]
            + [f"{k}_fet" for k, v in plan.fets.items() if v is not None]
            + (["pack_v"] if plan.pack_v else []) + (["pack_a"] if plan.pack_a else [])
            + (["state"] if plan.state_slot is not None else [])
        )
        self._listen()
        self.requests.start(clock.now())
        self.commands.start(clock.now())

    @staticmethod
    def _entry(fid: int, h, message, events, raw: list, seen: dict, fast_path: bool):
        pidx = h.page_index
        psig = None if pidx is None else pidx.signal
        pbyte = None if pidx is None or psig is not None else (pidx.byte, pidx.shift, pidx.mask)
        fast = None if not fast_path or pbyte is not None else compile_store(message, h.slots, fid, raw, seen, psig,
                                                                              h.pages)
        return (fid, message.decode, h.slots, h.completes_sample, pidx is not None, psig, pbyte, h.pages,
                fid in events, fast)

    def _send(self, frame_id: int, extended: bool, data: bytes) -> None:
        """Transmit one frame (a request), stamped with rig time (the bench keeps timestamps)."""
        import can

        msg = can.Message(arbitration_id=frame_id, is_extended_id=extended, data=data,
                          timestamp=self.clock.now())
        try:
            self._bus.send(msg)
        except can.CanError as exc:
            raise LinkFault(self.name, f"cannot send 0x{frame_id:X} on "
                                       f"{getattr(self._bus, 'channel_info', self._bus)}: {exc}") from exc

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
        """Drain the bus without blocking; decode every frame; send requests that are due;
        return frames read. Raises :class:`LinkFault` on a bus error (``can.CanError``)."""
        import can

        try:
            n = self.feed(self._waiting())
        except can.CanError as exc:
            raise LinkFault(self.name, f"CAN bus error on {getattr(self._bus, 'channel_info', self._bus)}: {exc}") from exc
        if self.requests.plans:
            self.requests.service(self.clock.now())
        if self.commands.plans:
            self.commands.service(self.clock.now())
        return n

    def feed(self, frames) -> int:
        """Decode ``frames`` (``can.Message`` objects, e.g. from a log reader) in order; return
        how many were read. Samples complete into the history as on a live bus."""
        dispatch = self._dispatch
        raw = self._raw
        seen = self._seen
        responses = self.requests.response_ids
        fast_ids = self._fast
        n = d = 0  # frames read, frames decoded
        try:
            for msg in frames:
                n += 1
                f = fast_ids.get(msg.arbitration_id)
                if f is not None and f[0](msg.data, msg.timestamp):
                    d += 1
                    if f[1]:
                        self._after_store(f[2], msg.timestamp)
                    continue
                aid = msg.arbitration_id
                h = dispatch.get(aid, _MISS)
                if h is _MISS:
                    h = self._lookup(msg)
                if h is None:
                    if msg.is_error_frame:
                        self.error_frames += 1
                    continue
                fid, decode, slots, completes, paged, psig, pbyte, pages, event, fast = h
                data = msg.data
                if fast is not None and aid != fid and fast(data, msg.timestamp):  # a J1939 alias
                    d += 1
                    self._after_store(fid, msg.timestamp)
                    continue
                try:
                    values = decode(data, decode_choices=False)
                except Exception as exc:  # short frame, bad mux index...: count, keep going
                    self.decode_errors += 1
                    self._problem = (f"frame 0x{aid:X} ({self.plan.message_names.get(fid)}) did not decode: {exc}")
                    continue
                d += 1
                for k, v in values.items():
                    s = slots.get(k)
                    if s is not None:
                        raw[s] = v
                ts = msg.timestamp
                seen[fid] = ts
                if paged:
                    if psig is not None:
                        page = values.get(psig)
                    else:
                        page = (data[pbyte[0]] >> pbyte[1]) & pbyte[2] if pbyte[0] < len(data) else None
                    seen[(fid, page)] = ts
                    ps = pages.get(page)
                    if ps is not None:
                        for k, s in ps.items():
                            v = values.get(k)
                            if v is not None:
                                raw[s] = v
                if event:
                    self._events_this_cycle.add(fid)
                if responses and fid in responses:
                    self.requests.answered(fid, page if paged else None)
                if fid in self.commands.ack_ids:
                    self.commands.received(fid, values)
                if completes:
                    self._assemble(ts)
        finally:
            self.frames_received += n
            self.frames_decoded += d
        return n

    def _after_store(self, fid: int, ts: float) -> None:
        """What follows a fast-path store of frame ``fid``: event bookkeeping, a request
        answered, a sample completed (in the general path's order)."""
        if fid in self.plan.events:
            self._events_this_cycle.add(fid)
        if fid in self.requests.response_ids:
            self.requests.answered(fid)
        if fid == self.plan.sample_on_id:
            self._assemble(ts)

    def _lookup(self, msg):
        """A frame id not in the table: J1939 by PGN (priority / source address as the map
        allows), else ignored. The answer is cached per identifier."""
        h = None
        aid = msg.arbitration_id
        if self._j1939 and msg.is_extended_id and not msg.is_error_frame:
            fid = self._j1939.get(aid & PGN_MASK)
            plan = self.plan
            if fid is not None and (plan.j1939_sa is None or (aid & 0xFF) in plan.j1939_sa) \
                    and (plan.j1939_priority is None or (aid >> 26) & 7 in plan.j1939_priority):
                h = self._dispatch[fid]
        if len(self._dispatch) < _DISPATCH_CACHE:
            self._dispatch[aid] = h
        return h

    def _refresh(self) -> None:
        self.pump()

    def _on_clock(self, now: float) -> None:
        self.pump()

    def _key(self, src) -> tuple:
        """(key in the seen table, timeout s, source) for a source (frame id, page or None)."""
        fid, page = src
        return (fid if page is None else src, self.plan.page_timeout.get(src, self.timeout_s), src)

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
        for key, tmo, src in self._required:
            if ts - seen.get(key, _NEG_INF) > tmo:
                self.incomplete_cycles += 1
                self._problem = (f"{plan.sample_on} arrived but {self._source_name(src)} is older than "
                                 f"its {plan.page_timeout.get(src, self.timeout_s):g} s timeout")
                return
        fresh = [ts - seen.get(key, _NEG_INF) <= tmo for key, tmo, _src in self._cell_keys]
        if not any(fresh):
            self.incomplete_cycles += 1
            self._problem = (f"{plan.sample_on} arrived but every cell source is older than its timeout: "
                             f"{', '.join(self._source_name(s) for s in self._cell_src)}")
            return
        this_cycle, self._events_this_cycle = self._events_this_cycle, set()
        for fid, (hold, _hb) in plan.events.items():  # an event frame not repeated within hold_s: absent
            last = self._seen.get(fid, _NEG_INF)
            if (hold == "cycle" and fid not in this_cycle) or (isinstance(hold, float) and ts - last > hold):
                for s in self._event_slots.get(fid, ()):
                    raw[s] = None
        every = all(fresh) and plan.cell_invalid is None and plan.valid is None  # every cell valid
        fresh = np.array(fresh, bool)
        valid = np.ones(self.n_cells, bool) if every else fresh[self._cell_src_simple] \
            if self._cell_src_simple is not None else np.array([fresh[ix].all() for ix in self._cell_src_idx], bool)
        cell_v = np.array(self._cell_get(raw), float)
        if plan.cell_invalid is not None:
            valid &= np.array([v not in bad for v, bad in zip(cell_v, plan.cell_invalid)], bool)
        if plan.valid is not None:
            vmask, voff, vbits, vval = plan.valid
            valid &= self._valid_bits(raw) == bool(vval)
        cell_v = cell_v * self._cell_a + self._cell_b
        if not every:
            cell_v[~valid] = np.nan
        temps = (np.array(self._temp_get(raw), float) * self._temp_a + self._temp_b) if self._temp_slots \
            else np.zeros(0)
        bal = self._bal_bits(raw) if self._bal_bits is not None else np.zeros(self.n_cells, bool)

        def on(cond) -> bool:
            return cond is not None and cond.test(raw)

        f = plan.flags
        flags = BmsFlags(hvc=on(f["hvc"]), lvc=on(f["lvc"]), ot=on(f["ot"]), ut=on(f["ut"]))
        pack_v = pack_a = state = None
        if plan.pack_v is not None:
            pack_v = float(raw[plan.pack_v.slots[0]]) * plan.pack_v.a[0] + plan.pack_v.b[0]
        if plan.pack_a is not None:
            pack_a = float(raw[plan.pack_a.slots[0]]) * plan.pack_a.a[0] + plan.pack_a.b[0]
        if plan.state_slot is not None:
            code = int(raw[plan.state_slot])
            state = plan.state_choices.get(code, str(code))
        t = ts if self._frame_time is None else self._frame_time(ts)
        self._history.append(LinkSample(
            t=t, cell_v=cell_v, temps_c=temps, balancing=bal, flags=flags,
            charge_fet=on(plan.fets["charge"]), discharge_fet=on(plan.fets["discharge"]),
            cells_valid=valid, pack_v=pack_v, pack_a=pack_a, state=state,
        ))
        self._problem = ""
        self.requests.sample_completed(self.clock.now())

    def _source_name(self, src) -> str:
        fid, page = src
        name = self.plan.message_names.get(fid, hex(fid))
        return name if page is None else f"{name} page {page}"

    # ----------------------------------------------------------------- BmsLink

    def latest(self) -> LinkSample:
        """The newest sample not older than the link timeout; waits on the clock up to the
        timeout for one. Raises :class:`LinkFault` naming what did not arrive (or a command never acknowledged)."""
        self.pump()
        self.check_commands()
        clock = self.clock
        newest = self._history.newest()
        now = clock.now()
        if newest is not None and now - newest.t <= self.timeout_s:
            return newest
        start, count0 = now, self._history.count
        while True:
            waited = clock.now() - start
            if waited >= self.timeout_s - 1e-6:  # a float remainder too small to move the clock must not spin
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
            asked = f"; {self.requests.problem}" if self.requests.problem else ""
            return (f"no CAN frames received at all on {getattr(self._bus, 'channel_info', 'the bus')}; "
                    f"expected {expected}{asked}")
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
        if self.requests.problem:
            parts.append(self.requests.problem)
        return "; ".join(parts)

    def identity(self) -> DutIdentity:
        """Serial, HW revision and FW version from the identity signals (waits on the clock
        up to the link timeout for identity frames, which boards send about once a second)."""
        self.pump()
        plan = self.plan
        slots = [s for p in plan.identity.values() if p is not None for s in p.slots]
        clock = self.clock
        start = clock.now()
        if any(self._raw[s] is None for s in slots):
            self.requests.identity_wanted(start)
        while any(self._raw[s] is None for s in slots):
            waited = clock.now() - start
            if waited >= self.timeout_s - 1e-6:
                missing = [s for s in slots if self._raw[s] is None]
                raise LinkFault(self.name, f"identity not received within {self.timeout_s:g} s: missing "
                                           f"{plan.describe_slots(missing)}")
            clock.sleep(min(self.poll_s, self.timeout_s - waited))
            self.pump()
        out = {k: (self._identity_string(p) if p is not None else "unknown") for k, p in plan.identity.items()}
        self._identity = DutIdentity(serial=out["serial"], hw_revision=out["hw_revision"],
                                     fw_version=out["fw_version"])
        return self._identity

    def latest_held(self):
        """The newest sample held, without pumping or waiting (None if none yet)."""
        return self._history.newest()

    def silence_detail(self) -> str:
        """Why no sample completed (what was expected, never received, or stale)."""
        return self._silence_detail()

    def identity_if_known(self) -> DutIdentity | None:
        """The identity decoded so far, without waiting or asking (None until every mapped
        identity signal has arrived): for decoding a capture."""
        plan = self.plan
        if any(self._raw[s] is None for p in plan.identity.values() if p is not None for s in p.slots):
            return None
        out = {k: (self._identity_string(p) if p is not None else "unknown") for k, p in plan.identity.items()}
        return DutIdentity(serial=out["serial"], hw_revision=out["hw_revision"], fw_version=out["fw_version"])

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
