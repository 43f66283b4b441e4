"""bmsrig: a hardware-in-the-loop test rig for battery-management-system boards.

The library: instrument protocols, drivers, DUT links, clock, safety, board profiles,
measurements and the run record. ``rig.sim`` is the virtual bench.
"""

__version__ = "0.1.0"
