"""The bench board's CAN frames carried over a network CAN bus (a socketcand bridge).

On the virtual bench the board's CAN counterpart sends on a python-can ``virtual`` channel
inside the run's process. When the rig's CAN port is a bus served over the network — an
exported ``CANPort`` (``interface: socketcand``, :mod:`rig.can_bridge` on the exporter
host) — :class:`CanRelay` puts every frame of that channel onto the network bus, so the
board's frames go client → bridge → the exporter host's bus → bridge → the rig's link,
through the same TCP/socketcand path a real board's frames take.

Time: the board runs in virtual time; socketcand's ``send`` carries no time and the bridge
stamps a frame on its own (wall) clock. The relay works in lockstep: after each telemetry
cycle it sends the cycle's frames and waits (wall clock, up to :data:`RELAY_TIMEOUT_S`)
until its *return* connection to the bridge has received them back, and hands each frame
it received to the rig's link — on a channel of its own, :attr:`CanRelay.channel` — stamped
with the board time of the frame it sent. So the link holds every sample of a cycle before
the clock moves on, with the same rig times as on the local bench, and every frame it reads
crossed the bridge both ways. A frame not back in time is logged and counted
(:attr:`CanRelay.lost`); the link then misses that sample, which its coverage rules treat as
a silent board. Frames of other senders on the network bus are not handed on.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)

RELAY_TIMEOUT_S = 5.0  # wall-clock bound for one cycle's frames to come back through the bridge, s


class CanRelay:
    """Relay the frames of virtual channel ``channel`` (the bench board's) onto the network
    bus ``endpoint`` (an :class:`~rig.links.registry.Endpoint`: ``interface``, ``address`` =
    channel, ``options`` = host/port ...)."""

    def __init__(self, channel: str, endpoint):
        import can

        options = dict(endpoint.options)
        self.name = f"{endpoint.interface}:{endpoint.address}"
        self.channel = f"{channel}-via-{endpoint.address}"
        """The local channel the link opens: the frames as they came back through the network bus."""
        self.tap = can.Bus(interface="virtual", channel=channel, preserve_timestamps=True)
        self.to_link = can.Bus(interface="virtual", channel=self.channel, preserve_timestamps=True)
        self.out = self.back = None
        try:
            self.out = can.Bus(interface=endpoint.interface, channel=endpoint.address, **options)
            self.back = can.Bus(interface=endpoint.interface, channel=endpoint.address, **options)
        except BaseException:
            self.close()
            raise
        self.frames_relayed = 0
        """Frames sent to the network bus, received back through it and handed to the link."""
        self.lost = 0
        """Frames sent that did not come back within RELAY_TIMEOUT_S."""

    def flush(self) -> int:
        """Send every frame the board put on its channel since the last flush, wait until
        each came back through the network bus and hand it to the link; returns the frames
        relayed."""
        pending = []
        while (msg := self.tap.recv(0)) is not None:
            self.out.send(msg)
            pending.append(msg)
        deadline = time.monotonic() + RELAY_TIMEOUT_S
        got = 0
        while got < len(pending):
            left = deadline - time.monotonic()
            back = self.back.recv(left) if left > 0 else None
            if back is None:
                self.lost += len(pending) - got
                log.error("CAN relay %s: %d of %d frames did not come back within %g s", self.name,
                          len(pending) - got, len(pending), RELAY_TIMEOUT_S)
                break
            sent = pending[got]
            if back.arbitration_id != sent.arbitration_id or bytes(back.data) != bytes(sent.data):
                continue  # another sender's frame on the network bus
            back.timestamp = sent.timestamp  # the board's time, s
            self.to_link.send(back)
            got += 1
        self.frames_relayed += got
        return got

    def close(self) -> None:
        for bus in (self.tap, self.to_link, self.out, self.back):
            try:
                if bus is not None:
                    bus.shutdown()
            except Exception:  # pragma: no cover - best effort
                pass
