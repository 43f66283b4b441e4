"""Thermal models of the virtual bench: the chamber, first-order lags, cell temperatures.

Every update is exact for its inputs held constant over ``dt`` (exponential solutions),
so any step length is stable and one long step equals many short ones.

- :class:`ChamberModel` — a climate chamber: a ramp-limited set point trajectory, the air
  following it through a first-order lag with feed-forward, a small overshoot (never more
  than ``overshoot_c``) when a ramp ends, and
  measurement noise on the *reading* only (the physics is deterministic).
- :class:`ThermalLag` — ``T += (T_drive - T) * (1 - exp(-dt / tau))``, vectorised: the
  board (tau ~300 s), the bleed-resistor hot spot (tau from the profile), ...
- :class:`CellThermal` — per-cell temperature lagging toward chamber air + a position
  gradient (middle cells warmer) + self-heating ``heat_w * r_th``.

Time constants here are guesses (no published figures in ``shared/data/REFERENCE.md``):
chamber air 120 s, 100 Ah prismatic cell 1800 s (see ``CellParams`` in
:mod:`rig.sim.cells`), 3 °C/min maximum ramp and 0.3 °C overshoot, typical of a benchtop
chamber's datasheet.
"""

from __future__ import annotations

import math

import numpy as np


class ChamberModel:
    """A climate chamber. Temperatures in °C, times in s, ramps in °C/min.

    The controller's set point moves linearly toward the target at the ramp rate
    (``setpoint_c``). The air is a first-order lag (``tau_s``) behind the set point plus a
    feed-forward term ``b`` that itself lags (same ``tau_s``) toward ``alpha * tau * ramp``::

        b'   = (alpha * tau * dsp/dt - b) / tau
        air' = (sp + b - air) / tau

    During a long ramp the air trails the set point by ``(1 - alpha) * tau * ramp``; when
    the ramp ends, ``b`` decays and carries the air past the target: a small overshoot. This
    linear system's worst overshoot over every ramp length is ``alpha * tau * ramp *
    exp(-1/alpha)``, reached after a long ramp; ``alpha`` is chosen so that at the maximum
    ramp it equals ``overshoot_c`` (so no ramp overshoots more than the spec), and the air
    never moves faster than the ramp by more than about 2 %. ``overshoot_c = 0`` gives a
    plain lag. The update is the exact solution for any step.
    """

    def __init__(
        self,
        ambient_c: float = 25.0,
        rng: np.random.Generator | None = None,
        tau_s: float = 120.0,
        max_ramp_c_per_min: float = 3.0,
        overshoot_c: float = 0.3,
        noise_c: float = 0.05,
        min_c: float = -40.0,
        max_c: float = 120.0,
    ) -> None:
        if tau_s <= 0 or max_ramp_c_per_min <= 0:
            raise ValueError("ChamberModel: tau_s and max_ramp_c_per_min must be > 0")
        if overshoot_c < 0 or noise_c < 0:
            raise ValueError("ChamberModel: overshoot_c and noise_c must be >= 0")
        if not min_c <= ambient_c <= max_c:
            raise ValueError(f"ChamberModel: ambient {ambient_c} °C outside {min_c}..{max_c} °C")
        self.tau_s = float(tau_s)
        self.max_ramp_c_per_min = float(max_ramp_c_per_min)
        self.overshoot_c = float(overshoot_c)
        self.noise_c = float(noise_c)
        self.min_c = float(min_c)
        self.max_c = float(max_c)
        self.alpha = _feedforward_alpha(self.overshoot_c / (self.max_ramp_c_per_min / 60.0
                                                            * self.tau_s))
        self._rng = rng if rng is not None else np.random.default_rng(0)
        self._air = float(ambient_c)
        self._sp = float(ambient_c)  # the ramping controller set point
        self._target = float(ambient_c)
        self._rate = self.max_ramp_c_per_min / 60.0  # °C/s, magnitude
        self._b = 0.0  # feed-forward state, °C

    # ---- commands and readings -----------------------------------------------------
    def set_point(self, c: float, ramp_c_per_min: float | None = None) -> None:
        """Command a new target ``c`` °C reached at ``ramp_c_per_min`` (None: the maximum;
        faster than the maximum is limited to it, as a real chamber would). The ramp starts
        from the present set point."""
        c = float(c)
        if not self.min_c <= c <= self.max_c:
            raise ValueError(f"chamber set point {c} °C outside {self.min_c}..{self.max_c} °C")
        if ramp_c_per_min is None:
            ramp = self.max_ramp_c_per_min
        else:
            ramp = float(ramp_c_per_min)
            if ramp <= 0:
                raise ValueError(f"chamber ramp must be > 0 °C/min, got {ramp_c_per_min}")
            ramp = min(ramp, self.max_ramp_c_per_min)
        self._target = c
        self._rate = ramp / 60.0

    @property
    def air_c(self) -> float:
        """True air temperature, °C (no noise)."""
        return self._air

    @property
    def setpoint_c(self) -> float:
        """The controller's present (ramping) set point, °C."""
        return self._sp

    @property
    def target_c(self) -> float:
        """The commanded final set point, °C."""
        return self._target

    @property
    def ramp_c_per_min(self) -> float:
        """The ramp rate in effect, °C/min."""
        return self._rate * 60.0

    @property
    def ramping(self) -> bool:
        """True while the set point is still moving toward the target."""
        return self._sp != self._target

    def read_pv(self) -> float:
        """Process value as the chamber's sensor reports it: air + noise, °C."""
        if self.noise_c == 0.0:
            return self._air
        return self._air + float(self._rng.normal(0.0, self.noise_c))

    def quiet(self, tol: float) -> bool:
        """True when the ramp is done and the air stays within ``tol`` of the target from
        now on with nothing changed: after the ramp ``air - target = (x + b t/tau)
        exp(-t/tau)``, bounded by ``|x| + |b|/e``."""
        if self.ramping:
            return False
        return abs(self._air - self._target) + abs(self._b) / math.e < tol

    # ---- integration ---------------------------------------------------------------
    def step_mean(self, dt: float) -> float:
        """:meth:`step`, returning the mean of the air at the step's two ends, °C."""
        air0 = self._air
        if self._b == 0.0 and air0 == self._sp == self._target and dt >= 0:
            return 0.5 * (air0 + air0)  # settled (see step)
        self.step(dt)
        return 0.5 * (air0 + self._air)

    def step(self, dt: float) -> None:
        """Advance ``dt`` s (exact; a ramp ending inside the step splits it)."""
        if dt < 0:
            raise ValueError(f"dt must be >= 0, got {dt}")
        if self._b == 0.0 and self._air == self._sp == self._target:
            return  # settled on the target: the exact update leaves every state where it is
        while dt > 0.0:
            if not self.ramping:
                self._advance(dt, 0.0)
                return
            gap = self._target - self._sp
            left = abs(gap) / self._rate
            if dt < left:
                self._advance(dt, math.copysign(self._rate, gap))
                return
            self._advance(left, math.copysign(self._rate, gap))
            self._sp = self._target  # exactly, not by accumulated arithmetic
            dt -= left

    def _advance(self, h: float, rate: float) -> None:
        # With e = air - sp and c = b - alpha tau rate (both lags share tau), exactly:
        #   c(h) = c E,  e(h) = (e + c h/tau) E - (1 - alpha) rate tau (1 - E),  E = exp(-h/tau)
        tau = self.tau_s
        a = math.exp(-h / tau)
        ff = self.alpha * tau * rate
        c = self._b - ff
        e = self._air - self._sp
        e = (e + c * h / tau) * a - (1.0 - self.alpha) * rate * tau * (1.0 - a)
        self._b = ff + c * a
        self._sp += rate * h
        self._air = self._sp + e


def _feedforward_alpha(ratio: float) -> float:
    """alpha with alpha * exp(-1/alpha) = ratio (increasing in alpha; 0 for ratio 0)."""
    if ratio <= 0.0:
        return 0.0
    lo, hi = 0.0, 1.0
    while hi * math.exp(-1.0 / hi) < ratio:
        hi *= 2.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if mid * math.exp(-1.0 / mid) < ratio:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


class ThermalLag:
    """First-order lag: ``T += (T_drive - T) * (1 - exp(-dt / tau))``, vectorised.

    ``temperature_c`` keeps the shape it was given (a 0-d array for a scalar node; use
    ``float(lag.temperature_c)``). ``tau_s`` may be a scalar or per element.
    """

    def __init__(self, tau_s: float | np.ndarray, temperature_c: float | np.ndarray = 25.0):
        self.tau_s = np.asarray(tau_s, dtype=float)
        if np.any(self.tau_s <= 0):
            raise ValueError(f"ThermalLag: tau_s must be > 0, got {tau_s}")
        self.temperature_c = np.array(temperature_c, dtype=float)
        self._dt = None
        self._b = None

    def step(self, dt: float, drive_c: float | np.ndarray) -> None:
        """Advance ``dt`` s toward ``drive_c`` held constant (exact)."""
        if dt != self._dt:
            if dt < 0:
                raise ValueError(f"dt must be >= 0, got {dt}")
            self._dt = dt
            self._b = -np.expm1(-dt / self.tau_s)  # 1 - exp(-dt/tau)
        t = self.temperature_c
        t += (drive_c - t) * self._b

    def time_to_within(self, drive_c: float, tol: float) -> float:
        """Seconds until every element is within ``tol`` of a constant ``drive_c``."""
        gap = np.abs(self.temperature_c - drive_c)
        t = self.tau_s * np.log(np.maximum(gap, tol) / tol)
        return float(np.max(t))


def cell_position_gradient(n_cells: int, middle_rise_c: float = 2.0) -> np.ndarray:
    """Temperature offset per cell position, °C: a parabola, 0 at both ends of the string,
    ``middle_rise_c`` at its centre (the middle cells are boxed in by warm neighbours)."""
    if n_cells < 1:
        raise ValueError(f"n_cells must be >= 1, got {n_cells}")
    if n_cells == 1:
        return np.zeros(1)
    x = np.linspace(0.0, 1.0, n_cells)
    return 4.0 * float(middle_rise_c) * x * (1.0 - x)


class CellThermal:
    """Per-cell temperature, °C: a lag of ``tau_s`` toward
    ``air_c + cell_position_gradient + heat_w * r_th_c_per_w``.

    Starts settled at ``ambient_c`` plus the position gradient.
    """

    def __init__(
        self,
        n_cells: int,
        ambient_c: float = 25.0,
        tau_s: float | np.ndarray = 1800.0,
        r_th_c_per_w: float | np.ndarray = 0.9,
        middle_rise_c: float = 2.0,
    ) -> None:
        self.n = int(n_cells)
        self.gradient_c = cell_position_gradient(self.n, middle_rise_c)
        self.r_th_c_per_w = np.asarray(r_th_c_per_w, dtype=float)
        self._lag = ThermalLag(tau_s, ambient_c + self.gradient_c)
        self._drive = np.empty(self.n)
        self.temperature_c: np.ndarray = self._lag.temperature_c
        """Per-cell temperature, °C (the live array: the lag updates it in place)."""

    @classmethod
    def for_params(cls, params, n_cells: int, ambient_c: float = 25.0,
                   middle_rise_c: float = 2.0) -> "CellThermal":
        """From a :class:`rig.sim.cells.CellParams` (its thermal mass and resistance)."""
        return cls(n_cells, ambient_c, params.tau_thermal_s, params.r_th_c_per_w,
                   middle_rise_c)

    @property
    def tau_s(self) -> np.ndarray:
        return self._lag.tau_s

    def target_c(self, air_c: float, heat_w: float | np.ndarray = 0.0) -> np.ndarray:
        """Steady-state temperature per cell for constant ``air_c`` and ``heat_w``, °C."""
        return air_c + self.gradient_c + np.asarray(heat_w, dtype=float) * self.r_th_c_per_w

    def step(self, dt: float, air_c: float, heat_w: float | np.ndarray = 0.0) -> None:
        """Advance ``dt`` s with the air at ``air_c`` and ``heat_w`` per cell (W) held."""
        d = self._drive
        np.multiply(heat_w, self.r_th_c_per_w, out=d)
        d += self.gradient_c
        d += air_c
        lag = self._lag
        if dt != lag._dt:
            lag.step(dt, d)
        else:  # ThermalLag.step with its factor kept, one call fewer
            t = lag.temperature_c
            d -= t
            d *= lag._b
            t += d
