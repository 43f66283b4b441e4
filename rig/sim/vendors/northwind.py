"""Northwind NW-16C: a 16S board that balances only while the charger drives current.

Vendor choices (all stated in ``testplans/profiles/northwind-nw16c.yaml``):

- balancing only in the charge state (``strategies``: rest 0, float 0, charge 1): at rest
  the pack's cells are left alone however far apart they are;
- odd/even interleaved groups (``interleave: odd_even``), two AFEs of 8 cells with at most
  2 channels each, 4 in all;
- stepwise derating (50 % from 40 °C, off from 50 °C at the bleed-resistor NTC);
- reports 5 temperatures, the bleed-resistor NTC first, then one NTC per 4 cells.
"""

from __future__ import annotations

import numpy as np

from ._layout import VendorBoard, every


class NorthwindBoard(VendorBoard):
    FW_PREFIX = "NW-"

    def temps_c(self, t: dict) -> np.ndarray:
        return np.concatenate(([t["bleed_resistor"]], every(t["cells"], 4)))
