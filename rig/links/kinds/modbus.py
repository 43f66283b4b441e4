"""Link kind ``modbus``: the board's telemetry as Modbus RTU registers on a UART.

Profile section::

    link: {kind: modbus, register_map: board-modbus.yaml, baudrate: 115200, unit_id: 1}
    # reply_unit_id: 0x51   # a board that answers from another device id than it is asked at

Host side :class:`~rig.links.modbus_link.ModbusBmsLink` on a tty (``RawSerialPort`` on a
real rig, or an exported tty, ``NetworkSerialPort``, opened as an ``rfc2217://`` /
``socket://`` URL); bench side :class:`~rig.sim.modbus_slave.ModbusSlave` on a pseudo-terminal,
serving the simulated board's telemetry through the same register map. pymodbus is only
imported when a link is opened (ModbusBmsLink imports it lazily).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..base import check_command_gate, check_temperature_positions
from ..modbus_link import ModbusBmsLink
from ..registry import Endpoint, LinkKind, LinkSettings


class ModbusSettings(LinkSettings):
    """``link:`` of a Modbus RTU board. Path relative to the profile; baud rate in bit/s."""

    FILE_KEYS = ("register_map",)

    kind: Literal["modbus"]
    register_map: str | None = None
    baudrate: int = Field(115_200, gt=0, le=10_000_000, description="UART baud rate, bit/s")
    unit_id: int = Field(1, ge=0, le=247, description="the board's Modbus device id; 0 (the broadcast "
                         "address on a shared bus) is accepted for boards documented at address 0, on "
                         "their own point-to-point link")
    reply_unit_id: int | None = Field(None, ge=0, le=255, description="the device id the board answers "
                                      "from, when it is not unit_id (a non-standard board)")

    @model_validator(mode="after")
    def _files(self):
        if not self.register_map:
            raise ValueError("a Modbus link needs 'register_map'")
        return self


def open_link(profile, endpoint: Endpoint, clock):
    """Open the tty or pyserial URL ``endpoint.address`` and the Modbus link over it (LinkFault if it cannot)."""
    link = profile.link
    return ModbusBmsLink(
        name=f"Modbus RTU {endpoint.address}", port=endpoint.address,
        register_map_path=profile.resolve(link.register_map), n_cells=profile.cells, clock=clock,
        baudrate=link.baudrate, unit_id=link.unit_id, timeout_s=link.timeout_s, poll_s=link.poll_s,
        reply_unit_id=link.reply_unit_id,
    )


def check_maps(profile) -> list[str]:
    """Load the register map as the link will (no reservations: errors raise ConfigError)."""
    from ..register_map import load_register_map

    plan = load_register_map(profile.resolve(profile.link.register_map), profile.cells)
    check_command_gate(profile, plan.commands, profile.link.register_map)
    check_temperature_positions(profile, plan.n_temperatures)  # every position the profile names must be reported
    return []


def bench(profile, name: str):
    """The simulated board's Modbus RTU slave on a fresh pty (``name`` is not needed: the pty is unique)."""
    from ...sim.modbus_slave import ModbusSlave

    link = profile.link
    return ModbusSlave(profile.resolve(link.register_map), profile.cells, link.unit_id,
                       temperature_roles=getattr(profile, "temperatures", None),
                       reply_unit_id=link.reply_unit_id).start()


KIND = LinkKind(
    name="modbus", settings=ModbusSettings, link_class=ModbusBmsLink, open=open_link, bench=bench,
    check_maps=check_maps, ports=("RawSerialPort", "NetworkSerialPort"), description="Modbus RTU over a UART + register map",
)
