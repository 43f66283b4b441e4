"""LVC: low-voltage cut-off, channel by channel (LVC-001, LVC-002).

The same procedure as HVC, downwards, with the pack source discharging: each cell is ramped
slowly down across the LVC tolerance band until the discharge FET opens (reference DAQ
edge), released through a staircase (first, middle, last channel) and stepped across the
threshold for the latency.
"""

import pytest

from testplans.cutoff import LATENCY_U_S, LVC, capture_cutoff_timing, characterise_cutoff_on, judge_cutoff_recovery, run_conditions
from testplans.procedures import EXACT_COUNT, cell_name, not_reported


@pytest.fixture(scope="module")
def lvc_run(session_rig, tier):
    """The LVC characterisation of every channel (run once for this plan)."""
    return characterise_cutoff_on(session_rig, LVC, tier)


@pytest.mark.requirement("LVC-001")
def test_lvc_threshold(profile, lvc_run, session_rig, measure, capture):
    """Each channel trips the discharge FET within tolerance of the LVC threshold, within the
    latency limit; the discharge current stops; the link's LVC flag and discharge FET agree with
    the DAQ line (not verified, and said so in the conditions, when the board does not report
    the flag or the FET)."""
    cut = profile.protection.lvc
    tol = cut.threshold_tolerance_mv
    i_lim = 0.01 * abs(lvc_run.pack_current_a)
    lag = profile.sampling.period_s + 2 * profile.link.poll_s
    flag_why = not_reported(session_rig.link, "lvc")  # the characterisation's rig: no reset before judging
    fet_why = not_reported(session_rig.link, "discharge_fet")  # the trip itself is judged on the DAQ line
    for r in lvc_run.channels:
        cond = run_conditions(lvc_run, r.channel)
        if flag_why:
            cond = {**cond, "lvc_flag": flag_why}
        if fet_why:
            cond = {**cond, "discharge_fet": fet_why}
        name = cell_name(r.channel)
        err = None if r.trip_v is None else (r.trip_v - cut.threshold_v) * 1e3
        if r.early_trip:
            err = tol + 5.0  # tripped above the whole tolerance band
        measure(f"{name}_lvc_trip_error_mv", err, "mV", limits=(-tol, tol),
                uncertainty=lvc_run.u_threshold_v * 1e3, conditions=cond)
        measure(f"{name}_lvc_latency_s", r.latency_s, "s", limits=(0.0, cut.latency_max_s), uncertainty=LATENCY_U_S,
                conditions=cond)
        measure(f"{name}_discharge_current_after_lvc_a", r.current_after_trip_a, "A", limits=(-i_lim, i_lim),
                uncertainty=1e-3, conditions=cond)
        measure(f"{name}_lvc_link_samples", r.n_samples, "1", limits=(1, None), u_reason=EXACT_COUNT, conditions=cond)
        if not (flag_why or fet_why):
            measure(f"{name}_lvc_flag_vs_fet_mismatches", r.flag_fet_mismatch, "1", limits=(0, 0), u_reason=EXACT_COUNT,
                    conditions=cond)
        if not fet_why:
            measure(f"{name}_lvc_fet_vs_daq_mismatches", r.flag_daq_mismatch, "1", limits=(0, 0), u_reason=EXACT_COUNT,
                    conditions=cond)
        if not flag_why:
            measure(f"{name}_lvc_flag_delay_s", r.flag_delay_s, "s", limits=(-lag, lag),
                    uncertainty=profile.link.poll_s, conditions=cond)  # U: one link poll period
    capture_cutoff_timing(lvc_run, cut, capture)


@pytest.mark.requirement("LVC-002")
def test_lvc_recovery(profile, lvc_run, measure):
    """Recovery at threshold + hysteresis (staircase on first/middle/last channel) after the
    recovery time (every release)."""
    judge_cutoff_recovery(lvc_run, profile.protection.lvc, measure)
