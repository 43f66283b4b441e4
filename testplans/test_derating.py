"""Balancing duty-cycle derating (BAL-008).

The bleed resistors heat the board; the board's NTC at the resistors (the profile's
``temperatures.bleed_resistor``, the hottest if several; unstated, the last entry of the
link's temperatures) must reduce the balancing duty along the profile's derating curve. The
hot spot is driven by the chamber (board temperature) and by the bleed power (how many
channels bleed): the most channels the board may bleed at cold, room and hot set points,
and one channel at room temperature (cells kept inside the charge temperature window so
OT/UT do not interfere); the points visited cold to hot, so the chamber only warms. A board
whose bleed power cannot reach the curve that way (a small board: few channels) gets one
more point with the chamber hot enough to put the NTC mid-curve.

At each point: duty = mean bleed current over a window / bleed current while on (emulator
channel currents, idle draw subtracted), compared with ``strategy × derating.duty_at(reported
NTC)`` ± duty_tolerance, the curve taken at each interval's lowest and highest NTC reading
(the band the board's own reading lies in) (the curve as the profile states it: start/zero,
or points, linear or steps). The last point puts the chamber above the curve's end (its
zero): the bleed current there must be nil, so a board whose duty never reaches zero is
caught. Every point runs in a pack state the profile allows balancing in
(:func:`testplans.procedures.enter_balancing_state`). The board re-decides its duty once per
balancing interval, so the NTC that counts is the reading at each decision: the lowest
reading of each interval (the bleed PWM makes the hot spot ripple by a few °C).

Measurement conditions (what the verdict needs, no fixed wait): the chamber air stable at
the set point (the duty follows the board's own NTC, not the cells'); the duty measured over
windows of a whole number of balancing intervals (at least twelve, at least 60 s,
:func:`duty_window_s`), window after window until the loop has settled for the verdict
(:func:`settled_duty_window`): in the curve, the expected duty moved less than a quarter of
the tolerance and the mean decision NTC less than :func:`settle_drift_c` (a quarter of the
tolerance along the curve's steepest fall) from the window before; at a point the profile
puts below the curve's start at full power, every reading of two windows below the start
less 2 °C (the expected duty is then the curve's first whatever the hot spot's drift); past
the zero, every decision of two windows past it. At most eight hot-spot time constants plus
two windows (:func:`settle_limit_s`); the window judged, its settle time and the NTC drift
are in the measurement's conditions.
"""

import math

import numpy as np
import pytest

from rig import progress
from testplans.procedures import (
    Cells,
    balancing_levels,
    bleed_ntc_c,
    cells_text,
    enter_balancing_state,
    observe,
    pack_current_in,
    soak,
    wait_sample,
    window,
)
from testplans.currents import idle_currents, on_currents
from rig.chemistry import chemistry
from testplans.groups import bleed_groups


def zero_point_c(profile) -> float:
    """Chamber set point past the curve's zero (3 °C beyond its last point, inside the
    chemistry's temperature envelope), °C: the board's own NTC then reads in the zero region
    whatever the bleed power."""
    return min(profile.balancing.derating.zero_c + 3.0, chemistry(profile.chemistry).abs_max_c - 2.0)


def derating_points(profile, n: int) -> list[tuple[float, int]]:
    """(chamber °C, channels bleeding), in the order visited: full power cold, low then full
    power at room, full power hot. Rising, so the chamber only warms from the first point to
    the point past the curve's zero (last); cold first, where the temperature-compensation
    plan (the same cold and hot set points) leaves the chamber, so its soak serves this one
    (fixtures/schedule.py)."""
    p = profile.protection
    k_max = int(bleed_groups(profile, n)[0].sum())  # the most channels it may bleed together
    hot = min(45.0, p.ot_charge_c - 7.0)
    cold = max(5.0, p.ut_charge_c + 10.0)
    return [(cold, k_max), (25.0, 1), (25.0, k_max), (hot, k_max)]


def curve_slope_per_c(profile) -> float:
    """The derating curve's steepest fall, duty per °C (a stepwise curve: each step's fall
    over the distance to the next point, the mean slope it stands for)."""
    pts = profile.balancing.derating.curve()
    return max((d0 - d1) / (t1 - t0) for (t0, d0), (t1, d1) in zip(pts, pts[1:]))


def settle_limit_s(profile) -> float:
    """The longest the duty measurement waits for the derating loop to settle, s: eight
    time constants of the bleed-resistor hot spot (its step response within 0.03 %) plus
    two measurement windows."""
    b = profile.balancing
    return 8 * b.resistor_thermal_tau_s + 2 * duty_window_s(profile)


FLAT_MARGIN_C = 2.0
"""A point counts as below the curve's start (full duty expected, ``duty_below_derating_start``
judged) with its NTC this far below it, °C."""


def predicted_ntc_c(profile, chamber_c: float, channels: int, cell_v: float) -> float:
    """The bleed-resistor NTC the profile predicts with ``channels`` bleeding at full duty
    from cells at ``cell_v``: chamber + channels × cell_v² / bleed_resistor_ohm ×
    resistor_thermal_c_per_w, °C."""
    b = profile.balancing
    return chamber_c + channels * cell_v ** 2 / b.bleed_resistor_ohm * b.resistor_thermal_c_per_w


def settle_drift_c(profile) -> float:
    """How far the mean decision NTC may move from one duty window to the next for the
    derating loop to count as settled, °C: a quarter of the duty tolerance along the curve's
    steepest fall (the expected duty then moves less than a quarter of the tolerance), at
    least the NTC's 0.1 °C resolution, at most 1 °C."""
    der = profile.balancing.derating
    return min(1.0, max(0.1, 0.25 * der.duty_tolerance / curve_slope_per_c(profile)))


def duty_window_s(profile) -> float:
    """The duty measurement window, s: twelve balancing intervals (the board re-decides its
    duty once per interval, so the window is a whole number of duty periods), at least 60 s."""
    interval = profile.balancing.interval_s
    return interval * max(12, math.ceil(60.0 / interval))


def zero_point_skipped(profile) -> str | None:
    """Why the point past the curve's zero cannot be run on this board (None: it is run):
    a board that balances only with charge current flowing opens its charge FET there."""
    state = profile.balancing.strategies.balancing_state()
    if pack_current_in(profile, state) > 0 and zero_point_c(profile) >= profile.protection.ot_charge_c - 2.0:
        return (f"not reached: balancing needs charge current, and at {zero_point_c(profile):g} °C "
                f"the charge FET opens (ot_charge_c {profile.protection.ot_charge_c:g} °C)")
    return None


def setpoints(profile) -> list[float]:
    """The chamber set points this plan visits, in order, °C (the chamber schedule's input):
    the fixed points, then the point past the curve's zero when the board can be run there
    (a board whose bleed power does not reach the curve gets one more, hot, point between)."""
    fixed = [t for t, _ in derating_points(profile, profile.cells)]
    return fixed if zero_point_skipped(profile) else fixed + [zero_point_c(profile)]


def settled_duty_window(profile, emulator, clock, link, idle, sel, strategy: float, temp: float,
                        past_zero: bool, flat: bool) -> dict:
    """Consecutive duty windows (:func:`duty_window_s`) with the selected channels bleeding,
    until the derating loop has settled for what the verdict needs, at most
    :func:`settle_limit_s`:

    - in the curve: the duty the curve expects at the board's own NTC readings moved less
      than a quarter of ``duty_tolerance``, and the mean decision NTC less than
      :func:`settle_drift_c`, from the window before (the operating point settled);
    - ``flat`` (a point whose full-power hot spot the profile puts below the curve's start,
      :func:`predicted_ntc_c`): every reading of two windows running below the start less
      :data:`FLAT_MARGIN_C` (the expected duty is the curve's first, whatever the drift);
    - ``past_zero``: every decision of two windows running past the curve's zero.

    The board re-decides its duty once per interval from the NTC at that moment, the
    coolest point of the PWM ripple: each interval's lowest reading is the decision; the
    reading it decided on lies between each interval's lowest and highest, so the curve
    there bounds the duty (a step of a stepwise curve inside the ripple). The expected duty
    is taken at every interval's own reading, so a slow drift of the board inside the
    window does not bias the comparison. Returns the last window: ``ntc_c`` (mean decision
    reading, °C), ``ripple_c`` (°C), ``i_mean`` (mean bleed current of the selected
    channels, A), ``band`` and ``expected`` (duty), ``settle_s`` (s), ``settled``."""
    b = profile.balancing
    der = b.derating
    window_s = duty_window_s(profile)
    tol = 0.25 * der.duty_tolerance
    drift_c = settle_drift_c(profile)
    t_start = clock.now()
    prev = None
    while True:
        t0 = observe(clock, profile, window_s)
        i_mean = (np.asarray(emulator.read_currents(aperture_s=window_s)) - idle)[sel]
        samples = window(link, t0, f"bleed-resistor NTC over the duty window at {temp:g} °C")
        ntc = np.array([bleed_ntc_c(s, profile) for s in samples])
        ts = np.array([s.t for s in samples])
        chunks = [ntc[(ts >= t0 + i * b.interval_s) & (ts < t0 + (i + 1) * b.interval_s)]
                  for i in range(int(round(window_s / b.interval_s)))]
        at_decision = [float(c.min()) for c in chunks if len(c)] or [float(ntc.min())]
        hottest = [float(c.max()) for c in chunks if len(c)] or [float(ntc.max())]
        expected = strategy * float(np.mean([der.duty_at(x) for x in at_decision]))
        band = (strategy * float(np.mean([der.duty_at(x) for x in hottest])), expected)
        t_ntc = float(np.mean(at_decision))
        hot_c = float(ntc.max())
        if prev is None:
            steady = False
        elif past_zero:  # the verdict needs every decision past the zero, two windows running
            steady = expected == prev[0] == 0.0
        elif flat:  # the verdict needs the decisions below the curve's start, two windows running
            steady = abs(expected - prev[0]) <= tol and max(hot_c, prev[2]) < der.start_c - FLAT_MARGIN_C
        else:  # in the curve: the operating point settled
            steady = abs(expected - prev[0]) <= tol and abs(t_ntc - prev[1]) <= drift_c
        waited = clock.now() - t_start
        if steady or waited >= settle_limit_s(profile):
            return {"ntc_c": t_ntc, "ripple_c": round(float(np.ptp(ntc)), 2), "i_mean": i_mean,
                    "band": band, "expected": expected, "settle_s": round(waited, 1), "settled": bool(steady),
                    "ntc_drift_c": None if prev is None else round(t_ntc - prev[1], 2)}
        prev = (expected, t_ntc, hot_c)


@pytest.mark.requirement("BAL-008")
@pytest.mark.needs("chamber")
def test_derating(profile, emulator, pack_source, clock, link, chamber, measure, capture):
    """Measured duty follows the derating curve at the reported bleed-resistor temperature;
    full duty below the derating start; no bleed at all past the curve's zero."""
    if bleed_ntc_c(link.latest(), profile) is None:
        pytest.skip("not verified: the board reports no bleed-resistor temperature (the profile's "
                    "`temperatures` names no `bleed_resistor` sensor), so its derating input is not known")
    b = profile.balancing
    der = b.derating
    n = emulator.n_channels
    cells = Cells(emulator, np.full(n, b.min_cell_v - 0.1))
    rows = []
    points = derating_points(profile, n)
    state = enter_balancing_state(profile, pack_source)
    strategy = b.strategies.duty(state["pack_state"])
    if zero_point_skipped(profile):
        state["zero_point"] = zero_point_skipped(profile)
    j = 0
    while j < len(points):
        temp, k = points[j]
        j += 1
        # the chamber air at the set point; the board's own NTC is waited on below (the
        # duty follows the NTC, whatever the cells' temperature inside the charge window)
        soak(chamber, link, clock, temp, profile=profile, what="air")
        progress.phase(f"derating: {k} channel(s) bleeding at {temp:g} °C")
        cells.set_all(np.full(n, b.min_cell_v - 0.1))
        wait_sample(link, clock, lambda s: not s.balancing.any(), b.stop_latency_max_s + 2 * b.interval_s, "balancing off")
        idle = idle_currents(emulator, clock)
        lv = balancing_levels(profile, link)
        sel = np.zeros(n, bool)  # the first k channels of a set the board may bleed together
        sel[np.flatnonzero(bleed_groups(profile, n)[0])[:k]] = True
        v = np.full(n, lv.base_v)
        v[sel] = lv.high_v
        cells.set_all(v)
        observe(clock, profile, 2 * b.interval_s)
        # the on-current first, while the hot spot is still near the board (the duty high):
        # settled on a curve that holds the duty near zero a PWM cycle may show no on-phase
        i_on = (on_currents(emulator, clock, profile, reads=24, span_s=2 * b.interval_s) - idle)[sel]
        past_zero = temp >= zero_point_c(profile)
        # below the curve's start from where the hot spot is now to where full power takes it
        flat = max(predicted_ntc_c(profile, temp, k, lv.high_v), bleed_ntc_c(link.latest(), profile)) \
            < der.start_c - FLAT_MARGIN_C
        m = settled_duty_window(profile, emulator, clock, link, idle, sel, strategy, temp, past_zero, flat)
        t_ntc, i_mean, band, expected = m["ntc_c"], m["i_mean"], m["band"], m["expected"]
        # on-current must look like a bleed (else the duty cannot be measured: None fails)
        on_ok = np.sum(i_on) > 0.5 * b.bleed_current_ma[0] * 1e-3 * len(i_on)
        duty = float(np.sum(i_mean) / np.sum(i_on)) if on_ok else None
        cond = {"chamber_c": temp, "channels": cells_text(sel), "ntc_c": round(t_ntc, 2),
                "ntc_ripple_c": m["ripple_c"], "on_current_ma": round(float(np.mean(i_on)) * 1e3, 2),
                "settle_s": m["settle_s"], "settled": m["settled"], "ntc_drift_c": m["ntc_drift_c"], **state}
        if expected == 0.0:  # past the curve's zero: nothing may bleed (a duty that never reaches zero fails)
            mean_ma = float(np.max(i_mean)) * 1e3
            measure("bleed_current_past_derating_zero_ma", mean_ma, "mA", limits=(None, 0.05 * b.bleed_current_ma[0]),
                    uncertainty=0.1, conditions={**cond, "zero_c": der.zero_c, "expected_duty": 0.0})
            rows.append((t_ntc, mean_ma / max(1e-9, float(np.mean(b.bleed_current_ma))), 0.0))
            cells.set_all(np.full(n, b.min_cell_v - 0.1))
            continue
        error = None if duty is None else (duty - band[0] if duty < band[0] else max(0.0, duty - band[1]))
        measure("derating_duty_error", error, "1", limits=(-der.duty_tolerance, der.duty_tolerance), uncertainty=0.02,
                conditions={**cond, "duty": None if duty is None else round(duty, 4), "expected_duty": round(expected, 4),
                            "expected_duty_band": [round(band[0], 4), round(band[1], 4)]})
        if t_ntc < der.start_c - FLAT_MARGIN_C:
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
        if j == len(points) and not any(p[0] >= zero_point_c(profile) for p in points) and "zero_point" not in state:
            points.append((zero_point_c(profile), points[-1][1]))
    cols = list(zip(*rows))
    capture("derating", {"temp_c": np.array(cols[0]), "duty": np.array(cols[1]), "expected_duty": np.array(cols[2])},
            {"temp_c": "°C", "duty": "1", "expected_duty": "1"}, kind="derating")
