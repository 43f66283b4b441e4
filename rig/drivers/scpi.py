"""SCPI instruments over pyvisa: a multi-channel cell emulator and a pack supply/load.

Command sets differ between vendors, so each command is a template attribute of the driver
(set it in the rig description). Placeholders a template may use:

- ``{ch}`` — one channel, 1-based (``3``)
- ``{chlist}`` — the whole SCPI-1999 channel list body (``1:16``); ``{n}`` — the channel count
- ``{v}`` volts, ``{s}`` seconds, ``{src}``/``{snk}`` amps, ``{a}`` amps, ``{state}`` ``ON``/``OFF``

A read template containing ``{ch}`` is sent once per channel (every SCPI cell simulator
answers that); one without it is sent once and must answer ``n`` comma-separated values
(``MEAS:VOLT? (@{chlist})`` on instruments that support channel-list queries).

Every public operation is checked: hard limits before anything is written, then, after the
writes, the instrument's error queue (``SYST:ERR?``): a command the instrument rejected
(a template that does not match its command set) is a :class:`~rig.errors.RigFault` naming
the instrument and the command, not a silent no-op. Replies are parsed strictly: a short,
garbled or overload (``9.9E37``) reply is a RigFault too. Set ``cmd_error_query``,
``cmd_identify`` or ``cmd_clear`` to ``""`` for an instrument without them.

pyvisa is imported lazily on activation; ``visa_library`` of the resource picks the backend
(``@py`` pyvisa-py, ``@ivi`` a vendor VISA, ``file.yaml@sim`` pyvisa-sim in tests).
"""

from __future__ import annotations

import math

import attr
import numpy as np
from labgrid.driver.common import Driver
from labgrid.factory import target_factory

from ..errors import RigFault
from ..protocols import CellEmulator, InstrumentInfo, PackCurrentSource
from ..safety import (
    APERTURE,
    FixedLimits,
    Limit,
    channel_index,
    limit_pair,
    limit_scalar,
    narrow_to_chemistry,
    pack_source_limits,
    safe_value,
)

# SCPI-99 reserves 9.9E37 for "infinity/overrange" and 9.91E37 for "not a number".
_SCPI_OVERLOAD = 9.9e37
_MAX_ERRORS_DRAINED = 20


_NOISE = Limit("injected noise", 0.0, math.inf, "V rms")


class _Visa:
    """Open/close a pyvisa session on the bound ScpiInstrument resource; checked I/O."""

    inst = None
    idn = ""
    _rm = None

    def on_activate(self):
        try:
            import pyvisa
        except ImportError as exc:  # pragma: no cover - pyvisa is a core dependency
            raise RigFault(self._what(), f"pyvisa is not installed: {exc}") from None
        try:
            self._rm = pyvisa.ResourceManager(self.res.visa_library)
            self.inst = self._rm.open_resource(
                self.res.address,
                timeout=max(1, int(self.timeout_s * 1000)),
                read_termination="\n",
                write_termination="\n",
            )
        except Exception as exc:
            self._close_session()
            raise RigFault(self._what(), f"cannot open {self.res.address}: {type(exc).__name__}: {exc}") from None
        try:
            if self.cmd_clear:
                self._write(self.cmd_clear)
            if self.cmd_identify:
                self.idn = self._query(self.cmd_identify)
                if not self.idn:
                    raise RigFault(self._what(), f"no answer to {self.cmd_identify!r} at {self.res.address}: "
                                                 "is this the right instrument and address?")
        except RigFault:
            self._close_session()
            raise

    def on_deactivate(self):
        self._close_session()

    def _close_session(self):
        inst, rm = self.inst, self._rm
        self.inst, self._rm = None, None
        for thing in (inst, rm):
            if thing is not None:
                try:
                    thing.close()
                except Exception:
                    pass

    def _what(self):
        where = ", ".join(x for x in (self.res.model, self.res.address) if x)
        name = f" '{self.res.name}'" if getattr(self.res, "name", None) else ""
        return f"{self.role}{name} ({where})" if where else f"{self.role}{name}"

    def _session(self):
        if self.inst is None:
            raise RigFault(self._what(), "not connected (the driver is not active)")
        return self.inst

    def _write(self, cmd: str):
        inst = self._session()
        try:
            inst.write(cmd)
        except Exception as exc:
            raise RigFault(self._what(), f"write {cmd!r} failed: {type(exc).__name__}: {exc}") from None

    def _query(self, cmd: str) -> str:
        inst = self._session()
        try:
            return inst.query(cmd).strip()
        except Exception as exc:
            raise RigFault(self._what(), f"query {cmd!r} failed: {type(exc).__name__}: {exc}") from None

    def _check_errors(self, after: str):
        """Read the instrument's error queue; any entry means it rejected ``after``."""
        if not self.cmd_error_query:
            return
        errors = []
        for _ in range(_MAX_ERRORS_DRAINED):
            reply = self._query(self.cmd_error_query)
            code = reply.split(",", 1)[0].strip()
            try:
                code = int(code)
            except ValueError:
                raise RigFault(self._what(), f"unparseable reply {reply!r} to {self.cmd_error_query!r}") from None
            if code == 0:
                break
            errors.append(reply)
        if errors:
            raise RigFault(self._what(), f"the instrument rejected {after!r}: {'; '.join(errors)}")

    def _float(self, text: str, cmd: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise RigFault(self._what(), f"unparseable reply {text!r} to {cmd!r}") from None
        if not math.isfinite(v) or abs(v) >= _SCPI_OVERLOAD:
            raise RigFault(self._what(), f"overload or invalid reading {text!r} to {cmd!r}")
        return v

    def info(self) -> InstrumentInfo:
        extra = {"idn": self.idn} if self.idn else {}
        return InstrumentInfo(role=self.role, model=self.res.model, serial=self.res.serial,
                              calibration_due=self.res.calibration_due, notes=self.res.address, extra=extra)


@target_factory.reg_driver
@attr.s(eq=False)
class ScpiCellEmulatorDriver(FixedLimits, _Visa, Driver, CellEmulator):
    """Multi-channel cell emulator over SCPI.

    Args:
        channels (int): number of cell channels
        voltage_range_v ([lo, hi]): hard limit of any channel set point, V (rated 0–6 V;
            narrowed to the chemistry's absolute range of the board profile)
        max_current_a (float): hard limit of the source and sink current limits, A (rated 5 A)
        safe_voltage_v (float): the level ``safe_state`` puts every channel at, V (inside
            the voltage limit)
        timeout_s (float): VISA I/O timeout, s

    Cell-model mode is a control loop on the rig clock (``rig.cellmodel``) that checks every
    tick against the voltage limit before it sends.
    """

    bindings = {"res": "ScpiInstrument"}
    channels = attr.ib(default=16, converter=int)
    voltage_range_v = attr.ib(default=[0.0, 5.0], converter=lambda v: limit_pair(v, "voltage_range_v"))
    max_current_a = attr.ib(default=1.0, converter=lambda v: limit_scalar(v, "max_current_a"))
    safe_voltage_v = attr.ib(default=3.3, converter=lambda v: safe_value(v, "safe_voltage_v"))
    cell_model_period_s = attr.ib(default=0.25, converter=float)
    timeout_s = attr.ib(default=2.0, converter=float)
    cmd_set_voltage = attr.ib(default="SOUR:VOLT {v:.5f},(@{ch})")
    cmd_output = attr.ib(default="OUTP {state},(@{chlist})")
    cmd_meas_voltage = attr.ib(default="MEAS:VOLT? (@{ch})")
    cmd_meas_current = attr.ib(default="MEAS:CURR? (@{ch})")
    cmd_aperture = attr.ib(default="SENS:CURR:APER {s:.4f},(@{chlist})")
    cmd_current_limits = attr.ib(
        default="SOUR:CURR:LIM {src:.4f},(@{chlist});:SOUR:CURR:LIM:NEG {snk:.4f},(@{chlist})"
    )
    cmd_identify = attr.ib(default="*IDN?", converter=str)
    cmd_clear = attr.ib(default="*CLS", converter=str)
    cmd_error_query = attr.ib(default="SYST:ERR?", converter=str)
    role = "cell emulator"
    RATED = {"voltage_range_v": Limit("channel voltage", 0.0, 6.0, "V"),
             "max_current_a": Limit("current limit", 0.0, 5.0, "A")}
    SAFE_VALUES = {"safe_voltage_v": "voltage_range_v"}

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        if self.channels < 1:
            raise ValueError(f"{self.role}: channels must be >= 1, got {self.channels}")
        self._fix_limits({"voltage_range_v": Limit("channel voltage", *self.voltage_range_v, "V"),
                          "max_current_a": Limit("current limit", 0.0, self.max_current_a, "A")},
                         ("safe_voltage_v", "channels"))

    def _narrow_limits(self, base, profile):
        return narrow_to_chemistry(base, profile)

    def info(self) -> InstrumentInfo:
        i = super().info()
        return InstrumentInfo(role=i.role, model=i.model, serial=i.serial, calibration_due=i.calibration_due,
                              notes=i.notes, extra={**i.extra, "hard limits": self.limits.describe()})

    @property
    def n_channels(self):
        return self.channels

    def _fmt(self, template: str, **kw) -> str:
        return template.format(n=self.channels, chlist=f"1:{self.channels}" if self.channels > 1 else "1", **kw)

    def _read_channels(self, template: str) -> np.ndarray:
        if "{ch}" in template:
            out = np.empty(self.channels)
            for i in range(self.channels):
                cmd = self._fmt(template, ch=i + 1)
                out[i] = self._float(self._query(cmd), cmd)
            return out
        cmd = self._fmt(template)
        text = self._query(cmd)
        parts = [p for p in text.split(",")] if text else []
        if len(parts) != self.channels:
            raise RigFault(self._what(), f"expected {self.channels} values to {cmd!r}, got {len(parts)}: {text!r}")
        return np.array([self._float(p.strip(), cmd) for p in parts])

    def set_voltages(self, volts):
        arr = self.limits["voltage_range_v"].check_channels(self._what(), volts, self.channels)
        for ch, v in enumerate(arr, start=1):
            self._write(self._fmt(self.cmd_set_voltage, v=float(v), ch=ch))
        self._check_errors(f"{self.cmd_set_voltage} for channels 1..{self.channels}")

    def set_voltage(self, channel, volts):
        channel = channel_index(channel, self.channels, self._what())
        v = self.limits["voltage_range_v"].check(self._what(), volts, f"channel {channel + 1} voltage")
        cmd = self._fmt(self.cmd_set_voltage, v=v, ch=channel + 1)
        self._write(cmd)
        self._check_errors(cmd)

    def enable(self, on=True):
        cmd = self._fmt(self.cmd_output, state="ON" if on else "OFF")
        self._write(cmd)
        self._check_errors(cmd)

    def read_voltages(self):
        return self._read_channels(self.cmd_meas_voltage)

    def read_currents(self, aperture_s=None):
        if aperture_s is not None:
            ap = APERTURE.check(self._what(), aperture_s)
            if not ap > 0:
                raise ValueError(f"{self._what()}: aperture must be > 0 s, got {aperture_s}")
            cmd = self._fmt(self.cmd_aperture, s=ap)
            self._write(cmd)
            self._check_errors(cmd)
        return self._read_channels(self.cmd_meas_current)

    def set_current_limits(self, source_a, sink_a):
        lim = self.limits["max_current_a"]
        src = lim.check(self._what(), source_a, "source current limit")
        snk = lim.check(self._what(), sink_a, "sink current limit")
        cmd = self._fmt(self.cmd_current_limits, src=src, snk=-snk)
        self._write(cmd)
        self._check_errors(cmd)

    def set_noise(self, v_rms):
        if _NOISE.check(self._what(), v_rms) != 0.0:
            raise RigFault(self._what(), "this emulator has no noise injection; add an AWG driver to the rig")

    _cell_loop = None

    def set_cell_model(self, chemistry, capacity_ah, soc, temperature_c=None, capacity_scale=1.0):
        """Cell-model mode: a control loop on the rig clock (rig.cellmodel) drives the channels.

        SOC, capacity, temperature and the model's initial terminal voltages are checked
        against the hard limits (by the loop's constructor) before anything is sent."""
        from ..cellmodel import CellModelLoop
        from ..context import context_of

        loop = CellModelLoop(self, context_of(self.target).clock, chemistry, capacity_ah, soc,
                             temperature_c=temperature_c, period_s=self.cell_model_period_s,
                             capacity_scale=capacity_scale)
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
        """Every channel to ``safe_voltage_v``; if that fails, outputs off. Never raises."""
        try:
            self.set_source_mode()
            self.set_voltages(self.safe_voltage_v)
            return
        except Exception:
            pass
        try:
            self._write(self._fmt(self.cmd_output, state="OFF"))
        except Exception:
            pass


@target_factory.reg_driver
@attr.s(eq=False)
class ScpiPackSourceDriver(FixedLimits, _Visa, Driver, PackCurrentSource):
    """Bidirectional DC supply/load through the string, over SCPI (+ charge, − discharge).

    Args:
        current_range_a ([lo, hi]): hard limit of the requested current, A (must include
            0 A; rated ±1000 A)
        max_voltage_limit_v (float): hard limit of the CV limit, V (rated 1500 V)
        timeout_s (float): VISA I/O timeout, s
    """

    bindings = {"res": "ScpiInstrument"}
    current_range_a = attr.ib(default=[-50.0, 50.0], converter=lambda v: limit_pair(v, "current_range_a"))
    max_voltage_limit_v = attr.ib(default=60.0, converter=lambda v: limit_scalar(v, "max_voltage_limit_v"))
    timeout_s = attr.ib(default=2.0, converter=float)
    cmd_set_current = attr.ib(default="SOUR:CURR {a:.4f}")
    cmd_set_voltage_limit = attr.ib(default="SOUR:VOLT {v:.4f}")
    cmd_output = attr.ib(default="OUTP {state}")
    cmd_meas_current = attr.ib(default="MEAS:CURR?")
    cmd_meas_voltage = attr.ib(default="MEAS:VOLT?")
    cmd_identify = attr.ib(default="*IDN?", converter=str)
    cmd_clear = attr.ib(default="*CLS", converter=str)
    cmd_error_query = attr.ib(default="SYST:ERR?", converter=str)
    role = "pack current source"
    RATED = {"current_range_a": Limit("current", -1000.0, 1000.0, "A"),
             "max_voltage_limit_v": Limit("voltage limit", 0.0, 1500.0, "V")}

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self._fix_limits(pack_source_limits(self.current_range_a, self.max_voltage_limit_v))

    def set_current(self, amps, voltage_limit_v=None):
        a = self.limits["current_range_a"].check(self._what(), amps)
        v = None if voltage_limit_v is None else self.limits["max_voltage_limit_v"].check(self._what(), voltage_limit_v)
        cmds = []
        if v is not None:
            cmds.append(self.cmd_set_voltage_limit.format(v=v))
        cmds.append(self.cmd_set_current.format(a=a))
        cmds.append(self.cmd_output.format(state="ON" if a != 0.0 else "OFF"))
        for cmd in cmds:
            self._write(cmd)
        self._check_errors("; ".join(cmds))

    def read_current(self):
        return self._float(self._query(self.cmd_meas_current), self.cmd_meas_current)

    def read_voltage(self):
        return self._float(self._query(self.cmd_meas_voltage), self.cmd_meas_voltage)

    def off(self):
        cmds = [self.cmd_set_current.format(a=0.0), self.cmd_output.format(state="OFF")]
        for cmd in cmds:
            self._write(cmd)
        self._check_errors("; ".join(cmds))

    def safe_state(self):
        """Current to zero and output off, each tried even if the other fails. Never raises."""
        for cmd in (self.cmd_set_current.format(a=0.0), self.cmd_output.format(state="OFF")):
            try:
                self._write(cmd)
            except Exception:
                pass
