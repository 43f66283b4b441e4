"""Bleed timing and balancing rules (BAL-001..006).

Near the top of charge (every cell at the temperature-compensated balancing minimum plus a
margin; a board that starts by absolute voltage: below its stop level) one or more cells are
raised above the start (:func:`testplans.procedures.balancing_levels`), in a pack state the
profile allows balancing in (:func:`testplans.procedures.enter_balancing_state`: at rest, or
with the charge current flowing for a board that balances only while charging); the board's balancing mask (link)
and the bleed currents it draws (cell emulator channel currents) are watched on the rig
clock. Idle channel currents (the board's supply draw) are measured first, with balancing
off, and subtracted: a bleed is the current above that common idle draw.
"""

import numpy as np
import pytest

from testplans.groups import both_parities, bleed_groups, most_in_a_group
from testplans.procedures import (
    EXACT_COUNT,
    Cells,
    adjacent_pairs,
    balancing_levels,
    board_average,
    cell_name,
    cell_temperature_c,
    cells_text,
    enter_balancing_state,
    pack_current_in,
    most_channels,
    not_reported,
    observe,
    observe_window,
    reference_voltages,
    settle_s,
    wait_sample,
)
from testplans.currents import idle_currents, mean_currents, on_currents


def off_limit_ma(profile) -> float:
    """Largest current a non-bleeding channel may draw above the common idle draw, mA
    (5 % of the lowest allowed bleed current)."""
    return 0.05 * profile.balancing.bleed_current_ma[0]


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
def test_balancing_start(profile, emulator, pack_source, clock, link, measure):
    """Below the start (delta, or absolute level) nothing bleeds; above it, balancing starts
    within the start latency on the high cell."""
    b = profile.balancing
    n = emulator.n_channels
    state = enter_balancing_state(profile, pack_source)
    lv = balancing_levels(profile, link)
    base = lv.base_v
    k = n // 2
    cells = Cells(emulator, np.full(n, base))
    clock.sleep(settle_s(profile))
    # just below the start: must not start (watch two decision intervals + latency)
    below = (lv.start_v - lv.margin_v - base) * 1e3
    cells.set(k, base + below * 1e-3)
    samples = observe_window(link, clock, profile, b.start_latency_max_s + 2 * b.interval_s,
                             f"no balancing below the start delta on cell {k + 1}")
    early = most_channels(samples)
    measure("channels_balancing_below_start_delta", early, "1", limits=(0, 0),
            u_reason=EXACT_COUNT, conditions={"cell": k + 1, "delta_mv": below, "base_v": round(base, 4), **state})
    # above the start: must start within the latency
    above = (lv.high_v - base) * 1e3
    t1 = clock.now()
    cells.set(k, base + above * 1e-3)
    s = wait_sample(link, clock, lambda s: bool(s.balancing[k]), b.start_latency_max_s + 2 * b.interval_s,
                    f"balancing to start on cell {k + 1}")
    latency = None if s is None else s.t - t1
    measure("bleed_start_latency_s", latency, "s", limits=(0, b.start_latency_max_s),
            uncertainty=profile.link.poll_s, conditions={"cell": k + 1, "delta_mv": above, "base_v": round(base, 4), **state})


@pytest.mark.requirement("BAL-002")
def test_bleed_current(profile, emulator, pack_source, clock, link, measure):
    """Every channel in turn (non-adjacent groups): bleed current within the spec range while
    selected; no current above idle on channels not selected; no bleed when idle.

    A board that does not report its balancing mask is given the start (stop) latency limit
    to act, and the rig's own observation (emulator channel currents) says what bleeds; the
    conditions say so."""
    b = profile.balancing
    n = emulator.n_channels
    lo, hi = b.bleed_current_ma
    lim = off_limit_ma(profile)
    state = enter_balancing_state(profile, pack_source)
    lv = balancing_levels(profile, link)
    base = lv.base_v
    cells = Cells(emulator, np.full(n, base))
    clock.sleep(settle_s(profile))
    common = _idle(emulator, clock, measure, profile)
    no_mask = not_reported(link, "balancing")
    for g in bleed_groups(profile, n):
        v = np.full(n, base)
        v[g] = lv.high_v
        cells.set_all(v)
        if no_mask:
            observe(clock, profile, b.start_latency_max_s + b.interval_s)
            selected = g
        else:
            s = wait_sample(link, clock, lambda s: bool(np.all(s.balancing[g])),
                            b.start_latency_max_s + 2 * b.interval_s, f"balancing on cells {cells_text(g)}")
            selected = g if s is None else np.asarray(s.balancing, bool)
        i_on = on_currents(emulator, clock, profile) * 1e3 - common
        cond = {"group": cells_text(g), "board_selected": cells_text(selected), **state}
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
def test_balancing_stop(profile, emulator, pack_source, clock, link, measure):
    """While the cell stays above the stop level the cell keeps bleeding; once it is below,
    balancing stops within the stop latency."""
    b = profile.balancing
    n = emulator.n_channels
    state = enter_balancing_state(profile, pack_source)
    lv = balancing_levels(profile, link)
    base = lv.base_v
    k = n // 2
    cells = Cells(emulator, np.full(n, base))
    cells.set(k, lv.high_v)
    s = wait_sample(link, clock, lambda s: bool(s.balancing[k]), b.start_latency_max_s + 2 * b.interval_s,
                    f"balancing to start on cell {k + 1}")
    measure("balancing_started", 0 if s is None else 1, "1", limits=(1, 1), u_reason=EXACT_COUNT,
            conditions={"cell": k + 1, **state})
    # between stop and start: hysteresis, keep bleeding
    mid = 0.5 * (lv.stop_v + lv.start_v - 2 * base) * 1e3
    cells.set(k, base + mid * 1e-3)
    samples = observe_window(link, clock, profile, b.stop_latency_max_s + 2 * b.interval_s,
                             f"cell {k + 1} bleeding above the stop delta")
    off = sum(1 for x in samples if not x.balancing[k])
    measure("samples_not_bleeding_above_stop_delta", off, "1", limits=(0, 0),
            u_reason=EXACT_COUNT, conditions={"cell": k + 1, "delta_mv": mid, "samples": len(samples)})
    # below the stop delta: stop within the latency
    below = max(0.0, (lv.stop_v - base) * 1e3 - (lv.start_v - lv.stop_v) * 1e3 / 2)
    t1 = clock.now()
    cells.set(k, base + below * 1e-3)
    s = wait_sample(link, clock, lambda s: not s.balancing[k], b.stop_latency_max_s + 2 * b.interval_s,
                    f"balancing to stop on cell {k + 1}")
    measure("bleed_stop_latency_s", None if s is None else s.t - t1, "s", limits=(0, b.stop_latency_max_s),
            uncertainty=profile.link.poll_s, conditions={"cell": k + 1, "delta_mv": below})


@pytest.mark.requirement("BAL-004")
def test_no_balancing_on_plateau(profile, emulator, pack_source, clock, link, measure):
    """Mid SOC on the plateau (every cell below the balancing minimum), one cell 100 mV
    high: nothing bleeds (the plateau voltage says nothing about SOC)."""
    b = profile.balancing
    n = emulator.n_channels
    acc = profile.sampling.accuracy_mv
    high = b.min_cell_v_at(cell_temperature_c(link.latest(), profile)) - 3 * acc * 1e-3
    delta = max(100.0, 3 * b.start_delta_mv)
    k = n // 2
    state = enter_balancing_state(profile, pack_source)
    v = np.full(n, high - delta * 1e-3)
    v[k] = high
    Cells(emulator, v)
    clock.sleep(settle_s(profile))
    common = float(np.median(idle_currents(emulator, clock)))
    samples = observe_window(link, clock, profile, b.start_latency_max_s + 2 * b.interval_s,
                             "no balancing on the plateau")
    i_mean = mean_currents(emulator, clock, 2 * b.interval_s) * 1e3 - common * 1e3
    cond = {"cell": k + 1, "cell_v": round(high, 4), "delta_mv": delta, **state}
    no_mask = not_reported(link, "balancing")
    if no_mask:  # the emulator's channel currents alone say whether anything bleeds
        cond["balancing_mask"] = f"rig observation: emulator channel currents ({no_mask})"
    else:
        measure("channels_balancing_on_plateau", most_channels(samples), "1", limits=(0, 0), u_reason=EXACT_COUNT,
                conditions=cond)
    measure("bleed_current_on_plateau_ma", float(np.max(i_mean)), "mA", limits=(None, off_limit_ma(profile)),
            uncertainty=0.1, conditions={**cond, "worst_cell": int(np.argmax(i_mean)) + 1})


@pytest.mark.requirement("BAL-005")
def test_no_adjacent_channels(profile, emulator, pack_source, clock, link, measure):
    """Every cell but one high (all candidates): at every link sample and in the emulator's
    currents, never two adjacent channels (unless the profile allows it), never more than
    max_channels at once nor more than max_per_group in one group, and (interleave odd_even)
    never odd and even channels together."""
    b = profile.balancing
    n = emulator.n_channels
    state = enter_balancing_state(profile, pack_source)
    lv = balancing_levels(profile, link)
    base = lv.base_v
    low = 0
    v = np.full(n, lv.high_v)
    v[low] = base
    Cells(emulator, v)
    common = float(np.median(idle_currents(emulator, clock, window_s=0.5))) * 1e3
    samples = observe_window(link, clock, profile, b.start_latency_max_s + 4 * b.interval_s,
                             "balancing mask with every cell but one high")
    no_mask = not_reported(link, "balancing")
    # emulator: which channels conduct, sampled at several instants over two intervals
    conducting_max, conducting_adj, conducting_group, conducting_both = 0, 0, 0, 0
    thr = 0.5 * b.bleed_current_ma[0]
    s = profile.sampling
    aperture = max(1e-4, 0.2 * s.mute_s)
    for _ in range(16):  # instantaneous snapshots (each one instant), spread over intervals
        observe(clock, profile, b.interval_s / 3 + 0.013)
        on = (np.asarray(emulator.read_currents(aperture_s=aperture)) * 1e3 - common) > thr
        conducting_max = max(conducting_max, int(np.sum(on)))
        conducting_adj = max(conducting_adj, adjacent_pairs(on))
        conducting_group = max(conducting_group, most_in_a_group(profile, on))
        conducting_both = max(conducting_both, both_parities(on))
    cond = {"candidates": n - 1, "samples": len(samples), **state}
    groups = b.group_cells is not None
    odd_even = b.interleave == "odd_even" and not b.allow_adjacent
    adj_lim = None if b.allow_adjacent else 0
    if no_mask:  # judged on the rig's observation alone
        cond["balancing_mask"] = f"rig observation: emulator channel currents ({no_mask})"
    else:
        counts = [int(np.sum(s.balancing)) for s in samples]
        adj = [adjacent_pairs(s.balancing) for s in samples]
        measure("max_channels_balancing_link", max(counts), "1", limits=(1, b.max_channels), u_reason=EXACT_COUNT,
                conditions=cond)
        measure("adjacent_pairs_balancing_link", max(adj), "1", limits=(0, adj_lim), u_reason=EXACT_COUNT, conditions=cond)
        if groups:
            measure("max_per_group_balancing_link", max(most_in_a_group(profile, s.balancing) for s in samples), "1",
                    limits=(0, b.most_per_group()), u_reason=EXACT_COUNT, conditions={**cond, "group_cells": b.group_cells})
        if odd_even:
            measure("odd_and_even_together_link", max(both_parities(s.balancing) for s in samples), "1", limits=(0, 0),
                    u_reason=EXACT_COUNT, conditions=cond)
    measure("max_channels_conducting_emulator", conducting_max, "1", limits=(1, b.max_channels), u_reason=EXACT_COUNT,
            conditions=cond)
    measure("adjacent_pairs_conducting_emulator", conducting_adj, "1", limits=(0, adj_lim), u_reason=EXACT_COUNT,
            conditions=cond)
    if groups:
        measure("max_per_group_conducting_emulator", conducting_group, "1", limits=(0, b.most_per_group()),
                u_reason=EXACT_COUNT, conditions={**cond, "group_cells": b.group_cells})
    if odd_even:
        measure("odd_and_even_together_emulator", conducting_both, "1", limits=(0, 0), u_reason=EXACT_COUNT,
                conditions=cond)


@pytest.mark.requirement("BAL-006")
@pytest.mark.reports("balancing")
@pytest.mark.needs("daq")
def test_balancing_pauses_for_measurement(profile, emulator, pack_source, clock, link, daq, measure):
    """While cells bleed, their reported voltages still agree with the reference DAQ within
    the accuracy spec (a board that samples while bleeding reads low by the IR drop)."""
    b = profile.balancing
    acc = profile.sampling.accuracy_mv
    n = emulator.n_channels
    state = enter_balancing_state(profile, pack_source)
    lv = balancing_levels(profile, link)
    g = bleed_groups(profile, n)[0]
    v = np.full(n, lv.base_v)
    v[g] = lv.high_v
    Cells(emulator, v)
    s = wait_sample(link, clock, lambda s: bool(np.all(s.balancing[g])), b.start_latency_max_s + 2 * b.interval_s,
                    f"balancing on cells {cells_text(g)}")
    measure("balancing_started", 0 if s is None else 1, "1", limits=(1, 1), u_reason=EXACT_COUNT,
            conditions={"group": cells_text(g), **state})
    reading = board_average(link, clock, profile)
    ref, u_daq = reference_voltages(daq)
    still = all(bool(np.all(x.balancing[g])) for x in reading.samples)
    err = (reading.mean_v - ref) * 1e3
    u = np.sqrt(u_daq ** 2 + (2 * reading.repeatability_u_v) ** 2 + profile.sampling.resolution_u_v ** 2) * 1e3
    for i in np.flatnonzero(g):
        measure(f"{cell_name(i)}_error_while_bleeding_mv", err[i], "mV", limits=(-acc, acc), uncertainty=u[i],
                conditions={"cell_v": round(float(ref[i]), 4), "bleeding_throughout": still})


@pytest.mark.requirement("BAL-010")
def test_balancing_states(profile, emulator, pack_source, clock, link, measure):
    """In every pack state the profile excludes from balancing (``balancing.strategies`` duty
    0: e.g. rest for a board that balances only while charging), one cell clearly above the
    start: nothing bleeds (link mask, and the emulator's channel currents). Then, in the
    state the profile allows, the same cell bleeds (the excluded states were not judged on a
    board that cannot balance at all)."""
    b = profile.balancing
    st = b.strategies
    excluded = [x for x in ("rest", "charge", "float", "discharge") if st.duty(x) == 0.0
                and not (x == "float" and st.float_current_a <= st.rest_current_a)]
    if not excluded:
        pytest.skip("not applicable: the profile declares balancing in every pack state")
    n = emulator.n_channels
    lv = balancing_levels(profile, link)
    k = n // 2
    v = np.full(n, lv.base_v)
    v[k] = lv.high_v
    cells = Cells(emulator, np.full(n, lv.base_v))
    clock.sleep(settle_s(profile))
    common = float(np.median(idle_currents(emulator, clock))) * 1e3
    no_mask = not_reported(link, "balancing")
    for state in excluded:
        cond = enter_balancing_state(profile, pack_source, state)
        cells.set_all(v)
        samples = observe_window(link, clock, profile, b.start_latency_max_s + 2 * b.interval_s,
                                 f"no balancing while the pack is in {state}")
        i_mean = mean_currents(emulator, clock, 2 * b.interval_s) * 1e3 - common
        cond = {**cond, "cell": k + 1, "cell_v": round(float(v[k]), 4)}
        if no_mask:
            cond["balancing_mask"] = f"rig observation: emulator channel currents ({no_mask})"
        else:
            measure(f"channels_balancing_in_{state}", most_channels(samples), "1", limits=(0, 0),
                    u_reason=EXACT_COUNT, conditions=cond)
        measure(f"bleed_current_in_{state}_ma", float(np.max(i_mean)), "mA", limits=(None, off_limit_ma(profile)),
                uncertainty=0.1, conditions={**cond, "worst_cell": int(np.argmax(i_mean)) + 1})
        cells.set_all(np.full(n, lv.base_v))
        observe(clock, profile, b.stop_latency_max_s + b.interval_s)
    cond = enter_balancing_state(profile, pack_source)
    cells.set_all(v)
    observe(clock, profile, b.start_latency_max_s + b.interval_s)
    i_on = on_currents(emulator, clock, profile, span_s=2 * b.interval_s) * 1e3 - common
    measure("bleed_current_in_allowed_state_ma", float(i_on[k]), "mA", limits=tuple(b.bleed_current_ma),
            uncertainty=float(0.005 * abs(i_on[k]) + 0.1),
            conditions={**cond, "cell": k + 1, "pack_current_states": {x: pack_current_in(profile, x) for x in excluded}})
