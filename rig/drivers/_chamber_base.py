"""What every vendor chamber driver shares: hard limits, wait-stable, safe state, info.

A vendor driver (:mod:`rig.drivers.watlow_f4`, :mod:`rig.drivers.watlow_ezzone`,
:mod:`rig.drivers.espec`, :mod:`rig.drivers.watlow_f4t`) subclasses :class:`VendorChamberDriver`
and provides the I/O hooks ``_open``, ``_close_link``, ``_write_setpoint``, ``_write_ramp``,
``_read_pv``, ``_read_sp`` and ``_identity``. Every command passes :meth:`VendorChamberDriver.set_temperature`,
which checks the hard limits (:attr:`FixedLimits.limits`) before a hook runs, so a
command beyond a limit never reaches the vendor library.

The hard limits are :class:`rig.safety.FixedLimits` like every other instrument driver's:
each vendor driver declares the set-point range its controller path can carry as its rated
range (``RATED``); the rig description narrows it (``temperature_range_c`` [lo, hi] °C,
``max_ramp_c_per_min`` °C/min); the safe-state set point ``ambient_c`` (°C) must lie inside,
checked when the driver is built and again by :func:`rig.build.build_rig`. The limit
attributes cannot be assigned after construction (AttributeError, nothing changes).

Vendor libraries are imported lazily, on activation, by :func:`vendor_import`: a missing one
is a :class:`~rig.errors.RigFault` naming the pip extra to install, not a traceback.
"""

from __future__ import annotations

import importlib
import logging

import attr
from labgrid.driver.common import Driver

from ..clock import wait_stable
from ..context import context_of
from ..errors import RigFault
from ..protocols import InstrumentInfo, ThermalChamber
from ..safety import FixedLimits, Limit, LimitConfigError, check_wait, limit_pair, limit_scalar, safe_value

log = logging.getLogger(__name__)


def vendor_import(module: str, package: str, extra: str, who: str):
    """Import a vendor library on activation; a missing one names the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise RigFault(who, f"the vendor library '{package}' is not installed ({exc}); "
                            f"install it with: pip install 'bmsrig[{extra}]'") from None


#: the largest ramp-rate limit a vendor chamber driver accepts, °C/min
RATED_RAMP = Limit("ramp rate", 0.0, 30.0, "°C/min")


def rated_chamber(lo_c: float, hi_c: float) -> dict[str, Limit]:
    """``RATED`` of a vendor chamber driver whose controller path carries [lo_c, hi_c] °C."""
    return {"temperature_range_c": Limit("set point", lo_c, hi_c, "°C"), "max_ramp_c_per_min": RATED_RAMP}


@attr.s(eq=False)
class VendorChamberDriver(FixedLimits, Driver, ThermalChamber):
    """Base of the vendor chamber drivers (see the module docstring).

    Args:
        temperature_range_c ([lo, hi]): hard limit of the set point, °C (inside the driver's rated range)
        max_ramp_c_per_min (float): hard limit of a requested ramp rate, °C/min (> 0, at most 30)
        ambient_c (float): the set point of the safe state, °C (inside the range)
        poll_s (float): rig-clock interval between process-value reads in ``wait_stable``, s
    """

    temperature_range_c = attr.ib(default=(-40.0, 90.0), converter=lambda v: limit_pair(v, "temperature_range_c"))
    max_ramp_c_per_min = attr.ib(default=5.0, converter=lambda v: limit_scalar(v, "max_ramp_c_per_min"))
    ambient_c = attr.ib(default=25.0, converter=lambda v: safe_value(v, "ambient_c"))
    poll_s = attr.ib(default=5.0, converter=float)
    role = "thermal chamber"
    vendor = "chamber controller"
    #: the set-point range the controller path can carry, °C, and the ramp-rate limit (subclasses narrow it)
    RATED = rated_chamber(-273.0, 1000.0)
    SAFE_VALUES = {"ambient_c": "temperature_range_c"}
    #: further attributes fixed with the limits (a subclass adds e.g. its ramp register)
    FIXED_ALSO: tuple[str, ...] = ()

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        if not self.max_ramp_c_per_min > 0:
            raise LimitConfigError("max_ramp_c_per_min", f"must be > 0 °C/min, got {self.max_ramp_c_per_min:g}")
        self._fix_limits({"temperature_range_c": Limit("set point", *self.temperature_range_c, "°C"),
                          "max_ramp_c_per_min": Limit("ramp rate", 0.0, self.max_ramp_c_per_min, "°C/min")},
                         ("ambient_c",) + tuple(self.FIXED_ALSO))
        if not self.poll_s > 0:
            raise ValueError(f"{self.role}: poll_s must be > 0")
        self.lib = None
        self._sp = self.ambient_c
        self._identity_cache: dict = {}

    # ------------------------------------------------------------------ hooks
    def _where(self) -> str:  # pragma: no cover - overridden
        return ""

    def _open(self):  # returns the vendor library's controller object
        raise NotImplementedError

    def _close_link(self, lib) -> None:
        raise NotImplementedError

    def _write_setpoint(self, celsius: float) -> None:
        raise NotImplementedError

    def _write_ramp(self, c_per_min: float) -> bool:
        """Send a ramp rate; return False when this controller path cannot set one."""
        return False

    def _read_pv(self) -> float:
        raise NotImplementedError

    def _read_sp(self) -> float:
        raise NotImplementedError

    def _identity(self) -> dict:
        """What the controller says it is (model, firmware...); {} when it cannot tell."""
        return {}

    # ------------------------------------------------------------------ naming
    def _what(self) -> str:
        where = ", ".join(x for x in (getattr(self.res, "model", ""), self._where()) if x)
        name = f" '{self.res.name}'" if getattr(self.res, "name", None) else ""
        return f"{self.role}{name} ({where})" if where else f"{self.role}{name}"

    def _call(self, what: str, fn, *args):
        if self.lib is None:
            raise RigFault(self._what(), f"{what}: not connected (the driver is not active)")
        try:
            return fn(*args)
        except RigFault:
            raise
        except Exception as exc:  # vendor libraries raise OSError, ValueError, their own types
            detail = " ".join(str(exc).split())
            raise RigFault(self._what(), f"{what} failed: {type(exc).__name__}: {detail}") from None

    # ------------------------------------------------------------------ lifecycle
    def on_activate(self):
        try:
            self.lib = self._open()
        except RigFault:
            raise
        except Exception as exc:
            raise RigFault(self._what(), f"cannot open: {type(exc).__name__}: {' '.join(str(exc).split())}") from None
        try:
            self._sp = self._call("set point read", self._read_sp)  # what the chamber is really heading for
            self._identity_cache = self._call("identity read", self._identity)
        except RigFault:
            self._close()
            raise

    def on_deactivate(self):
        self._close()

    def _close(self):
        lib, self.lib = self.lib, None
        if lib is not None:
            try:
                self._close_link(lib)
            except Exception:
                pass

    def info(self) -> InstrumentInfo:
        ident = dict(self._identity_cache)
        model = self.res.model or ident.get("model", "") or self.vendor
        notes = self._where()
        if ident.get("firmware"):
            notes = f"{notes}; firmware {ident['firmware']}" if notes else f"firmware {ident['firmware']}"
        return InstrumentInfo(role=self.role, model=model, serial=self.res.serial or ident.get("serial", ""),
                              calibration_due=self.res.calibration_due, notes=notes,
                              extra={**{f"controller_{k}": v for k, v in ident.items()},
                                     "hard limits": self.limits.describe()})

    # ------------------------------------------------------------------ protocol
    def set_temperature(self, celsius, ramp_c_per_min=None):
        """Set point, °C, and optionally a ramp rate, °C/min: both checked before anything is sent."""
        celsius = self.limits["temperature_range_c"].check(self._what(), celsius)
        if ramp_c_per_min is not None:
            ramp_c_per_min = self.limits["max_ramp_c_per_min"].check(self._what(), ramp_c_per_min)
        if ramp_c_per_min is not None:
            if not self._call("ramp write", self._write_ramp, ramp_c_per_min):
                log.warning("%s: this controller path cannot set a ramp rate; the requested %g °C/min is not enforced",
                            self._what(), ramp_c_per_min)
        self._call("set point write", self._write_setpoint, celsius)
        self._sp = celsius

    def read_setpoint(self) -> float:
        """The set point the controller holds, °C."""
        return self._call("set point read", self._read_sp)

    def read_temperature(self) -> float:
        return self._call("process value read", self._read_pv)

    def wait_stable(self, tolerance_c=0.5, dwell_s=60.0, timeout_s=7200.0):
        check_wait(self._what(), tolerance_c, dwell_s, timeout_s)
        return wait_stable(
            context_of(self.target).clock, self.read_temperature, self._sp, tolerance_c, dwell_s, timeout_s, self.poll_s,
            lambda pv: RigFault(self._what(), f"not stable within ±{tolerance_c:g} °C of {self._sp:g} °C after "
                                              f"{timeout_s:g} s (process value {pv:g} °C)"),
        )

    def safe_state(self):
        """Set point to ambient; never raises."""
        try:
            self.set_temperature(self.ambient_c)
        except Exception:
            pass
