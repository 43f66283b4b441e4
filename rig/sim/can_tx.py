"""The simulated board's CAN transmitter: Telemetry -> frames of the board's OWN DBC.

The board's firmware speaks the DBC its profile names; the transmitter encodes through that
DBC and the profile's signal map (the same two files the rig's
:class:`~rig.links.can_link.CanBmsLink` decodes with), so a board with other message names,
multiplexing, byte orders or offsets plays on the bench as it is. Frames go out on a
python-can ``virtual`` bus with ``preserve_timestamps=True`` and ``timestamp`` = board time,
so the rig's link (its own virtual bus on the same channel) stamps samples in rig time.

One telemetry cycle: every frame carrying a mapped sample signal (one frame per multiplexer
value), the map's ``sample_on`` message last (it completes a sample). Identity frames go out
on the first cycle and then every ``identity_period_s``.

Encoding is the decode path reversed: SI value -> DBC physical value through the map's
``scale``/``offset``/``unit`` (``physical = (si - b) / a``), clamped to what the signal can
carry (its raw bits, and the DBC's [min|max] when it states one), then packed with
cantools' formats and each signal's cantools conversion (:mod:`rig.sim.can_tx_pack`: the
bytes ``Message.encode`` gives; ``Message.encode`` itself for a message it does not cover).
Only mapped signals are computed; every other signal of a frame (cells beyond the board's
count in a multiplexed group, counters, spare bits) is sent as raw 0 (its initial value when
the DBC gives one): never a physical 0.0 V that a signal with a positive offset cannot carry.

A frame's payload is a pure function of its values: the transmitter keeps the payloads it
encoded by their values (``MEMO_FRAMES`` per frame) and packs only new ones
(not for a frame with float signals, whose -0.0 and 0.0 compare equal but encode apart).
"""

from __future__ import annotations

import re
import string
from functools import lru_cache, partial
from operator import attrgetter, itemgetter
from pathlib import Path

import numpy as np

from ..links.can_commands import signal_range as _limits
from ..links.dbc import codec
from ..links.signal_map import IdentityPlan, compile_signal_map, load_dbc, load_signal_map
from ..links.signal_map_cells import bit_refs as _bit_refs
from .can_tx_pack import compile_packer
from .can_tx_parts import (ack_frame, answers, encode_conditions, encode_values, j1939_id, put_values,
                           received_requests, set_cell_bits, set_page_byte)

_PROFILES = Path(__file__).resolve().parents[2] / "testplans" / "profiles"
REFERENCE_DBC = _PROFILES / "reference-bms.dbc"
REFERENCE_SIGNAL_MAP = _PROFILES / "reference-bms-can.yaml"


_STATES = attrgetter("hvc", "lvc", "ot", "ut", "charge_fet", "discharge_fet")

MEMO_FRAMES = 4096
"""Encoded payloads kept per frame (by their values), before the memo starts afresh."""
MEMO_TRIAL = 128
"""Memo lookups after which a frame whose payload is new in most cycles stops looking up."""


FRAME_FIELDS = frozenset({"arbitration_id", "bitrate_switch", "channel", "data", "dlc", "error_state_indicator",
                          "is_error_frame", "is_extended_id", "is_fd", "is_remote_frame", "is_rx", "timestamp"})
"""The fields of python-can's ``Message`` the transmitter's frame copies directly; a python-can
whose ``Message`` has other fields copies its frames its own way (``Message.__deepcopy__``)."""


@lru_cache(maxsize=None)
def _frame_class():
    import can

    message = can.Message
    if set(getattr(message, "__slots__", ())) - {"__weakref__"} != FRAME_FIELDS:
        return message  # another python-can: its own copy, which knows its own fields
    new = message.__new__

    class Frame(message):
        """The transmitter's reusable frame: the virtual bus copies it for each receiver, as
        a plain :class:`can.Message` whose every field is set directly (its data copied, every
        other field an immutable value) instead of through ``copy.deepcopy`` of each field
        (or ``Message.__init__``, which would only set the same fields)."""

        __slots__ = ()

        def __deepcopy__(self, memo):
            # copy.deepcopy then keeps self alive in memo[id(memo)], a list it makes on first
            # use by catching a KeyError: made here, the same list without that exception
            memo.setdefault(id(memo), [])
            m = new(message)
            m.timestamp, m.arbitration_id, m.is_extended_id = self.timestamp, self.arbitration_id, self.is_extended_id
            m.is_remote_frame, m.is_error_frame, m.channel = self.is_remote_frame, self.is_error_frame, self.channel
            m.dlc, m.data, m.is_fd, m.is_rx = self.dlc, bytearray(self.data), self.is_fd, self.is_rx
            m.bitrate_switch, m.error_state_indicator = self.bitrate_switch, self.error_state_indicator
            return m

    return Frame


def _rest_value(sig) -> float:
    """What an unmapped signal carries: its DBC initial value, else raw 0 (physical = offset)."""
    raw = getattr(sig, "raw_initial", None)
    return float((raw or 0) * sig.scale + sig.offset)


def _parse_identity(text: str, p: IdentityPlan) -> dict[str, int | float]:
    """Numbers for an identity plan's signals from the board's string (``format``/``value``)."""
    text = str(text)
    if p.kind == "format" and p.fmt:
        rx, names = "", []
        for literal, field, _spec, _conv in string.Formatter().parse(p.fmt):
            rx += re.escape(literal)
            if field is not None:
                rx += rf"(?P<{field}>-?\d+(?:\.\d+)?)" if field not in names else rf"(?P={field})"
                names.append(field)
        m = re.fullmatch(rx, text)
        if m:
            return {k: (float(v) if "." in v else int(v)) for k, v in m.groupdict().items()}
    nums = re.findall(r"\d+", text)  # free text: its numbers in order, the rest 0
    return {name: int(nums[j]) if j < len(nums) else 0 for j, name in enumerate(p.names)}


class CanTransmitter:
    """Encodes the board's Telemetry into frames of ``dbc_path`` as ``signal_map_path`` maps them.

    ``send(t, telemetry)``: t is the board's time (virtual, s); telemetry fields as in
    ``rig.sim.harness.Telemetry`` (duck-typed): cell_v (V), temps_c (°C: cells then the
    bleed-resistor NTC), balancing (bool), hvc lvc ot ut, charge_fet discharge_fet
    (True = closed), pack_v (V), pack_a (A), serial, hw_revision, fw_version ("2.3.1"), state.
    Without ``signal_map_path`` the reference map is used (it fits the reference DBC).
    ``fast_path``: pack payloads with :mod:`rig.sim.can_tx_pack` (the bytes ``Message.encode``
    gives); ``False`` encodes every frame with ``Message.encode``.
    """

    def __init__(self, dbc_path: str | Path | None, channel: str, n_cells: int,
                 identity_period_s: float = 1.0, bus=None, signal_map_path: str | Path | None = None,
                 j1939_source_address: int | None = None, j1939_priority: int | None = None,
                 fast_path: bool = True):
        import can

        if int(n_cells) < 1:
            raise ValueError(f"a board has at least one cell, not {n_cells}")
        self.dbc_path = Path(dbc_path) if dbc_path else REFERENCE_DBC
        self.signal_map_path = Path(signal_map_path) if signal_map_path else REFERENCE_SIGNAL_MAP
        self.n_cells = n = int(n_cells)
        self.channel = channel
        self.identity_period_s = float(identity_period_s)
        self.db = load_dbc(self.dbc_path)
        self.plan = plan = compile_signal_map(self.signal_map_path, self.dbc_path, n, db=self.db)
        smap = load_signal_map(self.signal_map_path)
        self.bus = bus if bus is not None else can.Bus(interface="virtual", channel=channel, preserve_timestamps=True)
        self._own_bus = bus is None
        self.muted = False
        """True: the board sends nothing (the bench's silent defects; :meth:`send` still works)."""

        # slot -> (cantools message, signal)
        sigs = list(zip(plan.slot_messages, plan.slot_signals))
        self._sig = sigs
        lim = np.array([_limits(s) for _m, s in sigs], float).reshape(-1, 2)
        self._lo, self._hi = lim[:, 0], lim[:, 1]
        self._nslots = len(sigs)

        # conversions SI -> physical: (si - b) / a, vectorised per quantity
        def lin(linear):
            return (np.asarray(linear.slots, int), np.asarray(linear.a, float), np.asarray(linear.b, float))

        self._cells = lin(plan.cell_v)
        t_slots, t_a, t_b = lin(plan.temps)
        self._bleed = []  # the bleed-resistor NTC(s) (one per string on a board of several): the board's one
        nb = plan.n_bleed if smap.temperatures.bleed_resistor is not None else 0
        if nb and len(t_slots) >= nb:
            self._bleed = [(int(t_slots[j]), float(t_a[j]), float(t_b[j])) for j in range(len(t_slots) - nb, len(t_slots))]
            t_slots, t_a, t_b = t_slots[:-nb], t_a[:-nb], t_b[:-nb]
        k = min(len(t_slots), n)  # cell NTCs beyond the board's cells are not sent
        self._temps = (t_slots[:k], t_a[:k], t_b[:k])
        # which telemetry temperature each NTC reports: in order, or (several strings) the
        # temperature of the cell it sits among in its own string
        self._temp_src = np.asarray(plan.temp_cells[:k] if plan.temp_cells else range(k), int)
        # per quantity: (slots, a, b, clip low, clip high, first slot when the slots run consecutively)
        self._cells, self._temps = (
            (sl, a, b, self._lo[sl], self._hi[sl], int(sl[0]) if len(sl) and (np.diff(sl) == 1).all() else None)
            for sl, a, b in (self._cells, self._temps))
        # both at once (one numpy expression) when the telemetry has every cell and NTC source
        (cs, ca, cb, clo, chi, _f), (ts, ta, tb, tlo, thi, _f) = self._cells, self._temps
        both, a, b, src = np.concatenate((cs, ts)), np.concatenate((ca, ta)), np.concatenate((cb, tb)), self._temp_src
        unit = bool((a == 1).all() and (b == 0).all() and not np.signbit(b).any())  # (x - 0.0) / 1.0 is x
        self._both = (len(cs), slice(0, len(src)) if (src == np.arange(len(src))).all() else src,
                      int(src.max(initial=-1)), both, a, b, np.concatenate((clo, tlo)), np.concatenate((chi, thi)),
                      int(both[0]) if len(both) and (np.diff(both) == 1).all() else None, unit)
        self._cond_memo: dict[tuple, list] = {}
        # the validity bits per cell (slot, bit): per-string bits, or a concatenated mask (else
        # per-cell slots, plan.valid's third field)
        v = plan.valid
        self._valid_refs = None if v is None else (
            plan.valid_at or (_bit_refs(v[0], v[1], None, n) if v[0] and not v[2] else None))
        # (telemetry field, slot, a, b, clip low, clip high), Python floats (no numpy scalar arithmetic per cycle)
        self._pack = [(name, int(x.slots[0]), float(x.a[0]), float(x.b[0]), float(self._lo[x.slots[0]]),
                       float(self._hi[x.slots[0]]))
                      for name, x in (("pack_v", plan.pack_v), ("pack_a", plan.pack_a)) if x is not None]
        self._bleed = [(s, a, b, float(self._lo[s]), float(self._hi[s])) for s, a, b in self._bleed]
        self._state_code = {}
        for code, name in sorted(plan.state_choices.items(), reverse=True):
            self._state_code[str(name)] = int(code)  # the lowest code of a name wins

        # frames: (frame id, page tag) -> message, base values, the slots it carries; page tag =
        # (multiplexer or page-index signal, value), ("#byte", value) or None
        groups: dict[tuple[int, object], dict] = {}
        ident = set(plan.identity_slots)
        plain = []
        for slot, (m, s) in enumerate(sigs):
            page = plan.slot_page[slot] if plan.slot_page else None
            pidx = plan.handlers[m.frame_id].page_index
            if page is not None:
                key = (m.frame_id, (pidx.signal, page) if pidx.signal else ("#byte", page))
            elif s.multiplexer_ids:
                key = (m.frame_id, (s.multiplexer_signal, s.multiplexer_ids[0]))
            else:
                plain.append(slot)
                continue
            g = groups.setdefault(key, {"message": m, "slots": [], "identity": True})
            g["slots"].append(slot)
            g["identity"] = g["identity"] and slot in ident
        for slot in plain:  # a plain signal rides in every frame of its message
            m = sigs[slot][0]
            keys = [key for key in groups if key[0] == m.frame_id] or [(m.frame_id, self._first_mux(m))]
            for key in keys:
                g = groups.setdefault(key, {"message": m, "slots": [], "identity": True})
                g["slots"].append(slot)
                g["identity"] = g["identity"] and slot in ident
        on = plan.sample_on_id
        needed = [on] + [hb for _hold, hb in plan.events.values()] + [r.response_id for r in plan.requests]
        for fid in needed:
            if fid is not None and not any(key[0] == fid for key in groups):
                m = self.plan.handlers[fid].message
                groups[(fid, self._first_mux(m))] = {"message": m, "slots": [], "identity": False}
        groups_msg = {key[0]: g["message"] for key, g in groups.items()}
        conds = [c for c in list(plan.flags.values()) + list(plan.fets.values()) if c is not None]
        # (frame id, pack(vals) -> payload, identity only, event conds, memo, memo key, page tag, page byte)
        self._frames = []
        polled = {r.response_id for r in plan.requests if r.response_id is not None}
        unpacked: set[int] = set()
        for key in sorted(groups, key=lambda k: (k[0] == on, k[0], str(k[1]))):
            g = groups[key]
            m = g["message"]
            mux = key[1]
            # the signals this frame carries: the plain ones and those of its multiplexer value
            base = {s.name: _rest_value(s) for s in m.signals
                    if not s.multiplexer_ids or (mux is not None and s.multiplexer_signal == mux[0]
                                                 and mux[1] in s.multiplexer_ids)}
            if mux is not None and mux[0] != "#byte":
                base[mux[0]] = mux[1]
            fields = [(sigs[s][1].name, s) for s in g["slots"]]
            ev = None
            if m.frame_id in plan.events:  # sent only while one of its flags/FETs is on
                ev = [c for c in conds if set(c.slots) & set(g["slots"])]
            # a frame's bytes are a pure function of its values: the last ones are kept
            # (not for float signals, where -0.0 and 0.0 compare equal but encode apart)
            memo = None if any(getattr(s, "is_float", False) for s in m.signals) else {}
            # the memo's key: the frame's slot values (a tuple, one value alone)
            key_of = itemgetter(*[s for _n, s in fields]) if fields else (lambda _vals: ())
            enc = codec(self.db, m)
            pack = None if not fast_path else compile_packer(enc, base, fields,
                                                             None if mux is None or mux[0] == "#byte" else mux)
            if pack is None:  # cantools' Message.encode on the frame's values
                pack = partial(encode_values, enc.encode, base, fields)
                unpacked.add(m.frame_id)
            page = None if mux is None or mux[0] != "#byte" else (plan.handlers[m.frame_id].page_index, mux[1])
            skip = g["identity"] and m.frame_id not in polled  # sent with the identity only
            self._frames.append((m.frame_id, pack, skip, ev, memo, key_of, mux, page))
        #: frame ids whose every payload is packed by :mod:`rig.sim.can_tx_pack` (the rest: ``Message.encode``)
        self.packed_frame_ids = frozenset(f[0] for f in self._frames) - unpacked
        self._memo_trials = [None if f[4] is None else [0, 0] for f in self._frames]  # [lookups, hits]
        self._can_msg = {fid: _frame_class()(arbitration_id=fid, is_extended_id=groups_msg[fid].is_extended_frame,
                                     data=bytes(8)) for fid, *_ in self._frames}
        self._polled = polled
        self.commands_received: dict[str, dict] = {}
        """Board commands the host sent: name -> {parameter or listed signal: value} (the last one)."""
        self._asked: list = []
        self._acks: list = []
        # the board's J1939 messages sent from another source address / priority (bench option)
        if j1939_source_address is not None or j1939_priority is not None:
            for fid, m in groups_msg.items():
                if m.is_extended_frame and fid in plan.j1939.values():
                    self._can_msg[fid].arbitration_id = j1939_id(fid, j1939_source_address, j1939_priority)
        self._held = None
        self._next_identity = -np.inf
        self._ident_cache: tuple | None = None
        self._ident_vals: dict[int, float] = {}
        self.frames_sent = 0

    @staticmethod
    def _first_mux(m):
        """(multiplexer, its first value) of a multiplexed message, else None."""
        for s in m.signals:
            if s.multiplexer_ids:
                return (s.multiplexer_signal, s.multiplexer_ids[0])
        return None

    # ----------------------------------------------------------------- encoding

    def _identity_values(self, tel) -> dict[int, int | float]:
        key = (tel.serial, tel.hw_revision, tel.fw_version)
        if key == self._ident_cache:
            return self._ident_vals
        out: dict[int, float] = {}
        for name, p in self.plan.identity.items():
            if p is None:
                continue
            text = str(getattr(tel, name))
            if p.kind == "ascii":
                raw = text.encode("ascii", errors="replace")[:sum(p.byte_lengths)].ljust(sum(p.byte_lengths), b"\x00")
                pos = 0
                for slot, nbytes, order in zip(p.slots, p.byte_lengths, p.byte_orders):
                    out[slot] = int.from_bytes(raw[pos:pos + nbytes], order)  # int: 56-bit parts exceed a float
                    pos += nbytes
            else:
                nums = _parse_identity(text, p)
                for slot, label in zip(p.slots, p.names):
                    out[slot] = nums.get(label, 0.0)
        for slot, v in out.items():  # Python min/max: exact for ints beyond 2**53
            out[slot] = max(min(v, self._hi[slot]), self._lo[slot])
        self._ident_cache, self._ident_vals = key, out
        return out

    def _bits(self, vals: list, tel) -> None:
        plan = self.plan
        n = self.n_cells
        bal = np.asarray(tel.balancing, bool)[:n]
        if len(bal) < n:
            bal = np.concatenate([bal, np.zeros(n - len(bal), bool)])
        act = plan.balancing_active
        if plan.balancing_mask:
            on = bal if act else ~bal  # bit offset + i for cell i
            mask = int.from_bytes(np.packbits(on, bitorder="little").tobytes(), "little") << plan.balancing_bit_offset
            for slot, width in plan.balancing_mask:
                vals[slot] = mask & ((1 << width) - 1)  # an int: 64-bit masks exceed a float's 53 bits
                mask >>= width
        elif plan.balancing_bits:
            off = 0 if act else 1
            bal = bal.tolist()
            for i, slot in enumerate(plan.balancing_bits):
                vals[slot] = int(act if bal[i] else off)
        elif plan.balancing_at:
            set_cell_bits(vals, plan.balancing_at, bal if act else ~bal)
        if plan.valid is not None:  # every reading the board sends is valid
            vval = plan.valid[3]
            if self._valid_refs:
                set_cell_bits(vals, self._valid_refs, np.full(n, bool(vval)))
            else:
                for slot in plan.valid[2]:
                    vals[slot] = int(vval)
        key = tuple(map(bool, _STATES(tel)))
        writes = self._cond_memo.get(key)  # the slot values are a function of the states alone
        if writes is None:
            refs = [(plan.flags[k], getattr(tel, k)) for k in ("hvc", "lvc", "ot", "ut")]
            fc, fd = plan.fets["charge"], plan.fets["discharge"]
            if fc is not None and fc == fd:  # one power stage for both directions: closed only while both are
                refs.append((fc, tel.charge_fet and tel.discharge_fet))
            else:
                refs += [(fc, tel.charge_fet), (fd, tel.discharge_fet)]
            out: dict[int, int] = {}
            encode_conditions(out, [(c, bool(on)) for c, on in refs if c is not None])
            writes = self._cond_memo[key] = list(out.items())
        for slot, v in writes:
            vals[slot] = v

    def encode(self, t: float, tel) -> list[tuple[int, bytes]]:
        """The frames of one cycle as (frame id, data), in send order (identity included when due)."""
        vals: list = [None] * self._nslots
        cv = np.asarray(tel.cell_v, float)
        temps = np.asarray(tel.temps_c, float)
        # tolist(): Python floats, as float() of each element; scalar clips as min/max
        # (np.clip's value, signed zeros and NaN included)
        nc, tsrc, top, slots, a, b, lo, hi, first, unit = self._both
        if len(cv) >= nc and len(temps) > top:  # every cell voltage and NTC source: one expression
            x = np.concatenate((cv[:nc], temps[tsrc]))
            x = np.minimum(np.maximum(x if unit else (x - b) / a, lo), hi)
            put_values(vals, slots, first, len(slots), x.tolist())
        else:
            src = self._temp_src
            slots, a, b, lo, hi, first = self._cells
            cv = cv[:len(slots)]
            k = len(cv)
            put_values(vals, slots, first, k, np.minimum(np.maximum((cv - b[:k]) / a[:k], lo[:k]), hi[:k]).tolist())
            slots, a, b, lo, hi, first = self._temps
            k = int(np.count_nonzero(src < len(temps)))  # NTCs whose cell's temperature the telemetry has (src rises)
            x = np.minimum(np.maximum((temps[src[:k]] - b[:k]) / a[:k], lo[:k]), hi[:k])
            put_values(vals, slots, first, k, x.tolist())
        if self._bleed and len(temps):
            hot = float(temps[self.n_cells] if len(temps) > self.n_cells else temps[-1])
            for s, a1, b1, lo1, hi1 in self._bleed:
                vals[s] = min(max((hot - b1) / a1, lo1), hi1)
        for name, s, a1, b1, lo1, hi1 in self._pack:
            vals[s] = min(max((float(getattr(tel, name)) - b1) / a1, lo1), hi1)
        self._bits(vals, tel)
        if self.plan.state_slot is not None:
            code = self._state_code.get(str(tel.state))
            if code is not None:
                vals[self.plan.state_slot] = float(code)
        for s, v in self._identity_values(tel).items():
            vals[s] = v
        send_identity = t >= self._next_identity
        if send_identity:
            self._next_identity = t + self.identity_period_s
        out: list[tuple[int, bytes]] = []
        tags = self._tags = []
        trials = self._memo_trials
        for i, (fid, pack, skip, event, memo, key_of, tag, page) in enumerate(self._frames):
            if skip and not send_identity:
                continue
            if event is not None and not any(c.test(vals) for c in event):
                continue  # an event frame: never sent while healthy
            if memo is None:
                data = pack(vals)
            else:
                key = key_of(vals)
                data = memo.get(key)
                if trials[i] is not None:
                    self._memo_trial(i, data is not None)
                if data is None:
                    if len(memo) >= MEMO_FRAMES:
                        memo.clear()
                    data = memo[key] = pack(vals)
            if page is not None:
                data = set_page_byte(data, *page)
            out.append((fid, data))
            tags.append(tag)
        return out

    def _memo_trial(self, i: int, hit: bool) -> None:
        """Count frame ``i``'s memo lookups: after ``MEMO_TRIAL`` of them, a frame whose payload
        was new in most cycles (hits under a quarter) packs without its memo (same bytes)."""
        trial = self._memo_trials[i]
        trial[0] += 1
        trial[1] += hit
        if trial[0] >= MEMO_TRIAL:
            self._memo_trials[i] = None
            if 4 * trial[1] < trial[0]:
                self._frames[i] = self._frames[i][:4] + (None,) + self._frames[i][5:]

    def send(self, t: float, telemetry) -> int:
        """Encode one telemetry cycle and put it on the bus, every frame stamped ``t``; return
        frames sent. Frames the map says are answers to requests go out only when asked: the
        requests received since the last cycle are answered now, in order."""
        import can

        frames = self.encode(t, telemetry)
        if self._polled or self.plan.commands:
            self.poll()
        acks, self._acks = self._acks, []
        if self._polled:
            asked, self._asked = self._asked, []
            tags = self._tags
            streamed = [f for f in frames if f[0] not in self._polled]
            frames = streamed + answers(frames, tags, asked)
        for fid, extended, data in acks:
            self.bus.send(can.Message(arbitration_id=fid, is_extended_id=extended, data=data, timestamp=t))
        send = self.bus.send
        msgs = self._can_msg
        for fid, data in frames:
            frame = msgs[fid]
            frame.data = data
            frame.dlc = len(data)
            frame.timestamp = t
            send(frame)  # the virtual bus copies the message for each receiver
        self.frames_sent += len(frames)
        return len(frames)

    def poll(self) -> None:
        """Read what the host sent: requests and board commands (recorded in
        :attr:`commands_received`); both are answered (response, acknowledgement) at the next cycle."""
        if self.bus is None:
            return
        got: list = []
        self._asked += received_requests(self.bus, self.plan.requests, self.plan.commands, got)
        for c, values in got:
            self.commands_received[c.name] = values
            ack = None if c.ack_id is None else (c.ack_id, bool(c.ack_message.is_extended_frame), ack_frame(c))
            if ack is not None and ack not in self._acks:  # one frame read as two commands: one answer
                self._acks.append(ack)

    # ----------------------------------------------------------------- bench counterpart (rig.links.registry)
    @property
    def address(self) -> str:
        """The python-can ``virtual`` channel the host link opens."""
        return self.channel

    def publish(self, telemetry, t: float) -> None:
        """One telemetry cycle at board time ``t`` (s)."""
        self.send(t, telemetry)

    def hold(self, telemetry) -> None:
        """Nothing to hold: a CAN board streams (or answers) at its next cycle."""
        self._held = telemetry

    def close(self) -> None:
        if self._own_bus and self.bus is not None:
            self.bus.shutdown()
        self.bus = None
