"""labgrid integration: our resources and drivers, registered with labgrid's factory.

A rig is a labgrid environment YAML with ``imports: [rig.labgrid]``. Importing this module
registers:

Resources (where a thing is)
- ``SimBench`` — the virtual bench: a simulated pack, chamber and reference BMS board.
- ``CANPort`` — a CAN interface for python-can (interface, channel, bitrate). labgrid has no
  CAN resource (labgrid issue #1287), so we provide one. ``channel: "@bench"`` means the
  virtual bench's board.
- ``ScpiInstrument`` / ``NiDaqDevice`` / ``ModbusChamberPort`` — real instruments (see
  ``rig/drivers/``), each with model, serial and calibration due date for the report.
- ``BS1200Bus`` / ``PickeringLxi`` — vendor cell emulators (several units as one N-channel
  emulator), defined with their drivers in :mod:`rig.drivers.bs1200` and
  :mod:`rig.drivers.pickering`.
  Vendor chamber controllers register their own resources: ``WatlowF4Port``,
  ``EZZonePort``, ``EspecPort`` and ``WatlowF4TPort`` (:mod:`rig.drivers.watlow_f4`, ``watlow_ezzone``,
  ``espec``, ``watlow_f4t``).
- ``RunContext`` — not written in a rig file: the run's context (board profile, seed,
  defects, clock), added by :func:`rig.build.build_rig`; drivers find it with
  :func:`rig.context.context_of`.
- labgrid's own ``RawSerialPort`` carries the UART link (``port: "@bench"`` on the bench).
- ``BenchPort`` — the virtual bench's board end of the DUT link, whatever the link kind
  (used with ``BenchLinkDriver``; see :mod:`rig.links.registry`).

Drivers (how to talk to it) implement the protocols in :mod:`rig.protocols`; the sim drivers
are in :mod:`rig.drivers.sim`, the links in :mod:`rig.drivers.links`, real instruments in
the other modules of :mod:`rig.drivers`. Every module of that package is imported (and so
registered) by :func:`register_drivers`; a driver outside the package is named in the rig
file's ``imports:`` as labgrid allows.
"""

from __future__ import annotations

import attr
from labgrid.factory import target_factory
from labgrid.resource.common import Resource

from .context import RunContext
from .resources import CalibratedInstrument, json_dict

# The run context, added by rig.build.build_rig to the target before its drivers are created.
target_factory.reg_resource(RunContext)


def _flag(value) -> bool:
    """A boolean parameter, also as the text it may cross labgrid's coordinator as."""
    if isinstance(value, str):
        if value.strip().lower() not in ("true", "false", "1", "0", "yes", "no", ""):
            raise ValueError(f"not a boolean: {value!r}")
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _opt_float(value):
    return None if value is None else float(value)


@target_factory.reg_resource
@attr.s(eq=False)
class SimBench(Resource):
    """The virtual bench (rig.sim.World): everything a real rig has, simulated in virtual time.

    Args:
        ambient_c (float): lab ambient and chamber start temperature, °C
        fine_step_s (float|None): force a fixed maximum step (reference runs), s
    """

    ambient_c = attr.ib(default=25.0, converter=float)
    fine_step_s = attr.ib(default=None, converter=_opt_float)


@target_factory.reg_resource
@attr.s(eq=False)
class CANPort(Resource):
    """A CAN interface reachable through python-can.

    Args:
        interface (str): python-can interface name (socketcan, pcan, kvaser, vector, virtual...)
        channel (str): interface channel (``can0``, ``PCAN_USBBUS1``, or ``@bench``)
        bitrate (int): bit/s; the profile's bitrate is used when 0
        fd (bool): CAN FD (python-can ``fd=True``)
        data_bitrate (int): CAN FD data-phase bit rate, bit/s (0: the interface's default)
        host, port (str, int): with ``interface: socketcand``, the socketcand server (the
            exporter's CAN bridge, :mod:`rig.can_bridge`) serving ``channel``
    """

    interface = attr.ib(default="socketcan", validator=attr.validators.instance_of(str))
    channel = attr.ib(default="can0", converter=str)
    bitrate = attr.ib(default=0, converter=int)
    fd = attr.ib(default=False, converter=_flag)
    data_bitrate = attr.ib(default=0, converter=int)
    host = attr.ib(default="", converter=str)
    port = attr.ib(default=0, converter=int)

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        if self.interface == "socketcand" and not (self.host and self.port):
            raise ValueError("interface socketcand needs the bridge's host and port")
        if self.data_bitrate and not self.fd:
            raise ValueError("data_bitrate is a CAN FD setting: set fd: true")

    def bus_options(self) -> dict:
        """python-can ``Bus`` arguments beyond interface, channel and bitrate."""
        if self.interface == "socketcand":
            return {"host": self.host, "port": self.port}
        options = {"fd": True} if self.fd else {}
        if self.data_bitrate:
            options["data_bitrate"] = self.data_bitrate
        return options


@target_factory.reg_resource
@attr.s(eq=False)
class BenchPort(Resource):
    """The virtual bench's board end of the DUT link, for every link kind (the profile's
    ``link.kind`` decides what it is: a virtual CAN channel, a pty ...). No arguments."""


@target_factory.reg_resource
@attr.s(eq=False)
class ScpiInstrument(CalibratedInstrument):
    """A SCPI instrument reached through pyvisa (cell emulator, pack supply/load).

    Args:
        address (str): VISA resource string, e.g. ``TCPIP::192.0.2.10::INSTR``
        visa_library (str): pyvisa backend, ``@py`` for pyvisa-py
    """

    address = attr.ib(default="", converter=str)
    visa_library = attr.ib(default="@py", converter=str)


@target_factory.reg_resource
@attr.s(eq=False)
class NiDaqDevice(CalibratedInstrument):
    """An NI-DAQmx device (reference cell voltages, digital inputs, thermocouples).

    Args:
        device (str): NI MAX device name, e.g. ``Dev1``
        voltage_channels (str): physical channels of the cell voltages, e.g. ``Dev1/ai0:15``
        digital_lines (dict): line name -> physical line, e.g. {charge_enable: Dev1/port0/line0}
        thermocouples (dict): name -> physical channel

    The mappings may also be JSON text: so they arrive from labgrid's coordinator.
    """

    device = attr.ib(default="Dev1", converter=str)
    voltage_channels = attr.ib(default="", converter=str)
    digital_lines = attr.ib(factory=dict, converter=json_dict)
    thermocouples = attr.ib(factory=dict, converter=json_dict)


@target_factory.reg_resource
@attr.s(eq=False)
class ModbusChamberPort(CalibratedInstrument):
    """A climatic chamber controller speaking Modbus (TCP host:port or an RTU serial port)."""

    host = attr.ib(default="", converter=str)
    port = attr.ib(default=502, converter=int)
    serial_port = attr.ib(default="", converter=str)
    unit_id = attr.ib(default=1, converter=int)
    setpoint_register = attr.ib(default=300, converter=int)
    pv_register = attr.ib(default=100, converter=int)
    scale = attr.ib(default=10.0, converter=float)


def register_drivers() -> list[str]:
    """Import every driver module of :mod:`rig.drivers` (their ``@reg_driver`` decorators
    register them with labgrid's factory): a new driver is one module there, nothing to list.
    Modules whose name starts with ``_`` are shared bases, imported by the drivers that use
    them. Vendor libraries are imported lazily by the drivers, so this needs none of them.
    Returns the module names, in import order."""
    import importlib
    import pkgutil

    from . import drivers

    names = sorted(m.name for m in pkgutil.iter_modules(drivers.__path__) if not m.name.startswith("_"))
    for name in names:
        importlib.import_module(f"{drivers.__name__}.{name}")
    return names


DRIVER_MODULES = register_drivers()
"""The driver modules registered on import (``rig.drivers.<name>``)."""
