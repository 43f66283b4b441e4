"""Shared parts of the vendor cell-emulator drivers: several units, one N-channel emulator.

A rig often needs more cell channels than one instrument has (a 16S board on 12-channel
BS1200 units, a 16S board on 6-channel Pickering 41-752A modules). The rig description lists
the units in order, each with the unit channels it contributes; board cells are numbered
consecutively across that list (cell 1 is the first listed channel of the first unit). The
resulting mapping is stated in the file and shown in :meth:`MappedCellEmulator.info` notes,
so the report says which instrument channel drove which cell.

:class:`MappedCellEmulator` holds everything the vendor drivers share: hard limits as
:class:`rig.safety.FixedLimits` like every other cell emulator's (each vendor driver declares
its instrument's rated range in ``RATED``; the rig description narrows it; the channel
voltage is intersected with the board chemistry's absolute range by
:func:`rig.safety.narrow_to_chemistry`; the safe-state voltage is checked against the
result when the rig is built; the limit attributes cannot be assigned afterwards), checked
before any vendor call on every path (set points, cell-model ticks, safe state), channel
validation, the cell-model loop, and the safe state. A vendor driver implements ``_send_voltages``,
``_send_enable``, ``_send_current_limits``, ``_read_voltages`` and ``_read_currents``.
"""

from __future__ import annotations

import importlib
import json
import math

import numpy as np

from ..errors import RigFault
from ..safety import APERTURE, FixedLimits, Limit, channel_index, narrow_to_chemistry

_NOISE = Limit("injected noise", 0.0, math.inf, "V rms")


def rated_emulator(volts: tuple[float, float], amps: float) -> dict[str, Limit]:
    """``RATED`` of a vendor cell emulator: channel set-point range, V, and current limit, A."""
    return {"voltage_range_v": Limit("channel voltage", *volts, "V"),
            "max_current_a": Limit("current limit", 0.0, amps, "A")}


def import_vendor(module: str, extra: str, what: str):
    """Import a vendor library lazily; a missing one is a RigFault naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise RigFault(
            what, f"the vendor library '{module}' is not installed ({exc}); install it with: pip install 'bmsrig[{extra}]'"
        ) from None


def unit_list(value, *, kind: str, key: str, channels_max: int, required: tuple[str, ...]) -> tuple[dict, ...]:
    """Validate the ``units``/``modules`` list of a multi-unit resource.

    Each entry is a mapping with the ``required`` keys, an optional ``serial`` and
    ``calibration_due`` (ISO date), and ``channels``: a count ``n`` (unit channels 1..n) or an
    explicit list of 1-based unit channels in cell order. Returns a tuple of plain dicts with
    ``channels`` as a tuple of ints. Raises ValueError naming ``kind.key[i].field``.
    """
    if isinstance(value, str):  # the JSON text a list crosses labgrid's coordinator as (rig.resources.wire_value)
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{kind}.{key}: not a list and not JSON text: {value!r} ({exc})") from None
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"{kind}.{key}: must be a non-empty list of {key}, got {value!r}")
    out = []
    for i, entry in enumerate(value):
        where = f"{kind}.{key}[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: must be a mapping, got {entry!r}")
        unknown = set(entry) - set(required) - {"serial", "calibration_due", "channels"}
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}")
        for name in required:
            if name not in entry:
                raise ValueError(f"{where}.{name}: missing")
        chans = entry.get("channels", channels_max)
        if isinstance(chans, bool):
            raise ValueError(f"{where}.channels: must be a count or a list of channels, got {chans!r}")
        if isinstance(chans, int):
            if not 1 <= chans <= channels_max:
                raise ValueError(f"{where}.channels: count {chans} outside 1..{channels_max}")
            chans = tuple(range(1, chans + 1))
        elif isinstance(chans, (list, tuple)) and chans and all(isinstance(c, int) and not isinstance(c, bool) for c in chans):
            bad = [c for c in chans if not 1 <= c <= channels_max]
            if bad:
                raise ValueError(f"{where}.channels: {bad} outside the unit's channels 1..{channels_max}")
            if len(set(chans)) != len(chans):
                raise ValueError(f"{where}.channels: a channel is listed twice in {list(chans)}")
            chans = tuple(chans)
        else:
            raise ValueError(f"{where}.channels: must be a count or a list of 1-based channels, got {chans!r}")
        due = entry.get("calibration_due")
        out.append({**entry, "serial": str(entry.get("serial", "")),
                    "calibration_due": None if due is None else str(due), "channels": chans})
    return tuple(out)


def ranges_text(numbers: list[int]) -> str:
    """[1,2,3,5] -> '1-3,5'."""
    parts, start, prev = [], None, None
    for n in numbers:
        if start is None:
            start = prev = n
        elif n == prev + 1:
            prev = n
        else:
            parts.append(f"{start}-{prev}" if prev != start else f"{start}")
            start = prev = n
    if start is not None:
        parts.append(f"{start}-{prev}" if prev != start else f"{start}")
    return ",".join(parts)


def mapping_text(cells: list[tuple[str, int]]) -> str:
    """Per-cell (unit label, unit channel) -> 'cells 1-12 = box 1 ch 1-12; cells 13-16 = box 2 ch 1-4'."""
    groups: list[tuple[str, list[int], list[int]]] = []
    for cell, (unit, ch) in enumerate(cells, start=1):
        if groups and groups[-1][0] == unit and groups[-1][2][-1] + 1 == ch and groups[-1][1][-1] + 1 == cell:
            groups[-1][1].append(cell)
            groups[-1][2].append(ch)
        else:
            groups.append((unit, [cell], [ch]))
    return "; ".join(f"cells {ranges_text(c)} = {u} ch {ranges_text(h)}" for u, c, h in groups)


def earliest_due(dates: list[str | None]) -> str | None:
    """The earliest ISO calibration due date of the units (the one the report must flag first)."""
    known = sorted(d for d in dates if d)
    return known[0] if known else None


class MappedCellEmulator(FixedLimits):
    """The CellEmulator protocol over ``self.cells``: per board cell, (unit key, unit channel).

    Subclasses (listed before labgrid's ``Driver``) set ``role``, ``RATED`` (see
    :func:`rated_emulator`), the limit fields ``voltage_range_v`` ([lo, hi] V, converted by
    :func:`rig.safety.limit_pair`), ``max_current_a`` (A, :func:`rig.safety.limit_scalar`),
    ``safe_voltage_v`` (V, :func:`rig.safety.safe_value`) and ``cell_model_period_s`` (s), build ``self.cells`` and call :meth:`_fix_emulator_limits` at the
    end of ``__attrs_post_init__``.
    """

    cells: list = []
    _cell_loop = None
    #: the instrument cannot add noise to its outputs: plans that need it are skipped, not failed
    noise_injection = False
    SAFE_VALUES = {"safe_voltage_v": "voltage_range_v"}

    def _fix_emulator_limits(self, fixed_also=()) -> None:
        self._fix_limits({"voltage_range_v": Limit("channel voltage", *self.voltage_range_v, "V"),
                          "max_current_a": Limit("current limit", 0.0, self.max_current_a, "A")},
                         ("safe_voltage_v",) + tuple(fixed_also))

    def _narrow_limits(self, base, profile):
        return narrow_to_chemistry(base, profile)

    # -- vendor hooks ------------------------------------------------------------------
    def _send_voltages(self, volts: dict[int, float]) -> None:  # cell index -> V (checked)
        raise NotImplementedError

    def _send_enable(self, on: bool) -> None:
        raise NotImplementedError

    def _send_current_limits(self, source_a: float, sink_a: float) -> None:
        raise NotImplementedError

    def _read_voltages(self) -> np.ndarray:
        raise NotImplementedError

    def _read_currents(self, aperture_s: float | None) -> np.ndarray:
        raise NotImplementedError

    def _what(self) -> str:
        raise NotImplementedError

    # -- protocol ------------------------------------------------------------------------
    @property
    def n_channels(self) -> int:
        return len(self.cells)

    def set_voltages(self, volts):
        """Every cell (one value or n_channels values), V. All checked before anything is sent."""
        arr = self.limits["voltage_range_v"].check_channels(self._what(), volts, self.n_channels, "cell")
        self._send_voltages({i: float(v) for i, v in enumerate(arr)})

    def set_voltage(self, channel, volts):
        """One cell, 0-based index, V."""
        i = channel_index(channel, self.n_channels, self._what())
        self._send_voltages({i: self.limits["voltage_range_v"].check(self._what(), volts, f"cell {i + 1} voltage")})

    def enable(self, on=True):
        self._send_enable(bool(on))

    def read_voltages(self):
        return np.asarray(self._read_voltages(), dtype=float)

    def read_currents(self, aperture_s=None):
        """Per-cell current, A; averaged over ``aperture_s`` s where the instrument can."""
        if aperture_s is not None:
            aperture_s = APERTURE.check(self._what(), aperture_s)
            if not aperture_s > 0:
                raise ValueError(f"{self._what()}: aperture must be > 0 s, got {aperture_s}")
        return np.asarray(self._read_currents(aperture_s), dtype=float)

    def set_current_limits(self, source_a, sink_a):
        """Source and sink limits per channel, A, each within [0, max_current_a]."""
        lim = self.limits["max_current_a"]
        src = lim.check(self._what(), source_a, "source current limit")
        snk = lim.check(self._what(), sink_a, "sink current limit")
        self._send_current_limits(src, snk)

    def set_noise(self, v_rms):
        if _NOISE.check(self._what(), v_rms) != 0.0:
            raise RigFault(self._what(), "this emulator has no noise injection; add an AWG driver to the rig")

    def set_cell_model(self, chemistry, capacity_ah, soc, temperature_c=None, capacity_scale=1.0):
        """Cell-model mode: a control loop on the rig clock (rig.cellmodel) drives the channels.

        SOC, capacity, temperature and the model's first terminal voltages are checked against
        the hard limits (by the loop's constructor) before anything is switched or sent."""
        from ..cellmodel import CellModelLoop
        from ..context import context_of

        loop = CellModelLoop(self, context_of(self.target).clock, chemistry, capacity_ah, soc,
                             temperature_c=temperature_c, period_s=self.cell_model_period_s,
                             capacity_scale=capacity_scale)  # checks the set-up
        self.set_source_mode()
        self._cell_loop = loop.start()

    def set_source_mode(self):
        if self._cell_loop is not None:
            self._cell_loop.stop()
            self._cell_loop = None

    def read_soc(self):
        if self._cell_loop is None:
            raise RigFault(self._what(), "not in cell-model mode")
        return self._cell_loop.soc()

    def safe_state(self):
        """Every cell to ``safe_voltage_v`` (checked like any set point); if that fails, outputs off.

        Never raises. Outputs stay on at the safe level rather than off: an output switched off
        in a series string leaves the board's cell inputs floating (or reverse-biased through
        the channel's protection diode).
        """
        try:
            self.set_source_mode()
        except Exception:
            pass
        try:
            self.set_voltages(self.safe_voltage_v)
            return
        except Exception:
            pass
        try:
            self._send_enable(False)
        except Exception:
            pass
