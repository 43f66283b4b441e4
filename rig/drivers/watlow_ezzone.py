"""Watlow EZ-Zone PM controller on Standard Bus, via the vendor library ``watlow``.

``pip install 'bmsrig[watlow]'`` installs ``watlow`` (NuMat Technologies; pyserial, crcmod).
The library is imported on activation only.

The package has two classes. ``watlow.TemperatureController`` talks to one EZ-Zone PM over
its Standard Bus port (RS-485 at 38 400 bit/s; BACnet MS/TP framing, zone address 0x10),
synchronously: it reads parameter 4001 (process value) and 7001 (closed-loop set point) and
writes 7001, all IEEE floats in °F, converted to °C by the library. That is what this driver
uses. ``watlow.Gateway`` talks Modbus TCP to an EZ-Zone RUI/gateway with asyncio and needs
pymodbus < 3.12 (it passes ``count`` positionally); it does not run with this project's
pymodbus and is not used.

Limits of the Standard Bus path, from the library's code:

- it treats any reading below 0 °C or above 250 °C as a garbled frame (retries, then
  OSError), so ``temperature_range_c`` must lie inside [0, 250] °C;
- it reads no identity and no ramp rate: model, serial and calibration date come from the
  rig description (``EZZonePort``); a requested ramp is checked against the hard limit and
  logged as not enforced;
- a set point is echoed by the controller and compared to 0.01 °C; set points are sent in
  0.1 °C steps;
- a controller that does not answer costs three reads of ``timeout_s`` before the fault;
  the library then closes its port for good, so the driver reopens it on the next command.
"""

from __future__ import annotations

import attr
from labgrid.factory import target_factory

from ..resources import CalibratedInstrument
from ._chamber_base import VendorChamberDriver, rated_chamber, vendor_import


@target_factory.reg_resource
@attr.s(eq=False)
class EZZonePort(CalibratedInstrument):
    """A Watlow EZ-Zone PM on its Standard Bus port (a USB-RS485 adapter).

    Args:
        port (str): serial device, e.g. ``/dev/ttyUSB0`` (38 400 bit/s, set by the library)
        timeout_s (float): response timeout per try, s
    """

    port = attr.ib(default="", converter=str)
    timeout_s = attr.ib(default=0.5, converter=float)


@target_factory.reg_driver
@attr.s(eq=False)
class EZZoneChamberDriver(VendorChamberDriver):
    """Thermal chamber on a Watlow EZ-Zone PM (``watlow``). Limits: see :class:`VendorChamberDriver`."""

    bindings = {"res": "EZZonePort"}
    vendor = "Watlow EZ-Zone"
    RATED = rated_chamber(0.0, 250.0)  # the library drops readings outside 0..250 °C

    def _where(self):
        return f"{self.res.port}, Standard Bus"

    def _open(self):
        mod = vendor_import("watlow", "watlow", "watlow", self._what())
        return mod.TemperatureController(self.res.port, timeout=self.res.timeout_s)

    def _close_link(self, lib):
        lib.close()

    def _port(self):
        # after three failed tries the library closes its port and never reopens it
        # (TemperatureController.open() returns a new port without keeping it): reopen here
        if not self.lib.connection.is_open:
            self.lib.connection = self.lib.open()
        return self.lib

    def _write_setpoint(self, celsius):
        self._port().set(round(celsius * 10) / 10)

    def _read_pv(self):
        return self._get("actual")

    def _read_sp(self):
        return self._get("setpoint")

    def _get(self, key):
        # the library reads PV and SP together (two Standard Bus requests)
        value = self._port().get()[key]
        if value is None:
            raise OSError(f"no {key} in the controller's answer")
        return float(value)
