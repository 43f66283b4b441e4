"""Board profiles: the specification a board is tested against, as validated YAML.

A profile says what the board is (chemistry, cell count, capacity), how it must behave
(balancing and protection thresholds, derating), what the spec allows (accuracy, bleed
current range, latencies), how to talk to it (CAN: DBC + signal map; UART: register map)
and, for the virtual bench, which board model plays the DUT.

Voltages in V, deltas in mV (as datasheets state them), temperatures in °C, times in s,
currents in A unless a key says ``_ma``. Relative paths resolve against the profile's folder.
Figures cited in comments come from ../shared/data/REFERENCE.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError

PROFILE_DIR = Path(__file__).resolve().parent.parent / "testplans" / "profiles"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sampling(_Strict):
    period_s: float = Field(0.25, gt=0, description="AFE measurement cycle, s")
    accuracy_mv: float = Field(5.0, gt=0, description="spec: |reported − reference| ≤ this, mV")
    mute_s: float = Field(0.005, ge=0, description="balancing muted this long before each conversion, s")
    filter_samples: int = Field(4, ge=1, description="moving-average length of the reported value")
    temperature_range_c: tuple[float, float] = (-20.0, 60.0)


class Derating(_Strict):
    start_c: float = Field(60.0, description="bleed-resistor NTC temperature where duty starts to fall, °C")
    zero_c: float = Field(80.0, description="NTC temperature where duty reaches zero, °C")
    duty_tolerance: float = Field(0.10, gt=0, le=1, description="allowed |measured − curve| duty")

    def duty_at(self, celsius: float) -> float:
        """The profile's derating curve: 1 below start, linear to 0 at zero_c."""
        if celsius <= self.start_c:
            return 1.0
        if celsius >= self.zero_c:
            return 0.0
        return 1.0 - (celsius - self.start_c) / (self.zero_c - self.start_c)


class Strategies(_Strict):
    """Balancing duty multiplier per pack state (0 = no balancing in that state)."""

    rest: float = Field(1.0, ge=0, le=1)
    charge: float = Field(1.0, ge=0, le=1)
    float_: float = Field(1.0, ge=0, le=1, alias="float")
    discharge: float = Field(0.0, ge=0, le=1)
    rest_current_a: float = Field(0.5, ge=0, description="|pack current| below this is rest, A")
    float_current_a: float = Field(2.0, ge=0, description="charge current below this near full is float, A")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Balancing(_Strict):
    min_cell_v: float = Field(3.40, description="no balancing below this cell voltage (top of charge only), V")
    start_delta_mv: float = Field(30.0, gt=0, description="start when Vmax − Vmin exceeds this, mV")
    stop_delta_mv: float = Field(10.0, gt=0, description="stop a cell when it is within this of Vmin, mV")
    max_channels: int = Field(8, ge=1)
    allow_adjacent: bool = False
    bleed_resistor_ohm: float = Field(68.0, gt=0, description="bleed current = V_cell / R, Ω")
    bleed_current_ma: tuple[float, float] = Field((30.0, 60.0), description="spec range of bleed current, mA")
    interval_s: float = Field(5.0, gt=0, description="balancing decisions re-evaluated this often, s")
    start_latency_max_s: float = Field(15.0, gt=0)
    stop_latency_max_s: float = Field(15.0, gt=0)
    temp_comp_mv_per_c: float = Field(
        1.0, description="min_cell_v shifts by this per °C of cell temperature above 25 °C, mV/°C"
    )
    max_toggles_per_min: float = Field(4.0, ge=0, description="balancing mask changes allowed per minute")
    strategies: Strategies = Strategies()
    derating: Derating = Derating()
    resistor_thermal_c_per_w: float = Field(
        120.0, gt=0, description="bleed-resistor hot spot rise per W dissipated on the board, °C/W"
    )
    resistor_thermal_tau_s: float = Field(60.0, gt=0, description="hot-spot thermal time constant, s")

    def min_cell_v_at(self, cell_temp_c: float) -> float:
        """Temperature-compensated balancing minimum voltage, V."""
        return self.min_cell_v + self.temp_comp_mv_per_c * 1e-3 * (cell_temp_c - 25.0)


class Cutoff(_Strict):
    threshold_v: float
    delay_s: float = Field(1.0, ge=0)
    hysteresis_mv: float = Field(100.0, ge=0)
    recovery_s: float = Field(3.0, ge=0)
    threshold_tolerance_mv: float = Field(10.0, gt=0, description="spec: trip within ± this of threshold, mV")
    latency_max_s: float = Field(2.0, gt=0, description="spec: crossing to FET open, s")
    hysteresis_tolerance_mv: float = Field(20.0, gt=0)
    recovery_tolerance_s: float = Field(1.0, gt=0)


class Protection(_Strict):
    hvc: Cutoff
    lvc: Cutoff
    ot_charge_c: float = 45.0
    ut_charge_c: float = 0.0


class Link(_Strict):
    kind: Literal["can", "modbus"]
    dbc: str | None = None
    signal_map: str | None = None
    register_map: str | None = None
    bitrate: int = 500_000
    baudrate: int = 115_200
    unit_id: int = Field(1, ge=1, le=247)
    timeout_s: float = Field(2.0, gt=0, description="no sample within this is a link fault, s")
    poll_s: float = Field(0.1, gt=0, description="telemetry period / poll interval, s")

    @model_validator(mode="after")
    def _files(self):
        if self.kind == "can" and not (self.dbc and self.signal_map):
            raise ValueError("a CAN link needs 'dbc' and 'signal_map'")
        if self.kind == "modbus" and not self.register_map:
            raise ValueError("a Modbus link needs 'register_map'")
        return self


class BenchDut(_Strict):
    """How the virtual bench plays this board."""

    model: str = "rig.sim.reference_board:ReferenceBoard"
    serial: str = "SIM-0001"
    hw_revision: str = "B"
    fw_version: str = "1.4.2"


class BoardProfile(_Strict):
    name: str
    description: str = ""
    chemistry: Literal["lfp", "nmc"]
    cells: int = Field(ge=1, le=64)
    capacity_ah: float = Field(gt=0)
    sampling: Sampling = Sampling()
    balancing: Balancing = Balancing()
    protection: Protection
    link: Link
    bench: BenchDut = BenchDut()
    requirements: dict[str, str] = Field(default_factory=dict, description="requirement ID -> text")

    # set by load_profile, not by the YAML
    source: str | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _cross_checks(self):
        b, p = self.balancing, self.protection
        if b.stop_delta_mv >= b.start_delta_mv:
            raise ValueError(
                f"balancing.stop_delta_mv ({b.stop_delta_mv}) must be below balancing.start_delta_mv ({b.start_delta_mv})"
            )
        if p.hvc.threshold_v <= b.min_cell_v:
            raise ValueError(
                f"protection.hvc.threshold_v ({p.hvc.threshold_v}) must be above balancing.min_cell_v ({b.min_cell_v})"
            )
        if p.lvc.threshold_v >= b.min_cell_v:
            raise ValueError(
                f"protection.lvc.threshold_v ({p.lvc.threshold_v}) must be below balancing.min_cell_v ({b.min_cell_v})"
            )
        lo, hi = b.bleed_current_ma
        if not 0 < lo < hi:
            raise ValueError(f"balancing.bleed_current_ma must be [low, high] with 0 < low < high, got {list(b.bleed_current_ma)}")
        if b.derating.zero_c <= b.derating.start_c:
            raise ValueError("balancing.derating.zero_c must be above balancing.derating.start_c")
        if p.hvc.hysteresis_mv >= (p.hvc.threshold_v - p.lvc.threshold_v) * 1000:
            raise ValueError("protection.hvc.hysteresis_mv is larger than the HVC–LVC span")
        if self.sampling.mute_s >= self.sampling.period_s:
            raise ValueError("sampling.mute_s must be shorter than sampling.period_s")
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
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
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


def _error_key(err: dict) -> str:
    return ".".join(str(x) for x in err.get("loc", ())) or None


def load_profile(name_or_path: str | Path) -> BoardProfile:
    """Load and validate a profile. Raises :class:`ConfigError` naming file, key, problem."""
    path = find_profile(str(name_or_path))
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else None
        raise ConfigError(path, where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(path, None, "a board profile must be a YAML mapping")
    try:
        profile = BoardProfile.model_validate({**raw, "source": str(path.resolve())})
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        raise ConfigError(path, _error_key(err), f"{msg} (got {err.get('input')!r})" if err["type"] != "value_error" else msg) from None
    for key in ("dbc", "signal_map", "register_map"):
        rel = getattr(profile.link, key)
        if rel is not None and not profile.resolve(rel).is_file():
            raise ConfigError(path, f"link.{key}", f"file not found: {profile.resolve(rel)}")
    return profile
