"""Temperature-compensated balancing thresholds (BAL-009).

OCV shifts with temperature, so a fixed minimum cell voltage misfires: needless bleeding
when hot, missed correction when cold. At a hot and a cold chamber set point (after a soak)
the high cell is placed just below and then just above ``min_cell_v_at(T_cell)`` (T_cell:
the board's own mean cell NTC reading), the others a clear imbalance lower: balancing must
not start below and must start above.
"""

import numpy as np
import pytest

from testplans.procedures import (
    EXACT_COUNT,
    Cells,
    enter_balancing_state,
    imbalance_mv,
    most_channels,
    observe_window,
    settle_s,
    soak,
    wait_sample,
)


def chamber_points(profile) -> dict[str, float]:
    """Hot and cold set points inside the charge temperature window (OT/UT would gate the
    board), 20 °C either side of room where the window allows."""
    p = profile.protection
    hot = min(25.0 + 20.0, p.ot_charge_c - 7.0)
    cold = max(25.0 - 20.0, p.ut_charge_c + 10.0)
    return {"hot": hot, "cold": cold}


def setpoints(profile) -> list[float]:
    """The chamber set points this plan visits, in order, °C (the chamber schedule's input)."""
    return list(chamber_points(profile).values())


@pytest.mark.requirement("BAL-009")
@pytest.mark.reports("balancing")
@pytest.mark.needs("chamber")
def test_temperature_compensation(profile, emulator, pack_source, clock, link, chamber, measure):
    """Hot and cold: no balancing just below the compensated minimum, balancing just above
    (in a pack state the profile allows balancing in)."""
    b = profile.balancing
    if b.start_mode == "absolute":
        pytest.skip(f"not applicable: the board starts balancing by absolute voltage (start_cell_v "
                    f"{b.start_cell_v:g} V), not at the temperature-compensated minimum cell voltage")
    n = emulator.n_channels
    k = n // 2
    delta = imbalance_mv(profile) * 1e-3
    cells = Cells(emulator, np.full(n, b.min_cell_v - 0.1))
    for label, temp in chamber_points(profile).items():
        t_cell = soak(chamber, link, clock, temp, profile=profile)
        state = enter_balancing_state(profile, pack_source)
        shift_mv = abs(b.temp_comp_mv_per_c * (t_cell - 25.0))
        margin_mv = max(0.5 * shift_mv, 0.5 * profile.sampling.accuracy_mv)
        v_min = b.min_cell_v_at(t_cell)
        cond = {"chamber_c": temp, "cell_temp_c": round(t_cell, 2), "min_cell_v_at_t": round(v_min, 4),
                "margin_mv": round(margin_mv, 2), **state}
        # just below: must not balance
        v = np.full(n, v_min - margin_mv * 1e-3 - delta)
        v[k] = v_min - margin_mv * 1e-3
        cells.set_all(v)
        clock.sleep(settle_s(profile))
        worst = most_channels(observe_window(link, clock, profile, b.start_latency_max_s + 2 * b.interval_s,
                                             f"no balancing below the compensated minimum ({label})"))
        measure(f"{label}_channels_balancing_below_min_cell_v", worst, "1", limits=(0, 0),
                u_reason=EXACT_COUNT, conditions={**cond, "cell": k + 1, "cell_v": round(float(v[k]), 4)})
        # just above: must balance
        v = np.full(n, v_min + margin_mv * 1e-3 - delta)
        v[k] = v_min + margin_mv * 1e-3
        t1 = clock.now()
        cells.set_all(v)
        s = wait_sample(link, clock, lambda s: bool(s.balancing[k]), b.start_latency_max_s + 2 * b.interval_s,
                        f"balancing to start on cell {k + 1} ({label})")
        measure(f"{label}_start_latency_above_min_cell_v_s", None if s is None else s.t - t1, "s",
                limits=(0, b.start_latency_max_s), uncertainty=profile.link.poll_s,
                conditions={**cond, "cell": k + 1, "cell_v": round(float(v[k]), 4)})
        cells.set_all(np.full(n, b.min_cell_v - 0.1))
        wait_sample(link, clock, lambda s: not s.balancing.any(), b.stop_latency_max_s + 2 * b.interval_s, "balancing to stop")
