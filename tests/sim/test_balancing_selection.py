"""The reference firmware's balancing selection (vectorised) against the rule as a lab
engineer states it, cell by cell: highest voltage first, the interval's parity first, never
two adjacent cells, at most ``max_channels``, and whether that cap left a candidate out."""

import numpy as np
import pytest

from rig.sim.reference.balancing import Balancing


def _selector(n, max_ch, allow_adjacent=False, bleed_all=False, stop_v=0.010):
    sel = object.__new__(Balancing)
    sel.n, sel.max_ch, sel.allow_adjacent, sel.bleed_all, sel.stop_v = n, max_ch, allow_adjacent, bleed_all, stop_v
    # start by delta, no groups, no odd/even interleave: the plain rule below
    sel.absolute_v, sel.balancing, sel.odd_even = None, False, False
    sel.per_group, sel.group_of = max_ch, lambda i: 0
    return sel


def _rule_cell_by_cell(v, parity, n, max_ch, allow_adjacent, stop_v):
    """The written rule, one cell at a time (the reference for the vectorised selection)."""
    cand = [(x - min(v)) > stop_v for x in v]
    order = sorted(range(n), key=lambda i: (-v[i], i))
    sel = [False] * n
    if allow_adjacent:
        for i in order:
            if cand[i] and sum(sel) < max_ch:
                sel[i] = True
        return sel, sum(cand) > max_ch
    count, truncated = 0, False
    for pass_parity in (parity, 1 - parity):
        for i in order:
            if not cand[i] or sel[i] or i % 2 != pass_parity:
                continue
            if (i > 0 and sel[i - 1]) or (i < n - 1 and sel[i + 1]):
                continue
            if count >= max_ch:
                truncated = True
                break
            sel[i] = True
            count += 1
    return sel, truncated


@pytest.mark.parametrize("n", [4, 7, 16, 33])
@pytest.mark.parametrize("max_ch", [1, 3, 8])
@pytest.mark.parametrize("allow_adjacent", [False, True])
def test_vectorised_selection_follows_the_cell_by_cell_rule(n, max_ch, allow_adjacent):
    rng = np.random.default_rng(n * 100 + max_ch)
    board = _selector(n, max_ch, allow_adjacent)
    seen_truncated = set()
    for trial in range(300):
        # voltages on a 1 mV grid (ties in the voltage order happen and must break by
        # index), a random number of cells raised above the lowest
        v = np.full(n, 3.40)
        raised = rng.permutation(n)[: rng.integers(0, n + 1)]
        v[raised] += rng.integers(0, 60, len(raised)) * 1e-3
        parity = trial % 2
        mask, truncated = board.select_truncated(v, parity)
        want, want_truncated = _rule_cell_by_cell(list(v), parity, n, max_ch, allow_adjacent, board.stop_v)
        assert mask.tolist() == want, (v, parity)
        assert truncated == want_truncated, (v, parity)
        # the cell-by-cell path used for groups and odd/even agrees with it on a plain board
        order = np.argsort(-v, kind="stable")
        grouped_mask, grouped_truncated = board._select_grouped(board.candidates(v), order, parity)
        assert grouped_mask.tolist() == want and grouped_truncated == want_truncated, (v, parity)
        # both parities from one candidate order (what the fast-forward declaration asks)
        both = board._select_parities(v, (0, 1))
        assert both[parity][0].tolist() == want and both[parity][1] == want_truncated, (v, parity)
        seen_truncated.add(truncated)
        if not allow_adjacent:
            assert not np.any(mask[1:] & mask[:-1])  # never two adjacent cells
        assert mask.sum() <= max_ch
    # both outcomes exercised wherever the cap can bind at all
    can_bind = (n - 1 if allow_adjacent else (n + 1) // 2) > max_ch  # the lowest cell is never a candidate
    assert seen_truncated == ({False, True} if can_bind else {False})


def test_no_candidate_and_bleed_all():
    board = _selector(4, 2)
    mask, truncated = board.select_truncated(np.full(4, 3.45), 0)
    assert not mask.any() and not truncated
    board = _selector(4, 2, bleed_all=True)
    mask, _ = board.select_truncated(np.array([3.46, 3.47, 3.40, 3.46]), 1)
    assert mask.tolist() == [True, True, False, True]
