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
from ..safety import (
    APERTURE,
    FixedLimits,
    Limit,
    check_cell_model,
    check_wait,
    narrow_to_chemistry,
    pack_source_limits,
    limit_pair,
    limit_scalar,
    safe_value,
    trip,
)
from ..safety import channel_index as _channel


def _pair(value, name):
    return limit_pair(value, name)


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
        ctx.clock = VirtualClock(self._advance, lambda: world.t)

    def _advance(self, dt: float) -> None:
        """Advance the world; an emulator protection trip puts the rig in its safe state
        and is a rig fault (:class:`~rig.safety.LimitTrip`)."""
        from ..sim.world import EmulatorTrip

        try:
            self.world.advance(dt)
        except EmulatorTrip as exc:
            raise trip(self.target, "cell emulator", str(exc)) from None

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
    def _world(self):
        """The simulated world (private: a plan reaches the bench only through the protocols)."""
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
class SimCellEmulatorDriver(FixedLimits, _SimInstrument, Driver, CellEmulator):
    """Cell emulator channels of the virtual bench.

    Args (hard limits from the rig description, fixed when the rig is built):
        voltage_range_v: [low, high] per-channel set point, V (rated 0–6 V; narrowed to
            the chemistry's absolute range of the board profile)
        max_current_a: largest source/sink current limit that may be set, A (rated 10 A)
        max_noise_v_rms: largest injected noise, V RMS (rated 0.1 V)
        safe_voltage_v: per-channel voltage of the safe state, V (inside voltage_range_v)

    In cell-model mode the emulator's over-voltage protection (like a real emulator's OVP)
    watches the terminals against ``voltage_range_v``: a trip switches the outputs off, puts
    the rig in its safe state and is a rig fault.
    """

    bindings = {"bench": "SimBenchDriver"}
    voltage_range_v = attr.ib(default=[0.0, 5.0], converter=lambda v: _pair(v, "voltage_range_v"))
    max_current_a = attr.ib(default=5.0, converter=lambda v: limit_scalar(v, "max_current_a"))
    max_noise_v_rms = attr.ib(default=0.05, converter=lambda v: limit_scalar(v, "max_noise_v_rms"))
    safe_voltage_v = attr.ib(default=3.3, converter=lambda v: safe_value(v, "safe_voltage_v"))
    role = "cell emulator"
    model = "bmsrig virtual cell emulator"
    RATED = {"voltage_range_v": Limit("channel voltage", 0.0, 6.0, "V"),
             "max_current_a": Limit("current limit", 0.0, 10.0, "A"),
             "max_noise_v_rms": Limit("injected noise", 0.0, 0.1, "V rms")}
    SAFE_VALUES = {"safe_voltage_v": "voltage_range_v"}

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self._fix_limits({
            "voltage_range_v": Limit("channel voltage", *self.voltage_range_v, "V"),
            "max_current_a": Limit("current limit", 0.0, self.max_current_a, "A"),
            "max_noise_v_rms": Limit("injected noise", 0.0, self.max_noise_v_rms, "V rms"),
        }, ("safe_voltage_v",))

    def _narrow_limits(self, base, profile):
        return narrow_to_chemistry(base, profile)

    def info(self) -> InstrumentInfo:
        i = super().info()
        return InstrumentInfo(role=i.role, model=i.model, serial=i.serial, calibration_due=i.calibration_due,
                              notes=i.notes, extra={**i.extra, "hard limits": self.limits.describe()})

    @property
    def n_channels(self) -> int:
        return self._world.n

    def _vlim(self) -> Limit:
        return self.limits["voltage_range_v"]

    def set_voltages(self, volts):
        arr = self._vlim().check_channels(self.role, volts, self.n_channels)
        self._world.set_emulator_voltages(arr)

    def set_voltage(self, channel, volts):
        channel = _channel(channel, self.n_channels, self.role)
        v = self._vlim().check(self.role, volts, f"channel {channel + 1} voltage")
        arr = np.array(self._world.emulator_setpoints(), dtype=float)
        arr[channel] = v
        self._world.set_emulator_voltages(arr)

    def enable(self, on=True):
        self._world.set_emulator_enabled(bool(on))

    def read_voltages(self):
        return np.asarray(self._world.terminal_voltages(), dtype=float).copy()

    def read_currents(self, aperture_s=None):
        ap = 0.02 if aperture_s is None else APERTURE.check(self.role, aperture_s)
        return np.asarray(self._world.channel_currents(ap), dtype=float)

    def set_current_limits(self, source_a, sink_a):
        """Checked against the hard limit like hardware; the bench's ideal sources do not
        model current limiting (no plan relies on it)."""
        lim = self.limits["max_current_a"]
        lim.check(self.role, source_a, "source current limit")
        lim.check(self.role, sink_a, "sink current limit")

    def set_noise(self, v_rms):
        self._world.set_emulator_noise(self.limits["max_noise_v_rms"].check(self.role, v_rms))

    def set_cell_model(self, chemistry, capacity_ah, soc, temperature_c=None, capacity_scale=1.0):
        """Switch to cell-model mode; SOC, capacity, temperature and the predicted terminal
        voltages are checked against the hard limits before the world is switched.
        ``capacity_scale``: see rig.protocols.CellEmulator.set_cell_model."""
        from ..cellmodel import scaled_cell_params

        cap, soc_arr = check_cell_model(self.role, self.limits, self.n_channels, capacity_ah, soc, temperature_c)
        params = scaled_cell_params(chemistry, cap, capacity_scale) if capacity_scale != 1.0 else None
        model = self._world.prepare_cell_model(chemistry, cap * capacity_scale, soc_arr,
                                              None if temperature_c is None else float(temperature_c), params=params)
        self._vlim().check_channels(f"{self.role} (cell model, predicted terminal voltage)", model.v, self.n_channels)
        lim = self._vlim()
        self._world.install_cell_model(model, ovp=(lim.lo, lim.hi))

    def set_source_mode(self):
        self._world.set_source_mode()

    def read_soc(self):
        return np.asarray(self._world.soc(), dtype=float).copy()

    def safe_state(self):
        """Source mode, no noise, every channel at ``safe_voltage_v`` (outputs off if that
        were outside the limit). Never raises."""
        try:
            self._world.set_source_mode()
            self._world.set_emulator_noise(0.0)
            if self._vlim().contains(self.safe_voltage_v):
                self._world.set_emulator_voltages(np.full(self.n_channels, self.safe_voltage_v))
            else:
                self._world.set_emulator_enabled(False)
        except Exception:  # a safe state never raises
            pass


@target_factory.reg_driver
@attr.s(eq=False)
class SimPackSourceDriver(FixedLimits, _SimInstrument, Driver, PackCurrentSource):
    """Pack charger/load of the virtual bench.

    Args (hard limits): current_range_a [low, high] (A, + charge; must include 0 A; rated
    ±500 A), max_voltage_limit_v (V, rated 1000 V).
    """

    bindings = {"bench": "SimBenchDriver"}
    current_range_a = attr.ib(default=[-200.0, 200.0], converter=lambda v: _pair(v, "current_range_a"))
    max_voltage_limit_v = attr.ib(default=250.0, converter=lambda v: limit_scalar(v, "max_voltage_limit_v"))
    role = "pack current source"
    model = "bmsrig virtual bidirectional supply"
    RATED = {"current_range_a": Limit("current", -500.0, 500.0, "A"),
             "max_voltage_limit_v": Limit("voltage limit", 0.0, 1000.0, "V")}

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self._fix_limits(pack_source_limits(self.current_range_a, self.max_voltage_limit_v))

    def set_current(self, amps, voltage_limit_v=None):
        a = self.limits["current_range_a"].check(self.role, amps)
        v = None if voltage_limit_v is None else self.limits["max_voltage_limit_v"].check(self.role, voltage_limit_v)
        self._world.set_charger(a, v)

    def read_current(self):
        return float(self._world.pack_current())

    def read_voltage(self):
        return float(self._world.pack_voltage())

    def off(self):
        self._world.set_charger(0.0, None)

    def safe_state(self):
        try:
            self._world.set_charger(0.0, None)
        except Exception:
            pass


@target_factory.reg_driver
@attr.s(eq=False)
class SimChamberDriver(FixedLimits, _SimInstrument, Driver, ThermalChamber):
    """Climatic chamber of the virtual bench.

    Args (hard limits): temperature_range_c [low, high] (°C, rated −70…180 °C),
    max_ramp_c_per_min (°C/min, rated 30), default_ramp_c_per_min and ambient_c (the
    safe-state set point, °C), both inside the limits.
    """

    bindings = {"bench": "SimBenchDriver"}
    temperature_range_c = attr.ib(default=[-40.0, 100.0], converter=lambda v: _pair(v, "temperature_range_c"))
    max_ramp_c_per_min = attr.ib(default=5.0, converter=lambda v: limit_scalar(v, "max_ramp_c_per_min"))
    default_ramp_c_per_min = attr.ib(default=3.0, converter=lambda v: safe_value(v, "default_ramp_c_per_min"))
    ambient_c = attr.ib(default=25.0, converter=lambda v: safe_value(v, "ambient_c"))
    role = "thermal chamber"
    model = "bmsrig virtual climatic chamber"
    RATED = {"temperature_range_c": Limit("set point", -70.0, 180.0, "°C"),
             "max_ramp_c_per_min": Limit("ramp rate", 0.0, 30.0, "°C/min")}
    SAFE_VALUES = {"ambient_c": "temperature_range_c", "default_ramp_c_per_min": "max_ramp_c_per_min"}

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self._fix_limits({"temperature_range_c": Limit("set point", *self.temperature_range_c, "°C"),
                          "max_ramp_c_per_min": Limit("ramp rate", 0.0, self.max_ramp_c_per_min, "°C/min")},
                         ("ambient_c", "default_ramp_c_per_min"))

    def set_temperature(self, celsius, ramp_c_per_min=None):
        sp = self.limits["temperature_range_c"].check(self.role, celsius)
        ramp = self.default_ramp_c_per_min if ramp_c_per_min is None else ramp_c_per_min
        ramp = self.limits["max_ramp_c_per_min"].check(self.role, ramp)
        self._world.set_chamber(sp, ramp)

    def read_temperature(self):
        return float(self._world.chamber_temperature())

    def wait_stable(self, tolerance_c=0.5, dwell_s=60.0, timeout_s=7200.0):
        check_wait(self.role, tolerance_c, dwell_s, timeout_s)
        sp = self._world.chamber_setpoint()
        return wait_stable(
            context_of(self.target).clock, self.read_temperature, sp, tolerance_c, dwell_s, timeout_s,
            max(1.0, min(10.0, dwell_s / 6)),
            lambda pv: RigFault("thermal chamber", f"not stable within ±{tolerance_c} °C of {sp:g} °C after "
                                                   f"{timeout_s:g} s (reads {pv:.2f} °C)"),
        )

    def safe_state(self):
        try:
            sp, ramp = self.ambient_c, self.default_ramp_c_per_min
            if self.limits["temperature_range_c"].contains(sp) and self.limits["max_ramp_c_per_min"].contains(ramp):
                self._world.set_chamber(sp, ramp)
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
        return self._world.n

    def read_cell_voltages(self, samples=1):
        n = max(1, int(samples))
        acc = np.zeros(self.n_channels)
        for _ in range(n):
            acc += self._world.daq_voltages()
        return acc / n

    def voltage_uncertainty_v(self):
        return float(self._world.daq_uncertainty_v())

    def read_digital(self, line):
        return bool(self._world.digital_level(line))

    def edges(self, since=0.0, line=None):
        return [
            DigitalEdge(e.t, e.line, e.level)
            for e in self._world.daq_edges
            if e.t >= since and (line is None or e.line == line)
        ]

    def read_thermocouples(self):
        return dict(self._world.thermocouples())
