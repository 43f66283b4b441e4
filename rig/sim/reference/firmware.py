"""The reference BMS firmware model, configured only from the board profile.

Cycle (every ``sampling.period_s``, cycle k at ``t_k = k · period``):

1. ``t_k``: mute balancing (all bleed switches off; skipped when nothing bleeds);
2. ``t_k + mute_s``: convert every channel (the input filter has settled), push the sample
   into a moving average of ``filter_samples``, run protection on the raw conversion
   (:mod:`.protection`), take a balancing decision when one is due (:mod:`.balancing`),
   restore the bleed switches, publish telemetry.

Fast-forward: the board declares its state to the bench (:mod:`.quiet`,
:mod:`rig.sim.fastforward`). Firmware defects arrive typed
(:class:`rig.sim.defects.BoardDefects`). Units: V, A, s, °C.
"""

from __future__ import annotations

import numpy as np

from ..defects import board_defects
from ..harness import BoardHarness, Telemetry
from .balancing import Balancing
from .protection import Protection
from .quiet import Quiet

EPS = 1e-9


class ReferenceBoard(Protection, Balancing, Quiet):
    """The reference firmware. ``ReferenceBoard(harness, profile, defects)``; ``defects``:
    the run's :class:`~rig.sim.defects.Defects` (or a :class:`~rig.sim.defects.BoardDefects`)."""

    def __init__(self, harness: BoardHarness, profile, defects):
        self.h = harness
        self.profile = profile
        self.defects = defects
        self.firmware_defects = fd = board_defects(defects)
        self.n = n = harness.n_cells
        s = profile.sampling
        self.period = s.period_s
        self.mute = s.mute_s
        self.fs = s.filter_samples
        self.interval = profile.balancing.interval_s
        self.D = max(1, int(round(self.interval / s.period_s)))  # cycles per decision
        self.dec_phase = (self.fs - 1) % self.D
        self.setup_protection(profile.protection, fd)
        self.setup_balancing(profile.balancing, fd)

        # state
        self.k = 0  # present cycle
        self.mute_done = False
        self.samples = np.zeros((self.fs, n))  # the filter's raw conversions (ring)
        self.filled = 0
        self.pos = 0
        self.v = np.zeros(n)  # filtered
        self.raw = np.zeros(n)
        self.temps = None
        self.i_pack = 0.0
        self.sw = np.zeros(n, bool)  # switches as applied
        self._sw_b = self.sw.tobytes()  # ... as bytes
        self._sw_any = False  # ... any on
        self._off = np.zeros(n, bool)  # all switches off (never written)
        self._off_b = self._off.tobytes()  # ... as bytes: a bool array is all off when its bytes are these
        self.window = None  # the fast-forward window the board sleeps through
        self.last_conversion_t = None
        stated = s.resolution_mv * 1e-3 if "resolution_mv" in s.model_fields_set else 0.0  # else the link's scale
        self.resolution_v = max(stated, fd.report_resolution_v or 0.0)
        self.report_every = max(1, int(round(s.report_period_s / s.period_s)))  # conversions per report
        harness.set_bleed(self.sw)
        harness.set_fets(True, True)
        harness.set_output("hvc_out", False)

    # ------------------------------------------------------------------ schedule helpers
    def t_mute(self, k: int) -> float:
        return k * self.period

    def t_conv(self, k: int) -> float:
        return k * self.period + self.mute

    def desired(self, now: float) -> np.ndarray:
        """The bleed switches the PWM wants at ``now``."""
        if self.pwm_off_at is not None and now < self.pwm_off_at - EPS and self.mask.tobytes() != self._off_b:
            return self.mask
        return np.zeros(self.n, bool)

    def apply_switches(self, sw: np.ndarray) -> None:
        b = sw.tobytes()
        if b != self._sw_b:  # both bool (n,)
            self.sw = sw.copy()
            self._sw_b = b
            self._sw_any = b != self._off_b
            self.h.set_bleed(self.sw)

    # ------------------------------------------------------------------ firmware
    def wake(self, now: float) -> float:
        if self.window is not None:
            self.resume(now)
        k = self.k
        period = self.period
        # 1. mute (at k · period)
        if not self.mute_done and now >= k * period - EPS:
            if not self.no_mute and self._sw_any:
                self.apply_switches(self._off)
            self.mute_done = True
        # 2. conversion (at k · period + mute)
        if now >= k * period + self.mute - EPS:
            self._convert(now, k)
            self.k = k = k + 1
            self.mute_done = False
        # 3. protection timers
        hvc, lvc = self.hvc, self.lvc
        pending = (hvc.trip_at is not None or hvc.recover_at is not None
                   or lvc.trip_at is not None or lvc.recover_at is not None)
        if pending:
            self.run_timers(now)
        # 4. PWM end
        if self.pwm_off_at is not None and now >= self.pwm_off_at - EPS:
            self.pwm_off_at = None
            if not self._in_mute(now):
                self.apply_switches(self.desired(now))
        # next wake
        nxt = k * period + self.mute
        if not self.mute_done and not self.no_mute and (self._sw_any or self._will_bleed(k)):
            nxt = k * period
        # run_timers only clears timers: none pending before it, none after
        timers = (*self.protection_timers(), self.pwm_off_at) if pending else (self.pwm_off_at,)
        for t in timers:
            if t is not None and now + EPS < t < nxt:
                nxt = t
        if nxt <= now + EPS:
            nxt = now + 1e-6
        return nxt

    def _will_bleed(self, k: int) -> bool:
        return (self.pwm_off_at is not None and self.pwm_off_at > self.t_mute(k) + EPS
                and self.mask.tobytes() != self._off_b)

    def _in_mute(self, now: float) -> bool:
        return self.mute_done and not self.no_mute and now < self.t_conv(self.k) - EPS

    def _convert(self, now: float, k: int) -> None:
        h = self.h
        raw = h.read_cell_voltages()
        self.raw = raw
        self.samples[self.pos] = raw
        self.pos = (self.pos + 1) % self.fs
        if self.filled < self.fs:
            self.filled += 1
        # the moving average: mean(axis=0) as its sum and one division (the same numbers)
        v = np.add.reduce(self.samples[: self.filled], axis=0)
        v /= self.filled
        self.v = v
        self.temps = h.read_temperatures()
        self.i_pack = h.read_pack_current()
        self.last_conversion_t = now
        self.protect(now)
        if self.chatter or (k % self.D == self.dec_phase):
            self.decide(now, raw if self.chatter else self.v, advance_parity=(k % self.D == self.dec_phase))
        self.apply_switches(self.desired(now))
        if k % self.report_every == 0:
            self.publish(now)

    def reported_cell_v(self) -> np.ndarray:
        """The filtered cell voltages as reported: rounded to the reporting resolution, V."""
        q = self.resolution_v
        return np.rint(self.v / q) * q if q > 1e-6 else self.v.copy()  # np.round to 0 decimals is rint

    def publish(self, now: float) -> None:
        """Publish a telemetry snapshot of the present state."""
        t = self.temps
        if t is None:
            return
        b = self.profile.bench
        no_id = self.firmware_defects.no_identity
        # mask & (duty > 0): the mask itself (a copy) or none
        balancing = self.mask.copy() if self.duty > 0.0 else np.zeros(self.n, bool)
        cells = t["cells"]
        m = len(cells)
        temps = np.empty(m + 1)  # np.append(cells, bleed_resistor), filled in place
        temps[:m] = cells
        temps[m] = t["bleed_resistor"]
        self.h.publish(Telemetry(
            cell_v=self.reported_cell_v(),
            temps_c=temps,
            balancing=balancing,
            hvc=self.hvc.active and not self.hvc_flag_missing,
            lvc=self.lvc.active, ot=self.ot, ut=self.ut,
            charge_fet=self.fet_c, discharge_fet=self.fet_d,
            pack_v=float(np.add.reduce(self.v)), pack_a=float(self.i_pack),  # v.sum(), one call fewer
            serial="" if no_id else b.serial, hw_revision=b.hw_revision,
            fw_version="" if no_id else b.fw_version,
            state=self.state,
        ))
