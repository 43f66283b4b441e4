"""Cell-model mode for a real cell emulator: a control loop on the rig clock.

On the virtual bench the emulator's cell model is the simulator's physics itself. On a real
rig the emulator is a set of voltage sources, so this loop makes it behave like cells: at
each tick (a few Hz) it reads the channel currents the emulator measured, integrates them
into a pack model (OCV(SOC, T) + RC, the same model the bench uses, ``rig.sim.cells``), and
sets every channel to the model's terminal voltage.

Sign: an emulator channel current is positive when the channel sources current into the
board (a bleed discharges that cell); a charge current through the string makes the
channels sink. So the modelled cell current (+ charges the cell) is ``-channel_current``.

Hard limits: the set-up (SOC, capacity, temperature) and the model's initial terminal
voltages are checked against the emulator's limits when the loop is constructed, before
anything is sent (SafetyLimitError). Every tick checks the new set points before sending;
a model that would take a channel beyond the voltage limit stops the loop, puts the rig in
its safe state and raises :class:`~rig.safety.LimitTrip` (a rig fault).
"""

from __future__ import annotations

import numpy as np

from .clock import Clock
from .protocols import CellEmulator
from .safety import HardLimits, Limit, check_cell_model, trip


def scaled_cell_params(chemistry: str, capacity_ah, capacity_scale: float = 1.0):
    """The cell parameters (rig.sim.cells.CellParams) of a physical cell of ``capacity_ah``
    (Ah; the mean of per-cell values) modelled with its charge capacity times
    ``capacity_scale``: resistances and thermal mass stay the physical cell's, and its
    self-discharge *current* stays too (the per-month fraction over the scaled capacity is
    1/scale larger). With every current unchanged, dSOC/dt = I / (C * scale): the same SOC
    and voltage trajectory on a time axis ``scale`` times shorter. ValueError outside
    0 < scale <= 1."""
    from .sim.cells import CellParams

    scale = float(capacity_scale)
    if not 0.0 < scale <= 1.0:
        raise ValueError(f"capacity_scale must be in (0, 1], got {capacity_scale}")
    params = CellParams.for_chemistry(chemistry, float(np.mean(capacity_ah)))
    return params.replace(self_discharge_per_month=params.self_discharge_per_month / scale)


class CellModelLoop:
    """Drive ``emulator`` as a string of modelled cells, ticking on ``clock``.

    Args:
        emulator: any CellEmulator in source mode (voltages set per channel)
        clock: the rig clock; the loop runs as a clock listener
        chemistry: ``"lfp"`` or ``"nmc"``
        capacity_ah, soc: per-cell capacity (Ah) and state of charge (0..1)
        temperature_c: cell temperature for the model, °C
        period_s: control period (a few Hz on hardware), s
        seed: seed of the model's cell-to-cell spread
        limits: the emulator's hard limits (default: ``emulator.limits``); the channel
            voltage limit is ``limits["voltage_range_v"]``
    """

    def __init__(self, emulator: CellEmulator, clock: Clock, chemistry: str, capacity_ah, soc,
                 temperature_c: float | None = None, period_s: float = 0.25, seed: int = 0,
                 limits: HardLimits | None = None, capacity_scale: float = 1.0):
        from .sim.cells import PackModel

        n = emulator.n_channels
        self.emulator = emulator
        self.clock = clock
        self.period_s = float(period_s)
        self.limits = limits if limits is not None else getattr(emulator, "limits", None)
        if self.limits is None:
            raise ValueError("cell-model loop: the emulator declares no hard limits (pass limits=)")
        self.voltage_limit: Limit = self.limits["voltage_range_v"]
        self._what = getattr(emulator, "role", "cell emulator")
        cap, soc = check_cell_model(self._what, self.limits, n, capacity_ah, soc, temperature_c)
        self.pack = PackModel(chemistry, n, cap * capacity_scale, soc, np.random.default_rng(seed),
                              params=scaled_cell_params(chemistry, cap, capacity_scale),
                              temperature_c=25.0 if temperature_c is None else float(temperature_c))
        self.voltage_limit.check_channels(f"{self._what} (cell model, initial terminal voltage)",
                                          self.pack.terminal_voltage(np.zeros(n)), n)
        self._last_t = clock.now()
        self._current = np.zeros(n)
        self.ticks = 0
        self.running = False

    def start(self) -> "CellModelLoop":
        self.emulator.set_voltages(self.pack.terminal_voltage(self._current))
        self._last_t = self.clock.now()
        self.clock.add_listener(self.tick)
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self.clock.remove_listener(self.tick)
            self.running = False

    def tick(self, now: float) -> None:
        """Integrate the currents measured since the last tick; update the set points."""
        dt = now - self._last_t
        if dt < self.period_s:
            return
        measured = np.asarray(self.emulator.read_currents(aperture_s=dt), dtype=float)
        self._current = -measured
        self.pack.step(dt, self._current)
        self._last_t = now
        v = self.pack.terminal_voltage(self._current)
        lim = self.voltage_limit
        bad = ~(np.isfinite(v) & (v >= lim.lo) & (v <= lim.hi))
        if bad.any():
            i = int(np.argmax(bad))
            self.stop()
            raise trip(getattr(self.emulator, "target", None), self._what,
                       f"cell model at t = {now:.1f} s: channel {i + 1} would be set to {v[i]:.3f} V, outside the "
                       f"hard limit {lim}; not sent, cell-model loop stopped", fallback=self.emulator.safe_state)
        self.emulator.set_voltages(v)
        self.ticks += 1

    def soc(self) -> np.ndarray:
        return self.pack.soc.copy()
