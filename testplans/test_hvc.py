"""HVC: high-voltage cut-off, channel by channel (HVC-001..004).

Lab procedure (see :func:`testplans.cutoff.characterise_cutoff`): every cell but one
rests on the plateau, the pack source charges, and the cell under test is ramped slowly
(~2 mV/s) across the threshold's tolerance band until the charge FET opens (reference DAQ
edge, 1 ms resolution). The cell is stepped back below the release band (hysteresis
staircase on the first, middle and last channel), then stepped across the threshold for
the latency. The four tests judge one characterisation run.
"""

import pytest

from testplans.cutoff import LATENCY_U_S, HVC, capture_cutoff_timing, characterise_cutoff_on, judge_cutoff_recovery, run_conditions
from testplans.procedures import EXACT_COUNT, cell_name


@pytest.fixture(scope="module")
def hvc_run(session_rig, tier):
    """The HVC characterisation of every channel (run once for this plan)."""
    return characterise_cutoff_on(session_rig, HVC, tier)


@pytest.mark.requirement("HVC-001")
def test_hvc_threshold(profile, hvc_run, measure):
    """Each channel trips the charge FET within tolerance of the HVC threshold."""
    cut = profile.protection.hvc
    tol = cut.threshold_tolerance_mv
    for r in hvc_run.channels:
        err = None if r.trip_v is None else (r.trip_v - cut.threshold_v) * 1e3
        if r.early_trip:
            err = -(tol + 5.0)  # tripped below the whole tolerance band
        measure(f"{cell_name(r.channel)}_hvc_trip_error_mv", err, "mV", limits=(-tol, tol),
                uncertainty=hvc_run.u_threshold_v * 1e3, conditions=run_conditions(hvc_run, r.channel))


@pytest.mark.requirement("HVC-002")
def test_hvc_latency(profile, hvc_run, measure, capture):
    """The charge FET opens within the latency limit of a step across the threshold, and the
    charge current actually stops."""
    cut = profile.protection.hvc
    i_lim = 0.01 * abs(hvc_run.pack_current_a)
    for r in hvc_run.channels:
        cond = run_conditions(hvc_run, r.channel)
        measure(f"{cell_name(r.channel)}_hvc_latency_s", r.latency_s, "s", limits=(0.0, cut.latency_max_s),
                uncertainty=LATENCY_U_S, conditions=cond)
        measure(f"{cell_name(r.channel)}_charge_current_after_hvc_a", r.current_after_trip_a, "A",
                limits=(-i_lim, i_lim), uncertainty=1e-3, conditions=cond)
    capture_cutoff_timing(hvc_run, cut, capture)


@pytest.mark.requirement("HVC-003")
@pytest.mark.reports("hvc", "charge_fet")  # the flag is compared with the reported FET
def test_hvc_flag(profile, hvc_run, measure):
    """The link's HVC flag agrees with the charge FET (its own report and the DAQ's line)."""
    s = profile.sampling
    lag = s.period_s + 2 * profile.link.poll_s
    for r in hvc_run.channels:
        cond = run_conditions(hvc_run, r.channel)
        name = cell_name(r.channel)
        measure(f"{name}_hvc_link_samples", r.n_samples, "1", limits=(1, None), u_reason=EXACT_COUNT, conditions=cond)
        measure(f"{name}_hvc_flag_vs_fet_mismatches", r.flag_fet_mismatch, "1", limits=(0, 0), u_reason=EXACT_COUNT, conditions=cond)
        measure(f"{name}_hvc_fet_vs_daq_mismatches", r.flag_daq_mismatch, "1", limits=(0, 0), u_reason=EXACT_COUNT, conditions=cond)
        measure(f"{name}_hvc_flag_delay_s", r.flag_delay_s, "s", limits=(-lag, lag),
                uncertainty=profile.link.poll_s, conditions=cond)  # U: one link poll period


@pytest.mark.requirement("HVC-004")
def test_hvc_recovery(profile, hvc_run, measure):
    """Recovery at threshold − hysteresis (staircase on first/middle/last channel) after the
    recovery time (every release)."""
    judge_cutoff_recovery(hvc_run, profile.protection.hvc, measure)
