"""The charger/load through the string, and the board's FETs that gate it.

The charger is CC with a CV limit: a simple regulator evaluated at each step start,
consistent over the step::

    I = clip((V_lim − Σ(OCV + v_rc·a) + Σ R·i_board) / Σ(R0 + R1(1−a) + dOCV/dSOC·h/C), 0, I_set)

with ``a = exp(−h/τ)`` (it reduces to ``(V_lim − ΣOCV − Σv_rc)/ΣR0`` for a short step and
stays stable for a long one). A negative set current is a load; its voltage limit is a
floor. In source mode the emulator's set points stand in for the string: the charger
delivers its set current until their sum reaches the limit. The board's charge FET blocks
a positive current, its discharge FET a negative one. Units: V, A, s.
"""

from __future__ import annotations

import math

import numpy as np

CHARGER_REG_S = 1.0
"""How often the regulator re-evaluates its current on the fine path, s."""


class PowerPath:
    """Charger/load set point (A, + charge), CV limit (V), FETs and the string current (A)."""

    def __init__(self, emulator):
        self.emulator = emulator
        self.i_set = 0.0
        """Requested current, A (+ charge, − discharge)."""
        self.v_limit: float | None = None
        """CV limit (a floor for a load), V; None: none."""
        self.i_pack = 0.0
        """Current actually flowing through the string, A."""
        self.charge_fet = True
        """True = closed (conducting)."""
        self.discharge_fet = True
        self.next_regulation_t = 0.0
        """Rig time of the regulator's next evaluation on the fine path, s."""

    def set_request(self, current_a: float, voltage_limit_v: float | None) -> None:
        self.i_set = float(current_a)
        self.v_limit = None if voltage_limit_v is None else float(voltage_limit_v)

    def set_fets(self, charge: bool, discharge: bool) -> bool:
        """Set both FETs (True = closed); True when either changed."""
        changed = (charge != self.charge_fet) or (discharge != self.discharge_fet)
        self.charge_fet, self.discharge_fet = charge, discharge
        return changed

    def gate(self, i: float) -> float:
        """``i`` (A) as the FETs let it through: 0 when the FET for its direction is open."""
        if i > 0.0 and not self.charge_fet:
            return 0.0
        if i < 0.0 and not self.discharge_fet:
            return 0.0
        return i

    def current(self, h: float, i_board: np.ndarray | None = None, pack=None) -> float:
        """The charger/load's current for the next ``h`` s (CC/CV regulator, gated), A.
        ``i_board``: what the board draws from each channel, A; ``pack`` stands in for the
        emulator's present cell model (a prepared one)."""
        i_set = self.i_set
        if i_set == 0.0:
            return 0.0
        if (i_set > 0.0 and not self.charge_fet) or (i_set < 0.0 and not self.discharge_fet):
            return 0.0  # gate(i_set) is 0
        vlim = self.v_limit
        if vlim is None:
            return i_set
        em = self.emulator
        if pack is None and (em.mode == "source" or em.pack is None):
            vp = float(em.v_set.sum()) if em.enabled else 0.0
            if (i_set > 0 and vp >= vlim) or (i_set < 0 and vp <= vlim):
                return 0.0
            return i_set
        pk = em.pack if pack is None else pack
        a = math.exp(-h / pk.params.tau1_s) if h > 0 else 1.0
        long = h > 2.0  # long step: the OCV rises inside it (the LFP knee); keeps CV stable
        ocv, r0, r1, slope = pk.regulator_terms(long)
        if a == 1.0:  # the instantaneous current: r1·0 and v_rc·1 change nothing (exactly)
            rterm = r0
            v_open = ocv + pk.v_rc
        else:
            rterm = r0 + r1 * (1.0 - a)
            if long:
                rterm = rterm + slope * (h / 3600.0) / pk.capacity_ah
            v_open = ocv + pk.v_rc * a
        if i_board is not None:
            v_open = v_open - rterm * i_board
        # sums as add.reduce (what ndarray.sum does, one call fewer)
        i = (vlim - float(np.add.reduce(v_open))) / float(np.add.reduce(rterm))
        if i_set > 0:
            return min(max(i, 0.0), i_set)
        return max(min(i, 0.0), i_set)

    def in_cv(self) -> bool:
        """The regulator holds the voltage limit now (flowing, but less than requested)."""
        return self.v_limit is not None and 0.0 < abs(self.i_pack) < abs(self.i_set)
