"""``bmsrig-exporter``: labgrid's exporter that knows the project's resources.

``python3 -m rig.exporter [labgrid-exporter options] RESOURCES.yaml`` (console script
``bmsrig-exporter``) imports :mod:`rig.labgrid` — the project's resource classes — and
registers an export for each with labgrid's exporter, then runs labgrid's exporter unchanged
(``-c/--coordinator``, ``-n/--name``, ``--hostname``, ``LG_COORDINATOR``).

An export builds the resource on the exporter host with the same converters as a rig file,
so a bad parameter marks that one resource broken with the reason (``labgrid-client
resources -v`` shows it) instead of ending the exporter. Parameters cross the coordinator as
labgrid carries them: mappings (``NiDaqDevice.digital_lines``) as JSON text, dates (an
unquoted ``calibration_due: 2027-03-31``) as ISO strings; the resource's converters read
them back on the client. labgrid's ``exports`` table is extended, not replaced.

Keys a resource class does not take are refused with the class's known keys (the resource
is broken, with that message). Availability means the instrument answers on the exporter
host (:func:`availability`, checked every :data:`CHECK_EVERY_S`): a TCP instrument accepts a
connection, a serial port exists, a SocketCAN interface is up; a place whose resource is
not available cannot be acquired (labgrid's rule).

A ``CANPort`` is served as a network CAN port (:class:`CanPortExport`): a socketcand bridge
over the rig's python-can bus, started when its place is acquired.

SCPI (VISA ``TCPIP::H::P::SOCKET``) and Modbus-TCP (``host``/``port``) instruments are
reachable through the exporter host: while the place is acquired a
:class:`rig.tcp_proxy.TcpProxy` forwards a port of this host to the instrument and the
resource names this host and that port, so a client needs no route to the lab network.
Not forwarded: VXI-11 (``TCPIP::H::INSTR``, portmapper and dynamic ports) and HiSLIP.
"""

from __future__ import annotations

import logging
import os
import socket
import time

import attr
from labgrid.factory import target_factory
from labgrid.remote.exporter import ResourceExport, exports

from . import labgrid as _registered  # noqa: F401  (registers the project's resource classes)
from .resources import wire_value
from .tcp_proxy import TcpProxy, tcp_endpoint

NOT_EXPORTED = frozenset({"RunContext"})  # added by build_rig to a target, never written in a rig file
CHECK_EVERY_S = 5.0  # how often an export checks its instrument answers (labgrid polls every ~1 s), s
PROBE_TIMEOUT_S = 1.0  # TCP connect bound of one check, s


def tcp_answers(host: str, port: int) -> str | None:
    """None if a TCP connection to ``host:port`` opens within PROBE_TIMEOUT_S, else why not."""
    try:
        socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S).close()
        return None
    except OSError as exc:
        return f"{host}:{port} does not answer ({exc.strerror or exc})"


def visa_tcp(address: str) -> tuple[str, int] | None:
    """(host, port) a VISA TCPIP address is reached on: ``TCPIP::H::P::SOCKET`` its port,
    ``TCPIP::H::hislipN::INSTR`` 4880, ``TCPIP::H::INSTR`` (VXI-11) the portmapper, 111."""
    parts = [p for p in address.split("::") if p]
    if not parts or not parts[0].upper().startswith("TCPIP") or len(parts) < 2:
        return None
    host, rest = parts[1], [p.lower() for p in parts[2:]]
    if rest and rest[-1] == "socket" and len(rest) >= 2:
        return host, int(rest[0])
    if any(p.startswith("hislip") for p in rest):
        return host, 4880
    return host, 111


def can_interface_up(interface: str, channel: str) -> str | None:
    """None if a SocketCAN interface is up (``/sys/class/net/<channel>/operstate``); other
    python-can interfaces are opened by their vendor library and are not checked here."""
    if interface != "socketcan":
        return None
    try:
        state = open(f"/sys/class/net/{channel}/operstate").read().strip()
    except OSError:
        return f"CAN interface {channel} does not exist on this host"
    return None if state in ("up", "unknown") else f"CAN interface {channel} is {state}"


def availability(resource) -> tuple[bool, str | None]:
    """Whether the instrument behind a project resource answers on the exporter host, and
    why not: a TCP instrument (SCPI over TCPIP, Modbus-TCP, Espec) must accept a connection,
    a serial port must exist, a SocketCAN interface must be up. Others: available."""
    why = None
    host, port = getattr(resource, "host", ""), getattr(resource, "port", None)
    if type(resource).__name__ == "CANPort":
        why = can_interface_up(resource.interface, resource.channel)
    elif getattr(resource, "address", "") and visa_tcp(resource.address):
        why = tcp_answers(*visa_tcp(resource.address))
    elif host and isinstance(port, int):
        why = tcp_answers(host, port)
    for key in ("serial_port", "port"):
        path = getattr(resource, key, "")
        if isinstance(path, str) and path.startswith("/dev/") and not os.path.exists(path):
            why = f"serial port {path} does not exist on this host"
    return why is None, why


def project_resources() -> list[str]:
    """The project's resource classes registered with labgrid (by :mod:`rig.labgrid` and the
    driver modules it imports), sorted."""
    return sorted(n for n, c in target_factory.resources.items()
                  if c.__module__.split(".")[0] == "rig" and n not in NOT_EXPORTED)


@attr.s(eq=False)
class ProjectResourceExport(ResourceExport):
    """Export of one project resource: built locally (converters check it), parameters sent
    in the coordinator's types. A resource that cannot be built is broken, with the reason."""

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.problem = None
        self.checked_at = None
        cls = target_factory.resources[self.cls]
        known = [f.name for f in attr.fields(cls) if f.init and f.name not in ("target", "name")]
        unknown = sorted(set(self.local_params) - set(known))
        try:
            if unknown:
                raise ValueError(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                                 f"{self.cls} takes {', '.join(known)}")
            self.local = cls(target=None, name=None, **self.local_params)
        except (TypeError, ValueError) as exc:
            self.local = None
            self.problem = f"{self.cls}: {exc}"
            logging.getLogger(f"ResourceExport({self.cls})").error("cannot export: %s", self.problem)

    def _get_params(self):
        if self.local is None:
            return {k: wire_value(v) for k, v in self.local_params.items()}
        params = {k: wire_value(getattr(self.local, k, v)) for k, v in self.local_params.items()}
        proxy, endpoint = getattr(self, "proxy_server", None), tcp_endpoint(self.local)
        if proxy is not None and endpoint is not None:  # the instrument through this host
            params.update(endpoint[2](self.host, proxy.port))
        why = getattr(self, "unavailable_because", None)
        if why:  # labgrid-client resources -v shows it beside avail False
            params["extra"] = {"unavailable": why}
        return params

    def _get_start_params(self):
        endpoint = tcp_endpoint(self.local) if self.local is not None else None
        return {"host": endpoint[0], "port": endpoint[1]} if endpoint else {}

    def _start(self, start_params):
        """Forward the instrument's TCP port through this host while the place is acquired."""
        if start_params:
            self.proxy_server = TcpProxy(start_params["host"], start_params["port"]).start()

    def _stop(self, start_params):
        proxy, self.proxy_server = getattr(self, "proxy_server", None), None
        if proxy is not None:
            proxy.stop()

    def poll(self):
        if self.local is None:
            if not self.broken:
                self.broken = self.problem
            params = self._get_params()
            params["extra"] = {"proxy_required": self.proxy_required, "proxy": self.proxy, "broken": self.broken}
            dirty = self.params != params
            self.data["params"].update(params)
            return dirty
        now = time.monotonic()
        if self.checked_at is None or now - self.checked_at >= CHECK_EVERY_S:
            self.checked_at = now
            self.local.avail, why = availability(self.local)
            if why != getattr(self, "unavailable_because", None):
                self.unavailable_because = why
                if why:
                    logging.getLogger(f"ResourceExport({self.cls})").warning("not available: %s", why)
        return super().poll()


@attr.s(eq=False)
class CanPortExport(ProjectResourceExport):
    """A ``CANPort`` served as a network CAN port: while its place is acquired, a
    :class:`rig.can_bridge.CanBridge` on this host serves the bus in the socketcand protocol
    and the resource says ``interface: socketcand`` with this exporter's ``host`` and the
    bridge's ``port`` (python-can's socketcand interface on the client connects to it)."""

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.bridge = None

    def _get_start_params(self):
        return {k: wire_value(getattr(self.local, k)) for k in ("interface", "channel", "bitrate", "fd", "data_bitrate")}

    def _start(self, start_params):
        from .can_bridge import CanBridge

        p = start_params
        self.bridge = CanBridge.for_interface(p["interface"], p["channel"], bitrate=p["bitrate"], fd=p["fd"],
                                              data_bitrate=p["data_bitrate"]).start()

    def _stop(self, start_params):
        if self.bridge is not None:
            self.bridge.stop()
            self.bridge = None

    def _get_params(self):
        params = super()._get_params()
        if self.local is not None and self.bridge is not None:
            params.update(interface="socketcand", host=self.host, port=self.bridge.port)
        return params


def register_exports() -> list[str]:
    """Register :class:`ProjectResourceExport` for every project resource class labgrid knows
    (a class registered with its own export is left alone). Returns the class names."""
    names = project_resources()
    exports.setdefault("CANPort", CanPortExport)
    for name in names:
        exports.setdefault(name, ProjectResourceExport)
    return names


def main():
    """Run labgrid's exporter with the project's resource exports registered."""
    from labgrid.remote import exporter

    register_exports()
    exporter.main()


if __name__ == "__main__":
    main()
