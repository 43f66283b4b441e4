"""The bench board's CAN frames carried over a network CAN bus (a socketcand bridge).

On the virtual bench the board's CAN counterpart sends on a python-can ``virtual`` channel
inside the run's process. When the rig's CAN port is a bus served over the network — an
exported ``CANPort`` (``interface: socketcand``, :mod:`rig.can_bridge` on the exporter
host) — :class:`CanRelay` puts every frame of that channel onto the network bus, so the
board's frames go client → bridge → the exporter host's bus → bridge → the rig's link,
through the same TCP/socketcand path a real board's frames take.

Time: the board runs in virtual time; the bridge stamps each frame when it puts it on its
bus (wall clock of the exporter host, s) and drops the board's time (socketcand's ``send``
carries none). The relay works in lockstep: after each telemetry cycle it sends the cycle's
frames and waits (wall clock, up to :data:`RELAY_TIMEOUT_S`) until a second connection, the
*monitor*, has received them back from the bridge, and records each bridge stamp with the
board time of its frame. :meth:`CanRelay.rig_time` maps a bridge stamp back to board (rig)
time, so the link's samples carry the board's time exactly as on the local bench. A cycle
not relayed in time is logged and counted (:attr:`CanRelay.lost`); the link then sees no
sample for it, which its coverage rules treat as a silent board.
"""

from __future__ import annotations

import bisect
import logging
import time

log = logging.getLogger(__name__)

RELAY_TIMEOUT_S = 5.0  # wall-clock bound for one cycle's frames to come back through the bridge, s
KEEP_STAMPS = 50_000  # stamps kept behind the link's last lookup before they are dropped


class CanRelay:
    """Relay the frames of virtual channel ``channel`` (the bench board's) onto the network
    bus ``endpoint`` (an :class:`~rig.links.registry.Endpoint`: ``interface``, ``address`` =
    channel, ``options`` = host/port ...)."""

    def __init__(self, channel: str, endpoint):
        import can

        options = dict(endpoint.options)
        self.name = f"{endpoint.interface}:{endpoint.address}"
        self.tap = can.Bus(interface="virtual", channel=channel, preserve_timestamps=True)
        try:
            self.out = can.Bus(interface=endpoint.interface, channel=endpoint.address, **options)
            self.monitor = can.Bus(interface=endpoint.interface, channel=endpoint.address, **options)
        except BaseException:
            self.tap.shutdown()
            raise
        self._stamps: list[float] = []  # bridge stamps (wall clock of the bridge, s), in order
        self._board_t: list[float] = []  # board time of the frame with that stamp, s
        self.frames_relayed = 0
        """Frames sent to the network bus and received back through it."""
        self.lost = 0
        """Frames sent that did not come back within RELAY_TIMEOUT_S."""

    def flush(self) -> int:
        """Send every frame the board put on its channel since the last flush and wait until
        the monitor received each back; returns the frames relayed."""
        pending = []
        while (msg := self.tap.recv(0)) is not None:
            self.out.send(msg)
            pending.append(msg)
        deadline = time.monotonic() + RELAY_TIMEOUT_S
        got = 0
        while got < len(pending):
            left = deadline - time.monotonic()
            back = self.monitor.recv(max(left, 0.0)) if left > 0 else None
            if back is None:
                self.lost += len(pending) - got
                log.error("CAN relay %s: %d of %d frames did not come back within %g s", self.name,
                          len(pending) - got, len(pending), RELAY_TIMEOUT_S)
                break
            sent = pending[got]
            if back.arbitration_id != sent.arbitration_id or bytes(back.data) != bytes(sent.data):
                continue  # another sender's frame on the bus
            self._stamps.append(back.timestamp)
            self._board_t.append(sent.timestamp)
            got += 1
        self.frames_relayed += got
        return got

    def rig_time(self, stamp: float) -> float:
        """The board time (s) of the relayed frame the bridge stamped ``stamp`` (the latest
        relayed at or before it)."""
        i = bisect.bisect_right(self._stamps, stamp) - 1
        if i < 0:
            return self._board_t[0] if self._board_t else 0.0
        t = self._board_t[i]
        if i > 2 * KEEP_STAMPS:  # the link reads in order: what lies far behind is not asked again
            del self._stamps[:i - KEEP_STAMPS], self._board_t[:i - KEEP_STAMPS]
        return t

    def close(self) -> None:
        for bus in (self.tap, self.out, self.monitor):
            try:
                bus.shutdown()
            except Exception:  # pragma: no cover - best effort
                pass
