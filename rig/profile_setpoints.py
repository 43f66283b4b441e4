"""Set-points the board takes from a host command: the profile's ``setpoints_by_command``.

Many boards ship with factory defaults and must be configured by the host before a test
("HVC threshold = 3.60 V", "balancing start delta = 10 mV"). The profile keeps promising
the value the plans judge (``protection.hvc.threshold_v`` ...) and declares, per promised
value, which board command of the link map carries it and what the board does without it::

    setpoints_by_command:
      protection.hvc.threshold_v: {command: hvc_setpoint, value: threshold_v, factory_default: 3.75}
      balancing.start_delta_mv: {command: bal_delta, value: BalStartDelta, factory_default: 50, unit: mV}

``command`` is a command of the link map's ``commands:`` (CAN signal map or Modbus register
map); ``value`` the parameter (or, CAN, the constant signal) of that command carrying the
set-point; ``factory_default`` the board's value before any such command arrived, in the
profile key's unit; ``unit`` the unit the command carries it in (``V`` or ``mV``; default:
the profile key's unit). The rig configures the board with the map's ``when: start``
commands: ``bmsrig check`` and the link refuse a map whose start command sends a value other
than the promised one (:mod:`rig.links.setpoint_check`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .yamlio import KeyedValueError

SETPOINT_UNITS = {
    "protection.hvc.threshold_v": "V",
    "protection.lvc.threshold_v": "V",
    "balancing.start_delta_mv": "mV",
    "balancing.stop_delta_mv": "mV",
    "balancing.start_cell_v": "V",
}
"""The promised values a board may take from a command, and the unit the profile states them in."""

SetpointKey = Literal["protection.hvc.threshold_v", "protection.lvc.threshold_v", "balancing.start_delta_mv",
                      "balancing.stop_delta_mv", "balancing.start_cell_v"]

_TO_V = {"V": 1.0, "mV": 1e-3}


class SetpointByCommand(BaseModel):
    """One promised value the board takes from a command (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    command: str = Field(min_length=1, description="a command of the link map's commands:")
    value: str = Field(min_length=1, description="the parameter (CAN: or constant signal) carrying the set-point")
    factory_default: float = Field(gt=0, description="the board's value without the command, in the key's unit")
    unit: Literal["V", "mV"] | None = Field(None, description="unit the command carries the value in "
                                           "(default: the profile key's unit)")

    def command_unit(self, key: str) -> str:
        """The unit the command carries the value of profile ``key`` in."""
        return self.unit or SETPOINT_UNITS[key]

    def to_profile(self, key: str, commanded: float) -> float:
        """A commanded value (command unit) in the profile key's unit."""
        return float(commanded) * _TO_V[self.command_unit(key)] / _TO_V[SETPOINT_UNITS[key]]

    def to_command(self, key: str, promised: float) -> float:
        """A profile value (the key's unit) in the command's unit."""
        return float(promised) * _TO_V[SETPOINT_UNITS[key]] / _TO_V[self.command_unit(key)]


def promised_value(profile, key: str) -> float | None:
    """The value the profile promises for dotted ``key`` (None when it states none)."""
    obj = profile
    for part in key.split("."):
        obj = getattr(obj, part, None)
    return None if obj is None else float(obj)


def check_setpoint_keys(profile) -> None:
    """Each declared key names a value the profile promises (KeyedValueError naming it)."""
    for key, d in profile.setpoints_by_command.items():
        if promised_value(profile, key) is None:
            raise KeyedValueError(f"setpoints_by_command.{key}", f"the profile promises no {key} (the board "
                                  f"could take it from a command only if the profile states it)")
        if key == "balancing.start_cell_v" and profile.balancing.start_mode != "absolute":
            raise KeyedValueError(f"setpoints_by_command.{key}", "applies only with balancing.start_mode: absolute")
