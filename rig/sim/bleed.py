"""The board's bleed hardware as built, and the current each emulator channel sources.

Bleed current per channel = V_terminal / R_eff while the switch conducts (R_eff = the
profile's resistor, or the ``bleed_current`` defect's). Hardware defects act here:
``bleed_stuck`` (a switch that always conducts), ``bleed_dead`` (a channel that never
bleeds). The channel current an emulator measures is the bleed plus the board's quiescent
draw (``QUIESCENT_A`` per channel, while the emulator's outputs are on). Units: V, A, Ω.
"""

from __future__ import annotations

import math

import numpy as np

QUIESCENT_A = 1e-3
"""Board supply current drawn from every channel, A."""


class BleedHardware:
    """Bleed switches and resistors of ``n`` channels (defects applied), and the channel
    currents: ``i_bleed`` (A), ``i_ch`` = bleed + quiescent (A), both updated in place."""

    def __init__(self, n: int, balancing, defects):
        self.n = n
        r = balancing.bleed_resistor_ohm
        d = defects.get("bleed_current")
        if d is not None:
            r = balancing.min_cell_v / max(d["ma"] * 1e-3, 1e-12) if d["ma"] > 0 else math.inf
        self.resistor_ohm = r
        """Bleed resistor as built, Ω (inf: no bleed at all)."""
        self.g = np.full(n, 0.0 if math.isinf(r) else 1.0 / r)
        """Conductance per channel while its switch conducts, S."""
        self.stuck = np.zeros(n, bool)
        for d in defects.all("bleed_stuck"):
            self.stuck[d.index()] = True
        for d in defects.all("bleed_dead"):
            self.g[d.index()] = 0.0
        self._shape = (n,)
        self.cmd = np.zeros(n, bool)
        """The board's switch commands."""
        self.conduct = self.stuck.copy()
        """Which switches conduct (commands after hardware defects)."""
        self.any_conduct = bool(self.conduct.any())
        self._conduct_b = self.conduct.tobytes()
        self._g_on = self.g * self.conduct  # conductance of each conducting switch, S
        self.conduct_f = self.conduct.astype(float)
        """``conduct`` as 1.0 / 0.0 (a float operand is a cheaper ufunc call than a bool one)."""
        self._patterns = {}  # command bytes -> (conduct, any, g_on, conduct bytes): the patterns seen
        self.i_bleed = np.zeros(n)
        self.i_ch = np.zeros(n)
        self.iq = QUIESCENT_A
        self._idle_a = None  # the quiescent current the arrays hold with no switch on (None: not so)
        self._cell_a = None  # (string current, cell currents) while i_ch holds

    def command(self, mask) -> None:
        """The board's switch commands (bool array (n,)); :meth:`apply` makes them conduct."""
        m = np.asarray(mask, bool)
        if m.shape != self._shape:
            raise ValueError(f"set_bleed: mask must have shape ({self.n},), got {m.shape}")
        self.cmd = m.copy()

    def apply(self) -> bool:
        """Make the present commands conduct (stuck switches always do); True when that changed.
        A command pattern seen before costs a look-up (its switches, their conductances)."""
        key = self.cmd.tobytes()
        p = self._patterns.get(key)
        if p is None:
            conduct = self.cmd | self.stuck
            conduct.setflags(write=False)  # shared by every application of the pattern
            b = conduct.tobytes()
            p = (conduct, b != bytes(self.n), self.g * conduct, b, conduct.astype(float))  # any: a nonzero byte
            if len(self._patterns) >= 64:
                self._patterns.clear()
            self._patterns[key] = p
        if p[3] == self._conduct_b:  # both bool (n,): same bytes, same switches
            return False
        self.conduct, self.any_conduct, self._g_on, self._conduct_b, self.conduct_f = p
        return True

    def update(self, v: np.ndarray, powered: bool) -> None:
        """Channel currents at terminal voltages ``v`` (V); ``powered``: the board draws its
        quiescent current (the emulator's outputs are on)."""
        iq = self.iq if powered else 0.0
        if self.any_conduct:
            # v·(g·conduct): the value of (v·g)·conduct (conduct is 0 or 1)
            np.multiply(v, self._g_on, out=self.i_bleed)
            self._idle_a = None
        elif self._idle_a == iq:
            return  # no switch on, the same draw: the arrays already hold it
        else:
            self.i_bleed[:] = 0.0
            self._idle_a = iq
        np.add(self.i_bleed, iq, out=self.i_ch)
        self._cell_a = None

    def cell_currents(self, i_pack: float) -> np.ndarray:
        """Current into each cell with the string current ``i_pack`` (A): ``i_pack − i_ch``,
        kept while neither changed (every reader of one state shares it; read-only)."""
        c = self._cell_a
        if c is None or c[0] != i_pack:
            i = i_pack - self.i_ch
            i.setflags(write=False)
            c = self._cell_a = (i_pack, i)
        return c[1]

    def average(self, duty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For a fast-forward at bleed ``duty`` (0..1 per channel; stuck switches at 1): the
        mean conductance per channel (S) and the share of time each switch conducts."""
        duty = np.clip(duty, 0.0, 1.0)
        duty = np.where(self.stuck, 1.0, duty)
        return self.g * duty, (self.g > 0) * duty
