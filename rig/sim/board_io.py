"""The board's side of the bench: what it measures and what it drives.

Measures: the AFE conversion of every cell input (with the emulator's injected noise),
the NTCs, the shunt, the stack voltage. Drives: the bleed switches, the charge and
discharge FETs (which gate the charger) and its digital outputs; every change of a
digital line is an edge with its exact rig time, seen by the reference DAQ. The board
model reaches all this only through :class:`~rig.sim.harness.BoardHarness`. Units: V, A,
°C, s.
"""

from __future__ import annotations

import numpy as np

from ..protocols import DigitalEdge

LINES = ("charge_enable", "discharge_enable", "hvc_out")
"""The board's digital lines (the FET enables follow :meth:`BoardIO.set_fets`)."""


class BoardIO:
    """The board's inputs and outputs on the bench (see the module docstring).

    ``publish`` receives each telemetry snapshot the board publishes (the DUT link's side).
    """

    def __init__(self, clock, emulator, bleed, power, circuit, thermal, afe, publish):
        self.clock = clock
        self.emulator = emulator
        self.bleed = bleed
        self.power = power
        self.circuit = circuit
        self.thermal = thermal
        self.afe = afe
        self.n = emulator.n
        self._publish = publish
        self.lines = {"charge_enable": True, "discharge_enable": True, "hvc_out": False}
        """Level of each digital line now."""
        self.edges: list[DigitalEdge] = []
        """Every change of a digital line, in order."""
        self.commands = dict
        """``() -> {name: {parameter: value}}``: the board commands the host sent over the
        link (set by the world to :meth:`rig.sim.ports.DutPorts.commands`)."""

    # ------------------------------------------------------------------ measured
    def now(self) -> float:
        """Rig time, s."""
        return self.clock.t

    def convert_cells(self) -> np.ndarray:
        """AFE conversion of every channel now, V."""
        self.circuit.refresh()
        em = self.emulator
        extra = em.noise() if em.noise_rms > 0.0 else None
        return self.afe.convert(self.clock.t, self.thermal.t_board, extra)

    def ntc_readings(self) -> dict:
        """NTC readings, °C (see :meth:`~rig.sim.bench_thermal.BenchThermal.ntc_readings`)."""
        return self.thermal.ntc_readings()

    def shunt_current(self) -> float:
        """String current through the shunt, A (+ charge)."""
        return self.power.i_pack

    def external_request_a(self) -> float:
        """The pack source's set current (charger +, load −), A; 0 when it is off."""
        return float(self.power.i_set)

    def stack_voltage(self) -> float:
        """Sum of the terminal voltages, V."""
        self.circuit.refresh()
        return float(self.circuit.v.sum())

    # ------------------------------------------------------------------ driven
    def set_bleed(self, mask) -> None:
        """Bleed switch commands, bool array (n,); hardware defects may override a switch."""
        bleed = self.bleed
        bleed.command(mask)
        self.circuit.refresh_then(bleed.apply)

    def set_fets(self, charge: bool, discharge: bool) -> None:
        """Charge and discharge FETs (True = closed); their enable lines follow."""
        changed = self.power.set_fets(charge, discharge)
        self.set_line("charge_enable", charge)
        self.set_line("discharge_enable", discharge)
        if changed:
            self.circuit.solve()

    def set_line(self, line: str, level: bool) -> None:
        """A digital output of the board; a change is an edge at the present time."""
        if self.lines.get(line) != level:
            self.lines[line] = level
            self.edges.append(DigitalEdge(self.clock.t, line, level))

    def level(self, line: str) -> bool:
        """Level of a digital line now; KeyError naming the lines for an unknown one."""
        if line not in self.lines:
            raise KeyError(f"unknown digital line {line!r}; lines: {', '.join(self.lines)}")
        return self.lines[line]

    def publish(self, telemetry) -> None:
        """Stamp a telemetry snapshot with the present time and hand it to the link."""
        telemetry.t = self.clock.t
        self._publish(telemetry)
