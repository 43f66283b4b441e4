"""The CAN signal map: which DBC signal means what (the only file a user writes for a board).

A signal map is YAML, validated here against its pydantic schema and then against the DBC
(every signal must exist there). Values are taken *after* the DBC's own scaling (cantools
applies factor and offset); the map may add ``scale``/``offset`` and state the ``unit``
(``V``/``mV``, ``A``/``mA``, ``degC``/``K``...). Without a ``unit`` the DBC signal's unit is
used when it is one of those, else the SI unit is assumed. Minimal example::

    sample_on: BMS_Status             # the message that completes one sample (sent last)
    cells:
      voltage: {template: "Cell{i}_Voltage"}        # i = 1..n_cells; or signals: [...]
      balancing: {mask: BalanceMask}                 # bit i-1 = cell i; or template/signals
    temperatures:
      cells: {template: "Cell{i}_Temp"}
      bleed_resistor: BleedResistor_Temp             # appended last in BmsSample.temps_c
    flags: {hvc: Flag_HVC, lvc: Flag_LVC, ot: Flag_OT, ut: {signal: Flags, bit: 3}}
    fets:
      charge: {signal: ChargeFET, closed_value: 1}   # or invert: true
      discharge: DischargeFET
    pack: {voltage: PackVoltage, current: PackCurrent}
    state: State                                     # value names from the DBC's VAL_ table
    identity:
      serial: {signals: [Serial_Part0, Serial_Part1], ascii: true}
      hw_revision: {signal: HwRevision, ascii: true}
      fw_version: {signals: {major: FwMajor, minor: FwMinor, patch: FwPatch},
                   format: "{major}.{minor}.{patch}"}

A signal is named ``Signal`` (unique in the DBC) or ``Message.Signal`` (or ``message:`` on the
entry); a board of several strings lists them in ``strings:`` (:mod:`rig.links.signal_map_cells`).
Every error is a
:class:`~rig.errors.ConfigError` naming the map file, the key and the problem.
:func:`compile_signal_map` turns map + DBC into :class:`CanPlan`, the precomputed dispatch
table :class:`~rig.links.can_link.CanBmsLink` decodes with.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import ConfigError
from .base import SI_UNIT, UNITS, Capabilities, format_fields, load_yaml_mapping, unit_factor, validate_model
from . import signal_map_cells as cellmap
from . import signal_map_ext as ext
from .can_commands import compile_commands
from .dbc import DbcWarning, load_dbc, unsent_note  # noqa: F401  (re-exported: the CAN link loads DBCs from here)
from .signal_map_ext import CondPlan, PageIndexPlan, RequestPlan, TermPlan  # noqa: F401
from .signal_map_schema import (  # noqa: F401  (re-exported)
    Balancing,
    Cells,
    FetRef,
    Fets,
    FlagRef,
    Flags,
    Identity,
    IdentityField,
    Pack,
    Series,
    SignalMap,
    SignalRef,
    StateRef,
    Temperatures,
)


# --------------------------------------------------------------------------- compiled plan


@dataclass
class Linear:
    """Slot indices plus per-slot SI conversion ``si = raw * a + b``."""

    slots: list[int]
    a: list[float]
    b: list[float]


@dataclass
class BitRef:
    slot: int
    bit: int | None
    active: int


@dataclass
class IdentityPlan:
    kind: Literal["value", "ascii", "format"]
    slots: list[int]
    names: list[str]
    byte_lengths: list[int]
    byte_orders: list[str]
    fmt: str | None


@dataclass
class FrameHandler:
    """What to do with one frame id: decode with ``message`` and store signals in slots."""

    message: object  # cantools Message
    slots: dict[str, int]
    completes_sample: bool
    page_index: PageIndexPlan | None = None       # where the frame says its page (or mux value)
    pages: dict[int, dict[str, int]] = field(default_factory=dict)  # page -> {signal: slot}


@dataclass
class CanPlan:
    """A signal map resolved against a DBC: everything the decode path needs, precomputed."""

    map_path: Path
    dbc_path: Path
    n_cells: int
    sample_on: str
    sample_on_id: int
    timeout_s: float | None
    handlers: dict[int, FrameHandler]
    slot_names: list[tuple[str, str]]  # slot -> (message, signal)
    sample_slots: list[int]            # slots a sample needs (not identity)
    sample_frame_ids: list[int]        # frame ids those slots come from
    identity_slots: list[int]
    cell_v: Linear
    temps: Linear
    balancing_mask: list[tuple[int, int]] | None  # [(slot, bit width)], concatenated
    balancing_bit_offset: int
    balancing_bits: list[int] | None               # slot per cell
    balancing_active: int
    flags: dict[str, CondPlan | None]
    fets: dict[str, CondPlan | None]
    pack_v: Linear | None
    pack_a: Linear | None
    state_slot: int | None
    state_choices: dict[int, str]
    identity: dict[str, IdentityPlan | None]
    message_names: dict[int, str] = field(default_factory=dict)
    #: reservations about the DBC (e.g. overlapping signals loaded non-strictly)
    dbc_warnings: list[str] = field(default_factory=list)
    cell_invalid: list[frozenset] | None = None   # per cell: decoded values meaning "no reading"
    valid: tuple | None = None                    # (mask, bit offset, per-cell slots, valid value)
    slot_source: list[tuple] = field(default_factory=list)   # slot -> (frame id, page or None)
    cell_sources: list[list[tuple]] = field(default_factory=list)  # cell -> sources its values come from
    required_sources: list[tuple] = field(default_factory=list)    # stale -> no sample
    page_timeout: dict[tuple, float] = field(default_factory=dict)  # source -> its own timeout, s
    events: dict[int, tuple] = field(default_factory=dict)  # frame id -> (hold_s, heartbeat frame id)
    event_slots: list[int] = field(default_factory=list)
    j1939: dict[int, int] = field(default_factory=dict)     # PGN bits -> DBC frame id
    j1939_sa: frozenset | None = None
    j1939_priority: frozenset | None = None
    requests: list = field(default_factory=list)            # [RequestPlan]
    commands: dict = field(default_factory=dict)            # name -> CommandPlan (rig.links.can_commands)
    slot_page: list = field(default_factory=list)
    slot_signals: list = field(default_factory=list)   # slot -> cantools signal
    slot_messages: list = field(default_factory=list)  # slot -> cantools message
    #: boards of several strings: per cell (slot, bit or None = the whole signal) of the
    #: balancing / validity bits, the bleed-resistor NTCs appended last, (name, cells before, cells)
    balancing_at: list | None = None
    valid_at: list | None = None
    n_bleed: int = 0
    strings: list = field(default_factory=list)
    temp_cells: list | None = None   # several strings: per cell NTC the board cell (0-based) it sits among

    def cell_string(self, cell: int) -> str | None:
        """The name of the string 1-based board cell ``cell`` is in (None: one string)."""
        for name, first, count in self.strings:
            if first < cell <= first + count:
                return name
        return None

    def capabilities(self) -> Capabilities:
        """What the board reports: the quantities this map says where to find."""
        q = {"cell_voltages"} if self.cell_v.slots else set()
        q |= {"temperatures"} if self.temps.slots else set()
        q |= {"balancing"} if (self.balancing_mask or self.balancing_bits or self.balancing_at) else set()
        q |= {k for k, v in self.flags.items() if v is not None}
        q |= {f"{k}_fet" for k, v in self.fets.items() if v is not None}
        q |= {k for k, v in (("pack_v", self.pack_v), ("pack_a", self.pack_a), ("state", self.state_slot)) if v is not None}
        return Capabilities(frozenset(q), len(self.temps.slots), frozenset(k for k, v in self.identity.items() if v),
                            "signal map", self.map_path.name)

    def describe_slots(self, slots: list[int], limit: int = 6) -> str:
        """``BMS_CellVoltages: Cell17_Voltage, Cell18_Voltage (+4 more)`` per message."""
        by_msg: dict[str, list[str]] = {}
        for s in slots:
            m, sig = self.slot_names[s]
            by_msg.setdefault(m, []).append(sig)
        parts = []
        for m, sigs in by_msg.items():
            more = f" (+{len(sigs) - limit} more)" if len(sigs) > limit else ""
            parts.append(f"{m}: {', '.join(sigs[:limit])}{more}")
        return "; ".join(parts)


def load_signal_map(map_path: str | Path, dbc_path: str | Path | None = None, n_cells: int | None = None):
    """Read and schema-validate a signal map.

    With ``dbc_path`` and ``n_cells`` it is also checked against the DBC for that many cells
    (``bmsrig check`` does this) and the compiled :class:`CanPlan` is returned; otherwise
    the validated :class:`SignalMap`.
    """
    p = Path(map_path)
    if dbc_path is not None and n_cells is not None:
        return compile_signal_map(p, dbc_path, int(n_cells))
    return validate_model(SignalMap, load_yaml_mapping(p, "signal map"), p)


class _Resolver:
    """Finds signals in the DBC and hands out storage slots."""

    def __init__(self, db, dbc_path: Path, map_path: Path):
        self.db = db
        self.dbc_path = dbc_path
        self.map_path = map_path
        self.by_name: dict[str, list[tuple[object, object]]] = {}
        for m in db.messages:
            for s in m.signals:
                self.by_name.setdefault(s.name, []).append((m, s))
        self.slot_of: dict[tuple[int, str, object], int] = {}
        self.slot_names: list[tuple[str, str]] = []
        self.slot_frame: list[int] = []
        self.slot_message: list[object] = []
        self.slot_page: list[object] = []    # explicit page index value (paged series), else None
        self.slot_signal: list[object] = []  # the cantools signal

    def find(self, name: str, key: str):
        """(message, signal) for ``Signal`` or ``Message.Signal``."""
        if "." in name:
            mname, sname = name.split(".", 1)
            try:
                m = self.db.get_message_by_name(mname)
            except KeyError:
                raise ConfigError(self.map_path, key, f"message {mname!r} not found in DBC {self.dbc_path.name}"
                                  f"{self.suggest(mname, [x.name for x in self.db.messages])}") from None
            for s in m.signals:
                if s.name == sname:
                    return m, s
            raise ConfigError(self.map_path, key, f"signal {sname!r} not found in message {mname} of DBC "
                              f"{self.dbc_path.name}{self.suggest(sname, [s.name for s in m.signals])}")
        hits = self.by_name.get(name)
        if not hits:
            raise ConfigError(self.map_path, key, f"signal {name!r} not found in DBC {self.dbc_path.name}"
                              + (unsent_note(self.db, name) or self.suggest(name, list(self.by_name))))
        if len({id(m) for m, _ in hits}) > 1:
            where = ", ".join(f"{m.name}.{name}" for m, _ in hits)
            raise ConfigError(self.map_path, key, f"signal {name!r} is in several messages of DBC "
                              f"{self.dbc_path.name}; qualify it as one of: {where}")
        return hits[0]

    @staticmethod
    def suggest(name: str, candidates: list[str]) -> str:
        close = difflib.get_close_matches(name, candidates, n=3)
        return f" (did you mean {', '.join(close)}?)" if close else ""

    def slot(self, name: str, key: str, page=None) -> tuple[int, object, object]:
        m, s = self.find(name, key)
        k = (m.frame_id, s.name, page)
        if k not in self.slot_of:
            self.slot_of[k] = len(self.slot_names)
            self.slot_names.append((m.name, s.name if page is None else f"{s.name}[page {page}]"))
            self.slot_frame.append(m.frame_id)
            self.slot_message.append(m)
            self.slot_page.append(page)
            self.slot_signal.append(s)
        return self.slot_of[k], m, s

    def conversion(self, sig, quantity: str, unit: str | None, scale: float, offset: float, key: str):
        """(a, b) with SI = decoded * a + b."""
        if unit is None:
            dbc_unit = (sig.unit or "").strip()
            if dbc_unit and dbc_unit not in UNITS[quantity]:
                raise ConfigError(self.map_path, key, f"DBC {self.dbc_path.name} gives signal {sig.name} the unit "
                                  f"{dbc_unit!r}, which is not a {quantity} unit bmsrig knows; state 'unit:' "
                                  f"in the map ({', '.join(UNITS[quantity])}; SI is {SI_UNIT[quantity]})")
            unit = dbc_unit or None
        f, o = unit_factor(quantity, unit, self.map_path, key + ".unit")
        return scale * f, offset * f + o


def compile_signal_map(map_path: str | Path, dbc_path: str | Path, n_cells: int, db=None) -> CanPlan:
    """Validate ``map_path`` against ``dbc_path`` for ``n_cells`` and precompute the decode plan."""
    map_path, dbc_path = Path(map_path), Path(dbc_path)
    smap = cellmap.fold_messages(load_signal_map(map_path))  # schema only; message: folded into names
    db = db if db is not None else load_dbc(dbc_path)
    if n_cells < 1:
        raise ConfigError(map_path, "cells", f"the profile's cell count must be >= 1, got {n_cells}")
    res = _Resolver(db, dbc_path, map_path)
    P = map_path
    pages: dict[int, PageIndexPlan] = {}
    page_timeout: dict[tuple, float] = {}

    on_msg = ext.message_named(res, smap.sample_on, "sample_on")

    def linear(names: list[tuple[str, object]], quantity: str, ref, key: str) -> Linear:
        lin = Linear([], [], [])
        for j, (nm, page) in enumerate(names):
            k = key if len(names) == 1 else f"{key}[{j}]"
            slot, _m, sig = res.slot(nm, k, page)
            a, b = res.conversion(sig, quantity, ref.unit, ref.scale, ref.offset, key)
            lin.slots.append(slot)
            lin.a.append(a)
            lin.b.append(b)
        if getattr(ref, "pages", None) is not None and ref.pages.timeout_s is not None:
            for s in lin.slots:
                page_timeout[(res.slot_frame[s], res.slot_page[s])] = ref.pages.timeout_s
        return lin

    # cells: once per string (one string of every cell when the map lists none), numbered flat
    strings = cellmap.strings_of(smap, n_cells, res)
    vseries = smap.cells.voltage

    def each(model, key: str, fn, every: bool = True) -> list:
        return [cellmap.in_string(st, fn, sub, st) for st, sub in cellmap.per_string(model, strings, key, P, every)]

    def cat(parts: list) -> Linear:
        return Linear(*(sum((getattr(x, f) for x in parts), []) for f in ("slots", "a", "b")))

    cell_v = cat(each(vseries, "cells.voltage", lambda sub, st: linear(cellmap.series_names(
        sub, st.cells, "cells.voltage", P, True, res, pages), "voltage", sub, "cells.voltage")))
    cell_invalid = None
    if vseries.invalid_values:
        cell_invalid = []
        for s in cell_v.slots:
            sig = res.slot_signal[s]
            for raw in vseries.invalid_values:
                if raw < 0 or raw >> sig.length:
                    raise ConfigError(P, "cells.voltage.invalid_values", f"raw value {raw} does not fit signal "
                                      f"{sig.name} ({sig.length} bits)")
            cell_invalid.append(frozenset(r * sig.scale + sig.offset for r in vseries.invalid_values))

    def bits(spec, key: str):
        """(mask, offset, per-cell slots) for one string; per cell (slot, bit) for several."""
        parts = each(spec, key, lambda sub, st: cellmap.cell_bits(sub, st.cells, key, res, pages)
                     + (st.cells,))
        if strings[0].name is None:
            return parts[0][:3], None
        return (None, 0, None), [r for m, off, b, n in parts for r in cellmap.bit_refs(m, off, b, n)]
    bal = smap.cells.balancing
    bal_mask = bal_bits = bal_at = valid_at = None
    bal_off, bal_active = 0, 1
    if bal is not None:
        bal_active = bal.active_value
        (bal_mask, bal_off, bal_bits), bal_at = bits(bal, "cells.balancing")
    valid = smap.cells.valid
    valid_plan = None
    if valid is not None:
        vb, valid_at = bits(valid, "cells.valid")
        valid_plan = vb + (valid.valid_value,)

    # temperatures: the cell NTCs of every string, then the bleed-resistor NTC(s)
    temps, temp_cells = Linear([], [], []), []
    if smap.temperatures.cells is not None:
        temp_cells: list[int] = []   # the board cell (0-based) each cell NTC sits among, spread over its string

        def ntcs(sub, st):
            lin = linear(cellmap.series_names(sub, st.cells, "temperatures.cells", P, False, res, pages),
                         "temperature", sub, "temperatures.cells")
            temp_cells.extend(st.first + k * st.cells // len(lin.slots) for k in range(len(lin.slots)))
            return lin
        temps = cat(each(smap.temperatures.cells, "temperatures.cells", ntcs))
    n_bleed = 0
    if smap.temperatures.bleed_resistor is not None:
        t = cat(each(smap.temperatures.bleed_resistor, "temperatures.bleed_resistor", lambda ref, st: linear(
            [(ref.signal, None)], "temperature", ref, "temperatures.bleed_resistor"), every=False))
        temps, n_bleed = cat([temps, t]), len(t.slots)

    flag_refs = {k: cellmap.expand_flag(getattr(smap.flags, k), strings, f"flags.{k}", P)
                 for k in ("hvc", "lvc", "ot", "ut")}
    flags = {k: (ext.compile_condition(r, f"flags.{k}", r.active_value, res) if r is not None else None)
             for k, r in flag_refs.items()}
    fets = {k: (ext.compile_condition(getattr(smap.fets, k), f"fets.{k}", getattr(smap.fets, k).closed, res)
                if getattr(smap.fets, k) is not None else None) for k in ("charge", "discharge")}

    pack_v = linear([(smap.pack.voltage.signal, None)], "voltage", smap.pack.voltage, "pack.voltage") if smap.pack.voltage else None
    pack_a = linear([(smap.pack.current.signal, None)], "current", smap.pack.current, "pack.current") if smap.pack.current else None

    state_slot, state_choices = None, {}
    if smap.state is not None:
        state_slot, _m, sig = res.slot(smap.state.signal, "state")
        if smap.state.choices is not None:
            state_choices = dict(smap.state.choices)
        elif sig.choices:
            state_choices = {int(k): str(v) for k, v in sig.choices.items()}

    events = ext.compile_events(smap.events, on_msg, res)
    sample_slots = [s for s in range(len(res.slot_names)) if res.slot_frame[s] not in events]
    event_slots = [s for s in range(len(res.slot_names)) if res.slot_frame[s] in events]
    identity, identity_slots = _identity(smap, res, P, set(range(len(res.slot_names))))

    # dispatch table
    handlers: dict[int, FrameHandler] = {}
    for slot, (mname, sname) in enumerate(res.slot_names):
        fid = res.slot_frame[slot]
        h = handlers.get(fid)
        if h is None:
            # the message itself, not a lookup by id: cantools does not find an extended
            # frame whose id fits in 11 bits by its bare id
            m = res.slot_message[slot]
            h = handlers[fid] = FrameHandler(m, {}, False, pages.get(fid) or _mux_index(m))
        sig_name = res.slot_signal[slot].name
        page = res.slot_page[slot]
        if page is None:
            h.slots[sig_name] = slot
        else:
            h.pages.setdefault(page, {})[sig_name] = slot
    for fid in [on_msg.frame_id] + [hb for _hold, hb in events.values()]:
        if fid not in handlers:
            m = ext.message_by_id(res, fid)
            handlers[fid] = FrameHandler(m, {}, False, _mux_index(m))
    handlers[on_msg.frame_id].completes_sample = True

    def source(slot: int) -> tuple:
        fid, page = res.slot_frame[slot], res.slot_page[slot]
        if page is None:
            ids = res.slot_signal[slot].multiplexer_ids
            page = ids[0] if ids and len(ids) == 1 else None
        return (fid, page)

    slot_source = [source(s) for s in range(len(res.slot_names))]
    per_cell = [[s] for s in cell_v.slots]
    for extra in (bal_bits, valid_plan[2] if valid_plan else None, bal_at, valid_at):
        for i, s in enumerate(extra or ()):
            per_cell[i].append(s if isinstance(s, int) else s[0])
    cell_sources = [sorted({slot_source[s] for s in ss}, key=str) for ss in per_cell]
    cell_src = {src for ss in cell_sources for src in ss}
    required = {slot_source[s] for s in sample_slots} - cell_src
    required |= {(on_msg.frame_id, None)} | {(hb, None) for _hold, hb in events.values()}
    j_table, j_sa, j_pri = ext.compile_j1939(smap.j1939, sorted(handlers), res)
    requests = ext.compile_requests(smap.requests, res)
    for r in requests:
        if r.response_id is not None and r.response_id not in handlers:
            m = ext.message_by_id(res, r.response_id)
            handlers[r.response_id] = FrameHandler(m, {}, False, pages.get(r.response_id) or _mux_index(m))
    commands = compile_commands(smap.commands, res, ext.message_named)
    for c in commands.values():
        if c.ack_id is not None and c.ack_id not in handlers:
            handlers[c.ack_id] = FrameHandler(c.ack_message, {}, False, _mux_index(c.ack_message))

    return CanPlan(
        map_path=map_path, dbc_path=dbc_path, n_cells=n_cells, sample_on=on_msg.name,
        sample_on_id=on_msg.frame_id, timeout_s=smap.timeout_s, handlers=handlers,
        slot_names=res.slot_names, sample_slots=sample_slots,
        sample_frame_ids=sorted({fid for fid, _p in required | cell_src}), identity_slots=identity_slots,
        cell_v=cell_v, temps=temps, balancing_mask=bal_mask, balancing_bit_offset=bal_off,
        balancing_bits=bal_bits, balancing_active=bal_active, flags=flags, fets=fets, pack_v=pack_v,
        pack_a=pack_a, state_slot=state_slot, state_choices=state_choices, identity=identity,
        message_names={m.frame_id: m.name for m in db.messages},
        dbc_warnings=list(getattr(db, "bmsrig_warnings", [])),
        cell_invalid=cell_invalid, valid=valid_plan, slot_source=slot_source, cell_sources=cell_sources,
        required_sources=sorted(required, key=str), page_timeout=page_timeout, events=events,
        event_slots=event_slots, j1939=j_table, j1939_sa=j_sa, j1939_priority=j_pri, requests=requests, commands=commands,
        slot_page=list(res.slot_page), slot_signals=list(res.slot_signal),
        slot_messages=list(res.slot_message), balancing_at=bal_at, valid_at=valid_at, n_bleed=n_bleed,
        strings=[(st.name, st.first, st.cells) for st in strings if st.name is not None],
        temp_cells=temp_cells if strings[0].name is not None else None,
    )


def _mux_index(m) -> PageIndexPlan | None:
    """A multiplexed message's multiplexer as its page index (staleness per page)."""
    for s in m.signals:
        if s.is_multiplexer:
            return PageIndexPlan(s.name)
    return None


def _identity(smap, res: _Resolver, P: Path, before: set) -> tuple[dict, list[int]]:
    """Identity plans (their own slots: identity frames come at a slower cadence and do not gate samples)."""
    identity: dict[str, IdentityPlan | None] = {}
    for k in ("serial", "hw_revision", "fw_version"):
        f: IdentityField | None = getattr(smap.identity, k)
        key = f"identity.{k}"
        if f is None:
            identity[k] = None
            continue
        if f.signal is not None:
            names, labels = [f.signal], ["value"]
        elif isinstance(f.signals, dict):
            labels, names = list(f.signals), list(f.signals.values())
        else:
            names = list(f.signals)
            labels = [f"s{j}" for j in range(len(names))]
        slots, lens, orders = [], [], []
        for nm in names:
            slot, _m, sig = res.slot(nm, key)
            slots.append(slot)
            lens.append((sig.length + 7) // 8)
            orders.append("little" if sig.byte_order == "little_endian" else "big")
        if f.format:
            used = format_fields(f.format, P, key + ".format")
            unknown = [u for u in used if u not in labels]
            if unknown:
                raise ConfigError(P, key + ".format", f"format {f.format!r} uses {{{unknown[0]}}} but the signals "
                                  f"are named {', '.join(labels)}")
            if not used and not f.ascii:  # a constant: every board would report the same identity
                raise ConfigError(P, key + ".format", f"format {f.format!r} uses none of the signals {labels}")
        kind = "ascii" if f.ascii else ("format" if f.format else "value")
        if kind == "value" and len(names) > 1:
            raise ConfigError(P, key, "several signals need 'ascii: true' or a mapping with a 'format'")
        identity[k] = IdentityPlan(kind, slots, labels, lens, orders, f.format)
    return identity, [s for s in range(len(res.slot_names)) if s not in before]
