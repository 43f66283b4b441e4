"""The virtual bench's world: pack + cell emulator + charger + chamber + board + DAQ.

The bench drivers (:mod:`rig.drivers.sim`) call :class:`World`; the board model sees it
only through :class:`~rig.sim.harness.BoardHarness`. Units: V, A, °C, s; arrays 0-based by
cell. The world composes parts with one job each, public as attributes:

- ``emulator`` (:mod:`rig.sim.emulator`): the channels: source mode, cell-model mode, set
  points, injected noise, the protection trip;
- ``bleed`` (:mod:`rig.sim.bleed`): the bleed hardware as built (defects included) and
  the channel currents;
- ``power`` (:mod:`rig.sim.power`): the charger/load through the string, gated by the FETs;
- ``circuit`` (:mod:`rig.sim.circuit`): the electrical solution: terminal voltages,
  currents, the AFE's inputs;
- ``thermal`` (:mod:`rig.sim.bench_thermal`): chamber, board, hot spot and cell temperatures;
- ``history`` (:mod:`rig.sim.charge_history`): cumulative channel charge, bleed totals;
- ``board_io`` (:mod:`rig.sim.board_io`): what the board measures and drives (the harness's side);
- ``daq`` (:mod:`rig.sim.daq`): the reference DAQ's readings;
- ``stepping`` (:mod:`rig.sim.stepping`): the event loop and the fast-forward;
- ``afe`` (:mod:`rig.sim.afe`): the board's AFE; ``board`` and ``harness``: the board model;
- ``rngs``: the random streams by name; ``clock``: the shared rig time.

Determinism: one seed -> ``np.random.SeedSequence(seed).spawn`` into independent streams
(AFE parameters, AFE noise, emulator noise, DAQ noise, chamber, cell spread, board), so a
defect that changes one part does not reshuffle unrelated noise. Same seed, same result,
bit for bit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..chemistry import chemistry as _chemistry
from .afe import Afe
from .bench_thermal import BenchThermal
from .bleed import QUIESCENT_A, BleedHardware
from .board_io import BoardIO
from .charge_history import ChargeHistory
from .circuit import Circuit
from .daq import ReferenceDaq
from .defects import Defects, parse_defects
from .emulator import CellModelSetup, ChannelEmulator, EmulatorTrip, build_cell_model
from .boards import load_board
from .harness import BoardHarness, Telemetry
from .ports import DutPorts
from .power import PowerPath
from .stepping import SimTime, Stepper

__all__ = ["World", "EmulatorTrip", "CellModelSetup", "QUIESCENT_A"]

STREAMS = ("afe_params", "afe_noise", "emulator", "daq", "chamber", "cells", "board", "spare")
"""The world's random streams, in spawn order (``World.rngs``)."""


class World:
    """A deterministic virtual bench around one board. See the module docstring."""

    def __init__(self, profile, seed: int = 0, defects=None, board_model: str | None = None,
                 ambient_c: float = 25.0, fine_step_s: float | None = None,
                 max_step_s: float | None = None):
        if isinstance(profile, (str, Path)):
            from ..profile import load_profile
            profile = load_profile(profile)
        self.profile = profile
        self.n = n = profile.cells
        self.seed = int(seed)
        self.defects: Defects = parse_defects(defects, n_cells=n)
        seqs = np.random.SeedSequence(self.seed).spawn(len(STREAMS))
        self.rngs = {name: np.random.default_rng(s) for name, s in zip(STREAMS, seqs)}
        """The random streams by name (``STREAMS``)."""
        self.clock = SimTime(0.0)
        self.fine_step_s = fine_step_s
        self.ambient_c = float(ambient_c)

        # ---- the parts (each one job; see the module docstring) ------------------------
        rngs = self.rngs
        self.emulator = em = ChannelEmulator(n, _chemistry(profile.chemistry).nominal_v, rngs["emulator"])
        self.bleed = bleed = BleedHardware(n, profile.balancing, self.defects)
        self.power = power = PowerPath(em)
        self.afe = Afe(n, rngs["afe_params"], rngs["afe_noise"], self.defects)
        self.circuit = circuit = Circuit(self.clock, em, bleed, power, self.afe)
        self.thermal = thermal = BenchThermal(n, self.ambient_c, rngs["chamber"], profile.balancing, em, power, bleed)
        self.chamber = thermal.chamber
        self.history = ChargeHistory(n)
        self.board_io = BoardIO(self.clock, em, bleed, power, circuit, thermal, self.afe, self._publish)
        self.daq_edges = self.board_io.edges
        """Every edge of the board's digital lines (charge_enable, discharge_enable, hvc_out)."""
        self.daq = ReferenceDaq(rngs["daq"], circuit, thermal, self.board_io)
        self.stepping = Stepper(self.clock, profile.sampling, em, bleed, power, circuit, thermal, self.history,
                                self.afe, fine_step_s=fine_step_s, max_step_s=max_step_s)
        self.stats = self.stepping.stats
        """Counters: events (fine steps), wakes, fast-forward windows / seconds / steps, and
        the largest share of a window's drift limit any cell used (≤ 1: the promise held)."""

        # ---- links ----------------------------------------------------------------------
        self.telemetry: Telemetry | None = None
        self.telemetry_count = 0
        self.dut_ports = DutPorts(profile, f"bmsrig-sim-{id(self):x}-{self.seed}", self.defects,
                                  bleeding=lambda: bool(self.bleed.cmd.any()))
        self.board_io.commands = self.dut_ports.commands

        # ---- the present state ------------------------------------------------------------
        circuit.solve()
        self.afe.reset(0.0, circuit.afe_input())

        # ---- the board --------------------------------------------------------------------
        spec = board_model or profile.bench.model
        source = "--board-model" if board_model else (profile.source or "<profile>")
        cls = load_board(spec, source=source, key="--board-model" if board_model else "bench.model")
        self.harness = BoardHarness(self.board_io, profile, rngs["board"])
        self.board = cls(self.harness, profile, self.defects)
        self.stepping.attach(self.board)
        self.stepping.touch()

    # ================================================================== time
    @property
    def t(self) -> float:
        """Rig time, s."""
        return self.clock.t

    @t.setter
    def t(self, value: float) -> None:
        self.clock.t = value

    def advance(self, dt: float) -> None:
        """Let ``dt`` s of rig time pass (exact piecewise integration, event to event; see
        :mod:`rig.sim.stepping`). Raises :class:`EmulatorTrip` when the emulator's protection tripped."""
        self.stepping.advance(dt)

    def _changed(self) -> None:
        """An input changed: solve the network again; the board resamples before any fast-forward."""
        self.circuit.solve()
        self.stepping.touch()

    # ================================================================== emulator
    def set_emulator_voltages(self, v) -> None:
        """Source-mode set points, V (an array of n, or one value for all)."""
        self.emulator.set_setpoints(v)
        if self.emulator.mode == "source":
            self.circuit.solve()
        self.stepping.touch()

    def set_emulator_enabled(self, on: bool) -> None:
        self.emulator.enabled = bool(on)
        self._changed()

    def set_emulator_noise(self, v_rms: float) -> None:
        """White noise of ``v_rms`` V RMS on every channel, as seen by each AFE conversion."""
        self.emulator.set_noise(v_rms)
        self.stepping.touch()

    def set_cell_model(self, chemistry: str, capacity_ah, soc, temperature_c: float | None = None,
                       params=None) -> None:
        """Cell-model mode: each channel is a cell (PackModel) with that capacity and SOC."""
        self.install_cell_model(self.prepare_cell_model(chemistry, capacity_ah, soc, temperature_c, params))

    def prepare_cell_model(self, chemistry: str, capacity_ah, soc, temperature_c: float | None = None,
                           params=None) -> CellModelSetup:
        """Build a cell model without switching to it (nothing in the world changes).

        The returned set-up carries the terminal voltages ``v`` (V) the channels would have
        on switching, for a caller to check against its limits before
        :meth:`install_cell_model`. The cell-spread stream is drawn from a copy, so a set-up
        that is never installed leaves the world's random streams untouched.
        """
        temp = self.chamber.air_c if temperature_c is None else float(temperature_c)
        pack, thermal, rng = build_cell_model(chemistry, self.n, capacity_ah, soc, self.rngs["cells"], temp,
                                              uniform_temperature=temperature_c is not None, params=params)
        self.circuit.update_currents()
        i_board = self.bleed.i_ch.copy()
        i_pack = self.power.current(0.0, i_board, pack=pack)
        return CellModelSetup(pack, thermal, rng, pack.terminal_voltage(i_pack - i_board))

    def install_cell_model(self, setup: CellModelSetup, ovp: tuple[float, float] | None = None) -> None:
        """Switch to the prepared cell model. ``ovp``: the emulator's protection window
        (low, high), V: terminals outside it trip the outputs off (:class:`EmulatorTrip`)."""
        self.rngs["cells"] = setup.rng
        self.emulator.install(setup, ovp)
        self._changed()

    def set_source_mode(self) -> None:
        """Leave cell-model mode; the channels hold their last terminal voltages."""
        self.emulator.leave_model(self.circuit.v)
        self._changed()

    def emulator_setpoints(self) -> np.ndarray:
        """Source-mode set points, V."""
        return self.emulator.v_set.copy()

    @property
    def mode(self) -> str:
        """``source`` or ``model`` (cell-model mode)."""
        return self.emulator.mode

    @property
    def pack(self):
        """The PackModel in cell-model mode (None in source mode)."""
        return self.emulator.pack

    def terminal_voltages(self) -> np.ndarray:
        """V at the emulator terminals now (no noise)."""
        self.circuit.refresh()
        return self.circuit.v.copy()

    def channel_currents(self, aperture_s: float = 0.0) -> np.ndarray:
        """Mean channel current over [t − aperture, t], A (positive: the channel sources it)."""
        return self.history.mean_current(self.clock.t, aperture_s, self.bleed.i_ch)

    def soc(self) -> np.ndarray:
        """State of charge per cell (cell-model mode), 0..1."""
        if self.emulator.pack is None:
            raise RuntimeError("soc(): the emulator is in source mode (no cell model)")
        return self.emulator.pack.soc.copy()

    @property
    def bleed_on_s(self) -> np.ndarray:
        """Cumulative time each bleed switch conducted, s (fast-forward counts duty × time)."""
        return self.history.bleed_on_s

    @property
    def bleed_charge_c(self) -> np.ndarray:
        """Cumulative charge bled per channel, C (A·s)."""
        return self.history.bleed_charge_c

    # ================================================================== charger
    def set_charger(self, current_a: float, voltage_limit_v: float | None = None) -> None:
        """Request ``current_a`` (+ charge, − discharge) with an optional CV limit, V."""
        self.power.set_request(current_a, voltage_limit_v)
        self._changed()

    def pack_current(self) -> float:
        """Current actually flowing through the string, A (0 when a FET blocks it)."""
        return self.power.i_pack

    def pack_voltage(self) -> float:
        """String voltage at the charger terminals, V."""
        return self.board_io.stack_voltage()

    @property
    def charge_fet(self) -> bool:
        """The board's charge FET, True = closed."""
        return self.power.charge_fet

    @property
    def discharge_fet(self) -> bool:
        """The board's discharge FET, True = closed."""
        return self.power.discharge_fet

    def bleed_conducting(self) -> np.ndarray:
        """Which bleed switches conduct now (after hardware defects)."""
        return self.bleed.conduct.copy()

    # ================================================================== chamber, temperatures
    def set_chamber(self, setpoint_c: float, ramp_c_per_min: float | None = None) -> None:
        """Chamber set point, °C, reached at ``ramp_c_per_min`` (°C/min; None: the fastest)."""
        self.thermal.flush()
        self.chamber.set_point(setpoint_c, ramp_c_per_min)
        self.stepping.touch()

    def chamber_setpoint(self) -> float:
        """The chamber's target set point, °C (where a ramp ends)."""
        return float(self.chamber.target_c)

    def chamber_temperature(self) -> float:
        """Process value (air, as the chamber's sensor reads it), °C."""
        self.thermal.flush()
        return float(self.chamber.read_pv())

    def board_temperature(self) -> float:
        """Board temperature, °C."""
        self.thermal.flush()
        return self.thermal.t_board

    def hot_spot_temperature(self) -> float:
        """Bleed-resistor hot spot, °C."""
        self.thermal.flush()
        return self.thermal.t_hot_spot

    def cell_temperatures(self) -> np.ndarray:
        """Cell temperatures, °C."""
        return self.thermal.cell_temperatures()

    # ================================================================== DAQ
    def daq_voltages(self) -> np.ndarray:
        """Reference reading of the terminal voltages (DAQ noise ~50 µV RMS), V."""
        return self.daq.voltages()

    def daq_uncertainty_v(self) -> float:
        """Expanded uncertainty (k=2) of one averaged DAQ cell-voltage reading, V."""
        return self.daq.uncertainty_v()

    def digital_level(self, line: str) -> bool:
        """A digital line's level now (KeyError for an unknown line)."""
        return self.daq.level(line)

    def thermocouples(self) -> dict:
        """Thermocouples: ``bleed_resistors`` (hot spot), ``cells_mid``, ``ambient``, °C."""
        return self.daq.thermocouples()

    # ================================================================== links
    def close(self) -> None:
        self.dut_ports.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _publish(self, tel: Telemetry) -> None:
        self.telemetry = tel
        self.telemetry_count += 1
        self.dut_ports.publish(tel, tel.t)
