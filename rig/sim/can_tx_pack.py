"""The bench transmitter's per-frame fast path: slot values packed straight into a payload.

The mirror of the link's :mod:`rig.links.can_fastpath`. :func:`compile_packer` turns one
DBC message (plain or with one multiplexer, at one multiplexer value) plus the values the
transmitter puts in it into a closure ``pack(vals) -> bytes``. The closure converts each
mapped signal's physical value with the signal's own cantools conversion
(``numeric_scaled_to_raw``, as ``Message.encode`` does), takes the raw value of every other
signal as computed once at compile time, and packs them with the bitstruct formats
cantools builds (``cantools.database.utils.create_encode_decode_formats``): the payload is
byte for byte what ``Message.encode(values, strict=False)`` returns (a compile-time probe
checks it, and ``tests/sim/test_can_tx_pack.py`` on every shipped CAN profile).

Messages it does not cover (overlapping signals split in views, container messages,
nested multiplexers) get ``None``: the transmitter encodes them with ``Message.encode``.
"""

from __future__ import annotations


def _node_signals(message, mux):
    """The signals ``Message.encode`` packs for multiplexer value ``mux`` ((signal, value) or
    None), as [[root signals], [page signals]], or None when the layout is not covered."""
    sigs = list(message.signals)
    roots = [s for s in sigs if s.multiplexer_signal is None]
    muxes = [s for s in roots if s.is_multiplexer]
    if len(muxes) > 1 or any(s.multiplexer_ids is not None for s in roots):
        return None
    children = [s for s in sigs if s.multiplexer_signal is not None]
    if not muxes:
        return None if children else [roots]
    m = muxes[0]
    if any(s.multiplexer_signal != m.name or s.is_multiplexer for s in children):
        return None
    if mux is None or mux[0] != m.name:
        return None
    return [roots, [s for s in children if mux[1] in s.multiplexer_ids]]


def compile_packer(message, base: dict, fields: list, mux=None):
    """``pack(vals) -> bytes`` for ``message`` (see the module docstring), or None.

    ``base``: signal name -> physical value of every signal the frame carries (the
    multiplexer's value included); ``fields``: [(signal name, slot)] whose value is
    ``vals[slot]`` when that is not None (else the base value); ``mux``: the frame's
    (multiplexer signal, value) or None."""
    from cantools.database.can import Message
    from cantools.database.utils import create_encode_decode_formats

    if not isinstance(message, Message) or message.is_container:
        return None
    nodes = _node_signals(message, mux)
    if nodes is None:
        return None
    length = message.length
    formats = [create_encode_decode_formats(sigs, length) for sigs in nodes]
    full = (1 << (8 * length)) - 1
    used = [full & ~f.padding_mask for f in formats]
    if len(used) == 2 and not used[0] & used[1]:  # disjoint bits: one format packs both nodes
        merged = [s for s in message.signals if any(s is x for sigs in nodes for x in sigs)]
        nodes, formats = [merged], [create_encode_decode_formats(merged, length)]
    mapped = dict(fields)
    by_name = {s.name: s for sigs in nodes for s in sigs}
    if set(mapped) - set(by_name):
        return None  # a field the packed nodes do not carry: leave it to cantools
    try:  # (a cantools without per-signal conversions: left to Message.encode)
        const = {s.name: s.conversion.numeric_scaled_to_raw(base[s.name])
                 for sigs in nodes for s in sigs if s.name not in mapped}
        conv = tuple((name, slot, by_name[name].conversion.numeric_scaled_to_raw, base.get(name))
                     for name, slot in fields)
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    packers = []
    for f, sigs in zip(formats, nodes):
        be = f.big_endian.pack if any(s.byte_order == "big_endian" for s in sigs) else None
        le = f.little_endian.pack if any(s.byte_order != "big_endian" for s in sigs) else None
        packers.append((be, le) if be or le else (f.big_endian.pack, None))  # no signal: zeros
    from_bytes = int.from_bytes

    if len(packers) == 1:
        be, le = packers[0]

        def pack(vals) -> bytes:
            raw = const.copy()
            for name, slot, to_raw, dflt in conv:
                v = vals[slot]
                raw[name] = to_raw(dflt if v is None else v)
            if be is None:  # little-endian signals only: their format packs the frame reversed
                return le(raw)[::-1]
            if le is None:
                return be(raw)
            return (from_bytes(le(raw), "little") | from_bytes(be(raw), "big")).to_bytes(length, "big")
    else:
        def pack(vals) -> bytes:
            raw = const.copy()
            for name, slot, to_raw, dflt in conv:
                v = vals[slot]
                raw[name] = to_raw(dflt if v is None else v)
            n = 0
            for be, le in packers:
                if be is not None:
                    n |= from_bytes(be(raw), "big")
                if le is not None:
                    n |= from_bytes(le(raw), "little")
            return n.to_bytes(length, "big")

    # probe: the base values must give Message.encode's bytes, else the general path
    probe = [None] * (max((s for _n, s in fields), default=-1) + 1)
    try:
        want = message.encode(dict(base), strict=False)
        got = pack(probe)
    except Exception:  # noqa: BLE001 - anything cantools refuses here is left to cantools
        return None
    return pack if got == want else None

