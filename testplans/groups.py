"""Which channels a board may bleed together, by its profile's balancing rules: odd/even
(non-adjacent) sets, ``max_channels`` in all and ``max_per_group`` in each group (AFE) of
``group_cells``. Channels are 0-based indices; masks are bool arrays.
"""

from __future__ import annotations

import numpy as np


def bleed_groups(profile, n: int, skip: int | None = None) -> list[np.ndarray]:
    """Channel sets the board may bleed together: alternate (non-adjacent) channels of one
    parity, at most max_channels and at most ``max_per_group`` in each of the profile's
    groups (AFEs); together they cover every channel (except ``skip``)."""
    b = profile.balancing
    groups = []
    for parity in (0, 1):
        left = [i for i in range(parity, n, 2) if i != skip]
        while left:
            m = np.zeros(n, bool)
            per: dict[int, int] = {}
            for i in list(left):
                g = b.group_of(i)
                if m.sum() < b.max_channels and per.get(g, 0) < b.most_per_group():
                    m[i] = True
                    per[g] = per.get(g, 0) + 1
                    left.remove(i)
            groups.append(m)
    return groups


def most_in_a_group(profile, mask) -> int:
    """The most channels set in ``mask`` within one of the profile's groups (AFEs)."""
    b = profile.balancing
    idx = np.flatnonzero(np.asarray(mask, bool))
    return max([int(np.sum([b.group_of(int(i)) == g for i in idx])) for g in {b.group_of(int(i)) for i in idx}] or [0])


def both_parities(mask) -> int:
    """1 when ``mask`` has odd and even channels set at once, else 0."""
    idx = np.flatnonzero(np.asarray(mask, bool))
    return int(bool(idx.size) and len({int(i) % 2 for i in idx}) == 2)
