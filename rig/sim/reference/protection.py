"""The reference firmware's protection: HVC/LVC comparators with delay and recovery, OT/UT.

- HVC: any cell ≥ ``hvc.threshold_v`` at every (raw) conversion for ``hvc.delay_s`` -> charge
  FET open, HVC flag, ``hvc_out`` high. The trip happens at exactly ``t_cross + delay`` (a
  wake is scheduled there), so latency resolves to the millisecond. Recovery: every cell ≤
  threshold − hysteresis for ``recovery_s``, by the profile's ``recovery``: ``hysteresis``;
  ``lockout`` (back below the threshold, not before ``lockout_s`` after the trip); ``both``
  (hysteresis, not before the lockout); ``latched`` (hysteresis, only once the charger is
  removed: ``harness.external_request_a()`` ≤ 0; LVC: the load, ≥ 0).
- LVC: the same downwards with the discharge FET.
- OT/UT: hottest cell NTC ≥ ``ot_charge_c`` / coldest ≤ ``ut_charge_c`` opens the charge FET
  (``OTUT_HYSTERESIS_C`` recovery hysteresis).

Units: V, s, °C.
"""

from __future__ import annotations

import numpy as np

from .setpoints import SetPoints

EPS = 1e-9
OTUT_HYSTERESIS_C = 2.0


class Cutoff:
    """One protection comparator with delay and recovery (state only): ``active`` (latched),
    ``trip_at`` / ``recover_at`` (pending timer instants, s, or None)."""

    __slots__ = ("active", "trip_at", "recover_at", "tripped_t")

    def __init__(self):
        self.active = False
        self.trip_at = None
        self.recover_at = None
        self.tripped_t = None

    def timers(self) -> tuple:
        """The pending timer instants (s, or None)."""
        return self.trip_at, self.recover_at

    def compare(self, now: float, over: bool, back: bool, delay: float, recovery: float, lockout: float = 0.0) -> None:
        """Start or cancel the trip/recovery timer from one conversion's comparison (the
        release not before ``lockout`` s after the trip)."""
        if not self.active:
            if over:
                if self.trip_at is None:
                    self.trip_at = now + delay
            else:
                self.trip_at = None
        else:
            if back:
                if self.recover_at is None:
                    self.recover_at = max(now + recovery, (self.tripped_t or now) + lockout)
            else:
                self.recover_at = None

    def expire(self, now: float) -> bool:
        """Fire a timer that is due; True when the latch changed."""
        changed = False
        if self.trip_at is not None and now >= self.trip_at - EPS:
            self.active, self.trip_at, self.recover_at, self.tripped_t = True, None, None, now
            changed = True
        if self.recover_at is not None and now >= self.recover_at - EPS:
            self.active, self.recover_at = False, None
            changed = True
        return changed


class Protection(SetPoints):
    """Protection part of :class:`~rig.sim.reference.firmware.ReferenceBoard` (a mixin:
    it uses the board's ``h``, ``raw``/``v``, ``temps`` and the thresholds set in
    :meth:`setup_protection`)."""

    PROTECTION_ON_RAW = True
    """Protection comparators run on every raw conversion (as AFE protection does, e.g.
    BQ76952); the moving average only feeds the reported values and balancing. With the
    profile's 4-sample filter, a filtered comparator would add up to 4 periods (1 s) of
    detection lag on a step, breaking the profile's own latency spec (delay 1 s, latency
    1.5 s)."""

    def setup_protection(self, p, fd) -> None:
        """Thresholds from the profile's ``protection`` section ``p`` and the typed firmware
        defects ``fd`` (:class:`~rig.sim.defects.BoardDefects`)."""
        self.hvc_thr = self.initial_setpoint("protection.hvc.threshold_v", p.hvc.threshold_v) + fd.hvc_threshold_shift_v
        self.hvc_delay = p.hvc.delay_s + fd.hvc_extra_delay_s
        self.hvc_hyst_v = fd.hvc_hysteresis_v if fd.hvc_hysteresis_v is not None else p.hvc.hysteresis_mv * 1e-3
        self.hvc_rec_v = self.hvc_thr - self.hvc_hyst_v
        self.hvc_recovery = p.hvc.recovery_s
        self.hvc_mode, self.lvc_mode = p.hvc.recovery, p.lvc.recovery
        self.hvc_lockout = max(0.0, p.hvc.lockout_s - fd.lockout_short_s)
        self.lvc_lockout = max(0.0, p.lvc.lockout_s - fd.lockout_short_s)
        self.latch_early = fd.latch_release_early
        self.hvc_flag_missing = fd.hvc_flag_missing
        self.lvc_thr = self.initial_setpoint("protection.lvc.threshold_v", p.lvc.threshold_v) - fd.lvc_threshold_shift_v
        self.lvc_delay = p.lvc.delay_s
        self.lvc_hyst_v = p.lvc.hysteresis_mv * 1e-3
        self.lvc_rec_v = self.lvc_thr + self.lvc_hyst_v
        self.lvc_recovery = p.lvc.recovery_s
        self.ot_c = p.ot_charge_c
        self.ut_c = p.ut_charge_c
        self.hvc, self.lvc = Cutoff(), Cutoff()
        self._external_request = getattr(self.h, "external_request_a", None)  # charger detect, if any
        self.ot = self.ut = False
        self.fet_c = self.fet_d = True

    def protect(self, now: float) -> None:
        """Run the comparators on the conversion just taken (set-points commanded by the host
        first: :mod:`.setpoints`)."""
        if self.profile.setpoints_by_command:  # (none declared: nothing to refresh)
            self.refresh_setpoints()
        v = self.raw if self.PROTECTION_ON_RAW else self.v
        vmax, vmin = v.item(v.argmax()), v.item(v.argmin())  # max/min (argmax: cheaper calls)
        hvc, lvc = self.hvc, self.lvc
        over, under = vmax >= self.hvc_thr, vmin <= self.lvc_thr
        # a comparator neither latched, nor timing, nor over its level has nothing to do
        if hvc.active or over or hvc.trip_at is not None or lvc.active or under or lvc.trip_at is not None:
            ext = self.external_request_a()
            hvc_back = vmax < self.hvc_thr if self.hvc_mode == "lockout" else vmax <= self.hvc_rec_v
            lvc_back = vmin > self.lvc_thr if self.lvc_mode == "lockout" else vmin >= self.lvc_rec_v
            if self.hvc_mode == "latched" and not self.latch_early:
                hvc_back = hvc_back and ext <= 0.0  # the charger removed
            if self.lvc_mode == "latched" and not self.latch_early:
                lvc_back = lvc_back and ext >= 0.0  # the load removed
            hvc.compare(now, over, hvc_back, self.hvc_delay, self.hvc_recovery, self.hvc_lockout)
            lvc.compare(now, under, lvc_back, self.lvc_delay, self.lvc_recovery, self.lvc_lockout)
        cells = self.temps["cells"]
        tmax, tmin = cells.item(cells.argmax()), cells.item(cells.argmin())
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
            self.drive_fets()

    def external_request_a(self) -> float:
        """What the charger (+) or load (−) connected to the pack asks for, A (0: none);
        a harness without charger detection: 0."""
        read = self._external_request
        return float(read()) if read is not None else 0.0

    def run_timers(self, now: float) -> None:
        """Fire due protection timers (FETs and telemetry follow at once)."""
        changed = False
        for c in (self.hvc, self.lvc):
            if c.expire(now):
                changed = True
        if changed:
            self.drive_fets()
            self.publish(now)

    def protection_timers(self) -> tuple:
        """Every pending protection timer instant (s, or None)."""
        return (*self.hvc.timers(), *self.lvc.timers())

    def temperature_edges(self) -> tuple:
        """``(reading, edge)`` pairs of the OT/UT comparators, °C (the edge that would
        change each one now)."""
        cells = self.temps["cells"]
        tmax, tmin = cells.item(cells.argmax()), cells.item(cells.argmin())
        ot_edge = self.ot_c - OTUT_HYSTERESIS_C if self.ot else self.ot_c
        ut_edge = self.ut_c + OTUT_HYSTERESIS_C if self.ut else self.ut_c
        return (tmax, ot_edge), (tmin, ut_edge)

    def drive_fets(self) -> None:
        c = not (self.hvc.active or self.ot or self.ut)
        d = not self.lvc.active
        self.h.set_output("hvc_out", self.hvc.active)
        if (c, d) != (self.fet_c, self.fet_d):
            self.fet_c, self.fet_d = c, d
            self.h.set_fets(c, d)
