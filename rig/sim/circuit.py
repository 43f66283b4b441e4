"""The bench's electrical solution: terminal voltages, channel currents, string current.

The emulator's channels, the bleed hardware, the charger through the string and the
board's AFE inputs meet here. Source mode: the terminals hold the set points (0 V when
off) and the charger sees their sum. Cell-model mode: cell current = pack current −
bleed − quiescent, and each terminal is the cell's voltage at that current. In cell-model
mode the stepper integrates the cells and marks the terminals stale; they refresh when
someone looks (:meth:`Circuit.refresh`: µV/ms drift between looks). Every new solution
is handed to the AFE's input filter and checked against the emulator's protection.
Units: V, A, s.
"""

from __future__ import annotations

import numpy as np


class Circuit:
    """Solves the bench's network; ``v``: terminal voltages now, V (see the module docstring)."""

    def __init__(self, clock, emulator, bleed, power, afe):
        self.clock = clock
        self.emulator = emulator
        self.bleed = bleed
        self.power = power
        self.afe = afe
        self.v = emulator.v_set.copy()
        """Terminal voltages, V (stale in cell-model mode while ``stale``)."""
        self.stale = False

    def _to_afe(self) -> None:
        """The AFE's inputs follow the present terminals and bleed currents (:meth:`afe_input`)."""
        bleed = self.bleed
        self.afe.set_terminals(self.clock.t, self.v, bleed.i_bleed if bleed.any_conduct else None)

    def afe_input(self) -> np.ndarray:
        """What the AFE's inputs see, V: terminals less the IR drop of a bleeding channel."""
        bleed = self.bleed
        if bleed.any_conduct:
            return self.v - bleed.i_bleed * self.afe.r_path_ohm
        return self.v

    def update_currents(self) -> None:
        """Bleed and channel currents at the present terminal voltages."""
        self.bleed.update(self.v, self.emulator.enabled)

    def cell_currents(self) -> np.ndarray:
        """Current into each cell (cell-model mode), A: string current − channel current."""
        return self.bleed.cell_currents(self.power.i_pack)

    def solve(self) -> None:
        """Terminal voltages, bleed/channel currents, string current from the present state."""
        em = self.emulator
        power = self.power
        self.stale = False
        power.next_regulation_t = self.clock.t
        if em.mode == "model":
            self.update_currents()
            i_board = self.bleed.i_ch
            power.i_pack = power.current(0.0, i_board)
            self.v = em.pack.terminal_voltage(power.i_pack - i_board)
        else:
            self.v = em.v_set.copy() if em.enabled else np.zeros(em.n)
            power.i_pack = power.current(0.0)
        self.update_currents()
        self._to_afe()
        self.check_protection()

    def refresh(self) -> None:
        """Cell-model mode: bring the terminal voltages (and what follows) up to date."""
        if self.stale:
            self.stale = False
            em = self.emulator
            bleed = self.bleed
            self.v = v = em.pack.terminal_voltage(bleed.cell_currents(self.power.i_pack))
            bleed.update(v, em.enabled)  # update_currents and _to_afe, one call fewer each
            self.afe.set_terminals(self.clock.t, v, bleed.i_bleed if bleed.any_conduct else None)
            if em.ovp is not None:  # (the emulator's protection is off without a window)
                self.check_protection()

    def refresh_then(self, changed) -> None:
        """:meth:`refresh`, then ``changed()`` (a change of the bleed switches: True when
        they changed) and, when either moved anything, the currents and the AFE input once
        (the same state as a refresh before the change and an update after it)."""
        em = self.emulator
        bleed = self.bleed
        if self.stale:
            self.stale = False
            self.v = em.pack.terminal_voltage(bleed.cell_currents(self.power.i_pack))
            if em.ovp is not None:
                self.check_protection()  # it reads the terminals only (a trip solves everything)
            changed()
        elif not changed():
            return
        v = self.v
        bleed.update(v, em.enabled)  # update_currents and _to_afe, one call fewer each
        self.afe.set_terminals(self.clock.t, v, bleed.i_bleed if bleed.any_conduct else None)

    def check_protection(self, v: np.ndarray | None = None) -> None:
        """The emulator's protection against terminals ``v`` (V; default: the present ones);
        a trip switches the outputs off, and the network is solved again."""
        if self.emulator.check_protection(self.v if v is None else v, self.clock.t):
            self.solve()

    def check_pending(self) -> None:
        """At the end of an ``advance``: check the protection against the true terminals when
        they are stale (cell-model mode), without refreshing them."""
        em = self.emulator
        if em.mode == "model" and em.ovp is not None and self.stale:
            self.check_protection(em.pack.terminal_voltage(self.cell_currents()))
