"""The reference firmware's set-points taken from host commands (``setpoints_by_command``).

A declared value (HVC / LVC threshold, balancing start / stop delta, absolute start level)
starts at the profile's ``factory_default`` and follows the last value of the declared
command the host sent over the link, as the bench decoded it
(:meth:`rig.sim.harness.BoardHarness.commands`); read at every conversion, before the
protection comparators and the balancing decision. Firmware defects still shift a commanded
threshold as they shift a promised one. A profile without declarations costs nothing.
Units: V, mV (the profile key's unit).
"""

from __future__ import annotations


class SetPoints:
    """Set-point part of :class:`~rig.sim.reference.firmware.ReferenceBoard` (a mixin: it uses
    ``profile``, ``h`` and the protection / balancing settings it updates)."""

    def initial_setpoint(self, key: str, promised: float) -> float:
        """The value in force before any command: the factory default when ``key`` is taken
        from a command, else the ``promised`` profile value (the key's unit)."""
        d = self.profile.setpoints_by_command.get(key)
        return promised if d is None else d.factory_default

    def refresh_setpoints(self) -> None:
        """Apply the last commanded value of every declared set-point (factory default when none
        arrived)."""
        decl = self.profile.setpoints_by_command
        if not decl:
            return
        got = self.h.commands()
        now = getattr(self, "setpoints_in_force", None)
        if now is None:
            now = self.setpoints_in_force = {k: d.factory_default for k, d in decl.items()}
        for key, d in decl.items():
            raw = (got.get(d.command) or {}).get(d.value)
            value = d.factory_default if raw is None else d.to_profile(key, float(raw))
            if value != now[key]:
                now[key] = value
                self.apply_setpoint(key, value)

    def apply_setpoint(self, key: str, value: float) -> None:
        """Put ``value`` (the profile key's unit) in force for ``key``."""
        fd = self.firmware_defects
        if key == "protection.hvc.threshold_v":
            self.hvc_thr = value + fd.hvc_threshold_shift_v
            self.hvc_rec_v = self.hvc_thr - self.hvc_hyst_v
        elif key == "protection.lvc.threshold_v":
            self.lvc_thr = value - fd.lvc_threshold_shift_v
            self.lvc_rec_v = self.lvc_thr + self.lvc_hyst_v
        elif key == "balancing.start_delta_mv" and fd.balance_start_delta_v is None:
            self.start_v = value * 1e-3
        elif key == "balancing.stop_delta_mv" and fd.balance_stop_delta_v is None:
            self.stop_v = value * 1e-3
        elif key == "balancing.start_cell_v" and self.absolute_v is not None:
            self.absolute_v = value
