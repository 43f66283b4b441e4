"""Open-circuit voltage of a cell against state of charge and temperature.

``ocv(chemistry, soc, temp_c)`` in V, ``soc_from_ocv`` its inverse, ``dOCV_dSOC`` the slope
(V per unit SOC). Chemistries: ``"lfp"`` and ``"nmc"``. SOC is a fraction (0..1).

Each curve is piecewise linear in SOC on one strictly increasing grid of knots, at every
temperature::

    ocv(soc, T) = V(soc) + dU/dT(soc) * (T - 25 °C)

where ``V`` and ``dU/dT`` are both linear between the same knots. So the forward lookup is
two ``np.interp`` calls, and the inverse at a temperature is one ``np.interp`` on the knot
table shifted to that temperature (exact, no iteration). At construction every curve is
checked to be strictly increasing at -40 °C and at 120 °C; since the table is linear in T,
that makes it strictly increasing everywhere in between.

Below 0 % SOC the voltage is clipped at the 0 % value. Above the last knot it extrapolates
linearly with a steep slope, so an overcharged cell keeps rising (an HVC test under charge
must reach its cutoff).

Sources (see ``shared/data/REFERENCE.md`` and the CSV header in ``data/``):

- ``data/ocv_room_temperature.csv``: 5 % tables for LFP and NMC (Libre Solar bms-firmware,
  ``ocv_lfp`` / ``ocv_nmc``).
- LFP knee: the 5 % table hides the last percent (REFERENCE.md "Cells": 3.35 V at 98 % to
  3.6 V at 100 %). The LFP curve is the merge of the 5 % table from 0 % to 95 % with the
  CSV header's cross-check points (LithiumWerks APR18650M1B, C/32 pseudo-OCV) at 98.3 %
  3.351 V, 99.5 % 3.418 V and 100 % 3.598 V; the table's own 100 % point (3.392 V, an
  average over the knee) is dropped. The cross-check points are used at face value: they
  join the table at 95 % (3.314 V) with a gentle rise. Check: at 1C (1/3600 SOC per s) the
  99.5 %–100 % segment (36 V per unit SOC) rises 10 mV/s, the figure REFERENCE.md gives
  ("near the LFP knee at 1C the cell rises about 10 mV/s").
- Overcharge beyond 100 %: guess (no published figure in REFERENCE.md), shaped so LFP
  passes 3.65 V (charge voltage, Lishen datasheet) just above 100 % and reaches about
  4.0 V at 102 %.
- Entropic coefficient dU/dT: LFP is a guess within REFERENCE.md's |dU/dT| 0.1–0.3 mV/K;
  NMC uses PyBaMM ECM_Example's -1.5 mV/K at 3.1 V and -0.4 mV/K at 3.3 V (REFERENCE.md),
  placed on our NMC table by voltage, and a guess of -0.2/-0.1 mV/K above that.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).parent / "data"
OCV_CSV = DATA_DIR / "ocv_room_temperature.csv"

T_REF_C = 25.0
"""Temperature of the OCV tables, °C (the CSV is at room temperature)."""

CHEMISTRIES = ("lfp", "nmc")

# Temperatures the curves are checked to be strictly increasing at (chamber range, °C).
_T_CHECK_C = (-40.0, 120.0)

# LFP knee: CSV header cross-check points (fraction, V). Replace the table above 95 %.
_LFP_KNEE = ((0.983, 3.351), (0.995, 3.418), (1.000, 3.598))
# Overcharge knots (fraction, V) and the slope beyond the last one (V per unit SOC). Guess.
_OVERCHARGE = {
    "lfp": (((1.005, 3.75), (1.01, 3.85), (1.02, 4.00)), 15.0),
    "nmc": (((1.01, 4.26), (1.02, 4.34)), 8.0),
}
# Entropic coefficient knots (fraction or ("V", volts), dU/dT in V/K); flat beyond the ends.
_DUDT = {
    # Guess within |dU/dT| 0.1-0.3 mV/K (REFERENCE.md). Flat over the plateau on purpose:
    # a dU/dT that varied across the plateau (slope ~10-20 mV per unit SOC) would make the
    # curve non-monotone at a far-from-25 °C temperature.
    "lfp": ((0.0, -0.30e-3), (0.10, -0.15e-3), (0.30, -0.10e-3)),
    # PyBaMM ECM_Example via REFERENCE.md: -1.5 mV/K at 3.1 V, -0.4 mV/K at 3.3 V. Rest: guess.
    "nmc": (
        (0.0, -1.5e-3),
        (("V", 3.1), -1.5e-3),
        (("V", 3.3), -0.4e-3),
        (0.10, -0.2e-3),
        (0.50, -0.1e-3),
    ),
}


def _read_csv(path: Path = OCV_CSV) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rows = [r for r in path.read_text().splitlines() if r.strip() and not r.startswith("#")]
    reader = csv.DictReader(rows)
    soc, lfp, nmc = [], [], []
    for row in reader:
        soc.append(float(row["soc_percent"]) / 100.0)
        lfp.append(float(row["lfp_v"]))
        nmc.append(float(row["nmc_v"]))
    s = np.array(soc)
    return {"lfp": (s, np.array(lfp)), "nmc": (s, np.array(nmc))}


@dataclass(frozen=True)
class OcvCurve:
    """One chemistry's OCV(SOC, T): knots ``soc`` (fraction), ``v`` at 25 °C (V), ``dudt``
    (V/K) at the same knots, and ``slope_hi`` (V per unit SOC) beyond the last knot."""

    chemistry: str
    soc: np.ndarray
    v: np.ndarray
    dudt: np.ndarray
    slope_hi: float

    def table_at(self, temp_c: float) -> np.ndarray:
        """Knot voltages at ``temp_c`` (V)."""
        return self.v + self.dudt * (float(temp_c) - T_REF_C)

    def ocv(self, soc, temp_c=T_REF_C) -> np.ndarray:
        """OCV in V; ``soc`` and ``temp_c`` broadcast."""
        s = np.asarray(soc, dtype=float)
        v = np.interp(s, self.soc, self.v)
        if np.ndim(temp_c) or temp_c != T_REF_C:
            v = v + np.interp(s, self.soc, self.dudt) * (np.asarray(temp_c, float) - T_REF_C)
        over = s - self.soc[-1]
        if np.any(over > 0.0):
            v = v + self.slope_hi * np.maximum(over, 0.0)
        return v

    def soc_from_ocv(self, volts, temp_c=T_REF_C) -> np.ndarray:
        """SOC (fraction) whose OCV at ``temp_c`` is ``volts``: exact inverse of :meth:`ocv`.

        Voltages below the 0 % value give 0; above the last knot, the linear extrapolation
        is inverted (so the round trip holds in overcharge too).
        """
        v = np.asarray(volts, dtype=float)
        if np.ndim(temp_c) == 0:
            tab = self.table_at(float(temp_c))
            s = np.interp(v, tab, self.soc)
            over = v - tab[-1]
            if np.any(over > 0.0):
                s = s + np.maximum(over, 0.0) / self.slope_hi
            return s
        v, t = np.broadcast_arrays(v, np.asarray(temp_c, dtype=float))
        tab = self.v + self.dudt * (t[..., None] - T_REF_C)  # (..., K)
        k = len(self.soc)
        i = np.clip(np.sum(tab <= v[..., None], axis=-1) - 1, 0, k - 2)
        lo = np.take_along_axis(tab, i[..., None], -1)[..., 0]
        hi = np.take_along_axis(tab, i[..., None] + 1, -1)[..., 0]
        frac = np.clip((v - lo) / (hi - lo), 0.0, 1.0)
        s = self.soc[i] + frac * (self.soc[i + 1] - self.soc[i])
        over = v - tab[..., -1]
        return s + np.maximum(over, 0.0) / self.slope_hi

    @cached_property
    def _segment_slopes(self) -> tuple[np.ndarray, np.ndarray]:
        """Per segment: dV/dSOC at 25 °C and d(dU/dT)/dSOC."""
        ds = np.diff(self.soc)
        return np.diff(self.v) / ds, np.diff(self.dudt) / ds

    @cached_property
    def _segment_coefficients(self) -> np.ndarray:
        """Rows ``(A, B, C, D, SB, SD)`` per interval between knots, with ``OCV = A + B·s +
        (C + D·s)·(T − 25 °C)`` and ``slope = SB + SD·(T − 25 °C)`` for ``s`` in it. Row 0
        is below the first knot (OCV clipped, slope of the first segment), row ``j`` the
        segment from knot ``j − 1``, the last row beyond the last knot (``slope_hi``)."""
        gv, gd = self._segment_slopes
        lo = self.soc[:-1]
        seg = np.stack([self.v[:-1] - gv * lo, gv, self.dudt[:-1] - gd * lo, gd, gv, gd], axis=1)
        below = [self.v[0], 0.0, self.dudt[0], 0.0, gv[0], gd[0]]
        hi = self.slope_hi
        above = [self.v[-1] - hi * self.soc[-1], hi, self.dudt[-1], 0.0, hi, 0.0]
        coef = np.vstack([below, seg, above])
        coef.setflags(write=False)
        return coef

    def ocv_and_slope(self, soc: np.ndarray, temp_c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`ocv` and :meth:`slope` at once for 1-D ``soc`` and ``temp_c`` (°C) of the
        same shape: one lookup of the interval for both (the cell model evaluates them
        once per step), V and V per unit SOC."""
        i = self.soc.searchsorted(soc, side="right")
        a, b, c, d, sb, sd = self._segment_coefficients.take(i, axis=0).T
        dt = temp_c - T_REF_C
        v = b * soc
        v += a
        d *= soc
        d += c
        d *= dt
        v += d
        sd = sd * dt
        sd += sb
        return v, sd

    def points(self) -> "OcvPoints":
        """A memo of :meth:`ocv_and_slope` for one pack's cells (:class:`OcvPoints`)."""
        return OcvPoints(self)

    def slope(self, soc, temp_c=T_REF_C) -> np.ndarray:
        """dOCV/dSOC in V per unit SOC: the slope of the segment holding ``soc``.

        Always > 0: below 0 % the first segment's slope is returned (not the 0 of the clip),
        beyond the last knot ``slope_hi``; at a knot, the segment to its right.
        """
        s = np.asarray(soc, dtype=float)
        gv, gd = self._segment_slopes
        k = len(self.soc)
        i = np.clip(np.searchsorted(self.soc, s, side="right") - 1, 0, k - 2)
        g = gv[i] + gd[i] * (np.asarray(temp_c, dtype=float) - T_REF_C)
        return np.where(s >= self.soc[-1], self.slope_hi, g)


class OcvPoints:
    """:meth:`OcvCurve.ocv_and_slope` for one pack's cells, memoised: the rows of each cell's
    segment and the temperature terms are kept while no cell changes segment and the
    temperatures stay the same (bytes compared), so a new SOC costs the segment lookup and
    ``b·s + a`` plus, where ``dU/dT`` is flat on every cell's segment (``D = 0``: the LFP
    curve above 30 %), the kept ``C·(T − 25 °C)`` (the same number as ``(D·s + C)·(T −
    25 °C)`` then), else that product. The slope depends on the segments and the
    temperatures only: evaluated once for them, read-only. The values are those of
    :meth:`OcvCurve.ocv_and_slope` bit for bit. V, V per unit SOC, °C."""

    __slots__ = ("curve", "_ib", "_tb", "_rows", "_cdt", "_slope")

    def __init__(self, curve: OcvCurve):
        self.curve = curve
        self._ib = self._tb = None  # segment indices and temperatures, as bytes
        self._rows = self._cdt = self._slope = None

    def _segments(self, soc: np.ndarray, temp_c: np.ndarray, t_bytes: bytes) -> tuple:
        i = self.curve.soc.searchsorted(soc, side="right")
        ib = i.tobytes()
        if ib != self._ib or t_bytes != self._tb:
            a, b, c, d, sb, sd = self.curve._segment_coefficients.take(i, axis=0).T
            dt = temp_c - T_REF_C
            self._rows = (a, b, c, d, sb, sd, dt)
            # D = 0 on every segment: (D·s + C)·dT is C·dT exactly (±0 + C is C)
            self._cdt = None if d.any() else c * dt
            self._slope = None
            self._ib, self._tb = ib, t_bytes
        return self._rows

    def ocv(self, soc: np.ndarray, temp_c: np.ndarray, t_bytes: bytes) -> np.ndarray:
        """OCV at ``soc`` (1-D) and ``temp_c`` (°C, same shape; ``t_bytes`` its bytes), V."""
        a, b, c, d, _, _, dt = self._segments(soc, temp_c, t_bytes)
        v = b * soc
        v += a
        cdt = self._cdt
        if cdt is None:
            d = d * soc
            d += c
            d *= dt
            v += d
        else:
            v += cdt
        return v

    def same_segments(self, other: "OcvPoints") -> bool:
        """Whether ``other`` last evaluated the same segments at the same temperatures
        (then both give the same slopes)."""
        return self._ib == other._ib and self._tb == other._tb

    def slope(self, soc: np.ndarray, temp_c: np.ndarray, t_bytes: bytes) -> np.ndarray:
        """dOCV/dSOC at ``soc`` and ``temp_c`` (read-only; shared while the segments and
        temperatures stay), V per unit SOC."""
        rows = self._segments(soc, temp_c, t_bytes)
        s = self._slope
        if s is None:
            s = rows[5] * rows[6]
            s += rows[4]
            s.setflags(write=False)
            self._slope = s
        return s


def _knot_soc(x, soc: np.ndarray, v: np.ndarray) -> float:
    if isinstance(x, tuple):  # ("V", volts): the SOC where the 25 °C table reaches volts
        return float(np.interp(x[1], v, soc))
    return float(x)


def _build(chemistry: str) -> OcvCurve:
    soc, v = _read_csv()[chemistry]
    if chemistry == "lfp":
        keep = soc <= 0.95 + 1e-9
        soc = np.concatenate([soc[keep], [p[0] for p in _LFP_KNEE]])
        v = np.concatenate([v[keep], [p[1] for p in _LFP_KNEE]])
    over, slope_hi = _OVERCHARGE[chemistry]
    soc = np.concatenate([soc, [p[0] for p in over]])
    v = np.concatenate([v, [p[1] for p in over]])
    # dU/dT knots join the grid (V is interpolated there, so the 25 °C curve is unchanged).
    dk = [(_knot_soc(x, soc, v), d) for x, d in _DUDT[chemistry]]
    d_soc = np.array([p[0] for p in dk])
    d_val = np.array([p[1] for p in dk])
    grid = np.unique(np.round(np.concatenate([soc, d_soc]), 12))
    v_grid = np.interp(grid, soc, v)
    dudt = np.interp(grid, d_soc, d_val)
    for t in _T_CHECK_C:
        tab = v_grid + dudt * (t - T_REF_C)
        if not np.all(np.diff(tab) > 0.0):
            raise ValueError(f"OCV table for {chemistry!r} is not strictly increasing at {t} °C")
    for a in (grid, v_grid, dudt):
        a.setflags(write=False)
    return OcvCurve(chemistry, grid, v_grid, dudt, float(slope_hi))


@lru_cache(maxsize=None)
def curve(chemistry: str) -> OcvCurve:
    """The (cached) :class:`OcvCurve` for ``chemistry`` ("lfp" or "nmc")."""
    chem = chemistry.lower()
    if chem not in CHEMISTRIES:
        raise ValueError(f"unknown chemistry {chemistry!r}: expected one of {CHEMISTRIES}")
    return _build(chem)


def ocv(chemistry: str, soc: np.ndarray, temp_c: np.ndarray | float = T_REF_C) -> np.ndarray:
    """Open-circuit voltage in V at ``soc`` (fraction) and ``temp_c`` (°C)."""
    return curve(chemistry).ocv(soc, temp_c)


def soc_from_ocv(chemistry: str, volts, temp_c: np.ndarray | float = T_REF_C) -> np.ndarray:
    """SOC (fraction) whose OCV at ``temp_c`` is ``volts`` (V); inverse of :func:`ocv`."""
    return curve(chemistry).soc_from_ocv(volts, temp_c)


def dOCV_dSOC(  # noqa: N802
    chemistry: str, soc, temp_c: np.ndarray | float = T_REF_C
) -> np.ndarray:
    """Slope of the OCV curve in V per unit SOC (always > 0)."""
    return curve(chemistry).slope(soc, temp_c)


def dUdT(chemistry: str, soc) -> np.ndarray:  # noqa: N802
    """Entropic coefficient in V/K at ``soc``."""
    c = curve(chemistry)
    return np.interp(np.asarray(soc, dtype=float), c.soc, c.dudt)
