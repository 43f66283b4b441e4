"""Emulator channel currents as the plans read them: the board's idle draw, the bleed
currents while the switches conduct, and the bleed with the string's common current taken out.

Everything here reads the cell emulator's channel current readback (``rig.protocols``): the
rig observes the bleed itself, whatever the board reports. Units: A, s.
"""

from __future__ import annotations

import numpy as np


def idle_currents(emulator, clock, window_s: float = 2.0) -> np.ndarray:
    """Channel currents with balancing off (the board's own supply draw), mean over a window, A."""
    clock.sleep(window_s)
    return np.asarray(emulator.read_currents(aperture_s=window_s), dtype=float)


def on_currents(emulator, clock, profile, reads: int = 6, span_s: float | None = None) -> np.ndarray:
    """Instantaneous channel currents while the bleed switches conduct, A.

    The board mutes balancing ``mute_s`` before each conversion, so a short aperture can fall
    into a gap: read ``reads`` times with an aperture shorter than a mute gap, spaced so the
    phases spread over the sampling period, and take the high value per channel. With
    ``span_s`` the reads spread over that much time (a whole PWM cycle when the duty is derated).
    """
    s = profile.sampling
    aperture = max(1e-4, 0.2 * s.mute_s) if s.mute_s > 0 else 1e-3
    spacing = s.period_s * (1.0 + 1.0 / (reads + 1)) + 3 * aperture
    if span_s is not None:  # spread the reads over a PWM cycle (derated duty)
        spacing = max(spacing, span_s / reads + 3 * aperture)
    best = None
    for _ in range(reads):
        clock.sleep(spacing)
        i = np.asarray(emulator.read_currents(aperture_s=aperture), dtype=float)
        best = i if best is None else np.maximum(best, i)
    return best


def bleed_currents(i_on, i_mean, idle, min_bleed_a: float):
    """Bleed currents with what every channel carries alike taken out, A.

    ``i_on``: :func:`on_currents` (instantaneous, bleed switches conducting), ``i_mean``: the
    mean over a window, ``idle``: the board's supply draw per channel before the test (A,
    channel sourcing is positive). While a charger drives the string, every channel of a real
    emulator also sinks the string current (its sign opposes a bleed), so the common level
    is taken from the channels that do not bleed (their median) in each reading; with half
    the channels or more bleeding, from ``idle`` alone. A channel bleeds when it stands more
    than ``min_bleed_a`` / 2 above that level. Returns ``(on, mean, bleeding)``.
    """
    i_on, i_mean, idle = (np.asarray(x, dtype=float) for x in (i_on, i_mean, idle))
    bleeding = (i_on - np.median(i_on)) > 0.5 * min_bleed_a
    if 0 < bleeding.sum() < 0.5 * bleeding.size:
        return i_on - np.median(i_on[~bleeding]), i_mean - np.median(i_mean[~bleeding]), bleeding
    return i_on - idle, i_mean - idle, (i_on - idle) > 0.5 * min_bleed_a


def mean_currents(emulator, clock, window_s: float) -> np.ndarray:
    """Mean channel currents over the next ``window_s`` of rig time, A."""
    clock.sleep(window_s)
    return np.asarray(emulator.read_currents(aperture_s=window_s), dtype=float)


def current_u_a(i_a) -> np.ndarray:
    """Expanded uncertainty assumed for an emulator channel current reading, A
    (0.5 % of reading + 0.1 mA, a typical SMU/emulator readback class)."""
    return 0.005 * np.abs(np.asarray(i_a, dtype=float)) + 1e-4
