"""A board that answers only when asked over a UART: the host polls it, request by request.

Shared by the serial protocol kinds (JBD, Daly ...): :class:`PolledSerialLink` opens the tty
(or a pyserial URL: ``rfc2217://``, ``socket://``, an exported tty) with pyserial, sends a
request, reads the reply with a wall-clock deadline (``response_timeout_s``, s) and hands the
bytes to the protocol module, which checks framing and checksum. One poll is one sample
stamped ``clock.now()`` (rig time, s).

Errors: a reply that does not come in time, a bad checksum, a garbled or refused reply is a
:class:`FrameError`. Inside a poll it is a *counted link error* (:attr:`errors`,
:attr:`error_counts` by kind, :attr:`last_error`): the poll yields no sample and the next one
tries again. A board silent for longer than the link timeout is a
:class:`~rig.errors.LinkFault` through :class:`~rig.links.base.LinkBase` (``wait_for`` and the
coverage check of ``history``), whose message names the errors counted. :meth:`latest` tries
``retries + 1`` polls and raises LinkFault naming the last error when none succeeds.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import Callable

from ..errors import LinkFault
from .base import HISTORY_LEN, QUANTITIES, Capabilities, LinkBase, LinkSample


@dataclass(frozen=True)
class ProtocolCapabilities(Capabilities):
    """:class:`~rig.links.base.Capabilities` of a fixed protocol: a quantity is missing because
    of a profile key (a data id not polled, a flag mapped to no bit, ``link.unreported``) or
    because the protocol has no field for it; ``why`` says which, per quantity."""

    why: tuple[tuple[str, str], ...] = ()

    def reason(self, *quantities: str) -> str | None:
        """``"not verified: the board does not report its balancing mask (Daly protocol:
        link.data_ids does not ask 0x97)"``, or None when all are reported."""
        gone = self.missing(*quantities)
        if not gone:
            return None
        why = dict(self.why)
        what = " or ".join(QUANTITIES[q][0] for q in gone)
        causes = "; ".join(dict.fromkeys(why.get(q, "the protocol has no field for it") for q in gone))
        return f"not verified: the board does not report {what} ({self.map_kind}: {causes})"


class FrameError(Exception):
    """A failed exchange: ``kind`` is ``timeout``, ``checksum``, ``framing``, ``refused`` or
    ``content`` (the reply parsed but does not fit the board: wrong cell count ...)."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


class ByteReader:
    """Reads a reply from a pyserial port against one deadline (time.monotonic, s); one read
    blocks at most the port's own timeout (the response timeout) past it."""

    def __init__(self, port, deadline: float, what: str):
        self._port = port
        self.deadline = deadline
        self.what = what
        self.received = bytearray()

    def read_some(self) -> bytes:
        """The bytes that have arrived (at least one; a UART delivers a reply in pieces), or
        FrameError ``timeout`` once the deadline has passed with nothing more."""
        while time.monotonic() < self.deadline:
            chunk = self._port.read(max(1, getattr(self._port, "in_waiting", 0) or 0))
            if chunk:
                self.received += chunk
                return bytes(chunk)
        got = bytes(self.received[-32:]).hex(" ") or "nothing"
        raise FrameError("timeout", f"{self.what}: reply incomplete after the response timeout "
                                    f"({len(self.received)} bytes: {got})")


class PolledSerialLink(LinkBase):
    """Host side of a polled UART board. Subclasses implement :meth:`read_sample` (one poll's
    exchanges through :meth:`exchange`, decoded into a :class:`LinkSample`) and
    :meth:`identity`, and set :attr:`capabilities` (what the board reports).

    - ``port``: tty path or pyserial URL; ``baudrate``: bit/s (8N1)
    - ``timeout_s``: link timeout, s (no sample for this long is a LinkFault)
    - ``poll_s``: rig time between listener polls, s
    - ``response_timeout_s``: wall-clock wait for one reply, s; ``retries``: extra polls
      :meth:`latest` tries before it gives up
    """

    def __init__(self, name: str, port: str, n_cells: int, clock, *, baudrate: int, timeout_s: float,
                 poll_s: float, response_timeout_s: float = 0.5, retries: int = 2,
                 history_len: int = HISTORY_LEN):
        super().__init__(name, n_cells, clock, timeout_s, poll_s, history_len)
        import serial

        self.port = str(port)
        self.baudrate = int(baudrate)
        self.response_timeout_s = float(response_timeout_s)
        self.retries = int(retries)
        self.transactions = 0
        self.errors = 0
        self.error_counts: Counter = Counter()
        self.last_error = ""
        self._last_poll_t: float | None = None
        try:
            self._serial = serial.serial_for_url(self.port, baudrate=self.baudrate, bytesize=8, parity="N",
                                                 stopbits=1, timeout=self.response_timeout_s)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LinkFault(self.name, f"cannot open serial port {self.port} at {self.baudrate} baud: {exc}") from None

    # ----------------------------------------------------------------- exchanges
    def exchange(self, request: bytes, read_reply: Callable[[ByteReader], object], what: str):
        """Send ``request`` and parse the reply with ``read_reply(reader)`` (FrameError on failure).

        Bytes left over from an earlier reply (a late frame) are dropped first."""
        import serial

        self.transactions += 1
        try:
            self._serial.reset_input_buffer()
            self._serial.write(request)
            self._serial.flush()
            reader = ByteReader(self._serial, time.monotonic() + self.response_timeout_s, what)
            return read_reply(reader)
        except (serial.SerialException, OSError) as exc:
            raise FrameError("timeout", f"{what}: serial port error: {exc}") from None

    def attempt(self, action: Callable[[], object]):
        """``action()`` up to ``retries + 1`` times; each FrameError is counted, the last one
        raised. For reads done once (identity): a board waking from sleep may not answer
        the first request."""
        for k in range(self.retries + 1):
            try:
                return action()
            except FrameError as err:
                self.count_error(err)
                if k == self.retries:
                    raise

    def count_error(self, err: FrameError) -> None:
        """Count a failed exchange (kind and text kept for the fault message)."""
        self.errors += 1
        self.error_counts[err.kind] += 1
        self.last_error = str(err)

    def read_sample(self, t: float) -> LinkSample:  # pragma: no cover - abstract
        raise NotImplementedError

    # ----------------------------------------------------------------- polling
    def poll(self) -> LinkSample | None:
        """One poll now: the sample (appended to the history), or None after a counted error."""
        t = self.clock.now()
        self._last_poll_t = t
        try:
            s = self.read_sample(t)
        except FrameError as err:
            self.count_error(err)
            return None
        s = self.blank_unreported(s)
        self._history.append(s)
        return s

    def blank_unreported(self, s: LinkSample) -> LinkSample:
        """``s`` with every quantity the board does not report (:attr:`capabilities`) at its
        default (no balancing, flag clear, FET open, no pack value or state): what a profile
        says the board leaves empty is never read as if it were evidence."""
        import numpy as np

        from ..protocols import BmsFlags

        c = self.capabilities
        flags = BmsFlags(**{k: bool(getattr(s.flags, k)) and c.has(k) for k in ("hvc", "lvc", "ot", "ut")})
        return replace(
            s, flags=flags, balancing=s.balancing if c.has("balancing") else np.zeros(len(s.balancing), bool),
            charge_fet=s.charge_fet and c.has("charge_fet"), discharge_fet=s.discharge_fet and c.has("discharge_fet"),
            pack_v=s.pack_v if c.has("pack_v") else None, pack_a=s.pack_a if c.has("pack_a") else None,
            state=s.state if c.has("state") else None,
        )

    def latest(self) -> LinkSample:
        """Poll the board (up to ``retries + 1`` times); LinkFault naming the last error if none answers."""
        for _ in range(self.retries + 1):
            s = self.poll()
            if s is not None:
                return s
        raise LinkFault(self.name, f"no valid reply in {self.retries + 1} polls; {self._silence_detail()}")

    def _refresh(self) -> None:
        if self._last_poll_t is None or self.clock.now() > self._last_poll_t:
            self.poll()

    def _on_clock(self, now: float) -> None:
        if self._last_poll_t is None or now - self._last_poll_t >= self.poll_s:
            self.poll()

    def _silence_detail(self) -> str:
        if not self.errors:
            return f"{self.transactions} requests on {self.port}, no link error"
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.error_counts.items()))
        s = "" if self.errors == 1 else "s"
        return f"{self.errors} link error{s} on {self.port} ({kinds}); last: {self.last_error}"

    @property
    def reports(self):
        """What the board reports (:class:`rig.links.base.Capabilities`)."""
        return self.capabilities

    def close(self) -> None:
        super().close()
        ser, self._serial = getattr(self, "_serial", None), None
        if ser is not None:
            ser.close()
