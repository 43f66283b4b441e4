"""Board commands on the Modbus link: the register map's ``commands:`` section, sent as writes.

A command is one write transaction: function 05 (one coil), 06 (one holding register), 15
(several coils from ``address``, each 0 or 1) or 16 (several holding registers from ``address``). Each written value is a constant raw
``value`` or a ``parameter`` filled at send time in engineering units (raw =
round((v − offset) / scale), a ``uint16`` or ``int16``); a parameter's accepted range is the
register's width, narrowed by ``minimum`` / ``maximum`` when the board's documentation
states them. A value out of range is a :class:`~rig.errors.CommandError` naming the command,
the parameter and the range; nothing is sent. The board's write response is the
acknowledgement: no reply, a CRC error or a Modbus exception is a
:class:`~rig.errors.LinkFault` naming the command. ``when: start``: written when the link
opens; ``when: demand`` (default): ``link.command(name, **values)``. Map keys::

    commands:
      balancing_on: {function: 5, address: 100, values: [1], when: start}     # coil on
      hvc_setpoint:                                                           # one register
        function: 6
        address: 200
        values: [{parameter: threshold_v, scale: 0.001, minimum: 3.0, maximum: 4.0}]
      balancing_mask: {function: 16, address: 210, values: [mask_lo, mask_hi]}  # 2 registers
      switches: {function: 15, address: 0x1438, values: [1, 0, 0, 1]}         # 4 coils

A bare number in ``values`` is a constant, a bare name a parameter (scale 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import CommandError, ConfigError
from .base import check_command_parameters


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class WriteValue(_M):
    """One written coil or register: a constant raw ``value`` or a ``parameter`` (engineering units)."""

    value: int | None = None
    parameter: str | None = None
    scale: float = 1.0
    offset: float = 0.0
    type: Literal["uint16", "int16"] = "uint16"
    minimum: float | None = None
    maximum: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v):
        if isinstance(v, bool):
            return {"value": int(v)}
        if isinstance(v, int):
            return {"value": v}
        if isinstance(v, str):
            return {"parameter": v}
        return v

    @model_validator(mode="after")
    def _one(self):
        if (self.value is None) == (self.parameter is None):
            raise ValueError("give exactly one of 'value' (a constant) or 'parameter'")
        if self.scale == 0:
            raise ValueError("scale must not be 0")
        return self


class ModbusCommand(_M):
    """One named write (see the module docstring)."""

    function: Literal[5, 6, 15, 16]
    address: int = Field(ge=0, le=65535)
    values: list[WriteValue] = Field(min_length=1, max_length=123)
    when: Literal["start", "demand"] = "demand"

    @model_validator(mode="after")
    def _check(self):
        if self.function in (5, 6) and len(self.values) != 1:
            raise ValueError(f"function {self.function} writes one value, not {len(self.values)}")
        if self.address + len(self.values) > 65536:
            raise ValueError("the write runs past address 65535")
        if self.when == "start" and any(v.parameter for v in self.values):
            raise ValueError("a command written at start takes constants only (no 'parameter')")
        names = [v.parameter for v in self.values if v.parameter]
        if len(set(names)) != len(names):
            raise ValueError("a parameter appears twice")
        return self


FUNCTION_NAMES = {5: "write single coil (05)", 6: "write single register (06)", 15: "write multiple coils (15)",
                  16: "write multiple registers (16)"}
COIL_WRITES = (5, 15)


def _raw_range(fc: int, v: WriteValue) -> tuple[int, int]:
    if fc in COIL_WRITES:
        return 0, 1
    return (-32768, 32767) if v.type == "int16" else (0, 65535)


@dataclass
class ModbusCommandPlan:
    """One command, checked: ``table`` is the function code of the table written (1 coils, 3 holding)."""

    name: str
    function: int
    address: int
    values: list[WriteValue]
    when: str

    @property
    def table(self) -> int:
        return 1 if self.function in COIL_WRITES else 3

    @property
    def parameters(self) -> list[str]:
        return [v.parameter for v in self.values if v.parameter]

    def encode(self, given: dict) -> list[int]:
        """Raw values to write (int16 as two's complement words); CommandError before anything is sent."""
        check_command_parameters(self.name, self.parameters, given)
        out = []
        for v in self.values:
            if v.parameter is None:
                raw = int(v.value)
            else:
                x = float(given[v.parameter])
                lo, hi = _raw_range(self.function, v)
                elo, ehi = sorted((lo * v.scale + v.offset, hi * v.scale + v.offset))
                if v.minimum is not None:
                    elo = max(elo, v.minimum)
                if v.maximum is not None:
                    ehi = min(ehi, v.maximum)
                if not elo - 1e-9 <= x <= ehi + 1e-9:
                    raise CommandError(f"command {self.name}: parameter {v.parameter}: {x:g} is outside the range "
                                       f"{elo:g}..{ehi:g} it can be written as ({FUNCTION_NAMES[self.function]} at "
                                       f"address {self.address}); nothing was sent")
                raw = int(round((x - v.offset) / v.scale))
            out.append(raw & 0xFFFF if self.function not in COIL_WRITES else raw)
        return out

    def decode(self, raws: list[int]) -> dict:
        """What a board reads from written raw words: {parameter: engineering value}, plus ``raw``."""
        out: dict = {"raw": list(raws)}
        for v, r in zip(self.values, raws):
            if v.parameter is not None:
                if v.type == "int16" and r >= 0x8000:
                    r -= 0x10000
                out[v.parameter] = r * v.scale + v.offset
        return out

    def matches(self, function: int, address: int, raws: list[int]) -> bool:
        """Whether a write (function, address, raw words) is this command (its constants written)."""
        if function != self.function or address != self.address or len(raws) != len(self.values):
            return False
        return all(v.value is None or (int(v.value) & 0xFFFF) == (int(r) & 0xFFFF) for v, r in zip(self.values, raws))

    def reads(self, other: "ModbusCommandPlan") -> dict | None:
        """What a board recognising this command reads from the write of ``other`` (a command of
        constants, e.g. ``when: start``): {parameter: engineering value, raw}, or None when that
        write is not this command."""
        if other.parameters:
            return None
        raws = other.encode({})
        return self.decode(raws) if self.matches(other.function, other.address, raws) else None

    def value_names(self) -> list[str]:
        """The names a board reads from this command: its parameters."""
        return self.parameters

    def resolution(self, name: str) -> tuple[float, str]:
        """(step of parameter ``name`` in engineering units: its scale, "" — a register map states no unit)."""
        return next(abs(float(v.scale)) for v in self.values if v.parameter == name), ""

    def addresses(self) -> range:
        return range(self.address, self.address + len(self.values))


def compile_modbus_commands(commands: dict, path) -> dict[str, ModbusCommandPlan]:
    """name -> :class:`ModbusCommandPlan`; constants out of range are ConfigErrors naming file and key."""
    out = {}
    for name, c in commands.items():
        for j, v in enumerate(c.values):
            if v.value is None:
                continue
            lo, hi = _raw_range(c.function, v)
            if not lo <= v.value <= hi:
                what = "a coil is 0 or 1" if c.function in COIL_WRITES else f"a {v.type} register holds {lo}..{hi}"
                raise ConfigError(path, f"commands.{name}.values[{j}]", f"value {v.value} does not fit: {what}")
        out[name] = ModbusCommandPlan(name, c.function, c.address, list(c.values), c.when)
    return out
