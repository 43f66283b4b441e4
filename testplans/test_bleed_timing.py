"""Bleed timing and balancing rules (BAL-001..006).

Near the top of charge (every cell at the temperature-compensated balancing minimum plus a
margin) one or more cells are raised above the others; the board's balancing mask (link)
and the bleed currents it draws (cell emulator channel currents) are watched on the rig
clock. Idle channel currents (the board's supply draw) are measured first, with balancing
off, and subtracted: a bleed is the current above that common idle draw.
"""

import numpy as np
import pytest

from testplans.procedures import (
    EXACT_COUNT,
    Cells,
    adjacent_pairs,
    board_average,
    cell_name,
    cell_temperature_c,
    cells_text,
    idle_currents,
    imbalance_mv,
    mean_currents,
    most_channels,
    not_reported,
    observe,
    observe_window,
    on_currents,
    reference_voltages,
    settle_s,
    top_of_charge_v,
    wait_sample,
)


def off_limit_ma(profile) -> float:
    """Largest current a non-bleeding channel may draw above the common idle draw, mA
    (5 % of the lowest allowed bleed current)."""
    return 0.05 * profile.balancing.bleed_current_ma[0]


def bleed_groups(profile, n: int, skip: int | None = None) -> list[np.ndarray]:
    """Channel sets the board may bleed together: alternate (non-adjacent) channels, in chunks
    of at most max_channels; together they cover every channel (except ``skip``)."""
    b = profile.balancing
    groups = []
    for parity in (0, 1):
        idx = [i for i in range(parity, n, 2) if i != skip]
        for k in range(0, len(idx), b.max_channels):
            m = np.zeros(n, bool)
            m[idx[k:k + b.max_channels]] = True
            groups.append(m)
    return groups


def _idle(emulator, clock, measure, profile):
    """Idle channel currents (balancing off): a channel drawing more than its neighbours is a
    bleed switch that conducts when it should not."""
    idle = idle_currents(emulator, clock) * 1e3
    common = float(np.median(idle))
    lim = off_limit_ma(profile)
    for i, x in enumerate(idle):
        measure(f"{cell_name(i)}_idle_current_excess_ma", x - common, "mA", limits=(-lim, lim),
                uncertainty=0.1, conditions={"balancing": "off", "common_idle_ma": round(common, 4)})
    return common


@pytest.mark.requirement("BAL-001")
@pytest.mark.reports("balancing")
def test_balancing_start(profile, emulator, clock, link, measure):
    """Below the start delta nothing bleeds; above it, balancing starts within the start
    latency on the high cell."""
    b = profile.balancing
    n = emulator.n_channels
    base = top_of_charge_v(profile, link)
    k = n // 2
    cells = Cells(emulator, np.full(n, base))
    clock.sleep(settle_s(profile))
    # just below the start delta: must not start (watch two decision intervals + latency)
    below = b.start_delta_mv - 2.0 * profile.sampling.accuracy_mv
    cells.set(k, base + below * 1e-3)
    samples = observe_window(link, clock, profile, b.start_latency_max_s + 2 * b.interval_s,
                             f"no balancing below the start delta on cell {k + 1}")
    early = most_channels(samples)
    measure("channels_balancing_below_start_delta", early, "1", limits=(0, 0),
            u_reason=EXACT_COUNT, conditions={"cell": k + 1, "delta_mv": below, "base_v": round(base, 4)})
    # above the start delta: must start within the latency
    above = imbalance_mv(profile)
    t1 = clock.now()
    cells.set(k, base + above * 1e-3)
    s = wait_sample(link, clock, lambda s: bool(s.balancing[k]), b.start_latency_max_s + 2 * b.interval_s,
                    f"balancing to start on cell {k + 1}")
    latency = None if s is None else s.t - t1
    measure("bleed_start_latency_s", latency, "s", limits=(0, b.start_latency_max_s),
            uncertainty=profile.link.poll_s, conditions={"cell": k + 1, "delta_mv": above, "base_v": round(base, 4)})


@pytest.mark.requirement("BAL-002")
def test_bleed_current(profile, emulator, clock, link, measure):
    """Every channel in turn (non-adjacent groups): bleed current within the spec range while
    selected; no current above idle on channels not selected; no bleed when idle.

    A board that does not report its balancing mask is given the start (stop) latency limit
    to act, and the rig's own observation (emulator channel currents) says what bleeds; the
    conditions say so."""
    b = profile.balancing
    n = emulator.n_channels
    lo, hi = b.bleed_current_ma
    lim = off_limit_ma(profile)
    base = top_of_charge_v(profile, link)
    cells = Cells(emulator, np.full(n, base))
    clock.sleep(settle_s(profile))
    common = _idle(emulator, clock, measure, profile)
    no_mask = not_reported(link, "balancing")
    for g in bleed_groups(profile, n):
        v = np.full(n, base)
        v[g] = base + imbalance_mv(profile) * 1e-3
        cells.set_all(v)
        if no_mask:
            observe(clock, profile, b.start_latency_max_s + b.interval_s)
            selected = g
        else:
            s = wait_sample(link, clock, lambda s: bool(np.all(s.balancing[g])),
                            b.start_latency_max_s + 2 * b.interval_s, f"balancing on cells {cells_text(g)}")
            selected = g if s is None else np.asarray(s.balancing, bool)
        i_on = on_currents(emulator, clock, profile) * 1e3 - common
        cond = {"group": cells_text(g), "board_selected": cells_text(selected)}
        if no_mask:
            cond["board_selected"] = f"rig observation: emulator channel currents ({no_mask})"
        for i in np.flatnonzero(g):
            measure(f"{cell_name(i)}_bleed_current_ma", i_on[i], "mA", limits=(lo, hi),
                    uncertainty=float(0.005 * abs(i_on[i]) + 0.1), conditions={**cond, "cell_v": round(float(v[i]), 4)})
        for i in np.flatnonzero(~selected):
            measure(f"{cell_name(i)}_current_while_not_bleeding_ma", i_on[i], "mA", limits=(-lim, lim),
                    uncertainty=0.1, conditions=cond)
        cells.set_all(np.full(n, base))
        if no_mask:
            observe(clock, profile, b.stop_latency_max_s + b.interval_s)
        else:
            wait_sample(link, clock, lambda s: not s.balancing.any(), b.stop_latency_max_s + 2 * b.interval_s,
                        "balancing to stop")


@pytest.mark.requirement("BAL-003")
@pytest.mark.reports("balancing")
def test_balancing_stop(profile, emulator, clock, link, measure):
    """While the delta stays above the stop delta the cell keeps bleeding; once it is below,
    balancing stops within the stop latency."""
    b = profile.balancing
    n = emulator.n_channels
    base = top_of_charge_v(profile, link)
    k = n // 2
    cells = Cells(emulator, np.full(n, base))
    cells.set(k, base + imbalance_mv(profile) * 1e-3)
    s = wait_sample(link, clock, lambda s: bool(s.balancing[k]), b.start_latency_max_s + 2 * b.interval_s,
                    f"balancing to start on cell {k + 1}")
    measure("balancing_started", 0 if s is None else 1, "1", limits=(1, 1), u_reason=EXACT_COUNT, conditions={"cell": k + 1})
    # between stop and start delta: hysteresis, keep bleeding
    mid = 0.5 * (b.stop_delta_mv + b.start_delta_mv)
    cells.set(k, base + mid * 1e-3)
    samples = observe_window(link, clock, profile, b.stop_latency_max_s + 2 * b.interval_s,
                             f"cell {k + 1} bleeding above the stop delta")
    off = sum(1 for x in samples if not x.balancing[k])
    measure("samples_not_bleeding_above_stop_delta", off, "1", limits=(0, 0),
            u_reason=EXACT_COUNT, conditions={"cell": k + 1, "delta_mv": mid, "samples": len(samples)})
    # below the stop delta: stop within the latency
    below = max(0.0, b.stop_delta_mv - (b.start_delta_mv - b.stop_delta_mv) / 2)
    t1 = clock.now()
    cells.set(k, base + below * 1e-3)
    s = wait_sample(link, clock, lambda s: not s.balancing[k], b.stop_latency_max_s + 2 * b.interval_s,
                    f"balancing to stop on cell {k + 1}")
    measure("bleed_stop_latency_s", None if s is None else s.t - t1, "s", limits=(0, b.stop_latency_max_s),
            uncertainty=profile.link.poll_s, conditions={"cell": k + 1, "delta_mv": below})


@pytest.mark.requirement("BAL-004")
def test_no_balancing_on_plateau(profile, emulator, clock, link, measure):
    """Mid SOC on the plateau (every cell below the balancing minimum), one cell 100 mV
    high: nothing bleeds (the plateau voltage says nothing about SOC)."""
    b = profile.balancing
    n = emulator.n_channels
    acc = profile.sampling.accuracy_mv
    high = b.min_cell_v_at(cell_temperature_c(link.latest(), profile)) - 3 * acc * 1e-3
    delta = max(100.0, 3 * b.start_delta_mv)
    k = n // 2
    v = np.full(n, high - delta * 1e-3)
    v[k] = high
    Cells(emulator, v)
    clock.sleep(settle_s(profile))
    common = float(np.median(idle_currents(emulator, clock)))
    samples = observe_window(link, clock, profile, b.start_latency_max_s + 2 * b.interval_s,
                             "no balancing on the plateau")
    i_mean = mean_currents(emulator, clock, 2 * b.interval_s) * 1e3 - common * 1e3
    cond = {"cell": k + 1, "cell_v": round(high, 4), "delta_mv": delta}
    no_mask = not_reported(link, "balancing")
    if no_mask:  # the emulator's channel currents alone say whether anything bleeds
        cond["balancing_mask"] = f"rig observation: emulator channel currents ({no_mask})"
    else:
        measure("channels_balancing_on_plateau", most_channels(samples), "1", limits=(0, 0), u_reason=EXACT_COUNT,
                conditions=cond)
    measure("bleed_current_on_plateau_ma", float(np.max(i_mean)), "mA", limits=(None, off_limit_ma(profile)),
            uncertainty=0.1, conditions={**cond, "worst_cell": int(np.argmax(i_mean)) + 1})


@pytest.mark.requirement("BAL-005")
def test_no_adjacent_channels(profile, emulator, clock, link, measure):
    """Every cell but one high (all candidates): at every link sample and in the emulator's
    currents, never two adjacent channels (unless the profile allows it) and never more than
    max_channels at once."""
    b = profile.balancing
    n = emulator.n_channels
    base = top_of_charge_v(profile, link)
    low = 0
    v = np.full(n, base + imbalance_mv(profile) * 1e-3)
    v[low] = base
    Cells(emulator, v)
    common = float(np.median(idle_currents(emulator, clock, window_s=0.5))) * 1e3
    samples = observe_window(link, clock, profile, b.start_latency_max_s + 4 * b.interval_s,
                             "balancing mask with every cell but one high")
    no_mask = not_reported(link, "balancing")
    # emulator: which channels conduct, sampled at several instants over two intervals
    conducting_max, conducting_adj = 0, 0
    thr = 0.5 * b.bleed_current_ma[0]
    s = profile.sampling
    aperture = max(1e-4, 0.2 * s.mute_s)
    for _ in range(16):  # instantaneous snapshots (each one instant), spread over intervals
        observe(clock, profile, b.interval_s / 3 + 0.013)
        on = (np.asarray(emulator.read_currents(aperture_s=aperture)) * 1e3 - common) > thr
        conducting_max = max(conducting_max, int(np.sum(on)))
        conducting_adj = max(conducting_adj, adjacent_pairs(on))
    cond = {"candidates": n - 1, "samples": len(samples)}
    adj_lim = None if b.allow_adjacent else 0
    if no_mask:  # judged on the rig's observation alone
        cond["balancing_mask"] = f"rig observation: emulator channel currents ({no_mask})"
    else:
        counts = [int(np.sum(s.balancing)) for s in samples]
        adj = [adjacent_pairs(s.balancing) for s in samples]
        measure("max_channels_balancing_link", max(counts), "1", limits=(1, b.max_channels), u_reason=EXACT_COUNT,
                conditions=cond)
        measure("adjacent_pairs_balancing_link", max(adj), "1", limits=(0, adj_lim), u_reason=EXACT_COUNT, conditions=cond)
    measure("max_channels_conducting_emulator", conducting_max, "1", limits=(1, b.max_channels), u_reason=EXACT_COUNT,
            conditions=cond)
    measure("adjacent_pairs_conducting_emulator", conducting_adj, "1", limits=(0, adj_lim), u_reason=EXACT_COUNT,
            conditions=cond)


@pytest.mark.requirement("BAL-006")
@pytest.mark.reports("balancing")
@pytest.mark.needs("daq")
def test_balancing_pauses_for_measurement(profile, emulator, clock, link, daq, measure):
    """While cells bleed, their reported voltages still agree with the reference DAQ within
    the accuracy spec (a board that samples while bleeding reads low by the IR drop)."""
    b = profile.balancing
    acc = profile.sampling.accuracy_mv
    n = emulator.n_channels
    base = top_of_charge_v(profile, link)
    g = bleed_groups(profile, n)[0]
    v = np.full(n, base)
    v[g] = base + imbalance_mv(profile) * 1e-3
    Cells(emulator, v)
    s = wait_sample(link, clock, lambda s: bool(np.all(s.balancing[g])), b.start_latency_max_s + 2 * b.interval_s,
                    f"balancing on cells {cells_text(g)}")
    measure("balancing_started", 0 if s is None else 1, "1", limits=(1, 1), u_reason=EXACT_COUNT, conditions={"group": cells_text(g)})
    reading = board_average(link, clock, profile)
    ref, u_daq = reference_voltages(daq)
    still = all(bool(np.all(x.balancing[g])) for x in reading.samples)
    err = (reading.mean_v - ref) * 1e3
    u = np.sqrt(u_daq ** 2 + (2 * reading.repeatability_u_v) ** 2) * 1e3
    for i in np.flatnonzero(g):
        measure(f"{cell_name(i)}_error_while_bleeding_mv", err[i], "mV", limits=(-acc, acc), uncertainty=u[i],
                conditions={"cell_v": round(float(ref[i]), 4), "bleeding_throughout": still})
