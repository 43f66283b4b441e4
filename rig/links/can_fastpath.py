"""The CAN link's per-frame fast path: a frame's bits unpacked straight into the link's slots.

:func:`compile_store` turns one DBC message (plain or with one multiplexer) plus the slots
the signal map gives its signals into a closure ``store(data, ts) -> bool``. The closure
unpacks the whole frame layout with the same bitstruct formats cantools builds
(``cantools.database.utils.create_encode_decode_formats``, root signals then the
multiplexed page), scales the mapped signals with each signal's own cantools conversion
(``raw_to_scaled``: the values are exactly what ``Message.decode(decode_choices=False)``
returns), stores them in ``raw[slot]`` and stamps the staleness table (``seen[frame id]``
and ``seen[(frame id, mux value)]``). Signals the map does not use are unpacked but not
scaled (nobody reads them).

It returns ``False`` without touching anything when the frame is not the ordinary case
(shorter than the DBC length, a multiplexer value the DBC does not list): the link then
takes the general path (``Message.decode``), which raises and counts the decode error as
before. A ``pages:`` section (one signal name reused on every page) is stored per page,
its index a DBC multiplexer or a plain signal of the message. Messages the fast path does
not cover (overlapping signals split in views, nested multiplexers, pages indexed by the
bits of a data byte) get ``None`` and always take the general path.
"""

from __future__ import annotations

from functools import partial
from operator import itemgetter


def _formats(signals, length: int):
    """(big-endian unpack, little-endian unpack) of cantools' formats for ``signals``
    (``None`` for an endianness with no signal)."""
    from cantools.database.utils import create_encode_decode_formats

    f = create_encode_decode_formats(signals, length)
    be = f.big_endian.unpack if any(s.byte_order != "little_endian" for s in signals) else None
    le = f.little_endian.unpack if any(s.byte_order == "little_endian" for s in signals) else None
    if be is None and le is None:  # no signal at all: an empty unpack
        be = f.big_endian.unpack
    return be, le


def _scale(signal):
    """``raw -> scaled`` of ``signal`` as ``decode(decode_choices=False)`` scales it (a
    conversion without a value table ignores ``decode_choices``: its bound method as is)."""
    conv = signal.conversion
    if conv.choices:
        return partial(conv.raw_to_scaled, decode_choices=False)
    return conv.raw_to_scaled


def _stores(signals, slots: dict) -> tuple:
    """((signal name, slot, raw -> scaled), ...) for the mapped ones among ``signals``."""
    return tuple((s.name, slots[s.name], _scale(s)) for s in signals if s.name in slots)


def compile_store(message, slots: dict, fid: int, raw: list, seen: dict, page_signal, pages: dict | None = None):
    """The fast ``store(data, ts) -> bool`` for ``message`` (see the module docstring), or
    ``None`` when the message is not covered. ``page_signal``: the handler's page index
    signal (the multiplexer, a plain signal of an unmultiplexed message paged by a
    ``pages:`` section, or ``None``); ``pages``: page value -> {signal: slot} of such a
    section (one signal name reused on every page)."""
    from cantools.database.can import Message

    if not isinstance(message, Message):
        return None  # a SplitMessage (overlapping signals): general path
    length = message.length
    sigs = list(message.signals)
    roots = [s for s in sigs if s.multiplexer_signal is None]
    muxes = [s for s in roots if s.is_multiplexer]
    if len(muxes) > 1 or any(s.multiplexer_ids is not None for s in roots):
        return None
    mux = muxes[0] if muxes else None
    children = [s for s in sigs if s.multiplexer_signal is not None]
    pages = pages or {}
    if mux is None:
        if children:
            return None
        if page_signal is not None:
            return _paged_store(message, roots, slots, fid, raw, seen, page_signal, pages)
    elif page_signal != mux.name or any(s.multiplexer_signal != mux.name or s.is_multiplexer for s in children):
        return None

    root_be, root_le = _formats(roots, length)
    root_store = _stores(roots, slots)

    if mux is None:
        def store(data, ts):
            n = len(data)
            if n != length:
                if n < length:
                    return False
                data = data[:length]
            u = root_le(data[::-1]) if root_be is None else (
                root_be(data) if root_le is None else {**root_be(data), **root_le(data[::-1])})
            for name, slot, conv in root_store:
                raw[slot] = conv(u[name])
            seen[fid] = ts
            return True
        return store

    ids = {i for s in children for i in s.multiplexer_ids or ()} | set((mux.conversion.choices or {}).keys())
    nodes = {}
    read_mux = _byte_reader(mux)
    for i in ids:
        node_sigs = [s for s in children if i in s.multiplexer_ids]
        page_slots = {**slots, **pages.get(i, {})}
        nodes[i] = _formats(node_sigs, length) + (_stores(node_sigs, page_slots),)
        if read_mux is not None and _disjoint(roots, node_sigs, length):  # the whole frame in one unpack
            ids_both = {id(x) for x in roots + node_sigs}
            both = [s for s in sigs if id(s) in ids_both]  # in the message's order, as cantools lists them
            nodes[i] += (_formats(both, length) + (root_store + _stores(node_sigs, page_slots),),)
        else:
            nodes[i] += (None,)
    mux_name, mux_conv = mux.name, _scale(mux)
    by_raw: dict = {}  # raw multiplexer value -> (page big/little-endian unpack, page stores, staleness key, whole)

    if read_mux is not None:
        def store_whole(data, ts):
            n = len(data)
            if n != length:
                if n < length:
                    return False
                data = data[:length]
            page = by_raw.get(read_mux(data))
            if page is None or page[4] is None:
                return store(data, ts)
            be, le, stores = page[4]
            u = le(data[::-1]) if be is None else (be(data) if le is None else {**be(data), **le(data[::-1])})
            for name, slot, conv in stores:
                raw[slot] = conv(u[name])
            seen[fid] = ts
            seen[page[3]] = ts
            return True

    def store(data, ts):
        n = len(data)
        if n != length:
            if n < length:
                return False
            data = data[:length]
        rev = data[::-1]  # little-endian signals unpack from the reversed frame (as cantools does)
        u = root_le(rev) if root_be is None else (root_be(data) if root_le is None else {**root_be(data), **root_le(rev)})
        r = u[mux_name]
        page = by_raw.get(r)
        if page is None:
            scaled = mux_conv(r)
            node = nodes.get(int(scaled))
            if node is None:
                return False
            page = by_raw[r] = node[:3] + ((fid, scaled), node[3])
        page_be, page_le, page_store, key, _whole = page
        for name, slot, conv in root_store:
            raw[slot] = conv(u[name])
        u = page_le(rev) if page_be is None else (page_be(data) if page_le is None else {**page_be(data), **page_le(rev)})
        for name, slot, conv in page_store:
            raw[slot] = conv(u[name])
        seen[fid] = ts
        seen[key] = ts
        return True
    return store if read_mux is None else store_whole


def _byte_reader(mux):
    """``data -> raw multiplexer value`` when the multiplexer is one whole unsigned byte
    (the bits bitstruct would unpack), else None."""
    if mux.length != 8 or mux.is_signed or mux.conversion.is_float:
        return None
    if mux.byte_order == "little_endian" and mux.start % 8 == 0:
        return itemgetter(mux.start // 8)
    if mux.byte_order == "big_endian" and mux.start % 8 == 7:
        return itemgetter(mux.start // 8)
    return None


def _disjoint(a, b, length: int) -> bool:
    """True when the signals ``a`` and ``b`` occupy no bit in common (one format unpacks both)."""
    from cantools.database.utils import create_encode_decode_formats

    full = (1 << (8 * length)) - 1
    fa, fb = (create_encode_decode_formats(x, length) for x in (a, b))
    return not (full & ~fa.padding_mask) & (full & ~fb.padding_mask)


def _paged_store(message, roots, slots: dict, fid: int, raw: list, seen: dict, page_signal: str, pages: dict):
    """The store of an unmultiplexed message whose plain signal ``page_signal`` says which
    page (cells) its reused signal names carry; a page the map does not list stores only
    the message's unpaged signals (as the general path does)."""
    by_name = {s.name: s for s in roots}
    if page_signal not in by_name:
        return None
    length = message.length
    be, le = _formats(roots, length)
    plain = _stores(roots, slots)
    page_conv = _scale(by_name[page_signal])
    by_page = {p: _stores(roots, ps) for p, ps in pages.items()}

    def store(data, ts):
        n = len(data)
        if n != length:
            if n < length:
                return False
            data = data[:length]
        u = le(data[::-1]) if be is None else (be(data) if le is None else {**be(data), **le(data[::-1])})
        for name, slot, conv in plain:
            raw[slot] = conv(u[name])
        page = page_conv(u[page_signal])
        seen[fid] = ts
        seen[(fid, page)] = ts
        for name, slot, conv in by_page.get(page, ()):
            raw[slot] = conv(u[name])
        return True
    return store
