"""The pack model: N series cells as vectorised equivalent circuits.

Each cell is OCV(SOC, T) (:mod:`rig.sim.ocv`) in series with R0 and one RC pair (R1, tau1),
optionally a second (R2, tau2)::

    v_terminal = OCV(soc, T) + v_rc1 (+ v_rc2) + R0 * I        I > 0 charges the cell

Resistances follow Arrhenius in temperature and a parabola in SOC (``soc_r_factor`` at 0 %
and 100 %, 1.0 at 50 %; the parabola is not clipped, so it keeps rising in overcharge).
Self-discharge is a leakage current per cell, with a per-cell spread drawn from the
generator and an Arrhenius factor whose activation energy makes it double every
``self_discharge_doubling_c`` near 25 °C.

:meth:`PackModel.step` is exact for a current held constant over ``dt`` (exponential RC
update, linear coulomb count), with resistances and leakage evaluated at the step start,
so one step of any length equals many small ones (up to the resistance's SOC dependence
inside the step). It is vectorised and allocation-free: per-temperature factors are cached
until ``temperature_c`` changes, per-``dt`` exponentials for the last few step lengths, and the
per-state terms (OCV, its slope, the SOC factor of the resistances) are evaluated once per
state (SOC, temperature) however many readers ask: they come back read-only.

Parameters and their figures: :mod:`rig.sim.cell_params` (:class:`CellParams`, re-exported here).
"""

from __future__ import annotations

import math

import numpy as np

from . import ocv as _ocv
from .cell_params import HOURS_PER_MONTH, KELVIN, R_GAS, CellParams

__all__ = ["PackModel", "CellParams", "HOURS_PER_MONTH", "KELVIN", "R_GAS"]


def _per_cell(value, n: int, name: str) -> np.ndarray:
    a = np.asarray(value, dtype=float)
    if a.ndim == 0:
        return np.full(n, float(a))
    if a.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got {a.shape}")
    return a.copy()


class PackModel:
    """N series cells, vectorised. SOC as a fraction, currents in A (+ charges), V, °C.

    ``rng`` draws the per-cell spreads at construction (self-discharge, then resistance,
    always both, in that order, so the draw sequence does not depend on the parameters);
    the model keeps no generator afterwards, so its evolution is deterministic.
    ``params`` is fixed at construction (cached factors derive from it): to change a
    parameter, build a new pack.
    """

    def __init__(
        self,
        chemistry: str,
        n_cells: int,
        capacity_ah: float | np.ndarray,
        soc: float | np.ndarray,
        rng: np.random.Generator,
        params: CellParams | None = None,
        temperature_c: float | np.ndarray = 25.0,
    ) -> None:
        self.chemistry = chemistry.lower()
        self._curve = _ocv.curve(self.chemistry)
        self.n = int(n_cells)
        if self.n < 1:
            raise ValueError(f"n_cells must be >= 1, got {n_cells}")
        self.capacity_ah = _per_cell(capacity_ah, self.n, "capacity_ah")
        if np.any(self.capacity_ah <= 0):
            raise ValueError("capacity_ah must be > 0 for every cell")
        self.soc = _per_cell(soc, self.n, "soc")
        if params is None:
            params = CellParams.for_chemistry(self.chemistry, float(np.mean(self.capacity_ah)))
        self.params = params
        p = params

        u_sd = rng.uniform(-1.0, 1.0, self.n)
        u_r = rng.uniform(-1.0, 1.0, self.n)
        self.self_discharge_a = (p.self_discharge_per_month * self.capacity_ah / HOURS_PER_MONTH
                                 * (1.0 + p.self_discharge_spread * u_sd))
        """Leakage current per cell at ``t_ref_c``, A (positive discharges the cell)."""
        self.r_cell_factor = 1.0 + p.r_spread * u_r
        """Per-cell resistance multiplier (manufacturing spread)."""

        self.v_rc = np.zeros(self.n)
        self.v_rc2 = np.zeros(self.n)
        self._two_rc = p.r2_ohm > 0.0
        self._temp = np.empty(self.n)
        self._temp_seen_b = None  # the temperatures the factors were evaluated at, as bytes
        self.temperature_c = temperature_c
        self._k_soc = 4.0 * (p.soc_r_factor - 1.0)
        # the scalars of the per-state terms as arrays (an array operand is a cheaper ufunc
        # call than a Python float; the same numbers)
        self._c_half, self._c_k, self._c_one, self._c_inv_tau1 = (
            np.full(self.n, x) for x in (0.5, self._k_soc, 1.0, 1.0 / p.tau1_s))
        # temperature refresh constants and buffers
        self._inv_tref = 1.0 / (p.t_ref_c + KELVIN)
        self._ea_r = p.ea_j_per_mol / R_GAS
        self._ea_leak = -p.self_discharge_ea_j_per_mol / R_GAS
        self._x, self._arr = np.empty(self.n), np.empty(self.n)
        self._r0_t, self._r1_t, self._r1k_t, self._r2_t, self._r2k_t, self._leak_t = (
            np.zeros(self.n) for _ in range(6))
        self._inv_as = 1.0 / (3600.0 * self.capacity_ah)  # SOC per A·s
        self._charge_ah = np.zeros(self.n)
        self._soc_base = self.soc.copy()  # soc - charge/C + leak/C = soc_base
        self._buf = np.empty(self.n)
        self._buf2 = np.empty(self.n)
        self._dt = None
        self._dt_factors = {}
        self._terms_cache = None
        self._points = self._curve.points()  # the OCV memo of the present state
        self._points_ahead = self._curve.points()  # ... and of voltage_rate's look-ahead
        self._refresh_temperature()

    # ---- temperature ---------------------------------------------------------------
    @property
    def temperature_c(self) -> np.ndarray:
        """Per-cell temperature, °C. Writable: assign, or write into the array."""
        return self._temp

    @temperature_c.setter
    def temperature_c(self, value) -> None:
        self._temp[...] = value

    def _refresh_temperature(self) -> None:
        # Called whenever temperature_c changed since the last step: keep it lean.
        t = self._temp
        x = self._x  # 1/T - 1/T_ref, 1/K
        np.add(t, KELVIN, out=x)
        np.reciprocal(x, out=x)
        x -= self._inv_tref
        arr = np.multiply(x, self._ea_r, out=self._arr)  # Arrhenius x per-cell spread
        np.exp(arr, out=arr)
        arr *= self.r_cell_factor
        np.multiply(arr, self.params.r0_ohm, out=self._r0_t)
        np.multiply(arr, self.params.r1_ohm, out=self._r1_t)
        np.multiply(self._r1_t, self._k_soc, out=self._r1k_t)
        if self._two_rc:
            np.multiply(arr, self.params.r2_ohm, out=self._r2_t)
            np.multiply(self._r2_t, self._k_soc, out=self._r2k_t)
        np.multiply(x, self._ea_leak, out=self._leak_t)  # leakage rises when warmer
        np.exp(self._leak_t, out=self._leak_t)
        self._leak_t *= self.self_discharge_a
        self._temp_seen_b = t.tobytes()

    def _check_temperature(self) -> None:
        if self._temp.tobytes() != self._temp_seen_b:
            self._refresh_temperature()

    # ---- instantaneous quantities --------------------------------------------------
    def _terms(self) -> list:
        """``[soc bytes, temperature bytes, ocv, slope, soc_factor, r0, r1, (soc − 0.5)², handed
        out]`` of the present
        state, evaluated once per state: kept until the SOC or a temperature changes
        (compared by value, so an in-place write is seen too). The OCV (:class:`~.ocv.
        OcvPoints`), the SOC factor and R0 are evaluated with the state, the slope and R1
        (None until then) when first asked (:meth:`ocv_slope`, :meth:`resistance_r1`). The
        arrays the accessors hand out are read-only."""
        c = self._terms_cache
        soc, t = self.soc, self._temp
        # the state compared as bytes: one C call per array (an element-wise == and all()
        # cost several times more on 16 cells); a bit-identical state is the same state
        sb, tb = soc.tobytes(), t.tobytes()
        if c is not None and sb == c[0] and tb == c[1]:
            return c
        if tb != self._temp_seen_b:
            self._refresh_temperature()
        v = self._points.ocv(soc, t, tb)
        sq = soc - self._c_half
        sq *= sq
        sf = sq * self._c_k
        sf += self._c_one
        r0 = self._r0_t * sf
        c = self._terms_cache = [sb, tb, v, None, sf, r0, None, sq, False]
        return c

    def _hand_out(self, c: list) -> None:
        # the OCV and R0 are made read-only when first handed out (the model only reads them)
        c[2].setflags(write=False)
        c[5].setflags(write=False)
        c[8] = True

    def ocv(self) -> np.ndarray:
        """Open-circuit voltage per cell now, V (read-only)."""
        c = self._terms()
        if not c[8]:
            self._hand_out(c)
        return c[2]

    def ocv_slope(self) -> np.ndarray:
        """dOCV/dSOC per cell now (SOC as a fraction 0..1), V (read-only)."""
        c = self._terms()
        if c[3] is None:
            c[3] = self._points.slope(self.soc, self._temp, c[1])
        return c[3]

    def resistance_r0(self) -> np.ndarray:
        """Series resistance per cell now (temperature and SOC), Ω (read-only)."""
        c = self._terms()
        if not c[8]:
            self._hand_out(c)
        return c[5]

    def resistance_r1(self) -> np.ndarray:
        """First RC pair's resistance per cell now, Ω (read-only)."""
        c = self._terms()
        if c[6] is None:
            r1 = c[6] = self._r1_t * c[4]
            r1.setflags(write=False)
        return c[6]

    def regulator_terms(self, with_slope: bool = False) -> tuple:
        """``(ocv, r0, r1, slope)`` now (:meth:`ocv`, :meth:`resistance_r0`,
        :meth:`resistance_r1`, :meth:`ocv_slope`; slope None unless ``with_slope``), read-only:
        what a charger's regulator reads at once. V, Ω, V per unit SOC."""
        c = self._terms()
        if not c[8]:
            self._hand_out(c)
        r1 = c[6]
        if r1 is None:
            r1 = c[6] = self._r1_t * c[4]
            r1.setflags(write=False)
        s = None
        if with_slope:
            s = c[3]
            if s is None:
                s = c[3] = self._points.slope(self.soc, self._temp, c[1])
        return c[2], c[5], r1, s

    def leakage_a(self) -> np.ndarray:
        """Self-discharge current per cell at the present temperature, A."""
        self._check_temperature()
        return self._leak_t.copy()

    def terminal_voltage(self, current_a: np.ndarray | float = 0.0) -> np.ndarray:
        """Terminal voltage per cell with ``current_a`` flowing now (+ charges), V."""
        c = self._terms()
        v = c[2] + self.v_rc
        v += c[5] * current_a
        if self._two_rc:
            v += self.v_rc2
        return v

    def voltage_rate(self, current_a: np.ndarray | float, lookahead_s: float = 0.0) -> np.ndarray:
        """Upper bound of |dV_terminal/dt| per cell with ``current_a`` held for up to
        ``lookahead_s``, V/s: the OCV term ``|dOCV/dSOC · (I − leak) / (3600 C)|`` with the
        steeper of the slopes now and where the SOC will be after ``lookahead_s`` (a step
        across a knot of the LFP knee meets a segment up to ~6x steeper), plus the RC
        relaxation terms ``|R·I − v_rc| / τ`` (summed as magnitudes, never cancelling)."""
        i = current_a if type(current_a) is np.ndarray else np.asarray(current_a, dtype=float)
        _, _, r1, slope = self.regulator_terms(True)
        c = self._terms_cache
        net = i - self._leak_t
        if lookahead_s > 0.0:
            ahead = self._points_ahead.slope(self.soc + net * (lookahead_s * self._inv_as), self._temp, c[1])
            if not self._points_ahead.same_segments(self._points):  # else the same slopes
                slope = np.maximum(slope, ahead)
        r = slope * net
        np.abs(r, out=r)
        r *= self._inv_as
        rc = r1 * i
        rc -= self.v_rc
        np.abs(rc, out=rc)
        rc *= self._c_inv_tau1
        r += rc
        if self._two_rc:
            r += np.abs(self._r2_t * c[4] * i - self.v_rc2) / self.params.tau2_s
        return r

    def heat_w(self, current_a: np.ndarray | float) -> np.ndarray:
        """Irreversible heat per cell with ``current_a`` flowing, W (I²R0 + I·v_rc)."""
        i = current_a if type(current_a) is np.ndarray else np.asarray(current_a, dtype=float)
        q = i * i * self._terms()[5] + i * self.v_rc
        if self._two_rc:
            q += i * self.v_rc2
        return q

    # ---- integration ---------------------------------------------------------------
    def _set_dt(self, dt: float) -> None:
        # the fine path alternates a few step lengths (mute, conversion, regulator): the
        # factors of the last few are kept
        f = self._dt_factors.get(dt)
        if f is None or f[6]:
            p = self.params
            a1 = math.exp(-dt / p.tau1_s)
            a2 = math.exp(-dt / p.tau2_s) if self._two_rc else 1.0  # (unused with one RC pair)
            # 1 - a: -expm1 would be more precise; this matches the spec form
            f = (a1, 1.0 - a1, a2, 1.0 - a2, self._inv_as * dt, dt / 3600.0)
            if dt in self._dt_factors:
                # a step length seen again (the fine path repeats a few): its factors as
                # arrays, a cheaper ufunc operand than a Python float (the same numbers)
                n = self.n
                f = tuple(x if isinstance(x, np.ndarray) else np.full(n, x) for x in f) + (False,)
            else:  # a step length seen once (the fast-forward's): the floats
                f = f + (True,)
                if len(self._dt_factors) >= 8:
                    self._dt_factors.clear()
            self._dt_factors[dt] = f
        self._dt = dt
        self._a1, self._b1, self._a2, self._b2, self._dsoc, self._dt_h, _ = f

    def step(self, dt: float, current_a: np.ndarray | float) -> None:
        """Advance ``dt`` s with ``current_a`` (A, + charges; scalar or per cell) held
        constant: exact RC update and coulomb count, resistances and leakage at the start."""
        if dt != self._dt:
            if dt <= 0.0:
                if dt == 0.0:
                    return
                raise ValueError(f"dt must be >= 0, got {dt}")
            f = self._dt_factors.get(dt)  # the fine path alternates a few step lengths
            if f is None or f[6]:
                self._set_dt(dt)
            else:
                self._dt = dt
                self._a1, self._b1, self._a2, self._b2, self._dsoc, self._dt_h, _ = f
        if type(current_a) is not np.ndarray:  # (the fine path's cell currents are)
            if isinstance(current_a, int):
                current_a = float(current_a)
            elif not isinstance(current_a, float):
                current_a = np.asarray(current_a, dtype=float)
        if self._temp.tobytes() != self._temp_seen_b:
            self._refresh_temperature()
        buf = self._buf
        soc = self.soc
        # R1(T, soc) = r1_t * (1 + k (soc - 0.5)^2), at the step start; (soc - 0.5)^2 is
        # the terms' when they were evaluated at this SOC (a wake read the terminals)
        c = self._terms_cache
        if c is not None and c[0] == soc.tobytes():
            sq = c[7]
        else:
            sq = np.subtract(soc, 0.5, out=buf)
            np.multiply(sq, sq, out=sq)
        if self._two_rc:
            buf2 = self._buf2
            np.multiply(sq, self._r2k_t, out=buf2)
            buf2 += self._r2_t
            buf2 *= current_a
            buf2 *= self._b2
            self.v_rc2 *= self._a2
            self.v_rc2 += buf2
        np.multiply(sq, self._r1k_t, out=buf)
        buf += self._r1_t
        buf *= current_a
        buf *= self._b1
        # v_rc = v_rc * exp(-dt/tau) + R1 I (1 - exp(-dt/tau))
        self.v_rc *= self._a1
        self.v_rc += buf
        # soc += (I - leak) dt / (3600 C)
        np.subtract(current_a, self._leak_t, out=buf)
        buf *= self._dsoc
        soc += buf
        self._charge_ah += current_a * self._dt_h

    # ---- bookkeeping ---------------------------------------------------------------
    def charge_ah(self) -> np.ndarray:
        """Charge through each cell's terminals since construction (or the last
        :meth:`set_soc`), Ah, + in: what a coulomb counter sees (leakage not included)."""
        return self._charge_ah.copy()

    def leaked_ah(self) -> np.ndarray:
        """Charge lost to self-discharge per cell over the same span, Ah."""
        return self._charge_ah - (self.soc - self._soc_base) * self.capacity_ah

    def set_soc(self, soc: float | np.ndarray, rest: bool = True) -> None:
        """Set SOC (fraction); ``rest`` also zeroes the RC voltages (a rested cell).
        Restarts :meth:`charge_ah` and :meth:`leaked_ah`."""
        self.soc[:] = _per_cell(soc, self.n, "soc")
        if rest:
            self.v_rc[:] = 0.0
            self.v_rc2[:] = 0.0
        self._charge_ah[:] = 0.0
        self._soc_base[:] = self.soc

    def copy(self) -> "PackModel":
        """An independent copy (a snapshot to branch from): state arrays are copied, the
        immutable parameters and OCV curve are shared."""
        new = object.__new__(PackModel)
        for key, value in self.__dict__.items():
            new.__dict__[key] = value.copy() if isinstance(value, (np.ndarray, dict)) else value
        return new

    snapshot = copy

    def __repr__(self) -> str:
        return (f"PackModel({self.chemistry!r}, n={self.n}, soc={np.round(self.soc, 4)}, "
                f"T={np.round(self._temp, 2)})")
