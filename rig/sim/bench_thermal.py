"""The bench's thermal nodes and how they step: chamber air, board, bleed hot spot, cells.

Chamber air (:class:`~rig.sim.thermal.ChamberModel`) -> board (lag ``BOARD_TAU_S``);
bleed-resistor hot spot = board + Σ bleed power × ``resistor_thermal_c_per_w`` through a
lag of ``resistor_thermal_tau_s`` (profile keys); cells = air + position gradient in
source mode, their own :class:`~rig.sim.thermal.CellThermal` with self-heating in
cell-model mode. The fine path accumulates bleed energy and the nodes update in lumps of
at most ``THERMAL_LUMP_S`` with the lump's mean power (all time constants are ≥ 60 s);
anything that reads a temperature flushes the lump first. The cell model's electrical
temperature follows the cell nodes in steps of ``PACK_TEMP_RESOLUTION_C``. Units: °C, W, J, s.
"""

from __future__ import annotations

import math

import numpy as np

from .thermal import ChamberModel, cell_position_gradient

BOARD_TAU_S = 300.0
"""Board (AFE, NTC) temperature lag behind the chamber air, s."""
THERMAL_LUMP_S = 0.5
"""Longest thermal lump on the fine path, s."""
PACK_TEMP_RESOLUTION_C = 0.01
"""The cell model's temperature follows the cells' thermal nodes in moves of at least this,
°C: its Arrhenius factors are then not recomputed at every thermal step. 0.01 °C moves a
resistance by < 0.03 % (Ea 20 kJ/mol), the leakage by < 0.08 % and the OCV by < 3 µV
(|dU/dT| ≤ 0.3 mV/K)."""


class BenchThermal:
    """The thermal nodes: ``chamber``, ``t_board`` and ``t_hot_spot`` (°C), the cells (via
    the emulator's cell thermal model, or the air + gradient), and the open lump."""

    def __init__(self, n: int, ambient_c: float, rng: np.random.Generator, balancing, emulator, power, bleed):
        self.chamber = ChamberModel(ambient_c, rng)
        self.t_board = float(ambient_c)
        """Board temperature, °C."""
        self.t_hot_spot = float(ambient_c)
        """Bleed-resistor hot spot, °C."""
        self.gradient = cell_position_gradient(n)
        """Cell temperature above the air by position (source mode), °C."""
        self.lump_s = 0.0
        """Time accumulated in the open lump, s."""
        self.lump_j = 0.0
        """Bleed energy accumulated in the open lump, J."""
        self.hs_k = balancing.resistor_thermal_c_per_w
        self.hs_tau = balancing.resistor_thermal_tau_s
        self.emulator = emulator
        self.power = power
        self.bleed = bleed

    def flush(self) -> None:
        """Apply the accumulated lump (mean bleed power over it) up to now."""
        h = self.lump_s
        if h <= 0.0:
            return
        p = self.lump_j / h
        self.lump_s = 0.0
        self.lump_j = 0.0
        self.step(h, p)

    def step(self, h: float, p_bleed_w: float) -> None:
        """Advance every node ``h`` s with a bleed power ``p_bleed_w`` W held."""
        air = self.chamber.step_mean(h)
        if air != self.t_board:  # (else the lag adds 0)
            self.t_board += (air - self.t_board) * -math.expm1(-h / BOARD_TAU_S)
        target = self.t_board + p_bleed_w * self.hs_k
        self.t_hot_spot += (target - self.t_hot_spot) * -math.expm1(-h / self.hs_tau)
        em = self.emulator
        if em.cell_thermal is not None:
            heat = em.pack.heat_w(self.bleed.cell_currents(self.power.i_pack))
            ct = em.cell_thermal
            ct.step(h, air, heat)
            t_cells = ct.temperature_c
            t_pack = em.pack.temperature_c
            d = t_cells - t_pack
            np.abs(d, out=d)
            if d.item(d.argmax()) > PACK_TEMP_RESOLUTION_C:  # max |ΔT| (argmax: a cheaper call)
                t_pack[...] = t_cells

    def cell_temperatures(self) -> np.ndarray:
        """Cell temperatures now, °C."""
        self.flush()
        ct = self.emulator.cell_thermal
        if ct is not None:
            return ct.temperature_c.copy()
        return self.chamber.air_c + self.gradient

    def ntc_readings(self) -> dict:
        """The board's NTCs, °C (0.1 °C resolution): ``cells`` (array), ``board``, ``bleed_resistor``."""
        self.flush()
        ct = self.emulator.cell_thermal
        # np.round(cells, 1), step by step (the first step makes the new array)
        cells = np.multiply(ct.temperature_c if ct is not None else self.chamber.air_c + self.gradient, 10.0)
        np.rint(cells, out=cells)
        cells /= 10.0
        return {
            "cells": cells,
            "board": round(self.t_board, 1),
            "bleed_resistor": round(self.t_hot_spot, 1),
        }
