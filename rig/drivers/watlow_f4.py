"""Watlow Series F4 chamber controller over Modbus RTU, via the vendor library ``watlow-f4``.

``pip install 'bmsrig[watlow-f4]'`` installs ``watlow-f4`` (which runs ``minimalmodbus`` on
pyserial). The library is imported on activation only.

What the library does, and so what this driver does through it:

- process value: holding register 100, signed, °C × 10 (``WatlowF4.temperature``);
- set point: holding register 300, signed, °C × 10 (``WatlowF4.temperature_setpoint``);
  the library writes it (function 16), sleeps 0.1 s of wall time and reads it back.
- ramp rate: the library has none. ``ramp_register`` (a holding register, °C/min × 10)
  is written through the library's ``minimalmodbus.Instrument`` when the rig description
  names one; otherwise a requested ramp is checked against the hard limit and logged as
  not enforced (the F4 ramps in profiles, which this driver does not program).
- identity: the library reads none, so model, serial and calibration date come from the
  rig description (``WatlowF4Port``).

The hard limits are checked before the library is called; the library's own ``temp_limit``
is set to the same range as a second fence. Set points are sent in 0.1 °C steps (the
register's resolution), so the library's read-back comparison holds.
"""

from __future__ import annotations

import attr
from labgrid.factory import target_factory

from ..resources import CalibratedInstrument
from ..errors import RigFault
from ._chamber_base import VendorChamberDriver, rated_chamber, vendor_import

_SENSOR_BREAK_C = (-3276.8, 3276.7)  # 0x8000 / 0x7FFF read as signed 0.1 °C


def _opt_int(v):
    return None if v is None or v == "" else int(v)


@target_factory.reg_resource
@attr.s(eq=False)
class WatlowF4Port(CalibratedInstrument):
    """A Watlow F4 on an RS-232/RS-485 serial port.

    Args:
        port (str): serial device, e.g. ``/dev/ttyUSB0``
        address (int): Modbus address of the controller (the F4's default is 1)
        timeout_s (float): response timeout, s (the library's default is 0.5)
    """

    port = attr.ib(default="", converter=str)
    address = attr.ib(default=1, converter=int)
    timeout_s = attr.ib(default=0.5, converter=float)


@target_factory.reg_driver
@attr.s(eq=False)
class WatlowF4ChamberDriver(VendorChamberDriver):
    """Thermal chamber on a Watlow F4 (``watlow-f4``). Limits: see :class:`VendorChamberDriver`.

    Args:
        ramp_register (int|None): holding register of a ramp rate (°C/min × 10), None = none
    """

    bindings = {"res": "WatlowF4Port"}
    ramp_register = attr.ib(default=None, converter=_opt_int)
    vendor = "Watlow F4"
    RATED = rated_chamber(-3276.7, 3276.7)  # signed 16-bit register, 0.1 °C
    FIXED_ALSO = ("ramp_register",)

    def _where(self):
        return f"{self.res.port}, Modbus address {self.res.address}"

    def _open(self):
        mod = vendor_import("watlow_f4", "watlow-f4", "watlow-f4", self._what())
        lib = mod.WatlowF4(self.res.port, addr=self.res.address, temp_limit=self.temperature_range_c)
        lib.instrument.serial.timeout = self.res.timeout_s
        return lib

    def _close_link(self, lib):
        lib.instrument.serial.close()

    def _write_setpoint(self, celsius):
        self.lib.temperature_setpoint = round(celsius * 10) / 10  # the register's 0.1 °C step

    def _write_ramp(self, c_per_min):
        if self.ramp_register is None:
            return False
        self.lib.instrument.write_register(self.ramp_register, round(c_per_min * 10), 0, signed=True)
        return True

    def _read_pv(self):
        pv = float(self.lib.temperature)
        if pv in _SENSOR_BREAK_C:
            raise RigFault(self._what(), f"process value reads {pv:g} °C: sensor break or invalid value")
        return pv

    def _read_sp(self):
        return float(self.lib.temperature_setpoint)
