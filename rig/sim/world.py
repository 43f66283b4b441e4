"""The virtual bench's world: pack + cell emulator + charger + chamber + board + DAQ.

The bench drivers (:mod:`rig.drivers.sim`) call this; the board model sees it only through
:class:`~rig.sim.harness.BoardHarness`. Units: V, A, °C, s; arrays 0-based by cell.

Stepping (:meth:`World.advance`) is an event loop. Events are the board's wake-ups (it
returns its next wake time) and a maximum step; everything a caller changes between two
``advance`` calls takes effect at the present time. Between events every input is
constant, so the cells integrate exactly (exponential RC update, linear coulomb count).

Fast-forward: when the board says it is quiet (``board.fast_forward(until)`` returns
``(t_resume, duty)``), the world integrates with the average bleed current ``duty ×
I_bleed`` up to ``t_resume`` in as few steps as physics allows and then wakes the board.
The world ends a fast-forward early when the truth drifts away from what the board last
sampled (any terminal voltage by more than ``FF_DV_END`` × the window's drift limit, the
board or air temperature by more than ``FF_DT_MAX_C``): the board's "quiet" was a
statement about what it saw. Steps are sized from the predicted voltage rate so that no
single step carries a cell past the drift limit: ``FF_DV_MAX_V``, or the limit the board
names for the window (``(t_resume, duty, drift_limit_v)``, at most ``FF_DV_CAP_V``) from
its distance to every level that would change one of its decisions. No
fast-forward for ``(filter_samples + 2)`` sampling periods after any input change (the
board has not seen it yet), and the last ``2 × sampling.period_s`` of every ``advance``
always run fine, so an instrument read right after a sleep sees the real waveform.
``fine_step_s`` switches fast-forward off and forces a fixed maximum step (the reference run).

Determinism: one seed -> ``np.random.SeedSequence(seed).spawn`` into independent streams
(AFE parameters, AFE noise, emulator noise, DAQ noise, chamber, cell spread, board), so a
defect that changes one part does not reshuffle unrelated noise. Same seed, same result,
bit for bit.

Physics honesty notes:

- Bleed current per channel = V_terminal / R_eff while the switch conducts (R_eff = the
  profile's resistor, or the ``bleed_current`` defect's). The channel current an emulator
  measures is that plus the board's quiescent draw (``QUIESCENT_A`` per channel).
- Cell-model mode: cell current = pack current − bleed − quiescent.
- Charger: CC with a CV limit, a simple regulator evaluated at each step start, consistent
  over the step: ``I = clip((V_lim − Σ(OCV + v_rc·a) + Σ R·i_board) / Σ(R0 + R1(1−a) +
  dOCV/dSOC·h/C), 0, I_set)`` with ``a = exp(−h/τ)`` (it reduces to ``(V_lim − ΣOCV −
  Σv_rc)/ΣR0`` for a short step and stays stable for a long one). A negative set current
  is a load; its voltage limit is a floor. The board's FETs gate it.
- Thermal: chamber air (ChamberModel) -> board (lag ``BOARD_TAU_S``); bleed-resistor hot
  spot = board + Σ bleed power × ``resistor_thermal_c_per_w`` through a lag of
  ``resistor_thermal_tau_s``; cells = air + position gradient + self-heating (model mode).
  Thermal nodes update in lumps of at most ``THERMAL_LUMP_S`` with the lump's mean power
  (all time constants are ≥ 60 s).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import ConfigError
from ..protocols import DigitalEdge
from .afe import Afe
from .defects import Defects, parse_defects
from .harness import BoardHarness, Telemetry, load_board_model
from .ports import DutPorts
from .thermal import ChamberModel, CellThermal, cell_position_gradient

QUIESCENT_A = 1e-3
"""Board supply current drawn from every channel, A."""
BOARD_TAU_S = 300.0
"""Board (AFE, NTC) temperature lag behind the chamber air, s."""
THERMAL_LUMP_S = 0.5
CHARGER_REG_S = 1.0
FF_DV_MAX_V = 5e-3
"""Drift promise of a fast-forward: no terminal voltage moves further than this from its
value at the window's start, V. A board may name its own limit per window (the third
element of ``fast_forward``'s answer), up to ``FF_DV_CAP_V``."""
FF_DV_CAP_V = 20e-3
"""Largest per-window drift limit the world accepts from a board, V."""
FF_STEP_SHARE = 0.25
"""A fast-forward step may use at most this share of the remaining drift budget at the
predicted rate (:meth:`PackModel.voltage_rate`): headroom for a steeper OCV segment."""
FF_DV_END = 0.8
"""A window ends once any cell has used this share of the drift budget."""
FF_DT_MAX_C = 1.0
DAQ_NOISE_RMS_V = 50e-6
DAQ_UNCERTAINTY_V = 0.5e-3
"""Expanded uncertainty (k=2) of one averaged DAQ cell-voltage reading, V."""
THERMOCOUPLE_NOISE_C = 0.05
HISTORY_ROWS = 32768
HISTORY_KEEP_S = 900.0
EPS_T = 1e-9
NOMINAL_V = {"lfp": 3.30, "nmc": 3.70}
LINES = ("charge_enable", "discharge_enable", "hvc_out")

class EmulatorTrip(RuntimeError):
    """The bench emulator's protection tripped (raised by :meth:`World.advance`)."""


class CellModelSetup(NamedTuple):
    """A prepared cell model (:meth:`World.prepare_cell_model`); ``v``: terminal voltages, V."""

    pack: object
    thermal: object
    rng: object
    v: np.ndarray


_STREAMS = ("afe_params", "afe_noise", "emulator", "daq", "chamber", "cells", "board", "spare")


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
        seqs = np.random.SeedSequence(self.seed).spawn(len(_STREAMS))
        self._rngs = {name: np.random.default_rng(s) for name, s in zip(_STREAMS, seqs)}
        self.t = 0.0
        self.fine_step_s = fine_step_s
        if fine_step_s is not None and fine_step_s <= 0:
            raise ValueError("fine_step_s must be > 0")
        period = profile.sampling.period_s
        self.max_step_s = float(max_step_s) if max_step_s else (fine_step_s or max(period, 1.0))
        self.ff_enabled = fine_step_s is None
        self.ambient_c = float(ambient_c)
        bal = profile.balancing

        # ---- emulator (source mode by default, outputs on at the chemistry's nominal) -----
        self._mode = "source"
        self._enabled = True
        self._v_set = np.full(n, NOMINAL_V.get(profile.chemistry, 3.3))
        self._pack = None
        self._noise_rms = 0.0
        self._v = self._v_set.copy()  # terminal voltages now
        self._ovp = None  # (low, high) V of the emulator's protection in cell-model mode
        self._ovp_trip: str | None = None  # a trip not yet reported by advance()

        # ---- bleed hardware ------------------------------------------------------------
        r = bal.bleed_resistor_ohm
        d = self.defects.get("bleed_current")
        if d is not None:
            r = bal.min_cell_v / max(d["ma"] * 1e-3, 1e-12) if d["ma"] > 0 else math.inf
        self.bleed_resistor_ohm = r
        self._g = np.full(n, 0.0 if math.isinf(r) else 1.0 / r)  # conductance per channel
        self._stuck = np.zeros(n, bool)
        for d in self.defects.all("bleed_stuck"):
            self._stuck[d.index()] = True
        for d in self.defects.all("bleed_dead"):
            self._g[d.index()] = 0.0
        self._cmd = np.zeros(n, bool)
        self._conduct = self._stuck.copy()
        self._any_conduct = bool(self._conduct.any())
        self._i_bleed = np.zeros(n)
        self._i_ch = np.zeros(n)
        self._iq = QUIESCENT_A

        # ---- charger ------------------------------------------------------------------
        self._chg_i = 0.0
        self._chg_v = None
        self._i_pack = 0.0

        # ---- FETs and digital lines ------------------------------------------------------
        self._fet_c = True
        self._fet_d = True
        self._lines = {"charge_enable": True, "discharge_enable": True, "hvc_out": False}
        self.daq_edges: list[DigitalEdge] = []

        # ---- thermal ------------------------------------------------------------------
        self.chamber = ChamberModel(ambient_c, self._rngs["chamber"])
        self._t_board = self.ambient_c
        self._t_hs = self.ambient_c
        self._gradient = cell_position_gradient(n)
        self._cell_thermal = None  # model mode
        self._lump_dt = 0.0
        self._lump_e = 0.0
        self._hs_k = bal.resistor_thermal_c_per_w
        self._hs_tau = bal.resistor_thermal_tau_s

        # ---- AFE ----------------------------------------------------------------------
        self.afe = Afe(n, self._rngs["afe_params"], self._rngs["afe_noise"], self.defects)

        # ---- channel-current history (cumulative charge, linear between rows) -------------
        self._q = np.zeros(n)
        self._h_t = np.empty(HISTORY_ROWS)
        self._h_q = np.empty((HISTORY_ROWS, n))
        self._h_t[0] = 0.0
        self._h_q[0] = 0.0
        self._h_len = 1
        self.bleed_on_s = np.zeros(n)
        """Cumulative time each bleed switch conducted, s (fast-forward counts duty × time)."""
        self.bleed_charge_c = np.zeros(n)
        """Cumulative charge bled per channel, C (A·s)."""

        # ---- links ----------------------------------------------------------------------
        self.telemetry: Telemetry | None = None
        self.telemetry_count = 0
        self.dut_ports = DutPorts(profile, f"bmsrig-sim-{id(self):x}-{self.seed}", self.defects,
                                  bleeding=lambda: bool(self._cmd.any()))
        self._no_identity = "no_identity" in self.defects  # defect: serial and firmware not reported
        self.stats = {"events": 0, "ff": 0, "ff_s": 0.0, "ff_steps": 0, "wakes": 0,
                      "ff_drift_used_max": 0.0}
        """Counters: events (fine steps), wakes, fast-forward windows / seconds / steps, and
        the largest share of a window's drift limit any cell used (≤ 1: the promise held)."""

        self._v_stale = False
        self._chg_next_t = 0.0
        self._recompute()
        self.afe.reset(0.0, self._afe_input())

        # ---- the board --------------------------------------------------------------------
        spec = board_model or profile.bench.model
        source = "--board-model" if board_model else (profile.source or "<profile>")
        cls = load_board_model(spec, source=source, key="--board-model" if board_model else "bench.model")
        self.harness = BoardHarness(self, self._rngs["board"])
        self.board = cls(self.harness, profile, self.defects)
        self._board_ff = getattr(self.board, "fast_forward", None)
        self._next_wake = 0.0
        self._no_ff_before = 0.0
        self._touch()

    # ================================================================== public: time
    def advance(self, dt: float) -> None:
        """Let ``dt`` s of rig time pass (exact piecewise integration, event to event)."""
        if dt < 0:
            raise ValueError(f"advance: negative duration {dt}")
        t_end = self.t + dt
        period = self.profile.sampling.period_s
        fine_from = t_end - 2.0 * period
        max_step = self.max_step_s
        board = self.board
        stats = self.stats
        while True:
            self._raise_trip()
            t = self.t
            if t >= t_end - EPS_T:
                break
            if self._next_wake <= t + EPS_T:
                nxt = board.wake(t)
                stats["wakes"] += 1
                if not nxt > t:
                    raise RuntimeError(f"board wake({t}) returned {nxt}: the next wake must be later than now")
                self._next_wake = nxt
                if (self._board_ff is not None and self.ff_enabled and t < fine_from - period
                        and t >= self._no_ff_before):
                    r = self._board_ff(fine_from)
                    if r is not None:
                        t_res, duty = r[0], r[1]
                        dv_max = FF_DV_MAX_V if len(r) < 3 or r[2] is None else min(float(r[2]), FF_DV_CAP_V)
                        if t_res > t + EPS_T and dv_max > 0.0:
                            self._fast_forward(min(t_res, fine_from), np.asarray(duty, float), dv_max)
                            self._next_wake = self.t  # wake the board where the ff ended
                            continue
            t_next = min(self._next_wake, t_end, t + max_step)
            self._step(t_next - t)
            self.t = t_next
        self.t = max(self.t, t_end) if abs(self.t - t_end) < EPS_T else self.t
        if self._mode == "model" and self._ovp is not None and self._v_stale:
            self._check_ovp(self._pack.terminal_voltage(self._i_pack - self._i_ch))
        self._raise_trip()

    def _raise_trip(self) -> None:
        if self._ovp_trip is not None:
            msg, self._ovp_trip = self._ovp_trip, None
            raise EmulatorTrip(msg)

    def _check_ovp(self, v: np.ndarray | None = None) -> None:
        """The emulator's over-voltage protection in cell-model mode: terminals outside the
        window switch the outputs off (latched in source mode, disabled), like a real OVP."""
        if self._ovp is None or self._mode != "model":
            return
        lo, hi = self._ovp
        v = self._v if v is None else v
        bad = ~(np.isfinite(v) & (v >= lo) & (v <= hi))
        if not bad.any():
            return
        i = int(np.argmax(bad))
        self._ovp_trip = (f"emulator protection tripped at t = {self.t:.1f} s: channel {i + 1} terminal voltage "
                          f"{v[i]:.3f} V outside the hard limit [{lo:g}, {hi:g}] V in cell-model mode; outputs off")
        self._ovp = None
        self._mode = "source"
        self._pack = None
        self._cell_thermal = None
        self._enabled = False
        self._recompute()

    # ================================================================== emulator
    def set_emulator_voltages(self, v) -> None:
        """Source-mode set points, V (an array of n, or one value for all)."""
        v = np.broadcast_to(np.asarray(v, float), (self.n,))
        self._v_set = v.copy()
        if self._mode == "source":
            self._recompute()
        self._touch()

    def set_emulator_enabled(self, on: bool) -> None:
        self._enabled = bool(on)
        self._recompute()
        self._touch()

    def set_emulator_noise(self, v_rms: float) -> None:
        """White noise of ``v_rms`` V RMS on every channel, as seen by each AFE conversion."""
        self._noise_rms = max(0.0, float(v_rms))
        self._touch()

    def set_cell_model(self, chemistry: str, capacity_ah, soc, temperature_c: float | None = None,
                       params=None) -> None:
        """Cell-model mode: each channel is a cell (PackModel) with that capacity and SOC."""
        self.install_cell_model(self.prepare_cell_model(chemistry, capacity_ah, soc, temperature_c, params))

    def prepare_cell_model(self, chemistry: str, capacity_ah, soc, temperature_c: float | None = None,
                           params=None) -> "CellModelSetup":
        """Build a cell model without switching to it (nothing in the world changes).

        The returned set-up carries the terminal voltages ``v`` (V) the channels would have
        on switching, for a caller to check against its limits before
        :meth:`install_cell_model`. The cell-spread stream is drawn from a copy, so a set-up
        that is never installed leaves the world's random streams untouched.
        """
        import copy

        from .cells import PackModel
        temp = self.chamber.air_c if temperature_c is None else float(temperature_c)
        rng = copy.deepcopy(self._rngs["cells"])
        pack = PackModel(chemistry, self.n, capacity_ah, soc, rng, params=params, temperature_c=temp)
        thermal = CellThermal.for_params(pack.params, self.n, ambient_c=temp)
        if temperature_c is not None:
            # start every cell at the given temperature (no gradient) until the chamber moves it
            thermal.temperature_c[:] = temp
        pack.temperature_c = thermal.temperature_c
        self._update_currents()
        i_board = self._i_ch.copy()
        i_pack = self._charger_current(0.0, i_board, pack=pack)
        return CellModelSetup(pack, thermal, rng, pack.terminal_voltage(i_pack - i_board))

    def install_cell_model(self, setup: "CellModelSetup", ovp: tuple[float, float] | None = None) -> None:
        """Switch to the prepared cell model. ``ovp``: the emulator's protection window
        (low, high), V: terminals outside it trip the outputs off (:class:`EmulatorTrip`)."""
        self._rngs["cells"] = setup.rng
        self._pack = setup.pack
        self._cell_thermal = setup.thermal
        self._ovp = None if ovp is None else (float(ovp[0]), float(ovp[1]))
        self._mode = "model"
        self._recompute()
        self._touch()

    def set_source_mode(self) -> None:
        """Leave cell-model mode; the channels hold their last terminal voltages."""
        if self._mode == "model":
            self._v_set = self._v.copy() if self._enabled else self._v_set
        self._mode = "source"
        self._pack = None
        self._cell_thermal = None
        self._ovp = None
        self._recompute()
        self._touch()

    def emulator_setpoints(self) -> np.ndarray:
        """Source-mode set points, V."""
        return self._v_set.copy()

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def pack(self):
        """The PackModel in cell-model mode (None in source mode)."""
        return self._pack

    def terminal_voltages(self) -> np.ndarray:
        """V at the emulator terminals now (no noise)."""
        self._refresh_v()
        return self._v.copy()

    def channel_currents(self, aperture_s: float = 0.0) -> np.ndarray:
        """Mean channel current over [t − aperture, t], A (positive: the channel sources it)."""
        if aperture_s <= 0.0:
            return self._i_ch.copy()
        t0 = self.t - aperture_s
        q0 = self._q_at(t0)
        if q0 is None:  # before the kept history: average over what there is
            span = self.t - self._h_t[0]
            if span <= 0:
                return self._i_ch.copy()
            return (self._q - self._h_q[0]) / span
        return (self._q - q0) / aperture_s

    def _q_at(self, t0: float):
        h_t = self._h_t[: self._h_len]
        if t0 < h_t[0]:
            return None
        j = int(np.searchsorted(h_t, t0, side="right"))
        if j >= self._h_len:
            return self._q.copy()  # inside the present (unrecorded) segment: none yet
        ta, tb = h_t[j - 1], h_t[j]
        qa, qb = self._h_q[j - 1], self._h_q[j]
        if tb <= ta:
            return qb.copy()
        return qa + (qb - qa) * ((t0 - ta) / (tb - ta))

    def soc(self) -> np.ndarray:
        if self._pack is None:
            raise RuntimeError("soc(): the emulator is in source mode (no cell model)")
        return self._pack.soc.copy()

    # ================================================================== charger
    def set_charger(self, current_a: float, voltage_limit_v: float | None = None) -> None:
        """Request ``current_a`` (+ charge, − discharge) with an optional CV limit, V."""
        self._chg_i = float(current_a)
        self._chg_v = None if voltage_limit_v is None else float(voltage_limit_v)
        self._recompute()
        self._touch()

    def pack_current(self) -> float:
        """Current actually flowing through the string, A (0 when a FET blocks it)."""
        return self._i_pack

    def pack_voltage(self) -> float:
        """String voltage at the charger terminals, V."""
        self._refresh_v()
        return float(self._v.sum())

    # ================================================================== chamber
    def set_chamber(self, setpoint_c: float, ramp_c_per_min: float | None = None) -> None:
        self._flush_thermal()
        self.chamber.set_point(setpoint_c, ramp_c_per_min)
        self._touch()

    def chamber_setpoint(self) -> float:
        """The chamber's target set point, °C (where a ramp ends)."""
        return float(self.chamber.target_c)

    def chamber_temperature(self) -> float:
        """Process value (air, as the chamber's sensor reads it), °C."""
        self._flush_thermal()
        return float(self.chamber.read_pv())

    def board_temperature(self) -> float:
        self._flush_thermal()
        return self._t_board

    def hot_spot_temperature(self) -> float:
        self._flush_thermal()
        return self._t_hs

    def cell_temperatures(self) -> np.ndarray:
        self._flush_thermal()
        if self._cell_thermal is not None:
            return self._cell_thermal.temperature_c.copy()
        return self.chamber.air_c + self._gradient

    # ================================================================== DAQ
    def daq_voltages(self) -> np.ndarray:
        """Reference reading of the terminal voltages (DAQ noise ~50 µV RMS), V."""
        self._refresh_v()
        return self._v + self._rngs["daq"].standard_normal(self.n) * DAQ_NOISE_RMS_V

    def daq_uncertainty_v(self) -> float:
        """Expanded uncertainty (k=2) of one averaged DAQ cell-voltage reading, V."""
        return DAQ_UNCERTAINTY_V

    def digital_level(self, line: str) -> bool:
        if line not in self._lines:
            raise KeyError(f"unknown digital line {line!r}; lines: {', '.join(self._lines)}")
        return self._lines[line]

    def thermocouples(self) -> dict:
        """Thermocouples: ``bleed_resistors`` (hot spot), ``cells_mid``, ``ambient``, °C."""
        self._flush_thermal()
        rng = self._rngs["daq"]
        cells = self.cell_temperatures()
        noise = rng.standard_normal(3) * THERMOCOUPLE_NOISE_C
        return {
            "bleed_resistors": float(self._t_hs + noise[0]),
            "cells_mid": float(cells[self.n // 2] + noise[1]),
            "ambient": float(self.chamber.air_c + noise[2]),
        }

    @property
    def charge_fet(self) -> bool:
        return self._fet_c

    @property
    def discharge_fet(self) -> bool:
        return self._fet_d

    def bleed_conducting(self) -> np.ndarray:
        """Which bleed switches conduct now (after hardware defects)."""
        return self._conduct.copy()

    # ================================================================== links
    def close(self) -> None:
        self.dut_ports.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ================================================================== harness side
    def _afe_input(self) -> np.ndarray:
        if self._any_conduct:
            return self._v - self._i_bleed * self.afe.r_path_ohm
        return self._v

    def _afe_convert(self) -> np.ndarray:
        self._refresh_v()
        extra = None
        if self._noise_rms > 0.0:
            extra = self._rngs["emulator"].standard_normal(self.n) * self._noise_rms
        return self.afe.convert(self.t, self._t_board_now(), extra)

    def _t_board_now(self) -> float:
        return self._t_board

    def _ntc_readings(self) -> dict:
        self._flush_thermal()
        cells = self.cell_temperatures()
        return {
            "cells": np.round(cells, 1),
            "board": round(self._t_board, 1),
            "bleed_resistor": round(self._t_hs, 1),
        }

    def _shunt_current(self) -> float:
        return self._i_pack

    def _set_bleed(self, mask) -> None:
        m = np.asarray(mask, bool)
        if m.shape != (self.n,):
            raise ValueError(f"set_bleed: mask must have shape ({self.n},), got {m.shape}")
        self._cmd = m.copy()
        self._refresh_v()
        conduct = m | self._stuck
        if np.array_equal(conduct, self._conduct):
            return
        self._conduct = conduct
        self._any_conduct = bool(conduct.any())
        self._update_currents()
        self.afe.set_input(self.t, self._afe_input())

    def _set_fets(self, charge: bool, discharge: bool) -> None:
        changed = (charge != self._fet_c) or (discharge != self._fet_d)
        self._fet_c, self._fet_d = charge, discharge
        self._set_line("charge_enable", charge)
        self._set_line("discharge_enable", discharge)
        if changed:
            self._recompute()

    def _set_line(self, line: str, level: bool) -> None:
        if self._lines.get(line) != level:
            self._lines[line] = level
            self.daq_edges.append(DigitalEdge(self.t, line, level))

    def _publish(self, tel: Telemetry) -> None:
        if self._no_identity:
            tel.serial = tel.fw_version = ""
        self.telemetry = tel
        self.telemetry_count += 1
        self.dut_ports.publish(tel, tel.t)

    # ================================================================== internals
    def _touch(self) -> None:
        """An input changed: the board must resample before anything is fast-forwarded."""
        s = self.profile.sampling
        self._no_ff_before = self.t + (s.filter_samples + 2) * s.period_s

    def _update_currents(self) -> None:
        if self._any_conduct:
            np.multiply(self._v, self._g, out=self._i_bleed)
            self._i_bleed *= self._conduct
        else:
            self._i_bleed[:] = 0.0
        np.add(self._i_bleed, self._iq if self._enabled else 0.0, out=self._i_ch)

    def _gate(self, i: float) -> float:
        if i > 0.0 and not self._fet_c:
            return 0.0
        if i < 0.0 and not self._fet_d:
            return 0.0
        return i

    def _charger_current(self, h: float, i_board: np.ndarray | None = None, pack=None) -> float:
        """The charger/load's current for the next ``h`` s (CC/CV regulator, gated); ``pack``
        stands in for the present cell model (a prepared one)."""
        i_set = self._chg_i
        if i_set == 0.0:
            return 0.0
        if self._gate(i_set) == 0.0:
            return 0.0
        vlim = self._chg_v
        if vlim is None:
            return i_set
        if pack is None and (self._mode == "source" or self._pack is None):
            vp = float(self._v_set.sum()) if self._enabled else 0.0
            if (i_set > 0 and vp >= vlim) or (i_set < 0 and vp <= vlim):
                return 0.0
            return i_set
        pk = self._pack if pack is None else pack
        a = math.exp(-h / pk.params.tau1_s) if h > 0 else 1.0
        r0 = pk.resistance_r0()
        r1 = pk.resistance_r1()
        rterm = r0 + r1 * (1.0 - a)
        if h > 2.0:  # long step: the OCV rises inside it (the LFP knee); keeps CV stable
            rterm = rterm + pk._curve.slope(pk.soc, pk.temperature_c) * (h / 3600.0) / pk.capacity_ah
        v_open = pk.ocv() + pk.v_rc * a
        if i_board is not None:
            v_open = v_open - rterm * i_board
        i = (vlim - float(v_open.sum())) / float(rterm.sum())
        if i_set > 0:
            return min(max(i, 0.0), i_set)
        return max(min(i, 0.0), i_set)

    def _refresh_v(self) -> None:
        """Cell-model mode: bring the terminal voltages (and what follows) up to date."""
        if self._v_stale:
            self._v_stale = False
            self._v = self._pack.terminal_voltage(self._i_pack - self._i_ch)
            self._update_currents()
            self.afe.set_input(self.t, self._afe_input())
            self._check_ovp()

    def _recompute(self) -> None:
        """Terminal voltages, bleed/channel currents, pack current from the present state."""
        self._v_stale = False
        self._chg_next_t = self.t
        if self._mode == "model":
            self._update_currents()
            i_board = self._i_ch
            self._i_pack = self._charger_current(0.0, i_board)
            self._v = self._pack.terminal_voltage(self._i_pack - i_board)
            if not self._enabled:
                self._v = self._v  # the cells keep their voltage; the board is unpowered below
        else:
            self._v = self._v_set.copy() if self._enabled else np.zeros(self.n)
            self._i_pack = self._charger_current(0.0)
        self._update_currents()
        self.afe.set_input(self.t, self._afe_input())
        self._check_ovp()

    def _record(self, t: float) -> None:
        if self._h_len >= HISTORY_ROWS:
            # drop what is older than HISTORY_KEEP_S, and at least the oldest half
            keep_from = int(np.searchsorted(self._h_t[: self._h_len], t - HISTORY_KEEP_S))
            keep_from = max(keep_from, self._h_len // 2)
            m = self._h_len - keep_from
            self._h_t[:m] = self._h_t[keep_from: self._h_len]
            self._h_q[:m] = self._h_q[keep_from: self._h_len]
            self._h_len = m
        self._h_t[self._h_len] = t
        self._h_q[self._h_len] = self._q
        self._h_len += 1

    def _step(self, dt: float) -> None:
        """Integrate ``dt`` with every input held (the fine path)."""
        if dt <= 0.0:
            return
        self.stats["events"] += 1
        t1 = self.t + dt
        self._q += self._i_ch * dt
        if self._any_conduct:
            self.bleed_on_s += self._conduct * dt
            self.bleed_charge_c += self._i_bleed * dt
            self._lump_e += float(np.dot(self._i_bleed, self._v)) * dt
        if self._mode == "model":
            i_board = self._i_ch
            if self._chg_i != 0.0 and self.t >= self._chg_next_t:
                # the regulator re-evaluates a few times a second on the fine path
                self._i_pack = self._charger_current(max(dt, CHARGER_REG_S), i_board)
                self._chg_next_t = self.t + CHARGER_REG_S
            self._pack.step(dt, self._i_pack - i_board)
            self._lump_dt += dt
            self.t = t1
            if self._lump_dt >= THERMAL_LUMP_S:
                self._flush_thermal()
            self._v_stale = True  # terminal voltages refresh when someone looks (µV/ms drift)
        else:
            self._lump_dt += dt
            self.t = t1
            if self._lump_dt >= THERMAL_LUMP_S:
                self._flush_thermal()
        self._record(t1)

    def _flush_thermal(self) -> None:
        """Apply the accumulated thermal lump (mean bleed power over it) up to now."""
        h = self._lump_dt
        if h <= 0.0:
            return
        p = self._lump_e / h
        self._lump_dt = 0.0
        self._lump_e = 0.0
        self._thermal_step(h, p)

    def _thermal_step(self, h: float, p_bleed_w: float) -> None:
        ch = self.chamber
        air0 = ch.air_c
        ch.step(h)
        air = 0.5 * (air0 + ch.air_c)
        self._t_board += (air - self._t_board) * -math.expm1(-h / BOARD_TAU_S)
        target = self._t_board + p_bleed_w * self._hs_k
        self._t_hs += (target - self._t_hs) * -math.expm1(-h / self._hs_tau)
        if self._cell_thermal is not None:
            heat = self._pack.heat_w(self._i_pack - self._i_ch)
            self._cell_thermal.step(h, air, heat)
            self._pack.temperature_c = self._cell_thermal.temperature_c

    def _fast_forward(self, t_res: float, duty: np.ndarray, dv_max: float = FF_DV_MAX_V) -> None:
        """Integrate to ``t_res`` with the average bleed ``duty`` (the board is quiet), ending
        early before any terminal voltage moves more than ``dv_max`` V."""
        self._flush_thermal()
        self._refresh_v()
        self.stats["ff"] += 1
        t_start = self.t
        duty = np.clip(duty, 0.0, 1.0)
        duty = np.where(self._stuck, 1.0, duty)
        g_eff = self._g * duty
        on_frac = (self._g > 0) * duty
        v0 = self._v.copy()
        tb0 = self._t_board
        air0 = self.chamber.air_c
        model = self._mode == "model"
        h = t_res - self.t
        if model:
            h = min(h, 60.0)
        if not self.chamber.quiet(0.2) or abs(self._t_board - air0) > 0.5:
            h = min(h, 30.0)
        iq = self._iq if self._enabled else 0.0
        moved = 0.0
        while self.t < t_res - EPS_T:
            h = min(h, t_res - self.t)
            i_bleed = self._v * g_eff
            i_ch = i_bleed + iq
            if model:
                # keep the drift promise: no step may carry a cell past the drift limit
                self._i_pack = self._charger_current(h, i_ch)
                rate = float(np.max(self._pack.voltage_rate(self._i_pack - i_ch, lookahead_s=h)))
                h_cap = FF_STEP_SHARE * (dv_max - moved) / max(rate, 1e-12)
                if h_cap < h:
                    h = h_cap
                    self._i_pack = self._charger_current(h, i_ch)
            self._q += i_ch * h
            self.bleed_on_s += on_frac * h
            self.bleed_charge_c += i_bleed * h
            p = float(np.dot(i_bleed, self._v))
            v_prev = self._v
            if model:
                self._pack.step(h, self._i_pack - i_ch)
            self._thermal_step(h, p)
            self.t += h
            self.stats["ff_steps"] += 1
            if model:
                self._v = self._pack.terminal_voltage(self._i_pack - i_ch)
                dv_step = float(np.max(np.abs(self._v - v_prev)))
                moved = float(np.max(np.abs(self._v - v0)))
                if self._chg_v is not None and 0.0 < abs(self._i_pack) < abs(self._chg_i):
                    # under CV the regulator's current depends on the step length: the
                    # board will see the voltage at the instantaneous current after the window
                    i_fine = self._charger_current(0.0, i_ch)
                    v_fine = self._pack.terminal_voltage(i_fine - i_ch)
                    moved = max(moved, float(np.max(np.abs(v_fine - v0))))
                if moved > FF_DV_END * dv_max:
                    break
                h = h * min(4.0, max(0.25, 1e-3 / max(dv_step, 1e-7)))
                h = min(h, 3600.0)
            if abs(self._t_board - tb0) > FF_DT_MAX_C or abs(self.chamber.air_c - air0) > FF_DT_MAX_C:
                break
        if abs(self.t - t_res) < EPS_T:
            self.t = t_res
        self.stats["ff_s"] += self.t - t_start
        self._record(self.t)
        self._recompute()
        self.afe.reset(self.t, self._afe_input())
        if model:  # what the board will see on waking, against the window's start
            used = float(np.max(np.abs(self._v - v0))) / dv_max
            if used > self.stats["ff_drift_used_max"]:
                self.stats["ff_drift_used_max"] = used
