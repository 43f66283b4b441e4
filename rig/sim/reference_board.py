"""The reference BMS firmware model, configured only from the board profile.

Cycle (every ``sampling.period_s``, cycle k at ``t_k = k · period``):

1. ``t_k``: mute balancing (all bleed switches off; skipped when nothing bleeds);
2. ``t_k + mute_s``: convert every channel (the input filter has settled), push the sample
   into a moving average of ``filter_samples``, run protection on the filtered values,
   take a balancing decision when one is due, restore the bleed switches, publish telemetry.

Protection (filtered cell voltages, cell NTCs):

- HVC: any cell ≥ ``hvc.threshold_v`` at every (raw) conversion for ``hvc.delay_s`` -> charge FET
  open, HVC flag, ``hvc_out`` high. The trip happens at exactly ``t_cross + delay`` (a wake
  is scheduled there), so latency resolves to the millisecond. Recovery: every cell ≤
  threshold − hysteresis for ``recovery_s``.
- LVC: the same downwards with the discharge FET.
- OT/UT: hottest cell NTC ≥ ``ot_charge_c`` / coldest ≤ ``ut_charge_c`` opens the charge FET
  (2 °C recovery hysteresis).

Balancing (decided every ``balancing.interval_s``, at a conversion):

- pack state from the shunt: rest (|I| ≤ rest_current_a), discharge, float (0 < I <
  float_current_a), charge; the strategy duty of that state multiplies the bleed duty;
- only if Vmax ≥ ``min_cell_v_at(mean cell NTC)`` and Vmax − Vmin > start delta (or,
  already balancing, > stop delta);
- candidates: cells more than stop delta above Vmin; at most ``max_channels``; never
  adjacent unless ``allow_adjacent``: odd and even channel sets alternate each interval,
  highest voltage first, then non-adjacent cells of the other parity fill free slots;
- duty = strategy × derating(bleed-resistor NTC) (``derating.duty_at``), applied as on/off
  PWM within the interval (on from the decision for duty × interval).

The reported ``balancing`` mask is the decision (cells selected this interval), not the
instantaneous switch state.

Fast-forward: see :meth:`ReferenceBoard.fast_forward`. Firmware defects
(:mod:`rig.sim.defects`) are applied here.
"""

from __future__ import annotations

import math

import numpy as np

from .harness import BoardHarness, Telemetry

EPS = 1e-9
NOISE_GUARD_SPREADS = 3.0
"""Noise guard of the fast-forward rule: this many times the widest spread (max − min) of
the last ``filter_samples`` raw conversions of any channel. Four samples of white noise
spread about 2 σ, the widest of 16 channels about 3 σ, so the guard is about 9 σ (0.3 mV
RMS AFE noise and 185 µV steps: ~3.3 mV measured; 5 mV RMS injected noise: > 20 mV, so
no fast-forward anywhere near a threshold). A moving input widens the spread too."""
FF_MIN_DRIFT_V = 0.5e-3
"""No fast-forward when the drift allowance is below this, V (the window would end at once)."""
STATIC_GUARD_V = 1.0e-3
"""What the world's drift check cannot see, V: AFE drift over the window's board
temperature move (≤ 8 µV/°C x 1 °C on a good AFE), quantisation (±0.09 mV)."""
QUIET_MARGIN_C = 2.0
OTUT_HYSTERESIS_C = 2.0
FF_MAX_S = 3600.0
"""Longest fast-forward window while balancing, s (re-sample and re-decide at least this often)."""
FF_THERMAL_TOL_C = 0.75


class _Cutoff:
    """One protection comparator with delay and recovery (state only)."""

    __slots__ = ("active", "trip_at", "recover_at")

    def __init__(self):
        self.active = False
        self.trip_at = None
        self.recover_at = None


class ReferenceBoard:
    """The reference firmware. ``ReferenceBoard(harness, profile, defects)``; see module doc."""

    PROTECTION_ON_RAW = True
    """Protection comparators run on every raw conversion (as AFE protection does, e.g.
    BQ76952); the moving average only feeds the reported values and balancing. With the
    profile's 4-sample filter, a filtered comparator would add up to 4 periods (1 s) of
    detection lag on a step, breaking the profile's own latency spec (delay 1 s, latency
    1.5 s)."""

    def __init__(self, harness: BoardHarness, profile, defects):
        self.h = harness
        self.profile = profile
        self.defects = defects
        self.n = n = harness.n_cells
        s, b, p = profile.sampling, profile.balancing, profile.protection
        self.period = s.period_s
        self.mute = s.mute_s
        self.fs = s.filter_samples
        self.interval = b.interval_s
        self.D = max(1, int(round(b.interval_s / s.period_s)))  # cycles per decision
        self.dec_phase = (self.fs - 1) % self.D

        d = defects
        self.hvc_thr = p.hvc.threshold_v + (d.get("hvc_threshold")["mv"] * 1e-3 if "hvc_threshold" in d else 0.0)
        self.hvc_delay = p.hvc.delay_s + (d.get("hvc_delay")["s"] if "hvc_delay" in d else 0.0)
        hyst = d.get("hvc_hysteresis")["mv"] if "hvc_hysteresis" in d else p.hvc.hysteresis_mv
        self.hvc_rec_v = self.hvc_thr - hyst * 1e-3
        self.hvc_recovery = p.hvc.recovery_s
        self.hvc_flag_missing = "hvc_flag_missing" in d
        self.lvc_thr = p.lvc.threshold_v - (d.get("lvc_threshold")["mv"] * 1e-3 if "lvc_threshold" in d else 0.0)
        self.lvc_delay = p.lvc.delay_s
        self.lvc_rec_v = self.lvc_thr + p.lvc.hysteresis_mv * 1e-3
        self.lvc_recovery = p.lvc.recovery_s
        self.ot_c = p.ot_charge_c
        self.ut_c = p.ut_charge_c

        self.start_v = (d.get("balance_start_delta")["mv"] if "balance_start_delta" in d else b.start_delta_mv) * 1e-3
        self.stop_v = (d.get("balance_stop_delta")["mv"] if "balance_stop_delta" in d else b.stop_delta_mv) * 1e-3
        self.ignore_min_v = "balance_mid_soc" in d
        self.no_mute = "balance_during_sampling" in d
        self.bleed_all = "balance_adjacent" in d
        self.chatter = "balance_chatter" in d
        self.no_derating = "no_derating" in d
        self.derate_shift = d.get("derating_late")["c"] if "derating_late" in d else 0.0
        self.temp_comp = "no_temp_compensation" not in d
        self.max_ch = b.max_channels
        self.allow_adjacent = b.allow_adjacent
        self.st = b.strategies
        self.r_bleed = b.bleed_resistor_ohm

        # state
        self.k = 0  # present cycle
        self._mute_done = False
        self._buf = np.zeros((self.fs, n))
        self._filled = 0
        self._pos = 0
        self.v = np.zeros(n)  # filtered
        self.raw = np.zeros(n)
        self.temps = None
        self.i_pack = 0.0
        self.hvc, self.lvc = _Cutoff(), _Cutoff()
        self.ot = self.ut = False
        self.fet_c = self.fet_d = True
        self.balancing = False
        self.mask = np.zeros(n, bool)
        self.duty = 0.0
        self.parity = 0
        self.pwm_off_at = None
        self.sw = np.zeros(n, bool)  # switches as applied
        self.state = "rest"
        self._ff = None
        self._last_conv_t = None
        self._sel_k = None  # the cycle _selections() was computed for
        self._sel = None
        self.toggles = 0
        harness.set_bleed(self.sw)
        harness.set_fets(True, True)
        harness.set_output("hvc_out", False)

    # ------------------------------------------------------------------ schedule helpers
    def t_mute(self, k: int) -> float:
        return k * self.period

    def t_conv(self, k: int) -> float:
        return k * self.period + self.mute

    def _desired(self, now: float) -> np.ndarray:
        if self.mask.any() and self.pwm_off_at is not None and now < self.pwm_off_at - EPS:
            return self.mask
        return np.zeros(self.n, bool)

    def _apply(self, sw: np.ndarray) -> None:
        if not np.array_equal(sw, self.sw):
            self.sw = sw.copy()
            self.h.set_bleed(self.sw)

    # ------------------------------------------------------------------ firmware
    def wake(self, now: float) -> float:
        if self._ff is not None:
            self._resume(now)
        k = self.k
        # 1. mute
        if not self._mute_done and now >= self.t_mute(k) - EPS:
            if not self.no_mute and self.sw.any():
                self._apply(np.zeros(self.n, bool))
            self._mute_done = True
        # 2. conversion
        if now >= self.t_conv(k) - EPS:
            self._convert(now, k)
            self.k = k = k + 1
            self._mute_done = False
        # 3. protection timers
        self._timers(now)
        # 4. PWM end
        if self.pwm_off_at is not None and now >= self.pwm_off_at - EPS:
            self.pwm_off_at = None
            if not self._in_mute(now):
                self._apply(self._desired(now))
        # next wake
        nxt = self.t_conv(k)
        if not self._mute_done and not self.no_mute and (self.sw.any() or self._will_bleed(k)):
            nxt = self.t_mute(k)
        for t in (self.hvc.trip_at, self.hvc.recover_at, self.lvc.trip_at, self.lvc.recover_at, self.pwm_off_at):
            if t is not None and now + EPS < t < nxt:
                nxt = t
        if nxt <= now + EPS:
            nxt = now + 1e-6
        return nxt

    def _will_bleed(self, k: int) -> bool:
        return bool(self.mask.any()) and self.pwm_off_at is not None and self.pwm_off_at > self.t_mute(k) + EPS

    def _in_mute(self, now: float) -> bool:
        return self._mute_done and not self.no_mute and now < self.t_conv(self.k) - EPS

    def _convert(self, now: float, k: int) -> None:
        h = self.h
        raw = h.read_cell_voltages()
        self.raw = raw
        self._buf[self._pos] = raw
        self._pos = (self._pos + 1) % self.fs
        if self._filled < self.fs:
            self._filled += 1
            self.v = self._buf[: self._filled].mean(axis=0) if self._filled < self.fs else self._buf.mean(axis=0)
        else:
            self.v = self._buf.mean(axis=0)
        self.temps = h.read_temperatures()
        self.i_pack = h.read_pack_current()
        self._last_conv_t = now
        self._protection(now)
        if self.chatter or (k % self.D == self.dec_phase):
            self._decide(now, raw if self.chatter else self.v, advance_parity=(k % self.D == self.dec_phase))
        self._apply(self._desired(now))
        self._publish(now)

    # ---- protection
    def _protection(self, now: float) -> None:
        v = self.raw if self.PROTECTION_ON_RAW else self.v
        vmax, vmin = float(v.max()), float(v.min())
        self._cutoff(self.hvc, now, vmax >= self.hvc_thr, vmax <= self.hvc_rec_v, self.hvc_delay, self.hvc_recovery)
        self._cutoff(self.lvc, now, vmin <= self.lvc_thr, vmin >= self.lvc_rec_v, self.lvc_delay, self.lvc_recovery)
        cells = self.temps["cells"]
        tmax, tmin = float(np.max(cells)), float(np.min(cells))
        ot = self.ot
        if not ot and tmax >= self.ot_c:
            ot = True
        elif ot and tmax <= self.ot_c - OTUT_HYSTERESIS_C:
            ot = False
        ut = self.ut
        if not ut and tmin <= self.ut_c:
            ut = True
        elif ut and tmin >= self.ut_c + OTUT_HYSTERESIS_C:
            ut = False
        if (ot, ut) != (self.ot, self.ut):
            self.ot, self.ut = ot, ut
            self._fets()

    @staticmethod
    def _cutoff(c: _Cutoff, now, over: bool, back: bool, delay: float, recovery: float) -> None:
        if not c.active:
            if over:
                if c.trip_at is None:
                    c.trip_at = now + delay
            else:
                c.trip_at = None
        else:
            if back:
                if c.recover_at is None:
                    c.recover_at = now + recovery
            else:
                c.recover_at = None

    def _timers(self, now: float) -> None:
        changed = False
        for c in (self.hvc, self.lvc):
            if c.trip_at is not None and now >= c.trip_at - EPS:
                c.active, c.trip_at, c.recover_at = True, None, None
                changed = True
            if c.recover_at is not None and now >= c.recover_at - EPS:
                c.active, c.recover_at = False, None
                changed = True
        if changed:
            self._fets()
            self._publish(now)

    def _fets(self) -> None:
        c = not (self.hvc.active or self.ot or self.ut)
        d = not self.lvc.active
        self.h.set_output("hvc_out", self.hvc.active)
        if (c, d) != (self.fet_c, self.fet_d):
            self.fet_c, self.fet_d = c, d
            self.h.set_fets(c, d)

    # ---- balancing
    def pack_state(self, i: float) -> str:
        st = self.st
        if abs(i) <= st.rest_current_a:
            return "rest"
        if i < 0:
            return "discharge"
        if i < st.float_current_a:
            return "float"
        return "charge"

    def strategy_duty(self, state: str) -> float:
        st = self.st
        return {"rest": st.rest, "charge": st.charge, "float": st.float_, "discharge": st.discharge}[state]

    def min_cell_v(self) -> float:
        b = self.profile.balancing
        if not self.temp_comp:
            return b.min_cell_v
        return b.min_cell_v_at(float(np.mean(self.temps["cells"])))

    def derating_duty(self, t_ntc: float) -> float:
        if self.no_derating:
            return 1.0
        return self.profile.balancing.derating.duty_at(t_ntc - self.derate_shift)

    def _active(self, v: np.ndarray, was_active: bool, strat: float) -> bool:
        vmax, vmin = float(v.max()), float(v.min())
        if strat <= 0.0:
            return False
        if not self.ignore_min_v and vmax < self.min_cell_v():
            return False
        delta = vmax - vmin
        if self.chatter:
            return delta > self.start_v
        return delta > self.stop_v if was_active else delta > self.start_v

    def select(self, v: np.ndarray, parity: int) -> np.ndarray:
        """The channels to bleed this interval for filtered voltages ``v``."""
        return self._select(v, parity)[0]

    def _selections(self) -> tuple[tuple[np.ndarray, bool], tuple[np.ndarray, bool]]:
        """``_select(self.v, q)`` for both parities, computed once per conversion (the
        filtered voltages change only there) for the fast-forward rule and window."""
        if self._sel_k != self.k:
            self._sel = (self._select(self.v, 0), self._select(self.v, 1))
            self._sel_k = self.k
        return self._sel

    def _select(self, v: np.ndarray, parity: int) -> tuple[np.ndarray, bool]:
        """``(mask, truncated)``: truncated when ``max_channels`` left out a candidate that
        could otherwise have been bled (then the voltage order decided the mask)."""
        n = self.n
        vmin = float(v.min())
        cand = (v - vmin) > self.stop_v
        sel = np.zeros(n, bool)
        if not cand.any():
            return sel, False
        if self.bleed_all:
            return cand, False
        order = np.argsort(-v, kind="stable")
        if self.allow_adjacent:
            for i in order:
                if cand[i] and sel.sum() < self.max_ch:
                    sel[i] = True
            return sel, int(cand.sum()) > self.max_ch
        count = 0
        truncated = False
        for pass_parity in (parity, 1 - parity):
            for i in order:
                if not cand[i] or sel[i] or (i % 2) != pass_parity:
                    continue
                if (i > 0 and sel[i - 1]) or (i < n - 1 and sel[i + 1]):
                    continue
                if count >= self.max_ch:
                    truncated = True
                    break
                sel[i] = True
                count += 1
        return sel, truncated

    def _decide(self, now: float, v: np.ndarray, advance_parity: bool = True) -> None:
        self.state = self.pack_state(self.i_pack)
        strat = self.strategy_duty(self.state)
        active = self._active(v, self.balancing, strat)
        if active:
            if self.balancing and advance_parity:
                self.parity ^= 1  # odd/even sets alternate each interval
            mask = self.select(v, self.parity)
            duty = strat * self.derating_duty(float(self.temps["bleed_resistor"]))
        else:
            mask = np.zeros(self.n, bool)
            duty = 0.0
        self.balancing = active and bool(mask.any())
        if not np.array_equal(mask, self.mask):
            self.toggles += 1
        self.mask = mask
        self.duty = duty
        if advance_parity or self.chatter:
            self.pwm_off_at = (now + duty * self.interval) if (self.balancing and duty > 0.0) else None
            if self.pwm_off_at is not None and duty >= 1.0:
                self.pwm_off_at = now + self.interval + self.period  # on through the interval

    def _publish(self, now: float) -> None:
        t = self.temps
        if t is None:
            return
        b = self.profile.bench
        self.h.publish(Telemetry(
            cell_v=self.v.copy(),
            temps_c=np.append(t["cells"], t["bleed_resistor"]),
            balancing=self.mask & (self.duty > 0.0),
            hvc=self.hvc.active and not self.hvc_flag_missing,
            lvc=self.lvc.active, ot=self.ot, ut=self.ut,
            charge_fet=self.fet_c, discharge_fet=self.fet_d,
            pack_v=float(self.v.sum()), pack_a=float(self.i_pack),
            serial=b.serial, hw_revision=b.hw_revision, fw_version=b.fw_version,
            state=self.state,
        ))

    # ------------------------------------------------------------------ fast-forward
    def _quiet(self) -> bool:
        if self._filled < self.fs or self.temps is None:
            return False
        if any(x is not None for x in (self.hvc.trip_at, self.hvc.recover_at, self.lvc.trip_at, self.lvc.recover_at)):
            return False
        v = self.v
        cells = self.temps["cells"]
        tmax, tmin = float(np.max(cells)), float(np.min(cells))
        ot_edge = self.ot_c - OTUT_HYSTERESIS_C if self.ot else self.ot_c
        ut_edge = self.ut_c + OTUT_HYSTERESIS_C if self.ut else self.ut_c
        if abs(tmax - ot_edge) < QUIET_MARGIN_C or abs(tmin - ut_edge) < QUIET_MARGIN_C:
            return False
        if self.chatter:
            delta = float(v.max() - v.min())
            if abs(delta - self.start_v) < 0.010:
                return False
        return True

    def noise_guard_v(self) -> float:
        """What a protection comparator must keep clear of beyond the drift, V: the noise
        guard (``NOISE_GUARD_SPREADS`` x the widest spread of the last ``filter_samples``
        raw conversions of any channel: noise, and a fast-moving input) plus the static
        guard."""
        buf = self._buf
        spread = float(np.max(buf.max(axis=0) - buf.min(axis=0)))
        return NOISE_GUARD_SPREADS * spread + STATIC_GUARD_V

    def drift_allowance_v(self) -> float:
        """How far any cell may drift in a window before a decision of this board could
        change, V (the drift limit it names for the window; < 0 when one is imminent):

        - protection: the least favourable raw conversion in the filter against the level
          that would change a comparator (the trip level; for a latched cut-off the
          recovery level), less :meth:`noise_guard_v`. Skipped conversions then cannot
          have tripped or recovered anything: protection is resolved exactly;
        - balancing, when the pack state allows it: whether it runs depends on Vmax
          against the minimum cell voltage (margin: the distance, less what the
          temperature compensation can shift over the window's temperature limit) and on
          Vmax − Vmin against the start delta (or, balancing, the stop delta; margin: half
          the distance, a difference of two cells moves by up to twice the drift).
          Inactive, it stays so while any failing condition keeps failing (the largest
          failing margin); active, every condition must hold, and so must the candidate
          set: half the distance of each cell's lead over Vmin to the stop delta and,
          when ``max_channels`` left out a candidate, half the smallest gap between
          candidate voltages (the order picks). Balancing is resolved to at least the
          world's default drift limit: a cell sitting on its stop level would otherwise
          hold every window at zero; between two looks the board may bleed on a decision
          up to that drift old (ff-vs-fine bounds the cost).
        """
        buf = self._buf
        guard = self.noise_guard_v()
        if self.hvc.active:  # the cell the latch waits on, at its lowest conversion
            d_hvc = float(buf.min(axis=0).max()) - self.hvc_rec_v
        else:
            d_hvc = self.hvc_thr - float(buf.max())
        if self.lvc.active:
            d_lvc = self.lvc_rec_v - float(buf.max(axis=0).min())
        else:
            d_lvc = float(buf.min()) - self.lvc_thr
        allow_protection = min(d_hvc, d_lvc) - guard
        allow = math.inf
        if self.strategy_duty(self.pack_state(self.i_pack)) > 0.0 and not self.chatter:
            v = self.v
            vmax, vmin = float(v.max()), float(v.min())
            # active <=> (Vmax >= minimum cell voltage) and (delta > level): a condition
            # holds or fails robustly within its margin
            conds = []
            if not self.ignore_min_v:
                shift = 0.0
                if self.temp_comp:
                    shift = self.profile.balancing.temp_comp_mv_per_c * 1e-3 * self.h.ff_drift_limit_c
                a = vmax - self.min_cell_v()
                conds.append((a >= 0.0, abs(a) - shift))
            level = self.stop_v if self.balancing else self.start_v
            b = (vmax - vmin) - level
            conds.append((b > 0.0, 0.5 * abs(b)))
            failing = [m for ok, m in conds if not ok]
            if failing:  # inactive: stays so while any failing condition keeps failing
                allow = min(allow, max(failing))
            else:  # active: the conditions and the candidate set must hold
                allow = min(allow, min(m for _, m in conds))
                lead = v - vmin
                allow = min(allow, 0.5 * float(np.min(np.abs(lead - self.stop_v))))
                if any(truncated for _, truncated in self._selections()):
                    cand = np.sort(v[lead > self.stop_v])
                    allow = min(allow, 0.5 * float(np.min(np.diff(cand))))
        # balancing decisions are resolved to the world's default drift limit (a cell that
        # sits on its stop level would otherwise hold every window at zero): between two
        # looks the board may bleed on a decision up to that drift old, as a real one
        # does between its own decisions; ff-vs-fine bounds what that costs
        return min(allow_protection, max(allow, self.h.ff_drift_limit_v))

    def _equilibrium(self, masks: list[np.ndarray], strat: float):
        """Derating fixed point of the PWM loop: the duty d with d = derate(T at a decision)
        where T at a decision is the periodic-steady-state minimum of the hot spot.
        Returns (d, T_min, T_mean)."""
        b = self.profile.balancing
        k_th, tau, I = b.resistor_thermal_c_per_w, b.resistor_thermal_tau_s, self.interval
        v = self.v
        p_full = float(np.mean([np.sum(v[m] ** 2) for m in masks])) / self.r_bleed * (1.0 - self.mute / self.period)
        t_b = float(self.temps["board"])
        e_i = math.exp(-I / tau)

        def temps(d):
            a = min(max(strat * d, 0.0), 1.0) * I
            rise = k_th * p_full
            t_min = t_b + rise * (1.0 - math.exp(-a / tau)) * math.exp(-(I - a) / tau) / (1.0 - e_i)
            t_mean = t_b + rise * a / I
            return t_min, t_mean

        if self.derating_duty(temps(1.0)[0]) >= 1.0:
            return 1.0, *temps(1.0)
        lo, hi = 0.0, 1.0
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            if self.derating_duty(temps(mid)[0]) > mid:
                lo = mid
            else:
                hi = mid
        d = 0.5 * (lo + hi)
        return d, *temps(d)

    def fast_forward(self, until: float):
        """Quiet stretch: return ``(t_resume, duty, drift_limit_v)`` or None.

        Quiet means: filter full, no protection timer or recovery pending, no cell NTC
        within 2 °C of an OT/UT edge, and a drift allowance (:meth:`drift_allowance_v`) of
        at least ``FF_MIN_DRIFT_V``: the window's drift limit, so that no protection
        decision (and no balancing decision beyond the 5 mV default resolution) can change
        inside it. Right after a conversion only. The window ends ``filter_samples`` cycles before a
        decision, so that on resume the filter refills and the board decides on schedule.
        While balancing, the window spans whole intervals with the same odd/even
        alternation the firmware would run (at most ``FF_MAX_S``); when the bleed-resistor
        NTC is in the derating range the window spans several intervals only at the
        derating loop's fixed point (else up to the next decision).
        ``duty = mask × strategy × derating × (1 − mute_s/period_s)`` averaged over the window.
        """
        now = self.h.now()
        if self._ff is not None or self._last_conv_t is None or abs(now - self._last_conv_t) > EPS:
            return None
        if not self._quiet():
            return None
        allow = min(self.drift_allowance_v(), self.h.ff_drift_cap_v)
        if allow < FF_MIN_DRIFT_V:
            return None
        c = self.k - 1  # the cycle just converted
        P, D, fs = self.period, self.D, self.fs
        if D < fs:
            return None
        # decision cycles after c
        first_dec = c + ((self.dec_phase - c) % D or D)
        # largest decision cycle K with resume mute time t_mute(K - fs + 1) <= until
        k_res_max = math.floor((until + EPS) / P)
        K_max = k_res_max + fs - 1
        if K_max < first_dec:
            return None
        n_dec = (K_max - first_dec) // D  # decisions we may skip entirely (virtual)
        strat = self.strategy_duty(self.pack_state(self.i_pack))
        if strat != self.strategy_duty(self.state):
            n_dec = 0
        if self.mask.any() and not self.balancing:
            return None
        par_masks = {q: mask for q, (mask, _) in enumerate(self._selections())}
        would = self._active(self.v, self.balancing, strat) and bool(par_masks[self.parity ^ 1].any())
        if would != self.balancing:
            n_dec = 0  # the next decision changes something: let the firmware take it for real
        eq = None
        if self.balancing:
            max_dec = max(0, int(FF_MAX_S / self.interval) - 1)
            n_dec = min(n_dec, max_dec)
            if n_dec > 0:
                masks = [par_masks[0], par_masks[1]]
                d_eq, t_min, t_mean = self._equilibrium(masks, strat)
                t_ntc = float(self.temps["bleed_resistor"])
                if d_eq < 1.0 and not (t_min - FF_THERMAL_TOL_C <= t_ntc <= t_mean + FF_THERMAL_TOL_C):
                    n_dec = 0
                eq = d_eq
        K = first_dec + n_dec * D
        k_res = K - fs + 1
        t_res = self.t_mute(k_res)
        if t_res - now < 2 * P:
            return None
        # the bleed schedule over [now, t_res]: the present interval, then virtual decisions
        window = t_res - now
        on = np.zeros(self.n)
        if self.balancing and self.pwm_off_at is not None:
            # the present mask holds until its PWM off time or the next decision, whichever first
            on += self.mask * max(0.0, min(self.pwm_off_at, self.t_conv(first_dec), t_res) - now)
        virtual = None
        if self.balancing and n_dec > 0:
            # decisions j = 0..n_dec-1 at t_conv(first_dec + j·D); parity flips at each;
            # a decision's mask holds until its PWM off time or the next decision
            dj = strat * (eq if eq is not None else 1.0)
            tj = self.t_conv(first_dec + np.arange(n_dec) * D)
            off = tj + dj * self.interval if dj < 1.0 else tj + self.interval + P
            on_j = np.maximum(0.0, np.minimum(np.minimum(off, tj + D * P), t_res) - tj)
            parities = (self.parity + 1 + np.arange(n_dec)) % 2
            for q in (0, 1):
                on += par_masks[q] * float(on_j[parities == q].sum())
            virtual = (tj, off, parities, par_masks, dj)
        duty = on / window * (1.0 if self.no_mute else (1.0 - self.mute / P))
        self._ff = {"t_res": t_res, "k_res": k_res, "virtual": virtual}
        self._apply(np.zeros(self.n, bool))
        return t_res, duty, allow

    def _resume(self, now: float) -> None:
        ff = self._ff
        self._ff = None
        if ff["virtual"] is not None:
            tj, off, parities, masks, dj = ff["virtual"]
            j = int(np.searchsorted(tj, now + EPS, side="right")) - 1  # the last decision taken
            if j >= 0:
                q = int(parities[j])
                self.parity, self.mask, self.duty = q, masks[q], dj
                self.pwm_off_at = float(off[j]) if dj > 0 else None
        if self.pwm_off_at is not None and self.pwm_off_at <= now + EPS:
            self.pwm_off_at = None
        self.k = max(self.k, math.ceil(now / self.period - 1e-6))
        self._mute_done = False
        self._filled = 0
        self._pos = 0
        self._last_conv_t = None
        if now < self.t_mute(self.k) - EPS:
            self._apply(self._desired(now))
