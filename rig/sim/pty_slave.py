"""A simulated board answering requests on a pseudo-terminal: :class:`PtySlave`.

``start()`` opens a pty: the slave side is a real tty (``.address``, e.g. ``/dev/pts/7``) that
the host link opens with pyserial exactly as it opens a USB-UART adapter; one daemon thread
serves the master side. A subclass parses requests and builds replies in :meth:`answer`
(``buf -> (bytes used, reply bytes or None)``); it keeps its telemetry image behind
:attr:`lock`. The serial protocol kinds' bench counterparts (JBD, Daly) are built on it.

Bench-counterpart contract (:mod:`rig.links.registry`): ``address``, ``publish(tel, t)``,
``hold(tel)``, ``muted`` (True: requests are read and counted, nothing is answered),
``close()``. For tests, :meth:`inject_corruption` spoils the next replies: ``flip`` (one byte
changed: checksum error), ``short`` (truncated: timeout), ``silent`` (no reply).
"""

from __future__ import annotations

import os
import select
import threading
import tty


class PtyServer:
    """A pty whose master side one daemon thread serves (:meth:`_serve`, a subclass's):
    opened by :meth:`start`, the slave tty at :attr:`port`; :meth:`close` stops the thread
    (``_stop`` set, the wake pipe written) and closes every descriptor. The Modbus slave and
    :class:`PtySlave` are built on it."""

    def __init__(self):
        self._master: int | None = None
        self._slave: int | None = None
        self._wake: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.port: str | None = None

    # ----------------------------------------------------------------- lifecycle
    def start(self):
        if self._thread is not None:
            return self
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line discipline until pyserial configures it
        self._master, self._slave = master, slave
        self.port = os.ttyname(slave)
        self._wake = os.pipe()
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name=f"{type(self).__name__} {self.port}", daemon=True)
        self._thread.start()
        return self

    @property
    def address(self) -> str:
        """The pty the host link opens (started if it was not)."""
        return self.start().port

    def close(self) -> None:
        """Stop the thread and close every descriptor (idempotent)."""
        self._stop.set()
        if self._wake is not None:
            try:
                os.write(self._wake[1], b"x")
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        for fd in (self._master, self._slave, *(self._wake or ())):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = self._wake = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _serve(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class PtySlave(PtyServer):
    """Serves requests on a fresh pty from a daemon thread (see the module docstring)."""

    CORRUPTIONS = ("flip", "short", "silent")

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()
        self.requests = 0
        self.replies = 0
        self.muted = False
        self._corrupt: list[str] = []


    # ----------------------------------------------------------------- tests
    def inject_corruption(self, n_replies: int = 1, mode: str = "flip") -> None:
        """Spoil the next ``n_replies`` replies (``flip``, ``short`` or ``silent``)."""
        if mode not in self.CORRUPTIONS:
            raise ValueError(f"unknown corruption mode {mode!r}; use one of {', '.join(self.CORRUPTIONS)}")
        with self.lock:
            self._corrupt.extend([mode] * int(n_replies))

    # ----------------------------------------------------------------- protocol (subclass)
    def answer(self, buf: bytes) -> tuple[int, bytes | None]:  # pragma: no cover - abstract
        """``(bytes of buf used, reply or None)``; used 0 = wait for more bytes."""
        raise NotImplementedError

    # ----------------------------------------------------------------- server thread
    def _serve(self) -> None:
        master, wake = self._master, self._wake[0]
        buf = b""
        while True:
            try:
                ready, _, _ = select.select([master, wake], [], [], 0.5)
            except (OSError, ValueError):
                return
            if wake in ready:
                return
            if master not in ready:
                continue
            try:
                buf += os.read(master, 4096)
            except OSError:
                return
            while buf:
                try:
                    used, reply = self.answer(buf)
                except Exception:  # never let one odd request kill the board's UART
                    used, reply = len(buf), None
                if used == 0:
                    break
                buf = buf[used:]
                if reply is not None:
                    self.requests += 1
                    if not self.muted:
                        self._send(reply)

    def _send(self, reply: bytes) -> None:
        with self.lock:
            mode = self._corrupt.pop(0) if self._corrupt else None
        frame = bytearray(reply)
        if mode == "silent":
            return
        if mode == "flip":
            frame[len(frame) // 2] ^= 0x5A
        elif mode == "short":
            frame = frame[: max(1, len(frame) // 2)]
        view = memoryview(bytes(frame))
        while view:
            try:
                k = os.write(self._master, view)
            except OSError:
                return
            view = view[k:]
        self.replies += 1
