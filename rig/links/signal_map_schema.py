"""The signal map's schema: pydantic models of the YAML a user writes for a CAN board.

See :mod:`rig.links.signal_map` for the format and how a map is compiled against a DBC.
Numbers must be finite; unknown keys are errors.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .can_commands import Command
from .registry import MAX_LINK_TIME_S


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
    message: str | None = Field(None, description="the DBC message the signal is in (for a name several messages use)")
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None


class Term(_Ref):
    """One condition on a signal: ``bit`` (that bit), ``mask`` (any of these bits set) or the
    whole value; true when it is in ``values`` (numbers or the DBC's value-table names) or,
    without ``values``, equals the default value (1 / ``active_value`` / ``closed_value``)."""

    signal: str
    message: str | None = Field(None, description="the DBC message the signal is in (for a name several messages use)")
    bit: int | None = Field(None, ge=0, le=63)
    mask: int | None = Field(None, ge=1)
    values: list[int | str] | None = None

    @model_validator(mode="after")
    def _one_selector(self):
        if self.bit is not None and self.mask is not None:
            raise ValueError("give either 'bit' or 'mask', not both")
        if self.values is not None and not self.values:
            raise ValueError("'values' is empty")
        return self


class FlagRef(Term):
    """A boolean: set when the signal (``bit``, ``mask``) equals ``active_value`` or is one of
    ``values``; ``any: [...]`` ORs several such terms (several bits or signals)."""

    signal: str | None = None
    active_value: int = 1
    any: list[Term] | None = None

    @model_validator(mode="after")
    def _one(self):
        if (self.signal is None) == (self.any is None):
            raise ValueError("give exactly one of 'signal' or 'any'")
        return self


class FetRef(FlagRef):
    """A FET state: closed (conducting) when the signal (``bit``) equals ``closed_value``, or
    is one of ``values`` (e.g. a contactor enum: ``values: [CLOSED]`` — WELDED is then not
    "closed normally"); ``any: [...]`` ORs terms. ``invert: true`` = ``closed_value: 0``.
    """

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


class PageIndex(_M):
    """Where a frame carries its page index: a ``signal`` (a DBC multiplexer or a plain
    signal), or ``length`` bits of data ``byte`` from ``bit`` (0 = least significant)."""

    signal: str | None = None
    byte: int | None = Field(None, ge=0, le=63)
    bit: int = Field(0, ge=0, le=7)
    length: int = Field(8, ge=1, le=8)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value):
        return {"signal": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one(self):
        if (self.signal is None) == (self.byte is None):
            raise ValueError("give exactly one of 'signal' or 'byte'")
        if self.bit + self.length > 8:
            raise ValueError(f"bit {self.bit} + length {self.length} runs past the byte")
        return self


class Pages(_M):
    """Per-cell values paged in one message: page ``p`` (its index value) carries cells
    ``(p - first) * N + k + 1`` for ``k = 0..N-1``, N = ``len(signals)``; the same signal
    names on every page. A page silent longer than ``timeout_s`` (default: the link
    timeout) makes its cells invalid, never old values stamped now."""

    message: str
    index: PageIndex
    signals: list[str] = Field(min_length=1)
    first: int = Field(0, description="index value of the page holding cell 1")
    timeout_s: float | None = Field(None, gt=0, le=MAX_LINK_TIME_S)


class Series(_M):
    """Per-cell signals: a ``template`` with ``{i}`` (1-based cell number) or a ``signals`` list."""

    template: str | None = None
    signals: list[str] | None = None
    pages: Pages | None = None
    message: str | None = Field(None, description="the DBC message of the template's / list's signals")
    first: int = Field(1, description="the number {i} takes for cell 1")
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None
    invalid_values: list[int] = Field(default_factory=list,
                                      description="raw values meaning 'no reading' (e.g. 65535)")

    @model_validator(mode="after")
    def _one(self):
        if sum(x is not None for x in (self.template, self.signals, self.pages)) != 1:
            raise ValueError("give exactly one of 'template', 'signals' or 'pages'")
        if self.signals is not None and not self.signals:
            raise ValueError("'signals' is empty")
        return self


class CellBits(_M):
    """One bit per cell: bitmask signal(s) or one signal per cell.

    ``mask``: one signal or a list (concatenated, first list entry = lowest bits); bit
    ``bit_offset + i - 1`` is cell i. ``template``/``signals``: one 1-bit signal per cell;
    ``pages``: paged like cell voltages.
    """

    mask: str | list[str] | None = None
    bit_offset: int = Field(0, ge=0)
    template: str | None = None
    signals: list[str] | None = None
    pages: Pages | None = None
    message: str | None = Field(None, description="the DBC message of the mask / per-cell signals")
    first: int = 1

    @model_validator(mode="after")
    def _one(self):
        given = [k for k in ("mask", "template", "signals", "pages") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'mask', 'template', 'signals' or 'pages'")
        return self


class Balancing(CellBits):
    """Balancing state per cell; ``active_value`` is the bit value meaning "bleeding"."""

    active_value: Literal[0, 1] = 1


class CellValid(CellBits):
    """Per-cell validity flags; ``valid_value`` is the bit value meaning "this reading is valid"."""

    valid_value: Literal[0, 1] = 1


class Cells(_M):
    voltage: Series
    balancing: Balancing | None = None
    valid: CellValid | None = None


class CellString(_M):
    """One series string of a board with several (each on its own AFE chain, each with its
    own messages). The board's cells are numbered flat: the first string's cells 1..N1,
    the next string's N1+1.., in the order listed. In the per-cell sections (``cells``,
    ``temperatures``, ``flags``) ``{Key}`` stands for this string's ``messages[Key]``;
    those sections are compiled once per string. ``numbering``: ``string`` = the string's
    frames number its cells 1..N (template ``{i}``, page index, mask bit); ``board`` = they
    number them as the board does (string 2 starts at N1 + 1)."""

    name: str = Field(min_length=1)
    cells: int = Field(ge=1)
    messages: dict[str, str] = Field(default_factory=dict)
    numbering: Literal["string", "board"] = "string"


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


class Event(_M):
    """An event-driven message (sent on change or while a fault lasts): never seen or not
    seen for ``hold_s`` means its flags are *not set*, not "no complete sample"; the board
    is alive while ``heartbeat`` (default: ``sample_on``) keeps arriving. ``hold_s: null``:
    the last value holds until the next frame; ``hold_s: cycle``: a frame repeated every
    cycle while the fault lasts, so a cycle without it (no frame since the previous
    ``sample_on``) means not set."""

    hold_s: float | Literal["cycle"] | None = None

    @model_validator(mode="after")
    def _positive(self):
        if isinstance(self.hold_s, float) and not 0 < self.hold_s <= MAX_LINK_TIME_S:
            raise ValueError(f"hold_s must be > 0 s and at most {MAX_LINK_TIME_S:g} s (or 'cycle')")
        return self
    heartbeat: str | None = None


class J1939(_M):
    """Match extended frames by PGN (ID bits 8..25), not by the whole ID: any priority and
    source address unless listed. ``messages``: which messages (default: every extended one)."""

    source_addresses: list[Annotated[int, Field(ge=0, le=255)]] | None = None
    priorities: list[Annotated[int, Field(ge=0, le=7)]] | None = None
    messages: list[str] | None = None


class Request(_M):
    """A frame the link transmits. ``signals``: values to encode (a list = one frame per
    value, in order); ``when``: ``schedule`` (every ``every_s``), ``start`` (once),
    ``sample`` (at start and after each complete sample), ``identity`` (when identity is
    read); ``response``: the message the board answers with, expected within ``timeout_s``
    (resent ``retries`` times, then named as a link problem)."""

    message: str
    signals: dict[str, int | float | str | list[int | float | str]] = Field(default_factory=dict)
    when: Literal["schedule", "start", "sample", "identity"] = "schedule"
    every_s: float | None = Field(None, gt=0, le=MAX_LINK_TIME_S)
    response: str | None = None
    timeout_s: float = Field(0.5, gt=0, le=MAX_LINK_TIME_S)
    retries: int = Field(1, ge=0, le=10)

    @model_validator(mode="after")
    def _period(self):
        if (self.when == "schedule") != (self.every_s is not None):
            raise ValueError("'every_s' goes with when: schedule (and only with it)")
        lists = [k for k, v in self.signals.items() if isinstance(v, list)]
        if len(lists) > 1:
            raise ValueError(f"one signal may list values, not {len(lists)} ({', '.join(lists)})")
        if lists and not self.signals[lists[0]]:
            raise ValueError(f"signal {lists[0]} lists no value: the request would send no frame")
        return self


class SignalMap(_M):
    format: Literal["bmsrig-signal-map/1"] = "bmsrig-signal-map/1"
    description: str = ""
    sample_on: str
    timeout_s: float | None = Field(None, gt=0, le=MAX_LINK_TIME_S)
    strings: list[CellString] = Field(default_factory=list)
    cells: Cells
    temperatures: Temperatures = Temperatures()
    flags: Flags = Flags()
    fets: Fets = Fets()
    pack: Pack = Pack()
    state: StateRef | None = None
    identity: Identity = Identity()
    events: dict[str, Event] = Field(default_factory=dict)
    j1939: J1939 | None = None
    requests: list[Request] = Field(default_factory=list)
    commands: dict[str, Command] = Field(default_factory=dict)  # board commands (rig.links.can_commands)
