"""Watlow F4T chamber controller over Modbus TCP: 32-bit float registers, via pymodbus.

The F4T's Python library, Espec's ``chamberconnectlibrary`` (``watlowf4t.py``), is Python 2
code in every release on the package index, so there is no vendor library to install: the
driver speaks the F4T's documented Modbus map itself with pymodbus (already a dependency of
bmsrig), using the registers and encodings that library uses:

- holding registers, Modbus TCP port 502 (or RTU), controller address 1 by default;
- a value is an IEEE 754 float in two registers, **low word first**;
- control loop N (1..4) at an offset of 160 registers per loop:
  constant set point 2782 (read/write), current (ramping) set point 2810 (read), process
  value (air) 2820 (read), set-point range minimum 2774 / maximum 2776 (read), control
  mode 2730 (62 = off, 10 = auto, 54 = manual).

A set point is written to the constant set point (and read back). When the loop's control
mode is off, the driver switches it to auto (what the library's ``const_start`` does for a
loop in standby). The controller's own set-point range (2774/2776) is read on activation:
a rig limit outside it is a RigFault naming both, before anything is written.

Ramp: the F4T ramps inside profiles, which this driver does not program: a requested ramp is
checked against the hard limit and logged as not enforced. Identity: from the rig
description (``WatlowF4TPort``); the controller's set-point range is added to ``info()``.
Temperatures are °C: the controller must display °C (the registers carry display units).
"""

from __future__ import annotations

import math
import struct

import attr
from labgrid.factory import target_factory

from ..errors import RigFault
from ..resources import CalibratedInstrument
from ._chamber_base import VendorChamberDriver, rated_chamber

LOOP_STRIDE = 160
REG_MODE, REG_RANGE_MIN, REG_RANGE_MAX, REG_SP, REG_SP_NOW, REG_PV = 2730, 2774, 2776, 2782, 2810, 2820
MODE_OFF, MODE_AUTO = 62, 10


def to_registers(value: float) -> list[int]:
    """A float as the F4T's two registers, low word first."""
    lo, hi = struct.unpack("<HH", struct.pack("<f", float(value)))
    return [lo, hi]


def from_registers(regs) -> float:
    """The F4T's two registers (low word first) as a float."""
    return struct.unpack("<f", struct.pack("<HH", int(regs[0]), int(regs[1])))[0]


@target_factory.reg_resource
@attr.s(eq=False)
class WatlowF4TPort(CalibratedInstrument):
    """A Watlow F4T on Modbus TCP.

    Args:
        host (str): IP address of the F4T
        port (int): Modbus TCP port (502)
        address (int): Modbus address of the controller (1)
        loop (int): control loop of the chamber air temperature (1..4)
        timeout_s (float): response timeout, s
    """

    host = attr.ib(default="", converter=str)
    port = attr.ib(default=502, converter=int)
    address = attr.ib(default=1, converter=int)
    loop = attr.ib(default=1, converter=int, validator=attr.validators.in_([1, 2, 3, 4]))
    timeout_s = attr.ib(default=3.0, converter=float)


@target_factory.reg_driver
@attr.s(eq=False)
class WatlowF4TChamberDriver(VendorChamberDriver):
    """Thermal chamber on a Watlow F4T (Modbus TCP, float registers). Limits: see :class:`VendorChamberDriver`."""

    bindings = {"res": "WatlowF4TPort"}
    vendor = "Watlow F4T"
    RATED = rated_chamber(-273.0, 1000.0)  # a float register: the controller's own range is checked on activation

    def _where(self):
        return f"{self.res.host}:{self.res.port}, Modbus address {self.res.address}, loop {self.res.loop}"

    def _reg(self, base: int) -> int:
        return base + (self.res.loop - 1) * LOOP_STRIDE

    def _open(self):
        from pymodbus.client import ModbusTcpClient

        if not self.res.host:
            raise OSError("the resource has no host")
        client = ModbusTcpClient(self.res.host, port=self.res.port, timeout=self.res.timeout_s, retries=1)
        if not client.connect():
            client.close()
            raise OSError(f"no Modbus TCP connection to {self.res.host}:{self.res.port}")
        return client

    def _close_link(self, lib):
        lib.close()

    def _check(self, rr, what):
        if rr.isError():
            raise OSError(f"{what}: {rr}")
        return rr

    def _read_float(self, base: int, what: str) -> float:
        rr = self._check(self.lib.read_holding_registers(self._reg(base), count=2, device_id=self.res.address), what)
        value = from_registers(rr.registers)
        if not math.isfinite(value):
            raise OSError(f"{what}: not a number ({rr.registers})")
        return value

    def _identity(self):
        lo = self._read_float(REG_RANGE_MIN, "set-point range minimum")
        hi = self._read_float(REG_RANGE_MAX, "set-point range maximum")
        mine = self.limits["temperature_range_c"]
        if mine.lo < lo - 1e-6 or mine.hi > hi + 1e-6:
            raise RigFault(self._what(), f"the rig's set-point limit [{mine.lo:g}, {mine.hi:g}] °C is outside the "
                                         f"controller's own range [{lo:g}, {hi:g}] °C")
        return {"setpoint_range_c": f"[{lo:g}, {hi:g}]"}

    def _write_setpoint(self, celsius):
        rr = self.lib.read_holding_registers(self._reg(REG_MODE), count=1, device_id=self.res.address)
        if self._check(rr, "control mode read").registers[0] == MODE_OFF:
            self._check(self.lib.write_register(self._reg(REG_MODE), MODE_AUTO, device_id=self.res.address),
                        "control mode write")
        self._check(self.lib.write_registers(self._reg(REG_SP), to_registers(celsius), device_id=self.res.address),
                    "set point write")
        back = self._read_float(REG_SP, "set point read-back")
        if abs(back - celsius) > 0.01:
            raise OSError(f"set point read back as {back:g} °C after writing {celsius:g} °C")

    def _read_pv(self):
        return self._read_float(REG_PV, "process value read")

    def _read_sp(self):
        return self._read_float(REG_SP, "set point read")
