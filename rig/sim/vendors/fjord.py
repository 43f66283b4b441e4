"""Fjord FJ-12: a 12S board with coarse, slow reporting and no bleed-resistor sensor.

Vendor choices (``testplans/profiles/fjord-fj12.yaml``):

- reports every 1 s, in 10 mV steps, over a 2-sample filter (accuracy ±15 mV);
- 8 cell NTCs (cells 1, 2, 4, 5, 7, 8, 10, 11: the middle of each 3-cell module and its
  neighbour) and a FET NTC; no sensor on the bleed resistors, so its derating cannot be
  observed (the plan says "not verified");
- balances at rest and in float, never under charge current;
- HVC released by hysteresis and a lockout (both), LVC by a lockout alone.
"""

from __future__ import annotations

import numpy as np

from ._layout import VendorBoard

CELL_NTC = (0, 1, 3, 4, 6, 7, 9, 10)
"""0-based cells carrying an NTC."""


class FjordBoard(VendorBoard):
    FW_PREFIX = "fj"

    def temps_c(self, t: dict) -> np.ndarray:
        cells = np.asarray(t["cells"], float)
        return np.append(cells[list(CELL_NTC)], t["board"])
