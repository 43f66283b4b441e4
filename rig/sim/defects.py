"""The defect catalog: knobs that turn the reference board into a defective one.

A defect spec is ``name`` or ``name:key=value,key=value`` (e.g. ``adc_offset:cell=5,mv=8``);
several specs combine (``--defect`` is repeatable). Cell numbers are 1-based, as a user
counts them (``cell=5`` is index 4). Names are stable: plans, CI jobs and reports refer to
them.

Two layers:

- **hardware** defects act in the world and the board's AFE (:mod:`rig.sim.world`,
  :mod:`rig.sim.afe`): any board model plugged into the harness suffers them.
- **firmware** defects act in the reference firmware model (:mod:`rig.sim.reference`),
  which receives them typed, once, as :class:`BoardDefects` (SI units;
  :func:`board_defects`); a third-party board model may ignore them.

Every entry names the plan test expected to catch it (``caught_by``) and the requirement
it violates, so the project can prove each plan catches what it exists to catch.

Hardware
    ``adc_offset:cell=N,mv=X``      channel N reads X mV high (negative: low)
    ``adc_gain:cell=N,ppm=X``       channel N's gain is off by X ppm
    ``adc_tempco:cell=N,uv_per_c=X`` channel N drifts X µV per °C of board temperature away
                                    from 25 °C
    ``adc_noise:mv_rms=X``          the AFE's conversion noise becomes X mV RMS (every channel)
    ``cell_swap:a=N,b=M``           sense wires of cells N and M crossed: the board reports
                                    cell N's voltage as cell M's and vice versa
    ``bleed_current:ma=X``          bleed resistors changed: the bleed current at the
                                    balancing minimum voltage becomes X mA
    ``bleed_stuck:cell=N``          bleed switch N always conducts
    ``bleed_dead:cell=N``           bleed switch N never conducts
    ``silent_while_balancing``      the board's link goes quiet while any bleed switch is
                                    commanded on: no CAN frame, no Modbus reply (a transmit
                                    task starved by balancing). Acts where the world carries
                                    the board's telemetry, so any board model suffers it; a
                                    plan must end "board not judged" (exit 3), never pass
    ``telemetry_gap:t=X,s=Y``       the board's link is quiet from rig time X for Y seconds
                                    (a dropout: a loose connector, a bus-off), then talks
                                    again; repeatable
Firmware
    ``hvc_threshold:mv=X``          HVC trips X mV above the profile's threshold
    ``hvc_delay:s=X``               HVC delay is X s longer than the profile's
    ``hvc_hysteresis:mv=X``         HVC hysteresis becomes X mV
    ``hvc_flag_missing``            the charge FET opens but the link never shows the HVC flag
    ``lvc_threshold:mv=X``          LVC trips X mV below the profile's threshold
    ``balance_start_delta:mv=X``    balancing start delta becomes X mV
    ``balance_stop_delta:mv=X``     balancing stop delta becomes X mV
    ``balance_mid_soc``             ignores the minimum cell voltage: balances on the plateau
    ``balance_during_sampling``     does not mute balancing around conversions: a bleeding
                                    channel reads low by the IR drop
    ``balance_adjacent``            bleeds every candidate at once, adjacent ones included
                                    (no non-adjacent rule, no channel limit)
    ``balance_chatter``             decides every cycle on the raw sample with one threshold
                                    (start delta) and no hysteresis: the mask toggles under
                                    noise near the threshold
    ``no_derating``                 ignores the bleed-resistor NTC: full duty when hot
    ``derating_late:c=X``           derating starts (and reaches zero) X °C later
    ``no_temp_compensation``        the minimum cell voltage is not temperature compensated
    ``balance_any_state``           balances in every pack state, whatever its strategies declare
    ``lockout_short:s=X``           HVC/LVC lockout X s shorter than the profile's
    ``latch_release_early``         a latched cut-off releases by hysteresis, charger still connected
    ``derating_floor:duty=X``       derating never takes the duty below X (never reaches zero)
    ``report_resolution:mv=X``      reports cell voltages in steps of X mV (coarser than declared)
    ``no_identity``                 the board does not report its serial and firmware version
                                    (the board model blanks them; the bench's power-on
                                    identity too): no statement of conformity, verdict
                                    UNIDENTIFIED, exit 4
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

from ..errors import ConfigError


@dataclass(frozen=True)
class ParamInfo:
    """One parameter of a defect: name, unit, type (``int`` for cell numbers), meaning."""

    name: str
    unit: str
    kind: type
    description: str
    minimum: float | None = None

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class DefectInfo:
    """A catalog entry."""

    name: str
    params: tuple[ParamInfo, ...]
    description: str
    layer: str  # "hardware" | "firmware"
    caught_by: str  # the plan test expected to catch it
    requirement: str  # the requirement it violates

    @property
    def kind(self) -> str:
        """Alias of ``layer`` (hardware | firmware)."""
        return self.layer

    def to_dict(self) -> dict:
        return {"name": self.name, "usage": self.usage, "layer": self.layer, "description": self.description,
                "params": [{"name": p.name, "unit": p.unit, "type": p.kind.__name__, "description": p.description}
                           for p in self.params],
                "caught_by": self.caught_by, "requirement": self.requirement}

    @property
    def usage(self) -> str:
        """The spec syntax, e.g. ``adc_offset:cell=N,mv=X``."""
        if not self.params:
            return self.name
        return self.name + ":" + ",".join(f"{p.name}={_placeholder(p)}" for p in self.params)


def _placeholder(p: ParamInfo) -> str:
    return "N" if p.kind is int else "X"


_CELL = ParamInfo("cell", "", int, "cell number, 1-based", minimum=1)


def _p(name, unit, desc, kind=float, minimum=None):
    return ParamInfo(name, unit, kind, desc, minimum)


_CATALOG: tuple[DefectInfo, ...] = (
    # ---------------------------------------------------------------- hardware (world / AFE)
    DefectInfo("adc_offset", (_CELL, _p("mv", "mV", "offset added to the channel's reading")),
               "Channel N reads X mV high (negative X: low).",
               "hardware", "test_sampling_accuracy", "ACC-001"),
    DefectInfo("adc_gain", (_CELL, _p("ppm", "ppm", "gain error of the channel")),
               "Channel N's gain is off by X ppm (reading = V × (1 + X·1e-6)).",
               "hardware", "test_sampling_accuracy", "ACC-001"),
    DefectInfo("adc_tempco", (_CELL, _p("uv_per_c", "µV/°C", "drift per °C of board temperature away from 25 °C")),
               "Channel N drifts X µV per °C of board temperature away from 25 °C "
               "(invisible at room temperature, out of spec at cold/hot).",
               "hardware", "test_sampling_accuracy_over_temperature", "ACC-001"),
    DefectInfo("adc_noise", (_p("mv_rms", "mV", "RMS conversion noise", minimum=0.0),),
               "The AFE's conversion noise becomes X mV RMS on every channel (default 0.3 mV).",
               "hardware", "test_sampling_noise", "ACC-002"),
    DefectInfo("cell_swap", (ParamInfo("a", "", int, "first cell number, 1-based", 1),
                             ParamInfo("b", "", int, "second cell number, 1-based", 1)),
               "Sense wires crossed: the board reports cell a's voltage as cell b's and vice versa.",
               "hardware", "test_cell_mapping", "MAP-001"),
    DefectInfo("bleed_current", (_p("ma", "mA", "bleed current at the balancing minimum voltage", minimum=0.0),),
               "Wrong bleed resistors: the bleed current becomes X mA at the balancing minimum "
               "voltage (effective resistor = min_cell_v / X).",
               "hardware", "test_bleed_current", "BAL-002"),
    DefectInfo("bleed_stuck", (_CELL,),
               "Bleed switch N always conducts, whatever the firmware commands.",
               "hardware", "test_bleed_current", "BAL-002"),
    DefectInfo("bleed_dead", (_CELL,),
               "Bleed switch N never conducts (open resistor or dead switch).",
               "hardware", "test_bleed_current", "BAL-002"),
    DefectInfo("silent_while_balancing", (),
               "The board's link goes quiet while any bleed switch is commanded on (a transmit "
               "task starved by balancing): no CAN frame, no Modbus reply. Every plan that "
               "watches the board while it balances must end in a rig fault, 'board not "
               "judged' (exit 3), never in a pass.",
               "hardware", "test_balancing_start", "BAL-001"),
    DefectInfo("telemetry_gap", (_p("t", "s", "rig time the dropout starts", minimum=0.0),
                                 _p("s", "s", "how long the link stays quiet", minimum=0.0)),
               "The board's link is quiet from rig time t for s seconds (a loose connector, a "
               "bus-off), then talks again; repeatable. A window judged across the dropout ends in "
               "a rig fault, 'board not judged' (exit 3), never in a pass.",
               "hardware", "test_balancing_start", "BAL-001"),
    # ---------------------------------------------------------------- firmware (reference board)
    DefectInfo("hvc_threshold", (_p("mv", "mV", "threshold error"),),
               "HVC trips X mV above the profile's threshold.",
               "firmware", "test_hvc_threshold", "HVC-001"),
    DefectInfo("hvc_delay", (_p("s", "s", "extra delay", minimum=0.0),),
               "The HVC delay is X s longer than the profile's: the charge FET opens late.",
               "firmware", "test_hvc_latency", "HVC-002"),
    DefectInfo("hvc_hysteresis", (_p("mv", "mV", "hysteresis actually used", minimum=0.0),),
               "The HVC hysteresis becomes X mV (recovers at the wrong voltage).",
               "firmware", "test_hvc_recovery", "HVC-004"),
    DefectInfo("hvc_flag_missing", (),
               "The charge FET opens on HVC but the link never shows the HVC flag.",
               "firmware", "test_hvc_flag", "HVC-003"),
    DefectInfo("lvc_threshold", (_p("mv", "mV", "threshold error"),),
               "LVC trips X mV below the profile's threshold.",
               "firmware", "test_lvc_threshold", "LVC-001"),
    DefectInfo("balance_start_delta", (_p("mv", "mV", "start delta actually used", minimum=0.0),),
               "Balancing starts when Vmax − Vmin exceeds X mV instead of the profile's start delta.",
               "firmware", "test_balancing_start", "BAL-001"),
    DefectInfo("balance_stop_delta", (_p("mv", "mV", "stop delta actually used", minimum=0.0),),
               "Balancing stops (and candidates are chosen) at X mV instead of the profile's stop delta.",
               "firmware", "test_balancing_stop", "BAL-003"),
    DefectInfo("balance_mid_soc", (),
               "Ignores the minimum cell voltage: balances on the LFP plateau, where voltage says "
               "nothing about SOC.",
               "firmware", "test_no_balancing_on_plateau", "BAL-004"),
    DefectInfo("balance_during_sampling", (),
               "Does not mute balancing around conversions: a bleeding channel reads low by "
               "I_bleed × R_path (~10 mV at 50 mA).",
               "firmware", "test_balancing_pauses_for_measurement", "BAL-006"),
    DefectInfo("balance_adjacent", (),
               "Bleeds every candidate cell at once: adjacent channels together, no channel limit.",
               "firmware", "test_no_adjacent_channels", "BAL-005"),
    DefectInfo("balance_chatter", (),
               "Self-oscillation: decides every cycle on the raw sample with a single threshold "
               "at the start delta, no hysteresis; under noise near the threshold the mask "
               "toggles many times a minute.",
               "firmware", "test_balancing_noise_immunity", "ACC-002"),
    DefectInfo("no_derating", (),
               "Ignores the bleed-resistor NTC: full balancing duty however hot the resistors get.",
               "firmware", "test_derating", "BAL-008"),
    DefectInfo("derating_late", (_p("c", "°C", "shift of the derating curve", minimum=0.0),),
               "The derating curve starts (and reaches zero) X °C above the profile's.",
               "firmware", "test_derating", "BAL-008"),
    DefectInfo("no_temp_compensation", (),
               "The balancing minimum voltage is not temperature compensated "
               "(balances hot cells it should not).",
               "firmware", "test_temperature_compensation", "BAL-009"),
    DefectInfo("balance_any_state", (), "Balances in every pack state (rest, charge, float, discharge), "
               "whatever its profile's balancing.strategies declare.", "firmware", "test_balancing_states", "BAL-010"),
    DefectInfo("lockout_short", (_p("s", "s", "how much shorter", minimum=0.0),),
               "The HVC/LVC lockout after a trip is X s shorter than the profile's lockout_s.",
               "firmware", "test_hvc_recovery", "HVC-004"),
    DefectInfo("latch_release_early", (), "A latched HVC/LVC releases once the cell is back past the hysteresis, "
               "with the charger (load) still connected.", "firmware", "test_lvc_recovery", "LVC-002"),
    DefectInfo("derating_floor", (_p("duty", "1", "lowest duty the derating reaches", minimum=0.0),),
               "Derating never takes the balancing duty below X: the curve never reaches zero.",
               "firmware", "test_derating", "BAL-008"),
    DefectInfo("report_resolution", (_p("mv", "mV", "step of the reported cell voltage", minimum=0.0),),
               "Reports cell voltages rounded to X mV steps, coarser than the profile's sampling.resolution_mv.",
               "firmware", "test_reporting_resolution", "ACC-003"),
    DefectInfo("no_identity", (),
               "The board does not report its serial number and firmware version: the run ends "
               "UNIDENTIFIED (exit 4), no statement of conformity, whatever its results.",
               "firmware", "test_* (any run: verdict UNIDENTIFIED)", "identity"),
)

_BY_NAME = {d.name: d for d in _CATALOG}


def catalog() -> list[DefectInfo]:
    """Every known defect, in catalog order (hardware first)."""
    return list(_CATALOG)


def info(name: str) -> DefectInfo:
    """The catalog entry for ``name`` (KeyError if unknown)."""
    return _BY_NAME[name]


@dataclass(frozen=True)
class Defect:
    """One parsed defect: its name, its parameters (cell numbers as given, 1-based), the spec."""

    name: str
    params: dict = field(default_factory=dict)
    spec: str = ""

    @property
    def info(self) -> DefectInfo:
        return _BY_NAME[self.name]

    @property
    def layer(self) -> str:
        return self.info.layer

    def __getitem__(self, key: str):
        return self.params[key]

    def index(self, key: str = "cell") -> int:
        """A cell parameter as a 0-based index."""
        return int(self.params[key]) - 1


class Defects:
    """The set of defects a board suffers. Empty means a good board."""

    def __init__(self, items: Iterable[Defect] = ()):
        self._items = tuple(items)

    def __iter__(self) -> Iterator[Defect]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __contains__(self, name: str) -> bool:
        return any(d.name == name for d in self._items)

    def get(self, name: str) -> Defect | None:
        """The (last) defect of that name, or None."""
        found = None
        for d in self._items:
            if d.name == name:
                found = d
        return found

    def all(self, name: str) -> list[Defect]:
        """Every defect of that name (per-cell defects may repeat for several cells)."""
        return [d for d in self._items if d.name == name]

    def has(self, name: str) -> bool:
        return name in self

    @property
    def specs(self) -> list[str]:
        return [d.spec for d in self._items]

    def layer(self, layer: str) -> "Defects":
        return Defects(d for d in self._items if d.layer == layer)

    def validate_cells(self, n_cells: int, source: str = "--defect") -> None:
        """Raise ConfigError if a cell parameter is beyond ``n_cells``."""
        for d in self._items:
            for p in d.info.params:
                if p.kind is int and not 1 <= d.params[p.name] <= n_cells:
                    raise ConfigError(source, d.spec,
                                      f"parameter '{p.name}': cell {d.params[p.name]} is out of range: "
                                      f"this board has cells 1..{n_cells}")

    @property
    def board(self) -> "BoardDefects":
        """The firmware defects as a typed value (:class:`BoardDefects`), built once."""
        cached = getattr(self, "_board", None)
        if cached is None:
            cached = self._board = BoardDefects.from_defects(self)
        return cached

    def __repr__(self) -> str:
        return f"Defects({self.specs!r})"


@dataclass(frozen=True)
class BoardDefects:
    """The firmware defects a board model suffers, typed and in SI units (built once from
    the specs by :meth:`from_defects`; the default value is a good board).

    - ``hvc_threshold_shift_v``: HVC trips this much above the profile's threshold, V
    - ``hvc_extra_delay_s``: added to the HVC delay, s
    - ``hvc_hysteresis_v``: HVC hysteresis actually used, V (None: the profile's)
    - ``hvc_flag_missing``: the charge FET opens but the link never shows the flag
    - ``lvc_threshold_shift_v``: LVC trips this much below the profile's threshold, V
    - ``balance_start_delta_v`` / ``balance_stop_delta_v``: deltas actually used, V (None:
      the profile's)
    - ``balance_mid_soc``: ignores the minimum cell voltage
    - ``balance_during_sampling``: no mute around conversions
    - ``balance_adjacent``: bleeds every candidate (no non-adjacent rule, no channel limit)
    - ``balance_chatter``: decides every cycle on the raw sample, start delta only
    - ``no_derating``: full duty however hot; ``derating_shift_c``: the derating curve
      starts this much later, °C
    - ``no_temp_compensation``: the minimum cell voltage is not temperature compensated
    - ``no_identity``: the board reports no serial and no firmware version (blank)
    - ``balance_any_state``, ``lockout_short_s`` (s), ``latch_release_early``,
      ``derating_floor`` (duty), ``report_resolution_v`` (V): the vendor choices broken
    """

    hvc_threshold_shift_v: float = 0.0
    hvc_extra_delay_s: float = 0.0
    hvc_hysteresis_v: float | None = None
    hvc_flag_missing: bool = False
    lvc_threshold_shift_v: float = 0.0
    balance_start_delta_v: float | None = None
    balance_stop_delta_v: float | None = None
    balance_mid_soc: bool = False
    balance_during_sampling: bool = False
    balance_adjacent: bool = False
    balance_chatter: bool = False
    no_derating: bool = False
    derating_shift_c: float = 0.0
    no_temp_compensation: bool = False
    no_identity: bool = False
    balance_any_state: bool = False
    lockout_short_s: float = 0.0
    latch_release_early: bool = False
    derating_floor: float = 0.0
    report_resolution_v: float | None = None

    @classmethod
    def from_defects(cls, defects: "Defects | BoardDefects | Iterable[str] | None") -> "BoardDefects":
        """The typed firmware defects of ``defects`` (a :class:`Defects`, specs, or already
        a :class:`BoardDefects`); hardware defects are not in it (they act in the world)."""
        if isinstance(defects, BoardDefects):
            return defects
        if not isinstance(defects, Defects):
            defects = parse_defects(defects)
        d = defects

        def param(name, key, scale=1.0):
            x = d.get(name)
            return None if x is None else x[key] * scale

        return cls(
            hvc_threshold_shift_v=param("hvc_threshold", "mv", 1e-3) or 0.0,
            hvc_extra_delay_s=param("hvc_delay", "s") or 0.0,
            hvc_hysteresis_v=param("hvc_hysteresis", "mv", 1e-3),
            hvc_flag_missing="hvc_flag_missing" in d,
            lvc_threshold_shift_v=param("lvc_threshold", "mv", 1e-3) or 0.0,
            balance_start_delta_v=param("balance_start_delta", "mv", 1e-3),
            balance_stop_delta_v=param("balance_stop_delta", "mv", 1e-3),
            balance_mid_soc="balance_mid_soc" in d,
            balance_during_sampling="balance_during_sampling" in d,
            balance_adjacent="balance_adjacent" in d,
            balance_chatter="balance_chatter" in d,
            no_derating="no_derating" in d,
            derating_shift_c=param("derating_late", "c") or 0.0,
            no_temp_compensation="no_temp_compensation" in d,
            no_identity="no_identity" in d,
            balance_any_state="balance_any_state" in d,
            lockout_short_s=param("lockout_short", "s") or 0.0,
            latch_release_early="latch_release_early" in d,
            derating_floor=param("derating_floor", "duty") or 0.0,
            report_resolution_v=param("report_resolution", "mv", 1e-3),
        )

    @property
    def any(self) -> bool:
        """True when any firmware defect is set."""
        return self != BoardDefects()


def board_defects(defects) -> BoardDefects:
    """The typed firmware defects a board model receives: ``defects`` is the run's
    :class:`Defects` (its cached :attr:`Defects.board`), a :class:`BoardDefects`, specs or
    None."""
    if isinstance(defects, Defects):
        return defects.board
    return BoardDefects.from_defects(defects)


def parse_defect(spec: str, source: str = "--defect") -> Defect:
    """Parse one spec. Raises :class:`ConfigError` naming the spec, the parameter and the problem."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(source, repr(spec), "empty defect spec")
    spec = spec.strip()
    name, _, rest = spec.partition(":")
    name = name.strip()
    if name not in _BY_NAME:
        known = ", ".join(_BY_NAME)
        raise ConfigError(source, spec, f"unknown defect '{name}'; known defects: {known}")
    entry = _BY_NAME[name]
    wanted = {p.name: p for p in entry.params}
    params: dict = {}
    if rest.strip():
        for part in rest.split(","):
            key, eq, raw = part.partition("=")
            key, raw = key.strip(), raw.strip()
            if not eq or not key:
                raise ConfigError(source, spec, f"parameter '{part.strip()}' is not key=value")
            if key not in wanted:
                expect = ", ".join(wanted) or "no parameters"
                raise ConfigError(source, spec, f"parameter '{key}': unknown for {name} (takes {expect})")
            if key in params:
                raise ConfigError(source, spec, f"parameter '{key}': given twice")
            p = wanted[key]
            try:
                if p.kind is int:
                    value = int(raw)
                else:
                    value = float(raw)
                    if value != value or value in (float("inf"), float("-inf")):
                        raise ValueError
            except ValueError:
                kind = "an integer" if p.kind is int else "a number"
                raise ConfigError(source, spec, f"parameter '{key}': {raw!r} is not {kind}") from None
            if p.minimum is not None and value < p.minimum:
                raise ConfigError(source, spec, f"parameter '{key}': {raw} is below the minimum {p.minimum:g}"
                                  + (f" {p.unit}" if p.unit else ""))
            params[key] = value
    missing = [k for k in wanted if k not in params]
    if missing:
        raise ConfigError(source, spec, f"parameter '{missing[0]}' is missing (usage: {entry.usage})")
    if name == "cell_swap" and params["a"] == params["b"]:
        raise ConfigError(source, spec, "parameter 'b': must differ from 'a'")
    return Defect(name, params, spec)


def parse_defects(specs: Iterable[str] | None, n_cells: int | None = None, source: str = "--defect") -> Defects:
    """Parse a list of specs into :class:`Defects`; with ``n_cells`` also check cell ranges."""
    if specs is None:
        return Defects()
    if isinstance(specs, Defects):
        d = specs
    else:
        if isinstance(specs, str):
            specs = [specs]
        d = Defects(parse_defect(s, source) for s in specs)
    if n_cells is not None:
        d.validate_cells(n_cells, source)
    return d
