"""Link kind ``can``: the board's telemetry as CAN frames, described by its DBC + a signal map.

Profile section::

    link: {kind: can, dbc: board.dbc, signal_map: board-can.yaml, bitrate: 500000}

Host side :class:`~rig.links.can_link.CanBmsLink` on a python-can bus (``CANPort`` on a real
rig: interface, channel, bitrate); bench side :class:`~rig.sim.can_tx.CanTransmitter`, which
encodes the simulated board's telemetry through the same DBC and signal map onto a python-can
``virtual`` channel.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ...errors import LinkFault
from ..base import check_command_gate, check_temperature_positions
from ..can_link import CanBmsLink
from ..registry import Endpoint, LinkKind, LinkSettings


class CanSettings(LinkSettings):
    """``link:`` of a CAN board. Paths relative to the profile; bit rate in bit/s."""

    FILE_KEYS = ("dbc", "signal_map")

    kind: Literal["can"]
    dbc: str | None = None
    signal_map: str | None = None
    bitrate: int = Field(500_000, gt=0, le=1_000_000, description="CAN (arbitration) bit rate, bit/s")

    @model_validator(mode="after")
    def _files(self):
        if not (self.dbc and self.signal_map):
            raise ValueError("a CAN link needs 'dbc' and 'signal_map'")
        return self


def open_link(profile, endpoint: Endpoint, clock) -> CanBmsLink:
    """Open a python-can bus on ``endpoint`` and the link over it (LinkFault if it cannot)."""
    import can

    link = profile.link
    kwargs: dict = {}
    if endpoint.bench:
        interface = "virtual"
        kwargs["preserve_timestamps"] = True
        frame_time = None  # the bench stamps frames in rig (virtual) time
    else:
        interface = endpoint.interface or "socketcan"
        if interface != "socketcand":  # a socketcand bridge: the exporter host set the bit rate
            kwargs["bitrate"] = endpoint.speed or link.bitrate
        kwargs.update(dict(endpoint.options))  # CAN FD, socketcand host/port (CANPort.bus_options)
        frame_time = _wall_to_rig(clock)
    channel = endpoint.address
    try:
        bus = can.Bus(interface=interface, channel=channel, **kwargs)
    except (can.CanError, OSError, ValueError, ImportError) as exc:
        raise LinkFault(f"CAN {interface}:{channel}", f"cannot open the CAN interface: {exc}") from None
    return CanBmsLink(
        name=f"CAN {interface}:{channel}", bus=bus, dbc_path=profile.resolve(link.dbc),
        signal_map_path=profile.resolve(link.signal_map), n_cells=profile.cells, clock=clock,
        timeout_s=link.timeout_s, poll_s=link.poll_s, frame_time=frame_time, own_bus=True,
    )


def _wall_to_rig(clock):
    """Map a python-can wall timestamp (``time.time()``, s) to rig time on a real rig."""
    import time

    def convert(ts: float) -> float:
        return clock.now() - (time.time() - ts)

    return convert


def check_maps(profile) -> list[str]:
    """Load the DBC + signal map as the link will; return the DBC's reservations."""
    from ..signal_map import load_signal_map

    link = profile.link
    plan = load_signal_map(profile.resolve(link.signal_map), profile.resolve(link.dbc), profile.cells)
    check_command_gate(profile, plan.commands, link.signal_map)
    check_temperature_positions(profile, plan.capabilities().n_temperatures)
    return list(plan.dbc_warnings)


def bench(profile, name: str):
    """The simulated board's CAN transmitter on virtual channel ``name``, through the profile's DBC and map."""
    from ...sim.can_tx import CanTransmitter

    link = profile.link
    b = profile.bench
    return CanTransmitter(profile.resolve(link.dbc), name, profile.cells,
                          signal_map_path=profile.resolve(link.signal_map),
                          j1939_source_address=b.j1939_source_address, j1939_priority=b.j1939_priority)


KIND = LinkKind(
    name="can", settings=CanSettings, link_class=CanBmsLink, open=open_link, bench=bench,
    check_maps=check_maps, ports=("CANPort",), description="CAN: python-can bus + DBC + signal map",
)
