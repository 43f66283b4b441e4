"""Balancing duty-cycle derating (BAL-008).

The bleed resistors heat the board; the board's NTC at the resistors (the profile's
``temperatures.bleed_resistor``, the hottest if several; unstated, the last entry of the
link's temperatures) must reduce the balancing duty along the profile's derating curve. The
hot spot is driven by the chamber (board temperature) and by the bleed power (how many
channels bleed): one channel at room temperature stays below the derating start (full
duty), the most channels the board may bleed at cold, room and hot set points climb into
the curve (cells kept inside the charge temperature window so OT/UT do not interfere). A
board whose bleed power cannot reach the curve that way (a small board: few channels) gets
one more point with the chamber hot enough to put the NTC mid-curve.

At each point, after the thermal loop settles: duty = mean bleed current over a window /
bleed current while on (emulator channel currents, idle draw subtracted), compared with
``derating.duty_at(reported NTC)`` ± duty_tolerance. The board re-decides its duty once per
balancing interval, so the NTC that counts is the reading at each decision: the lowest
reading of each interval (the bleed PWM makes the hot spot ripple by a few °C).
"""

import numpy as np
import pytest

from rig import progress
from testplans.procedures import (
    Cells,
    bleed_ntc_c,
    cells_text,
    idle_currents,
    imbalance_mv,
    observe,
    on_currents,
    soak,
    top_of_charge_v,
    wait_sample,
    window,
)


def derating_points(profile, n: int) -> list[tuple[float, int]]:
    """(chamber °C, channels bleeding): low power at room, then full power room/cold/hot (cold
    before hot: the run ends hot, where the temperature-compensation plan starts)."""
    p = profile.protection
    k_max = min(profile.balancing.max_channels, (n + 1) // 2)
    hot = min(45.0, p.ot_charge_c - 7.0)
    cold = max(5.0, p.ut_charge_c + 10.0)
    return [(25.0, 1), (25.0, k_max), (cold, k_max), (hot, k_max)]


def setpoints(profile) -> list[float]:
    """The chamber set points this plan visits, in order, °C (the chamber schedule's input;
    a board whose bleed power does not reach the curve gets one more, hot, point)."""
    return [t for t, _ in derating_points(profile, profile.cells)]


@pytest.mark.requirement("BAL-008")
@pytest.mark.needs("chamber")
def test_derating(profile, emulator, clock, link, chamber, measure, capture):
    """Measured duty follows the derating curve at the reported bleed-resistor temperature;
    full duty below the derating start."""
    if bleed_ntc_c(link.latest(), profile) is None:
        pytest.skip("not verified: the board reports no bleed-resistor temperature (the profile's "
                    "`temperatures` names no `bleed_resistor` sensor), so its derating input is not known")
    b = profile.balancing
    der = b.derating
    n = emulator.n_channels
    cells = Cells(emulator, np.full(n, b.min_cell_v - 0.1))
    window_s = max(60.0, 12 * b.interval_s)
    rows = []
    points = derating_points(profile, n)
    j = 0
    while j < len(points):
        temp, k = points[j]
        j += 1
        soak(chamber, link, clock, temp, dwell_s=300.0, settle_c=0.5, profile=profile)
        progress.phase(f"derating: {k} channel(s) bleeding at {temp:g} °C")
        cells.set_all(np.full(n, b.min_cell_v - 0.1))
        wait_sample(link, clock, lambda s: not s.balancing.any(), b.stop_latency_max_s + 2 * b.interval_s, "balancing off")
        idle = idle_currents(emulator, clock)
        base = top_of_charge_v(profile, link)
        sel = np.zeros(n, bool)
        sel[0:2 * k:2] = True
        v = np.full(n, base)
        v[sel] = base + imbalance_mv(profile) * 1e-3
        cells.set_all(v)
        # let the hot spot and the derating loop settle (several thermal time constants)
        observe(clock, profile, 2 * b.interval_s)
        clock.sleep(8 * b.resistor_thermal_tau_s)
        i_on = (on_currents(emulator, clock, profile, reads=24, span_s=2 * b.interval_s) - idle)[sel]
        t0 = observe(clock, profile, window_s)
        i_mean = (np.asarray(emulator.read_currents(aperture_s=window_s)) - idle)[sel]
        samples = window(link, t0, f"bleed-resistor NTC over the duty window at {temp:g} °C")
        ntc = np.array([bleed_ntc_c(s, profile) for s in samples])
        ts = np.array([s.t for s in samples])
        # the board re-decides its duty once per interval from the NTC at that moment, the
        # coolest point of the PWM ripple: take each interval's lowest reading
        chunks = [ntc[(ts >= t0 + j * b.interval_s) & (ts < t0 + (j + 1) * b.interval_s)]
                  for j in range(int(window_s // b.interval_s))]
        at_decision = [float(c.min()) for c in chunks if len(c)] or [float(ntc.min())]
        t_ntc = float(np.mean(at_decision))
        # on-current must look like a bleed (else the duty cannot be measured: None fails)
        on_ok = np.sum(i_on) > 0.5 * b.bleed_current_ma[0] * 1e-3 * len(i_on)
        duty = float(np.sum(i_mean) / np.sum(i_on)) if on_ok else None
        expected = float(np.mean([der.duty_at(x) for x in at_decision]))
        cond = {"chamber_c": temp, "channels": cells_text(sel), "ntc_c": round(t_ntc, 2),
                "ntc_ripple_c": round(float(np.ptp(ntc)), 2), "on_current_ma": round(float(np.mean(i_on)) * 1e3, 2)}
        measure("derating_duty_error", None if duty is None else duty - expected, "1", limits=(-der.duty_tolerance, der.duty_tolerance),
                uncertainty=0.02, conditions={**cond, "duty": None if duty is None else round(duty, 4), "expected_duty": round(expected, 4)})
        if t_ntc < der.start_c - 2.0:
            measure("duty_below_derating_start", duty, "1", limits=(1.0 - der.duty_tolerance, None),
                    uncertainty=0.02, conditions=cond)
        rows.append((t_ntc, np.nan if duty is None else duty, expected))
        cells.set_all(np.full(n, b.min_cell_v - 0.1))
        if j == len(points) == len(derating_points(profile, n)) and max(r[0] for r in rows) < der.start_c + 0.25 * (der.zero_c - der.start_c):
            # this board's bleed power does not reach into the curve from the charge window:
            # one more point with the chamber hot enough that full duty would put the NTC in
            # the middle of the curve (cells above OT: the board still balances at rest)
            rise = max(r[0] - p for r, (p, kk) in zip(rows, points) if kk == points[-1][1])
            extra = min(der.zero_c - 5.0, der.start_c + 0.5 * (der.zero_c - der.start_c) - rise)
            points.append((round(extra, 1), points[-1][1]))
    cols = list(zip(*rows))
    capture("derating", {"temp_c": np.array(cols[0]), "duty": np.array(cols[1]), "expected_duty": np.array(cols[2])},
            {"temp_c": "°C", "duty": "1", "expected_duty": "1"}, kind="derating")
