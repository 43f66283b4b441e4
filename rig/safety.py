"""Hard limits and the safe state.

Hard limits are fixed when the rig is built. Each instrument driver declares the range its
instrument is rated for (``RATED``); the rig description narrows it (``voltage_range_v``,
``current_range_a``, ``temperature_range_c`` ...); for a cell emulator the cell's absolute
range for the profile's chemistry narrows it further (the intersection: a rig file serves
every chemistry, the board profile says which cell the emulator stands in for). The result
is a frozen :class:`HardLimits` per instrument; the driver attributes it came from cannot be
assigned after construction (AttributeError, nothing changes).

Every command is checked against them before anything is sent (:meth:`Limit.check`,
:meth:`Limit.check_channels`), so a command outside a limit raises
:class:`~rig.errors.SafetyLimitError` and nothing reaches the instrument. What the rig does
on its own (cell-model ticks, the bench emulator's over-voltage protection) is checked too:
a violation there puts the rig in its safe state and raises :class:`LimitTrip` (a rig
fault, exit 3).

:class:`SafeStateGuard` puts the rig in its safe state on teardown, on an exception, on
Ctrl-C (SIGINT) and on SIGTERM: pack current zero, chamber to ambient, emulator outputs to
the safe voltage. Safe-state values are validated against the limits when the rig is built.
"""

from __future__ import annotations

import math
import operator
import signal
import threading
import types
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from .context import find_context
from .errors import RigFault, SafetyLimitError


def check_limit(instrument: str, quantity: str, value: float, lo: float, hi: float, unit: str) -> float:
    """Return ``value`` if ``lo <= value <= hi`` (and finite); else raise SafetyLimitError."""
    return Limit(quantity, lo, hi, unit).check(instrument, value)


def _real(value) -> float:
    """``value`` as a float; a non-number (string, None, array) counts as NaN (refused)."""
    if isinstance(value, (bool, np.bool_, str, bytes)):
        return math.nan
    try:
        return float(operator.index(value)) if isinstance(value, (int, np.integer)) else float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan


@dataclass(frozen=True)
class Limit:
    """A closed range ``[lo, hi]`` of one quantity in ``unit`` (SI: V, A, °C, °C/min, s)."""

    quantity: str
    lo: float
    hi: float
    unit: str

    def __post_init__(self):
        lo, hi = float(self.lo), float(self.hi)
        if math.isnan(lo) or math.isnan(hi) or lo > hi:
            raise ValueError(f"{self.quantity}: [{lo:g}, {hi:g}] {self.unit} is not a range")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    def __str__(self) -> str:
        return f"[{self.lo:g}, {self.hi:g}] {self.unit}"

    def contains(self, value) -> bool:
        v = _real(value)
        return math.isfinite(v) and self.lo <= v <= self.hi

    def covers(self, other: "Limit") -> bool:
        return self.lo <= other.lo and other.hi <= self.hi

    def intersect(self, lo: float, hi: float) -> "Limit | None":
        """The part of this range inside ``[lo, hi]``; None when they do not overlap."""
        a, b = max(self.lo, lo), min(self.hi, hi)
        return Limit(self.quantity, a, b, self.unit) if a <= b else None

    def check(self, instrument: str, value, quantity: str | None = None) -> float:
        """``value`` as a float if finite and inside; else SafetyLimitError (nothing sent)."""
        v = _real(value)
        if not (math.isfinite(v) and self.lo <= v <= self.hi):
            raise SafetyLimitError(instrument, quantity or self.quantity, v, self.lo, self.hi, self.unit)
        return v

    def check_channels(self, instrument: str, values, n: int, label: str = "channel") -> np.ndarray:
        """One value or exactly ``n`` values, every one finite and inside -> an array of ``n``.

        A wrong shape is a ValueError, a value outside a SafetyLimitError naming the channel
        (``label`` and its 1-based number: ``cell 16`` on a multi-unit emulator); both before
        anything is sent.
        """
        try:
            arr = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"{instrument}: {self.quantity} must be one number or {n} numbers, got {values!r}") from None
        if arr.ndim == 0:
            arr = np.full(n, float(arr))
        elif arr.shape != (n,):
            raise ValueError(f"{instrument}: expected one {self.quantity} or {n}, got shape {arr.shape}")
        bad = ~(np.isfinite(arr) & (arr >= self.lo) & (arr <= self.hi))
        if bad.any():
            i = int(np.argmax(bad))
            raise SafetyLimitError(instrument, f"{label} {i + 1} {self.quantity.removeprefix('channel ')}", float(arr[i]), self.lo, self.hi, self.unit)
        return arr.copy()


@dataclass(frozen=True)
class HardLimits:
    """The frozen hard limits of one instrument: rig-file key -> :class:`Limit`."""

    instrument: str
    limits: Mapping[str, Limit]
    notes: str = ""

    def __post_init__(self):
        object.__setattr__(self, "limits", types.MappingProxyType(dict(self.limits)))

    def __getitem__(self, key: str) -> Limit:
        return self.limits[key]

    def __contains__(self, key) -> bool:
        return key in self.limits

    def describe(self) -> str:
        """One line for the instrument table of the report."""
        text = "; ".join(f"{lim.quantity} {lim}" for lim in self.limits.values())
        return f"{text} ({self.notes})" if self.notes else text


class LimitConfigError(ValueError):
    """A hard limit or safe-state value of the rig description is impossible (``key`` names it)."""

    def __init__(self, key: str, problem: str):
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


class LimitTrip(RigFault):
    """A limit was reached while the rig ran on its own (a cell-model tick, an emulator's
    over-voltage protection): the rig was put in its safe state; the board was not judged."""


class SafeStateGuard:
    """Runs ``safe_state`` once on SIGTERM/SIGINT and on exit of a ``with`` block.

    Both signals become ``KeyboardInterrupt`` once the safe state is reached, so pytest and
    the CLI unwind normally: the run record gets an "incomplete" deviation and keeps every
    measurement taken so far. ``last_signal`` says which signal it was.
    """

    def __init__(self, safe_state: Callable[[], None]):
        self._safe_state = safe_state
        self._previous: dict[int, object] = {}
        self.reached = 0
        self.last_signal: str | None = None

    def make_safe(self) -> None:
        try:
            self._safe_state()
        finally:
            self.reached += 1

    def _on_signal(self, signum, frame):
        self.last_signal = signal.Signals(signum).name
        self.make_safe()
        raise KeyboardInterrupt(f"{self.last_signal}: rig put in its safe state")

    def install(self) -> "SafeStateGuard":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def __enter__(self):
        return self.install()

    def __exit__(self, *exc):
        try:
            self.make_safe()
        finally:
            self.uninstall()
        return False


class FixedLimits:
    """Mixin of an instrument driver (list it before labgrid's ``Driver``): fixed hard limits.

    A driver declares ``RATED`` (rig-file key -> the :class:`Limit` its instrument is rated
    for) and ``SAFE_VALUES`` (rig-file key of a safe-state value -> key of the limit it must
    lie in), and calls :meth:`_fix_limits` at the end of ``__attrs_post_init__``. From then
    on the attributes it names cannot be assigned or deleted. :attr:`limits` are the
    effective limits: the rig file's, narrowed by :meth:`_narrow_limits` for the board
    profile once the run context (:class:`rig.context.RunContext`) is on the target (the cell emulator intersects its voltage range
    with the chemistry's absolute range).
    """

    RATED: Mapping[str, Limit] = {}
    SAFE_VALUES: Mapping[str, str] = {}
    _GUARDED = frozenset({"limits", "_base_limits", "_effective_limits", "_fixed_attrs"})

    def _fix_limits(self, limits: Mapping[str, Limit], fixed_attrs=()) -> None:
        for key, lim in limits.items():
            rated = self.RATED.get(key)
            if rated is not None and not rated.covers(lim):
                raise LimitConfigError(key, f"{lim.quantity} {lim} is outside the rated range {rated} of "
                                            f"this {self.role} ({type(self).__name__})")
        base = HardLimits(self.role, limits)
        self._check_safe_values(base)
        object.__setattr__(self, "_base_limits", base)
        object.__setattr__(self, "_fixed_attrs", frozenset(fixed_attrs) | frozenset(limits) | self._GUARDED)

    def _check_safe_values(self, limits: HardLimits) -> None:
        for key, limit_key in self.SAFE_VALUES.items():
            value, lim = getattr(self, key), limits[limit_key]
            if not lim.contains(value):
                raise LimitConfigError(key, f"safe-state value {value:g} {lim.unit} is outside the hard limit "
                                            f"{limit_key} {lim}{' (' + limits.notes + ')' if limits.notes else ''}")

    def _narrow_limits(self, base: HardLimits, profile) -> HardLimits:
        """The limits for the board ``profile`` (no narrowing by default)."""
        return base

    @property
    def limits(self) -> HardLimits:
        """The effective hard limits (frozen; narrowed for the run's board profile)."""
        d = self.__dict__
        if "_effective_limits" in d:
            return d["_effective_limits"]
        profile = getattr(find_context(self.target), "profile", None)
        if profile is None:
            return d["_base_limits"]
        eff = self._narrow_limits(d["_base_limits"], profile)
        self._check_safe_values(eff)
        object.__setattr__(self, "_effective_limits", eff)
        return eff

    def __setattr__(self, name, value):
        if name in self.__dict__.get("_fixed_attrs", ()):
            raise AttributeError(f"{getattr(self, 'role', 'instrument')}: {name} is a hard limit fixed when the rig "
                                 "was built; it cannot be changed (edit the rig description)")
        super().__setattr__(name, value)

    def __delattr__(self, name):
        if name in self.__dict__.get("_fixed_attrs", ()):
            raise AttributeError(f"{getattr(self, 'role', 'instrument')}: {name} is a hard limit fixed when the rig "
                                 "was built; it cannot be removed")
        super().__delattr__(name)


def trip(target, source: str, message: str, fallback: Callable[[], None] | None = None) -> LimitTrip:
    """Put the rig in its safe state and return the :class:`LimitTrip` for the caller to raise.

    The run's safe state (``safe_state`` of the target's run context, set by
    :func:`rig.build.build_rig`) when there is one, else every driver of ``target`` that has a ``safe_state``, else
    ``fallback`` (the tripping instrument's own safe state).
    """
    safe = getattr(find_context(target), "safe_state", None)
    if safe is not None:
        actions = [safe]
    else:
        actions = [d.safe_state for d in list(getattr(target, "drivers", ())) if hasattr(d, "safe_state")]
        if not actions and fallback is not None:
            actions = [fallback]
    for action in actions:
        try:
            action()
        except Exception:
            pass
    return LimitTrip(source, f"{message}; the rig was put in its safe state")


CELL_SOC = Limit("cell-model SOC", 0.0, 1.0, "(fraction)")
CELL_CAPACITY = Limit("cell-model capacity", 1e-3, 1e4, "Ah")
CELL_TEMPERATURE_KEY = "cell_temperature_c"


def narrow_to_chemistry(base: HardLimits, profile, key: str = "voltage_range_v") -> HardLimits:
    """A cell emulator's limits for the board ``profile``: the channel-voltage limit is the
    rig file's intersected with the chemistry's absolute range (:mod:`rig.chemistry`); the
    cell-model temperature is the chemistry's temperature envelope, °C.

    LimitConfigError when the two voltage ranges do not overlap.
    """
    from .chemistry import chemistry

    try:
        chem = chemistry(profile.chemistry)
    except KeyError:
        raise LimitConfigError(key, f"no absolute range known for chemistry {profile.chemistry!r}") from None
    lim = base[key]
    eff = lim.intersect(chem.abs_min_v, chem.abs_max_v)
    if eff is None:
        raise LimitConfigError(key, f"{lim} does not overlap the absolute range [{chem.abs_min_v:g}, "
                                    f"{chem.abs_max_v:g}] V of a {chem.name.upper()} cell")
    limits = dict(base.limits)
    limits[key] = eff
    limits[CELL_TEMPERATURE_KEY] = Limit("cell-model temperature", chem.abs_min_c, chem.abs_max_c, "°C")
    notes = (f"channel voltage = rig file {lim} ∩ {chem.name.upper()} cell absolute range "
             f"[{chem.abs_min_v:g}, {chem.abs_max_v:g}] V")
    return HardLimits(base.instrument, limits, notes)


def check_cell_model(instrument: str, limits: HardLimits, n: int, capacity_ah, soc, temperature_c):
    """Validate a cell-model set-up before anything is switched: -> (capacity Ah, SOC) arrays."""
    soc_arr = CELL_SOC.check_channels(instrument, soc, n)
    cap = CELL_CAPACITY.check_channels(instrument, capacity_ah, n)
    if temperature_c is not None:
        t_lim = limits.limits.get(CELL_TEMPERATURE_KEY) or Limit("cell-model temperature", -40.0, 85.0, "°C")
        t_lim.check(instrument, temperature_c)
    return cap, soc_arr


APERTURE = Limit("current aperture", 0.0, 86400.0, "s")


def channel_index(channel, n: int, instrument: str) -> int:
    """A 0-based channel index: an integer in ``0..n-1`` (IndexError/TypeError otherwise)."""
    if isinstance(channel, (bool, np.bool_)):
        raise TypeError(f"{instrument}: channel index must be an integer, got {channel!r}")
    try:
        i = operator.index(channel)
    except TypeError:
        raise TypeError(f"{instrument}: channel index must be an integer, got {channel!r}") from None
    if not 0 <= i < n:
        raise IndexError(f"{instrument}: channel index {i} outside 0..{n - 1}")
    return i


def pack_source_limits(current_range_a, max_voltage_limit_v) -> dict[str, Limit]:
    """The hard limits of a pack current source; the range must include 0 A (off, safe state)."""
    cur = Limit("current", *current_range_a, "A")
    if not cur.contains(0.0):
        raise LimitConfigError("current_range_a", f"{cur} must include 0 A (off and the safe state)")
    return {"current_range_a": cur, "max_voltage_limit_v": Limit("voltage limit", 0.0, max_voltage_limit_v, "V")}


def check_wait(instrument: str, tolerance_c, dwell_s, timeout_s) -> None:
    """wait_stable arguments: tolerance > 0, dwell >= 0, finite timeout >= 0 (ValueError)."""
    t, d, to = _real(tolerance_c), _real(dwell_s), _real(timeout_s)
    if not (t > 0 and math.isfinite(t) and d >= 0 and math.isfinite(d) and to >= 0 and math.isfinite(to)):
        raise ValueError(f"{instrument}: wait_stable needs tolerance > 0, dwell >= 0 and a finite timeout >= 0 "
                         f"(got {tolerance_c!r}, {dwell_s!r}, {timeout_s!r})")


def limit_pair(value, key: str) -> tuple[float, float]:
    """A rig file's ``[low, high]``: two finite numbers, low <= high (LimitConfigError)."""
    try:
        lo, hi = (float(x) for x in value)
    except (TypeError, ValueError):
        raise LimitConfigError(key, f"must be [low, high], got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise LimitConfigError(key, f"[{lo:g}, {hi:g}] is not a range (finite low <= high)")
    return (lo, hi)


def limit_scalar(value, key: str) -> float:
    """A rig file's non-negative finite number (LimitConfigError)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise LimitConfigError(key, f"must be a number, got {value!r}") from None
    if not (math.isfinite(v) and v >= 0):
        raise LimitConfigError(key, f"must be a finite number >= 0, got {v:g}")
    return v


def safe_value(value, key: str) -> float:
    """A rig file's finite safe-state value (LimitConfigError)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise LimitConfigError(key, f"must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise LimitConfigError(key, f"must be finite, got {v:g}")
    return v
