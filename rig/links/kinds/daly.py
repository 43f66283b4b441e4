"""Link kind ``daly``: the Daly BMS UART protocol (13-byte ``A5`` frames), polled.

Profile section::

    link:
      kind: daly
      baudrate: 9600              # bit/s, 8N1
      temperature_count: 2        # sensors the board reports (0x96; 0x94 says how many)
      data_ids: [0x90, 0x93, 0x95, 0x96, 0x97, 0x98]   # asked on every poll (0x95 required)
      flags: {hvc: [1], lvc: [3], ot: [9, 13], ut: [11, 15]}   # 0x98 failure bits per flag
      current_positive: charge    # which direction the board sends as positive current
      address: 0x40               # host address of the requests (0x80 on some firmware)
      unreported: []              # quantities the board's firmware leaves empty (not verified)
      response_timeout_s: 0.5     # wall-clock wait for one reply, s
      retries: 2
      poll_s: 0.25
      timeout_s: 2.0

Protocol: :mod:`rig.links.daly_protocol` (sources cited there). Host side
:class:`~rig.links.daly_link.DalyBmsLink` on a tty (``RawSerialPort``, ``NetworkSerialPort``);
bench side :class:`~rig.sim.daly_slave.DalySlave` on a pty. The protocol carries no serial
number or version: a Daly board is unidentified (:mod:`rig.identity`).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from ..daly_link import DEFAULT_DATA_IDS, DEFAULT_FLAG_BITS, POLLABLE, DalyBmsLink
from ..registry import Endpoint, LinkKind
from ..base import check_command_gate, check_temperature_positions
from .polled_serial import PolledSerialSettings, check_bench_sensors, check_cell_limit


class DalySettings(PolledSerialSettings):
    """``link:`` of a Daly board (baud rate bit/s, times s)."""

    FLAG_STATUS_BITS: ClassVar[int] = 56  # the 0x98 failure field, 7 bytes

    kind: Literal["daly"]
    temperature_count: int = Field(ge=0, le=16, description="temperature sensors the board reports (0x96)")
    data_ids: list[int] = Field(default_factory=lambda: list(DEFAULT_DATA_IDS), description="data ids asked per poll")
    flags: dict[str, list[int]] = Field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_FLAG_BITS.items()},
                                        description="0x98 failure bits ORed into each flag (bit k = byte k//8, bit k%8)")
    current_positive: Literal["charge", "discharge"] = "charge"
    address: Literal[0x40, 0x80] = 0x40

    @field_validator("data_ids")
    @classmethod
    def _ids(cls, value):
        known = ", ".join(f"0x{i:02X}" for i in POLLABLE)
        for i in value:
            if i not in POLLABLE:
                raise ValueError(f"0x{i:02X} is not a data id the link polls; use {known}")
        if 0x95 not in value:
            raise ValueError("must include 0x95 (cell voltages)")
        if len(set(value)) != len(value):
            raise ValueError("names a data id twice")
        return value



def check_maps(profile) -> list[str]:
    """The protocol's own limits against the profile (ConfigError naming ``cells``), and no board
    commands declared by the profile (the protocol has none to send); no reservations."""
    from ..daly_protocol import MAX_CELLS

    check_command_gate(profile, {}, "the Daly protocol (it carries no board commands)")
    check_temperature_positions(profile, profile.link.temperature_count)
    return check_cell_limit(profile, "Daly", MAX_CELLS, "the 0x97 balance field has 48 bits")


def open_link(profile, endpoint: Endpoint, clock) -> DalyBmsLink:
    """Open the tty or pyserial URL ``endpoint.address`` and the Daly link over it (LinkFault if it cannot)."""
    check_maps(profile)
    link = profile.link
    return DalyBmsLink(
        name=f"Daly {endpoint.address}", port=endpoint.address, n_cells=profile.cells, clock=clock,
        temperature_count=link.temperature_count, data_ids=link.data_ids,
        flags=link.flag_bits(), current_positive=link.current_positive,
        address=link.address, baudrate=endpoint.speed or link.baudrate, unreported=link.unreported,
        timeout_s=link.timeout_s, poll_s=link.poll_s, response_timeout_s=link.response_timeout_s,
        retries=link.retries,
    )


def bench(profile, name: str):
    """The simulated board's Daly UART on a fresh pty (``name`` is not needed: the pty is unique)."""
    from ...sim.daly_slave import DalySlave

    link = profile.link
    check_bench_sensors(profile, "temperature_count", link.temperature_count)
    return DalySlave(profile.cells, link.temperature_count, link.flag_bits(),
                     link.current_positive).start()


KIND = LinkKind(
    name="daly", settings=DalySettings, link_class=DalyBmsLink, open=open_link, bench=bench,
    check_maps=check_maps, ports=("RawSerialPort", "NetworkSerialPort"),
    description="Daly BMS UART protocol (A5 frames), polled",
)
