"""Channel mapping (MAP-001): each cell input is reported on its own index.

Lab procedure: all channels on the plateau; raise one channel at a time by a distinct step
and read the board: the rise must appear on the same index and nowhere else. A crossed
sense wire shows as the rise on another index (the measurement names where it appeared).
"""

import numpy as np
import pytest

from testplans.procedures import EXACT_COUNT, NO_SCATTER, Cells, board_average, cell_name, plateau_v, settle_s


@pytest.mark.requirement("MAP-001")
def test_cell_mapping(profile, emulator, clock, link, measure):
    """Raising cell i moves reported cell i by the step and no other reported cell."""
    acc = profile.sampling.accuracy_mv
    n = emulator.n_channels
    step_mv = 8.0 * acc  # 40 mV for a ±5 mV board: unmistakable, still below the balancing minimum
    v0 = plateau_v(profile)
    cells = Cells(emulator, np.full(n, v0))
    clock.sleep(settle_s(profile))
    base_r = board_average(link, clock, profile)
    base = base_r.mean_v
    for i in range(n):
        cells.set(i, v0 + step_mv * 1e-3)
        clock.sleep(settle_s(profile))
        step = board_average(link, clock, profile, window_s=2 * max(profile.sampling.period_s, profile.sampling.report_period_s))
        rise = (step.mean_v - base) * 1e3
        # U (k=2) of a rise: the scatter of the two board averages it is the difference of, mV
        u_rise = 2e3 * np.sqrt(base_r.repeatability_u_v ** 2 + step.repeatability_u_v ** 2)
        cells.set(i, v0)
        where = int(np.argmax(rise))
        others = np.delete(rise, i)
        cond = {"step_mv": step_mv, "rise_seen_on_cell": where + 1}
        measure(f"{cell_name(i)}_reported_on_cell", where + 1, "1", limits=(i + 1, i + 1), u_reason=EXACT_COUNT, conditions=cond)
        measure(f"{cell_name(i)}_mapping_rise_mv", rise[i], "mV", limits=(step_mv - acc, step_mv + acc),
                uncertainty=float(u_rise[i]), u_reason=NO_SCATTER, conditions=cond)
        measure(f"{cell_name(i)}_crosstalk_mv", float(np.max(np.abs(others))), "mV", limits=(None, acc),
                uncertainty=float(np.max(np.delete(u_rise, i))), u_reason=NO_SCATTER,
                conditions={**cond, "worst_other_cell": int(np.delete(np.arange(n), i)[np.argmax(np.abs(others))]) + 1})
    clock.sleep(settle_s(profile))
