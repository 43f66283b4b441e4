"""Noise immunity (ACC-002): reported values and balancing decisions under injected noise.

The cell emulator adds white noise (a few mV RMS, as a charger or inverter ripple would)
on every channel. The board's reported (filtered) values must stay within the accuracy
spec against the reference DAQ (which sees the clean set point), and its balancing must
not chatter when one cell sits exactly at the start delta.
"""

import math

import numpy as np
import pytest

from testplans.procedures import (
    EXACT_COUNT,
    Cells,
    balancing_levels,
    board_average,
    cell_name,
    cells_text,
    mask_changes,
    observe_window,
    plateau_v,
    reference_voltages,
    enter_balancing_state,
    settle_s,
    window_for_samples,
)


SCATTER_U_SHARE = 0.1
"""The scatter's share of the verdict's uncertainty: its contribution to U (k=2) of the 95 %
band is held to this fraction of the accuracy spec."""


def noise_window_s(profile) -> float:
    """Observation window for the sampling-noise verdict, s: enough independent reported
    values that the band's uncertainty from the scatter (2 × 2σ × 1/√(2(n−1))) stays within
    ``SCATTER_U_SHARE`` of the accuracy, with the scatter predicted from the injected noise
    through the board's filter and its reporting step (sized to the verdict, not to a fixed
    number of filter lengths). Between 20 and 400 independent values."""
    s = profile.sampling
    sigma = math.hypot(noise_v_rms(profile) / math.sqrt(s.filter_samples), s.resolution_mv * 1e-3 / math.sqrt(12))
    rel = SCATTER_U_SHARE * s.accuracy_mv * 1e-3 / (4.0 * sigma)
    n = min(400.0, max(20.0, 1.0 + 1.0 / (2.0 * rel * rel)))
    return window_for_samples(profile, n)


def noise_v_rms(profile) -> float:
    """Injected noise: 40 % of the accuracy spec, RMS (2 mV for a ±5 mV board)."""
    return 0.4 * profile.sampling.accuracy_mv * 1e-3


@pytest.mark.requirement("ACC-002")
@pytest.mark.needs("daq", "noise_injection")
def test_sampling_noise(profile, emulator, clock, link, daq, measure):
    """With noise injected, 95 % of reported values stay within ±accuracy of the reference:
    |mean error| + 2 × scatter of the reported values ≤ accuracy, every channel."""
    acc = profile.sampling.accuracy_mv
    sigma = noise_v_rms(profile)
    n = emulator.n_channels
    Cells(emulator, np.full(n, plateau_v(profile)))
    emulator.set_noise(sigma)
    clock.sleep(settle_s(profile))
    window = noise_window_s(profile)
    reading = board_average(link, clock, profile, window_s=window)
    ref, u_daq = reference_voltages(daq)
    emulator.set_noise(0.0)
    bias = reading.mean_v - ref
    # relative standard uncertainty of a standard deviation from n_eff values: 1/sqrt(2(n-1))
    rel = 1.0 / math.sqrt(2.0 * max(1.0, reading.n_independent - 1.0))
    for i in range(n):
        band = abs(bias[i]) + 2.0 * reading.std_v[i]
        u = math.hypot(u_daq, 2.0 * 2.0 * reading.std_v[i] * rel)
        measure(f"{cell_name(i)}_noise_error95_mv", band * 1e3, "mV", limits=(None, acc), uncertainty=u * 1e3,
                conditions={"noise_mv_rms": sigma * 1e3, "set_v": round(float(ref[i]), 4),
                            "mean_error_mv": round(float(bias[i]) * 1e3, 3),
                            "scatter_mv": round(float(reading.std_v[i]) * 1e3, 3), "window_s": round(window, 2),
                            "independent_values": round(reading.n_independent, 1)})


@pytest.mark.requirement("ACC-002")
@pytest.mark.reports("balancing")
@pytest.mark.needs("noise_injection")
def test_balancing_noise_immunity(profile, emulator, pack_source, clock, link, measure):
    """One cell held exactly at the start (delta above the others at the top of charge, or
    the absolute start level), with noise, for two minutes, in a pack state the profile
    allows balancing in: the balancing mask changes at most max_toggles_per_min times a minute."""
    b = profile.balancing
    n = emulator.n_channels
    state = enter_balancing_state(profile, pack_source)
    lv = balancing_levels(profile, link)
    base = lv.base_v
    k = n // 2
    v = np.full(n, base)
    v[k] = lv.start_v
    Cells(emulator, v)
    emulator.set_noise(noise_v_rms(profile))
    clock.sleep(settle_s(profile))
    duration = max(120.0, 6 * b.interval_s)
    samples = observe_window(link, clock, profile, duration, "balancing mask under noise")
    emulator.set_noise(0.0)
    changes = mask_changes(samples)
    rate = changes / (duration / 60.0)
    bled = sorted({int(i) for s in samples for i in np.flatnonzero(s.balancing)})
    # a quarter of the reports the board sends in the window (it reports every update period,
    # the link polls every poll_s: whichever is slower)
    every_s = max(profile.link.poll_s, profile.sampling.report_period_s)
    measure("balancing_link_samples", len(samples), "1", limits=(duration / (4 * every_s), None),
            u_reason=EXACT_COUNT, conditions={"window_s": duration})
    measure("balancing_toggles_per_min", rate, "1/min", limits=(None, b.max_toggles_per_min), u_reason=EXACT_COUNT,
            conditions={"cell": k + 1, "delta_mv": b.start_delta_mv, "noise_mv_rms": noise_v_rms(profile) * 1e3,
                        "base_v": round(base, 4), "mask_changes": changes, "window_s": duration,
                        "cells_bled": cells_text(bled), **state})
