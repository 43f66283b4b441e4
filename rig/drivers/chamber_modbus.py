"""Climatic chamber controllers that speak Modbus (TCP or RTU), via pymodbus.

Many chamber controllers expose the set point as a holding register and the process value
as an input register, both signed 16-bit and scaled by 10 (0.1 °C). Register addresses,
scale and device id are resource attributes (``ModbusChamberPort``); an optional ramp-rate
holding register (°C/min, same scale) is a driver attribute. Hard limits are checked before
anything is written. A controller reporting ``0x8000``/``0x7FFF`` (the usual sensor-break
codes) is a fault, not a temperature. Waiting for stability uses the rig clock.
pymodbus is imported lazily on activation.
"""

from __future__ import annotations

import logging

import attr
from labgrid.driver.common import Driver
from labgrid.factory import target_factory

from ..clock import wait_stable
from ..context import context_of
from ..errors import RigFault
from ..protocols import InstrumentInfo, ThermalChamber
from ..safety import FixedLimits, Limit, check_wait, limit_pair, limit_scalar, safe_value

_SENSOR_BREAK = (0x8000, 0x7FFF)
log = logging.getLogger(__name__)


def _opt_int(v):
    return None if v is None or v == "" else int(v)


@target_factory.reg_driver
@attr.s(eq=False)
class ModbusChamberDriver(FixedLimits, Driver, ThermalChamber):
    """Thermal chamber over Modbus.

    Args:
        temperature_range_c ([lo, hi]): hard limit of the set point, °C (rated −100…200 °C)
        max_ramp_c_per_min (float): hard limit of a requested ramp rate, °C/min (rated 30)
        ambient_c (float): the set point of the safe state, °C (inside the limit)
        ramp_register (int|None): holding register of the ramp rate (°C/min × scale);
            None when the controller has none (a requested ramp is then not enforced)
        poll_s (float): rig-clock interval between PV reads in ``wait_stable``, s
        timeout_s (float): Modbus response timeout, s
        retries (int): Modbus retries per request
    """

    bindings = {"res": "ModbusChamberPort"}
    temperature_range_c = attr.ib(default=[-40.0, 90.0], converter=lambda v: limit_pair(v, "temperature_range_c"))
    max_ramp_c_per_min = attr.ib(default=5.0, converter=lambda v: limit_scalar(v, "max_ramp_c_per_min"))
    ambient_c = attr.ib(default=25.0, converter=lambda v: safe_value(v, "ambient_c"))
    ramp_register = attr.ib(default=None, converter=_opt_int)
    poll_s = attr.ib(default=5.0, converter=float)
    timeout_s = attr.ib(default=2.0, converter=float)
    retries = attr.ib(default=2, converter=int)
    role = "thermal chamber"
    RATED = {"temperature_range_c": Limit("set point", -100.0, 200.0, "°C"),
             "max_ramp_c_per_min": Limit("ramp rate", 0.0, 30.0, "°C/min")}
    SAFE_VALUES = {"ambient_c": "temperature_range_c"}

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self._fix_limits({"temperature_range_c": Limit("set point", *self.temperature_range_c, "°C"),
                          "max_ramp_c_per_min": Limit("ramp rate", 0.0, self.max_ramp_c_per_min, "°C/min")},
                         ("ambient_c", "ramp_register"))
        if not self.poll_s > 0:
            raise ValueError(f"{self.role}: poll_s must be > 0")
        self.client = None
        self._sp = self.ambient_c

    def _what(self):
        where = f"{self.res.host}:{self.res.port}" if self.res.host else self.res.serial_port
        where = ", ".join(x for x in (self.res.model, where, f"device {self.res.unit_id}") if x)
        name = f" '{self.res.name}'" if getattr(self.res, "name", None) else ""
        return f"{self.role}{name} ({where})"

    # ------------------------------------------------------------------ lifecycle

    def on_activate(self):
        from pymodbus.client import ModbusSerialClient, ModbusTcpClient

        if self.res.host:
            self.client = ModbusTcpClient(self.res.host, port=self.res.port, timeout=self.timeout_s, retries=self.retries)
        elif self.res.serial_port:
            self.client = ModbusSerialClient(self.res.serial_port, timeout=self.timeout_s, retries=self.retries)
        else:
            raise RigFault(self._what(), "the resource has neither host nor serial_port")
        try:
            connected = self.client.connect()
        except Exception as exc:
            connected, why = False, f"{type(exc).__name__}: {exc}"
        else:
            why = "connection refused or no route"
        if not connected:
            self._close()
            raise RigFault(self._what(), f"cannot connect: {why}")
        try:
            self._sp = self.read_setpoint()  # what the chamber is really heading for
        except RigFault:
            self._close()
            raise

    def on_deactivate(self):
        self._close()

    def _close(self):
        client, self.client = self.client, None
        if client is not None:
            try:
                client.close()
            except Exception:
                pass

    def info(self):
        return InstrumentInfo(role=self.role, model=self.res.model, serial=self.res.serial,
                              calibration_due=self.res.calibration_due,
                              notes=f"{self.res.host}:{self.res.port}" if self.res.host else self.res.serial_port)

    # ------------------------------------------------------------------ Modbus I/O

    def _request(self, what: str, fn, *args, **kwargs):
        if self.client is None:
            raise RigFault(self._what(), f"{what}: not connected (the driver is not active)")
        try:
            rr = fn(*args, device_id=self.res.unit_id, **kwargs)
        except Exception as exc:  # pymodbus raises ModbusException/ConnectionException on I/O failures
            raise RigFault(self._what(), f"{what} failed: {type(exc).__name__}: {exc}") from None
        if rr.isError():
            raise RigFault(self._what(), f"{what} failed: {rr}")
        return rr

    def _encode(self, value: float) -> int:
        raw = int(round(float(value) * self.res.scale))
        if not -0x8000 < raw < 0x7FFF:
            raise RigFault(self._what(), f"{value:g} does not fit a scaled 16-bit register")
        return raw & 0xFFFF

    def _decode(self, raw: int, what: str) -> float:
        if raw in _SENSOR_BREAK:
            raise RigFault(self._what(), f"{what} reads 0x{raw:04X}: sensor break or invalid value")
        return (raw - 0x10000 if raw & 0x8000 else raw) / self.res.scale

    def read_setpoint(self) -> float:
        """The set point the controller holds, °C."""
        rr = self._request(f"set point read (holding register {self.res.setpoint_register})",
                           self.client.read_holding_registers, self.res.setpoint_register, count=1)
        return self._decode(rr.registers[0], "set point")

    # ------------------------------------------------------------------ protocol

    def set_temperature(self, celsius, ramp_c_per_min=None):
        celsius = self.limits["temperature_range_c"].check(self._what(), celsius)
        if ramp_c_per_min is not None:
            ramp_c_per_min = self.limits["max_ramp_c_per_min"].check(self._what(), ramp_c_per_min)
        if ramp_c_per_min is not None:
            if self.ramp_register is None:
                log.warning("%s: no ramp_register configured; the requested ramp of %g °C/min is not enforced",
                            self._what(), ramp_c_per_min)
            else:
                self._request(f"ramp write (holding register {self.ramp_register})",
                              self.client.write_register, self.ramp_register, self._encode(ramp_c_per_min))
        self._request(f"set point write (holding register {self.res.setpoint_register})",
                      self.client.write_register, self.res.setpoint_register, self._encode(celsius))
        self._sp = float(celsius)

    def read_temperature(self):
        rr = self._request(f"process value read (input register {self.res.pv_register})",
                           self.client.read_input_registers, self.res.pv_register, count=1)
        return self._decode(rr.registers[0], "process value")

    def wait_stable(self, tolerance_c=0.5, dwell_s=60.0, timeout_s=7200.0):
        check_wait(self._what(), tolerance_c, dwell_s, timeout_s)
        return wait_stable(
            context_of(self.target).clock, self.read_temperature, self._sp, tolerance_c, dwell_s, timeout_s, self.poll_s,
            lambda pv: RigFault(self._what(), f"not stable within ±{tolerance_c:g} °C of {self._sp:g} °C after "
                                              f"{timeout_s:g} s (process value {pv:g} °C)"),
        )

    def safe_state(self):
        """Set point to ambient; never raises."""
        try:
            self.set_temperature(self.ambient_c)
        except Exception:
            pass
