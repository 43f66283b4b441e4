"""A TCP port on the exporter host that forwards to an instrument on the lab network.

A shared rig's SCPI and Modbus-TCP instruments sit on the rig's own network, which CI
runners have no route to. ``bmsrig-exporter`` starts a :class:`TcpProxy` for each such
resource while its place is acquired and publishes the exporter host and the proxy's port
in the resource in place of the instrument's (:mod:`rig.exporter`), as labgrid's exporter
serves a tty on a TCP port (ser2net) for ``NetworkSerialPort``. Clients still go through
labgrid's own proxy manager (``LG_PROXY``, SSH to the exporter host) when they must.

:func:`tcp_endpoint` tells which resources have a TCP endpoint to forward and how their
parameters read once forwarded: ``host``/``port`` parameters (ModbusChamberPort, chamber
controllers over TCP) and VISA ``TCPIP::HOST::PORT::SOCKET`` addresses (ScpiInstrument).
"""

from __future__ import annotations

import logging
import socket
import threading

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0  # wall-clock bound on reaching the instrument for one client, s
CHUNK = 65536


def tcp_endpoint(resource):
    """``(host, port, rewrite)`` of a resource's TCP instrument, where ``rewrite(host, port)``
    gives the parameters that point at a forwarder instead; None when there is none."""
    address = getattr(resource, "address", "")
    if isinstance(address, str) and address:
        parts = address.split("::")
        if len(parts) == 4 and parts[0].upper().startswith("TCPIP") and parts[3].upper() == "SOCKET":
            return parts[1], int(parts[2]), lambda h, p: {"address": "::".join([parts[0], h, str(p), parts[3]])}
        return None
    host, port = getattr(resource, "host", ""), getattr(resource, "port", None)
    if isinstance(host, str) and host and isinstance(port, int) and port > 0:
        return host, port, lambda h, p: {"host": h, "port": p}
    return None


class TcpProxy:
    """Listen on ``listen_host:port`` (0: a free port, :attr:`port`) and pipe every client
    to ``target_host:target_port``, both ways, until either side closes."""

    def __init__(self, target_host: str, target_port: int, listen_host: str = "0.0.0.0", port: int = 0):
        self.target = (target_host, int(target_port))
        self._server = socket.create_server((listen_host, int(port)))
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> "TcpProxy":
        self._spawn(self._accept)
        return self

    def stop(self) -> None:
        self._stop.set()
        for sock in [self._server, *self._socks]:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for t in self._threads:
            t.join(5.0)

    def _spawn(self, target, *args):
        t = threading.Thread(target=target, args=args, name="tcp-proxy", daemon=True)
        self._threads.append(t)
        t.start()

    def _accept(self):
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=CONNECT_TIMEOUT_S)
                upstream.settimeout(None)
            except OSError as exc:
                log.warning("instrument %s:%s does not answer: %s", *self.target, exc)
                client.close()
                continue
            self._socks += [client, upstream]
            self._spawn(self._pipe, client, upstream)
            self._spawn(self._pipe, upstream, client)

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket):
        try:
            while data := src.recv(CHUNK):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
