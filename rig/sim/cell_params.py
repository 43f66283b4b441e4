"""Cell parameters of the pack model (:mod:`rig.sim.cells`): equivalent circuit, thermal,
self-discharge, and the defaults per chemistry. Units: Ω, s, J/mol, °C, fraction per month.

Figures (``shared/data/REFERENCE.md``, "Cells"):

- PyBaMM ECM_Example (a 100 Ah cell): DC resistance 1 mΩ at 25 °C / 50 % SOC, 40 % R0 and
  60 % R1, tau 30 s, Arrhenius with Ea 20 kJ/mol, 1.2× at 0 % and 100 % SOC. Our LFP
  default is R0 0.4 mΩ, R1 0.4 mΩ, tau 30 s (inside the REFERENCE guess R0 0.3–0.5,
  R1 0.2–0.5 mΩ, tau 10–60 s). Ea 20 kJ/mol doubles R between 25 °C and 0 °C (×2.09),
  matching "R0 about doubles at 0 °C" for the 18650.
- 18650 NMC ~3 Ah: guess R0 20–30 mΩ, R1 10–20 mΩ, C1 1–3 kF: default R0 25 mΩ,
  R1 15 mΩ, tau 30 s (C1 = 2 kF).
- Self-discharge: LFP ≤ 3 %/month at room temperature, doubles per +10 °C, a new cell at
  60 °C loses about 20 %/month. Default 2 %/month nominal with a ±50 % uniform per-cell
  spread (1–3 %/month, so every cell meets the ≤ 3 % spec); the Arrhenius factor fitted to
  "doubles per 10 °C" at 25 °C (Ea ≈ 52.9 kJ/mol) gives ×9.4 at 60 °C, i.e. 19 %/month:
  consistent with the 20 % figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

R_GAS = 8.314462618
"""Molar gas constant, J/(mol K)."""
KELVIN = 273.15
HOURS_PER_MONTH = 30.0 * 24.0
"""A "month" of self-discharge: 30 days."""

# Reference cells the defaults describe: chemistry -> (capacity Ah, CellParams kwargs).
_REFERENCE_CELLS = {
    # 100 Ah prismatic LFP. Resistances: REFERENCE.md (PyBaMM ECM_Example, LFP guess).
    # Thermal: guess, ~2 kg at ~1 J/(g K) = 2 kJ/K; 0.9 K/W to the air gives tau 1800 s.
    "lfp": (
        100.0,
        dict(r0_ohm=0.4e-3, r1_ohm=0.4e-3, tau1_s=30.0, self_discharge_per_month=0.02,
             thermal_mass_j_per_k=2000.0, r_th_c_per_w=0.9),
    ),
    # 18650 NMC, 3 Ah. Resistances: REFERENCE.md guess. Thermal: guess, 45 g at ~1 J/(g K),
    # 10 K/W in a pack (tau 450 s). Self-discharge: guess, same as LFP.
    "nmc": (
        3.0,
        dict(r0_ohm=25e-3, r1_ohm=15e-3, tau1_s=30.0, self_discharge_per_month=0.02,
             thermal_mass_j_per_k=45.0, r_th_c_per_w=10.0),
    ),
}


@dataclass(frozen=True)
class CellParams:
    """Equivalent-circuit and thermal parameters of one cell, at ``t_ref_c`` and 50 % SOC.

    Resistances in Ω, time constants in s, ``self_discharge_per_month`` a fraction of
    capacity per 30 days at ``t_ref_c``. Spreads are relative half-widths of a uniform
    per-cell factor ``1 + spread * U(-1, 1)`` drawn once per pack.
    """

    r0_ohm: float
    r1_ohm: float
    tau1_s: float
    r2_ohm: float = 0.0  # second RC pair; 0 = a 1-RC model
    tau2_s: float = 600.0
    ea_j_per_mol: float = 20e3  # Arrhenius for R0, R1, R2 (PyBaMM ECM_Example)
    t_ref_c: float = 25.0
    soc_r_factor: float = 1.2  # R multiplier at 0 % and 100 % SOC (PyBaMM ECM_Example)
    r_spread: float = 0.0
    self_discharge_per_month: float = 0.02
    self_discharge_doubling_c: float = 10.0
    self_discharge_spread: float = 0.5
    thermal_mass_j_per_k: float = 2000.0
    r_th_c_per_w: float = 0.9  # cell to surrounding air, K/W

    def __post_init__(self) -> None:
        for name in ("r0_ohm", "r1_ohm", "r2_ohm", "ea_j_per_mol", "r_spread",
                     "self_discharge_per_month", "self_discharge_spread"):
            if getattr(self, name) < 0:
                raise ValueError(f"CellParams.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("tau1_s", "tau2_s", "self_discharge_doubling_c", "thermal_mass_j_per_k",
                     "r_th_c_per_w", "soc_r_factor"):
            if getattr(self, name) <= 0:
                raise ValueError(f"CellParams.{name} must be > 0, got {getattr(self, name)}")
        if self.r_spread > 1 or self.self_discharge_spread > 1:
            raise ValueError("CellParams spreads must be <= 1 (relative half-width)")

    @classmethod
    def for_chemistry(cls, chemistry: str, capacity_ah: float | None = None, **overrides):
        """Defaults for ``chemistry`` scaled to ``capacity_ah`` (None: the reference cell).

        Resistances scale as reference_capacity / capacity (parallel electrode area),
        thermal mass as capacity / reference, thermal resistance as
        (reference / capacity)^(2/3) (surface against volume; guess). Time constants stay.
        """
        chem = chemistry.lower()
        if chem not in _REFERENCE_CELLS:
            raise ValueError(f"unknown chemistry {chemistry!r}: expected one of "
                             f"{tuple(_REFERENCE_CELLS)}")
        ref_ah, kw = _REFERENCE_CELLS[chem]
        cap = ref_ah if capacity_ah is None else float(capacity_ah)
        if cap <= 0:
            raise ValueError(f"capacity_ah must be > 0, got {capacity_ah}")
        k = ref_ah / cap
        kw = dict(kw)
        kw["r0_ohm"] *= k
        kw["r1_ohm"] *= k
        kw["thermal_mass_j_per_k"] /= k
        kw["r_th_c_per_w"] *= k ** (2.0 / 3.0)
        kw.update(overrides)
        return cls(**kw)

    def replace(self, **changes) -> "CellParams":
        """A copy with ``changes`` applied."""
        return replace(self, **changes)

    @property
    def tau_thermal_s(self) -> float:
        """Thermal time constant, s (thermal mass × thermal resistance)."""
        return self.thermal_mass_j_per_k * self.r_th_c_per_w

    @property
    def self_discharge_ea_j_per_mol(self) -> float:
        """Activation energy that doubles the leakage every ``self_discharge_doubling_c``
        at ``t_ref_c`` (≈ 52.9 kJ/mol for 10 °C at 25 °C)."""
        t0 = self.t_ref_c + KELVIN
        t1 = t0 + self.self_discharge_doubling_c
        return R_GAS * math.log(2.0) / (1.0 / t0 - 1.0 / t1)

    def arrhenius_r(self, temp_c) -> np.ndarray:
        """Resistance factor at ``temp_c`` relative to ``t_ref_c`` (> 1 when colder)."""
        t = np.asarray(temp_c, dtype=float) + KELVIN
        return np.exp(self.ea_j_per_mol / R_GAS * (1.0 / t - 1.0 / (self.t_ref_c + KELVIN)))

    def self_discharge_factor(self, temp_c) -> np.ndarray:
        """Leakage factor at ``temp_c`` relative to ``t_ref_c`` (2.0 at +doubling_c)."""
        t = np.asarray(temp_c, dtype=float) + KELVIN
        ea = self.self_discharge_ea_j_per_mol
        return np.exp(ea / R_GAS * (1.0 / (self.t_ref_c + KELVIN) - 1.0 / t))

    def soc_factor(self, soc) -> np.ndarray:
        """Resistance factor against SOC: 1 at 50 %, ``soc_r_factor`` at 0 % and 100 %."""
        x = np.asarray(soc, dtype=float) - 0.5
        return 1.0 + 4.0 * (self.soc_r_factor - 1.0) * x * x
