"""Instrument and DUT-link protocols: what each family of instrument can do.

A test plan talks to these interfaces only. They are abstract base classes in labgrid's
style (a driver inherits ``Driver`` and the protocol; ``target.get_driver(CellEmulator)``
finds it). Every method is abstract: a driver that lacks one cannot be constructed
(``TypeError`` naming the missing methods), rather than silently returning None when a plan
calls it. An instrument that truly cannot do something implements the method and raises
:class:`~rig.errors.RigFault` saying so. Units are SI at every boundary (V, A, °C, s);
per-channel values are numpy arrays indexed by cell, 0-based (cell 1 is index 0). A driver
for the virtual bench and a driver for real hardware implement the same protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import abc
from typing import Callable, Sequence

import numpy as np


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class DigitalEdge:
    """A level change on a digital input, timestamped by the instrument.

    ``line`` is the input's name (``"charge_enable"``, ``"discharge_enable"``,
    ``"hvc_out"``); ``level`` is the new level; ``t`` is rig time in s.
    """

    t: float
    line: str
    level: bool


@dataclass(frozen=True)
class DutIdentity:
    """What the board says it is, read over the DUT link."""

    serial: str
    hw_revision: str
    fw_version: str


@dataclass(frozen=True)
class BmsFlags:
    """Protection flags as the board reports them."""

    hvc: bool = False
    lvc: bool = False
    ot: bool = False
    ut: bool = False


@dataclass(frozen=True)
class BmsSample:
    """One snapshot of the board's own view, timestamped in rig time (s).

    - ``cell_v``: reported cell voltages, V, shape (n_cells,)
    - ``temps_c``: reported temperatures, °C (cell NTCs then the bleed-resistor NTC),
      as the signal/register map orders them
    - ``balancing``: balancing mask, bool, shape (n_cells,)
    - ``charge_fet`` / ``discharge_fet``: True when the FET is closed (conducting)
    - ``cells_valid``: bool per cell, False where the board reported no valid reading
      (flagged invalid, a "not measured" value, or its page went stale); such a cell's
      ``cell_v`` is NaN, never 0 V. Default: every cell valid.
    """

    t: float
    cell_v: np.ndarray
    temps_c: np.ndarray
    balancing: np.ndarray
    flags: BmsFlags
    charge_fet: bool
    discharge_fet: bool
    cells_valid: np.ndarray | None = None

    def __post_init__(self):
        if self.cells_valid is None:
            object.__setattr__(self, "cells_valid", np.ones(len(self.cell_v), bool))

    @property
    def delta_v(self) -> float:
        """Max minus min reported cell voltage over the valid cells, V (NaN if none is valid)."""
        v = np.asarray(self.cell_v, float)[np.asarray(self.cells_valid, bool)]
        return float(np.max(v) - np.min(v)) if len(v) else float("nan")


@dataclass
class InstrumentInfo:
    """Identity of an instrument for the report (ISO/IEC 17025 7.8.2: equipment used)."""

    role: str
    model: str
    serial: str
    calibration_due: str | None = None  # ISO date, None = not calibrated / not applicable
    notes: str = ""
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- protocols


class CellEmulator(abc.ABC):
    """N programmable cell channels in series (the board's cell inputs).

    Source mode: each channel holds its set voltage. Cell-model mode: the channel behaves
    like a cell (OCV + RC) and its voltage follows the charge that flows, on the rig clock.
    Channel currents are positive when the channel sources current into the board
    (a bleeding board draws positive current from that channel).
    """

    n_channels: int

    @abc.abstractmethod
    def info(self) -> InstrumentInfo: ...

    @abc.abstractmethod
    def set_voltages(self, volts: np.ndarray | Sequence[float] | float) -> None:
        """Set every channel (an array of n_channels, or one value for all), V."""

    @abc.abstractmethod
    def set_voltage(self, channel: int, volts: float) -> None:
        """Set one channel (0-based), V."""

    @abc.abstractmethod
    def enable(self, on: bool = True) -> None:
        """Switch the outputs on or off."""

    @abc.abstractmethod
    def read_voltages(self) -> np.ndarray:
        """Read back terminal voltages, V, shape (n_channels,)."""

    @abc.abstractmethod
    def read_currents(self, aperture_s: float | None = None) -> np.ndarray:
        """Mean channel current over the last ``aperture_s`` s (instrument default if None), A."""

    @abc.abstractmethod
    def set_current_limits(self, source_a: float, sink_a: float) -> None:
        """Source and sink current limits per channel, A (both positive numbers)."""

    @abc.abstractmethod
    def set_noise(self, v_rms: float) -> None:
        """Add white noise of ``v_rms`` V RMS to every channel (0 to switch off)."""

    @abc.abstractmethod
    def set_cell_model(
        self,
        chemistry: str,
        capacity_ah: np.ndarray | float,
        soc: np.ndarray | float,
        temperature_c: float | None = None,
        capacity_scale: float = 1.0,
    ) -> None:
        """Enter cell-model mode: each channel behaves as a cell with that capacity and SOC (0..1).

        ``capacity_scale`` (0 < s <= 1): model the cells of ``capacity_ah`` (their resistances,
        thermal mass and self-discharge current) with a charge capacity of ``capacity_ah * s``:
        the same currents move the SOC 1/s times faster, the same SOC trajectory in s times
        the rig time (rig.cellmodel.scaled_cell_params)."""

    @abc.abstractmethod
    def set_source_mode(self) -> None:
        """Leave cell-model mode; the channels hold their last voltages."""

    @abc.abstractmethod
    def read_soc(self) -> np.ndarray:
        """Cell-model mode only: each modelled cell's SOC (0..1)."""

    @abc.abstractmethod
    def safe_state(self) -> None:
        """Outputs to the rig's safe voltage, currents limited; never raises."""


class PackCurrentSource(abc.ABC):
    """The charger/load through the whole string: + charge, − discharge, A.

    The board's FETs gate it: when the board opens the charge FET, charge current stops.
    ``voltage_limit_v`` is the CV limit of a charger (the string voltage it will not exceed).
    """

    @abc.abstractmethod
    def info(self) -> InstrumentInfo: ...

    @abc.abstractmethod
    def set_current(self, amps: float, voltage_limit_v: float | None = None) -> None:
        """Request ``amps`` (+ charge, − discharge), with an optional CV limit in V."""

    @abc.abstractmethod
    def read_current(self) -> float:
        """The current actually flowing, A (0 when the board's FET has opened the path)."""

    @abc.abstractmethod
    def read_voltage(self) -> float:
        """String voltage at the source terminals, V."""

    @abc.abstractmethod
    def off(self) -> None:
        """Zero current."""

    @abc.abstractmethod
    def safe_state(self) -> None:
        """Zero current; never raises."""


class ThermalChamber(abc.ABC):
    """A climatic chamber around the board (and, on the bench, the cells)."""

    @abc.abstractmethod
    def info(self) -> InstrumentInfo: ...

    @abc.abstractmethod
    def set_temperature(self, celsius: float, ramp_c_per_min: float | None = None) -> None:
        """New set point, °C, approached at ``ramp_c_per_min`` (chamber default if None)."""

    @abc.abstractmethod
    def read_temperature(self) -> float:
        """Process value, °C."""

    @abc.abstractmethod
    def wait_stable(self, tolerance_c: float = 0.5, dwell_s: float = 60.0, timeout_s: float = 7200.0) -> float:
        """Wait on the rig clock until |PV − SP| ≤ tolerance for ``dwell_s``; return s waited.

        Raises :class:`~rig.errors.RigFault` when ``timeout_s`` passes first.
        """

    @abc.abstractmethod
    def safe_state(self) -> None:
        """Set point to ambient; never raises."""


class ReferenceDAQ(abc.ABC):
    """The traceable reference: cell voltages, timestamped digital inputs, thermocouples."""

    n_channels: int

    @abc.abstractmethod
    def info(self) -> InstrumentInfo: ...

    @abc.abstractmethod
    def read_cell_voltages(self, samples: int = 1) -> np.ndarray:
        """Mean of ``samples`` readings per channel, V, shape (n_channels,)."""

    @abc.abstractmethod
    def voltage_uncertainty_v(self) -> float:
        """Expanded uncertainty (k=2) of one averaged cell-voltage reading, V (from calibration)."""

    @abc.abstractmethod
    def read_digital(self, line: str) -> bool:
        """Present level of a digital input."""

    @abc.abstractmethod
    def edges(self, since: float = 0.0, line: str | None = None) -> list[DigitalEdge]:
        """Edges recorded at or after rig time ``since`` (all lines, or one)."""

    @abc.abstractmethod
    def read_thermocouples(self) -> dict[str, float]:
        """Thermocouple temperatures by name (e.g. ``"bleed_resistors"``), °C."""


class BmsLink(abc.ABC):
    """The DUT's own view, over CAN or UART. Every sample is timestamped in rig time."""

    name: str
    n_cells: int

    @abc.abstractmethod
    def identity(self) -> DutIdentity:
        """Serial, hardware revision and firmware version as read from the board."""

    @abc.abstractmethod
    def latest(self) -> BmsSample:
        """The newest complete sample (reads the bus / polls the board as needed).

        Raises :class:`~rig.errors.LinkFault` when nothing arrives within the link timeout.
        """

    @abc.abstractmethod
    def history(self, since: float = 0.0, until: float | None = None, *,
                require_coverage: bool = True) -> list[BmsSample]:
        """Samples stamped in [``since``, ``until`` (default now)], oldest first.

        Evidence or no verdict: with ``require_coverage`` (the default, and what every plan
        judgement uses) the samples must cover the window — no stretch longer than the
        link timeout (s) at its start, between two samples or at its end — else
        :class:`~rig.errors.LinkFault` (exit 3, the board was not judged).
        """

    @abc.abstractmethod
    def wait_for(
        self, condition: Callable[[BmsSample], bool], timeout: float, what: str, poll: float | None = None
    ) -> BmsSample:
        """Wait on the rig clock until a new sample satisfies ``condition``; return it.

        Raises :class:`~rig.errors.WaitTimeout` naming ``what``.
        """

    def command(self, name: str, **values) -> None:
        """Send the board command ``name`` its link map declares, with parameter ``values``
        (e.g. a set-point in the signal's unit). Links that declare no commands refuse."""
        from .errors import CommandError

        raise CommandError(f"{getattr(self, 'name', type(self).__name__)}: this link declares no command {name!r}")

    @abc.abstractmethod
    def close(self) -> None: ...
