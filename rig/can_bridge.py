"""A CAN bus served over TCP in the socketcand protocol, from any python-can bus.

The exporter host of a shared rig has the CAN interface (SocketCAN, PCAN, Kvaser, Vector or,
on the virtual bench, python-can's virtual bus); the client running the plans has none. A
:class:`CanBridge` on the exporter host serves that bus over TCP in socketcand's raw mode,
which python-can's ``socketcand`` interface speaks::

    can.Bus(interface="socketcand", host=EXPORTER, port=PORT, channel=CHANNEL)

``bmsrig-exporter`` starts one when a place holding a ``CANPort`` is acquired and publishes
``interface: socketcand``, ``host`` and ``port`` in the resource (:mod:`rig.exporter`).

Protocol (socketcand, raw mode; ASCII, one command between ``<`` and ``>``):

- server: ``< hi >`` on connect; client: ``< open CHANNEL >`` → ``< ok >`` (or
  ``< error ... >`` for a channel this bridge does not serve); ``< rawmode >`` → ``< ok >``;
- server → client, each frame on the bus: ``< frame ID SECONDS.MICROS DATA >`` (ID 3 hex
  digits standard, 8 extended; DATA hex bytes; the bus's timestamp, s);
- client → server: ``< send ID LEN B0 B1 ... >`` puts a frame on the bus (LEN up to 64 on
  a CAN FD bus, 8 otherwise); ``< echo >`` → ``< echo >``.

Every connection opens its own bus through ``open_bus(channel)`` (on SocketCAN and the
virtual bus, several buses on one channel see each other's frames, as several socketcand
clients do).

The bridge counts what it relays: :attr:`CanBridge.frames_in` (clients' frames put on the
bus) and :attr:`CanBridge.frames_out` (bus frames sent to clients); :meth:`CanBridge.stop`
logs both.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time

import can

log = logging.getLogger(__name__)

RECV_POLL_S = 0.05  # how long a forwarding thread blocks on the bus before checking for stop, s
_COMMAND = re.compile(r"<\s*([^<>]*?)\s*>")


def frame_text(msg: can.Message) -> str:
    """A bus frame as socketcand sends it to a client."""
    ident = f"{msg.arbitration_id & 0x1FFFFFFF:08X}" if msg.is_extended_id else f"{msg.arbitration_id & 0x7FF:03X}"
    micros = round(max(0.0, float(msg.timestamp or 0.0)) * 1e6)  # a fraction rounding up carries into the second
    return f"< frame {ident} {micros // 1000000}.{micros % 1000000:06d} {bytes(msg.data).hex().upper()} >"


def parse_send(args: list[str], fd: bool) -> can.Message:
    """``send ID LEN B0 ...`` (hex fields) as a python-can Message; ValueError if malformed."""
    if len(args) < 2:
        raise ValueError("send needs an id and a length")
    ident, length = int(args[0], 16), int(args[1], 16)
    data = bytes(int(b, 16) for b in args[2:2 + length])
    if len(data) != length:
        raise ValueError(f"length {length} but {len(data)} data bytes")
    if length > (64 if fd else 8):
        raise ValueError(f"{length} data bytes on a {'CAN FD' if fd else 'classic CAN'} bus")
    return can.Message(arbitration_id=ident, is_extended_id=len(args[0]) > 3, data=data,
                       is_fd=fd and length > 8, bitrate_switch=fd and length > 8)


class CanBridge:
    """Serve ``channel`` (a bus from ``open_bus(channel)``) in the socketcand protocol on
    ``host:port`` (port 0: a free one, :attr:`port` after :meth:`start`)."""

    def __init__(self, open_bus, channel: str, host: str = "0.0.0.0", port: int = 0, fd: bool = False,
                 stamp_on_arrival: bool = False):
        self.open_bus, self.channel, self.fd = open_bus, str(channel), bool(fd)
        self.stamp_on_arrival = bool(stamp_on_arrival)
        self._server = socket.create_server((host, int(port)), reuse_port=False)
        self.host, self.port = self._server.getsockname()[:2]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._count_lock = threading.Lock()
        self.frames_in = 0
        """Frames clients sent that the bridge put on the bus."""
        self.frames_out = 0
        """Bus frames the bridge sent to clients (one per frame per receiving client)."""

    @classmethod
    def for_interface(cls, interface: str, channel: str, *, bitrate: int = 0, fd: bool = False,
                      data_bitrate: int = 0, host: str = "0.0.0.0", port: int = 0) -> "CanBridge":
        """A bridge over python-can interface ``interface`` (socketcan, pcan, virtual ...)."""
        def open_bus(ch):
            kwargs = {"fd": True} if fd else {}
            if bitrate and interface != "virtual":
                kwargs["bitrate"] = bitrate
            if fd and data_bitrate and interface != "virtual":
                kwargs["data_bitrate"] = data_bitrate
            if interface == "virtual":
                kwargs = {}
            return can.Bus(interface=interface, channel=ch, **kwargs)

        # a virtual bus carries the sender's stamp (the bench's board time): stamp frames on
        # arrival, on the wall clock, as a hardware interface does
        return cls(open_bus, channel, host=host, port=port, fd=fd, stamp_on_arrival=interface == "virtual")

    def start(self) -> "CanBridge":
        self._server.listen()
        self._spawn(self._accept, "can-bridge-accept")
        return self

    def stop(self) -> None:
        log.info("CAN bridge %s on port %s: %d frames from clients onto the bus, %d frames to clients",
                 self.channel, self.port, self.frames_in, self.frames_out)
        self._stop.set()
        for sock in [self._server, *self._conns]:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for t in self._threads:
            t.join(5.0)

    def _spawn(self, target, name, *args):
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(t)
        t.start()

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, peer = self._server.accept()
            except OSError:
                return
            self._conns.append(conn)
            self._spawn(self._serve, f"can-bridge-{peer[0]}:{peer[1]}", conn)

    def _serve(self, conn: socket.socket):
        bus, lock, buffer = None, threading.Lock(), ""

        def reply(text):
            with lock:
                conn.sendall(text.encode("ascii"))

        try:
            reply("< hi >")
            while not self._stop.is_set():
                chunk = conn.recv(4096)
                if not chunk:
                    return
                buffer += chunk.decode("ascii", "replace")
                while (m := _COMMAND.search(buffer)) is not None:
                    buffer = buffer[m.end():]
                    words = m.group(1).split()
                    if not words:
                        continue
                    cmd, args = words[0], words[1:]
                    if cmd == "open":
                        if bus is not None or args != [self.channel]:
                            reply(f"< error could not open bus '{' '.join(args)}': this bridge serves "
                                  f"{self.channel} >")
                            continue
                        bus = self.open_bus(self.channel)
                        reply("< ok >")
                    elif cmd == "rawmode" and bus is not None:
                        reply("< ok >")
                        self._stop.wait(0.02)  # the client reads "< ok >" on its own before frames follow
                        self._spawn(self._forward, "can-bridge-forward", bus, reply)
                    elif cmd == "send" and bus is not None:
                        try:
                            self._put(bus, parse_send(args, self.fd))
                        except (ValueError, can.CanError) as exc:
                            reply(f"< error {exc} >")
                    elif cmd == "echo":
                        reply("< echo >")
                    else:
                        reply(f"< error unknown command {cmd} >")
        except OSError:
            return
        finally:
            self._stop_conn(conn, bus)

    def _put(self, bus, msg: can.Message) -> None:
        """A client's frame onto the bus, counted."""
        bus.send(msg)
        with self._count_lock:
            self.frames_in += 1

    def _stop_conn(self, conn, bus):
        try:
            conn.close()
        except OSError:
            pass
        if bus is not None:
            bus.shutdown()

    def _forward(self, bus, reply):
        while not self._stop.is_set():
            try:
                msg = bus.recv(RECV_POLL_S)
            except (can.CanError, ValueError, OSError):  # the bus was shut down with the connection
                return
            if msg is None or msg.is_error_frame:
                continue
            if self.stamp_on_arrival:
                msg.timestamp = time.time()
            try:
                reply(frame_text(msg))
            except OSError:
                return
            with self._count_lock:
                self.frames_out += 1
