"""Resource bases shared by :mod:`rig.labgrid` and the instrument drivers.

It imports no driver module, so a driver module can define its own resource on these
bases while :mod:`rig.labgrid` imports the driver modules to register them (no import cycle).
"""

from __future__ import annotations

import attr
from labgrid.resource.common import Resource


@attr.s(eq=False)
class CalibratedInstrument(Resource):
    """Common identity of a real instrument, for the report (ISO/IEC 17025 7.8.2).

    Args:
        model (str): model text for the report
        serial (str): serial number
        calibration_due (str|None): ISO date the calibration is due
    """

    model = attr.ib(default="", converter=str)
    serial = attr.ib(default="", converter=str)
    calibration_due = attr.ib(default=None)
