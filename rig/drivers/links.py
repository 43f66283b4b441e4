"""DUT-link drivers: the BmsLink protocol over CAN (python-can + cantools) or UART (Modbus RTU).

The link classes themselves live in :mod:`rig.links`; these drivers bind them to labgrid
resources (``CANPort``, ``RawSerialPort``) so the same code path opens a real interface or
the virtual bench's bus/pty. ``@bench`` as the channel or port means "the bench's board".
"""

from __future__ import annotations

import attr
from labgrid.driver.common import Driver
from labgrid.factory import target_factory

from ..context import context_of
from ..errors import ConfigError, LinkFault
from ..protocols import BmsLink

BENCH = "@bench"


class _LinkDelegate:
    """Forward the BmsLink protocol to the link object built on activation."""

    link = None

    def _get(self):
        if self.link is None:
            self.target.activate(self)
        return self.link

    @property
    def n_cells(self):
        return self._get().n_cells

    def identity(self):
        return self._get().identity()

    def latest(self):
        return self._get().latest()

    def history(self, since=0.0, until=None, *, require_coverage=True):
        return self._get().history(since, until, require_coverage=require_coverage)

    def wait_for(self, condition, timeout, what, poll=None):
        return self._get().wait_for(condition, timeout, what, poll)

    def close(self):
        if self.link is not None:
            try:
                self.link.close()
            finally:
                self.link = None

    def on_deactivate(self):
        self.close()

    def _bench_world(self):
        bench = getattr(self, "bench", None)
        if bench is None:
            return None
        if bench.world is None:
            self.target.activate(bench)
        return bench.world


@target_factory.reg_driver
@attr.s(eq=False)
class CanLinkDriver(_LinkDelegate, Driver, BmsLink):
    """BmsLink over CAN: python-can bus + the profile's DBC and signal map."""

    bindings = {"port": "CANPort", "bench": {"SimBenchDriver", None}}

    @property
    def link_name(self):
        return f"CAN {self.port.interface}:{self.port.channel}"

    def on_activate(self):
        import can

        from ..links.can_link import CanBmsLink

        ctx = context_of(self.target)
        profile = ctx.profile
        if profile.link.kind != "can":
            raise ConfigError(profile.source, "link.kind", f"the rig has a CAN port but the board profile's link is {profile.link.kind!r}")
        port = self.port
        kwargs = {}
        if port.channel == BENCH:
            world = self._bench_world()
            if world is None:
                raise ConfigError("rig description", "CANPort.channel", "'@bench' needs a SimBench in the same target")
            interface, channel = "virtual", world.can_channel
            kwargs["preserve_timestamps"] = True
            frame_time = None  # timestamps are already rig (virtual) time
        else:
            interface, channel = port.interface, port.channel
            kwargs["bitrate"] = port.bitrate or profile.link.bitrate
            frame_time = _wall_to_rig(ctx.clock)
        try:
            bus = can.Bus(interface=interface, channel=channel, **kwargs)
        except (can.CanError, OSError, ValueError, ImportError) as exc:
            raise LinkFault(f"CAN {interface}:{channel}", f"cannot open the CAN interface: {exc}") from None
        self.link = CanBmsLink(
            name=f"CAN {interface}:{channel}",
            bus=bus,
            dbc_path=profile.resolve(profile.link.dbc),
            signal_map_path=profile.resolve(profile.link.signal_map),
            n_cells=profile.cells,
            clock=ctx.clock,
            timeout_s=profile.link.timeout_s,
            poll_s=profile.link.poll_s,
            frame_time=frame_time,
        )


@target_factory.reg_driver
@attr.s(eq=False)
class ModbusLinkDriver(_LinkDelegate, Driver, BmsLink):
    """BmsLink over a UART: Modbus RTU (pymodbus) with the profile's register map."""

    bindings = {"port": "RawSerialPort", "bench": {"SimBenchDriver", None}}

    @property
    def link_name(self):
        return f"Modbus RTU {self.port.port}"

    def on_activate(self):
        from ..links.modbus_link import ModbusBmsLink

        ctx = context_of(self.target)
        profile = ctx.profile
        if profile.link.kind != "modbus":
            raise ConfigError(profile.source, "link.kind", f"the rig has a serial port but the board profile's link is {profile.link.kind!r}")
        path = self.port.port
        if path == BENCH:
            world = self._bench_world()
            if world is None:
                raise ConfigError("rig description", "RawSerialPort.port", "'@bench' needs a SimBench in the same target")
            path = world.modbus_port
        self.link = ModbusBmsLink(
            name=f"Modbus RTU {path}",
            port=path,
            register_map_path=profile.resolve(profile.link.register_map),
            n_cells=profile.cells,
            clock=ctx.clock,
            baudrate=profile.link.baudrate,
            unit_id=profile.link.unit_id,
            timeout_s=profile.link.timeout_s,
            poll_s=profile.link.poll_s,
        )


def _wall_to_rig(clock):
    """Map a python-can wall timestamp (time.time()) to rig time on a real rig."""
    import time

    def convert(ts: float) -> float:
        return clock.now() - (time.time() - ts)

    return convert
