"""The bench's event-driven fast-forward, for any board model.

A board model does not compute its own fast-forward window. Right after a conversion it
declares its state to the bench in a :class:`QuietState`:

- whether it is **settled** (its filter is full, it has readings) and not **busy** for a
  reason of its own;
- its pending **timers** (protection delays, recoveries): any pending timer ends "quiet";
- the **temperature edges** it compares NTC readings against (reading, edge, °C): a reading
  within :data:`QUIET_MARGIN_C` of its edge ends "quiet";
- the **levels** its exact decisions (protection) compare against (:class:`Level`, V) and
  the **noise guard** it keeps clear of them (:func:`noise_guard_v`);
- the **gate** of its resolved decisions (balancing: :class:`Gate` of :class:`Condition`);
- its **decision cadence** and **bleed plan** (:class:`Decisions`): the cycle grid it wakes
  on, which channels bleed at which duty after each decision it lets the bench skip, and its
  derating loop (:class:`DeratingLoop`).

:func:`plan_window` turns that into a :class:`Window`: where to resume (s), the average
bleed duty per channel over the window and the drift limit (V) the world keeps (no
terminal voltage moves further inside the window). On resume the board asks
:meth:`Window.last_decision` which skipped decision it would have taken last.

The derating fixed point (:func:`derating_fixed_point`, :func:`pwm_hot_spot_c`) is also
what ``bmsrig bench`` predicts balancing duty with. Units: V, s, °C, W; arrays 0-based by
cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

EPS = 1e-9
NOISE_GUARD_SPREADS = 3.0
"""Noise guard: this many times the widest spread (max − min) of the last few raw
conversions of any channel. Four samples of white noise spread about 2 σ, the widest of 16
channels about 3 σ, so the guard is about 9 σ (0.3 mV RMS AFE noise and 185 µV steps:
~3.3 mV measured; 5 mV RMS injected noise: > 20 mV, so no fast-forward anywhere near a
threshold). A moving input widens the spread too."""
STATIC_GUARD_V = 1.0e-3
"""What the world's drift check cannot see, V: AFE drift over the window's board
temperature move (≤ 8 µV/°C x 1 °C on a good AFE), quantisation (±0.09 mV)."""
MIN_DRIFT_V = 0.5e-3
"""No fast-forward when the drift allowance is below this, V (the window would end at once)."""
QUIET_MARGIN_C = 2.0
"""A temperature reading this close to an edge it compares against ends "quiet", °C."""
THERMAL_TOL_C = 0.75
"""Derating loop: skip decisions only with the NTC this close to the loop's fixed-point
band (between its minimum and mean over a PWM period), °C."""
MIN_WINDOW_PERIODS = 2
"""No window shorter than this many sampling periods."""


# ----------------------------------------------------------------------------- derating


def pwm_hot_spot_c(duty: float, full_rise_c: float, board_c: float, interval_s: float,
                   tau_s: float) -> tuple[float, float]:
    """Periodic steady state of a hot spot heated by on/off PWM, °C: ``(T_min, T_mean)``.

    The heater is on for ``duty × interval_s`` at the start of each interval and would lift
    the hot spot ``full_rise_c`` above ``board_c`` at 100 % duty; ``tau_s`` is the hot
    spot's thermal lag. ``T_min`` is the temperature at the start of an interval (where a
    board reads its NTC and decides), ``T_mean`` the average over the interval.
    """
    a = min(max(duty, 0.0), 1.0) * interval_s
    e_i = math.exp(-interval_s / tau_s)
    t_min = board_c + full_rise_c * (1.0 - math.exp(-a / tau_s)) * math.exp(-(interval_s - a) / tau_s) / (1.0 - e_i)
    t_mean = board_c + full_rise_c * a / interval_s
    return t_min, t_mean


def derating_fixed_point(duty_at: Callable[[float], float], hot_spot_c: Callable[[float], float],
                         iterations: int = 40) -> float:
    """The duty ``d`` (0..1) with ``d = duty_at(hot_spot_c(d))``: a derating loop's fixed point.

    ``duty_at`` (°C -> 0..1) is the derating curve (non-increasing), ``hot_spot_c`` (duty ->
    °C) the temperature the NTC reads at that duty (non-decreasing). 1.0 when full duty
    does not derate; else bisection (``iterations`` halvings).
    """
    if duty_at(hot_spot_c(1.0)) >= 1.0:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if duty_at(hot_spot_c(mid)) > mid:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class DeratingLoop:
    """A board's bleed derating loop, as declared for skipped decisions.

    - ``duty_at``: the board's derating curve, NTC °C -> duty 0..1
    - ``full_power_w``: bleed power on the NTC's zone at 100 % duty, W (mean over the masks)
    - ``board_c``: board temperature, °C; ``c_per_w``: hot-spot rise per W, °C/W;
      ``tau_s``: hot-spot lag, s; ``interval_s``: PWM period (a decision's interval), s
    - ``strategy``: duty factor before derating (0..1); ``ntc_c``: the NTC reading now, °C
    """

    duty_at: Callable[[float], float]
    full_power_w: float
    board_c: float
    c_per_w: float
    tau_s: float
    interval_s: float
    strategy: float
    ntc_c: float

    def hot_spot_c(self, duty: float) -> tuple[float, float]:
        """``(T_min, T_mean)`` at derating ``duty``, °C (:func:`pwm_hot_spot_c`)."""
        return pwm_hot_spot_c(self.strategy * duty, self.c_per_w * self.full_power_w, self.board_c,
                              self.interval_s, self.tau_s)

    def fixed_point(self) -> tuple[float, float, float]:
        """``(d, T_min, T_mean)`` at the loop's fixed point."""
        d = derating_fixed_point(self.duty_at, lambda x: self.hot_spot_c(x)[0])
        return (d, *self.hot_spot_c(d))


# ----------------------------------------------------------------------------- declaration


def noise_guard_v(samples: np.ndarray, spreads: float = NOISE_GUARD_SPREADS,
                  static_v: float = STATIC_GUARD_V, hi: np.ndarray | None = None,
                  lo: np.ndarray | None = None) -> float:
    """Noise guard, V, from recent raw conversions ``samples`` (rows: conversions, columns:
    channels): ``spreads`` × the widest spread of any channel, plus ``static_v``. ``hi`` /
    ``lo``: ``samples.max(axis=0)`` / ``samples.min(axis=0)`` when already worked out."""
    hi = samples.max(axis=0) if hi is None else hi
    lo = samples.min(axis=0) if lo is None else lo
    spread = hi - lo
    return spreads * spread.item(spread.argmax()) + static_v  # max (argmax: a cheaper call)


@dataclass(frozen=True)
class Level:
    """A level an exact decision compares a reading against (protection), V.

    ``rising``: the decision changes when ``reading`` rises to ``level`` (else: falls to
    it). Give the least favourable reading (e.g. the highest recent conversion)."""

    level: float
    reading: float
    rising: bool

    @property
    def distance_v(self) -> float:
        """How far the reading may move before the decision changes, V (< 0: already past)."""
        return self.level - self.reading if self.rising else self.reading - self.level


@dataclass(frozen=True)
class Condition:
    """One condition of a resolved decision: ``value`` against ``level`` (V).

    Holds when ``value >= level`` (``inclusive``) or ``value > level``. Its margin is
    ``share × |value − level| − slack``: ``share`` 0.5 for a difference of two cells (it
    moves by up to twice the drift), ``slack`` what else may move the level within the
    window (e.g. a temperature compensation), V."""

    value: float
    level: float
    inclusive: bool = False
    share: float = 1.0
    slack: float = 0.0

    @property
    def holds(self) -> bool:
        d = self.value - self.level
        return d >= 0.0 if self.inclusive else d > 0.0

    @property
    def margin_v(self) -> float:
        return self.share * abs(self.value - self.level) - self.slack


@dataclass(frozen=True)
class Gate:
    """A resolved decision that is on while every condition holds.

    Off, it stays off while any failing condition keeps failing (the largest failing
    margin); on, every condition must hold and so must ``hold_margins_v`` (what else the
    on-state depends on, e.g. each candidate's lead), V."""

    conditions: tuple[Condition, ...]
    hold_margins_v: tuple[float, ...] = ()

    @property
    def allowance_v(self) -> float:
        failing = [c.margin_v for c in self.conditions if not c.holds]
        if failing:
            return max(failing)
        return min([c.margin_v for c in self.conditions] + list(self.hold_margins_v), default=math.inf)


@dataclass(frozen=True)
class Decisions:
    """The board's decision cadence and its bleed plan over a window.

    Cycle ``k`` starts at ``k × period_s``; a decision is taken ``offset_s`` into its cycle.
    The next decision is at cycle ``first_cycle``, then every ``every`` cycles. The board
    resumes ``lead`` cycles before a decision (to refill its filter), so the window ends at
    ``(first_cycle + n × every − lead) × period_s`` for the largest ``n ≤ limit`` that fits.

    Bleed: ``present`` is the mask bleeding now and its PWM off time (s), or None. Each
    skipped decision bleeds ``masks[(first_mask + j) % len(masks)]`` (none if ``masks`` is
    empty) at duty ``strategy × derating`` for ``duty × interval_s`` (on through the next
    decision at 100 %); ``derating`` None means 1. ``on_share`` scales the average for
    what the board switches off around its conversions (``1 − mute/period``).
    """

    period_s: float
    offset_s: float
    first_cycle: int
    every: int
    interval_s: float
    lead: int = 0
    limit: float = math.inf
    present: Optional[tuple[np.ndarray, float]] = None
    masks: tuple[np.ndarray, ...] = ()
    first_mask: int = 0
    strategy: float = 1.0
    derating: Optional[DeratingLoop] = None
    on_share: float = 1.0

    def t_cycle(self, k):
        """Start of cycle ``k`` (int or array), s."""
        return k * self.period_s

    def t_decision(self, k):
        """Decision instant of cycle ``k`` (int or array), s."""
        return k * self.period_s + self.offset_s


@dataclass(frozen=True)
class QuietState:
    """What a board declares right after a conversion (see the module docstring).

    ``at``: the conversion instant, s (a declaration is only good at that instant).
    ``decisions`` may be left out of a declaration that is not quiet anyway.
    ``levels``/``guard_v``: exact decisions; ``gate``: the resolved decision (None: none
    that could change); ``temperature_edges``: ``(reading_c, edge_c)`` pairs."""

    at: float
    decisions: Optional[Decisions] = None
    settled: bool = True
    busy: bool = False
    timers: tuple[Optional[float], ...] = ()
    temperature_edges: tuple[tuple[float, float], ...] = ()
    levels: tuple[Level, ...] = ()
    guard_v: float = STATIC_GUARD_V
    gate: Optional[Gate] = None


# ----------------------------------------------------------------------------- the bench side


def is_quiet(state: QuietState) -> bool:
    """Settled, not busy, no timer pending, every temperature clear of its edge."""
    if not state.settled or state.busy:
        return False
    if any(t is not None for t in state.timers):
        return False
    return all(abs(reading - edge) >= QUIET_MARGIN_C for reading, edge in state.temperature_edges)


def drift_allowance_v(levels: Sequence[Level], guard_v: float, gate: Optional[Gate], resolution_v: float) -> float:
    """How far any cell may drift before a decision could change, V (< 0: one is imminent).

    Exact decisions: the smallest level distance less the guard. Resolved decisions: the
    gate's allowance, but at least ``resolution_v`` (a cell sitting on a balancing level
    would otherwise hold every window at zero: between two looks the board may act on a
    decision up to that drift old, as a real board does between its own decisions)."""
    exact = min((lv.distance_v for lv in levels), default=math.inf) - guard_v
    resolved = gate.allowance_v if gate is not None else math.inf
    return min(exact, max(resolved, resolution_v))


@dataclass(frozen=True)
class Window:
    """A fast-forward window: resume at ``t_resume`` (s), bleed ``duty`` per channel on
    average, no cell drifts more than ``drift_limit_v``. ``resume_cycle``: the cycle the
    board resumes in. ``skipped``: the decisions the window stands in for, as
    ``(t_decision, t_off, mask_index, masks, duty)`` arrays, or None."""

    t_resume: float
    duty: np.ndarray
    drift_limit_v: float
    resume_cycle: int
    skipped: Optional[tuple] = None

    def answer(self) -> tuple[float, np.ndarray, float]:
        """What ``fast_forward`` returns to the world: ``(t_resume, duty, drift_limit_v)``."""
        return self.t_resume, self.duty, self.drift_limit_v

    def last_decision(self, now: float):
        """The last skipped decision taken by ``now``: ``(mask_index, mask, duty, t_off)``
        (``t_off`` None when the duty is 0), or None."""
        if self.skipped is None:
            return None
        tj, off, idx, masks, dj = self.skipped
        j = int(np.searchsorted(tj, now + EPS, side="right")) - 1
        if j < 0:
            return None
        q = int(idx[j])
        return q, masks[q], dj, (float(off[j]) if dj > 0 else None)


def cadence_fits(period_s: float, first_cycle: int, lead: int, until: float) -> bool:
    """Whether a window of this cadence can end by ``until`` (s) at all: the resume cycle
    ``first_cycle − lead`` starts no later than ``until``. A board may ask this before
    building the rest of its declaration (the tail of every ``advance`` runs fine)."""
    return math.floor((until + EPS) / period_s) + lead >= first_cycle


def plan_window(state: QuietState, until: float, now: float, drift_limit_v: float, drift_cap_v: float,
                allowance_v: Optional[float] = None, n_cells: Optional[int] = None) -> Optional[Window]:
    """The bench's answer to a declaration: a :class:`Window` ending no later than
    ``until`` (s), or None when the board is not quiet enough to jump.

    ``drift_limit_v``: the world's default drift resolution; ``drift_cap_v``: the largest
    limit it accepts; ``allowance_v``: the board's drift allowance if already computed
    (else from the declaration)."""
    if abs(now - state.at) > EPS or not is_quiet(state) or state.decisions is None:
        return None
    if allowance_v is None:
        allowance_v = drift_allowance_v(state.levels, state.guard_v, state.gate, drift_limit_v)
    allow = min(allowance_v, drift_cap_v)
    if allow < MIN_DRIFT_V:
        return None
    dec = state.decisions
    P, D, lead = dec.period_s, dec.every, dec.lead
    if D <= lead:
        return None
    first = dec.first_cycle
    if not cadence_fits(P, first, lead, until):
        return None
    K_max = math.floor((until + EPS) / P) + lead  # the last decision cycle the window may reach
    n_dec = (K_max - first) // D  # decisions skipped entirely
    n_dec = int(min(n_dec, dec.limit))
    bleeding = len(dec.masks) > 0
    eq = None
    if bleeding and n_dec > 0 and dec.derating is not None:
        d_eq, t_min, t_mean = dec.derating.fixed_point()
        t_ntc = dec.derating.ntc_c
        if d_eq < 1.0 and not (t_min - THERMAL_TOL_C <= t_ntc <= t_mean + THERMAL_TOL_C):
            n_dec = 0
        eq = d_eq
    K = first + n_dec * D
    k_res = K - lead
    t_res = dec.t_cycle(k_res)
    if t_res - now < MIN_WINDOW_PERIODS * P:
        return None
    window = t_res - now
    n = n_cells if n_cells is not None else (len(dec.present[0]) if dec.present is not None else len(dec.masks[0]) if bleeding else 0)
    on = np.zeros(n)
    if dec.present is not None:
        # the present mask holds until its PWM off time or the next decision, whichever first
        mask, t_off = dec.present
        on += mask * max(0.0, min(t_off, dec.t_decision(first), t_res) - now)
    skipped = None
    if bleeding and n_dec > 0:
        # decisions j = 0..n_dec-1 at t_decision(first + j·D); masks cycle; a decision's
        # mask holds until its PWM off time or the next decision
        dj = dec.strategy * (eq if eq is not None else 1.0)
        tj = dec.t_decision(first + np.arange(n_dec) * D)
        off = tj + dj * dec.interval_s if dj < 1.0 else tj + dec.interval_s + P
        on_j = np.maximum(0.0, np.minimum(np.minimum(off, tj + D * P), t_res) - tj)
        idx = (dec.first_mask + np.arange(n_dec)) % len(dec.masks)
        for q, mask in enumerate(dec.masks):
            on += mask * float(on_j[idx == q].sum())
        skipped = (tj, off, idx, dec.masks, dj)
    duty = on / window * dec.on_share
    return Window(t_res, duty, allow, k_res, skipped)


__all__ = [
    "EPS", "NOISE_GUARD_SPREADS", "STATIC_GUARD_V", "MIN_DRIFT_V", "QUIET_MARGIN_C", "THERMAL_TOL_C",
    "pwm_hot_spot_c", "derating_fixed_point", "DeratingLoop", "noise_guard_v", "Level", "Condition", "Gate",
    "Decisions", "QuietState", "is_quiet", "drift_allowance_v", "Window", "cadence_fits", "plan_window",
]
