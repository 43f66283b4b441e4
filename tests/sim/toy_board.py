"""A toy board model: a different firmware from the reference one, on the same contract.

- converts every ``sampling.period_s`` at the start of the cycle, reports the raw values
  (no moving average, no mute: a bleeding channel reads low by its IR drop);
- HVC/LVC on the raw extreme cell with the profile's delay, hysteresis and recovery;
- fixed-threshold balancing every ``balancing.interval_s``, at rest only (|I| ≤ the
  profile's ``rest_current_a``): when Vmax ≥ the profile's
  ``min_cell_v`` (no temperature compensation) and Vmax − Vmin exceeds the start delta
  (the stop delta while balancing), bleed the cells more than the stop delta above Vmin,
  highest first, never adjacent, at most ``max_channels`` (no odd/even alternation), at the
  profile's derating duty of the bleed-resistor NTC (PWM from the decision);
- no OT/UT.

It declares its state to the bench's fast-forward (:mod:`rig.sim.fastforward`) instead of
computing windows. Units: V, A, s, °C.
"""

from __future__ import annotations

import math

import numpy as np

from rig.sim import fastforward as ff
from rig.sim.harness import Telemetry

EPS = 1e-9
GUARD_SAMPLES = 4


class ToyBoard:
    """``ToyBoard(harness, profile, defects)``; firmware defects are ignored (hardware ones
    act in the world)."""

    def __init__(self, harness, profile, defects):
        self.h, self.profile, self.n = harness, profile, harness.n_cells
        s, b, p = profile.sampling, profile.balancing, profile.protection
        self.period, self.interval = s.period_s, b.interval_s
        self.every = max(1, int(round(b.interval_s / s.period_s)))
        self.hvc_thr, self.hvc_rec = p.hvc.threshold_v, p.hvc.threshold_v - p.hvc.hysteresis_mv * 1e-3
        self.lvc_thr, self.lvc_rec = p.lvc.threshold_v, p.lvc.threshold_v + p.lvc.hysteresis_mv * 1e-3
        self.start_v, self.stop_v = b.start_delta_mv * 1e-3, b.stop_delta_mv * 1e-3
        self.k = 0
        self.recent = np.zeros((GUARD_SAMPLES, self.n))
        self.count = 0
        self.v = np.zeros(self.n)
        self.temps = None
        self.i_pack = 0.0
        self.hvc = self.lvc = False
        self.timer = {"hvc": None, "lvc": None}
        self.mask = np.zeros(self.n, bool)
        self.pwm_off_at = None
        self.sw = np.zeros(self.n, bool)
        self.last_conversion_t = None
        self.window = None
        harness.set_fets(True, True)
        harness.set_output("hvc_out", False)

    # ------------------------------------------------------------------ firmware
    def wake(self, now: float) -> float:
        if self.window is not None:
            self._resume(now)
        if now >= self.k * self.period - EPS:
            self._convert(now)
            self.k += 1
        self._timers(now)
        if self.pwm_off_at is not None and now >= self.pwm_off_at - EPS:
            self.pwm_off_at = None
        self._switch(self.mask if self.pwm_off_at is not None else np.zeros(self.n, bool))
        nxt = self.k * self.period
        for t in (self.timer["hvc"], self.timer["lvc"], self.pwm_off_at):
            if t is not None and now + EPS < t < nxt:
                nxt = t
        return max(nxt, now + 1e-6)

    def _switch(self, sw) -> None:
        if not np.array_equal(sw, self.sw):
            self.sw = np.array(sw, bool)
            self.h.set_bleed(self.sw)

    def _convert(self, now: float) -> None:
        self.v = self.h.read_cell_voltages()
        self.recent[self.count % GUARD_SAMPLES] = self.v
        self.count += 1
        self.temps = self.h.read_temperatures()
        self.i_pack = self.h.read_pack_current()
        self.last_conversion_t = now
        vmax, vmin = float(self.v.max()), float(self.v.min())
        self._compare("hvc", now, vmax >= self.hvc_thr, vmax <= self.hvc_rec)
        self._compare("lvc", now, vmin <= self.lvc_thr, vmin >= self.lvc_rec)
        if self.k % self.every == 0:
            self._decide(now)
        self._publish()

    def _compare(self, which: str, now: float, over: bool, back: bool) -> None:
        cut = self.profile.protection.hvc if which == "hvc" else self.profile.protection.lvc
        latched = getattr(self, which)
        if (back if latched else over):
            if self.timer[which] is None:
                self.timer[which] = now + (cut.recovery_s if latched else cut.delay_s)
        else:
            self.timer[which] = None

    def _timers(self, now: float) -> None:
        changed = False
        for which in ("hvc", "lvc"):
            t = self.timer[which]
            if t is not None and now >= t - EPS:
                setattr(self, which, not getattr(self, which))
                self.timer[which] = None
                changed = True
        if changed:
            self.h.set_fets(not self.hvc, not self.lvc)
            self.h.set_output("hvc_out", self.hvc)
            self._publish()

    def wants(self, v: np.ndarray, on: bool) -> np.ndarray:
        """The mask a decision takes on voltages ``v`` (``on``: balancing now)."""
        vmax, vmin = float(v.max()), float(v.min())
        mask = np.zeros(self.n, bool)
        if abs(self.i_pack) > self.profile.balancing.strategies.rest_current_a:
            return mask  # balances at rest only
        if vmax < self.profile.balancing.min_cell_v or vmax - vmin <= (self.stop_v if on else self.start_v):
            return mask
        for i in np.argsort(-v, kind="stable"):
            if mask.sum() >= self.profile.balancing.max_channels or v[i] - vmin <= self.stop_v:
                continue
            if (i > 0 and mask[i - 1]) or (i < self.n - 1 and mask[i + 1]):
                continue
            mask[i] = True
        return mask

    def duty(self) -> float:
        """Bleed duty at the bleed-resistor NTC: the profile's derating curve."""
        return self.profile.balancing.derating.duty_at(float(self.temps["bleed_resistor"]))

    def _decide(self, now: float) -> None:
        self.mask = self.wants(self.v, bool(self.mask.any()))
        d = self.duty()
        self.pwm_off_at = now + d * self.interval if self.mask.any() and d > 0.0 else None

    def _publish(self) -> None:
        if self.temps is None:
            return
        b = self.profile.bench
        self.h.publish(Telemetry(
            cell_v=self.v.copy(), temps_c=np.append(self.temps["cells"], self.temps["bleed_resistor"]),
            balancing=self.mask.copy(), hvc=self.hvc, lvc=self.lvc, charge_fet=not self.hvc,
            discharge_fet=not self.lvc, pack_v=float(self.v.sum()), pack_a=float(self.i_pack),
            serial="TOY-" + b.serial, hw_revision=b.hw_revision, fw_version="toy-1.0",
            state="rest" if abs(self.i_pack) < 0.05 else ("charge" if self.i_pack > 0 else "discharge")))

    # ------------------------------------------------------------------ fast-forward
    def quiet_state(self) -> ff.QuietState:
        """The toy's declaration to the bench (see :mod:`rig.sim.fastforward`)."""
        v, b = self.v, self.profile.balancing
        vmax, vmin = float(v.max()), float(v.min())
        on = bool(self.mask.any())
        levels = (ff.Level(self.hvc_rec, float(self.recent.min(axis=0).max()), rising=False) if self.hvc
                  else ff.Level(self.hvc_thr, float(self.recent.max()), rising=True),
                  ff.Level(self.lvc_rec, float(self.recent.max(axis=0).min()), rising=True) if self.lvc
                  else ff.Level(self.lvc_thr, float(self.recent.min()), rising=False))
        conds = (ff.Condition(vmax, b.min_cell_v, inclusive=True),
                 ff.Condition(vmax - vmin, self.stop_v if on else self.start_v, share=0.5))
        hold = (0.5 * float(np.min(np.abs(v - vmin - self.stop_v))),) if on else ()
        c = self.k - 1
        first = c + ((-c) % self.every or self.every)
        same = np.array_equal(self.wants(v, on), self.mask)
        derating = None
        if on:
            p_full = float(np.sum(v[self.mask] ** 2)) / b.bleed_resistor_ohm
            derating = ff.DeratingLoop(b.derating.duty_at, p_full, float(self.temps["board"]),
                                       b.resistor_thermal_c_per_w, b.resistor_thermal_tau_s, self.interval,
                                       1.0, float(self.temps["bleed_resistor"]))
        decisions = ff.Decisions(
            period_s=self.period, offset_s=0.0, first_cycle=first, every=self.every, interval_s=self.interval,
            limit=math.inf if same else 0, present=(self.mask, self.pwm_off_at) if on and self.pwm_off_at else None,
            masks=(self.mask,) if on else (), derating=derating)
        return ff.QuietState(at=self.last_conversion_t, decisions=decisions, settled=self.count >= GUARD_SAMPLES,
                             timers=(self.timer["hvc"], self.timer["lvc"]), levels=levels,
                             guard_v=ff.noise_guard_v(self.recent),
                             gate=ff.Gate(conds, hold) if abs(self.i_pack) <= b.strategies.rest_current_a else None)

    def fast_forward(self, until: float):
        now = self.h.now()
        if self.window is not None or self.last_conversion_t is None or self.temps is None:
            return None
        w = ff.plan_window(self.quiet_state(), until, now, self.h.ff_drift_limit_v, self.h.ff_drift_cap_v,
                           n_cells=self.n)
        if w is None:
            return None
        self.window = w
        self._switch(np.zeros(self.n, bool))
        return w.answer()

    def _resume(self, now: float) -> None:
        w, self.window = self.window, None
        last = w.last_decision(now)
        if last is not None:
            _, self.mask, _, self.pwm_off_at = last
        if self.pwm_off_at is not None and self.pwm_off_at <= now + EPS:
            self.pwm_off_at = None
        self.k = max(self.k, math.ceil(now / self.period - 1e-6))
        self.count = 0
