"""SCPI instruments over pyvisa: a multi-channel cell emulator and a pack supply/load.

Command sets differ between vendors, so each command is a template attribute of the driver
(set it in the rig description). Defaults follow the SCPI-1999 channel-list style used by
multi-channel battery/cell simulators (``(@1:16)``). Hard limits are checked before any
write. pyvisa is imported lazily on activation.
"""

from __future__ import annotations

import attr
import numpy as np
from labgrid.driver.common import Driver
from labgrid.factory import target_factory

from ..errors import RigFault
from ..protocols import CellEmulator, InstrumentInfo, PackCurrentSource
from ..safety import check_limit


def _pair(v):
    lo, hi = (float(x) for x in v)
    return (lo, hi)


class _Visa:
    """Open/close a pyvisa session on the bound ScpiInstrument resource."""

    inst = None

    def on_activate(self):
        try:
            import pyvisa
        except ImportError as exc:  # pragma: no cover - pyvisa is a core dependency
            raise RigFault(self._what(), f"pyvisa is not installed: {exc}") from None
        try:
            rm = pyvisa.ResourceManager(self.res.visa_library)
            self.inst = rm.open_resource(self.res.address, timeout=int(self.timeout_s * 1000))
            self.inst.read_termination = "\n"
            self.inst.write_termination = "\n"
        except Exception as exc:
            raise RigFault(self._what(), f"cannot open {self.res.address}: {exc}") from None

    def on_deactivate(self):
        if self.inst is not None:
            try:
                self.inst.close()
            finally:
                self.inst = None

    def _what(self):
        return f"{self.role} {self.res.model or ''} {self.res.address}".strip()

    def _write(self, cmd: str):
        try:
            self.inst.write(cmd)
        except Exception as exc:
            raise RigFault(self._what(), f"write {cmd!r} failed: {exc}") from None

    def _query(self, cmd: str) -> str:
        try:
            return self.inst.query(cmd).strip()
        except Exception as exc:
            raise RigFault(self._what(), f"query {cmd!r} failed: {exc}") from None

    def info(self) -> InstrumentInfo:
        return InstrumentInfo(role=self.role, model=self.res.model, serial=self.res.serial,
                              calibration_due=self.res.calibration_due, notes=self.res.address)


@target_factory.reg_driver
@attr.s(eq=False)
class ScpiCellEmulatorDriver(_Visa, Driver, CellEmulator):
    """Multi-channel cell emulator over SCPI.

    Cell-model mode on a real rig is a control loop (``rig.cellmodel``) that is not built
    yet: ``set_cell_model`` raises a RigFault saying so.
    """

    bindings = {"res": "ScpiInstrument"}
    channels = attr.ib(default=16, converter=int)
    voltage_range_v = attr.ib(default=[0.0, 5.0], converter=_pair)
    max_current_a = attr.ib(default=1.0, converter=float)
    safe_voltage_v = attr.ib(default=3.3, converter=float)
    timeout_s = attr.ib(default=2.0, converter=float)
    cmd_set_voltage = attr.ib(default="SOUR:VOLT {v:.5f},(@{ch})")
    cmd_output = attr.ib(default="OUTP {state},(@1:{n})")
    cmd_meas_voltage = attr.ib(default="MEAS:VOLT? (@1:{n})")
    cmd_meas_current = attr.ib(default="MEAS:CURR? (@1:{n})")
    cmd_aperture = attr.ib(default="SENS:CURR:APER {s:.4f},(@1:{n})")
    cmd_current_limits = attr.ib(default="SOUR:CURR:LIM {src:.4f},(@1:{n});:SOUR:CURR:LIM:NEG {snk:.4f},(@1:{n})")
    role = "cell emulator"

    @property
    def n_channels(self):
        return self.channels

    def _floats(self, text: str) -> np.ndarray:
        try:
            vals = np.array([float(x) for x in text.split(",")], dtype=float)
        except ValueError:
            raise RigFault(self._what(), f"unparseable reply {text!r}") from None
        if vals.shape != (self.channels,):
            raise RigFault(self._what(), f"expected {self.channels} values, got {vals.size}")
        return vals

    def set_voltages(self, volts):
        arr = np.broadcast_to(np.asarray(volts, dtype=float), (self.channels,))
        lo, hi = self.voltage_range_v
        for v in arr:
            check_limit(self._what(), "channel voltage", v, lo, hi, "V")
        for ch, v in enumerate(arr, start=1):
            self._write(self.cmd_set_voltage.format(v=v, ch=ch))

    def set_voltage(self, channel, volts):
        lo, hi = self.voltage_range_v
        check_limit(self._what(), "channel voltage", volts, lo, hi, "V")
        self._write(self.cmd_set_voltage.format(v=float(volts), ch=channel + 1))

    def enable(self, on=True):
        self._write(self.cmd_output.format(state="ON" if on else "OFF", n=self.channels))

    def read_voltages(self):
        return self._floats(self._query(self.cmd_meas_voltage.format(n=self.channels)))

    def read_currents(self, aperture_s=None):
        if aperture_s is not None:
            self._write(self.cmd_aperture.format(s=float(aperture_s), n=self.channels))
        return self._floats(self._query(self.cmd_meas_current.format(n=self.channels)))

    def set_current_limits(self, source_a, sink_a):
        check_limit(self._what(), "source current limit", source_a, 0.0, self.max_current_a, "A")
        check_limit(self._what(), "sink current limit", sink_a, 0.0, self.max_current_a, "A")
        self._write(self.cmd_current_limits.format(src=float(source_a), snk=-float(sink_a), n=self.channels))

    def set_noise(self, v_rms):
        if float(v_rms) != 0.0:
            raise RigFault(self._what(), "this emulator has no noise injection; add an AWG driver to the rig")

    def set_cell_model(self, chemistry, capacity_ah, soc, temperature_c=None):
        raise RigFault(self._what(), "cell-model mode on hardware needs the cell-model control loop, which is not built yet")

    def set_source_mode(self):
        return None

    def read_soc(self):
        raise RigFault(self._what(), "not in cell-model mode")

    def safe_state(self):
        try:
            self.set_voltages(self.safe_voltage_v)
        except Exception:
            pass


@target_factory.reg_driver
@attr.s(eq=False)
class ScpiPackSourceDriver(_Visa, Driver, PackCurrentSource):
    """Bidirectional DC supply/load through the string, over SCPI (+ charge, − discharge)."""

    bindings = {"res": "ScpiInstrument"}
    current_range_a = attr.ib(default=[-50.0, 50.0], converter=_pair)
    max_voltage_limit_v = attr.ib(default=60.0, converter=float)
    timeout_s = attr.ib(default=2.0, converter=float)
    cmd_set_current = attr.ib(default="SOUR:CURR {a:.4f}")
    cmd_set_voltage_limit = attr.ib(default="SOUR:VOLT {v:.4f}")
    cmd_output = attr.ib(default="OUTP {state}")
    cmd_meas_current = attr.ib(default="MEAS:CURR?")
    cmd_meas_voltage = attr.ib(default="MEAS:VOLT?")
    role = "pack current source"

    def set_current(self, amps, voltage_limit_v=None):
        lo, hi = self.current_range_a
        check_limit(self._what(), "current", amps, lo, hi, "A")
        if voltage_limit_v is not None:
            check_limit(self._what(), "voltage limit", voltage_limit_v, 0.0, self.max_voltage_limit_v, "V")
            self._write(self.cmd_set_voltage_limit.format(v=float(voltage_limit_v)))
        self._write(self.cmd_set_current.format(a=float(amps)))
        self._write(self.cmd_output.format(state="ON" if amps else "OFF"))

    def read_current(self):
        return float(self._query(self.cmd_meas_current))

    def read_voltage(self):
        return float(self._query(self.cmd_meas_voltage))

    def off(self):
        self._write(self.cmd_set_current.format(a=0.0))
        self._write(self.cmd_output.format(state="OFF"))

    def safe_state(self):
        try:
            self.off()
        except Exception:
            pass
