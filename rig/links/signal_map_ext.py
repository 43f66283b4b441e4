"""Signal-map parts beyond one-signal-one-value: pages, conditions, events, J1939, requests.

Compiled by :func:`rig.links.signal_map.compile_signal_map` into the :class:`CanPlan` the
link decodes with and the bench transmitter encodes with:

- **pages** (:func:`page_cells`): cell = (page - first) × N + k with one signal name reused
  on every page; the page index is a signal (a DBC multiplexer or a plain one) or bits of
  a data byte (:class:`PageIndexPlan`).
- **conditions** (:func:`compile_condition`): a flag or FET is the OR of terms, each a bit,
  a bit mask, or a set of values (numbers or value-table names, e.g. a contactor enum).
- **events** (:func:`compile_events`): messages sent only on change / while a fault lasts.
- **J1939** (:func:`compile_j1939`): extended frames matched by PGN, priority and source
  address filtered as the map lists them.
- **requests** (:func:`compile_requests`): frames the link transmits, encoded once here.

Map keys (see the shipped ``testplans/profiles/example-*-can.yaml``)::

    cells:
      voltage:
        pages: {message: XB_CellPage, index: {byte: 0}, signals: [CellV_1, CellV_2, CellV_3],
                first: 0, timeout_s: 1.0}        # or index: TPage (a signal / DBC multiplexer)
        invalid_values: [0xFFFF]                 # raw values meaning "not measured"
      valid: {mask: CellValidBits, valid_value: 1}   # or template / signals / pages
    flags:
      hvc: {any: [OV_Cell, {signal: Alarm, bit: 3}]}   # OR of terms
      ot: {signal: AlarmBits, mask: 0x0C}              # any of these bits
    fets:
      charge: {signal: Contactor, values: [CLOSED]}    # enum: WELDED is not closed
    events: {XB_Alarm: {hold_s: cycle}}          # absent = not set; heartbeat: sample_on
    j1939: {source_addresses: [0x80, 0x81]}      # match by PGN; priorities: [...] optional
    requests:
      - {message: Req, signals: {Type: CELLS, Page: [0, 1, 2]}, every_s: 0.25,
         response: CellPage, timeout_s: 0.6, retries: 1}
      - {message: Req, signals: {Type: IDENT}, when: identity, response: Ident}

Every error is a :class:`~rig.errors.ConfigError` naming the map file, the key and the problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError

#: J1939 PGN bits of a 29-bit identifier (data page, PDU format, PDU specific)
PGN_MASK = 0x03FFFF00


@dataclass(frozen=True)
class PageIndexPlan:
    """Where a message carries its page index: ``signal`` (decoded value) or ``byte``/``shift``/``mask``."""

    signal: str | None
    byte: int | None = None
    shift: int = 0
    mask: int = 0xFF

    def of(self, data, values: dict):
        """The page index of one frame (None if the frame is too short)."""
        if self.signal is not None:
            v = values.get(self.signal)
            return None if v is None else int(v)
        if self.byte >= len(data):
            return None
        return (data[self.byte] >> self.shift) & self.mask


def page_cells(pages, n_cells: int, key: str, res, page_index: dict) -> list[tuple[str, object]]:
    """(``Message.Signal``, page value) per cell for a ``pages:`` section; records the
    message's :class:`PageIndexPlan` in ``page_index`` (frame id -> plan)."""
    P = res.map_path
    try:
        msg = res.db.get_message_by_name(pages.message)
    except KeyError:
        raise ConfigError(P, key + ".message", f"message {pages.message!r} not found in DBC "
                          f"{res.dbc_path.name}{res.suggest(pages.message, [m.name for m in res.db.messages])}") from None
    idx = pages.index
    names = {s.name for s in msg.signals}
    if idx.signal is not None:
        if idx.signal not in names:
            raise ConfigError(P, key + ".index.signal", f"signal {idx.signal!r} is not in message {msg.name} "
                              f"of DBC {res.dbc_path.name}{res.suggest(idx.signal, sorted(names))}")
        plan = PageIndexPlan(idx.signal)
    else:
        if idx.byte >= msg.length:
            raise ConfigError(P, key + ".index.byte", f"byte {idx.byte} is beyond message {msg.name} "
                              f"({msg.length} bytes)")
        plan = PageIndexPlan(None, idx.byte, idx.bit, (1 << idx.length) - 1)
    old = page_index.get(msg.frame_id)
    if old is not None and old != plan:
        raise ConfigError(P, key + ".index", f"message {msg.name} is already paged by another index ({old})")
    page_index[msg.frame_id] = plan
    for sig in pages.signals:
        if sig not in names:
            raise ConfigError(P, key + ".signals", f"signal {sig!r} is not in message {msg.name} of DBC "
                              f"{res.dbc_path.name}{res.suggest(sig, sorted(names))}")
    per = len(pages.signals)
    n_pages = -(-n_cells // per)
    top = pages.first + n_pages - 1
    if plan.signal is None and top > plan.mask:
        raise ConfigError(P, key + ".index", f"{n_cells} cells need page index up to {top}, but "
                          f"{idx.length} bits hold at most {plan.mask}")
    out = []
    for i in range(n_cells):
        page, k = divmod(i, per)
        out.append((f"{msg.name}.{pages.signals[k]}", pages.first + page))
    return out


# --------------------------------------------------------------------------- conditions


@dataclass(frozen=True)
class TermPlan:
    """True when slot value (its ``bit``, or ``& mask``) is in ``values`` (``mask``: != 0)."""

    slot: int
    bit: int | None
    mask: int | None
    values: frozenset

    def test(self, v) -> bool:
        if v is None:
            return False
        v = int(v)
        if self.bit is not None:
            v = (v >> self.bit) & 1
        elif self.mask is not None:
            return (v & self.mask) != 0
        return v in self.values


@dataclass(frozen=True)
class CondPlan:
    """A flag or FET: the OR of its terms."""

    terms: tuple[TermPlan, ...]

    def test(self, raw: list) -> bool:
        for t in self.terms:  # a loop, not any(genexpr): called for every flag of every sample
            if t.test(raw[t.slot]):
                return True
        return False

    @property
    def slots(self) -> list[int]:
        return [t.slot for t in self.terms]

    # compatibility with the single-signal form (slot / bit / active)
    @property
    def slot(self) -> int:
        return self.terms[0].slot

    @property
    def bit(self) -> int | None:
        return self.terms[0].bit


def _codes(values, sig, P, key: str) -> frozenset:
    out = set()
    choices = {str(v): int(k) for k, v in (sig.choices or {}).items()}
    for v in values:
        if isinstance(v, str):
            if v not in choices:
                known = ", ".join(choices) or "none: the signal has no value table"
                raise ConfigError(P, key + ".values", f"{v!r} is not a value name of signal {sig.name} "
                                  f"(known: {known})")
            out.add(choices[v])
        else:
            out.add(int(v))
    return frozenset(out)


def compile_condition(ref, key: str, default_value: int, res) -> CondPlan:
    """A :class:`~rig.links.signal_map_schema.FlagRef`/``FetRef`` -> :class:`CondPlan`."""
    P = res.map_path
    terms = [(ref, key)] if ref.any is None else [(t, f"{key}.any[{j}]") for j, t in enumerate(ref.any)]
    if ref.any is not None and not ref.any:
        raise ConfigError(P, key + ".any", "lists no terms")
    plans = []
    for t, k in terms:
        slot, _m, sig = res.slot(t.signal, k)
        if t.bit is not None and t.bit >= sig.length:
            raise ConfigError(P, k + ".bit", f"bit {t.bit} is outside signal {sig.name} ({sig.length} bits)")
        if t.mask is not None and t.mask >> sig.length:
            raise ConfigError(P, k + ".mask", f"mask 0x{t.mask:X} is wider than signal {sig.name} ({sig.length} bits)")
        values = _codes(t.values, sig, P, k) if t.values is not None else frozenset({int(default_value)})
        plans.append(TermPlan(slot, t.bit, t.mask, values))
    return CondPlan(tuple(plans))


# --------------------------------------------------------------------------- events, J1939


def compile_events(events: dict, sample_on, res) -> dict[int, tuple[float | None, int]]:
    """message name -> (hold_s, heartbeat frame id), keyed by the event message's frame id."""
    out = {}
    for name, ev in events.items():
        key = f"events.{name}"
        msg = message_named(res, name, key)
        hb = message_named(res, ev.heartbeat, key + ".heartbeat") if ev.heartbeat else sample_on
        if hb.frame_id == msg.frame_id:
            raise ConfigError(res.map_path, key + ".heartbeat", "an event message cannot be its own heartbeat")
        out[msg.frame_id] = (ev.hold_s, hb.frame_id)
    return out


def compile_j1939(j, frame_ids: list[int], res) -> tuple[dict[int, int], frozenset | None, frozenset | None]:
    """(PGN bits -> frame id of the DBC message, source addresses or None, priorities or None)."""
    if j is None:
        return {}, None, None
    wanted = None
    if j.messages is not None:
        wanted = {message_named(res, n, "j1939.messages").frame_id for n in j.messages}
    table: dict[int, int] = {}
    for fid in frame_ids:
        m = message_by_id(res, fid)
        if not m.is_extended_frame or (wanted is not None and fid not in wanted):
            continue
        pgn = fid & PGN_MASK
        if pgn in table and table[pgn] != fid:
            other = message_by_id(res, table[pgn]).name
            raise ConfigError(res.map_path, "j1939", f"messages {other} and {m.name} have the same PGN "
                              f"0x{pgn >> 8:X}: matching by PGN cannot tell them apart")
        table[pgn] = fid
    sa = frozenset(j.source_addresses) if j.source_addresses is not None else None
    pri = frozenset(j.priorities) if j.priorities is not None else None
    return table, sa, pri


def message_by_id(res, fid: int):
    for m in res.db.messages:
        if m.frame_id == fid:
            return m
    raise KeyError(fid)  # pragma: no cover - ids come from the DBC


def message_named(res, name: str, key: str):
    try:
        return res.db.get_message_by_name(name)
    except KeyError:
        raise ConfigError(res.map_path, key, f"message {name!r} not found in DBC {res.dbc_path.name}"
                          f"{res.suggest(name, [m.name for m in res.db.messages])}") from None


# --------------------------------------------------------------------------- requests


@dataclass
class RequestPlan:
    """One ``requests:`` entry, encoded: ``frames`` = [(data, listed value or None)] in send order."""

    index: int
    message: str
    frame_id: int
    extended: bool
    frames: list[tuple[bytes, object]]
    on: str
    every_s: float | None
    response_id: int | None
    timeout_s: float
    retries: int
    listed_signal: str | None = None
    values: dict = field(default_factory=dict)


def compile_requests(requests, res) -> list[RequestPlan]:
    """Encode every request frame now (the link only sends bytes); ConfigError on a bad entry."""
    out = []
    for j, r in enumerate(requests):
        key = f"requests[{j}]"
        msg = message_named(res, r.message, key + ".message")
        sigs = {s.name: s for s in msg.signals}
        base = {}
        for s in msg.signals:
            raw = getattr(s, "raw_initial", None) or 0
            base[s.name] = raw * s.scale + s.offset
        listed, values = None, [None]
        for name, v in r.signals.items():
            if name not in sigs:
                raise ConfigError(res.map_path, f"{key}.signals.{name}", f"signal {name!r} is not in message "
                                  f"{msg.name}{res.suggest(name, list(sigs))}")
            vals = v if isinstance(v, list) else [v]
            codes = []
            for x in vals:
                if isinstance(x, str):
                    codes.extend(_codes([x], sigs[name], res.map_path, f"{key}.signals.{name}"))
                else:
                    codes.append(x)
            if isinstance(v, list):
                listed, values = name, codes
            else:
                base[name] = codes[0]
        frames = []
        for v in values:
            d = dict(base)
            if listed is not None:
                d[listed] = v
            if msg.is_multiplexed():  # only the signals of the page the multiplexer selects
                d = _mux_page(msg, d, set(r.signals), res.map_path, f"{key}.signals")
            try:
                frames.append((bytes(msg.encode(d, strict=True)), v))
            except Exception as exc:
                raise ConfigError(res.map_path, f"{key}.signals", f"cannot encode {msg.name} with {d}: {exc}") from None
        resp = message_named(res, r.response, key + ".response").frame_id if r.response else None
        out.append(RequestPlan(j, msg.name, msg.frame_id, bool(msg.is_extended_frame), frames, r.when, r.every_s,
                               resp, r.timeout_s, r.retries, listed, dict(r.signals)))
    return out


def _mux_page(msg, values: dict, given: set, path, key: str) -> dict:
    """The values of the signals on the page ``values``' multiplexer value selects; a signal
    the map names that is on another page is a ConfigError."""
    page = msg.gather_signals(values)
    for name in sorted(given - set(page)):
        sig = msg.get_signal_by_name(name)
        mux = sig.multiplexer_signal
        raise ConfigError(path, key, f"signal {name!r} is on page {mux} = {sig.multiplexer_ids} of {msg.name}, "
                          f"not on the page {mux} = {values.get(mux)} the request selects")
    return page
