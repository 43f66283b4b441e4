"""One bool per cell from a CAN link's slot values: :func:`cell_bits` and :class:`CellBits`.

A board reports per-cell bits (balancing, validity) as a concatenated bit mask over one or
more signals, as one signal per cell, or (a board of several strings) as (signal, bit) per
cell. :class:`CellBits` keeps the arrays it worked out by the slot values they came from:
the mask of a sample is most often the one of the sample before.
"""

from __future__ import annotations

import numpy as np

MEMO_MASKS = 1024
"""Arrays kept per :class:`CellBits` (by their slot values), before it starts afresh."""


def cell_bits(raw: list, n: int, mask, offset: int, bits, at=None) -> np.ndarray:
    """One bool per cell (``n`` cells) from a concatenated bit mask [(slot, width)] starting at
    bit ``offset``, per-cell slots ``bits``, or per-cell (slot, bit or None) ``at``."""
    if at:
        return np.array([((int(raw[s]) >> b) & 1) == 1 if b is not None else int(raw[s]) == 1 for s, b in at], bool)
    if mask:
        m, shift = 0, 0
        for slot, width in mask:
            m |= (int(raw[slot]) & ((1 << width) - 1)) << shift
            shift += width
        nbytes = (shift + 7) // 8 + 1
        return np.unpackbits(np.frombuffer(m.to_bytes(nbytes, "little"), np.uint8),
                             bitorder="little")[offset:offset + n].astype(bool)
    return np.array([int(raw[i]) == 1 for i in bits], bool)


class CellBits:
    """``bits(raw) -> bool per cell`` (a new array each call, inverted when ``invert``), kept
    by the values of the slots it reads (equal values give equal bits)."""

    def __init__(self, n: int, mask, offset: int, bits, at=None, invert: bool = False):
        self._args = (n, mask, offset, bits, at)
        self._invert = invert
        slots = [s for s, _b in at] if at else [s for s, _w in mask] if mask else list(bits or ())
        self._slots = tuple(slots)
        self._memo: dict[tuple, np.ndarray] = {}

    def __call__(self, raw: list) -> np.ndarray:
        key = tuple([raw[s] for s in self._slots])
        got = self._memo.get(key)
        if got is None:
            got = cell_bits(raw, *self._args)
            if self._invert:
                got = ~got
            if len(self._memo) >= MEMO_MASKS:
                self._memo.clear()
            self._memo[key] = got
        return got.copy()
