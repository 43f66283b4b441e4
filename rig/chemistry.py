"""Cell chemistries: the physical envelope every profile, rig file and limit is checked against.

One table, one place. A profile's thresholds must lie inside its chemistry's absolute
range; a rig's emulator voltage limit is never wider than the cell it stands in for.

Sources (../shared/data/REFERENCE.md):
- LFP: charge voltage 3.60–3.65 V, cut-off 2.5 V (Lishen 202 Ah LFP datasheet); protection
  trip 3.80 V in Libre Solar's LFP firmware. The absolute range 2.0–4.0 V is a guess: the
  envelope LFP cell datasheets give for abuse limits (no protection level sits outside it).
- NMC: 18650 class; charge 4.20 V, cut-off 2.5–3.0 V. Absolute range 2.0–4.35 V is a guess
  (the highest charge voltage of high-voltage NMC variants).
Nominal voltages: LFP 3.30 V at rest mid-SOC (the flat plateau of the OCV table), NMC 3.70 V.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chemistry:
    """The envelope of one cell chemistry. Voltages in V, temperatures in °C."""

    name: str
    nominal_v: float
    abs_min_v: float
    abs_max_v: float
    #: operating temperature envelope of the cell (cell datasheets: charge 0–45 °C,
    #: discharge −20–60 °C; storage/abuse wider). A profile's ranges must lie inside.
    abs_min_c: float = -40.0
    abs_max_c: float = 85.0


CHEMISTRIES: dict[str, Chemistry] = {
    "lfp": Chemistry("lfp", nominal_v=3.30, abs_min_v=2.0, abs_max_v=4.0),
    "nmc": Chemistry("nmc", nominal_v=3.70, abs_min_v=2.0, abs_max_v=4.35),
}


def chemistry(name: str) -> Chemistry:
    """The :class:`Chemistry` named ``name`` (``lfp``, ``nmc``); KeyError if unknown."""
    return CHEMISTRIES[name.lower()]
