"""The register map's schema: pydantic models of the YAML a user writes for a Modbus board.

See :mod:`rig.links.register_map` for the format and how a map is compiled for a cell count.
Addresses are 0-based protocol addresses (0..65535); numbers must be finite; unknown keys
are errors.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


RegType = Literal["uint16", "int16", "uint32", "int32", "ascii"]
WORDS = {"uint16": 1, "int16": 1, "uint32": 2, "int32": 2}
MAX_READ = 125  # Modbus limit for function 03/04


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Reg(_M):
    """One numeric value at ``address`` (``uint16``/``int16``/``uint32``/``int32``)."""

    address: int = Field(ge=0, le=65535)
    type: RegType = "uint16"
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None
    count: int | None = Field(None, ge=1, le=125, description="ascii: number of registers (2 chars each)")

    @model_validator(mode="after")
    def _check(self):
        if self.type == "ascii" and self.count is None:
            raise ValueError("type ascii needs 'count' (registers, 2 characters each)")
        if self.type != "ascii" and self.count is not None:
            raise ValueError("'count' only applies to type ascii")
        if self.scale == 0:
            raise ValueError("scale must not be 0")
        return self


class RegSeries(Reg):
    """Per-cell values: cell i at ``address + (i-1) * stride``."""

    stride: int | None = Field(None, ge=1, description="registers between cells (default: the type's size)")
    max_cells: int | None = Field(None, ge=1, description="cells the board's layout has room for")


class Bit(_M):
    """One bit of a register: True when the bit equals ``active_value`` (flags) /
    ``closed_value`` (FETs, or ``invert: true`` for a board that reports "open")."""

    address: int = Field(ge=0, le=65535)
    bit: int = Field(0, ge=0, le=15)
    active_value: Literal[0, 1] | None = None
    closed_value: Literal[0, 1] | None = None
    invert: bool = False

    def level(self, default_key: str) -> int:
        v = self.active_value if default_key == "active" else self.closed_value
        if v is not None:
            return v
        return 0 if self.invert else 1


class Bitfield(_M):
    """Balancing mask: cell i = bit ``(i-1) % 16`` of register ``address + (i-1) // 16``
    (``bit_order: msb_first`` counts from bit 15)."""

    address: int = Field(ge=0, le=65535)
    bit_order: Literal["lsb_first", "msb_first"] = "lsb_first"
    active_value: Literal[0, 1] = 1


class Cells(_M):
    voltage: RegSeries
    balancing: Bitfield | None = None


class Temperatures(_M):
    cells: RegSeries | None = None
    bleed_resistor: Reg | None = None


class Flags(_M):
    hvc: Bit | None = None
    lvc: Bit | None = None
    ot: Bit | None = None
    ut: Bit | None = None


class Fets(_M):
    charge: Bit | None = None
    discharge: Bit | None = None


class Pack(_M):
    voltage: Reg | None = None
    current: Reg | None = None


class State(_M):
    address: int = Field(ge=0, le=65535)
    choices: dict[int, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self):
        bad = [c for c in self.choices if not 0 <= c <= 65535]
        if bad:
            raise ValueError(f"choice code {bad[0]} does not fit a 16-bit register (0..65535)")
        names = list(self.choices.values())
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"state name {twice[0]!r} is given to several codes; each state needs one code")
        return self


class IdentityField(_M):
    """An identity string: one register value (``address``/``type``; ascii or number) or
    several numeric ``fields`` joined by ``format``."""

    address: int | None = Field(None, ge=0, le=65535)
    type: RegType = "uint16"
    count: int | None = Field(None, ge=1, le=125)
    fields: dict[str, Reg] | None = None
    format: str | None = None

    @model_validator(mode="after")
    def _check(self):
        if (self.address is None) == (self.fields is None):
            raise ValueError("give exactly one of 'address' or 'fields'")
        if self.fields is not None and not self.format:
            raise ValueError("'fields' needs a 'format' such as \"{major}.{minor}.{patch}\"")
        if self.type == "ascii" and self.address is not None and self.count is None:
            raise ValueError("type ascii needs 'count' (registers, 2 characters each)")
        return self


class Identity(_M):
    serial: IdentityField | None = None
    hw_revision: IdentityField | None = None
    fw_version: IdentityField | None = None


class RegisterMap(_M):
    format: Literal["bmsrig-register-map/1"] = "bmsrig-register-map/1"
    description: str = ""
    table: Literal["holding", "input"] = "holding"
    word_order: Literal["big", "little"] = "big"
    max_block: int = Field(MAX_READ, ge=1, le=MAX_READ)
    cells: Cells
    temperatures: Temperatures = Temperatures()
    flags: Flags = Flags()
    fets: Fets = Fets()
    pack: Pack = Pack()
    state: State | None = None
    identity: Identity = Identity()
