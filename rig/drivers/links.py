"""DUT-link drivers: the BmsLink protocol over whatever link kind the board profile names.

Nothing here knows CAN from Modbus: the profile's ``link.kind`` names a
:class:`~rig.links.registry.LinkKind`, which opens its own host-side link on an
:class:`~rig.links.registry.Endpoint` these drivers read from the rig description:

- :class:`LinkDriver` — a real rig: binds a port resource (``CANPort``: interface, channel,
  bitrate; labgrid's ``RawSerialPort``: port). The kind's ``ports`` must include the
  resource class, else a ConfigError names ``link.kind``. An exported tty (labgrid's
  ``NetworkSerialPort``, rfc2217 or raw TCP) opens as a pyserial URL. ``CanLinkDriver`` and
  ``ModbusLinkDriver`` are the same driver bound to one resource class (rig files written
  before the registry keep working).
- :class:`BenchLinkDriver` + resource ``BenchPort`` — the virtual bench: the endpoint is
  the simulated board's (``world.dut_ports.endpoint()``), for every kind. A port resource
  with ``"@bench"`` as its channel/port means the same.
- A ``CANPort`` served over the network (``interface: socketcand``, an exported port) in a
  target that also has a ``SimBench``: the simulated board sits on that bus — its frames are
  relayed onto it (:meth:`rig.sim.ports.DutPorts.over_network`) and the link reads them
  back through the bridge (a virtual bench served through a labgrid place).
"""

from __future__ import annotations

import attr
from labgrid.driver.common import Driver
from labgrid.factory import target_factory

from ..context import context_of
from ..errors import ConfigError
from ..links.registry import Endpoint, LinkKind, kind_of
from ..protocols import BmsLink

BENCH = "@bench"

# port resource class -> Endpoint (the profile's rate wins over RawSerialPort's default speed)
_PORT_ENDPOINT = {
    "CANPort": lambda r: Endpoint(address=r.channel, interface=r.interface, speed=r.bitrate,
                                  options=tuple(r.bus_options().items())),
    "RawSerialPort": lambda r: Endpoint(address=r.port),
    "NetworkSerialPort": lambda r: Endpoint(address=network_serial_url(r)),
}


def network_serial_url(port) -> str:
    """pyserial URL of a labgrid ``NetworkSerialPort`` (an exported tty: ser2net or labgrid's
    exporter), reached through labgrid's proxy manager (``LG_PROXY``) as its SerialDriver does:
    ``rfc2217://host:port?ign_set_control`` (the baud rate is set over RFC 2217), or
    ``socket://host:port`` for protocol ``raw`` (the exporter host fixes the baud rate)."""
    from labgrid.util.proxy import proxymanager

    if port.port is None:
        raise ConfigError("rig description", "NetworkSerialPort.port", "no TCP port: the exported tty is not served")
    if port.protocol not in ("rfc2217", "raw"):
        raise ConfigError("rig description", "NetworkSerialPort.protocol",
                          f"{port.protocol!r} is not 'rfc2217' or 'raw'")
    host, tcp = proxymanager.get_host_and_port(port)
    if port.protocol == "rfc2217":
        return f"rfc2217://{host}:{tcp}?ign_set_control"
    return f"socket://{host}:{tcp}"


class _LinkDriverBase(Driver, BmsLink):
    """Forward the BmsLink protocol to the link object the profile's kind opens on activation."""

    link = None

    def accepts(self, kind: LinkKind) -> bool:
        """True when this driver's port can carry links of ``kind``."""
        raise NotImplementedError

    def endpoint(self) -> Endpoint:
        """Where the host link connects."""
        raise NotImplementedError

    def on_activate(self):
        ctx = context_of(self.target)
        profile = ctx.profile
        kind = kind_of(profile)
        if not self.accepts(kind):
            port = type(self.port).__name__
            opens = ", ".join(kind.ports) or "no real-rig port"
            raise ConfigError(profile.source, "link.kind", f"the rig's link port is a {port} but the board profile's "
                              f"link is {kind.name!r}, which opens: {opens}")
        self.link = kind.open(profile, self.endpoint(), ctx.clock)

    def _get(self):
        if self.link is None:
            self.target.activate(self)
        return self.link

    @property
    def link_name(self) -> str:
        """The open link's name, else the driver and its port (never opens anything)."""
        if self.link is not None:
            return getattr(self.link, "name", type(self).__name__)
        return f"{type(self).__name__} on {type(self.port).__name__}"

    @property
    def n_cells(self):
        return self._get().n_cells

    @property
    def reports(self):
        """What the board reports over the open link (:class:`rig.links.base.Capabilities`)."""
        from ..links.base import Capabilities

        return getattr(self._get(), "reports", None) or Capabilities.everything()

    def identity(self):
        return self._get().identity()

    def latest(self):
        return self._get().latest()

    def history(self, since=0.0, until=None, *, require_coverage=True):
        return self._get().history(since, until, require_coverage=require_coverage)

    def wait_for(self, condition, timeout, what, poll=None):
        return self._get().wait_for(condition, timeout, what, poll)

    def command(self, name: str, **values) -> None:
        """Send board command ``name`` of the open link's map (:meth:`rig.protocols.BmsLink.command`)."""
        return self._get().command(name, **values)

    def close(self):
        if self.link is not None:
            try:
                self.link.close()
            finally:
                self.link = None

    def on_deactivate(self):
        self.close()

    def _bench_endpoint(self, key: str) -> Endpoint:
        bench = getattr(self, "bench", None)
        if bench is None:
            raise ConfigError("rig description", key, "'@bench' needs a SimBench in the same target")
        if bench.world is None:
            self.target.activate(bench)
        return Endpoint(address=bench.world.dut_ports.endpoint(), bench=True)


@target_factory.reg_driver
@attr.s(eq=False)
class LinkDriver(_LinkDriverBase):
    """BmsLink of the profile's link kind over a real rig's port (``CANPort``, ``RawSerialPort``,
    ``NetworkSerialPort``)."""

    bindings = {"port": set(_PORT_ENDPOINT), "bench": {"SimBenchDriver", None}}

    def accepts(self, kind: LinkKind) -> bool:
        return type(self.port).__name__ in kind.ports

    def endpoint(self) -> Endpoint:
        cls = type(self.port).__name__
        ep = _PORT_ENDPOINT[cls](self.port)
        if ep.address == BENCH and cls != "NetworkSerialPort":
            return self._bench_endpoint(f"{cls}.{'channel' if cls == 'CANPort' else 'port'}")
        if cls == "CANPort" and ep.interface == "socketcand" and self.bench is not None:
            if self.bench.world is None:
                self.target.activate(self.bench)
            return self.bench.world.dut_ports.over_network(ep)
        return ep


@target_factory.reg_driver
@attr.s(eq=False)
class CanLinkDriver(LinkDriver):
    """:class:`LinkDriver` bound to a ``CANPort`` (rig files written before the link registry)."""

    bindings = {"port": "CANPort", "bench": {"SimBenchDriver", None}}


@target_factory.reg_driver
@attr.s(eq=False)
class ModbusLinkDriver(LinkDriver):
    """:class:`LinkDriver` bound to a ``RawSerialPort`` (rig files written before the link registry)."""

    bindings = {"port": "RawSerialPort", "bench": {"SimBenchDriver", None}}


@target_factory.reg_driver
@attr.s(eq=False)
class BenchLinkDriver(_LinkDriverBase):
    """BmsLink of the profile's link kind to the virtual bench's board (resource ``BenchPort``)."""

    bindings = {"port": "BenchPort", "bench": "SimBenchDriver"}

    def accepts(self, kind: LinkKind) -> bool:
        return True  # every kind has a bench counterpart

    def endpoint(self) -> Endpoint:
        return self._bench_endpoint("BenchPort")


def select_link_driver(target, profile, env_path) -> _LinkDriverBase:
    """The target's link driver for the profile's link kind: the only one, or the only one
    whose port fits the kind. ConfigError (``env_path``, drivers) when there is none or several."""
    links = [d for d in target.drivers if isinstance(d, _LinkDriverBase)]
    key = "targets.main.drivers"
    if not links:
        raise ConfigError(env_path, key, "no DUT link driver: add BenchLinkDriver (with a BenchPort resource) or "
                          "LinkDriver (with a CANPort, RawSerialPort or NetworkSerialPort resource)")
    if len(links) == 1:
        return links[0]  # a port that does not fit the kind is reported on activation, naming link.kind
    kind = kind_of(profile)
    fit = [d for d in links if d.accepts(kind)]
    if len(fit) == 1:
        return fit[0]
    names = ", ".join(type(d).__name__ for d in (fit or links))
    problem = "several" if fit else "none of the"
    raise ConfigError(env_path, key, f"{problem} DUT link drivers ({names}) fit the board's link kind {kind.name!r}")
