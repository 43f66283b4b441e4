"""The simulated board's end of the DUT link: :class:`DutPorts`.

The board publishes one :class:`~rig.sim.harness.Telemetry` per cycle; ``DutPorts`` hands it
to the bench counterpart of the profile's link kind (:mod:`rig.links.registry`: a CAN
transmitter through the board's own DBC and signal map, a Modbus RTU slave on a pty, or a
third-party kind's counterpart). The counterpart is created on the first :meth:`endpoint`
call (when the rig opens the link); until then nothing is sent.

Muting (bench defects): ``silent_while_balancing`` keeps the board quiet while any bleed
switch is commanded; ``telemetry_gap:t=..,s=..`` keeps it quiet for ``s`` seconds from
``t`` (rig time, s). A quiet board's cycles are not published and its counterpart is
``muted`` (a polled slave stops answering).

A CAN board on a network bus (a rig whose CAN port is an exported ``CANPort``, served by
the exporter's socketcand bridge): :meth:`DutPorts.over_network` relays the counterpart's
frames onto that bus (:class:`rig.sim.can_relay.CanRelay`) after every cycle.

Power-on identity: until the board's first cycle, the counterpart holds a cycle carrying only
the board's identity (``bench:`` serial, HW revision, FW version; blank with the
``no_identity`` defect), so a polled board answers its identity registers from the start.
"""

from __future__ import annotations

from typing import Callable

from ..errors import LinkFault
from ..links.registry import BenchCounterpart, kind_of
from .defects import board_defects


class DutPorts:
    """The bench board's link endpoint(s) for ``profile``.

    - ``name``: unique per bench (names the virtual CAN channel, a pty thread ...)
    - ``defects``: the board's :class:`~rig.sim.defects.Defects` (the muting ones are read)
    - ``bleeding``: ``() -> bool``, True while the board commands any bleed switch
    """

    def __init__(self, profile, name: str, defects=(), bleeding: Callable[[], bool] = lambda: False):
        self.profile = profile
        self.name = str(name)
        self._bleeding = bleeding
        self._silent_bal = "silent_while_balancing" in defects
        self._gaps = [(d["t"], d["t"] + d["s"]) for d in defects.all("telemetry_gap")] if hasattr(defects, "all") else []
        self._no_identity = board_defects(defects).no_identity
        self._port: BenchCounterpart | None = None
        self.relay = None
        """The :class:`~rig.sim.can_relay.CanRelay` once :meth:`over_network` made one."""
        self._last = None
        self.muted = False
        """True while a muting defect keeps the board quiet (updated on every publish)."""

    @property
    def port(self) -> BenchCounterpart | None:
        """The counterpart, once :meth:`endpoint` created it."""
        return self._port

    def endpoint(self) -> str:
        """The address the host link opens (virtual CAN channel, pty path ...); creates the
        counterpart on the first call and lets it serve the last telemetry, if any."""
        if self._port is None:
            port = kind_of(self.profile).bench(self.profile, self.name)
            port.muted = self.muted
            if not self.muted:
                port.hold(self._last if self._last is not None else self.power_on())
            self._port = port
        return self._port.address

    def over_network(self, endpoint):
        """Put the board's CAN frames on the network bus ``endpoint`` (an
        :class:`~rig.links.registry.Endpoint` with a python-can interface, e.g. socketcand);
        returns the endpoint the host link opens: the frames as they came back through that
        bus, in the board's time."""
        from ..links.registry import Endpoint
        from .can_relay import CanRelay

        if self.relay is None:
            channel = self.endpoint()
            try:
                self.relay = CanRelay(channel, endpoint)
            except Exception as exc:  # python-can: CanError, OSError, ValueError ...
                raise LinkFault(f"CAN {endpoint.interface}:{endpoint.address}",
                                f"the bench board cannot reach the network CAN bus: {exc}") from None
            self.relay.flush()
        return Endpoint(address=self.relay.channel, bench=True)

    def commands(self) -> dict:
        """The board commands the host sent (``{name: {parameter: value}}``) as the counterpart
        received them through the link (its ``commands_received``; read now with its ``poll``
        when it has one); empty before the link opened or for a kind that carries none."""
        port = self._port
        if port is None:
            return {}
        poll = getattr(port, "poll", None)
        if poll is not None and not self.muted:
            poll()
        return dict(getattr(port, "commands_received", {}) or {})

    def power_on(self):
        """The cycle a board holds before its first sample: identity only, cells and
        temperatures 0, FETs open."""
        import numpy as np

        from .harness import Telemetry

        n, bench = self.profile.cells, self.profile.bench
        return Telemetry(np.zeros(n), np.zeros(n + 1), np.zeros(n, bool), charge_fet=False, discharge_fet=False,
                         serial="" if self._no_identity else bench.serial, hw_revision=bench.hw_revision,
                         fw_version="" if self._no_identity else bench.fw_version)

    def publish(self, tel, t: float) -> None:
        """One telemetry cycle of the board at rig time ``t`` (s), unless a defect mutes it."""
        self._last = tel
        if self._silent_bal or self._gaps:
            quiet = (self._silent_bal and bool(self._bleeding())) or any(a <= t < b for a, b in self._gaps)
            self.muted = quiet
            if self._port is not None:
                self._port.muted = quiet
            if quiet:
                return
        if self._port is not None:
            self._port.publish(tel, t)
            if self.relay is not None:
                self.relay.flush()

    def close(self) -> None:
        """Close the counterpart (idempotent); a later :meth:`endpoint` opens a new one."""
        port, self._port = self._port, None
        relay, self.relay = self.relay, None
        if relay is not None:
            relay.close()
        if port is not None:
            try:
                port.close()
            except Exception:  # pragma: no cover - best effort
                pass
