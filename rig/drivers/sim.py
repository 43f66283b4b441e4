"""Virtual-bench drivers: the instrument protocols over a simulated world (rig.sim.World).

These are the only place where the rig touches the simulator on a plan's behalf. Each
driver enforces the hard limits of the rig description before anything reaches the world,
exactly as a hardware driver does before anything is sent.
"""

from __future__ import annotations

import attr
import numpy as np
from labgrid.driver.common import Driver
from labgrid.factory import target_factory

from ..clock import VirtualClock, wait_stable
from ..context import context_of
from ..errors import RigFault
from ..protocols import (
    CellEmulator,
    DigitalEdge,
    InstrumentInfo,
    PackCurrentSource,
    ReferenceDAQ,
    ThermalChamber,
)
from ..safety import check_limit


def _pair(value, name):
    lo, hi = (float(x) for x in value)
    if lo > hi:
        raise ValueError(f"{name}: low {lo} above high {hi}")
    return (lo, hi)


@target_factory.reg_driver
@attr.s(eq=False)
class SimBenchDriver(Driver):
    """Owns the simulated world for a run; gives the rig its virtual clock."""

    bindings = {"bench": "SimBench"}

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.world = None

    def on_activate(self):
        from ..sim.world import World

        ctx = context_of(self.target)
        self.world = World(
            ctx.profile,
            seed=ctx.seed,
            defects=list(ctx.defects),
            board_model=ctx.board_model,
            ambient_c=self.bench.ambient_c,
            fine_step_s=self.bench.fine_step_s,
        )
        world = self.world
        ctx.clock = VirtualClock(world.advance, lambda: world.t)

    def on_deactivate(self):
        if self.world is not None:
            self.world.close()
            self.world = None

    def info(self) -> InstrumentInfo:
        ctx = context_of(self.target)
        return InstrumentInfo(
            role="virtual bench",
            model="bmsrig virtual bench (rig.sim)",
            serial=f"seed {ctx.seed}",
            notes="simulated pack, chamber and reference BMS board in virtual time; "
            + (f"injected defects: {', '.join(ctx.defects)}" if ctx.defects else "no injected defects"),
        )


class _SimInstrument:
    """Shared plumbing: the world behind a sim driver."""

    role = "instrument"
    model = "virtual"

    @property
    def world(self):
        drv = self.bench
        if drv.world is None:
            self.target.activate(drv)
        return drv.world

    def info(self) -> InstrumentInfo:
        return InstrumentInfo(
            role=self.role,
            model=self.model,
            serial=f"SIM-{self.__class__.__name__.removeprefix('Sim').removesuffix('Driver').upper()}",
            calibration_due=None,
            notes="virtual instrument: no calibration applies",
        )


@target_factory.reg_driver
@attr.s(eq=False)
class SimCellEmulatorDriver(_SimInstrument, Driver, CellEmulator):
    """Cell emulator channels of the virtual bench.

    Args (hard limits from the rig description):
        voltage_range_v: [low, high] per-channel set point, V
        max_current_a: largest source/sink current limit that may be set, A
        max_noise_v_rms: largest injected noise, V RMS
        safe_voltage_v: per-channel voltage of the safe state, V
    """

    bindings = {"bench": "SimBenchDriver"}
    voltage_range_v = attr.ib(default=[0.0, 5.0], converter=lambda v: _pair(v, "voltage_range_v"))
    max_current_a = attr.ib(default=5.0, converter=float)
    max_noise_v_rms = attr.ib(default=0.05, converter=float)
    safe_voltage_v = attr.ib(default=3.3, converter=float)
    role = "cell emulator"
    model = "bmsrig virtual cell emulator"

    @property
    def n_channels(self) -> int:
        return self.world.n

    def _check_v(self, volts):
        lo, hi = self.voltage_range_v
        arr = np.asarray(volts, dtype=float)
        for v in np.atleast_1d(arr):
            check_limit("cell emulator", "channel voltage", v, lo, hi, "V")
        return arr

    def set_voltages(self, volts):
        arr = self._check_v(volts)
        if arr.ndim == 0:
            arr = np.full(self.n_channels, float(arr))
        if arr.shape != (self.n_channels,):
            raise ValueError(f"cell emulator: expected {self.n_channels} voltages, got shape {arr.shape}")
        self.world.set_emulator_voltages(arr.copy())

    def set_voltage(self, channel, volts):
        if not 0 <= channel < self.n_channels:
            raise IndexError(f"cell emulator: channel {channel} outside 0..{self.n_channels - 1}")
        self._check_v(volts)
        v = np.array(self.world.emulator_setpoints(), dtype=float)
        v[channel] = float(volts)
        self.world.set_emulator_voltages(v)

    def enable(self, on=True):
        self.world.set_emulator_enabled(bool(on))

    def read_voltages(self):
        return np.asarray(self.world.terminal_voltages(), dtype=float).copy()

    def read_currents(self, aperture_s=None):
        return np.asarray(self.world.channel_currents(0.02 if aperture_s is None else float(aperture_s)), dtype=float)

    def set_current_limits(self, source_a, sink_a):
        """Checked against the hard limit like hardware; the bench's ideal sources do not
        model current limiting (no plan relies on it)."""
        check_limit("cell emulator", "source current limit", source_a, 0.0, self.max_current_a, "A")
        check_limit("cell emulator", "sink current limit", sink_a, 0.0, self.max_current_a, "A")

    def set_noise(self, v_rms):
        check_limit("cell emulator", "injected noise", v_rms, 0.0, self.max_noise_v_rms, "V rms")
        self.world.set_emulator_noise(float(v_rms))

    def set_cell_model(self, chemistry, capacity_ah, soc, temperature_c=None):
        soc_arr = np.broadcast_to(np.asarray(soc, dtype=float), (self.n_channels,)).copy()
        cap = np.broadcast_to(np.asarray(capacity_ah, dtype=float), (self.n_channels,)).copy()
        if np.any(soc_arr < 0) or np.any(soc_arr > 1.05):
            raise ValueError("cell emulator: cell-model SOC must be within 0..1.05")
        self.world.set_cell_model(chemistry, cap, soc_arr, temperature_c)
        self._check_v(self.world.terminal_voltages())

    def set_source_mode(self):
        self.world.set_source_mode()

    def read_soc(self):
        return np.asarray(self.world.soc(), dtype=float).copy()

    def safe_state(self):
        try:
            self.world.set_source_mode()
            self.world.set_emulator_noise(0.0)
            self.world.set_emulator_voltages(np.full(self.n_channels, self.safe_voltage_v))
        except Exception:  # a safe state never raises
            pass


@target_factory.reg_driver
@attr.s(eq=False)
class SimPackSourceDriver(_SimInstrument, Driver, PackCurrentSource):
    """Pack charger/load of the virtual bench.

    Args: current_range_a [low, high] (A, + charge), max_voltage_limit_v (V).
    """

    bindings = {"bench": "SimBenchDriver"}
    current_range_a = attr.ib(default=[-200.0, 200.0], converter=lambda v: _pair(v, "current_range_a"))
    max_voltage_limit_v = attr.ib(default=250.0, converter=float)
    role = "pack current source"
    model = "bmsrig virtual bidirectional supply"

    def set_current(self, amps, voltage_limit_v=None):
        lo, hi = self.current_range_a
        check_limit("pack current source", "current", amps, lo, hi, "A")
        if voltage_limit_v is not None:
            check_limit("pack current source", "voltage limit", voltage_limit_v, 0.0, self.max_voltage_limit_v, "V")
        self.world.set_charger(float(amps), None if voltage_limit_v is None else float(voltage_limit_v))

    def read_current(self):
        return float(self.world.pack_current())

    def read_voltage(self):
        return float(self.world.pack_voltage())

    def off(self):
        self.world.set_charger(0.0, None)

    def safe_state(self):
        try:
            self.world.set_charger(0.0, None)
        except Exception:
            pass


@target_factory.reg_driver
@attr.s(eq=False)
class SimChamberDriver(_SimInstrument, Driver, ThermalChamber):
    """Climatic chamber of the virtual bench.

    Args: temperature_range_c [low, high] (°C), max_ramp_c_per_min, default_ramp_c_per_min,
    ambient_c (safe-state set point).
    """

    bindings = {"bench": "SimBenchDriver"}
    temperature_range_c = attr.ib(default=[-40.0, 100.0], converter=lambda v: _pair(v, "temperature_range_c"))
    max_ramp_c_per_min = attr.ib(default=5.0, converter=float)
    default_ramp_c_per_min = attr.ib(default=3.0, converter=float)
    ambient_c = attr.ib(default=25.0, converter=float)
    role = "thermal chamber"
    model = "bmsrig virtual climatic chamber"

    def set_temperature(self, celsius, ramp_c_per_min=None):
        lo, hi = self.temperature_range_c
        check_limit("thermal chamber", "set point", celsius, lo, hi, "°C")
        ramp = self.default_ramp_c_per_min if ramp_c_per_min is None else ramp_c_per_min
        check_limit("thermal chamber", "ramp rate", ramp, 0.0, self.max_ramp_c_per_min, "°C/min")
        self.world.set_chamber(float(celsius), float(ramp))

    def read_temperature(self):
        return float(self.world.chamber_temperature())

    def wait_stable(self, tolerance_c=0.5, dwell_s=60.0, timeout_s=7200.0):
        sp = self.world.chamber_setpoint()
        return wait_stable(
            context_of(self.target).clock, self.read_temperature, sp, tolerance_c, dwell_s, timeout_s,
            max(1.0, min(10.0, dwell_s / 6)),
            lambda pv: RigFault("thermal chamber", f"not stable within ±{tolerance_c} °C of {sp:g} °C after "
                                                   f"{timeout_s:g} s (reads {pv:.2f} °C)"),
        )

    def safe_state(self):
        try:
            self.world.set_chamber(self.ambient_c, self.default_ramp_c_per_min)
        except Exception:
            pass


@target_factory.reg_driver
@attr.s(eq=False)
class SimDaqDriver(_SimInstrument, Driver, ReferenceDAQ):
    """Reference DAQ of the virtual bench (cell voltages, digital inputs, thermocouples)."""

    bindings = {"bench": "SimBenchDriver"}
    role = "reference DAQ"
    model = "bmsrig virtual reference DAQ"

    @property
    def n_channels(self) -> int:
        return self.world.n

    def read_cell_voltages(self, samples=1):
        n = max(1, int(samples))
        acc = np.zeros(self.n_channels)
        for _ in range(n):
            acc += self.world.daq_voltages()
        return acc / n

    def voltage_uncertainty_v(self):
        return float(self.world.daq_uncertainty_v())

    def read_digital(self, line):
        return bool(self.world.digital_level(line))

    def edges(self, since=0.0, line=None):
        return [
            DigitalEdge(e.t, e.line, e.level)
            for e in self.world.daq_edges
            if e.t >= since and (line is None or e.line == line)
        ]

    def read_thermocouples(self):
        return dict(self.world.thermocouples())
