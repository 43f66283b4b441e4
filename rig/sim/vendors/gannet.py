"""Gannet GN-24: a 24S board with two 12-cell AFEs that balances in float only.

Vendor choices (``testplans/profiles/gannet-gn24.yaml``):

- balances only in float (charge current between 0.2 and 3 A), not at rest, not under
  full charge;
- two AFEs of 12 cells, at most 3 bleeding per AFE and 6 in all, filling from both parities;
- derating as a linear curve of points (100 % at 50 °C, 70 % at 60, 20 % at 70, off at 78);
- reports every 0.5 s; HVC released by hysteresis and a 5 s lockout;
- 9 temperatures: one NTC per 4 cells, one per AFE's bleed resistors, one ambient.
"""

from __future__ import annotations

import numpy as np

from ._layout import VendorBoard, every


class GannetBoard(VendorBoard):
    FW_PREFIX = "G"

    def temps_c(self, t: dict) -> np.ndarray:
        hot = float(t["bleed_resistor"])
        return np.concatenate((every(t["cells"], 4), [hot, hot], [float(t["board"])]))
