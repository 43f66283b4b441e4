"""The bench's cell emulator: one output channel per cell of the board.

Two modes:

- **source** (the default): every channel holds its set point, V (outputs on at the
  chemistry's nominal voltage when the bench starts);
- **cell model**: every channel is a cell of a :class:`~rig.sim.cells.PackModel` with its
  own :class:`~rig.sim.thermal.CellThermal`; the terminal voltage follows the cell's
  current (pack current − bleed − quiescent, solved by :class:`~rig.sim.circuit.Circuit`).

White noise (``noise_rms``, V RMS) is added at every AFE conversion, from the emulator's
own random stream. In cell-model mode an over-voltage protection window (low, high), V,
trips the outputs off like a real emulator's OVP (latched: source mode, disabled); the trip
is reported once by the stepper as :class:`EmulatorTrip`. Units: V, A, °C, s.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import numpy as np

from .cells import PackModel
from .thermal import CellThermal


class EmulatorTrip(RuntimeError):
    """The bench emulator's protection tripped (raised by :meth:`rig.sim.world.World.advance`)."""


class CellModelSetup(NamedTuple):
    """A prepared cell model (:meth:`rig.sim.world.World.prepare_cell_model`); ``v``: terminal voltages, V."""

    pack: object
    thermal: object
    rng: object
    v: np.ndarray


def build_cell_model(chemistry: str, n: int, capacity_ah, soc, rng: np.random.Generator, temperature_c: float,
                     uniform_temperature: bool, params=None):
    """A new pack and its cell thermal model at ``temperature_c``, °C: ``(pack, thermal, rng)``.

    The cell spread is drawn from a copy of ``rng`` (returned), so a model that is never
    installed leaves the caller's stream untouched. ``uniform_temperature``: every cell starts
    at ``temperature_c`` (no position gradient) until the chamber moves it.
    """
    rng = copy.deepcopy(rng)
    pack = PackModel(chemistry, n, capacity_ah, soc, rng, params=params, temperature_c=temperature_c)
    thermal = CellThermal.for_params(pack.params, n, ambient_c=temperature_c)
    if uniform_temperature:
        thermal.temperature_c[:] = temperature_c
    pack.temperature_c = thermal.temperature_c
    return pack, thermal, rng


class ChannelEmulator:
    """The emulator's state: mode, outputs on/off, set points (V), the cell model and its
    thermal model (cell-model mode), the injected noise (V RMS) and the OVP window (V)."""

    def __init__(self, n: int, nominal_v: float, rng: np.random.Generator):
        self.n = n
        self.mode = "source"
        """``source`` or ``model``."""
        self.enabled = True
        """Outputs on."""
        self.v_set = np.full(n, nominal_v)
        """Source-mode set points, V."""
        self.pack: PackModel | None = None
        """The cell model (cell-model mode), else None."""
        self.cell_thermal: CellThermal | None = None
        """The cells' thermal model (cell-model mode), else None."""
        self.noise_rms = 0.0
        """White noise on every channel at each AFE conversion, V RMS."""
        self.ovp: tuple[float, float] | None = None
        """The protection window (low, high) in cell-model mode, V."""
        self.trip_message: str | None = None
        """A protection trip not yet reported (:meth:`take_trip`)."""
        self.rng = rng

    def set_setpoints(self, v) -> None:
        """Source-mode set points, V (an array of n, or one value for all)."""
        self.v_set = np.broadcast_to(np.asarray(v, float), (self.n,)).copy()

    def set_noise(self, v_rms: float) -> None:
        self.noise_rms = max(0.0, float(v_rms))

    def noise(self) -> np.ndarray | None:
        """One draw of the injected noise per channel, V (None when there is none)."""
        if self.noise_rms > 0.0:
            return self.rng.standard_normal(self.n) * self.noise_rms
        return None

    def install(self, setup: CellModelSetup, ovp: tuple[float, float] | None) -> None:
        """Switch to a prepared cell model, with the protection window ``ovp`` (V) or none."""
        self.pack = setup.pack
        self.cell_thermal = setup.thermal
        self.ovp = None if ovp is None else (float(ovp[0]), float(ovp[1]))
        self.mode = "model"

    def leave_model(self, v_now: np.ndarray) -> None:
        """Back to source mode; the set points take the terminal voltages ``v_now`` (V) when on."""
        if self.mode == "model":
            self.v_set = v_now.copy() if self.enabled else self.v_set
        self._to_source()

    def _to_source(self) -> None:
        self.mode = "source"
        self.pack = None
        self.cell_thermal = None
        self.ovp = None

    def check_protection(self, v: np.ndarray, t: float) -> bool:
        """The OVP in cell-model mode: terminals ``v`` (V) at ``t`` (s) outside the window
        switch the outputs off (source mode, disabled). True when it tripped now."""
        if self.ovp is None or self.mode != "model":
            return False
        lo, hi = self.ovp
        bad = ~(np.isfinite(v) & (v >= lo) & (v <= hi))
        if not bad.any():
            return False
        i = int(np.argmax(bad))
        self.trip_message = (f"emulator protection tripped at t = {t:.1f} s: channel {i + 1} terminal voltage "
                             f"{v[i]:.3f} V outside the hard limit [{lo:g}, {hi:g}] V in cell-model mode; outputs off")
        self._to_source()
        self.enabled = False
        return True

    def take_trip(self) -> str | None:
        """The trip message not yet reported (then forgotten), or None."""
        msg, self.trip_message = self.trip_message, None
        return msg
