"""How the bench's time passes: the event loop, the fine step and the fast-forward.

:meth:`Stepper.advance` is an event loop. Events are the board's wake-ups (it returns its
next wake time) and a maximum step; everything a caller changes between two ``advance``
calls takes effect at the present time. Between events every input is constant, so the
cells integrate exactly (exponential RC update, linear coulomb count).

Fast-forward: when the board says it is quiet (``board.fast_forward(until)`` returns
``(t_resume, duty)``), the stepper integrates with the average bleed current ``duty ×
I_bleed`` up to ``t_resume`` in as few steps as physics allows and then wakes the board.
It ends a fast-forward early when the truth drifts away from what the board last sampled
(any terminal voltage by more than ``FF_DV_END`` × the window's drift limit, the board or
air temperature by more than ``FF_DT_MAX_C``): the board's "quiet" was a statement about
what it saw. Steps are sized from the predicted voltage rate so that no single step
carries a cell past the drift limit: ``FF_DV_MAX_V``, or the limit the board names for the
window (``(t_resume, duty, drift_limit_v)``, at most ``FF_DV_CAP_V``) from its distance to
every level that would change one of its decisions. No fast-forward for
``(filter_samples + 2)`` sampling periods after any input change (:meth:`Stepper.touch`:
the board has not seen it yet), and the last ``2 × sampling.period_s`` of every
``advance`` always run fine, so an instrument read right after a sleep sees the real
waveform. ``fine_step_s`` switches fast-forward off and forces a fixed maximum step (the
reference run). Units: V, A, °C, s.
"""

from __future__ import annotations

import numpy as np

from .bench_thermal import THERMAL_LUMP_S
from .emulator import EmulatorTrip
from .power import CHARGER_REG_S

EPS_T = 1e-9
"""Times closer than this are the same instant, s."""
FF_DV_MAX_V = 5e-3
"""Drift promise of a fast-forward: no terminal voltage moves further than this from its
value at the window's start, V. A board may name its own limit per window (the third
element of ``fast_forward``'s answer), up to ``FF_DV_CAP_V``."""
FF_DV_CAP_V = 20e-3
"""Largest per-window drift limit the bench accepts from a board, V."""
FF_STEP_SHARE = 0.25
"""A fast-forward step may use at most this share of the remaining drift budget at the
predicted rate (:meth:`PackModel.voltage_rate`): headroom for a steeper OCV segment."""
FF_DV_END = 0.8
"""A window ends once any cell has used this share of the drift budget."""
FF_DT_MAX_C = 1.0
"""A window ends once the board or air temperature moved this far, °C."""


def _max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """``max |a − b|`` as a float (argmax: one cheap call instead of a ufunc reduction on a
    few cells; the same value)."""
    d = a - b
    np.abs(d, out=d)
    return d.item(d.argmax())


class SimTime:
    """The bench's present rig time ``t``, s: one value the parts share (the stepper moves it)."""

    __slots__ = ("t",)

    def __init__(self, t: float = 0.0):
        self.t = t


class Stepper:
    """Moves the bench's time (see the module docstring). ``stats``: counters of events
    (fine steps), wakes, fast-forward windows / seconds / steps, and the largest share of a
    window's drift limit any cell used (≤ 1: the promise held)."""

    def __init__(self, clock: SimTime, sampling, emulator, bleed, power, circuit, thermal, history, afe,
                 fine_step_s: float | None = None, max_step_s: float | None = None):
        if fine_step_s is not None and fine_step_s <= 0:
            raise ValueError("fine_step_s must be > 0")
        self.clock = clock
        self.sampling = sampling
        self.emulator = emulator
        self.bleed = bleed
        self.power = power
        self.circuit = circuit
        self.thermal = thermal
        self.history = history
        self.afe = afe
        self.max_step_s = float(max_step_s) if max_step_s else (fine_step_s or max(sampling.period_s, 1.0))
        """Longest fine step, s."""
        self.ff_enabled = fine_step_s is None
        self._dt_arrays = {}  # step length (s) -> an array of it: the fine path repeats a few
        self.stats = {"events": 0, "ff": 0, "ff_s": 0.0, "ff_steps": 0, "wakes": 0,
                      "ff_drift_used_max": 0.0}
        self.board = None
        self._board_ff = None
        self.next_wake = 0.0
        """When the board wakes next, s."""
        self.no_ff_before = 0.0
        """No fast-forward before this time, s (the board has not seen the last change)."""

    def attach(self, board) -> None:
        """The board whose wake-ups drive the loop (its ``fast_forward`` is optional)."""
        self.board = board
        self._board_ff = getattr(board, "fast_forward", None)

    def touch(self) -> None:
        """An input changed: the board must resample before anything is fast-forwarded."""
        s = self.sampling
        self.no_ff_before = self.clock.t + (s.filter_samples + 2) * s.period_s

    def raise_trip(self) -> None:
        """Report an emulator protection trip (:class:`EmulatorTrip`), once."""
        if self.emulator.trip_message is not None:
            raise EmulatorTrip(self.emulator.take_trip())

    def advance(self, dt: float) -> None:
        """Let ``dt`` s of rig time pass (exact piecewise integration, event to event)."""
        if dt < 0:
            raise ValueError(f"advance: negative duration {dt}")
        clock = self.clock
        t_end = clock.t + dt
        period = self.sampling.period_s
        fine_from = t_end - 2.0 * period
        max_step = self.max_step_s
        board = self.board
        stats = self.stats
        em = self.emulator
        while True:
            if em.trip_message is not None:
                self.raise_trip()
            t = clock.t
            if t >= t_end - EPS_T:
                break
            if self.next_wake <= t + EPS_T:
                nxt = board.wake(t)
                stats["wakes"] += 1
                if not nxt > t:
                    raise RuntimeError(f"board wake({t}) returned {nxt}: the next wake must be later than now")
                self.next_wake = nxt
                if (self._board_ff is not None and self.ff_enabled and t < fine_from - period
                        and t >= self.no_ff_before):
                    r = self._board_ff(fine_from)
                    if r is not None:
                        t_res, duty = r[0], r[1]
                        dv_max = FF_DV_MAX_V if len(r) < 3 or r[2] is None else min(float(r[2]), FF_DV_CAP_V)
                        if t_res > t + EPS_T and dv_max > 0.0:
                            self.fast_forward(min(t_res, fine_from), np.asarray(duty, float), dv_max)
                            self.next_wake = clock.t  # wake the board where the ff ended
                            if clock.t > t:
                                continue
                            # a window that could not take a single step: one fine step, so a
                            # board that declares the same window again cannot hold time still
                            self.next_wake = nxt
            t_next = min(self.next_wake, t_end, t + max_step)
            self.step(t_next - t)
            clock.t = t_next
        clock.t = max(clock.t, t_end) if abs(clock.t - t_end) < EPS_T else clock.t
        self.circuit.check_pending()
        self.raise_trip()

    def step(self, dt: float) -> None:
        """Integrate ``dt`` with every input held (the fine path)."""
        if dt <= 0.0:
            return
        self.stats["events"] += 1
        clock = self.clock
        bleed = self.bleed
        hist = self.history
        thermal = self.thermal
        t1 = clock.t + dt
        # dt as an array (a cheaper ufunc operand than a float; the same products)
        dta = self._dt_arrays.get(dt)
        if dta is None:  # a step length seen once: the float (an array when it comes again)
            if len(self._dt_arrays) >= 16:
                self._dt_arrays.clear()
            self._dt_arrays[dt] = False
            dta = dt
        elif dta is False:
            dta = self._dt_arrays[dt] = np.full(len(bleed.i_ch), dt)
        hist.q += bleed.i_ch * dta
        if bleed.any_conduct:
            hist.bleed_on_s += bleed.conduct_f * dta
            hist.bleed_charge_c += bleed.i_bleed * dta
            thermal.lump_j += float(bleed.i_bleed.dot(self.circuit.v)) * dt  # np.dot, one call fewer
        em = self.emulator
        if em.mode == "model":
            power = self.power
            i_board = bleed.i_ch
            if power.i_set != 0.0 and clock.t >= power.next_regulation_t:
                # the regulator re-evaluates a few times a second on the fine path
                power.i_pack = power.current(max(dt, CHARGER_REG_S), i_board)
                power.next_regulation_t = clock.t + CHARGER_REG_S
            em.pack.step(dt, bleed.cell_currents(power.i_pack))
            thermal.lump_s += dt
            clock.t = t1
            if thermal.lump_s >= THERMAL_LUMP_S:
                thermal.flush()
            self.circuit.stale = True  # terminal voltages refresh when someone looks (µV/ms drift)
        else:
            thermal.lump_s += dt
            clock.t = t1
            if thermal.lump_s >= THERMAL_LUMP_S:
                thermal.flush()
        hist.record(t1)

    def fast_forward(self, t_res: float, duty: np.ndarray, dv_max: float = FF_DV_MAX_V) -> None:
        """Integrate to ``t_res`` (s) with the average bleed ``duty`` (the board is quiet),
        ending early before any terminal voltage moves more than ``dv_max`` V."""
        clock = self.clock
        em = self.emulator
        power = self.power
        circuit = self.circuit
        thermal = self.thermal
        hist = self.history
        stats = self.stats
        thermal.flush()
        if em.mode == "model" and power.i_set != 0.0:
            # the regulator re-evaluates now, as the fine path would within CHARGER_REG_S:
            # the window's drift is counted from the terminals at the present current
            circuit.solve()
        else:
            circuit.refresh()
        stats["ff"] += 1
        t_start = clock.t
        g_eff, on_frac = self.bleed.average(duty)
        v0 = circuit.v.copy()
        tb0 = thermal.t_board
        chamber = thermal.chamber
        air0 = chamber.air_c
        model = em.mode == "model"
        h = t_res - clock.t
        if model:
            h = min(h, 60.0)
        if not chamber.quiet(0.2) or abs(thermal.t_board - air0) > 0.5:
            h = min(h, 30.0)
        iq = self.bleed.iq if em.enabled else 0.0
        moved = 0.0
        # no bleed over the window: the channel currents are the quiescent draw (v·0 + iq),
        # and the bleed totals and power do not move (+0 each step)
        idle = not (np.count_nonzero(g_eff) or np.count_nonzero(on_frac))
        i_ch = np.full(len(g_eff), iq) if idle else None
        p = 0.0
        # the loop's calls bound once (the same calls)
        pack = em.pack
        current = power.current
        t_step = thermal.step
        absolute, cap_share, end_v = np.abs, FF_STEP_SHARE, FF_DV_END * dv_max
        while clock.t < t_res - EPS_T:
            h = min(h, t_res - clock.t)
            if not idle:
                i_bleed = circuit.v * g_eff
                i_ch = i_bleed + iq
            if model:
                # keep the drift promise: no step may carry a cell past the drift limit
                i_prev = power.i_pack
                power.i_pack = current(h, i_ch)
                r = pack.voltage_rate(power.i_pack - i_ch, lookahead_s=h)
                rate = r.item(r.argmax())  # max(): argmax is a cheaper call on 16 cells
                h_cap = cap_share * (dv_max - moved) / max(rate, 1e-12)
                if h_cap < h:
                    h = h_cap
                    power.i_pack = current(h, i_ch)
                if power.i_pack != i_prev:
                    # a regulator current that changes (CV) moves every terminal at once by
                    # R0·ΔI, which the rate does not see: end before a step it would carry past
                    r0 = pack.resistance_r0()
                    jump = abs(power.i_pack - i_prev) * r0.item(r0.argmax())
                    if moved + jump > end_v:
                        power.i_pack = i_prev
                        break
            hist.q += i_ch * h
            if not idle:
                hist.bleed_on_s += on_frac * h
                hist.bleed_charge_c += i_bleed * h
                p = float(i_bleed.dot(circuit.v))  # np.dot, one call fewer
            v_prev = circuit.v
            if model:
                i_cell = power.i_pack - i_ch
                pack.step(h, i_cell)
            t_step(h, p)
            clock.t += h
            stats["ff_steps"] += 1
            if model:
                circuit.v = v = pack.terminal_voltage(i_cell)
                # _max_abs_diff against the step's start and the window's, written out
                d = v - v_prev
                absolute(d, out=d)
                dv_step = d.item(d.argmax())
                d = v - v0
                absolute(d, out=d)
                moved = d.item(d.argmax())
                if power.v_limit is not None and 0.0 < abs(power.i_pack) < abs(power.i_set):  # power.in_cv()
                    # under CV the regulator's current depends on the step length: the
                    # board will see the voltage at the instantaneous current after the window
                    i_fine = current(0.0, i_ch)
                    v_fine = pack.terminal_voltage(i_fine - i_ch)
                    moved = max(moved, _max_abs_diff(v_fine, v0))
                if moved > end_v:
                    break
                h = h * min(4.0, max(0.25, 1e-3 / max(dv_step, 1e-7)))
                h = min(h, 3600.0)
            if abs(thermal.t_board - tb0) > FF_DT_MAX_C or abs(chamber.air_c - air0) > FF_DT_MAX_C:
                break
        if abs(clock.t - t_res) < EPS_T:
            clock.t = t_res
        stats["ff_s"] += clock.t - t_start
        hist.record(clock.t)
        circuit.solve()
        self.afe.reset(clock.t, circuit.afe_input())
        if model:  # what the board will see on waking, against the window's start
            used = _max_abs_diff(circuit.v, v0) / dv_max
            if used > stats["ff_drift_used_max"]:
                stats["ff_drift_used_max"] = used
