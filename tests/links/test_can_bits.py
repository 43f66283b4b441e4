"""Per-cell bits kept by their slot values (:class:`rig.links.can_bits.CellBits`) are the bits
worked out afresh, in a new array each time."""

from __future__ import annotations

import numpy as np

from rig.links.can_bits import CellBits, cell_bits


def test_kept_bits_equal_fresh_ones_for_masks_slots_and_string_bits():
    rng = np.random.default_rng(2)
    n = 20
    layouts = [dict(mask=[(0, 8), (1, 16)], offset=2, bits=None, at=None),  # a mask over two signals
               dict(mask=None, offset=0, bits=list(range(2, 2 + n)), at=None),  # one signal per cell
               dict(mask=None, offset=0, bits=None, at=[(0, i % 8) if i < 10 else (1, None) for i in range(n)])]
    for lay in layouts:
        for invert in (False, True):
            kept = CellBits(n, lay["mask"], lay["offset"], lay["bits"], lay["at"], invert=invert)
            for k in range(200):
                raw = [int(rng.integers(0, 1 << 8)), int(rng.integers(0, 1 << 16))] + \
                      [int(rng.integers(0, 2)) for _ in range(n)]
                if k % 3:  # repeat an earlier mask, as a board mostly does
                    raw[:2] = [5, 1234]
                want = cell_bits(raw, n, lay["mask"], lay["offset"], lay["bits"], lay["at"])
                got = kept(raw)
                assert got.dtype == bool and np.array_equal(got, ~want if invert else want)
                got[:] = ~got  # a sample's array is its own: changing it changes no later one
                assert np.array_equal(kept(raw), ~want if invert else want)
