"""The reference firmware's declaration to the bench's fast-forward (:mod:`rig.sim.fastforward`).

Right after a conversion the board declares: settled once the filter is full; its pending
HVC/LVC timers; its OT/UT temperature edges; the protection levels against the least
favourable raw conversion in the filter (the trip level; for a latched cut-off the
recovery level) with the noise guard of those conversions; the balancing gate (minimum
cell voltage, start/stop delta, each candidate's lead, the voltage order when
``max_channels`` truncates); its decision cadence (a window ends ``filter_samples``
cycles before a decision, so that on resume the filter refills and the board decides on
schedule) and the bleed plan of the decisions it lets the bench skip (odd/even
alternation, strategy, derating loop). The bench computes the window; this module only
states the firmware's rules. Units: V, s, °C, W.
"""

from __future__ import annotations

import math

import numpy as np

from .. import fastforward as ff

EPS = ff.EPS
FF_MAX_S = 24 * 3600.0
"""Longest fast-forward window while balancing, s (re-sample and re-decide at least this often;
the drift limit, the gate margins and the thermal check end a window sooner when anything moves)."""
CHATTER_BUSY_V = 0.010
"""With ``balance_chatter``: not quiet while Vmax − Vmin is this close to the start delta, V."""


class Quiet:
    """Fast-forward part of :class:`~rig.sim.reference.firmware.ReferenceBoard` (a mixin)."""

    def noise_guard_v(self, hi: np.ndarray | None = None, lo: np.ndarray | None = None) -> float:
        """What a protection comparator must keep clear of beyond the drift, V
        (:func:`rig.sim.fastforward.noise_guard_v` of the filter's raw conversions; ``hi`` /
        ``lo``: their per-channel max / min when already worked out)."""
        return ff.noise_guard_v(self.samples, hi=hi, lo=lo)

    def _level_terms(self, hi: np.ndarray, lo: np.ndarray) -> tuple:
        """``((level, reading, rising), ...)`` of :meth:`protection_levels` from the filter's
        per-channel max ``hi`` and min ``lo`` (V): the max over every conversion is the max
        of ``hi``, the min the min of ``lo`` (the same values)."""
        # max()/min() as item(argmax()): the same values, cheaper calls on a few cells
        if self.hvc.active:  # the cell the latch waits on, at its lowest conversion
            hvc = (self.hvc_rec_v, lo.item(lo.argmax()), False)
        else:
            hvc = (self.hvc_thr, hi.item(hi.argmax()), True)
        if self.lvc.active:
            lvc = (self.lvc_rec_v, hi.item(hi.argmin()), True)
        else:
            lvc = (self.lvc_thr, lo.item(lo.argmin()), False)
        return hvc, lvc

    def protection_levels(self, hi: np.ndarray | None = None, lo: np.ndarray | None = None) -> tuple[ff.Level, ...]:
        """The levels that would change a protection comparator, against the least
        favourable raw conversion in the filter (``hi`` / ``lo``: the filter's per-channel
        max / min when already worked out)."""
        buf = self.samples
        terms = self._level_terms(buf.max(axis=0) if hi is None else hi, buf.min(axis=0) if lo is None else lo)
        return tuple(ff.Level(level, reading, rising=rising) for level, reading, rising in terms)

    def balancing_gate(self) -> ff.Gate | None:
        """Balancing as a resolved decision (None when the pack state keeps it off or the
        board decides every cycle)."""
        if not (self.strategy_duty(self.pack_state(self.i_pack)) > 0.0 and not self.chatter):
            return None
        v = self.v
        vmax, vmin = v.item(v.argmax()), v.item(v.argmin())
        conds = []
        if not self.ignore_min_v:
            shift = 0.0
            if self.temp_comp:
                shift = self.profile.balancing.temp_comp_mv_per_c * 1e-3 * self.h.ff_drift_limit_c
            conds.append(ff.Condition(vmax, self.min_cell_v(), inclusive=True, slack=shift))
        hold = []
        if self.absolute_v is not None:  # absolute start: each cell against the level
            level = self.absolute_level_v(self.balancing)
            conds.append(ff.Condition(vmax, level, share=0.5))
            lead, edge = v, level
        else:
            level = self.stop_v if self.balancing else self.start_v
            conds.append(ff.Condition(vmax - vmin, level, share=0.5))
            lead, edge = v - vmin, self.stop_v
        if all(c.holds for c in conds):  # active: the candidate set must hold too
            gap = lead - edge
            np.abs(gap, out=gap)
            hold.append(0.5 * gap.item(gap.argmin()))
            if any(truncated for _, truncated in self.selections()):
                cand = np.sort(v[lead > edge])
                if cand.size > 1:
                    step = np.diff(cand)
                    hold.append(0.5 * step.item(step.argmin()))
        return ff.Gate(tuple(conds), tuple(hold))

    def drift_allowance_v(self) -> float:
        """How far any cell may drift in a window before a decision of this board could
        change, V (< 0 when one is imminent): protection exactly, balancing resolved to at
        least the world's default drift limit (:func:`rig.sim.fastforward.drift_allowance_v`)."""
        return ff.drift_allowance_v(self.protection_levels(), self.noise_guard_v(), self.balancing_gate(),
                                    self.h.ff_drift_limit_v)

    def quiet_state(self, until: float | None = None, levels: tuple | None = None,
                    guard_v: float | None = None) -> ff.QuietState | None:
        """The declaration to the bench right after a conversion (None when the board is
        not settled, is bleeding outside a balancing decision, or no window of its cadence
        could end by ``until``, s). ``levels`` and ``guard_v``: :meth:`protection_levels`
        and :meth:`noise_guard_v` when already worked out for this conversion."""
        if self.filled < self.fs or self.temps is None:
            return None
        if not self.balancing and np.count_nonzero(self.mask):
            return None
        busy = False
        if self.chatter:
            busy = abs(float(self.v.max() - self.v.min()) - self.start_v) < CHATTER_BUSY_V
        pre = ff.QuietState(at=self.last_conversion_t, busy=busy, timers=self.protection_timers(),
                            temperature_edges=self.temperature_edges())
        if not ff.is_quiet(pre):
            return pre  # not quiet: the rest of the declaration would not be read
        c = self.k - 1  # the cycle just converted
        D = self.D
        first = c + ((self.dec_phase - c) % D or D)
        if until is not None and not ff.cadence_fits(self.period, first, self.fs - 1, until):
            return None
        strat = self.strategy_duty(self.pack_state(self.i_pack))
        limit = math.inf
        if strat != self.strategy_duty(self.state):
            limit = 0
        par_masks = tuple(mask for mask, _ in self.selections())
        would = self.active(self.v, self.balancing, strat) and bool(np.count_nonzero(par_masks[self.parity ^ 1]))
        if would != self.balancing:
            limit = 0  # the next decision changes something: let the firmware take it for real
        present = masks = None
        derating = None
        if self.balancing:
            limit = min(limit, max(0, int(FF_MAX_S / self.interval) - 1))
            masks = par_masks
            if self.pwm_off_at is not None:
                present = (self.mask, self.pwm_off_at)
            b = self.profile.balancing
            v = self.v
            sums = [(v[m] ** 2).sum() for m in masks]
            # np.mean of two: (a + b) / 2, the same number without building an array
            mean = (sums[0] + sums[1]) / 2 if len(sums) == 2 else np.mean(sums)
            p_full = float(mean) / self.r_bleed * (1.0 - self.mute / self.period)
            derating = ff.DeratingLoop(self.derating_duty, p_full, float(self.temps["board"]),
                                       b.resistor_thermal_c_per_w, b.resistor_thermal_tau_s, self.interval,
                                       strat, float(self.temps["bleed_resistor"]))
        decisions = ff.Decisions(
            period_s=self.period, offset_s=self.mute, first_cycle=first, every=D,
            interval_s=self.interval, lead=self.fs - 1, limit=limit, present=present, masks=masks or (),
            first_mask=self.parity + 1, strategy=strat, derating=derating,
            on_share=1.0 if self.no_mute else (1.0 - self.mute / self.period))
        # dataclasses.replace(pre, ...) spelled out (the same declaration, without its field walk)
        return ff.QuietState(at=pre.at, decisions=decisions, settled=pre.settled, busy=pre.busy,
                             timers=pre.timers, temperature_edges=pre.temperature_edges,
                             levels=self.protection_levels() if levels is None else levels,
                             guard_v=self.noise_guard_v() if guard_v is None else guard_v,
                             gate=self.balancing_gate())

    def fast_forward(self, until: float):
        """Quiet stretch: ``(t_resume, duty, drift_limit_v)`` from the bench's
        :func:`rig.sim.fastforward.plan_window`, or None. Right after a conversion only."""
        now = self.h.now()
        if self.window is not None or self.last_conversion_t is None or abs(now - self.last_conversion_t) > EPS:
            return None
        if self.filled < self.fs or self.temps is None:
            return None  # not settled (quiet_state's first answer)
        if any(t is not None for t in self.protection_timers()):
            return None  # a timer pending: not quiet (ff.is_quiet), no window
        buf = self.samples
        hi, lo = buf.max(axis=0), buf.min(axis=0)
        guard = self.noise_guard_v(hi, lo)
        # the exact part of the drift allowance (ff.drift_allowance_v: the smallest
        # Level.distance_v less the guard, the same expressions): below MIN_DRIFT_V the bench
        # plans no window whatever the rest of the declaration says (a cell inside the noise
        # guard of a protection level), so it is not built
        terms = self._level_terms(hi, lo)
        distances = [level - reading if rising else reading - level for level, reading, rising in terms]
        if min(distances, default=math.inf) - guard < ff.MIN_DRIFT_V:
            return None
        levels = tuple(ff.Level(level, reading, rising=rising) for level, reading, rising in terms)
        state = self.quiet_state(until, levels, guard)
        if state is None:
            return None
        w = ff.plan_window(state, until, now, self.h.ff_drift_limit_v, self.h.ff_drift_cap_v, n_cells=self.n)
        if w is None:
            return None
        self.window = w
        self.apply_switches(np.zeros(self.n, bool))
        return w.answer()

    def resume(self, now: float) -> None:
        """Wake after a window: take the last decision the window stood in for, restart the
        filter, re-enter the schedule."""
        w = self.window
        self.window = None
        last = w.last_decision(now)
        if last is not None:
            self.parity, self.mask, self.duty, self.pwm_off_at = last
        if self.pwm_off_at is not None and self.pwm_off_at <= now + EPS:
            self.pwm_off_at = None
        self.k = max(self.k, math.ceil(now / self.period - 1e-6))
        self.mute_done = False
        self.filled = 0
        self.pos = 0
        self.last_conversion_t = None
        if now < self.t_mute(self.k) - EPS:
            self.apply_switches(self.desired(now))
