"""Climatic chamber controllers that speak Modbus (TCP or RTU), via pymodbus.

Many chamber controllers expose the set point and process value as holding/input
registers scaled by 10 (0.1 °C). Register addresses and scale are resource attributes.
Waiting for stability uses the rig clock.
"""

from __future__ import annotations

import attr
from labgrid.driver.common import Driver
from labgrid.factory import target_factory

from ..context import context_of
from ..errors import RigFault
from ..protocols import InstrumentInfo, ThermalChamber
from ..safety import check_limit


@target_factory.reg_driver
@attr.s(eq=False)
class ModbusChamberDriver(Driver, ThermalChamber):
    bindings = {"res": "ModbusChamberPort"}
    temperature_range_c = attr.ib(default=[-40.0, 90.0], converter=lambda v: tuple(float(x) for x in v))
    max_ramp_c_per_min = attr.ib(default=5.0, converter=float)
    ambient_c = attr.ib(default=25.0, converter=float)
    role = "thermal chamber"

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.client = None
        self._sp = self.ambient_c

    def _what(self):
        return f"chamber {self.res.model or ''} {self.res.host or self.res.serial_port}".strip()

    def on_activate(self):
        from pymodbus.client import ModbusSerialClient, ModbusTcpClient

        if self.res.host:
            self.client = ModbusTcpClient(self.res.host, port=self.res.port)
        else:
            self.client = ModbusSerialClient(self.res.serial_port)
        if not self.client.connect():
            raise RigFault(self._what(), "cannot connect")

    def on_deactivate(self):
        if self.client is not None:
            self.client.close()
            self.client = None

    def info(self):
        return InstrumentInfo(role=self.role, model=self.res.model, serial=self.res.serial,
                              calibration_due=self.res.calibration_due)

    def set_temperature(self, celsius, ramp_c_per_min=None):
        lo, hi = self.temperature_range_c
        check_limit(self._what(), "set point", celsius, lo, hi, "°C")
        if ramp_c_per_min is not None:
            check_limit(self._what(), "ramp rate", ramp_c_per_min, 0.0, self.max_ramp_c_per_min, "°C/min")
        raw = int(round(float(celsius) * self.res.scale)) & 0xFFFF
        rr = self.client.write_register(self.res.setpoint_register, raw, device_id=self.res.unit_id)
        if rr.isError():
            raise RigFault(self._what(), f"set point write failed: {rr}")
        self._sp = float(celsius)

    def read_temperature(self):
        rr = self.client.read_input_registers(self.res.pv_register, count=1, device_id=self.res.unit_id)
        if rr.isError():
            raise RigFault(self._what(), f"process value read failed: {rr}")
        raw = rr.registers[0]
        raw = raw - 0x10000 if raw & 0x8000 else raw
        return raw / self.res.scale

    def wait_stable(self, tolerance_c=0.5, dwell_s=60.0, timeout_s=7200.0):
        clock = context_of(self.target).clock
        start, since = clock.now(), None
        while True:
            now = clock.now()
            if abs(self.read_temperature() - self._sp) <= tolerance_c:
                since = now if since is None else since
                if now - since >= dwell_s:
                    return now - start
            else:
                since = None
            if now - start >= timeout_s:
                raise RigFault(self._what(), f"not stable within ±{tolerance_c} °C of {self._sp:g} °C after {timeout_s:g} s")
            clock.sleep(5.0)

    def safe_state(self):
        try:
            self.set_temperature(self.ambient_c)
        except Exception:
            pass
