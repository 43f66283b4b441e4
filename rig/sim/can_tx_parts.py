"""Helpers of the bench CAN transmitter (:mod:`rig.sim.can_tx`): flags and FETs as the map's
conditions encode them, a page index in a data byte, answers to the link's requests, and a
frame's slot values put in place or encoded by ``Message.encode``."""

from __future__ import annotations


def encode_conditions(vals: list, states: list) -> None:
    """Write each (condition, on) of ``states`` into the slot values ``vals``.

    On: the condition's first term is made true (its bit, the lowest bit of its mask, or its
    lowest listed value). Off: every term is made false (bit/mask cleared, a value outside
    the listed ones). Offs are written first so that two conditions sharing one enum signal
    (e.g. contactor CLOSED vs WELDED) leave the one that is on.
    """
    acc: dict[int, int] = {}
    for cond, on in sorted(states, key=lambda x: x[1]):
        terms = cond.terms[:1] if on else cond.terms
        for t in terms:
            cur = acc.get(t.slot, 0)
            if t.bit is not None:
                want = min(t.values) if on else _outside(t.values, 1)
                acc[t.slot] = (cur & ~(1 << t.bit)) | ((want & 1) << t.bit)
            elif t.mask is not None:
                low = t.mask & -t.mask
                acc[t.slot] = (cur | low) if on else (cur & ~t.mask)
            else:
                acc[t.slot] = min(t.values) if on else (cur if cur not in t.values else _outside(t.values))
    for slot, v in acc.items():
        vals[slot] = v


def _outside(values, limit: int | None = None) -> int:
    """The smallest non-negative integer not in ``values`` (at most ``limit``)."""
    v = 0
    while v in values and (limit is None or v < limit):
        v += 1
    return v


def set_page_byte(data: bytes, index, page: int) -> bytes:
    """``data`` with the page index written into its declared byte bits."""
    b = bytearray(data)
    mask = index.mask << index.shift
    b[index.byte] = (b[index.byte] & ~mask & 0xFF) | ((page & index.mask) << index.shift)
    return bytes(b)


def received_requests(bus, requests, commands=None, commanded: list | None = None) -> list:
    """Requests the host sent since the last call: [(request plan, listed value or None)].
    Frames of a command message of ``commands`` (name -> CommandPlan) that carry its constants
    are decoded (cantools) and appended to ``commanded`` as (plan, {parameter or signal: value}),
    once for each command of the map the frame carries (a start command of constants is also
    the on-demand command of the same type: the board reads it as both)."""
    by_id = {}
    for r in requests:
        by_id.setdefault(r.frame_id, []).append(r)
    cmd_ids: dict[int, list] = {}
    for c in (commands or {}).values():
        cmd_ids.setdefault(c.frame_id, []).append(c)
    out = []
    while True:
        msg = bus.recv(0)
        if msg is None:
            return out
        for r in by_id.get(msg.arbitration_id, ()):
            for data, value in r.frames:
                if bytes(msg.data) == data:
                    out.append((r, value))
                    break
        for c in cmd_ids.get(msg.arbitration_id, ()):
            try:
                values = c.message.decode(bytes(msg.data), decode_choices=False)
            except Exception:  # a short or malformed frame: not this command
                continue
            if c.matches(values) and commanded is not None:  # every command the frame carries
                commanded.append((c, c.parameter_values(values)))


def ack_frame(c) -> bytes:
    """The acknowledgement frame of command plan ``c``: its ack message with the listed constants."""
    m = c.ack_message
    d = {s.name: (getattr(s, "raw_initial", None) or 0) * s.scale + s.offset for s in m.signals}
    d.update(c.ack_values)
    return bytes(m.encode(d, strict=False))


def j1939_id(fid: int, source_address: int | None, priority: int | None) -> int:
    """A 29-bit J1939 identifier ``fid`` sent from another ``source_address`` / ``priority``."""
    if source_address is not None:
        fid = (fid & ~0xFF) | (int(source_address) & 0xFF)
    if priority is not None:
        fid = (fid & ~(7 << 26)) | ((int(priority) & 7) << 26)
    return fid


def answers(frames: list, tags: list, asked: list) -> list:
    """The response frames of ``frames`` (parallel ``tags``: page tag or None) for ``asked``:
    all frames of the response message, or only its page equal to the listed value."""
    out = []
    for r, value in asked:
        if r.response_id is None:
            continue
        for (fid, data), tag in zip(frames, tags):
            if fid != r.response_id:
                continue
            if value is not None and tag is not None and r.listed_signal is not None and tag[1] != value:
                continue
            out.append((fid, data))
    return out


def set_cell_bits(vals: list, refs: list, on) -> None:
    """Write one bit per cell: ``refs`` per cell (slot, bit or None = the whole signal),
    ``on`` per cell (bool). Bits of one slot are gathered into one int (64-bit masks exceed
    a float)."""
    acc: dict[int, int] = {}
    for (slot, bit), v in zip(refs, on):
        if bit is None:
            vals[slot] = int(bool(v))
        else:
            acc[slot] = acc.get(slot, 0) | (int(bool(v)) << bit)
    for slot, v in acc.items():
        vals[slot] = v


def encode_values(encode, base: dict, fields: list, vals: list) -> bytes:
    """``Message.encode`` of a frame: its base values, each field's slot value when it has one."""
    d = dict(base)
    for name, s in fields:
        v = vals[s]
        if v is not None:
            d[name] = v
    return encode(d, strict=False)


def put_values(vals: list, slots, first: int | None, k: int, values: list) -> None:
    """``vals[slots[i]] = values[i]`` for the first ``k`` slots (one slice when they run from ``first``)."""
    if first is not None:
        vals[first:first + k] = values
    else:
        for s, v in zip(slots[:k].tolist(), values):
            vals[s] = v
