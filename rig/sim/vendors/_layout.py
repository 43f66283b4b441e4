"""What the vendor boards share: the reference firmware with a telemetry layout of its own.

A vendor board publishes its temperatures in its own order and number (:meth:`temps_c`),
its own identity strings, and otherwise what the reference firmware decided. Units: V, °C.
"""

from __future__ import annotations

import numpy as np

from ..harness import Telemetry
from ..reference.firmware import ReferenceBoard


class VendorBoard(ReferenceBoard):
    """The reference firmware cycle with a vendor's telemetry layout (override :meth:`temps_c`)."""

    FW_PREFIX = ""
    """Prefix of the reported firmware version (the vendor's numbering)."""

    def temps_c(self, t: dict) -> np.ndarray:
        """The temperatures this board reports, in its own order, °C (``t``: the NTC readings
        of :meth:`rig.sim.harness.BoardHarness.read_temperatures`)."""
        return np.append(t["cells"], t["bleed_resistor"])

    def publish(self, now: float) -> None:
        t = self.temps
        if t is None:
            return
        b, fd = self.profile.bench, self.firmware_defects
        self.h.publish(Telemetry(
            cell_v=self.reported_cell_v(), temps_c=self.temps_c(t),
            balancing=self.mask & (self.duty > 0.0),
            hvc=self.hvc.active and not self.hvc_flag_missing, lvc=self.lvc.active, ot=self.ot, ut=self.ut,
            charge_fet=self.fet_c, discharge_fet=self.fet_d,
            pack_v=float(self.v.sum()), pack_a=float(self.i_pack),
            serial="" if fd.no_identity else b.serial, hw_revision=b.hw_revision,
            fw_version="" if fd.no_identity else self.FW_PREFIX + b.fw_version, state=self.state))


def every(cells: np.ndarray, k: int) -> np.ndarray:
    """One NTC per ``k`` cells: the mean temperature of each group of ``k`` cells, °C."""
    n = len(cells)
    return np.array([float(np.mean(cells[i:i + k])) for i in range(0, n, k)])
