"""LVC: low-voltage cut-off, channel by channel (LVC-001, LVC-002).

The same procedure as HVC, downwards, with the pack source discharging: each cell is ramped
slowly down across the LVC tolerance band until the discharge FET opens (reference DAQ
edge), released through a staircase (first, middle, last channel) and stepped across the
threshold for the latency.
"""

import numpy as np
import pytest

from testplans.procedures import LVC, cell_name, characterise_cutoff


@pytest.fixture(scope="module")
def lvc_run(session_rig):
    """The LVC characterisation of every channel (run once for this plan)."""
    rig = session_rig
    rig.baseline()
    try:
        return characterise_cutoff(LVC, rig.profile, rig.emulator, rig.pack_source, rig.clock, rig.link, rig.daq)
    finally:
        rig.pack_source.off()


def _conditions(run, ch):
    return {"cell": ch + 1, "ramp_mv_per_s": round(run.rate_v_per_s * 1e3, 3), "pack_current_a": run.pack_current_a}


@pytest.mark.requirement("LVC-001")
def test_lvc_threshold(profile, lvc_run, measure, capture):
    """Each channel trips the discharge FET within tolerance of the LVC threshold, within the
    latency limit; the discharge current stops; the link's LVC flag agrees with the FET."""
    cut = profile.protection.lvc
    tol = cut.threshold_tolerance_mv
    i_lim = 0.01 * abs(lvc_run.pack_current_a)
    lag = profile.sampling.period_s + 2 * profile.link.poll_s
    for r in lvc_run.channels:
        cond = _conditions(lvc_run, r.channel)
        name = cell_name(r.channel)
        err = None if r.trip_v is None else (r.trip_v - cut.threshold_v) * 1e3
        if r.early_trip:
            err = tol + 5.0  # tripped above the whole tolerance band
        measure(f"{name}_lvc_trip_error_mv", err, "mV", limits=(-tol, tol),
                uncertainty=lvc_run.u_threshold_v * 1e3, conditions=cond)
        measure(f"{name}_lvc_latency_s", r.latency_s, "s", limits=(0.0, cut.latency_max_s), uncertainty=1e-3,
                conditions=cond)
        measure(f"{name}_discharge_current_after_lvc_a", r.current_after_trip_a, "A", limits=(-i_lim, i_lim),
                uncertainty=1e-3, conditions=cond)
        measure(f"{name}_lvc_link_samples", r.n_samples, "1", limits=(1, None), conditions=cond)
        measure(f"{name}_lvc_flag_vs_fet_mismatches", r.flag_fet_mismatch, "1", limits=(0, 0), conditions=cond)
        measure(f"{name}_lvc_fet_vs_daq_mismatches", r.flag_daq_mismatch, "1", limits=(0, 0), conditions=cond)
        measure(f"{name}_lvc_flag_delay_s", r.flag_delay_s, "s", limits=(-lag, lag), conditions=cond)
    r0 = lvc_run.channels[0]
    if r0.timing:
        t, v, fet, flag = (np.array(x, dtype=float) for x in zip(*r0.timing))
        capture("lvc_timing", {"t_s": t, "cell_v": v, "threshold_v": np.full(len(t), cut.threshold_v),
                               "discharge_fet": fet, "flag": flag},
                {"t_s": "s", "cell_v": "V", "threshold_v": "V", "discharge_fet": "1", "flag": "1"},
                kind="lvc_timing", meta={"cell": r0.channel + 1})


@pytest.mark.requirement("LVC-002")
def test_lvc_recovery(profile, lvc_run, measure):
    """Recovery at threshold + hysteresis (staircase on first/middle/last channel) after the
    recovery time (every release)."""
    cut = profile.protection.lvc
    for r in lvc_run.channels:
        cond = _conditions(lvc_run, r.channel)
        name = cell_name(r.channel)
        if r.channel in lvc_run.hysteresis_channels:
            hyst = None if r.release_v is None else (r.release_v - cut.threshold_v) * 1e3
            measure(f"{name}_lvc_hysteresis_mv", hyst, "mV",
                    limits=(cut.hysteresis_mv - cut.hysteresis_tolerance_mv, cut.hysteresis_mv + cut.hysteresis_tolerance_mv),
                    uncertainty=(r.release_u_v or 0.0) * 1e3, conditions=cond)
        rec = r.recovery_s or [None]
        for k, t in enumerate(rec):
            measure(f"{name}_lvc_recovery_s", t, "s",
                    limits=(cut.recovery_s - cut.recovery_tolerance_s, cut.recovery_s + cut.recovery_tolerance_s),
                    uncertainty=1e-3, conditions={**cond, "release": k + 1})
