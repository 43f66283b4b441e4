"""A simulated Bloomy BS1200 bus: units that speak the BS1200 CAN frames on python-can's virtual bus.

What a unit answers (standard 11-bit IDs, ``base + box ID``; the frame layout the ``bs1200``
package documents and encodes):

- commands it obeys: 0x510 set one cell voltage [ch-1, u16 LE, 0.1 mV], 0x500 set every
  cell voltage [u16], 0x550 enable one cell [ch-1, on], 0x540 enable every cell [on], 0x480
  set every cell's limits [u16 sink, u16 source, 0.1 mA], 0x4A0/0x4B0 one cell's sink/source
  limit [ch-1, u16]
- broadcasts every ``period_s``: 0x100 status [fan 0x10 = no fault, three board
  temperatures °C], 0x120/0x130/0x140 voltage readbacks (4 x u16 LE, 0.1 mV),
  0x180/0x190/0x1A0 current readbacks (4 x u16 LE, 0.1 mA offset by 32768)

A channel reads back its set voltage when enabled and 0 V when disabled; its current is
``load_a`` (what the board draws, + sourced) clamped to its source/sink limits, 0 when off.
Every command frame received is kept in ``received`` (the tests' proof of what reached it).
"""

from __future__ import annotations

import contextlib
import struct
import threading
import uuid

import can
import can.interfaces.virtual
import numpy as np

N = 12
SYNC_ID = 0x7FF  # a test marker frame (no BS1200 frame uses it)
_COMMANDS = {
    128: "hil", 512: "dio", 544: "ao", 1024: "config", 1152: "set_I_all", 1184: "set_sink", 1200: "set_source",
    1280: "set_V_all", 1296: "set_cell_V", 1344: "enable_all", 1360: "enable_cell",
}


class SimUnit:
    def __init__(self, box_id: int):
        self.box_id = box_id
        self.set_v = np.zeros(N)
        self.enabled = np.zeros(N, dtype=bool)
        self.sink_a = np.zeros(N)
        self.source_a = np.zeros(N)
        self.load_a = np.zeros(N)
        self.temps_c = [31, 33, 29]

    def apply(self, kind: str, data: bytes):
        if kind == "set_cell_V":
            self.set_v[data[0]] = struct.unpack("<H", data[1:3])[0] * 1e-4
        elif kind == "set_V_all":
            self.set_v[:] = struct.unpack("<H", data[0:2])[0] * 1e-4
        elif kind == "enable_cell":
            self.enabled[data[0]] = bool(data[1])
        elif kind == "enable_all":
            self.enabled[:] = bool(data[0])
        elif kind == "set_I_all":
            sink, source = struct.unpack("<HH", data[0:4])
            self.sink_a[:], self.source_a[:] = sink * 1e-4, source * 1e-4
        elif kind == "set_sink":
            self.sink_a[data[0]] = int.from_bytes(data[1:3], "little") * 1e-4
        elif kind == "set_source":
            self.source_a[data[0]] = int.from_bytes(data[1:3], "little") * 1e-4

    def frames(self) -> list[can.Message]:
        v = np.where(self.enabled, self.set_v, 0.0)
        i = np.where(self.enabled, np.clip(self.load_a, -self.sink_a, self.source_a), 0.0)
        v_codes = np.round(v / 1e-4).astype(int)
        i_codes = np.round(i / 1e-4).astype(int) + 32768
        out = [can.Message(arbitration_id=256 + self.box_id, is_extended_id=False,
                           data=bytes([16, *self.temps_c, 0, 0, 0, 0]))]
        for k, base in enumerate((288, 304, 320)):
            out.append(can.Message(arbitration_id=base + self.box_id, is_extended_id=False,
                                   data=struct.pack("<4H", *v_codes[4 * k:4 * k + 4])))
        for k, base in enumerate((384, 400, 416)):
            out.append(can.Message(arbitration_id=base + self.box_id, is_extended_id=False,
                                   data=struct.pack("<4H", *i_codes[4 * k:4 * k + 4])))
        return out


class SimBS1200Bus:
    """BS1200 units on a virtual CAN channel; ``with`` starts and stops them."""

    def __init__(self, box_ids=(1,), period_s: float = 0.005, channel: str | None = None):
        self.channel = channel or f"bs1200-{uuid.uuid4().hex[:8]}"
        self.units = {b: SimUnit(b) for b in box_ids}
        self.period_s = period_s
        self.received: list[can.Message] = []
        self.publishing = True
        self._lock = threading.RLock()  # publish() inside paused()
        self._stop = threading.Event()
        self._seen = threading.Condition()
        self._bus = can.Bus(interface="virtual", channel=self.channel)
        self._probe = can.Bus(interface="virtual", channel=self.channel)
        self._synced = 0
        self._sync_count = 0
        self._threads = [threading.Thread(target=self._rx_loop, daemon=True),
                         threading.Thread(target=self._tx_loop, daemon=True)]

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)
        self._bus.shutdown()
        self._probe.shutdown()

    def _rx_loop(self):
        while not self._stop.is_set():
            msg = self._bus.recv(timeout=0.05)
            if msg is None:
                continue
            if msg.arbitration_id == SYNC_ID:
                with self._seen:
                    self._synced = int.from_bytes(msg.data, "little")
                    self._seen.notify_all()
                continue
            box, base = msg.arbitration_id & 0x0F, msg.arbitration_id & ~0x0F
            with self._lock:
                unit = self.units.get(box)
                if unit is not None and base in _COMMANDS:
                    unit.apply(_COMMANDS[base], bytes(msg.data))
            with self._seen:
                self.received.append(msg)
                self._seen.notify_all()

    def _tx_loop(self):
        while not self._stop.wait(self.period_s):
            if self.publishing:
                self.publish()

    def publish(self) -> None:
        """Send every unit's status and readback frames now (what the units do every period)."""
        with self._lock:  # built and sent under the lock: nothing is sent while paused()
            for f in [f for u in self.units.values() for f in u.frames()]:
                self._bus.send(f)

    @contextlib.contextmanager
    def paused(self):
        """Hold the units' periodic publishing (and their command handling) inside the block."""
        with self._lock:
            yield

    def flush_receivers(self, timeout: float = 2.0) -> None:
        """Return once every other receiver on the channel (the driver) has handled every frame sent before this call.

        A marker goes out last; a receiver's queue is empty only once its reader took the
        marker, and a python-can Notifier takes a frame only after its listeners have handled
        the one before. Waits on each queue's condition (notified on every ``get``).
        """
        self._sync_count += 1
        self._probe.send(can.Message(arbitration_id=SYNC_ID, is_extended_id=False,
                                     data=self._sync_count.to_bytes(4, "little")))
        with can.interfaces.virtual.channels_lock:
            queues = [q for q in can.interfaces.virtual.channels[self.channel] if q is not self._probe.queue and q is not self._bus.queue]
        for q in queues:
            with q.not_full:
                if not q.not_full.wait_for(lambda: not q.queue, timeout=timeout):
                    raise AssertionError("a receiver on the simulated BS1200 bus did not take its frames in time")

    def sync(self, timeout: float = 2.0) -> None:
        """Return once every frame sent on the bus before this call has been processed.

        The virtual bus queues frames in send order, so a marker sent now arrives after them.
        """
        self._sync_count += 1
        n = self._sync_count
        self._probe.send(can.Message(arbitration_id=SYNC_ID, is_extended_id=False, data=n.to_bytes(4, "little")))
        with self._seen:
            if not self._seen.wait_for(lambda: self._synced >= n, timeout=timeout):
                raise AssertionError("the simulated BS1200 did not process its queue in time")

    def commands(self, since: int = 0) -> list[tuple[str, int, bytes]]:
        return [(_COMMANDS.get(m.arbitration_id & ~0x0F, hex(m.arbitration_id)), m.arbitration_id & 0x0F, bytes(m.data))
                for m in self.received[since:]]
