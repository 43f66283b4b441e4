"""Link kind ``jbd``: the JBD / Xiaoxiang BMS UART protocol (``DD ... 77`` frames), polled.

Profile section::

    link:
      kind: jbd
      baudrate: 9600            # bit/s, 8N1 (JBD default 9600)
      ntc_count: 2              # NTCs the board reports in register 0x03 (checked on every reply)
      flags: {hvc: [0], lvc: [1], ot: [4, 6], ut: [5, 7]}   # protection bits ORed per flag
      serial: barcode           # none | barcode (EEPROM 0xA2) | serial_num (EEPROM 0x16)
      unreported: []            # quantities the board's firmware leaves empty (not verified)
      response_timeout_s: 0.5   # wall-clock wait for one reply, s
      retries: 2                # extra polls `latest` tries, s
      poll_s: 0.25
      timeout_s: 2.0

Protocol: :mod:`rig.links.jbd_protocol` (sources cited there). Host side
:class:`~rig.links.jbd_link.JbdBmsLink` on a tty (``RawSerialPort``, or an exported tty,
``NetworkSerialPort``); bench side :class:`~rig.sim.jbd_slave.JbdSlave` on a pty.
What the board reports (:class:`~rig.links.base.Capabilities`): cell voltages, NTC
temperatures, balance bits, protection flags, FETs, pack V/A — no board state; the profile's
``temperatures:`` roles say which NTC measures what (a JBD board has no bleed-resistor NTC).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..jbd_link import DEFAULT_FLAG_BITS, JbdBmsLink
from ..registry import Endpoint, LinkKind
from ..base import check_command_gate, check_temperature_positions
from .polled_serial import PolledSerialSettings, check_bench_sensors, check_cell_limit


class JbdSettings(PolledSerialSettings):
    """``link:`` of a JBD board (baud rate bit/s, times s)."""

    kind: Literal["jbd"]
    ntc_count: int = Field(ge=0, le=8, description="NTCs the board reports in register 0x03")
    flags: dict[str, list[int]] = Field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_FLAG_BITS.items()},
                                        description="protection-status bits ORed into each flag")
    serial: Literal["none", "barcode", "serial_num"] = "none"


def check_maps(profile) -> list[str]:
    """The protocol's own limits against the profile (ConfigError naming ``cells``), and no board
    commands declared by the profile (the protocol has none to send); no reservations."""
    from ..jbd_protocol import MAX_CELLS

    check_command_gate(profile, {}, "the JBD protocol (it carries no board commands)")
    check_temperature_positions(profile, profile.link.ntc_count)
    return check_cell_limit(profile, "JBD", MAX_CELLS, "its balance status is two 16-bit words")


def open_link(profile, endpoint: Endpoint, clock) -> JbdBmsLink:
    """Open the tty or pyserial URL ``endpoint.address`` and the JBD link over it (LinkFault if it cannot)."""
    check_maps(profile)
    link = profile.link
    return JbdBmsLink(
        name=f"JBD {endpoint.address}", port=endpoint.address, n_cells=profile.cells, clock=clock,
        ntc_count=link.ntc_count, baudrate=endpoint.speed or link.baudrate,
        flags=link.flag_bits(), serial=link.serial, unreported=link.unreported,
        timeout_s=link.timeout_s, poll_s=link.poll_s, response_timeout_s=link.response_timeout_s,
        retries=link.retries,
    )


def bench(profile, name: str):
    """The simulated board's JBD UART on a fresh pty (``name`` is not needed: the pty is unique)."""
    from ...sim.jbd_slave import JbdSlave

    link = profile.link
    check_bench_sensors(profile, "ntc_count", link.ntc_count)
    return JbdSlave(profile.cells, link.ntc_count, link.flag_bits(),
                    profile.capacity_ah).start()


KIND = LinkKind(
    name="jbd", settings=JbdSettings, link_class=JbdBmsLink, open=open_link, bench=bench,
    check_maps=check_maps, ports=("RawSerialPort", "NetworkSerialPort"),
    description="JBD BMS UART protocol (DD ... 77 frames), polled",
)
