"""The register map's schema: pydantic models of the YAML a user writes for a Modbus board.

See :mod:`rig.links.register_map` for the format and how a map is compiled for a cell count.
Addresses are 0-based protocol addresses (0..65535); numbers must be finite; unknown keys
are errors. Every addressable entry may name its Modbus ``function`` (1 coils, 2 discrete
inputs, 3 holding registers, 4 input registers; the names ``coils``, ``discrete_inputs``,
``holding``, ``input`` are accepted too).
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from .modbus_commands import ModbusCommand


RegType = Literal["uint16", "int16", "uint32", "int32", "ascii", "uint8", "int8"]
WORDS = {"uint16": 1, "int16": 1, "uint32": 2, "int32": 2, "uint8": 1, "int8": 1}
MAX_READ = 125        # Modbus limit for function 03/04 (registers per read)
MAX_READ_BITS = 2000  # Modbus limit for function 01/02 (coils / discrete inputs per read)
FUNCTION_NAMES = {"coils": 1, "coil": 1, "discrete_inputs": 2, "discrete_input": 2,
                  "holding": 3, "input": 4}
TABLE_NAMES = {1: "coils", 2: "discrete inputs", 3: "holding registers", 4: "input registers"}


def _function(v):
    """``3`` / ``"holding"`` -> 3; a code outside 1..4 is an error naming the four reads."""
    if isinstance(v, str) and v.strip().lower() in FUNCTION_NAMES:
        return FUNCTION_NAMES[v.strip().lower()]
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 4:
        raise ValueError(f"function code {v!r} is not a Modbus read: use 1 (coils), 2 (discrete inputs), "
                         f"3 (holding registers) or 4 (input registers)")
    return v


Function = Annotated[int, BeforeValidator(_function)]
Bit16 = Annotated[int, Field(ge=0, le=15)]


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Block(_M):
    """A range the board answers: ``count`` coils/registers from ``start`` read with ``function``.
    When a map declares blocks, every value must lie inside one, and reads never cross a gap.
    ``read: used`` (default) reads only the span of the block the map uses; ``read: whole``
    reads the whole block in one transaction (a board that answers only whole-block reads)."""

    function: Function
    start: int = Field(ge=0, le=65535)
    count: int = Field(ge=1, le=65536)
    name: str = ""
    read: Literal["used", "whole"] = "used"

    @model_validator(mode="after")
    def _check(self):
        if self.start + self.count - 1 > 65535:
            raise ValueError(f"start {self.start} + count {self.count} runs past the last Modbus address (65535)")
        return self


class _At(_M):
    address: int = Field(ge=0, le=65535)
    function: Function | None = None


class Reg(_At):
    """One numeric value at ``address``: a register (``uint16``/``int16``), two registers
    (``uint32``/``int32``, ``word_order``), an 8-bit half (``byte: high|low``, ``type:
    uint8``/``int8``) or a bit range (``bits: [lo, hi]``, signed when ``type`` is ``int*``)."""

    type: RegType = "uint16"
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None
    count: int | None = Field(None, ge=1, le=125, description="ascii: number of registers (2 chars each)")
    byte: Literal["high", "low"] | None = None
    bits: tuple[Bit16, Bit16] | None = None
    word_order: Literal["big", "little"] | None = None

    @model_validator(mode="after")
    def _check(self):
        if self.type == "ascii" and self.count is None:
            raise ValueError("type ascii needs 'count' (registers, 2 characters each)")
        if self.type != "ascii" and self.count is not None:
            raise ValueError("'count' only applies to type ascii")
        if self.scale == 0:
            raise ValueError("scale must not be 0")
        if self.byte is not None and self.bits is not None:
            raise ValueError("give 'byte' or 'bits', not both")
        part = self.byte is not None or self.bits is not None
        if part and self.type not in ("uint16", "int16", "uint8", "int8"):
            raise ValueError(f"'byte'/'bits' pick part of one 16-bit register; type {self.type} is not one")
        if self.bits is not None and self.bits[0] > self.bits[1]:
            raise ValueError(f"bits {list(self.bits)}: the low bit comes first ([lo, hi], 0..15)")
        if self.type in ("uint8", "int8") and self.byte is None and not getattr(self, "halves", None):
            raise ValueError(f"type {self.type} needs 'byte: high' or 'byte: low' (which half of the register)")
        return self


class RegSeries(Reg):
    """Per-cell values: cell i at ``address + (i-1) * stride``; 8-bit values two to a
    register with ``halves: high_first|low_first``."""

    stride: int | None = Field(None, ge=1, description="registers between cells (default: the type's size)")
    max_cells: int | None = Field(None, ge=1, description="cells the board's layout has room for")
    halves: Literal["high_first", "low_first"] | None = None

    @model_validator(mode="after")
    def _halves(self):
        if self.halves is not None:
            if self.type not in ("uint8", "int8"):
                raise ValueError("'halves' packs 8-bit values: give type uint8 or int8")
            if self.byte is not None or self.bits is not None or self.stride is not None:
                raise ValueError("'halves' places each value itself: no 'byte', 'bits' or 'stride' with it")
        return self


class TemperatureSensors(RegSeries):
    """``sensors`` temperatures from ``address`` (one per ``stride`` registers, or two per
    register with ``halves``), reported in the order listed."""

    sensors: int = Field(1, ge=1, le=256)
    name: str = ""


class Bit(_M):
    """A flag or FET state. True when (any of) its condition(s) holds:

    - one bit: ``{address, bit}`` equals ``active_value`` (flags) / ``closed_value`` (FETs),
      default 1 (``invert: true`` for a board that reports "open"); a coil or discrete input
      (``function: 1``/``2``) is one bit by itself;
    - a bit range (``bits: [lo, hi]`` or ``byte``): any bit of it set (level 1);
    - a value set / enum: ``values: [2, 3]`` (or names from ``choices: {0: open, 2: closed,
      3: welded}``): the register (or its ``bits``/``byte``) holds one of them;
    - a bit-OR: ``any: [{address: 7, bit: 0}, {address: 7, bit: 4}, ...]`` (a ``function``
      beside ``any`` is the default of its entries).
    """

    address: int | None = Field(None, ge=0, le=65535)
    function: Function | None = None
    bit: Bit16 | None = None
    bits: tuple[Bit16, Bit16] | None = None
    byte: Literal["high", "low"] | None = None
    values: list[Union[int, str]] | None = None
    choices: dict[int, str] | None = None
    active_value: Literal[0, 1] | None = None
    closed_value: Literal[0, 1] | None = None
    invert: bool = False
    any: list["Bit"] | None = None

    @model_validator(mode="after")
    def _check(self):
        if self.any is not None:
            here = [k for k in ("address", "bit", "bits", "byte", "values", "choices") if getattr(self, k) is not None]
            if here:
                raise ValueError(f"'any' lists its bits itself; {here[0]!r} belongs inside each entry")
            if not self.any:
                raise ValueError("'any' needs at least one bit")
            return self
        if self.address is None:
            raise ValueError("give 'address' (or 'any': a list of bits)")
        given = [k for k in ("bit", "bits", "byte") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of 'bit', 'bits' or 'byte', not {' and '.join(given)}")
        if self.bits is not None and self.bits[0] > self.bits[1]:
            raise ValueError(f"bits {list(self.bits)}: the low bit comes first ([lo, hi], 0..15)")
        if self.choices is not None and self.values is None:
            raise ValueError("'choices' names values; say which mean set/closed with 'values'")
        if self.values is not None:
            if not self.values:
                raise ValueError("'values' needs at least one value")
            names = self.choices or {}
            unknown = [v for v in self.values if isinstance(v, str) and v not in names.values()]
            if unknown:
                raise ValueError(f"value {unknown[0]!r} is not one of the choices "
                                 f"({', '.join(map(str, names.values())) or 'none given'})")
            if self.active_value is not None or self.closed_value is not None or self.invert:
                raise ValueError("with 'values' the listed values mean set/closed: no active_value/closed_value/invert")
        return self

    def level(self, default_key: str) -> int:
        v = self.active_value if default_key == "active" else self.closed_value
        if v is not None:
            return v
        return 0 if self.invert else 1

    def codes(self) -> list[int]:
        """The ``values`` as numbers (choice names resolved)."""
        rev = {n: c for c, n in (self.choices or {}).items()}
        return [rev[v] if isinstance(v, str) else int(v) for v in self.values or []]


class Bitfield(_M):
    """Balancing mask: cell i = bit ``(i-1) % 16`` of register ``address + (i-1) // 16``
    (``bit_order: msb_first`` counts from bit 15); a mask of ``registers`` words stored high
    word first (a big-endian uint32: cells 17-32 in ``address``) is ``word_order: high_first``.
    On coils / discrete inputs (``function: 1``/``2``) cell i = the bit at ``address + (i-1)``."""

    address: int = Field(ge=0, le=65535)
    function: Function | None = None
    bit_order: Literal["lsb_first", "msb_first"] = "lsb_first"
    word_order: Literal["low_first", "high_first"] = "low_first"
    registers: int | None = Field(None, ge=1, le=125, description="registers the mask spans (default: room for the cells)")
    active_value: Literal[0, 1] = 1


class Cells(_M):
    voltage: RegSeries
    balancing: Bitfield | None = None


class Temperatures(_M):
    """Reported temperatures in order: ``cells`` (one per cell) then ``bleed_resistor``; or a
    list ``sensors`` of runs (each any number of registers, in any block). Which position
    measures what is the profile's ``temperatures:`` (roles)."""

    cells: RegSeries | None = None
    bleed_resistor: Reg | None = None
    sensors: list[TemperatureSensors] | None = None

    @model_validator(mode="after")
    def _check(self):
        if self.sensors is not None and (self.cells is not None or self.bleed_resistor is not None):
            raise ValueError("give 'sensors' (the list, in reporting order) or 'cells'/'bleed_resistor', not both")
        return self


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
    """The board's state: a code at ``address`` named by ``choices``, or ``bits``: one flag per
    state name (a one-hot set of coils or register bits, each a :class:`Bit`); the first listed
    that is set is the state ("unknown" when none is)."""

    address: int | None = Field(None, ge=0, le=65535)
    function: Function | None = None
    choices: dict[int, str] = Field(default_factory=dict)
    bits: dict[str, Bit] | None = None

    @model_validator(mode="after")
    def _check(self):
        if (self.address is None) == (self.bits is None):
            raise ValueError("give 'address' (a state code, named by 'choices') or 'bits' (one flag per state)")
        if self.bits is not None and (self.choices or not self.bits):
            raise ValueError("'bits' names each state itself: give at least one, and no 'choices'")
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
    function: Function | None = None
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
        if self.type != "ascii" and self.count is not None:
            raise ValueError("'count' only applies to type ascii")
        if self.type in ("uint8", "int8") and self.address is not None:
            raise ValueError(f"type {self.type} needs a 'byte': give it under 'fields'")
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
    blocks: list[Block] | None = None
    cells: Cells
    temperatures: Temperatures = Temperatures()
    flags: Flags = Flags()
    fets: Fets = Fets()
    pack: Pack = Pack()
    state: State | None = None
    identity: Identity = Identity()
    commands: dict[str, ModbusCommand] = Field(default_factory=dict)  # board commands as writes (modbus_commands)
