"""The bench's reference DAQ: cell voltages at the terminals, thermocouples, digital lines.

Readings carry their own noise from the DAQ's random stream (the physics is untouched):
~50 µV RMS on a voltage, 0.05 °C on a thermocouple. Units: V, °C.
"""

from __future__ import annotations

import numpy as np

DAQ_NOISE_RMS_V = 50e-6
"""Noise of one DAQ cell-voltage reading, V RMS."""
DAQ_UNCERTAINTY_V = 0.5e-3
"""Expanded uncertainty (k=2) of one averaged DAQ cell-voltage reading, V."""
THERMOCOUPLE_NOISE_C = 0.05
"""Noise of one thermocouple reading, °C RMS."""


class ReferenceDaq:
    """Reads the terminals (:class:`~rig.sim.circuit.Circuit`), the thermal nodes and the
    board's digital lines (:class:`~rig.sim.board_io.BoardIO`)."""

    def __init__(self, rng: np.random.Generator, circuit, thermal, board_io):
        self.rng = rng
        self.circuit = circuit
        self.thermal = thermal
        self.board_io = board_io

    def voltages(self) -> np.ndarray:
        """Reference reading of the terminal voltages, V."""
        c = self.circuit
        c.refresh()
        return c.v + self.rng.standard_normal(c.v.shape[0]) * DAQ_NOISE_RMS_V

    def uncertainty_v(self) -> float:
        """Expanded uncertainty (k=2) of one averaged cell-voltage reading, V."""
        return DAQ_UNCERTAINTY_V

    def thermocouples(self) -> dict:
        """``bleed_resistors`` (hot spot), ``cells_mid``, ``ambient``, °C."""
        th = self.thermal
        th.flush()
        cells = th.cell_temperatures()
        noise = self.rng.standard_normal(3) * THERMOCOUPLE_NOISE_C
        return {
            "bleed_resistors": float(th.t_hot_spot + noise[0]),
            "cells_mid": float(cells[cells.shape[0] // 2] + noise[1]),
            "ambient": float(th.chamber.air_c + noise[2]),
        }

    def level(self, line: str) -> bool:
        """A digital line's level now."""
        return self.board_io.level(line)
