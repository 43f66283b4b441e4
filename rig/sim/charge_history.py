"""What each emulator channel has sourced: cumulative charge, and its recent history.

The channel current an instrument reads is a mean over an aperture. The stepper adds the
charge of every step (or fast-forward step) and records a row at each step's end; between
rows the charge is linear (every input is held), so the mean over any window inside the
kept history is exact. Also kept: the time each bleed switch conducted and the charge it
bled. Units: A, C (A·s), s.
"""

from __future__ import annotations

import numpy as np

HISTORY_ROWS = 32768
"""Rows of the charge history; when full, what is older than ``HISTORY_KEEP_S`` goes (and
at least the oldest half)."""
HISTORY_KEEP_S = 900.0


class ChargeHistory:
    """Cumulative charge per channel (``q``, C) with its history, and bleed totals."""

    def __init__(self, n: int):
        self.q = np.zeros(n)
        """Charge each channel has sourced since the start, C."""
        self._t = np.empty(HISTORY_ROWS)
        self._q = np.empty((HISTORY_ROWS, n))
        self._t[0] = 0.0
        self._q[0] = 0.0
        self._len = 1
        self.bleed_on_s = np.zeros(n)
        """Cumulative time each bleed switch conducted, s (fast-forward counts duty × time)."""
        self.bleed_charge_c = np.zeros(n)
        """Cumulative charge bled per channel, C (A·s)."""

    def record(self, t: float) -> None:
        """A history row: the cumulative charge at ``t``, s."""
        if self._len >= HISTORY_ROWS:
            # drop what is older than HISTORY_KEEP_S, and at least the oldest half
            keep_from = int(np.searchsorted(self._t[: self._len], t - HISTORY_KEEP_S))
            keep_from = max(keep_from, self._len // 2)
            m = self._len - keep_from
            self._t[:m] = self._t[keep_from: self._len]
            self._q[:m] = self._q[keep_from: self._len]
            self._len = m
        self._t[self._len] = t
        self._q[self._len] = self.q
        self._len += 1

    def mean_current(self, t: float, aperture_s: float, i_now: np.ndarray) -> np.ndarray:
        """Mean channel current over [t − aperture, t], A; ``i_now`` (A) for a zero aperture."""
        if aperture_s <= 0.0:
            return i_now.copy()
        q0 = self.charge_at(t - aperture_s)
        if q0 is None:  # before the kept history: average over what there is
            span = t - self._t[0]
            if span <= 0:
                return i_now.copy()
            return (self.q - self._q[0]) / span
        return (self.q - q0) / aperture_s

    def charge_at(self, t0: float) -> np.ndarray | None:
        """Cumulative charge at ``t0`` (s), C; None before the kept history."""
        h_t = self._t[: self._len]
        if t0 < h_t[0]:
            return None
        j = int(np.searchsorted(h_t, t0, side="right"))
        if j >= self._len:
            return self.q.copy()  # inside the present (unrecorded) segment: none yet
        ta, tb = h_t[j - 1], h_t[j]
        qa, qb = self._q[j - 1], self._q[j]
        if tb <= ta:
            return qb.copy()
        return qa + (qb - qa) * ((t0 - ta) / (tb - ta))
