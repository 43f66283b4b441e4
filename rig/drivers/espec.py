"""Espec chambers with a P-300 or SCP-220 controller: the Espec ASCII command set over TCP or serial.

Espec's own Python library, ``chamberconnectlibrary`` (Espec North America), is Python 2
code in every release on the package index (2.2.5 included: ``print`` statements, implicit
relative imports, ``str`` written to sockets); it does not import on Python 3. This driver
therefore speaks the small subset of the controller's command set it needs itself, with the
commands and reply formats of that library's ``p300.py``/``especinteract.py``:

- ``TEMP?`` -> ``PV,SP,upper,lower`` (°C); ``TEMP, S<sp>`` sets the set point (0.1 °C);
- ``MODE?`` -> ``OFF|STANDBY|CONSTANT|RUN...``; ``MODE,CONSTANT`` runs at the set point;
- ``ROM?`` -> firmware version; ``TYPE?`` -> ``<sensor>[,<wet sensor>],<controller>,<max °C>``;
- every command ends with CR LF; an error answer starts with ``NA:``.

The TCP port of the controller's serial-to-Ethernet forwarder is 10001 by default; on RS-232/485
the link is 9600 8N1 (pyserial, provided by labgrid's pyserial-labgrid). Nothing to install.
The Watlow F4T, the other half of ``chamberconnectlibrary``, is :mod:`rig.drivers.watlow_f4t`.

Ramp: the P-300 ramps only inside programs, so a requested ramp is checked against the hard
limit and logged as not enforced. A set point outside the chamber's own range is answered
``NA:DATA OUT OF RANGE``, a RigFault; the rig's hard limits are checked before anything is sent.
"""

from __future__ import annotations

import socket

import attr
from labgrid.factory import target_factory

from ..resources import CalibratedInstrument
from ._chamber_base import VendorChamberDriver, rated_chamber

_RUNNING = ("CONSTANT", "RUN")


@target_factory.reg_resource
@attr.s(eq=False)
class EspecPort(CalibratedInstrument):
    """An Espec P-300/SCP-220 controller: ``host`` (TCP) or ``serial_port`` (RS-232/485).

    Args:
        host (str): IP address of the controller's TCP forwarder ("" = use the serial port)
        port (int): its TCP port
        serial_port (str): serial device, e.g. ``/dev/ttyUSB0``
        baudrate (int): serial speed, bit/s
        address (int|None): RS-485 address; None on RS-232 and TCP
        timeout_s (float): reply timeout, s
    """

    host = attr.ib(default="", converter=str)
    port = attr.ib(default=10001, converter=int)
    serial_port = attr.ib(default="", converter=str)
    baudrate = attr.ib(default=9600, converter=int)
    address = attr.ib(default=None, converter=lambda v: None if v in (None, "") else int(v))
    timeout_s = attr.ib(default=3.0, converter=float)


class EspecLink:
    """One request, one CR LF terminated reply, over a socket or a pyserial port."""

    def __init__(self, res: EspecPort):
        self.res = res
        if res.host:
            self._sock = socket.create_connection((res.host, res.port), timeout=res.timeout_s)
            self._serial = None
        elif res.serial_port:
            import serial

            self._sock = None
            self._serial = serial.Serial(res.serial_port, res.baudrate, timeout=res.timeout_s)
        else:
            raise OSError("the resource has neither host nor serial_port")

    def close(self):
        (self._sock or self._serial).close()

    def interact(self, command: str) -> str:
        line = command if self.res.address is None or self._sock else f"{self.res.address},{command}"
        data = line.encode("ascii") + b"\r\n"
        if self._sock is not None:
            self._sock.sendall(data)
        else:
            self._serial.write(data)
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = self._sock.recv(256) if self._sock is not None else self._serial.read(1)
            if not chunk:
                raise TimeoutError(f"no reply to {command!r} within {self.res.timeout_s:g} s")
            reply += chunk
        text = reply[:-2].decode("ascii", "replace")
        if text.startswith("NA:"):
            raise OSError(f"controller refused {command!r}: {text[3:]}")
        return text


@target_factory.reg_driver
@attr.s(eq=False)
class EspecChamberDriver(VendorChamberDriver):
    """Thermal chamber on an Espec P-300/SCP-220. Limits: see :class:`VendorChamberDriver`."""

    bindings = {"res": "EspecPort"}
    vendor = "Espec P-300/SCP-220"
    RATED = rated_chamber(-999.9, 999.9)  # the command's S%0.1f field

    def _where(self):
        return f"{self.res.host}:{self.res.port}" if self.res.host else self.res.serial_port

    def _open(self):
        return EspecLink(self.res)

    def _close_link(self, lib):
        lib.close()

    def _temp(self) -> list[float]:
        fields = self.lib.interact("TEMP?").split(",")
        if len(fields) < 2:
            raise OSError(f"TEMP? answered {','.join(fields)!r}")
        return [float(x) for x in fields]

    def _read_pv(self):
        return self._temp()[0]

    def _read_sp(self):
        return self._temp()[1]

    def _write_setpoint(self, celsius):
        self.lib.interact(f"TEMP, S{celsius:0.1f}")
        if not self.lib.interact("MODE?").startswith(_RUNNING):
            self.lib.interact("MODE,CONSTANT")

    def _identity(self):
        rom = self.lib.interact("ROM?")
        kind = self.lib.interact("TYPE?").split(",")
        ident = {"firmware": rom, "model": f"Espec {kind[-2]}" if len(kind) >= 3 else "Espec"}
        if len(kind) >= 3:
            ident["max_temperature_c"] = float(kind[-1])
        return ident
