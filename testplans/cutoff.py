"""HVC/LVC cut-off characterisation: the lab procedure shared by ``test_hvc`` and ``test_lvc``.

Voltage ramps on one emulator channel (:class:`Program`, :func:`ramp_until`), the FET watch
(DAQ line, or the link's FET state when the rig has no DAQ) and the per-channel procedure
(:func:`characterise_cutoff`). Like :mod:`testplans.procedures`, it talks to the rig through
the instrument protocols and the DUT link only, with expectations from the profile; the
link's view of each channel run is judged through :func:`testplans.procedures.window`
(samples covering the run, or a LinkFault). Units: V, A, s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from rig import progress
from rig.errors import WaitTimeout
from testplans.procedures import (
    Cells,
    cell_name,
    daq_uncertainty_v,
    first_sample,
    observe,
    plateau_v,
    poll_s,
    settle_s,
    window,
)

# --------------------------------------------------------------------------- ramps


class Program:
    """The voltage program applied to one emulator channel: piecewise constant set points
    (t, V), in rig time. ``at(t)`` is the commanded voltage at ``t``; ``crossing(level,
    direction)`` the first time the command reached ``level`` going up (+1) or down (-1)."""

    def __init__(self):
        self.t: list[float] = []
        self.v: list[float] = []

    def add(self, t: float, v: float) -> None:
        self.t.append(float(t))
        self.v.append(float(v))

    def at(self, t: float) -> float:
        i = int(np.searchsorted(self.t, t, side="right")) - 1
        return self.v[max(i, 0)]

    def crossing(self, level: float, direction: int, since: float = -math.inf) -> float | None:
        for t, v in zip(self.t, self.v):
            if t >= since and (v - level) * direction >= 0:
                return t
        return None


def ramp_until(cells: "Cells", clock, channel: int, program: Program, v_from: float, v_to: float,
               rate_v_per_s: float, step_s: float, stop, hold_s: float = 0.0) -> bool:
    """Ramp one channel from ``v_from`` to ``v_to`` at ``rate_v_per_s`` in steps of ``step_s``,
    recording every set point in ``program``; then hold ``v_to`` for ``hold_s``.
    ``stop()`` is checked after each step; returns True when it fired."""
    direction = 1.0 if v_to >= v_from else -1.0
    dv = abs(rate_v_per_s) * step_s * direction
    v = v_from
    cells.set(channel, v)
    program.add(clock.now(), v)
    while True:
        clock.sleep(step_s)
        if stop():
            return True
        if (v_to - v) * direction <= 1e-12:
            break
        v = v + dv
        if (v - v_to) * direction > 0:
            v = v_to
        cells.set(channel, v)
        program.add(clock.now(), v)
    return hold_s > 0 and clock_wait(clock, stop, hold_s, step_s)


# --------------------------------------------------------------------------- cut-off characterisation


@dataclass
class CutoffKind:
    """HVC or LVC as a procedure sees it."""

    name: str  # "hvc" | "lvc"
    direction: int  # +1: trips going up (HVC); -1: going down (LVC)
    line: str  # DAQ digital input of the FET it opens
    fet_attr: str  # BmsSample attribute of that FET
    pack_sign: float  # +1 charge (HVC), -1 discharge (LVC)

    def flag(self, sample) -> bool:
        return bool(getattr(sample.flags, self.name))

    def fet_closed(self, sample) -> bool:
        return bool(getattr(sample, self.fet_attr))


HVC = CutoffKind("hvc", +1, "charge_enable", "charge_fet", +1.0)
LVC = CutoffKind("lvc", -1, "discharge_enable", "discharge_fet", -1.0)


@dataclass
class ChannelCutoff:
    """What one channel's cut-off run measured (None: did not happen)."""

    channel: int
    trip_v: float | None = None  # cell voltage (reference) at detection (crossing + delay back)
    trip_t: float | None = None  # FET open edge of the ramp, s
    latency_s: float | None = None  # step across the threshold -> FET open edge, s
    step_t: float | None = None  # rig time of that step, s (the timing plot's origin)
    open_t: float | None = None  # rig time of that FET open edge, s
    current_after_trip_a: float | None = None
    release_v: float | None = None  # staircase: level at which the FET closed again (reference)
    release_u_v: float | None = None
    recovery_s: list = field(default_factory=list)  # step below release (latched: charger removal) -> FET close, s
    recovery_expected_s: list = field(default_factory=list)  # what the profile's recovery rule gives for each, s
    recovery_after_trip_s: list = field(default_factory=list)  # each release's step back, counted from the trip, s
    released_while_connected: int = 0  # latched: releases seen with the charger (load) still connected
    flag_fet_mismatch: int = 0  # link samples whose flag disagrees with their own FET state
    flag_daq_mismatch: int = 0  # link samples whose FET state disagrees with the DAQ line
    flag_delay_s: float | None = None  # first flagged sample - DAQ open edge, s
    n_samples: int = 0
    timing: list = field(default_factory=list)  # (t, cell_v, fet, flag) rows for a capture
    early_trip: bool = False  # FET open before the ramp began


@dataclass
class CutoffRun:
    kind: CutoffKind
    threshold_v: float
    rate_v_per_s: float
    u_threshold_v: float
    pack_current_a: float
    channels: list = field(default_factory=list)
    hysteresis_channels: tuple = ()


class _FetWatch:
    """Where the FET's state and edges come from: the reference DAQ's digital input
    (timestamped to the millisecond) or, without a DAQ, the pack current polled."""

    def __init__(self, kind: CutoffKind, daq, pack_source, clock, threshold_a: float):
        self.kind, self.daq, self.pack_source, self.clock = kind, daq, pack_source, clock
        self.threshold_a = threshold_a
        self._polled: list[tuple[float, bool]] = []

    def closed(self) -> bool:
        if self.daq is not None:
            return bool(self.daq.read_digital(self.kind.line))
        c = abs(self.pack_source.read_current()) > self.threshold_a
        self._polled.append((self.clock.now(), c))
        return c

    def edge(self, since: float, level: bool) -> float | None:
        if self.daq is not None:
            for e in self.daq.edges(since=since, line=self.kind.line):
                if e.level == level:
                    return e.t
            return None
        for t, c in self._polled:
            if t >= since and c == level:
                return t
        return None

    def level_at(self, t: float) -> bool | None:
        if self.daq is None:
            return None
        lvl = True
        for e in self.daq.edges(since=0.0, line=self.kind.line):
            if e.t <= t:
                lvl = e.level
            else:
                break
        return lvl


def characterise_cutoff(kind: CutoffKind, profile, emulator, pack_source, clock, link, daq,
                        channels=None, hysteresis_channels=None) -> CutoffRun:
    """The HVC/LVC lab procedure, channel by channel (cells not under test rest on the plateau).

    Per channel:

    1. approach: the channel to threshold − (tolerance + 5 mV) (on the safe side), settle;
       the reference DAQ gives the channel's true voltage (offset of the command);
    2. slow ramp (profile-derived rate, ~2 mV/s) across the tolerance band until the FET
       opens (DAQ edge); trip voltage = the commanded voltage ``delay_s`` before the edge
       (the board confirms a crossing for ``delay_s``), corrected to the DAQ;
    3. the pack current must be zero after the trip;
    4. release, by the profile's ``recovery`` rule: hysteresis channels (a rule with a
       hysteresis) step down a staircase from release + tolerance in tolerance/4 steps, each
       held longer than recovery time + tolerance, after any lockout has run out — the level
       where the FET closes is the release voltage; other channels step straight below the
       release band at once, *before* a lockout ends (expected recovery: the longer of
       recovery_s and what is left of the lockout); a latched cut-off must hold with the
       charger (load) connected, then release after its removal (recovery timed from it);
    5. latency: from the safe side, a step to threshold + (tolerance + 5 mV) (the crossing of
       the profile threshold happens at the step); latency = FET open edge − step time;
       then release again *after* the lockout (a second recovery time: recovery_s).

    The link is watched throughout: its flag must agree with its own FET state and with the
    DAQ's line.
    """
    cut = getattr(profile.protection, kind.name)
    s = profile.sampling
    n = emulator.n_channels
    d = kind.direction
    thr = cut.threshold_v
    tol = cut.threshold_tolerance_mv * 1e-3
    band = tol + 5e-3
    step = poll_s(profile)
    # ramp so slow that one sampling period moves the cell by a tenth of the tolerance
    rate = min(2e-3, 0.1 * tol / s.period_s)
    pack_a = kind.pack_sign * max(1.0, 0.1 * profile.capacity_ah)
    rest_v = plateau_v(profile)
    release = thr - d * cut.hysteresis_mv * 1e-3 if cut.uses_hysteresis else thr
    latched = cut.recovery == "latched"
    lockout = cut.lockout_s if cut.recovery in ("lockout", "both") else 0.0
    htol = cut.hysteresis_tolerance_mv * 1e-3
    stair = htol / 4.0
    hold = cut.recovery_s + cut.recovery_tolerance_s + (s.filter_samples + 2) * s.period_s
    rec_timeout = cut.recovery_s + lockout + cut.recovery_tolerance_s + 5.0
    if channels is None:
        channels = list(range(n))
    if hysteresis_channels is None:
        hysteresis_channels = sorted({0, n // 2, n - 1}) if cut.uses_hysteresis else []
    u_daq = daq_uncertainty_v(daq) if daq is not None else s.accuracy_mv * 1e-3
    # timing uncertainty of the trip point: one sampling period of ramp, plus the command
    # step quantisation; combined with the DAQ uncertainty (k=2)
    u_thr = math.hypot(u_daq, rate * (s.period_s + step))
    watch = _FetWatch(kind, daq, pack_source, clock, threshold_a=0.05 * abs(pack_a))
    run = CutoffRun(kind, thr, rate, u_thr, pack_a, hysteresis_channels=tuple(hysteresis_channels))

    base = np.full(n, rest_v)
    cells = Cells(emulator, base)
    pack_source.set_current(pack_a)
    clock.sleep(settle_s(profile))

    def opened() -> bool:
        return not watch.closed()

    def _release(r: ChannelCutoff, t_open: float | None, record: bool = True) -> None:
        """Step the cell below the release band and time the FET closing again (latched:
        hold with the charger connected, then remove it and time from the removal)."""
        t_rel = clock.now()
        cells.set(ch, release - d * (htol + 10e-3))
        if latched:
            if _wait_level(watch, clock, hold, step):
                r.released_while_connected += 1
            else:
                t_rel = clock.now()
                pack_source.off()
        closed = _wait_level(watch, clock, rec_timeout, step)
        t_close = watch.edge(t_rel, True) if closed else None
        if record and t_close is not None:
            r.recovery_s.append(t_close - t_rel)
            left = 0.0 if t_open is None else lockout - (t_rel - t_open)
            r.recovery_expected_s.append(max(cut.recovery_s, left))
            r.recovery_after_trip_s.append(None if t_open is None else t_rel - t_open)
        if latched:
            pack_source.set_current(pack_a)

    for ch in channels:
        progress.phase(f"{kind.name.upper()} ramp, cell {ch + 1} of {n}")
        r = ChannelCutoff(ch)
        t_start = clock.now()
        # 1. approach from the safe side
        v_a = thr - d * band
        cells.set(ch, v_a)
        clock.sleep(settle_s(profile))
        if not watch.closed():
            # tripped before the band: wait for recovery so the run can go on
            r.early_trip = True
            cells.set(ch, release - d * (htol + 10e-3))
            clock_wait(clock, watch.closed, rec_timeout + cut.delay_s, step)
            cells.set(ch, v_a)
            clock.sleep(settle_s(profile))
        offset = 0.0
        if daq is not None:
            offset = float(np.asarray(daq.read_cell_voltages(samples=8))[ch]) - v_a
        # 2. slow ramp across the band
        prog = Program()
        t_ramp = clock.now()
        v_end = thr + d * band
        hold_after = cut.latency_max_s + cut.delay_s + 1.0
        tripped = ramp_until(cells, clock, ch, prog, v_a, v_end, rate, step, opened, hold_s=hold_after)
        if tripped:
            r.trip_t = watch.edge(t_ramp, False)
            if r.trip_t is not None:
                r.trip_v = prog.at(r.trip_t - cut.delay_s) + offset
            # 3. the current through the pack has stopped
            r.current_after_trip_a = float(pack_source.read_current())
        # 4. release
        if tripped:
            if ch in hysteresis_channels:
                if lockout and r.trip_t is not None:  # the staircase finds the hysteresis, not the lockout
                    observe(clock, profile, max(0.0, r.trip_t + lockout - clock.now()))
                if latched:
                    pack_source.off()  # a latched cut-off releases only without the charger (load)
                level = release + d * (htol + stair)
                lowest = release - d * (htol + stair)
                while True:
                    t_lvl = clock.now()
                    cells.set(ch, level)
                    ok = _wait_level(watch, clock, hold, step)
                    if ok:
                        # the release lies between this level and the one before: take the
                        # middle (uniform over one stair: U = stair/sqrt(3) at k=2). The time
                        # to close is not a recovery time here: a borderline earlier level
                        # may already have started the board's recovery timer.
                        r.release_v = level + d * stair / 2.0 + offset
                        r.release_u_v = math.hypot(stair / math.sqrt(3.0), u_daq)
                        break
                    if (level - lowest) * d <= 1e-9:
                        break
                    level -= d * stair
                if watch.closed() is False:
                    cells.set(ch, release - d * (htol + 10e-3))
                    _wait_level(watch, clock, rec_timeout, step)
                if latched:
                    pack_source.set_current(pack_a)
            else:
                _release(r, r.trip_t)
        # 5. latency on a step across the threshold
        if watch.closed():
            cells.set(ch, v_a)
            clock.sleep(settle_s(profile))
            if watch.closed():
                t_step = clock.now()
                cells.set(ch, v_end)
                if clock_wait(clock, opened, cut.delay_s + cut.latency_max_s + 2.0, step):
                    t_open = watch.edge(t_step, False)
                    if t_open is not None:
                        r.latency_s = t_open - t_step
                        r.step_t, r.open_t = t_step, t_open
                if r.latency_s is not None and lockout:  # this release comes after the lockout
                    observe(clock, profile, max(0.0, r.open_t + lockout + cut.recovery_tolerance_s - clock.now()))
                _release(r, r.open_t, record=r.latency_s is not None)
        # back to rest
        cells.set(ch, rest_v)
        clock.sleep(settle_s(profile))
        # the link's view over the whole channel run
        samples = window(link, t_start, f"{kind.name.upper()} run on cell {ch + 1}")
        r.n_samples = len(samples)
        edge_open = watch.edge(t_start, False)
        guard = s.period_s + 2 * profile.link.poll_s
        edges = daq.edges(since=t_start, line=kind.line) if daq is not None else []
        for smp in samples:
            fet = kind.fet_closed(smp)
            flag = kind.flag(smp)
            if flag == fet:  # flag set must mean FET open, and vice versa
                r.flag_fet_mismatch += 1
            lvl = watch.level_at(smp.t)
            if lvl is not None and fet != lvl and not any(abs(smp.t - e.t) <= guard for e in edges):
                r.flag_daq_mismatch += 1
            r.timing.append((smp.t, float(np.asarray(smp.cell_v)[ch]), fet, flag))
        first_flag = first_sample(samples, kind.flag)
        if edge_open is not None and first_flag is not None:
            r.flag_delay_s = first_flag.t - edge_open
        run.channels.append(r)
    pack_source.off()
    cells.set_all(base)
    clock.sleep(settle_s(profile))
    return run


def _wait_level(watch: _FetWatch, clock, timeout: float, step: float) -> bool:
    """Wait until the watched FET is closed again; True if it closed within ``timeout``."""
    return clock_wait(clock, watch.closed, timeout, step)


def clock_wait(clock, condition, timeout: float, step: float) -> bool:
    """Poll ``condition`` every ``step`` s with the rig clock's ``wait_until``; True when it
    came true, False when ``timeout`` s passed first (the plan measures the absence)."""
    try:
        clock.wait_until(condition, timeout, "a FET level", poll=step)
    except WaitTimeout:
        return False
    return True


def run_conditions(run: CutoffRun, channel: int) -> dict:
    """Test conditions of one channel's cut-off run, for the report."""
    return {"cell": channel + 1, "ramp_mv_per_s": round(run.rate_v_per_s * 1e3, 3), "pack_current_a": run.pack_current_a}


def judge_cutoff_recovery(run: CutoffRun, cut, measure) -> None:
    """Hysteresis (staircase channels) and recovery time (every release) against the profile.

    The release point lies on the safe side of the threshold: below it for HVC, above for LVC.
    """
    name = run.kind.name
    for r in run.channels:
        cond = run_conditions(run, r.channel)
        cell = cell_name(r.channel)
        if r.channel in run.hysteresis_channels:
            hyst = None if r.release_v is None else run.kind.direction * (cut.threshold_v - r.release_v) * 1e3
            measure(f"{cell}_{name}_hysteresis_mv", hyst, "mV",
                    limits=(cut.hysteresis_mv - cut.hysteresis_tolerance_mv, cut.hysteresis_mv + cut.hysteresis_tolerance_mv),
                    uncertainty=(r.release_u_v or 0.0) * 1e3, conditions=cond)
        expected = r.recovery_expected_s or [cut.recovery_s]
        for k, t in enumerate(r.recovery_s or [None]):
            want = expected[k] if k < len(expected) else cut.recovery_s
            since = r.recovery_after_trip_s[k] if k < len(r.recovery_after_trip_s) else None
            lockout = "none"
            if cut.lockout_s and cut.recovery in ("lockout", "both") and since is not None:
                lockout = "released before its end" if since < cut.lockout_s else "released after its end"
            measure(f"{cell}_{name}_recovery_s", t, "s",
                    limits=(want - cut.recovery_tolerance_s, want + cut.recovery_tolerance_s),
                    uncertainty=1e-3, conditions={**cond, "release": k + 1, "recovery": cut.recovery,
                                                  "expected_s": round(want, 3), "lockout": lockout,
                                                  "released_after_trip_s": None if since is None else round(since, 3)})
        if cut.recovery == "latched":
            measure(f"{cell}_{name}_released_with_charger_connected", r.released_while_connected, "1", limits=(0, 0),
                    u_reason="exact count", conditions={**cond, "recovery": "latched"})


LATENCY_U_S = 1e-3
"""Expanded uncertainty (k=2) of a cut-off latency, s: the DAQ's edge timestamp resolution."""


def capture_cutoff_timing(run: CutoffRun, cut, capture) -> None:
    """The first channel's timing diagram (cell voltage, threshold, FET, flag) for the report.
    Its meta names the cell, the latency measurement it illustrates (``measurement``,
    ``latency_s``, ``latency_u_s``) and that measurement's step (``t_cross``) and FET open
    edge (``t_trip``), rig time s: the plot states the table's value, not one of its own."""
    r0 = run.channels[0] if run.channels else None
    if r0 is None or not r0.timing:
        return
    t, v, fet, flag = (np.array(x, dtype=float) for x in zip(*r0.timing))
    fet_col, kind = run.kind.fet_attr, f"{run.kind.name}_timing"
    capture(kind, {"t_s": t, "cell_v": v, "threshold_v": np.full(len(t), cut.threshold_v), fet_col: fet, "flag": flag},
            {"t_s": "s", "cell_v": "V", "threshold_v": "V", fet_col: "1", "flag": "1"},
            kind=kind, meta={"cell": r0.channel + 1, "measurement": f"{cell_name(r0.channel)}_{run.kind.name}_latency_s",
                             "latency_s": r0.latency_s, "latency_u_s": LATENCY_U_S,
                             "t_cross": r0.step_t, "t_trip": r0.open_t})


def tier_channels(n: int, tier: str | None) -> list[int] | None:
    """The channels a run of ``tier`` characterises: every channel in qualification (None);
    the first, middle and last in regression (the hysteresis channels: every step of the
    procedure, in minutes; the per-channel measurement path is judged on every channel by
    the accuracy and mapping plans of the same tier)."""
    return sorted({0, n // 2, n - 1}) if tier == "regression" else None


def characterise_cutoff_on(rig, kind: CutoffKind, tier: str | None = None) -> CutoffRun:
    """Baseline the rig, characterise ``kind`` on the ``tier``'s channels (every channel in
    qualification), leave the pack source off."""
    rig.baseline()
    try:
        return characterise_cutoff(kind, rig.profile, rig.emulator, rig.pack_source, rig.clock, rig.link, rig.daq,
                                   channels=tier_channels(rig.emulator.n_channels, tier))
    finally:
        rig.pack_source.off()
