"""Board profiles: the specification a board is tested against, as validated YAML.

A profile says what the board is (chemistry, cell count, capacity), how it must behave
(balancing and protection thresholds, derating), what the spec allows (accuracy, bleed
current range, latencies), how to talk to it (``link.kind`` names a link kind of
:mod:`rig.links.registry`, whose settings model validates the rest of ``link:``: CAN: DBC +
signal map; Modbus: register map) and, for the virtual bench, which board model plays the DUT.

Voltages in V, deltas in mV (as datasheets state them), temperatures in °C, times in s,
currents in A unless a key says ``_ma``. Relative paths resolve against the profile's folder.
Figures cited in comments come from ../shared/data/REFERENCE.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SerializeAsAny, ValidationError, model_validator

from .chemistry import chemistry as _chemistry
from .errors import ConfigError
from .links.registry import LinkSettings, validate_settings
from .profile_document import refuse_non_profile
from .profile_setpoints import SetpointByCommand, SetpointKey, check_setpoint_keys
from .yamlio import KeyedValueError as _Bad
from .yamlio import load_yaml, reject_bool_for_number, validation_error

PROFILE_DIR = Path(__file__).resolve().parent.parent / "testplans" / "profiles"
MAX_TIME_S = 86_400.0  # a profile time (delay, latency, period) above a day is a typo a plan would wait out, s


class _Strict(BaseModel):
    # unknown keys are errors; no inf/nan anywhere (a limit of inf s is no limit)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _ordered_pair(value: tuple[float, float], key: str, unit: str) -> None:
    lo, hi = value
    if not lo < hi:
        raise _Bad(key, f"must be [low, high] with low < high, got [{lo:g}, {hi:g}] {unit}")


class Sampling(_Strict):
    period_s: float = Field(0.25, gt=0, le=MAX_TIME_S, description="AFE measurement cycle, s")
    accuracy_mv: float = Field(5.0, gt=0, description="spec: |reported − reference| ≤ this, mV")
    mute_s: float = Field(0.005, ge=0, le=MAX_TIME_S, description="balancing muted this long before each conversion, s")
    filter_samples: int = Field(4, ge=1, description="moving-average length of the reported value")
    temperature_range_c: tuple[float, float] = Field((-20.0, 60.0), description="operating range of the cells, °C")
    update_period_s: float | None = Field(None, gt=0, le=MAX_TIME_S, description="the board reports a new value this often, s "
                                          "(unstated: every conversion, period_s)")
    resolution_mv: float = Field(1.0, gt=0, description="step of the reported cell voltage (quantisation), mV")
    latency_s: float = Field(0.0, ge=0, le=MAX_TIME_S, description="conversion to report, at most, s")

    @model_validator(mode="after")
    def _check(self):
        _ordered_pair(self.temperature_range_c, "temperature_range_c", "°C")
        if self.mute_s >= self.period_s:
            raise _Bad("mute_s", f"({self.mute_s:g} s) must be shorter than sampling.period_s ({self.period_s:g} s)")
        if self.update_period_s is not None and self.update_period_s < self.period_s:
            raise _Bad("update_period_s", f"({self.update_period_s:g} s) is faster than the conversions it reports "
                       f"(sampling.period_s {self.period_s:g} s)")
        if self.resolution_mv > 2.0 * self.accuracy_mv:
            raise _Bad("resolution_mv", f"({self.resolution_mv:g} mV) is coarser than twice the accuracy spec "
                       f"({self.accuracy_mv:g} mV): no reading could show it")
        return self

    @property
    def report_period_s(self) -> float:
        """How often a new reported value appears, s (``update_period_s``, else every conversion)."""
        return self.update_period_s or self.period_s

    @property
    def resolution_u_v(self) -> float:
        """Expanded uncertainty (k=2) of one reported value from its quantisation, V: a
        rectangular ±LSB/2, standard LSB/√12, times 2."""
        return 2.0 * self.resolution_mv * 1e-3 / 12 ** 0.5


TEMPERATURE_ROLES = ("cells", "bleed_resistor", "fet", "ambient")


class Temperatures(_Strict):
    """Which of the board's reported temperatures (1-based positions in the order its link map
    lists them: ``temps_c[position - 1]``) measures what. Any number of each role; a position
    in no role is reported but not judged. Unstated (every role empty), the layout of the
    reference board holds: every temperature but the last is a cell NTC, the last one the
    bleed-resistor NTC (one temperature alone: a cell NTC)."""

    cells: list[int] = Field(default_factory=list, description="cell NTC positions (1-based)")
    bleed_resistor: list[int] = Field(default_factory=list, description="bleed-resistor / board NTC positions (1-based)")
    fet: list[int] = Field(default_factory=list, description="FET NTC positions (1-based)")
    ambient: list[int] = Field(default_factory=list, description="ambient sensor positions (1-based)")

    @model_validator(mode="after")
    def _check(self):
        seen: dict[int, str] = {}
        for role in TEMPERATURE_ROLES:
            for pos in getattr(self, role):
                if pos < 1:
                    raise _Bad(role, f"position {pos}: positions count from 1 (the first reported temperature)")
                if pos in seen:
                    raise _Bad(role, f"position {pos} is already the {seen[pos]} role's; a sensor has one role")
                seen[pos] = role
        return self

    @property
    def stated(self) -> bool:
        """True when the profile names any role (else the reference layout holds)."""
        return any(getattr(self, r) for r in TEMPERATURE_ROLES)

    def indices(self, role: str, n_reported: int, source: object = None) -> list[int]:
        """0-based indices into ``temps_c`` of the sensors with ``role``, for a board that
        reports ``n_reported`` temperatures; ConfigError (profile file, key) when the profile
        names a position the board does not report."""
        if role not in TEMPERATURE_ROLES:
            raise KeyError(f"unknown temperature role {role!r}; use one of {', '.join(TEMPERATURE_ROLES)}")
        if not self.stated:
            if n_reported < 2:
                return list(range(n_reported)) if role == "cells" else []
            return list(range(n_reported - 1)) if role == "cells" else ([n_reported - 1] if role == "bleed_resistor" else [])
        for pos in getattr(self, role):
            if pos > n_reported:
                raise ConfigError(source, f"temperatures.{role}", f"position {pos}, but the board reports "
                                  f"{n_reported} temperature{'s' if n_reported != 1 else ''}")
        return [pos - 1 for pos in getattr(self, role)]


class Derating(_Strict):
    """Balancing duty against the bleed-resistor NTC, °C. Either ``start_c``/``zero_c`` (1 up
    to start, linear to 0 at zero) or ``points``: ``[[°C, duty], ...]`` in rising °C, duty
    falling to 0 at the last point, with ``shape`` ``linear`` (interpolated between points)
    or ``steps`` (each point's duty holds from its temperature up to the next point's)."""

    start_c: float = Field(60.0, description="bleed-resistor NTC temperature where duty starts to fall, °C")
    zero_c: float = Field(80.0, description="NTC temperature where duty reaches zero, °C")
    points: list[tuple[float, float]] | None = Field(None, description="the curve as [[°C, duty], ...]")
    shape: Literal["linear", "steps"] = Field("linear", description="between points: interpolate, or hold a step")
    duty_tolerance: float = Field(0.10, gt=0, le=1, description="allowed |measured − curve| duty")

    @model_validator(mode="before")
    @classmethod
    def _from_points(cls, data):
        pts = data.get("points") if isinstance(data, dict) else None
        if isinstance(pts, list) and pts and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in pts):
            data = dict(data)
            for key in ("start_c", "zero_c"):
                if key in data:
                    raise _Bad(key, "state the curve either by start_c/zero_c or by points, not both")
            try:
                data["start_c"], data["zero_c"] = float(pts[0][0]), float(pts[-1][0])
            except (TypeError, ValueError):
                pass  # the field validation names the bad point
        return data

    @model_validator(mode="after")
    def _check(self):
        if self.points is not None:
            pts = self.points
            if len(pts) < 2:
                raise _Bad("points", "needs at least two points [[°C, duty], ...]")
            for (t0, d0), (t1, d1) in zip(pts, pts[1:]):
                if not t1 > t0:
                    raise _Bad("points", f"temperatures must rise: {t0:g} °C then {t1:g} °C")
                if d1 > d0:
                    raise _Bad("points", f"duty must not rise with temperature: {d0:g} at {t0:g} °C, {d1:g} at {t1:g} °C")
            if any(not 0.0 <= d <= 1.0 for _, d in pts):
                raise _Bad("points", "every duty must lie in [0, 1]")
            if pts[-1][1] != 0.0:
                raise _Bad("points", f"the last point must be duty 0 (the curve reaches zero), got {pts[-1][1]:g}")
        if self.zero_c <= self.start_c:
            raise _Bad("zero_c", f"({self.zero_c:g} °C) must be above derating.start_c ({self.start_c:g} °C)")
        return self

    def curve(self) -> list[tuple[float, float]]:
        """The curve's points ``[(°C, duty), ...]`` (start/zero: ``[(start, 1), (zero, 0)]``)."""
        return list(self.points) if self.points is not None else [(self.start_c, 1.0), (self.zero_c, 0.0)]

    def duty_at(self, celsius: float) -> float:
        """The profile's derating curve at ``celsius``: the first point's duty below it, 0 from
        the last point on, interpolated (``linear``) or held (``steps``) between points."""
        pts = self.curve()
        if celsius < pts[0][0] or (celsius == pts[0][0] and self.shape == "linear"):
            return 1.0 if self.points is None else float(pts[0][1])
        if celsius >= pts[-1][0]:
            return 0.0
        for (t0, d0), (t1, d1) in zip(pts, pts[1:]):
            if t0 <= celsius < t1:
                return float(d0) if self.shape == "steps" else float(d0 + (d1 - d0) * (celsius - t0) / (t1 - t0))
        return 0.0  # pragma: no cover - the loop covers [first, last)


class Strategies(_Strict):
    """Balancing duty multiplier per pack state (0 = no balancing in that state)."""

    rest: float = Field(1.0, ge=0, le=1)
    charge: float = Field(1.0, ge=0, le=1)
    float_: float = Field(1.0, ge=0, le=1, alias="float")
    discharge: float = Field(0.0, ge=0, le=1)
    rest_current_a: float = Field(0.5, ge=0, description="|pack current| below this is rest, A")
    float_current_a: float = Field(2.0, ge=0, description="charge current below this near full is float, A")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)

    def duty(self, state: str) -> float:
        """The duty multiplier in pack state ``rest``/``charge``/``float``/``discharge``."""
        return {"rest": self.rest, "charge": self.charge, "float": self.float_, "discharge": self.discharge}[state]

    def balancing_state(self) -> str | None:
        """The pack state a test puts the board in to see it balance: rest when it balances at
        rest, else charge, else float, else discharge; None when it balances in none."""
        for state in ("rest", "charge", "float", "discharge"):
            if self.duty(state) > 0.0:
                return state
        return None


class CommandGate(_Strict):
    """A board that balances only once the host sent it a command: ``command`` names one of the
    link map's board commands (CAN ``commands:`` / Modbus ``commands:``); with ``value`` (a
    parameter or signal / register of that command) only while its last value is non-zero."""

    command: str = Field(min_length=1)
    value: str | None = None


class Balancing(_Strict):
    min_cell_v: float = Field(3.40, description="no balancing below this cell voltage (top of charge only), V")
    start_delta_mv: float = Field(30.0, gt=0, description="start when Vmax − Vmin exceeds this, mV")
    stop_delta_mv: float = Field(10.0, gt=0, description="stop a cell when it is within this of Vmin, mV")
    max_channels: int = Field(8, ge=1)
    allow_adjacent: bool = False
    bleed_resistor_ohm: float = Field(68.0, gt=0, description="bleed current = V_cell / R, Ω")
    bleed_current_ma: tuple[float, float] = Field((30.0, 60.0), description="spec range of bleed current, mA")
    interval_s: float = Field(5.0, gt=0, le=MAX_TIME_S, description="balancing decisions re-evaluated this often, s")
    start_latency_max_s: float = Field(15.0, gt=0, le=MAX_TIME_S)
    stop_latency_max_s: float = Field(15.0, gt=0, le=MAX_TIME_S)
    temp_comp_mv_per_c: float = Field(
        1.0, description="min_cell_v shifts by this per °C of cell temperature above 25 °C, mV/°C"
    )
    max_toggles_per_min: float = Field(4.0, ge=0, description="balancing mask changes allowed per minute")
    start_mode: Literal["delta", "absolute"] = Field(
        "delta", description="delta: a cell bleeds when Vmax − Vmin > start_delta_mv; absolute: when it is above "
        "start_cell_v (stops stop_delta_mv below it)")
    start_cell_v: float | None = Field(None, description="absolute start: a cell above this bleeds, V")
    interleave: Literal["fill", "odd_even"] = Field(
        "fill", description="without allow_adjacent: fill (the decision's parity first, then non-adjacent cells of the "
        "other) or odd_even (one parity per decision, odd and even decisions alternate)")
    group_cells: int | None = Field(None, ge=1, description="cells per AFE / balancing group (1..group_cells, ...)")
    max_per_group: int | None = Field(None, ge=1, description="most channels bleeding at once in one group")
    strategies: Strategies = Strategies()
    derating: Derating = Derating()
    enabled_by_command: CommandGate | None = Field(
        None, description="the board does not balance until the host sends this board command (the rig sends "
        "the link map's 'when: start' commands when it opens the link)")
    resistor_thermal_c_per_w: float = Field(
        120.0, gt=0, description="bleed-resistor hot spot rise per W dissipated on the board, °C/W"
    )
    resistor_thermal_tau_s: float = Field(60.0, gt=0, le=MAX_TIME_S, description="hot-spot thermal time constant, s")

    @model_validator(mode="after")
    def _check(self):
        if self.stop_delta_mv >= self.start_delta_mv:
            raise _Bad("stop_delta_mv", f"({self.stop_delta_mv:g} mV) must be below balancing.start_delta_mv "
                       f"({self.start_delta_mv:g} mV): a cell would stop before it starts")
        lo, hi = self.bleed_current_ma
        if not 0 < lo < hi:
            raise _Bad("bleed_current_ma", f"must be [low, high] with 0 < low < high, got {list(self.bleed_current_ma)} mA")
        if self.start_mode == "absolute" and self.start_cell_v is None:
            raise _Bad("start_cell_v", "is required with start_mode: absolute (the cell voltage a cell bleeds above, V)")
        if self.start_mode == "absolute" and self.start_cell_v < self.min_cell_v:
            raise _Bad("start_cell_v", f"({self.start_cell_v:g} V) must not be below balancing.min_cell_v "
                       f"({self.min_cell_v:g} V)")
        if (self.group_cells is None) != (self.max_per_group is None):
            raise _Bad("max_per_group", "group_cells and max_per_group go together (the group size and its limit)")
        if self.strategies.balancing_state() is None:
            raise _Bad("strategies", "every strategy duty is 0: the board would never balance")
        return self

    def group_of(self, channel: int) -> int:
        """The balancing group (AFE) of 0-based ``channel`` (0 without groups)."""
        return channel // self.group_cells if self.group_cells else 0

    def most_per_group(self) -> int:
        """Most channels bleeding at once in one group (``max_per_group``, else ``max_channels``)."""
        return min(self.max_per_group or self.max_channels, self.max_channels)

    def min_cell_v_at(self, cell_temp_c: float) -> float:
        """Temperature-compensated balancing minimum voltage, V."""
        return self.min_cell_v + self.temp_comp_mv_per_c * 1e-3 * (cell_temp_c - 25.0)


class Cutoff(_Strict):
    threshold_v: float = Field(gt=0, description="cell voltage where the board trips, V")
    delay_s: float = Field(1.0, ge=0, le=MAX_TIME_S, description="crossing held this long before tripping, s")
    hysteresis_mv: float = Field(100.0, ge=0, description="recovery this far back inside the threshold, mV")
    recovery_s: float = Field(3.0, ge=0, le=MAX_TIME_S, description="recovered level held this long before release, s")
    threshold_tolerance_mv: float = Field(10.0, gt=0, description="spec: trip within ± this of threshold, mV")
    latency_max_s: float = Field(2.0, gt=0, le=MAX_TIME_S, description="spec: crossing to FET open, s")
    hysteresis_tolerance_mv: float = Field(20.0, gt=0)
    recovery_tolerance_s: float = Field(1.0, gt=0, le=MAX_TIME_S)
    recovery: Literal["hysteresis", "lockout", "both", "latched"] = Field(
        "hysteresis", description="hysteresis: release once back past threshold ∓ hysteresis for recovery_s; lockout: "
        "not before lockout_s after the trip, then once back inside the threshold; both: hysteresis and lockout; "
        "latched: held until the charger (HVC) / load (LVC) is removed, then released once back past the hysteresis")
    lockout_s: float = Field(0.0, ge=0, le=MAX_TIME_S, description="lockout / both: no release before this long after the trip, s")

    @model_validator(mode="after")
    def _check(self):
        if self.latency_max_s < self.delay_s:
            raise _Bad("latency_max_s", f"({self.latency_max_s:g} s) is shorter than delay_s ({self.delay_s:g} s): "
                       "no board that waits delay_s can meet it")
        if self.recovery in ("lockout", "both") and self.lockout_s <= 0:
            raise _Bad("lockout_s", f"must be > 0 with recovery: {self.recovery}")
        return self

    @property
    def uses_hysteresis(self) -> bool:
        """Whether the release waits for the cell back past threshold ∓ hysteresis."""
        return self.recovery in ("hysteresis", "both", "latched")


class Protection(_Strict):
    hvc: Cutoff
    lvc: Cutoff
    ot_charge_c: float = Field(45.0, description="no charging above this cell temperature, °C")
    ut_charge_c: float = Field(0.0, description="no charging below this cell temperature, °C")

    @model_validator(mode="after")
    def _check(self):
        if self.ut_charge_c >= self.ot_charge_c:
            raise _Bad("ut_charge_c", f"({self.ut_charge_c:g} °C) must be below protection.ot_charge_c "
                       f"({self.ot_charge_c:g} °C)")
        return self


def _link_settings(value: object) -> LinkSettings:
    """The ``link:`` section, validated by the settings model of the kind it names
    (:mod:`rig.links.registry`): errors name ``link.<key>``, an unknown kind the known ones."""
    return validate_settings(value)


class BenchDut(_Strict):
    """How the virtual bench plays this board."""

    model: str = Field("rig.sim.reference_board:ReferenceBoard", pattern=r"^([\w.]+:\w+|[\w-]+)$",
                       description="board model: a registered name (reference) or module:Class")
    serial: str = "SIM-0001"
    hw_revision: str = "B"
    fw_version: str = "1.4.2"
    j1939_source_address: int | None = Field(
        None, ge=0, le=255, description="the bench board sends its J1939 messages (matched by PGN in the map) "
        "from this source address instead of the DBC's (CAN links)")
    j1939_priority: int | None = Field(None, ge=0, le=7, description="... and with this priority (CAN links)")


class BoardProfile(_Strict):
    name: str
    description: str = ""
    chemistry: Literal["lfp", "nmc"]
    cells: int = Field(ge=1, le=64)
    capacity_ah: float = Field(gt=0)
    sampling: Sampling = Sampling()
    balancing: Balancing = Balancing()
    temperatures: Temperatures = Temperatures()
    protection: Protection
    link: Annotated[SerializeAsAny[LinkSettings], BeforeValidator(_link_settings)]
    bench: BenchDut = BenchDut()
    setpoints_by_command: dict[SetpointKey, SetpointByCommand] = Field(
        default_factory=dict, description="promised values the board takes from a link-map command "
        "(rig/profile_setpoints.py), with its factory default without it")

    # set by load_profile, not by the YAML
    source: str | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _cross_checks(self):
        """Physics: thresholds inside the chemistry's absolute range and in order."""
        chem = _chemistry(self.chemistry)
        b, p = self.balancing, self.protection
        hvc, lvc = p.hvc, p.lvc
        for key, volts in (("protection.hvc.threshold_v", hvc.threshold_v), ("protection.lvc.threshold_v", lvc.threshold_v),
                           ("balancing.min_cell_v", b.min_cell_v)):
            if not chem.abs_min_v <= volts <= chem.abs_max_v:
                raise _Bad(key, f"{volts:g} V is outside the absolute range of a {chem.name.upper()} cell "
                           f"[{chem.abs_min_v:g}, {chem.abs_max_v:g}] V")
        if hvc.threshold_v <= b.min_cell_v:
            raise _Bad("protection.hvc.threshold_v", f"({hvc.threshold_v:g} V) must be above balancing.min_cell_v "
                       f"({b.min_cell_v:g} V)")
        if lvc.threshold_v >= b.min_cell_v:
            raise _Bad("protection.lvc.threshold_v", f"({lvc.threshold_v:g} V) must be below balancing.min_cell_v "
                       f"({b.min_cell_v:g} V)")
        span_mv = (hvc.threshold_v - lvc.threshold_v) * 1000.0
        for name, cut in (("hvc", hvc), ("lvc", lvc)):
            if cut.hysteresis_mv >= span_mv:
                raise _Bad(f"protection.{name}.hysteresis_mv", f"({cut.hysteresis_mv:g} mV) is not smaller than the "
                           f"HVC–LVC span ({span_mv:g} mV)")
            if cut.threshold_tolerance_mv >= span_mv / 2:
                raise _Bad(f"protection.{name}.threshold_tolerance_mv", f"({cut.threshold_tolerance_mv:g} mV) is not "
                           f"smaller than half the HVC–LVC span ({span_mv:g} mV)")
        if hvc.threshold_v - hvc.hysteresis_mv / 1000 <= lvc.threshold_v + lvc.hysteresis_mv / 1000:
            raise _Bad("protection.hvc.hysteresis_mv", f"HVC recovery ({hvc.threshold_v - hvc.hysteresis_mv / 1000:g} V) "
                       f"must be above LVC recovery ({lvc.threshold_v + lvc.hysteresis_mv / 1000:g} V)")
        if b.start_delta_mv >= span_mv:
            raise _Bad("balancing.start_delta_mv", f"({b.start_delta_mv:g} mV) is not smaller than the HVC–LVC span "
                       f"({span_mv:g} mV)")
        if b.max_channels > self.cells:
            raise _Bad("balancing.max_channels", f"({b.max_channels}) is more than the board's {self.cells} cells")
        check_setpoint_keys(self)
        for key, (lo, hi) in (("sampling.temperature_range_c", self.sampling.temperature_range_c),
                              ("protection.ut_charge_c", (p.ut_charge_c, p.ut_charge_c)),
                              ("protection.ot_charge_c", (p.ot_charge_c, p.ot_charge_c))):
            if lo < chem.abs_min_c or hi > chem.abs_max_c:
                raise _Bad(key, f"outside the temperature envelope of a {chem.name.upper()} cell "
                           f"[{chem.abs_min_c:g}, {chem.abs_max_c:g}] °C")
        return self

    def resolve(self, relpath: str | None) -> Path | None:
        """A path from the profile, resolved against the profile file's folder."""
        if relpath is None:
            return None
        p = Path(relpath)
        if not p.is_absolute() and self.source:
            p = Path(self.source).parent / p
        return p

    @property
    def bleed_current_nominal_a(self) -> float:
        """Bleed current at the balancing minimum voltage, A (V / R)."""
        return self.balancing.min_cell_v / self.balancing.bleed_resistor_ohm


def list_profiles() -> list[Path]:
    """The board profiles shipped with bmsrig (the folder also holds DBCs and link maps)."""
    out = []
    for path in sorted(PROFILE_DIR.glob("*.yaml")):
        try:
            raw = load_yaml(path, "YAML file")
        except ConfigError:
            raw = None
        if isinstance(raw, dict) and "chemistry" in raw and "cells" in raw:
            out.append(path)
        elif not (isinstance(raw, dict) and str(raw.get("format", "")).startswith("bmsrig-")):
            out.append(path)  # neither a profile nor a link map: list it so `bmsrig boards` shows why it is invalid
    return out


def find_profile(name_or_path: str) -> Path:
    """A shipped profile by name (``reference-16s-lfp``) or any YAML file by path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise ConfigError(p, None, "no such board profile file")
        return p
    candidate = PROFILE_DIR / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    known = ", ".join(x.stem for x in list_profiles())
    raise ConfigError(name_or_path, None, f"unknown board profile; shipped profiles: {known}")


def check_bench_model(spec: str, file: object, key: str = "bench.model") -> type:
    """The board model class named by ``spec`` (a registered name or ``module:Class``,
    :func:`rig.sim.boards.load_board`); ConfigError (file, key) if it is not one."""
    from .sim.boards import load_board

    cls = load_board(spec, source=str(file), key=key)
    if not isinstance(cls, type):
        raise ConfigError(file, key, f"board model {spec!r} is a {type(cls).__name__}, not a class")
    return cls


def load_profile(name_or_path: str | Path) -> BoardProfile:
    """Load and validate a profile. Raises :class:`ConfigError` naming file, key, problem.

    Strict YAML (duplicate keys rejected), unknown keys rejected with the closest known key,
    every number finite, thresholds inside the chemistry's absolute range and in order,
    linked files present, ``bench.model`` an importable class.
    """
    path = find_profile(str(name_or_path))
    raw = load_yaml(path, "board profile")
    if not isinstance(raw, dict):
        raise ConfigError(path, None, f"a board profile must be a YAML mapping, got {type(raw).__name__}")
    refuse_non_profile(raw, path)  # a signal / register map given as the profile, an old profile
    reject_bool_for_number(BoardProfile, raw, path)
    try:
        profile = BoardProfile.model_validate({**raw, "source": str(path.resolve())})
    except ValidationError as exc:
        raise validation_error(BoardProfile, exc, path) from None
    for key, rel in profile.link.files().items():
        if not profile.resolve(rel).is_file():
            raise ConfigError(path, f"link.{key}", f"file not found: {profile.resolve(rel)}")
    check_bench_model(profile.bench.model, path)
    if profile.setpoints_by_command or profile.balancing.enabled_by_command:  # the map's commands must exist and configure what the profile promises
        from .links.registry import kind_of
        kind_of(profile).check_maps(profile)
    return profile
