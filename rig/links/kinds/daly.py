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

from typing import Literal

from pydantic import Field, field_validator

from ..daly_link import DEFAULT_DATA_IDS, DEFAULT_FLAG_BITS, POLLABLE, DalyBmsLink
from ..registry import Endpoint, LinkKind, LinkSettings
from .jbd import check_flag_bits, check_unreported


class DalySettings(LinkSettings):
    """``link:`` of a Daly board (baud rate bit/s, times s)."""

    kind: Literal["daly"]
    baudrate: int = Field(9600, gt=0, le=1_000_000, description="UART baud rate, bit/s (8N1)")
    temperature_count: int = Field(ge=0, le=16, description="temperature sensors the board reports (0x96)")
    data_ids: list[int] = Field(default_factory=lambda: list(DEFAULT_DATA_IDS), description="data ids asked per poll")
    flags: dict[str, list[int]] = Field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_FLAG_BITS.items()},
                                        description="0x98 failure bits ORed into each flag (bit k = byte k//8, bit k%8)")
    current_positive: Literal["charge", "discharge"] = "charge"
    address: Literal[0x40, 0x80] = 0x40
    unreported: list[str] = Field(default_factory=list, description="quantities the board leaves empty")
    response_timeout_s: float = Field(0.5, gt=0, le=10, description="wait for one reply, s")
    retries: int = Field(2, ge=0, le=10)

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

    @field_validator("flags")
    @classmethod
    def _flags(cls, value):
        return check_flag_bits(value, 56)

    @field_validator("unreported")
    @classmethod
    def _unreported(cls, value):
        return check_unreported(value)


def check_maps(profile) -> list[str]:
    """The protocol's own limits against the profile (ConfigError naming ``cells``); no reservations."""
    from ...errors import ConfigError
    from ..daly_protocol import MAX_CELLS

    if profile.cells > MAX_CELLS:
        raise ConfigError(profile.source, "cells", f"{profile.cells} cells, but the Daly protocol reports at most "
                          f"{MAX_CELLS}: the 0x97 balance field has 48 bits")
    return []


def open_link(profile, endpoint: Endpoint, clock) -> DalyBmsLink:
    """Open the tty or pyserial URL ``endpoint.address`` and the Daly link over it (LinkFault if it cannot)."""
    check_maps(profile)
    link = profile.link
    return DalyBmsLink(
        name=f"Daly {endpoint.address}", port=endpoint.address, n_cells=profile.cells, clock=clock,
        temperature_count=link.temperature_count, data_ids=link.data_ids,
        flags={k: tuple(v) for k, v in link.flags.items()}, current_positive=link.current_positive,
        address=link.address, baudrate=endpoint.speed or link.baudrate, unreported=link.unreported,
        timeout_s=link.timeout_s, poll_s=link.poll_s, response_timeout_s=link.response_timeout_s,
        retries=link.retries,
    )


def bench(profile, name: str):
    """The simulated board's Daly UART on a fresh pty (``name`` is not needed: the pty is unique)."""
    from ...sim.daly_slave import DalySlave

    from ...errors import ConfigError

    link = profile.link
    if link.temperature_count > profile.cells + 1:
        raise ConfigError(profile.source, "link.temperature_count", f"{link.temperature_count} sensors, but the bench board model "
                          f"measures {profile.cells + 1} temperatures ({profile.cells} cells + the bleed resistor)")
    return DalySlave(profile.cells, link.temperature_count, {k: tuple(v) for k, v in link.flags.items()},
                     link.current_positive).start()


KIND = LinkKind(
    name="daly", settings=DalySettings, link_class=DalyBmsLink, open=open_link, bench=bench,
    check_maps=check_maps, ports=("RawSerialPort", "NetworkSerialPort"),
    description="Daly BMS UART protocol (A5 frames), polled",
)
