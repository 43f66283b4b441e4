"""The board harness: the only door between a board model and the simulated world.

A board model is a class loaded by ``module:Class`` (profile key ``bench.model`` or the
``--board-model`` option)::

    class MyBoard:
        def __init__(self, harness: BoardHarness, profile: BoardProfile, defects: Defects): ...
        def wake(self, now: float) -> float:       # run firmware; return the next wake time (> now)
        def fast_forward(self, until: float):       # optional; None = not quiet now
            return t_resume, duty_per_channel       # duty 0..1 of the bleed over the window
            # or (t_resume, duty_per_channel, drift_limit_v)

A fast-forward is the board's promise that it would do nothing but bleed at that duty
until ``t_resume``, as long as no cell moves more than the drift limit. The world keeps
its side: it ends the window early (and wakes the board) before any terminal voltage moves
further than the limit from its value at the start (``harness.ff_drift_limit_v`` unless
the board names its own, at most ``harness.ff_drift_cap_v``), or the board or air
temperature more than ``harness.ff_drift_limit_c``. A board that names a limit smaller
than its distance to every level that would change a decision (a protection threshold
less its noise, a balancing threshold) cannot miss a trip or a decision inside a window.

Everything a board may touch is on :class:`BoardHarness`: the AFE conversion of the cell
inputs, the NTCs, the shunt, the bleed switches, the FETs, digital outputs and the
telemetry it publishes (the world encodes it as CAN frames or Modbus registers). Units:
V, A, °C, s; arrays indexed 0-based by cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from .stepping import FF_DT_MAX_C, FF_DV_CAP_V, FF_DV_MAX_V


@dataclass
class Telemetry:
    """One snapshot of what the board reports over its link.

    - ``cell_v``: reported cell voltages, V, shape (n,)
    - ``temps_c``: cell NTCs then the bleed-resistor NTC, °C, shape (n + 1,)
    - ``balancing``: the balancing mask (cells selected by the firmware), bool, shape (n,)
    - ``hvc lvc ot ut``: protection flags
    - ``charge_fet`` / ``discharge_fet``: True = closed (conducting)
    - ``pack_v`` (V), ``pack_a`` (A, + charge), identity strings, ``state``
      (``rest`` / ``charge`` / ``float`` / ``discharge``)
    - ``t``: rig time the board published it, s (stamped by :meth:`BoardHarness.publish`)
    """

    cell_v: np.ndarray
    temps_c: np.ndarray
    balancing: np.ndarray
    hvc: bool = False
    lvc: bool = False
    ot: bool = False
    ut: bool = False
    charge_fet: bool = True
    discharge_fet: bool = True
    pack_v: float = 0.0
    pack_a: float = 0.0
    serial: str = ""
    hw_revision: str = ""
    fw_version: str = ""
    state: str = "rest"
    t: float = 0.0
    extra: dict = field(default_factory=dict)


class BoardHarness:
    """What a board model may touch. Created by the :class:`~rig.sim.world.World` around
    its :class:`~rig.sim.board_io.BoardIO` (the bench's side of every call here)."""

    def __init__(self, io, profile, rng: np.random.Generator):
        self._io = io
        self.n_cells: int = io.n
        self.profile = profile
        """The board's :class:`~rig.profile.BoardProfile`."""
        self.rng: np.random.Generator = rng
        """The board's own seeded generator (independent of the world's noise streams)."""
        self.ff_drift_limit_v: float = FF_DV_MAX_V
        """Default largest terminal-voltage move inside one fast-forward window, V (the
        world ends the window before any channel moves further)."""
        self.ff_drift_cap_v: float = FF_DV_CAP_V
        """Largest drift limit a board may name for one window, V."""
        self.ff_drift_limit_c: float = FF_DT_MAX_C
        """Largest board or air temperature move inside one fast-forward window, °C."""
        # the calls a board makes at every conversion go straight to the bench's side: the
        # same methods as documented below, without a forwarding call each (unless a
        # subclass overrides one)
        for name, target in (("now", io.now), ("read_cell_voltages", io.convert_cells),
                             ("read_temperatures", io.ntc_readings), ("read_pack_current", io.shunt_current),
                             ("external_request_a", io.external_request_a), ("set_bleed", io.set_bleed),
                             ("publish", io.publish)):
            if getattr(type(self), name) is getattr(BoardHarness, name):
                setattr(self, name, target)

    def now(self) -> float:
        """Rig time, s."""
        return self._io.now()

    def read_cell_voltages(self) -> np.ndarray:
        """AFE conversion of every channel now, V (offset, gain, noise, tempco, RC filter,
        quantisation, IR drop on a channel whose bleed switch is on)."""
        return self._io.convert_cells()

    def read_temperatures(self) -> dict:
        """NTC readings, °C: ``{"cells": ndarray (one per cell), "board": float,
        "bleed_resistor": float}``."""
        return self._io.ntc_readings()

    def read_pack_current(self) -> float:
        """Shunt current, A (+ charge)."""
        return self._io.shunt_current()

    def read_pack_voltage(self) -> float:
        """Stack voltage as the board measures it (sum of the conversions' truth), V."""
        return self._io.stack_voltage()

    def external_request_a(self) -> float:
        """What the charger (+) or load (−) connected to the pack terminals asks for, A; 0
        when none is connected (a board's charger / load detect). Added for latched cut-offs."""
        return self._io.external_request_a()

    def set_bleed(self, mask) -> None:
        """Bleed switch commands, bool array (n,). Hardware defects may override a switch."""
        self._io.set_bleed(mask)

    def set_fets(self, charge: bool, discharge: bool) -> None:
        """Charge and discharge FETs (True = closed, conducting)."""
        self._io.set_fets(bool(charge), bool(discharge))

    def set_output(self, line: str, level: bool) -> None:
        """A digital output of the board (e.g. ``"hvc_out"``), seen by the reference DAQ."""
        self._io.set_line(line, bool(level))

    def commands(self) -> dict:
        """The board commands the host sent over the link so far, the last of each name:
        ``{name: {parameter or signal: value}}`` (empty when none arrived or the link kind
        carries none). The name and values are those of the link map's ``commands:``."""
        return self._io.commands()

    def publish(self, telemetry: Telemetry) -> None:
        """Hand a telemetry snapshot to the link (stamped with the present rig time)."""
        self._io.publish(telemetry)


from .boards import load_board as load_board_model  # noqa: E402  (the registry: rig.sim.boards)
