"""NI-DAQmx reference DAQ: cell voltages, timestamped digital inputs, thermocouples.

``nidaqmx`` needs NI's runtime on the rig PC, so it is imported lazily (on activation, never
by importing this module or :mod:`rig.labgrid`) and is an optional extra
(``pip install bmsrig[nidaq]``). Activation asks the driver for the device's product type,
so a missing runtime or a wrong device name fails when the rig is built, as a
:class:`~rig.errors.RigFault` naming the device.

Digital edges are timestamped on the rig clock by polling: every configured line is read
in one task (one simultaneous sample) at activation, on each :meth:`NiDaqDriver.poll_digital`
and, when ``poll_on_clock`` is set, after every ``clock.sleep`` of the rig. An edge is
stamped with the time of the poll that saw it, so its timestamp is late by at most one poll
interval (a change-detection task can replace the polling on rigs that need
sub-millisecond edges).
"""

from __future__ import annotations

import math

import attr
import numpy as np
from labgrid.driver.common import Driver
from labgrid.factory import target_factory

from ..context import find_context
from ..errors import RigFault
from ..protocols import DigitalEdge, InstrumentInfo, ReferenceDAQ
from ..safety import FixedLimits, Limit, LimitConfigError, limit_pair

SAMPLES = Limit("samples per read", 1, 1_000_000, "samples")


def _pair(v):
    lo, hi = limit_pair(v, "voltage_range_v")
    if lo >= hi:
        raise LimitConfigError("voltage_range_v", f"[{lo:g}, {hi:g}] V is empty")
    return (lo, hi)


@target_factory.reg_driver
@attr.s(eq=False)
class NiDaqDriver(FixedLimits, Driver, ReferenceDAQ):
    """Reference DAQ on an NI-DAQmx device.

    Args:
        channels (int): number of cell-voltage channels
        uncertainty_v (float): expanded uncertainty (k=2) of an averaged reading, V, from the
            calibration certificate
        sample_rate_hz (float): rate for averaged voltage reads
        voltage_range_v ([lo, hi]): expected cell-voltage span, V (DAQmx picks the smallest
            input range that covers it; rated ±10 V)
        terminal_config (str): ``DIFF`` (each channel across one cell), ``RSE``, ``NRSE``,
            ``PSEUDO_DIFF`` or ``DEFAULT``
        thermocouple_type (str): ``K``, ``J``, ``T``, ``E``, ``N``, ``R``, ``S`` or ``B``
        poll_on_clock (bool): poll the digital lines after every rig ``clock.sleep``
    """

    bindings = {"res": "NiDaqDevice"}
    channels = attr.ib(default=16, converter=int)
    uncertainty_v = attr.ib(default=0.0005, converter=float)
    sample_rate_hz = attr.ib(default=1000.0, converter=float)
    voltage_range_v = attr.ib(default=[0.0, 5.0], converter=_pair)
    terminal_config = attr.ib(default="DIFF", converter=lambda s: str(s).upper())
    thermocouple_type = attr.ib(default="K", converter=lambda s: str(s).upper())
    poll_on_clock = attr.ib(default=True, converter=bool)
    role = "reference DAQ"
    RATED = {"voltage_range_v": Limit("input range", -10.0, 10.0, "V")}

    _TERMINAL_CONFIGS = ("DEFAULT", "RSE", "NRSE", "DIFF", "PSEUDO_DIFF")
    _TC_TYPES = ("B", "E", "J", "K", "N", "R", "S", "T")

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        if self.channels < 1:
            raise ValueError(f"{self.role}: channels must be >= 1, got {self.channels}")
        if self.terminal_config not in self._TERMINAL_CONFIGS:
            raise ValueError(f"{self.role}: terminal_config {self.terminal_config!r} is not one of {self._TERMINAL_CONFIGS}")
        if self.thermocouple_type not in self._TC_TYPES:
            raise ValueError(f"{self.role}: thermocouple_type {self.thermocouple_type!r} is not one of {self._TC_TYPES}")
        if not self.sample_rate_hz > 0:
            raise ValueError(f"{self.role}: sample_rate_hz must be > 0")
        self._fix_limits({"voltage_range_v": Limit("input range", *self.voltage_range_v, "V"), "samples": SAMPLES},
                         ("channels", "sample_rate_hz", "terminal_config", "thermocouple_type"))
        self._nidaqmx = None
        self._product_type = ""
        self._edges: list[DigitalEdge] = []
        self._levels: dict[str, bool] = {}
        self._clock = None

    @property
    def n_channels(self):
        return self.channels

    # ------------------------------------------------------------------ lifecycle

    def _source(self) -> str:
        return f"NI-DAQmx {self.res.device}"

    def on_activate(self):
        try:
            import nidaqmx  # noqa: F401  (the package imports without NI's runtime)
            import nidaqmx.system
        except Exception as exc:
            raise RigFault(self._source(), f"nidaqmx is not usable here: {exc}") from None
        self._nidaqmx = nidaqmx
        try:
            self._product_type = str(nidaqmx.system.Device(self.res.device).product_type)
        except Exception as exc:
            self._nidaqmx = None
            raise self._fault("device not reachable (NI-DAQmx runtime missing or wrong device name)", exc) from None
        self._edges, self._levels = [], {}
        self._clock = getattr(find_context(self.target), "clock", None)
        if self.res.digital_lines:
            self.poll_digital()  # the levels edges are measured from
            if self.poll_on_clock and self._clock is not None and hasattr(self._clock, "add_listener"):
                self._clock.add_listener(self._on_clock)

    def on_deactivate(self):
        if self._clock is not None and hasattr(self._clock, "remove_listener"):
            self._clock.remove_listener(self._on_clock)
        self._clock = None
        self._nidaqmx = None

    def _on_clock(self, now):
        self.poll_digital()

    def info(self):
        extra = {"product_type": self._product_type} if self._product_type else {}
        return InstrumentInfo(role=self.role, model=self.res.model or self._product_type or "NI-DAQmx device",
                              serial=self.res.serial, calibration_due=self.res.calibration_due,
                              notes=self.res.device, extra=extra)

    def _fault(self, what, exc):
        detail = " ".join(str(exc).split())  # DaqError messages span lines; a fault is one line
        return RigFault(self._source(), f"{what}: {type(exc).__name__}: {detail}")

    def _task(self):
        if self._nidaqmx is None:
            raise RigFault(self._source(), "not connected (the driver is not active)")
        return self._nidaqmx.Task()

    # ------------------------------------------------------------------ analog

    def read_cell_voltages(self, samples=1):
        n = int(self.limits["samples"].check(self._source(), samples))
        from nidaqmx.constants import AcquisitionType, TerminalConfiguration

        lo, hi = self.voltage_range_v
        try:
            with self._task() as task:
                task.ai_channels.add_ai_voltage_chan(
                    self.res.voltage_channels,
                    terminal_config=TerminalConfiguration[self.terminal_config],
                    min_val=lo,
                    max_val=hi,
                )
                if n > 1:
                    task.timing.cfg_samp_clk_timing(self.sample_rate_hz, sample_mode=AcquisitionType.FINITE, samps_per_chan=n)
                data = task.read(number_of_samples_per_channel=n, timeout=n / self.sample_rate_hz + 10.0)
        except RigFault:
            raise
        except Exception as exc:
            raise self._fault(f"voltage read of {self.res.voltage_channels!r} failed", exc) from None
        arr = np.asarray(data, dtype=float)
        if self.channels == 1:
            arr = arr.reshape(1, -1)
        if arr.shape != (self.channels, n):
            raise RigFault(self._source(), f"{self.res.voltage_channels!r} gave samples of shape {arr.shape}, "
                                           f"expected ({self.channels}, {n}): channels and voltage_channels disagree")
        if not np.all(np.isfinite(arr)):
            raise RigFault(self._source(), "voltage read returned non-finite samples")
        return arr.mean(axis=1)

    def voltage_uncertainty_v(self):
        return self.uncertainty_v

    def read_thermocouples(self):
        names = list(self.res.thermocouples)
        if not names:
            return {}
        from nidaqmx.constants import CJCSource, TemperatureUnits, ThermocoupleType

        try:
            with self._task() as task:
                for name in names:
                    task.ai_channels.add_ai_thrmcpl_chan(
                        self.res.thermocouples[name],
                        min_val=-50.0,
                        max_val=200.0,
                        units=TemperatureUnits.DEG_C,
                        thermocouple_type=ThermocoupleType[self.thermocouple_type],
                        cjc_source=CJCSource.BUILT_IN,
                    )
                values = task.read()
        except RigFault:
            raise
        except Exception as exc:
            raise self._fault("thermocouple read failed", exc) from None
        values = list(values) if isinstance(values, (list, tuple)) else [values]
        if len(values) != len(names):
            raise RigFault(self._source(), f"thermocouple read gave {len(values)} values for {len(names)} channels")
        out = {}
        for name, v in zip(names, values):
            v = float(v)
            if not math.isfinite(v):
                raise RigFault(self._source(), f"thermocouple {name} ({self.res.thermocouples[name]}) is open or invalid")
            out[name] = v
        return out

    # ------------------------------------------------------------------ digital

    def _physical(self, line):
        physical = self.res.digital_lines.get(line)
        if physical is None:
            raise RigFault(self._source(), f"no digital line named {line!r} in the rig description "
                                           f"(configured: {', '.join(self.res.digital_lines) or 'none'})")
        return physical

    def _read_lines(self, lines) -> list[bool]:
        physical = [self._physical(line) for line in lines]  # an unknown name fails before any task
        try:
            with self._task() as task:
                for name in physical:
                    task.di_channels.add_di_chan(name)
                values = task.read()
        except RigFault:
            raise
        except Exception as exc:
            raise self._fault(f"digital read of {', '.join(lines)} failed", exc) from None
        values = list(values) if isinstance(values, (list, tuple)) else [values]
        if len(values) != len(lines):
            raise RigFault(self._source(), f"digital read gave {len(values)} levels for {len(lines)} lines")
        return [bool(v) for v in values]

    def read_digital(self, line):
        (level,) = self._read_lines([line])
        self._note(line, level)
        return level

    def _now(self):
        if self._clock is None:
            self._clock = getattr(find_context(self.target), "clock", None)
        if self._clock is None:
            raise RigFault(self._source(), "no rig clock to timestamp edges (target not built by rig.build)")
        return self._clock.now()

    def _note(self, line, level):
        previous = self._levels.get(line)
        if previous is not None and previous != level:
            self._edges.append(DigitalEdge(self._now(), line, level))
        self._levels[line] = level

    def poll_digital(self):
        """Read every configured line once (one task, one sample), recording edges on the rig clock."""
        lines = list(self.res.digital_lines)
        if not lines:
            return
        for line, level in zip(lines, self._read_lines(lines)):
            self._note(line, level)

    def edges(self, since=0.0, line=None):
        return [e for e in self._edges if e.t >= since and (line is None or e.line == line)]
