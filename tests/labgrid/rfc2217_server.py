"""A small RFC 2217 server for tests: one TCP client at a time, forwarded to a tty (a pty here).

What ser2net or labgrid's exporter serve for an exported serial port (``NetworkSerialPort``,
protocol ``rfc2217``), built on pyserial's :class:`serial.rfc2217.PortManager` (the same
redirector as pyserial's ``rfc2217_server.py`` example, which is not installed).
"""

from __future__ import annotations

import socket
import threading

import serial
import serial.rfc2217


class _PtySerial(serial.Serial):
    """A pty has no modem lines (TIOCMGET fails): report them as a null-modem cable would."""

    cts = dsr = cd = property(lambda self: True)
    ri = property(lambda self: False)

    def _update_dtr_state(self):
        pass  # no DTR/RTS lines on a pty

    def _update_rts_state(self):
        pass

    def _update_break_state(self):
        pass


class Rfc2217Server:
    """Serve ``tty`` over RFC 2217 on ``127.0.0.1:<port>`` (a free port; ``port`` after start)."""

    def __init__(self, tty: str):
        self.tty = tty
        self.port = 0
        self._listen = socket.create_server(("127.0.0.1", 0))
        self.port = self._listen.getsockname()[1]
        self._listen.settimeout(0.2)
        self._alive = True
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.connections = 0

    def start(self) -> Rfc2217Server:
        self._spawn(self._accept)
        return self

    def _spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        self._threads.append(t)
        t.start()

    def _accept(self):
        while self._alive:
            try:
                conn, _ = self._listen.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            self._serve(conn)

    def _serve(self, conn: socket.socket):
        tty = _PtySerial(self.tty, timeout=0.05)
        conn.settimeout(0.2)

        class _Out:
            @staticmethod
            def write(data: bytes):
                with self._lock:
                    conn.sendall(data)

        manager = serial.rfc2217.PortManager(tty, _Out)
        done = threading.Event()

        def reader():
            while self._alive and not done.is_set():
                try:
                    data = tty.read(tty.in_waiting or 1)
                except (serial.SerialException, OSError, TypeError):
                    break
                if data:
                    try:
                        _Out.write(b"".join(manager.escape(data)))
                    except OSError:
                        break

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        try:
            while self._alive:
                try:
                    data = conn.recv(1024)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                tty.write(b"".join(manager.filter(data)))
        finally:
            done.set()
            t.join(timeout=2.0)
            tty.close()
            conn.close()

    def close(self):
        self._alive = False
        for t in self._threads:
            t.join(timeout=2.0)
        self._listen.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
