"""Resource bases shared by :mod:`rig.labgrid` and the instrument drivers.

It imports no driver module, so a driver module can define its own resource on these
bases while :mod:`rig.labgrid` imports the driver modules to register them (no import cycle).
"""

from __future__ import annotations

import datetime as _dt
import json

import attr
from labgrid.resource.common import Resource


def iso_date(value):
    """A date parameter as an ISO string: YAML's unquoted ``2027-03-31`` arrives as a date
    (and could not cross labgrid's coordinator); a string is kept as written; None stays None."""
    if value is None:
        return None
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    return str(value)


def json_dict(value) -> dict:
    """A mapping parameter: a dict as written in a rig file, or the JSON text it crosses
    labgrid's coordinator as (a place's resources arrive so on the client)."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a mapping and not JSON text: {value!r} ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping, got {type(value).__name__}: {value!r}")
    return dict(value)


def wire_value(value):
    """One resource parameter as labgrid's coordinator carries it (str, int, float, bool,
    None): mappings and lists as JSON text, dates as ISO strings."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


@attr.s(eq=False)
class CalibratedInstrument(Resource):
    """Common identity of a real instrument, for the report (ISO/IEC 17025 7.8.2).

    Args:
        model (str): model text for the report
        serial (str): serial number
        calibration_due (str|None): ISO date the calibration is due (a YAML date is kept as its ISO text)
    """

    model = attr.ib(default="", converter=str)
    serial = attr.ib(default="", converter=str)
    calibration_due = attr.ib(default=None, converter=iso_date)
