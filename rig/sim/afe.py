"""The board's analog front end (AFE): what stands between a cell terminal and a number.

Per channel, in signal order::

    terminal voltage  - I_bleed * R_path (only while that channel's bleed switch conducts)
    + emulator noise (``world.set_emulator_noise``; white, seen at the conversion)
    -> input RC filter (tau ~1 ms: a bleed switch change settles in a few tau)
    -> gain (1 + g), offset, drift with board temperature (µV/°C away from 25 °C)
    -> conversion noise (~0.3 mV RMS) -> 16-bit quantisation (~185 µV/count, TI BQ76952)
    -> channel wiring (``cell_swap`` crosses two sense wires)

A good reference AFE's total error stays well inside ±5 mV: offsets, gains and tempcos
are drawn once per board from clipped normal distributions sized so the worst case is
about ±1.5 mV over −20..60 °C (≈ ADES1830's ±1.8 mV class, see REFERENCE.md "Sampling
accuracy"). The IR drop is why real AFEs mute balancing around conversions: R_path
≈ 0.2 Ω makes a 50 mA bleed read ~10 mV low.

Hardware defects applied here: ``adc_offset``, ``adc_gain``, ``adc_tempco``, ``adc_noise``,
``cell_swap``.
"""

from __future__ import annotations

import math

import numpy as np

from .defects import Defects

LSB_V = 185e-6
"""Quantisation step, V per count (TI BQ76952: 16-bit, ~185 µV per count)."""
FULL_SCALE_COUNTS = 65535
NOISE_RMS_V = 0.3e-3
"""Default conversion noise, V RMS."""
FILTER_TAU_S = 1e-3
"""Input RC filter time constant, s."""
NOISE_BLOCK = 64
"""Conversions' noise drawn at once (rows of ``n``): the generator gives the same numbers in
the same order as one draw per conversion, for one call per block."""
R_PATH_OHM = 0.2
"""Sense-path resistance a bleed current drops across (connector, wire, filter R), Ω."""

# per-board spreads (1 sigma) and clips of a good AFE (sum of clips ≈ 1.5 mV at the
# temperature extremes; quantisation adds ±0.09 mV)
OFFSET_SIGMA_V, OFFSET_CLIP_V = 0.25e-3, 0.6e-3
GAIN_SIGMA, GAIN_CLIP = 50e-6, 120e-6
TEMPCO_SIGMA_V_PER_C, TEMPCO_CLIP_V_PER_C = 4e-6, 8e-6


class Afe:
    """The AFE of an ``n``-channel board. ``rng_params`` draws the per-board errors once;
    ``rng_noise`` is the conversion-noise stream (kept separate so defects that change
    parameters do not reshuffle noise)."""

    def __init__(self, n: int, rng_params: np.random.Generator, rng_noise: np.random.Generator,
                 defects: Defects | None = None, *, noise_rms_v: float = NOISE_RMS_V,
                 tau_s: float = FILTER_TAU_S, lsb_v: float = LSB_V, r_path_ohm: float = R_PATH_OHM):
        self.n = n
        self.tau_s = tau_s
        self.lsb_v = lsb_v
        """Quantisation step, V per count (fixed at construction)."""
        self.r_path_ohm = r_path_ohm
        self._rng = rng_noise
        self.offset_v = np.clip(rng_params.normal(0.0, OFFSET_SIGMA_V, n), -OFFSET_CLIP_V, OFFSET_CLIP_V)
        self.gain = np.clip(rng_params.normal(0.0, GAIN_SIGMA, n), -GAIN_CLIP, GAIN_CLIP)
        self.tempco_v_per_c = np.clip(rng_params.normal(0.0, TEMPCO_SIGMA_V_PER_C, n),
                                      -TEMPCO_CLIP_V_PER_C, TEMPCO_CLIP_V_PER_C)
        self.noise_rms_v = noise_rms_v
        self.order = np.arange(n)
        """Reported channel i carries the signal of cell ``order[i]`` (wiring)."""
        for d in (defects or ()):
            if d.name == "adc_offset":
                self.offset_v[d.index()] += d["mv"] * 1e-3
            elif d.name == "adc_gain":
                self.gain[d.index()] += d["ppm"] * 1e-6
            elif d.name == "adc_tempco":
                self.tempco_v_per_c[d.index()] += d["uv_per_c"] * 1e-6
            elif d.name == "adc_noise":
                self.noise_rms_v = d["mv_rms"] * 1e-3
            elif d.name == "cell_swap":
                a, b = d.index("a"), d.index("b")
                self.order[a], self.order[b] = self.order[b], self.order[a]
        self._swapped = not np.array_equal(self.order, np.arange(n))
        self._gain1 = 1.0 + self.gain
        # the conversion's scalars as arrays (an array operand is a cheaper ufunc call than
        # a Python float; the same numbers)
        self._c_per_lsb = np.full(n, 1.0 / lsb_v)
        self._c_lsb = np.full(n, lsb_v)
        self._c_zero = np.zeros(n)
        self._c_full = np.full(n, float(FULL_SCALE_COUNTS))
        self._noise = np.empty((0, n))  # the block of standard normals being used (rows)
        self._noise_i = 0  # its next row
        # filter state: y (capacitor voltage) relaxing to u (the filter input) since t_last
        self._u = np.zeros(n)
        self._y = np.zeros(n)
        self._t = 0.0

    # ------------------------------------------------------------------ filter
    def _settle(self, t: float) -> None:
        dt = t - self._t
        if dt <= 0.0:
            return
        if dt >= 30.0 * self.tau_s:
            self._y[:] = self._u
        else:
            a = math.exp(-dt / self.tau_s)
            y = self._y
            y -= self._u
            y *= a
            y += self._u
        self._t = t

    def set_input(self, t: float, u: np.ndarray) -> None:
        """The filter input changes to ``u`` (V) at time ``t`` (held until the next change)."""
        self._settle(t)
        self._u[:] = u

    def set_terminals(self, t: float, v: np.ndarray, bleed_a: np.ndarray | None) -> None:
        """:meth:`set_input` of the terminals ``v`` (V) less the IR drop of the bleed
        currents ``bleed_a`` (A; None: no switch on), computed in the filter's input."""
        if t > self._t:
            self._settle(t)
        u = self._u
        if bleed_a is None:
            u[:] = v
        else:
            np.multiply(bleed_a, self.r_path_ohm, out=u)
            np.subtract(v, u, out=u)

    def reset(self, t: float, u: np.ndarray) -> None:
        """Filter fully settled at ``u`` (after a long quiet stretch)."""
        self._u[:] = u
        self._y[:] = u
        self._t = t

    @staticmethod
    def ir_drop(bleed_a: np.ndarray, r_path_ohm: float = R_PATH_OHM) -> np.ndarray:
        return bleed_a * r_path_ohm

    # ------------------------------------------------------------------ conversion
    def convert(self, t: float, board_temp_c: float, extra: np.ndarray | None = None) -> np.ndarray:
        """Convert every channel at time ``t``; ``extra`` is noise injected at the input, V."""
        if t > self._t:
            self._settle(t)
        v = self._y * self._gain1
        if extra is not None:
            v += extra * self._gain1
        v += self.offset_v
        if board_temp_c != 25.0:
            v += self.tempco_v_per_c * (board_temp_c - 25.0)
        if self.noise_rms_v > 0.0:
            i = self._noise_i
            if i >= len(self._noise):
                self._noise = self._rng.standard_normal((NOISE_BLOCK, self.n))
                i = 0
            self._noise_i = i + 1
            v += self._noise[i] * self.noise_rms_v
        v *= self._c_per_lsb
        counts = np.rint(v, out=v)
        np.maximum(counts, self._c_zero, out=counts)  # np.clip(counts, 0, FULL_SCALE_COUNTS) as two
        np.minimum(counts, self._c_full, out=counts)  # ufuncs (cheaper calls; NaN stays NaN)
        v = counts * self._c_lsb
        if self._swapped:
            v = v[self.order]
        return v

    def static_error_v(self, v: np.ndarray, board_temp_c: float = 25.0) -> np.ndarray:
        """Deterministic error (gain, offset, tempco) at input ``v`` and board temperature, V."""
        return v * self.gain + self.offset_v + self.tempco_v_per_c * (board_temp_c - 25.0)
