"""Kestrel KS-8: an 8S board that starts balancing at an absolute cell voltage.

Vendor choices (``testplans/profiles/kestrel-ks8.yaml``):

- a cell above 3.45 V bleeds whatever the others read (``start_mode: absolute``), until it
  is 15 mV below that;
- derating in steps (100 % / 50 % / off at 55 / 65 / 75 °C);
- HVC released by a 10 s lockout from the trip (no hysteresis); LVC latched until the load
  is removed;
- reports the reference layout (a cell NTC per cell, the bleed-resistor NTC last).
"""

from __future__ import annotations

from ._layout import VendorBoard


class KestrelBoard(VendorBoard):
    FW_PREFIX = "K"
