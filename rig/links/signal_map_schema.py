"""The signal map's schema: pydantic models of the YAML a user writes for a CAN board.

See :mod:`rig.links.signal_map` for the format and how a map is compiled against a DBC.
Numbers must be finite; unknown keys are errors.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _Ref(_M):
    """A model that also accepts a bare string, meaning ``{signal: <string>}``."""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value):
        return {"signal": value} if isinstance(value, str) else value


class SignalRef(_Ref):
    """One numeric signal: SI value = (decoded * scale + offset) converted from ``unit``."""

    signal: str
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None


class FlagRef(_Ref):
    """A boolean: the signal (or one ``bit`` of it) equals ``active_value`` when set."""

    signal: str
    bit: int | None = Field(None, ge=0, le=63)
    active_value: int = 1


class FetRef(_Ref):
    """A FET state: the signal (or ``bit``) equals ``closed_value`` when the FET conducts.

    ``invert: true`` is the same as ``closed_value: 0`` (a board reporting "FET open").
    """

    signal: str
    bit: int | None = Field(None, ge=0, le=63)
    closed_value: int | None = None
    invert: bool = False

    @model_validator(mode="after")
    def _check(self):
        if self.invert and self.closed_value is not None:
            raise ValueError("give either closed_value or invert, not both")
        return self

    @property
    def closed(self) -> int:
        if self.closed_value is not None:
            return self.closed_value
        return 0 if self.invert else 1


class Series(_M):
    """Per-cell signals: a ``template`` with ``{i}`` (1-based cell number) or a ``signals`` list."""

    template: str | None = None
    signals: list[str] | None = None
    first: int = Field(1, description="the number {i} takes for cell 1")
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None

    @model_validator(mode="after")
    def _one(self):
        if (self.template is None) == (self.signals is None):
            raise ValueError("give exactly one of 'template' or 'signals'")
        if self.signals is not None and not self.signals:
            raise ValueError("'signals' is empty")
        return self


class Balancing(_M):
    """Balancing state per cell: bitmask signal(s) or one signal per cell.

    ``mask``: one signal or a list (concatenated, first list entry = lowest bits); bit
    ``bit_offset + i - 1`` is cell i. ``template``/``signals``: one 1-bit signal per cell.
    ``active_value`` is the bit value meaning "bleeding".
    """

    mask: str | list[str] | None = None
    bit_offset: int = Field(0, ge=0)
    template: str | None = None
    signals: list[str] | None = None
    first: int = 1
    active_value: Literal[0, 1] = 1

    @model_validator(mode="after")
    def _one(self):
        given = [k for k in ("mask", "template", "signals") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'mask', 'template' or 'signals'")
        return self


class Cells(_M):
    voltage: Series
    balancing: Balancing | None = None


class Temperatures(_M):
    """``cells``: a template gives one per cell; a ``signals`` list gives the board's NTCs in order.
    ``bleed_resistor``: the bleed-resistor NTC, appended last."""

    cells: Series | None = None
    bleed_resistor: SignalRef | None = None


class Flags(_M):
    hvc: FlagRef | None = None
    lvc: FlagRef | None = None
    ot: FlagRef | None = None
    ut: FlagRef | None = None


class Fets(_M):
    charge: FetRef | None = None
    discharge: FetRef | None = None


class Pack(_M):
    voltage: SignalRef | None = None
    current: SignalRef | None = None


class StateRef(_Ref):
    signal: str
    choices: dict[int, str] | None = None  # default: the DBC's value table


class IdentityField(_Ref):
    """One identity string from one or several signals.

    - ``signal: X`` -> str(value) (or ``format`` with ``{value}``)
    - ``signals: [A, B], ascii: true`` -> the bytes of A then B as ASCII (NULs stripped)
    - ``signals: {major: A, minor: B}, format: "{major}.{minor}"``
    """

    signal: str | None = None
    signals: list[str] | dict[str, str] | None = None
    ascii: bool = False
    format: str | None = None

    @model_validator(mode="after")
    def _check(self):
        if (self.signal is None) == (self.signals is None):
            raise ValueError("give exactly one of 'signal' or 'signals'")
        if isinstance(self.signals, dict) and self.ascii:
            raise ValueError("ascii: true takes a list of signals, not a mapping")
        if isinstance(self.signals, dict) and not self.format:
            raise ValueError("a mapping of signals needs a 'format' such as \"{major}.{minor}.{patch}\"")
        return self


class Identity(_M):
    serial: IdentityField | None = None
    hw_revision: IdentityField | None = None
    fw_version: IdentityField | None = None


class SignalMap(_M):
    format: Literal["bmsrig-signal-map/1"] = "bmsrig-signal-map/1"
    description: str = ""
    sample_on: str
    timeout_s: float | None = Field(None, gt=0)
    cells: Cells
    temperatures: Temperatures = Temperatures()
    flags: Flags = Flags()
    fets: Fets = Fets()
    pack: Pack = Pack()
    state: StateRef | None = None
    identity: Identity = Identity()
