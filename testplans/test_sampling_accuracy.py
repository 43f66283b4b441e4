"""Sampling accuracy (ACC-001): every channel against the reference DAQ.

Lab procedure (TI SLUAA32A style, with a reference DAQ): apply a known voltage to every
channel at once, wait until the board's filter has settled, average several reported
values, read the reference DAQ, and compare. Repeat at five voltages across the
chemistry's range (low region, plateau, near the knee, top of charge; all kept clear of
the HVC/LVC bands so protection does not trip) and at cold, room and hot chamber set
points after a soak.

Uncertainty of each error (k=2): the DAQ's expanded uncertainty combined with twice the
standard uncertainty of the board's mean (scatter / sqrt(independent reported values)).
"""

import numpy as np
import pytest

from testplans.procedures import (
    NO_SCATTER,
    Cells,
    plateau_v,
    settle_s,
    independent_samples,
    board_average,
    cell_name,
    reference_voltages,
    set_cells_and_settle,
    soak_board,
)


def accuracy_points(profile) -> list[float]:
    """Five test voltages from the profile: two in the lower range, the plateau, just above
    the balancing minimum (knee) and just below the HVC tolerance band (for LFP: ~2.80,
    3.00, 3.30, 3.45, 3.60 V)."""
    p, b = profile.protection, profile.balancing
    lo, hi = p.lvc.threshold_v, p.hvc.threshold_v
    span = hi - lo
    top = hi - 5 * p.hvc.threshold_tolerance_mv * 1e-3
    pts = [lo + 0.26 * span, lo + 0.435 * span, b.min_cell_v - 0.100, b.min_cell_v + 0.050, top]
    return [round(v, 3) for v in sorted(set(pts))]


def temperature_points(profile) -> dict[str, float]:
    """Cold and hot chamber set points 10 °C inside the profile's sampling range."""
    lo, hi = profile.sampling.temperature_range_c
    return {"cold": lo + 10.0, "hot": hi - 10.0}


def setpoints(profile) -> list[float]:
    """The chamber set points the over-temperature test visits, in order, °C (the chamber
    schedule's input)."""
    return list(temperature_points(profile).values())


def _sweep(profile, emulator, clock, link, daq, measure, temp_c, rows):
    acc = profile.sampling.accuracy_mv
    n = emulator.n_channels
    var = np.zeros(n)
    for v in accuracy_points(profile):
        set_cells_and_settle(emulator, clock, profile, np.full(n, v))
        reading = board_average(link, clock, profile)
        ref, u_daq = reference_voltages(daq)
        err = reading.mean_v - ref
        # U (k=2): the DAQ, the board's scatter and its reporting step (sampling.resolution_mv)
        u = np.sqrt(u_daq ** 2 + (2 * reading.repeatability_u_v) ** 2 + profile.sampling.resolution_u_v ** 2)
        var += reading.std_v ** 2
        for i in range(n):
            measure(f"{cell_name(i)}_error_mv", err[i] * 1e3, "mV", limits=(-acc, acc), uncertainty=u[i] * 1e3,
                    conditions={"set_v": v, "temp_c": temp_c, "reference_v": round(float(ref[i]), 5)})
            rows.append((i + 1, temp_c, v, float(err[i]), float(u[i])))
    # repeatability: 2 x the pooled scatter of the reported value, against half the accuracy
    rep = 2 * np.sqrt(var / len(accuracy_points(profile))) * 1e3
    # U (k=2) of a standard deviation from n independent values: 2 / sqrt(2 (n - 1)) of it
    s = profile.sampling
    n_ind = len(accuracy_points(profile)) * independent_samples(profile, 2.0 * max(s.filter_samples * s.period_s,
                                                                                   s.report_period_s))
    u_rep = rep * 2.0 / np.sqrt(2.0 * max(n_ind - 1.0, 1.0))
    for i in range(n):
        # a reported value quantised in steps of resolution_mv may flip between two steps
        measure(f"{cell_name(i)}_repeatability_mv", rep[i], "mV", limits=(0, max(acc / 2, profile.sampling.resolution_mv)),
                uncertainty=float(u_rep[i]),
                u_reason=NO_SCATTER,
                conditions={"temp_c": temp_c, "coverage": "2 sigma of reported values"})


def _capture(capture, rows):
    cols = list(zip(*rows))
    capture("sampling_error", {"cell": np.array(cols[0]), "temp_c": np.array(cols[1]), "set_v": np.array(cols[2]),
                               "error_v": np.array(cols[3]), "u_v": np.array(cols[4])},
            {"cell": "1", "temp_c": "°C", "set_v": "V", "error_v": "V", "u_v": "V"}, kind="sampling_error")


@pytest.mark.requirement("ACC-001")
@pytest.mark.needs("daq")
def test_sampling_accuracy(profile, emulator, clock, link, daq, measure, capture):
    """Every channel within ±accuracy of the reference DAQ at five voltages, room temperature."""
    rows = []
    _sweep(profile, emulator, clock, link, daq, measure, 25.0, rows)
    _capture(capture, rows)


@pytest.mark.requirement("ACC-001")
@pytest.mark.needs("chamber", "daq")
def test_sampling_accuracy_over_temperature(profile, emulator, clock, link, daq, chamber, measure, capture):
    """Every channel within ±accuracy of the reference DAQ at five voltages, at the cold and
    hot ends of the sampling temperature range (after a soak)."""
    rows = []
    for label, temp in temperature_points(profile).items():
        soak_board(chamber, link, clock, temp, profile)
        _sweep(profile, emulator, clock, link, daq, measure, temp, rows)
    _capture(capture, rows)


@pytest.mark.requirement("ACC-003")
def test_reporting_resolution(profile, emulator, clock, link, measure):
    """A fine staircase on every channel (a fifth of the declared reporting step per stair,
    over three steps, on the plateau): the reported values change in steps no coarser than
    ``sampling.resolution_mv`` (the median step between consecutive distinct reported
    values, every channel; 25 % allowance for a step split by noise)."""
    s = profile.sampling
    res = s.resolution_mv * 1e-3
    n = emulator.n_channels
    v0 = plateau_v(profile)
    cells = Cells(emulator, np.full(n, v0))
    clock.sleep(settle_s(profile))
    seen = []
    for j in range(16):
        cells.set_all(np.full(n, v0 + j * res / 5.0))
        clock.sleep(settle_s(profile))
        seen.append(np.asarray(link.latest().cell_v, dtype=float))
    arr = np.array(seen)
    steps = [abs(float(b - a)) for ch in arr.T for a, b in zip(ch, ch[1:]) if abs(b - a) > 1e-7]
    step_mv = float(np.median(steps)) * 1e3 if steps else None
    measure("reported_step_mv", step_mv, "mV", limits=(None, 1.25 * s.resolution_mv), u_reason="read exactly off the board's reported values",
            uncertainty=0.0, conditions={"declared_resolution_mv": s.resolution_mv, "stair_mv": round(res / 5 * 1e3, 3),
                                         "stairs": 16, "changes_seen": len(steps), "start_v": round(v0, 4)})
