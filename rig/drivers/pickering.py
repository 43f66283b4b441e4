"""Pickering 41-752A battery simulator modules (6 channels each) on Pickering's ``pilxi``.

Install: ``pip install 'bmsrig[pickering]'`` plus Pickering's ClientBridge runtime
(``libpicmlx``/``libpiplx``, which ``pilxi`` loads through ctypes). The library is imported
when the driver activates.

Where the modules are: a :class:`PickeringLxi` resource, the LXI chassis (``address``: its
IP, or ``PXI`` for a local PXI chassis) and the modules in cell order, each with its bus and
device numbers and the module channels (subunits 1..6) it contributes. Cells are numbered
across the list: modules A (6 channels), B (6), C (``channels: 4``) make a 16-cell emulator
with cells 1..6 on A, 7..12 on B, 13..16 on C ch 1..4.

How to talk to them: ``Pi_Session`` / ``OpenCard`` and the card's battery-simulator calls
(``BattSetVoltage``, ``BattSetEnable``, ``BattSetCurrent`` — the programmable current sink —,
``BattMeasureVoltage``/``BattMeasureCurrentA`` on -01x modules with measurement, or
``BattGetVoltage`` when ``readback: setpoint``), ``BattReadInterlockState``.

Identity: ``CardId`` gives each module's type code, serial and firmware revision
(``41-752A-001,123456,1.02``); a card that is not a 41-752 is refused. ``ReadCalDate`` gives
the date of its last calibration and the interval: the due date is their sum (the later of
the user and factory stores). A module that cannot tell falls back to the rig description.
"""

from __future__ import annotations

import datetime as _dt

import attr
import numpy as np
from labgrid.driver.common import Driver
from labgrid.factory import target_factory
from labgrid.resource.common import Resource

from ..errors import RigFault
from ..protocols import CellEmulator, InstrumentInfo
from ..safety import limit_pair, limit_scalar, safe_value
from .multi_unit import MappedCellEmulator, earliest_due, import_vendor, mapping_text, rated_emulator, unit_list

CHANNELS_PER_MODULE = 6
VOLTAGE_CAPABILITY_V = (0.0, 7.0)   # output range of a 41-752A channel (Pickering data sheet)
CURRENT_CAPABILITY_A = 0.3          # source capability and sink setting range of a channel, A (data sheet)
CAL_STORES = (0, 1)  # user, factory


def _modules(value):
    modules = unit_list(value, kind="PickeringLxi", key="modules", channels_max=CHANNELS_PER_MODULE,
                        required=("bus", "device"))
    seen = set()
    for i, m in enumerate(modules):
        for name in ("bus", "device"):
            if isinstance(m[name], bool) or not isinstance(m[name], int) or m[name] < 0:
                raise ValueError(f"PickeringLxi.modules[{i}].{name}: must be a non-negative integer, got {m[name]!r}")
        if (m["bus"], m["device"]) in seen:
            raise ValueError(f"PickeringLxi.modules[{i}]: bus {m['bus']} device {m['device']} is listed twice")
        seen.add((m["bus"], m["device"]))
    return modules


@target_factory.reg_resource
@attr.s(eq=False)
class PickeringLxi(Resource):
    """41-752A modules in one Pickering LXI (or local PXI) chassis.

    Args:
        address (str): chassis IP address or host name, or ``PXI`` for a local chassis
        port (int): ClientBridge port (1024)
        timeout_ms (int): ClientBridge timeout, ms
        model (str): model text for the report
        modules (list): in cell order: {bus, device, serial, calibration_due, channels}
    """

    address = attr.ib(default="", converter=str)
    port = attr.ib(default=1024, converter=int)
    timeout_ms = attr.ib(default=1000, converter=int)
    model = attr.ib(default="Pickering 41-752A", converter=str)
    modules = attr.ib(default=None, converter=_modules)


def _due(year: int, day: int, interval_days: int) -> _dt.date | None:
    if year <= 0 or not 1 <= day <= 366:
        return None
    return _dt.date(year, 1, 1) + _dt.timedelta(days=day - 1 + interval_days)


@target_factory.reg_driver
@attr.s(eq=False)
class PickeringCellEmulatorDriver(MappedCellEmulator, Driver, CellEmulator):
    """N cells on one or more 41-752A modules (see the module docstring for wiring and mapping).

    Args:
        voltage_range_v ([lo, hi]): hard limit of any cell set point, V
        max_current_a (float): hard limit of the source/sink current limits, A
        safe_voltage_v (float): the level ``safe_state`` puts every cell at, V
        readback (str): ``measure`` (41-752A-01x measurement) or ``setpoint`` (no current readback)
        current_sign (int): +1 if the module reports current it sources as positive, else -1
        cell_model_period_s (float): control-loop period of cell-model mode, s
    """

    bindings = {"chassis": "PickeringLxi"}
    voltage_range_v = attr.ib(default=(0.0, 4.5), converter=lambda v: limit_pair(v, "voltage_range_v"))
    max_current_a = attr.ib(default=0.3, converter=lambda v: limit_scalar(v, "max_current_a"))
    safe_voltage_v = attr.ib(default=3.3, converter=lambda v: safe_value(v, "safe_voltage_v"))
    readback = attr.ib(default="measure", validator=attr.validators.in_(["measure", "setpoint"]))
    current_sign = attr.ib(default=1, converter=int, validator=attr.validators.in_([1, -1]))
    cell_model_period_s = attr.ib(default=0.25, converter=float)
    role = "cell emulator"
    RATED = rated_emulator(VOLTAGE_CAPABILITY_V, CURRENT_CAPABILITY_A)

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        mods = self.chassis.modules if self.chassis else ()
        self.cells = [(k, ch) for k, m in enumerate(mods) for ch in m["channels"]]
        self._pilxi = None
        self._session = None
        self._cards: list = []
        self._identity: list[dict] = []
        self._fix_emulator_limits(("readback", "current_sign"))

    def _what(self):
        res = self.chassis
        return f"{self.role} '{self.name or 'Pickering'}' ({res.model}, {res.address}:{res.port})"

    # -- session -------------------------------------------------------------------------
    def on_activate(self):
        self._pilxi = import_vendor("pilxi", "pickering", self._what())
        res = self.chassis
        try:
            self._session = self._pilxi.Pi_Session(res.address, res.port, res.timeout_ms)
        except OSError as exc:
            raise RigFault(self._what(), f"cannot connect to the chassis: Pickering's ClientBridge runtime "
                                         f"(libpicmlx, libpiplx) is not installed or not on the library path: "
                                         f"{self._describe(exc)}") from None
        except Exception as exc:
            raise RigFault(self._what(), f"cannot connect to the chassis: {self._describe(exc)}") from None
        try:
            for m in res.modules:
                card = self._vendor(f"OpenCard(bus {m['bus']}, device {m['device']})", self._session.OpenCard,
                                    m["bus"], m["device"])
                self._cards.append(card)
                self._identity.append(self._identify(m, card))
        except BaseException:
            self._close()
            raise

    def on_deactivate(self):
        self._close()

    def _close(self):
        cards, session = self._cards, self._session
        self._cards, self._session, self._identity = [], None, []
        for card in cards:
            try:
                card.Close()
            except Exception:
                pass
        if session is not None:
            try:
                session.Close()
            except Exception:
                pass

    def _describe(self, exc) -> str:
        code = getattr(exc, "errorCode", None)
        text = getattr(exc, "message", None) or str(exc)
        return f"{type(exc).__name__}: {text}" + (f" (code {code})" if code is not None else "")

    def _vendor(self, what: str, fn, *args):
        try:
            return fn(*args)
        except Exception as exc:
            raise RigFault(self._what(), f"{what} failed: {self._describe(exc)}") from None

    def _identify(self, module: dict, card) -> dict:
        where = f"bus {module['bus']} device {module['device']}"
        card_id = str(self._vendor(f"CardId ({where})", card.CardId))
        parts = [p.strip() for p in card_id.split(",")]
        type_code = parts[0] if parts else ""
        if not type_code.startswith("41-752"):
            raise RigFault(self._what(), f"the card at {where} identifies as {card_id!r}, not a 41-752 battery simulator")
        entry = {"bus": module["bus"], "device": module["device"], "card_id": card_id, "type": type_code,
                 "serial": parts[1] if len(parts) > 1 else module["serial"],
                 "firmware": parts[2] if len(parts) > 2 else None,
                 "channels": list(module["channels"])}
        dues = []
        for store in CAL_STORES:
            try:
                year, day, interval = card.ReadCalDate(min(module["channels"]), store)
            except Exception:
                continue
            due = _due(int(year), int(day), int(interval))
            if due is not None:
                dues.append(due)
        if dues:
            entry["calibration_due"], entry["calibration_source"] = max(dues).isoformat(), "instrument"
        else:
            entry["calibration_due"], entry["calibration_source"] = module["calibration_due"], "rig description"
        return entry

    def _card(self, k):
        if not self._cards:
            raise RigFault(self._what(), "not connected (the driver is not active)")
        return self._cards[k]

    def _by_module(self, cells):
        out: dict[int, list[tuple[int, int]]] = {}
        for i in cells:
            k, ch = self.cells[i]
            out.setdefault(k, []).append((i, ch))
        return out

    # -- vendor hooks --------------------------------------------------------------------
    def _send_voltages(self, volts):
        for k, chans in self._by_module(sorted(volts)).items():
            card = self._card(k)
            for i, ch in chans:
                self._vendor(f"BattSetVoltage(channel {ch}, {volts[i]:g} V)", card.BattSetVoltage, ch, volts[i])

    def _send_enable(self, on):
        for k, chans in self._by_module(range(self.n_channels)).items():
            card = self._card(k)
            for _, ch in chans:
                self._vendor(f"BattSetEnable(channel {ch}, {int(on)})", card.BattSetEnable, ch, int(on))
            if on and not self._vendor("BattReadInterlockState", card.BattReadInterlockState, chans[0][1]):
                raise RigFault(self._what(), f"the interlock of the module at bus {self._identity[k]['bus']} device "
                                             f"{self._identity[k]['device']} is down: its outputs cannot switch on")

    def _send_current_limits(self, source_a, sink_a):
        # The 41-752A's source current limit is fixed by the module; the programmable part is
        # its current sink. source_a has been checked against the hard limit like any command.
        for k, chans in self._by_module(range(self.n_channels)).items():
            card = self._card(k)
            for _, ch in chans:
                self._vendor(f"BattSetCurrent(channel {ch}, {sink_a:g} A)", card.BattSetCurrent, ch, sink_a)

    def _read_each(self, method: str, scale: float = 1.0):
        out = np.empty(self.n_channels)
        for k, chans in self._by_module(range(self.n_channels)).items():
            card = self._card(k)
            fn = getattr(card, method)
            for i, ch in chans:
                out[i] = float(self._vendor(f"{method}(channel {ch})", fn, ch)) * scale
        return out

    def _read_voltages(self):
        return self._read_each("BattMeasureVoltage" if self.readback == "measure" else "BattGetVoltage")

    def _read_currents(self, aperture_s):
        """The module averages per its measurement configuration; ``aperture_s`` is not programmed."""
        if self.readback != "measure":
            raise RigFault(self._what(), "channel currents need a measuring module (41-752A-01x) and readback: measure")
        return self._read_each("BattMeasureCurrentA", float(self.current_sign))

    # -- identity ------------------------------------------------------------------------
    def info(self) -> InstrumentInfo:
        res = self.chassis
        mods = self._identity or [
            {"bus": m["bus"], "device": m["device"], "serial": m["serial"], "firmware": None,
             "calibration_due": m["calibration_due"], "calibration_source": "rig description",
             "channels": list(m["channels"])} for m in res.modules
        ]
        mapping = mapping_text([(f"module {mods[k]['bus']}/{mods[k]['device']}", ch) for k, ch in self.cells])
        types = sorted({m.get("type") or res.model for m in mods})
        firmware = ", ".join(f"{m['serial']}: {m['firmware']}" for m in mods if m.get("firmware"))
        notes = f"{res.address}:{res.port}; {mapping}"
        if firmware:
            notes += f"; firmware {firmware}"
        return InstrumentInfo(
            role=self.role,
            model=(", ".join(types)) + (f" x{len(mods)}" if len(mods) > 1 else ""),
            serial=", ".join(str(m["serial"]) or f"{m['bus']}/{m['device']}" for m in mods),
            calibration_due=earliest_due([m["calibration_due"] for m in mods]),
            notes=notes,
            extra={"modules": mods, "channel_map": mapping,
                   "limits": {"voltage_range_v": list(self.voltage_range_v), "max_current_a": self.max_current_a},
                   "hard limits": self.limits.describe()},
        )
