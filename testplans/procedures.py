"""Lab procedures shared by several plans.

Everything here talks to the rig through the instrument protocols (``rig.protocols``) and
the DUT link only; expected values and margins come from the board profile. Nothing here
imports ``rig.sim``: the same procedures drive a real rig. Waits are on the rig clock.

Units: V, A, °C, s at every boundary (as the protocols); names ending in ``_mv``/``_ma``
say otherwise.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field

import numpy as np

from rig import progress
from rig.errors import LinkFault, WaitTimeout

_T_RES_S = 1e-6
"""Rig times closer than this (s) are the same instant (the clock's own wait tolerance)."""

# --------------------------------------------------------------------------- naming


def cell_name(i: int) -> str:
    """Measurement prefix of the channel at 0-based index ``i``: ``cell05`` for index 4."""
    return f"cell{i + 1:02d}"


def cells_text(mask) -> str:
    """``[3, 5]`` (1-based) for a bool mask or index list."""
    arr = np.asarray(mask)
    idx = np.flatnonzero(arr) if arr.dtype == bool else arr
    return "[" + ", ".join(str(int(i) + 1) for i in idx) + "]"


# --------------------------------------------------------------------------- what the board reports


def reports(link):
    """What the board reports over ``link`` (:class:`rig.links.base.Capabilities`, from its
    map); a link that does not say is taken to report everything."""
    from rig.links.base import Capabilities

    return getattr(link, "reports", None) or Capabilities.everything()


def not_reported(link, *quantities: str) -> str | None:
    """The "not verified: the board does not report ..." reason when ``link`` lacks any of
    ``quantities`` (names of :data:`rig.links.base.QUANTITIES`), else None."""
    return reports(link).reason(*quantities)


# --------------------------------------------------------------------------- timing


def settle_s(profile) -> float:
    """Time for a step on the cell inputs to be fully inside the board's reported value, s.

    The reported value is a moving average of ``filter_samples`` conversions, one per
    ``period_s``; add one period for the conversion phase, the board's report period and
    latency (``sampling.update_period_s``, ``latency_s``; unstated: a report per conversion)
    and one link poll to see it.
    """
    s = profile.sampling
    extra = (report_period_s(profile) if getattr(s, "update_period_s", None) else 0.0) + getattr(s, "latency_s", 0.0)
    return (s.filter_samples + 1) * s.period_s + extra + profile.link.poll_s


def report_period_s(profile) -> float:
    """How often the board reports a new value, s (``sampling.update_period_s``, else every
    conversion)."""
    s = profile.sampling
    return getattr(s, "update_period_s", None) or s.period_s


def poll_s(profile) -> float:
    """Polling step for loops that watch the board: never faster than the link's poll."""
    return max(profile.link.poll_s, profile.sampling.period_s)


EXACT_COUNT = "exact count"
"""The ``u_reason`` of a count: why its expanded uncertainty is 0."""
NO_SCATTER = "no scatter in the board's readings"
"""The ``u_reason`` of a U estimated from the board's scatter when there was none."""


def independent_samples(profile, window_s: float) -> float:
    """How many statistically independent reported values a window holds (>= 1): one per
    filter length, or per report when the board reports less often."""
    s = profile.sampling
    return max(1.0, window_s / max(s.filter_samples * s.period_s, report_period_s(profile)))


def window_for_samples(profile, n_independent: float) -> float:
    """The observation window that holds ``n_independent`` independent reported values, s
    (the inverse of :func:`independent_samples`)."""
    s = profile.sampling
    return n_independent * max(s.filter_samples * s.period_s, report_period_s(profile))


# --------------------------------------------------------------------------- set points


def plateau_v(profile) -> float:
    """A resting cell voltage on the plateau, clearly below the balancing minimum, V."""
    return profile.balancing.min_cell_v - 0.100


def temperatures_of(sample, profile, role: str) -> np.ndarray:
    """The reported temperatures with ``role`` (``cells``, ``bleed_resistor``, ``fet``,
    ``ambient``: the profile's ``temperatures``; unstated, the reference layout), °C."""
    t = np.asarray(sample.temps_c, dtype=float)
    roles = getattr(profile, "temperatures", None)
    if roles is None:  # no profile: the reference layout
        from rig.profile import Temperatures

        roles = Temperatures()
    return t[roles.indices(role, len(t), getattr(profile, "source", None))]


def cell_temperature_c(sample, profile=None) -> float:
    """Mean reported cell temperature (the profile's cell NTCs; without any, its ambient
    sensors, else every reported temperature), °C."""
    for role in ("cells", "ambient"):
        t = temperatures_of(sample, profile, role)
        if t.size:
            return float(np.mean(t))
    return float(np.mean(np.asarray(sample.temps_c, dtype=float)))


def bleed_ntc_c(sample, profile=None) -> float | None:
    """The bleed-resistor NTC as the board reports it (the hottest of the profile's
    bleed-resistor sensors), °C; None when the profile names none."""
    t = temperatures_of(sample, profile, "bleed_resistor")
    return float(np.max(t)) if t.size else None


def board_temperature_c(sample, profile=None) -> float:
    """The board's own temperature as it reports it: its bleed-resistor / board NTC, else its
    FET NTC, else the cell temperature (:func:`cell_temperature_c`), °C."""
    for role in ("bleed_resistor", "fet"):
        t = temperatures_of(sample, profile, role)
        if t.size:
            return float(np.max(t))
    return cell_temperature_c(sample, profile)


def top_of_charge_v(profile, link, margin_mv: float | None = None) -> float:
    """Cell voltage near the top of charge: the temperature-compensated balancing
    minimum (at the board's reported cell temperature) plus a margin, V.

    The default margin is four times the sampling accuracy, so a board within spec sees
    every cell above the minimum.
    """
    if margin_mv is None:
        margin_mv = 4.0 * profile.sampling.accuracy_mv
    t_cell = cell_temperature_c(link.latest(), profile)
    return profile.balancing.min_cell_v_at(t_cell) + margin_mv * 1e-3


def imbalance_mv(profile) -> float:
    """An imbalance clearly above the start delta: start delta + 2 × accuracy, mV."""
    b = profile.balancing
    return b.start_delta_mv + 2.0 * profile.sampling.accuracy_mv


@dataclass
class BalancingLevels:
    """Cell voltages that put a board on either side of its balancing start and stop, V:
    every cell at ``base_v``, nothing bleeds; a cell above ``start_v`` starts bleeding; a
    bleeding cell stops below ``stop_v``; ``margin_v`` keeps a set point clear of a level
    (2 × accuracy, at least one reporting step)."""

    base_v: float
    start_v: float
    stop_v: float
    margin_v: float

    @property
    def high_v(self) -> float:
        """A cell clearly above the start, V."""
        return self.start_v + self.margin_v


def balancing_levels(profile, link) -> BalancingLevels:
    """:class:`BalancingLevels` from the profile's ``balancing.start_mode``: ``delta`` (base
    at the top of charge, start/stop = base + start/stop delta) or ``absolute`` (start at
    ``start_cell_v``, stop that less the stop delta, base clearly below the stop)."""
    b, s = profile.balancing, profile.sampling
    margin = max(2.0 * s.accuracy_mv, s.resolution_mv) * 1e-3
    if b.start_mode == "absolute":
        stop = b.start_cell_v - b.stop_delta_mv * 1e-3
        return BalancingLevels(min(top_of_charge_v(profile, link), stop - 2 * margin), b.start_cell_v, stop, margin)
    base = top_of_charge_v(profile, link)
    return BalancingLevels(base, base + b.start_delta_mv * 1e-3, base + b.stop_delta_mv * 1e-3, margin)


def pack_current_in(profile, state: str) -> float:
    """A pack current the board reads as ``state`` (its ``balancing.strategies`` bounds), A
    (+ charge): rest 0; charge twice the float bound (at least 1 A); float midway between
    the rest and float bounds; discharge twice the rest bound (at least 1 A), negative."""
    st = profile.balancing.strategies
    return {"rest": 0.0, "charge": max(1.0, 2.0 * max(st.float_current_a, st.rest_current_a)),
            "float": 0.5 * (st.rest_current_a + st.float_current_a),
            "discharge": -max(1.0, 2.0 * st.rest_current_a)}[state]


def enter_balancing_state(profile, pack_source, state: str | None = None) -> dict:
    """Drive the pack into a state the profile allows balancing in, and say which.

    Every test that expects the board to balance calls this first (BAL-001..006, 008, 009,
    ACC-002's mask test; convergence too: it is the one place that knows the rule). The state
    is ``balancing.strategies.balancing_state()``: rest when the board balances at rest
    (nothing changes: the pack source stays off), else charge, float or discharge, with the
    pack source driving :func:`pack_current_in` through the string (in source mode the
    emulator holds every cell's voltage, so the current changes no set point). ``state``
    forces another state (BAL-010 visits the excluded ones). Undo with ``pack_source.off()``.
    Returns the test conditions to record: ``{"pack_state": ..., "pack_current_a": ...}``.
    """
    state = state or profile.balancing.strategies.balancing_state()
    amps = pack_current_in(profile, state)
    if amps == 0.0:
        pack_source.off()
    else:
        pack_source.set_current(amps)
    return {"pack_state": state, "pack_current_a": amps}


class Cells:
    """The emulator's set points as the plan commands them (every channel at once).

    ``set(ch, v)`` changes one channel by sending the whole array: one command per change,
    and the plan always knows what it commanded.
    """

    def __init__(self, emulator, volts):
        self.emulator = emulator
        self.v = np.broadcast_to(np.asarray(volts, dtype=float), (emulator.n_channels,)).copy()
        emulator.set_voltages(self.v.copy())

    def set(self, channel: int, volts: float) -> None:
        self.v[channel] = float(volts)
        self.emulator.set_voltages(self.v.copy())

    def set_all(self, volts) -> None:
        self.v = np.broadcast_to(np.asarray(volts, dtype=float), self.v.shape).copy()
        self.emulator.set_voltages(self.v.copy())


def set_cells_and_settle(emulator, clock, profile, volts) -> np.ndarray:
    """Set every channel (:class:`Cells`) and wait until the board's reported values have
    followed; returns the commanded array (V)."""
    v = Cells(emulator, volts).v
    clock.sleep(settle_s(profile))
    return v


# --------------------------------------------------------------------------- link readings


def observe(clock, profile, duration_s: float) -> float:
    """Let ``duration_s`` of rig time pass while watching the link at its poll rate (a lab
    logs the bus continuously; on the bench this also keeps the board from being
    fast-forwarded past what the plan wants to see). Returns the start time; judge the
    window with :func:`window` (or :func:`observe_window`)."""
    t0 = clock.now()
    if duration_s > 0:
        clock.wait_until(lambda: clock.now() >= t0 + duration_s - _T_RES_S, duration_s,
                         f"{duration_s:g} s of observation", poll=profile.link.poll_s)
    return t0


def window(link, since: float, what: str, until: float | None = None) -> list:
    """The link samples a judgement over ``[since, until or now]`` rests on (rig time, s).

    ``link.history`` checks that they cover the window at the board's update rate (a gap
    longer than the link timeout is a LinkFault: the board was not judged); an empty set
    is no evidence either, however short the window: LinkFault naming ``what``. Every plan
    judgement over a window of link samples goes through here.
    """
    samples = link.history(since) if until is None else link.history(since, until)
    if not samples:
        span = f"since t={since:.3f} s" if until is None else f"in t={since:.3f}..{until:.3f} s"
        raise LinkFault(getattr(link, "link_name", None) or getattr(link, "name", None) or "DUT link",
                        f"board not judged: no sample from the board {span} ({what})")
    return samples


def observe_window(link, clock, profile, duration_s: float, what: str) -> list:
    """:func:`observe` for ``duration_s``, then the samples that cover it (:func:`window`)."""
    t0 = observe(clock, profile, duration_s)
    return window(link, t0, what)


def most_channels(samples) -> int:
    """The largest number of channels balancing at once over ``samples`` (non-empty)."""
    if not samples:
        raise ValueError("most_channels: no samples (no evidence is not zero channels)")
    return max(int(np.sum(s.balancing)) for s in samples)


@dataclass
class BoardReading:
    """The board's reported cell voltages over a window."""

    mean_v: np.ndarray
    std_v: np.ndarray
    n_samples: int
    n_independent: float
    samples: list = field(repr=False, default_factory=list)

    @property
    def repeatability_u_v(self) -> np.ndarray:
        """Standard uncertainty of the mean from the scatter (std / sqrt(n_eff)), V."""
        return self.std_v / math.sqrt(self.n_independent)


def board_average(link, clock, profile, window_s: float | None = None) -> BoardReading:
    """Average the link's reported cell voltages over ``window_s`` of rig time.

    Default window: two filter lengths, at least two reports (several independent values).
    """
    s = profile.sampling
    if window_s is None:
        window_s = 2.0 * max(s.filter_samples * s.period_s, report_period_s(profile))
    samples = observe_window(link, clock, profile, window_s, "the board's cell voltages to average")
    arr = np.array([valid_cells_v(x) for x in samples])
    valid = ~np.isnan(arr)
    n_valid = valid.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):  # a cell never valid in the window: NaN (no reading)
        mean = np.where(n_valid > 0, np.nansum(arr, axis=0) / np.maximum(n_valid, 1), np.nan)
        dev = np.where(valid, arr - mean, 0.0)
        std = np.where(n_valid > 1, np.sqrt((dev ** 2).sum(axis=0) / np.maximum(n_valid - 1, 1)), 0.0)
    return BoardReading(mean, std, len(arr), independent_samples(profile, window_s), samples)


def valid_cells_v(sample) -> np.ndarray:
    """A sample's cell voltages with every cell the board flags invalid as NaN (an invalid
    cell is no reading: never averaged in, never read as 0 V), V."""
    v = np.asarray(sample.cell_v, dtype=float).copy()
    ok = getattr(sample, "cells_valid", None)
    if ok is not None:
        v[~np.asarray(ok, dtype=bool)] = np.nan
    return v


def daq_uncertainty_v(daq) -> float:
    """Expanded uncertainty (k=2) of one averaged DAQ cell-voltage reading, V (its calibration)."""
    return float(daq.voltage_uncertainty_v())


def reference_voltages(daq, samples: int = 16) -> tuple[np.ndarray, float]:
    """Reference DAQ cell voltages (mean of ``samples``) and their expanded uncertainty, V."""
    return np.asarray(daq.read_cell_voltages(samples=samples), dtype=float), daq_uncertainty_v(daq)


def wait_sample(link, clock, condition, timeout: float, what: str, poll: float | None = None):
    """Wait on the rig clock (``clock.wait_until``) for a link sample taken from now on
    satisfying ``condition``; return it, or None on timeout (the plan measures the absence).

    Every look at the link covers the time since the previous one (``link.history``), so a
    silent stretch longer than the link timeout while waiting is a LinkFault (the board was
    not judged), and a None rests on samples covering the whole wait. ``timeout``/``poll``
    in s (poll default: the link's poll period).
    """
    start = clock.now()
    step = poll if poll is not None else getattr(link, "poll_s", None) or 0.1
    seen = [start]
    found: list = []

    def arrived() -> bool:
        for s in link.history(since=seen[0]):
            if s.t >= start and condition(s):
                found.append(s)
                return True
            seen[0] = max(seen[0], s.t)
        return False

    try:
        clock.wait_until(arrived, timeout, what, poll=step)
    except WaitTimeout:
        window(link, start, what)  # the absence must rest on evidence of the whole wait
        return None
    return found[0]


def first_sample(samples, predicate):
    for s in samples:
        if predicate(s):
            return s
    return None


def mask_changes(samples) -> int:
    """How many times the balancing mask changed between consecutive samples."""
    n = 0
    prev = None
    for s in samples:
        m = np.asarray(s.balancing, dtype=bool)
        if prev is not None and not np.array_equal(m, prev):
            n += 1
        prev = m
    return n


def adjacent_pairs(mask) -> int:
    """Number of neighbouring channel pairs both set in ``mask``."""
    m = np.asarray(mask, dtype=bool)
    return int(np.sum(m[1:] & m[:-1]))


# --------------------------------------------------------------------------- chamber


_SOAKED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
"""chamber -> (set point °C, what was soaked): the last soak completed on that chamber."""


def soak(chamber, link, clock, celsius: float, reading=None, dwell_s: float = 300.0, settle_c: float = 0.3,
         timeout_s: float = 6 * 3600.0, profile=None, what: str = "cells") -> float:
    """Chamber to ``celsius``, wait until stable, then until the board's own temperature
    reading ``reading(sample)`` (default: mean cell NTC, by the ``profile``'s temperature
    roles) settles: change < ``settle_c`` over ``dwell_s``. Returns that reading, °C
    (``celsius``, ``settle_c`` in °C; ``dwell_s``, ``timeout_s`` in s).

    ``what="air"``: the chamber air only (stable within 1 °C for ``min(dwell_s, 120)`` s), for
    a plan that waits on the board's own reading itself (derating: the bleed-resistor NTC
    under its own bleed power); the reading is returned without a settle.

    One soak serves the next: when the last soak completed on this chamber was at the same
    set point for the same ``what`` (``cells``, or ``board`` for the faster board soak; an
    ``air`` soak is served by any, each starts by waiting for the air) and the chamber still
    reads within 1 °C of it, nothing moved since, and the reading is returned at once (the
    chamber schedule runs tests of one set point back to back)."""
    reading = reading or (lambda s: cell_temperature_c(s, profile))
    progress.phase(f"soak at {celsius:g} °C")
    try:
        last = _SOAKED.get(chamber)
    except TypeError:  # an unhashable driver: no memory of its soaks
        last = None
    if (last is not None and last[0] == float(celsius) and what in (last[1], "air")
            and abs(chamber.read_temperature() - celsius) <= 1.0):
        return reading(link.latest())
    chamber.set_temperature(celsius)
    chamber.wait_stable(tolerance_c=1.0, dwell_s=min(dwell_s, 120.0), timeout_s=timeout_s)
    if what == "air":
        _remember_soak(chamber, celsius, what)
        return reading(link.latest())
    seen = {"prev": reading(link.latest())}
    seen["newest"] = seen["prev"]

    def settled() -> bool:  # changed less than settle_c since the previous look, dwell_s ago
        seen["prev"], seen["newest"] = seen["newest"], reading(link.latest())
        return abs(seen["newest"] - seen["prev"]) < settle_c

    clock.sleep(dwell_s)
    try:
        clock.wait_until(settled, max(timeout_s - dwell_s, 0.0), "the board's temperature to settle", poll=dwell_s)
    except WaitTimeout:
        pass  # not settled within the timeout: the newest reading is what the board says
    _remember_soak(chamber, celsius, what)
    return seen["newest"]


def _remember_soak(chamber, celsius: float, what: str) -> None:
    try:
        _SOAKED[chamber] = (float(celsius), what)
    except TypeError:
        pass


def soak_board(chamber, link, clock, celsius: float, profile=None) -> float:
    """Soak for the board's electronics (the AFE): with no balancing, the bleed-resistor /
    board NTC sits on the board and tracks its temperature (:func:`board_temperature_c`);
    wait until it settles (tau ~ minutes). °C."""
    return soak(chamber, link, clock, celsius, reading=lambda s: board_temperature_c(s, profile), dwell_s=120.0,
                settle_c=0.2, what="board")
