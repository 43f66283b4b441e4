"""Bloomy BS1200 battery cell simulators (12 channels per unit) on Bloomy's ``bs1200`` library.

Install: ``pip install 'bmsrig[bs1200]'``. The library is imported when the driver activates.

Where the units are: a :class:`BS1200Bus` resource, the CAN bus the units share (python-can
interface, channel, bitrate; the BS1200 default is 1 Mbit/s) and the units on it in cell
order, each with its CAN box ID (1..15), serial, calibration due date and the unit channels
it contributes. Cells are numbered across the list: with units box 1 (12 channels) and box 2
(``channels: 4``) cell 1..12 are box 1 ch 1..12 and cells 13..16 are box 2 ch 1..4.

How to talk to them: every command and every readback goes through the library's own
methods (``set_cell_V``, ``set_V_all``, ``cell_enable``, ``set_I_all``, ``readback_V_all``,
``readback_I_all``, ``query_system_status``), which build and decode the BS1200's CAN frames
and keep its readback cache. ``bs1200`` 1.3 opens its bus itself as
``can.interfaces.pcan.PcanBus``; the driver instead opens ``can.Bus`` with the resource's
interface and hands it to the library object, so a PEAK adapter works through PEAK's
``pcan`` driver *or* Linux SocketCAN (mainline ``peak_usb``), and the tests run the library
on python-can's ``virtual`` bus against a simulated BS1200.

Readbacks: a BS1200 broadcasts its voltage and current readbacks every CAN write period
(5 ms by default). After a command, a read waits until frames that left the unit at least
``settle_s`` after the command have arrived (``readback_timeout_s`` at most), so a reading
never predates the last set point. Set points are quantised to the unit's 0.1 mV code
(rounded, not truncated as the library alone would).

Current averages are taken over the rig clock (the run context's clock): each unit's current
readback is stamped with the rig time it arrived at and integrated into a per-channel charge
(a readback stands for the interval since the previous one), so ``read_currents(aperture_s)``
is the mean over the last ``aperture_s`` s of rig time. On hardware the rig clock is the wall
clock; on the virtual bench it is the bench's virtual time, which a wall-clock average would
not follow.

Identity: the CAN protocol carries no model, serial, firmware or calibration data, so they
come from the rig description; ``info()`` adds each unit's board temperatures read from its
status frame. Firmware is reported as unknown.
"""

from __future__ import annotations

import threading
import time
from collections import deque

import attr
import numpy as np
from labgrid.driver.common import Driver
from labgrid.factory import target_factory
from labgrid.resource.common import Resource

from ..context import find_context
from ..errors import RigFault
from ..protocols import CellEmulator, InstrumentInfo
from ..safety import limit_pair, limit_scalar, safe_value
from .multi_unit import MappedCellEmulator, earliest_due, import_vendor, mapping_text, rated_emulator, unit_list

CHANNELS_PER_UNIT = 12
VOLTAGE_CAPABILITY_V = (0.0, 5.0)   # set-point range of a BS1200 channel (bs1200 documentation)
CURRENT_CAPABILITY_A = 0.5          # source/sink limit range of a channel (bs1200 documentation)
VOLT_CODE_V = 1e-4                  # one set-point / readback code, V
# Readback frame bases (arbitration ID = base + box ID), as the library decodes them.
_V_FRAMES = (288, 304, 320)
_I_FRAMES = (384, 400, 416)
HISTORY_S = 3600.0    # rig time of current readbacks kept for read_currents(aperture_s), s (longer: this much)
HISTORY_STEP_S = 0.05  # time resolution of the kept charge history, s (the latest readback is always exact)


def _bs1200_units(value):
    units = unit_list(value, kind="BS1200Bus", key="units", channels_max=CHANNELS_PER_UNIT, required=("box_id",))
    seen = set()
    for i, u in enumerate(units):
        box = u["box_id"]
        if isinstance(box, bool) or not isinstance(box, int) or not 1 <= box <= 15:
            raise ValueError(f"BS1200Bus.units[{i}].box_id: must be an integer 1..15 (the unit's CAN box ID), got {box!r}")
        if box in seen:
            raise ValueError(f"BS1200Bus.units[{i}].box_id: box ID {box} is listed twice")
        seen.add(box)
    return units


@target_factory.reg_resource
@attr.s(eq=False)
class BS1200Bus(Resource):
    """BS1200 units on one CAN bus.

    Args:
        interface (str): python-can interface (``pcan``, ``socketcan``, ...)
        channel (str): interface channel (``PCAN_USBBUS1``, ``can0``)
        bitrate (int): bit/s, as configured on the units (BS1200 default 1000000)
        model (str): model text for the report
        units (list): in cell order: {box_id, serial, calibration_due, channels (count or list)}
    """

    interface = attr.ib(default="pcan", converter=str)
    channel = attr.ib(default="PCAN_USBBUS1", converter=str)
    bitrate = attr.ib(default=1000000, converter=int)
    model = attr.ib(default="Bloomy BS1200", converter=str)
    units = attr.ib(default=None, converter=_bs1200_units)


def _library_on_bus(bs1200, bus, box_ids, delay_ms):
    """A ``bs1200.BS1200`` using ``bus`` instead of the PCAN bus its constructor would open.

    Sets exactly what ``BS1200.__init__`` (bs1200 1.3) sets, then the library's methods run
    unchanged. ``status_is_ok`` (PcanBus only) is supplied for other interfaces from the
    bus state python-can reports.
    """
    import can
    from bs1200 import can_frames

    class _BS1200OnBus(bs1200.BS1200):
        def __init__(self):  # noqa: D401 - mirrors the vendor constructor
            self.box_ids = sorted(box_ids)
            self.rx_cache = can_frames.init_frame_dict(self.box_ids)
            self.bus = bus
            self.buffer = can.BufferedReader()
            # a short receive timeout so that closing does not wait a second for the thread
            self.notifier = can.Notifier(self.bus, [self._get_message, self.buffer], timeout=0.1)
            self.publish_delay = delay_ms / 1000

    if not hasattr(bus, "status_is_ok"):
        bus.status_is_ok = lambda: bus.state != can.BusState.ERROR
    return _BS1200OnBus()


@target_factory.reg_driver
@attr.s(eq=False)
class BS1200CellEmulatorDriver(MappedCellEmulator, Driver, CellEmulator):
    """N cells on one or more BS1200 units (see the module docstring for wiring and mapping).

    Args:
        voltage_range_v ([lo, hi]): hard limit of any cell set point, V (within 0..5 V)
        max_current_a (float): hard limit of the source/sink current limits, A (at most 0.5 A)
        safe_voltage_v (float): the level ``safe_state`` puts every cell at, V
        settle_s (float): a readback counts only if it left the unit this long after the last command, s
        readback_timeout_s (float): how long a read waits for such readbacks, s
        current_sign (int): +1 if the unit reports current it sources as positive, else -1
        cell_model_period_s (float): control-loop period of cell-model mode, s
    """

    bindings = {"port": "BS1200Bus"}
    voltage_range_v = attr.ib(default=(0.0, 4.5), converter=lambda v: limit_pair(v, "voltage_range_v"))
    max_current_a = attr.ib(default=0.5, converter=lambda v: limit_scalar(v, "max_current_a"))
    safe_voltage_v = attr.ib(default=3.3, converter=lambda v: safe_value(v, "safe_voltage_v"))
    settle_s = attr.ib(default=0.01, converter=float)
    readback_timeout_s = attr.ib(default=0.5, converter=float)
    current_sign = attr.ib(default=1, converter=int, validator=attr.validators.in_([1, -1]))
    cell_model_period_s = attr.ib(default=0.25, converter=float)
    role = "cell emulator"
    RATED = rated_emulator(VOLTAGE_CAPABILITY_V, CURRENT_CAPABILITY_A)

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.cells = [(u["box_id"], ch) for u in self.port.units for ch in u["channels"]] if self.port else []
        self._lib = None
        self._bus = None
        self._cond = threading.Condition()
        self._arrived: dict[int, float] = {}
        self._last_command = 0.0
        self._last_command_rig = -np.inf
        # per box: (rig time s, cumulative charge per unit channel A*s, latest current A), oldest first
        self._charge: dict[int, deque[tuple[float, np.ndarray, np.ndarray]]] = {}
        self._stamp_clock = None
        self._fix_emulator_limits(("settle_s", "readback_timeout_s", "current_sign"))

    # -- session -------------------------------------------------------------------------
    def _what(self):
        res = self.port
        return f"{self.role} '{self.name or 'BS1200'}' ({res.model}, {res.interface} {res.channel})"

    def on_activate(self):
        bs1200 = import_vendor("bs1200", "bs1200", self._what())
        import can

        res = self.port
        try:
            self._bus = can.Bus(interface=res.interface, channel=res.channel, bitrate=res.bitrate)
        except Exception as exc:
            raise RigFault(self._what(), f"cannot open the CAN bus: {type(exc).__name__}: {exc}") from None
        try:
            self._lib = _library_on_bus(bs1200, self._bus, [u["box_id"] for u in res.units], delay_ms=self.settle_s * 1000)
            self._lib.notifier.add_listener(self._on_frame)
            self._wait_readbacks(_V_FRAMES + _I_FRAMES, after=time.monotonic(), what="first readbacks")
        except BaseException:
            self._close()
            raise

    def on_deactivate(self):
        self._close()

    def _close(self):
        lib, bus = self._lib, self._bus
        self._lib, self._bus = None, None
        if lib is not None:
            try:
                lib.notifier.stop(timeout=1.0)
            except Exception:
                pass
        if bus is not None:
            try:
                bus.shutdown()
            except Exception:
                pass

    def _rig_clock(self):
        ctx = find_context(self.target) if self.target is not None else None
        return ctx.clock if ctx is not None else None

    def _rig_now(self) -> float:
        """Rig time, s: the run's clock; monotonic wall time outside a run."""
        clock = self._rig_clock()
        return clock.now() if clock is not None else time.monotonic()

    def _on_frame(self, msg):
        """Runs in the notifier thread after the library cached the frame."""
        now = time.monotonic()
        with self._cond:
            self._arrived[msg.arbitration_id] = now
            box = msg.arbitration_id & 0x0F
            # one readback per publish period: when the last current group (cells 9-12) arrives
            if msg.arbitration_id - box == _I_FRAMES[-1] and self._lib is not None and box in self._lib.box_ids:
                try:
                    amps = np.asarray(self._lib.readback_I_all(box), dtype=float)
                except Exception:
                    amps = None
                if amps is not None:
                    self._integrate(box, amps)
            self._cond.notify_all()

    def _integrate(self, box: int, amps: np.ndarray) -> None:
        """Add a current readback (A per unit channel) at the rig time now to the box's charge history."""
        clock = self._rig_clock()
        if clock is not self._stamp_clock:  # a new time base (the run's clock arrived): start over
            self._charge.clear()
            self._stamp_clock = clock
        t = clock.now() if clock is not None else time.monotonic()
        hist = self._charge.setdefault(box, deque())
        if not hist:
            hist.append((t, np.zeros_like(amps), amps))
            return
        t_prev, q_prev, _ = hist[-1]
        q = q_prev + amps * max(0.0, t - t_prev)  # this readback stands for (t_prev, t]
        if len(hist) >= 2 and hist[-1][0] - hist[-2][0] < HISTORY_STEP_S:
            hist.pop()  # keep the history at HISTORY_STEP_S resolution; the latest point stays exact
        hist.append((max(t, t_prev), q, amps))
        while len(hist) > 2 and hist[0][0] < t - HISTORY_S:
            hist.popleft()

    def _mean_current(self, box: int, since: float) -> np.ndarray | None:
        """Mean current per unit channel of ``box`` from rig time ``since`` to its latest readback, A."""
        hist = self._charge.get(box)
        if not hist:
            return None
        t1, q1, latest = hist[-1]
        t0 = max(since, hist[0][0])
        if not t1 - t0 > 1e-9:
            return latest
        j = len(hist) - 1  # from the newest back (apertures are mostly recent): hist[j-1][0] <= t0 < hist[j][0]
        while j > 1 and hist[j - 1][0] > t0:
            j -= 1
        ta, qa, _ = hist[j - 1]
        tb, qb, _ = hist[j]
        q0 = qa + (qb - qa) * ((t0 - ta) / (tb - ta)) if tb > ta else qb
        return (q1 - q0) / (t1 - t0)

    def _wait_readbacks(self, bases, after: float, what: str):
        """Wait until every unit's frames ``bases`` have arrived later than ``after`` (monotonic s)."""
        ids = [b + box for b in bases for box in {u for u, _ in self.cells}]
        with self._cond:
            ok = self._cond.wait_for(lambda: all(self._arrived.get(i, -1.0) > after for i in ids),
                                     timeout=self.readback_timeout_s + max(0.0, after - time.monotonic()))
            if not ok:
                missing = sorted({i & 0x0F for i in ids if self._arrived.get(i, -1.0) <= after})
                raise RigFault(self._what(), f"no {what} from box ID(s) {missing} within {self.readback_timeout_s:g} s: "
                                             "is the unit powered, on this bus, at this bitrate and box ID?")

    def _library(self):
        if self._lib is None:
            raise RigFault(self._what(), "not connected (the driver is not active)")
        return self._lib

    def _call(self, method: str, *args):
        """Call a library command method; a bus error or a not-OK bus status is a RigFault."""
        lib = self._library()
        try:
            ok = getattr(lib, method)(*args)
        except Exception as exc:
            raise RigFault(self._what(), f"{method}{args} failed: {type(exc).__name__}: {exc}") from None
        if ok is not True:
            raise RigFault(self._what(), f"{method}{args}: the CAN bus did not report OK after sending ({ok!r})")

    def _by_box(self, cells):
        out: dict[int, list[tuple[int, int]]] = {}
        for i in cells:
            box, ch = self.cells[i]
            out.setdefault(box, []).append((i, ch))
        return out

    # -- vendor hooks --------------------------------------------------------------------
    def _send_voltages(self, volts):
        lim = self.limits["voltage_range_v"]
        codes = {}
        for i, v in volts.items():  # quantise, and check what will actually be sent
            code = round(v / VOLT_CODE_V)
            lim.check(self._what(), code * VOLT_CODE_V, f"cell {i + 1} voltage (0.1 mV code)")
            codes[i] = code
        self._library()
        self._mark_command()
        for box, chans in self._by_box(sorted(codes)).items():
            # the library truncates volts/1e-4: hand it the code's midpoint so it lands on the code
            values = {ch: (codes[i] + 0.5) * VOLT_CODE_V for i, ch in chans}
            if len(values) == CHANNELS_PER_UNIT and len(set(values.values())) == 1:
                self._call("set_V_all", box, next(iter(values.values())))
            else:
                for ch, v in values.items():
                    self._call("set_cell_V", box, ch, v)

    def _mark_command(self):
        self._last_command = time.monotonic()
        self._last_command_rig = self._rig_now()

    def _send_enable(self, on):
        self._library()
        self._mark_command()
        for box, chans in self._by_box(range(self.n_channels)).items():
            if not on or len(chans) == CHANNELS_PER_UNIT:
                self._call("cell_enable_all", box, on)  # off: every output of the unit, mapped or not
            else:
                for _, ch in chans:
                    self._call("cell_enable", box, ch, True)

    def _send_current_limits(self, source_a, sink_a):
        self._library()
        self._mark_command()
        for box in self._by_box(range(self.n_channels)):
            self._call("set_I_all", box, sink_a, source_a)

    def _read(self, bases, method):
        lib = self._library()
        self._wait_readbacks(bases, after=self._last_command + self.settle_s, what="fresh readbacks since the last command")
        out = np.empty(self.n_channels)
        for box, chans in self._by_box(range(self.n_channels)).items():
            try:
                values = getattr(lib, method)(box)
            except Exception as exc:
                raise RigFault(self._what(), f"{method}({box}) failed: {type(exc).__name__}: {exc}") from None
            for i, ch in chans:
                out[i] = float(values[ch - 1])
        return out

    def _read_voltages(self):
        return self._read(_V_FRAMES, "readback_V_all")

    def _read_currents(self, aperture_s):
        latest = self._read(_I_FRAMES, "readback_I_all") * self.current_sign
        if aperture_s is None:
            return latest
        # the mean over the last aperture_s of rig time, not before the last command had settled
        since = max(self._rig_now() - aperture_s, self._last_command_rig + self.settle_s)
        out = latest.copy()
        with self._cond:
            for box, chans in self._by_box(range(self.n_channels)).items():
                mean = self._mean_current(box, since)
                if mean is not None:
                    for i, ch in chans:
                        out[i] = mean[ch - 1] * self.current_sign
        return out

    # -- identity ------------------------------------------------------------------------
    def info(self) -> InstrumentInfo:
        res = self.port
        units = []
        for u in res.units:
            entry = {"box_id": u["box_id"], "serial": u["serial"], "calibration_due": u["calibration_due"],
                     "channels": list(u["channels"])}
            if self._lib is not None:
                try:
                    entry["board_temps_c"] = self._lib.query_system_status(u["box_id"], printout=False)
                except Exception:
                    pass
            units.append(entry)
        mapping = mapping_text([(f"box {b}", ch) for b, ch in self.cells])
        return InstrumentInfo(
            role=self.role,
            model=f"{res.model} x{len(res.units)}" if len(res.units) > 1 else res.model,
            serial=", ".join(u["serial"] or f"box {u['box_id']}" for u in res.units),
            calibration_due=earliest_due([u["calibration_due"] for u in res.units]),
            notes=f"{res.interface} {res.channel} @ {res.bitrate} bit/s; {mapping}; firmware not reported over CAN",
            extra={"units": units, "channel_map": mapping, "firmware": None,
                   "limits": {"voltage_range_v": list(self.voltage_range_v), "max_current_a": self.max_current_a},
                   "hard limits": self.limits.describe()},
        )
