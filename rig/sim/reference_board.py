"""The reference BMS firmware model (compatibility module).

The model lives in :mod:`rig.sim.reference` (firmware, protection, balancing, and its
declaration to the bench's fast-forward, :mod:`rig.sim.fastforward`); profiles name it
``rig.sim.reference_board:ReferenceBoard`` or, registered, ``reference``.
"""

from __future__ import annotations

from .fastforward import MIN_DRIFT_V as FF_MIN_DRIFT_V
from .fastforward import NOISE_GUARD_SPREADS, QUIET_MARGIN_C, STATIC_GUARD_V
from .fastforward import THERMAL_TOL_C as FF_THERMAL_TOL_C
from .reference.firmware import ReferenceBoard
from .reference.protection import OTUT_HYSTERESIS_C, Cutoff
from .reference.quiet import FF_MAX_S

__all__ = ["ReferenceBoard", "Cutoff", "FF_MIN_DRIFT_V", "FF_MAX_S", "FF_THERMAL_TOL_C", "NOISE_GUARD_SPREADS",
           "OTUT_HYSTERESIS_C", "QUIET_MARGIN_C", "STATIC_GUARD_V"]
