"""A cell the board flags invalid is no reading: the plans' board average leaves it out of
the mean (never a 0 V reading pulling the mean down), and a cell never valid in the window
has no mean at all (NaN, which no limit passes)."""

from __future__ import annotations

import numpy as np
import pytest

from rig.clock import StepClock
from rig.profile import load_profile
from rig.protocols import BmsFlags, BmsSample
from testplans.procedures import board_average


class _Link:
    def __init__(self, samples):
        self.samples = samples

    def history(self, since=None, until=None):
        return [s for s in self.samples if (since is None or s.t >= since) and (until is None or s.t <= until)]


def _sample(t, volts, valid):
    n = len(volts)
    return BmsSample(t=t, cell_v=np.array(volts, dtype=float), temps_c=np.array([25.0]), balancing=np.zeros(n, bool),
                     flags=BmsFlags(), charge_fet=True, discharge_fet=True, cells_valid=np.array(valid, bool))


def _average(rows):
    """The board average over a window in which the board sent ``rows`` (volts, valid) one
    report every 0.25 s."""
    clock = StepClock()
    profile = load_profile("reference-4s-lfp-uart")
    samples = [_sample(0.25 * (k + 1), v, ok) for k, (v, ok) in enumerate(rows)]
    return board_average(_Link(samples), clock, profile, window_s=0.25 * len(rows))


def test_a_cell_invalid_in_some_reports_is_averaged_over_its_valid_ones_only():
    rows = [([3.30, 3.31, 3.32, 3.33], [True] * 4),
            ([3.30, 0.00, 3.32, 3.33], [True, False, True, True]),  # cell 2 flagged invalid, sent as 0
            ([3.30, 3.31, 3.32, 3.33], [True] * 4)]
    reading = _average(rows)
    assert reading.mean_v[1] == pytest.approx(3.31)  # not (3.31 + 0 + 3.31) / 3
    assert reading.std_v[1] == pytest.approx(0.0, abs=1e-12)
    assert reading.mean_v[0] == pytest.approx(3.30)


def test_a_cell_never_valid_in_the_window_has_no_mean():
    rows = [([3.30, 0.0, 3.32, 3.33], [True, False, True, True])] * 3
    reading = _average(rows)
    assert np.isnan(reading.mean_v[1]) and not np.isnan(reading.mean_v[[0, 2, 3]]).any()
