"""Balancing convergence in cell-model mode (BAL-007): "2 Ah at 50 mA ≈ 40 h".

The emulator behaves like cells (OCV + RC, integrating the currents the board draws): one
cell 2 Ah above the others at the top of charge (99.9 % SOC against 97.9 %), and a charger
trickling a current just below the bleed current into the string (CV limit at ~3.5 V per
cell): the high cell bleeds slightly faster than it charges and stays on the knee above the
balancing minimum, while the others climb to meet it. The plan waits on the clock in
chunks (fast-forwarded on the bench) and checks the link between chunks until the high cell
is within the stop delta of the others (their median: on the knee the cells' own spread
shows in Vmax − Vmin) and the board has stopped bleeding it.

Why one high cell rather than one low cell: with one low cell every other cell must shed
2 Ah through at most max_channels at once, so the bleed power drives the resistors into
derating and the rate is set by a thermal transient; one high cell is the named scenario
(one bleed, full duty) and its rate is steady.

Prediction from measurements, not from the spec: over the first chunk the emulator's
channel currents give each cell's mean bleed (on-current × duty), so the charge gap closes
at (high cell's bleed) − mean(other cells' bleed); predicted time = 2 Ah / that rate. The
measured convergence time must be within ±20 % of the prediction.

Scaled capacity (the method, and why it does not weaken BAL-007): the emulator's cells are
modelled, so each is modelled with its capacity multiplied by ``scale`` (and the 2 Ah gap
with it) while every current stays as it is. A cell's state moves as dSOC/dt = I / C: with
C and the time axis both multiplied by ``scale`` the SOC trajectory of every cell, and with
it every voltage the board sees and every decision it takes on them, is the same curve (the
cells keep the full-size cell's resistances, thermal mass and self-discharge current: only
the charge capacity is scaled, ``set_cell_model(..., capacity_scale=scale)``); the
bleed closes the gap at the same mA, the gap is ``scale`` times smaller, the hours are
``scale`` times fewer. The board's own timers (balancing interval, measurement pauses,
seconds) stay far shorter than the scaled run (minutes), so they do not see the difference.
``scale`` is chosen from the profile so that the nominal bleed current would close the
scaled gap in ``CONVERGENCE_BUDGET_H``; the prediction, the ±20 % band, the stall look-back
and the timeout are all on the same scaled time axis, and the record states the scale and
the full-capacity equivalent of the measured time (measured / scale).

Stall rule: a board that stops closing the gap (it stops bleeding early, or settles into
self-oscillation at its start delta) would keep a rig busy until the timeout, twice the
predicted ~40 h. The plan stops waiting when the high cell's excess has fallen by less
than ``STALL_MIN_FALL_MV`` over the last ``STALL_WINDOW_S`` (a good board closes it by
more than 2 mV/h even at the end) and records where it stalled.
"""

import numpy as np
import pytest

from rig import progress
from testplans.procedures import bleed_currents, cell_name, current_u_a, idle_currents, on_currents

GAP_AH = 2.0
TOLERANCE = 0.20
CONVERGENCE_BUDGET_H = 0.3
"""Rig time the nominal bleed current should need to close the scaled gap, h."""
STALL_WINDOW_S = 7200.0
"""Look-back of the stall rule at full capacity, s (scaled with the capacity)."""
STALL_MIN_WINDOW_S = 300.0
"""Shortest look-back of the stall rule, s: the board's reported voltages scatter by a few
tenths of a mV, so a scaled look-back under a few minutes would see a stall in the scatter."""
STALL_MIN_FALL_MV = 1.0
"""Least fall of the high cell's excess over the look-back that still counts as progress, mV."""


METHOD = ("scaled capacity: the profile's cells (resistances, thermal mass, self-discharge current) modelled "
          "with charge capacity x scale, the gap x scale, every current unchanged (dSOC/dt = I/C): the same SOC "
          "and voltage trajectory on a time axis x scale; prediction, ±20 % band, stall look-back and timeout "
          "on the same axis")


def capacity_scale(profile) -> float:
    """The factor on the modelled cell capacity (<= 1): the nominal bleed current closes the
    scaled gap in :data:`CONVERGENCE_BUDGET_H` (1 for a board whose full gap already does)."""
    nominal_h = GAP_AH / profile.bleed_current_nominal_a
    return min(1.0, CONVERGENCE_BUDGET_H / nominal_h)


@pytest.mark.requirement("BAL-007")
def test_balancing_convergence(profile, emulator, pack_source, clock, link, measure, capture):
    """One cell 2 Ah high at the top of charge converges in the time the measured bleed
    current and duty predict (±20 %)."""
    b = profile.balancing
    n = emulator.n_channels
    scale = capacity_scale(profile)
    cap = profile.capacity_ah * scale  # modelled charge capacity, Ah
    gap_ah = GAP_AH * scale  # modelled gap, Ah: the same SOC gap as GAP_AH on the full cell
    hi_cell = n // 2
    idle_v = idle_currents(emulator, clock)
    soc_high = 0.999
    soc = np.full(n, soc_high - GAP_AH / profile.capacity_ah)
    soc[hi_cell] = soc_high
    progress.phase(f"balancing: convergence (capacity x {scale:.3g})")
    # the profile's cells (resistances, thermal mass, self-discharge current) with their
    # charge capacity x scale: rig.protocols.CellEmulator.set_cell_model
    emulator.set_cell_model(profile.chemistry, profile.capacity_ah, soc, capacity_scale=scale)
    # the charger at the top: a trickle of 80 % of the nominal bleed current, CV ~3.5 V per cell
    v_cell_top = b.min_cell_v + 0.100
    pack_source.set_current(0.8 * profile.bleed_current_nominal_a, voltage_limit_v=n * v_cell_top)
    chunk = max(12 * b.interval_s, 600.0 * scale)  # s: the first (rate) window, 12+ balancing decisions
    t0 = clock.now()
    rows = [(0.0, link.latest())]
    # first chunk: measure the bleed currents the prediction rests on
    clock.sleep(chunk)
    i_mean = np.asarray(emulator.read_currents(aperture_s=chunk))
    i_on = on_currents(emulator, clock, profile, reads=24, span_s=2 * b.interval_s)
    # the charger's string current flows through every channel of a real emulator: out with it
    i_on, i_mean, bleeding = bleed_currents(i_on, i_mean, idle_v, b.bleed_current_ma[0] * 1e-3)
    rows.append((clock.now() - t0, link.latest()))
    others = np.arange(n) != hi_cell
    rate = float(i_mean[hi_cell] - np.mean(i_mean[others]))  # A: how fast the gap closes
    duty = float(np.sum(i_mean[bleeding]) / np.sum(i_on[bleeding])) if bleeding.any() else 0.0
    measure("bleed_on_current_ma", float(np.mean(i_on[bleeding]) * 1e3) if bleeding.any() else None, "mA",
            limits=b.bleed_current_ma, uncertainty=0.5, conditions={"channels": int(bleeding.sum())})
    predicted = gap_ah * 3600.0 / rate if rate > 0 else None  # s
    # U (k=2): the high cell's current reading and the mean of the others' (emulator readback)
    u_rate = float(np.sqrt(current_u_a(i_mean[hi_cell]) ** 2 + np.mean(current_u_a(i_mean[others])) ** 2 / others.sum()))
    measure("gap_closing_rate_ma", rate * 1e3, "mA", limits=(0.0, None), uncertainty=u_rate * 1e3,
            conditions={"duty": round(duty, 4), "channels_bleeding": int(bleeding.sum()), "window_s": chunk})
    def excess_v(sample):
        """How far the high cell still stands above the others (their median), V. Not Vmax −
        Vmin: on the knee the cells' own spread (capacity, self-discharge) shows too."""
        v = np.asarray(sample.cell_v, dtype=float)
        return float(v[hi_cell] - np.median(v[others]))

    converged_at = None
    stalled = None  # (elapsed s, excess V) where the gap stopped closing
    timeout = 2.0 * (predicted or 0.0) if predicted else 0.0
    look = max(2 * b.interval_s, 60.0 * scale)  # s between looks at the link (60 s at full capacity)
    lookback = max(2, int(round(max(STALL_WINDOW_S * scale, STALL_MIN_WINDOW_S) / look)))
    excess = [excess_v(rows[-1][1])]
    while predicted and clock.now() - t0 < timeout:
        clock.sleep(look)
        s = link.latest()
        rows.append((clock.now() - t0, s))
        excess.append(excess_v(s))
        if excess[-1] < b.stop_delta_mv * 1e-3 and not s.balancing[hi_cell]:
            converged_at = clock.now() - t0
            break
        if len(excess) > lookback and excess[-1 - lookback] - min(excess[-lookback:]) < STALL_MIN_FALL_MV * 1e-3:
            stalled = (clock.now() - t0, excess[-1])
            break
    pack_source.off()
    final = link.latest()
    emulator.set_source_mode()
    cond = {"gap_ah": GAP_AH, "capacity_ah": profile.capacity_ah, "capacity_scale": round(scale, 6),
            "modelled_capacity_ah": round(cap, 4), "modelled_gap_ah": round(gap_ah, 5), "method": METHOD, "high_cell": hi_cell + 1, "soc_high": soc_high,
            "predicted_h": None if predicted is None else round(predicted / 3600, 2), "duty": round(duty, 4),
            "rate_ma": round(rate * 1e3, 3)}
    if stalled is not None:
        cond.update(stalled_after_h=round(stalled[0] / 3600, 2), stalled_excess_mv=round(stalled[1] * 1e3, 2),
                    stall_rule=f"excess fell < {STALL_MIN_FALL_MV} mV in {lookback * look / 3600:.3g} h "
                               f"({STALL_WINDOW_S / 3600:g} h at full capacity)")
    if converged_at is not None:
        cond["full_capacity_equivalent_h"] = round(converged_at / scale / 3600, 2)
    lo_hi = (None, None) if predicted is None else (predicted * (1 - TOLERANCE) / 3600, predicted * (1 + TOLERANCE) / 3600)
    measure("convergence_time_h", None if converged_at is None else converged_at / 3600, "h", limits=lo_hi,
            uncertainty=look / 3600, conditions=cond)
    measure("final_high_cell_excess_mv", excess_v(final) * 1e3, "mV", limits=(None, b.stop_delta_mv),
            u_reason="the board's own reported cell voltages (the quantity the board acts on), no rig instrument",
            conditions={**cond, "final_delta_mv": round(final.delta_v * 1e3, 2)})
    step = max(1, len(rows) // 2000 + 1)
    rows = rows[::step]
    cols = {"t_s": np.array([r[0] for r in rows])}
    for i in range(n):
        cols[f"v_{cell_name(i)}"] = np.array([float(r[1].cell_v[i]) for r in rows])
    cols["delta_v"] = np.array([r[1].delta_v for r in rows])
    capture("balancing_convergence", cols, {k: ("s" if k == "t_s" else "V") for k in cols},
            kind="balancing_convergence", meta={"high_cell": hi_cell + 1, "gap_ah": GAP_AH})
