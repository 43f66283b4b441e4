"""Benchmarks of the DUT links' hot paths (``bmsrig bench`` calls these).

- :func:`can_decode_rate`: frames/s through :meth:`CanBmsLink.pump` (bus read + cantools
  decode + sample assembly) for a fully loaded reference-board stream.
- :func:`modbus_poll_time`: wall time of one sample poll (block read over a pty, RTU+CRC).
"""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace

import numpy as np

from ..clock import VirtualClock
from ..profile import PROFILE_DIR

DBC = PROFILE_DIR / "reference-bms.dbc"
SIGNAL_MAP = PROFILE_DIR / "reference-bms-can.yaml"
REGISTER_MAP = PROFILE_DIR / "reference-bms-modbus.yaml"


def _telemetry(n: int, rng: np.random.Generator):
    return SimpleNamespace(
        cell_v=3.3 + 0.05 * rng.standard_normal(n), temps_c=25 + rng.standard_normal(n + 1),
        balancing=rng.random(n) < 0.3, hvc=False, lvc=False, ot=False, ut=False,
        charge_fet=True, discharge_fet=True, pack_v=3.3 * n, pack_a=10.0,
        serial="BENCH-000001", hw_revision="C", fw_version="2.3.1", state="charge",
    )


def _clock():
    t = [0.0]
    return VirtualClock(lambda dt: t.__setitem__(0, t[0] + dt), lambda: t[0]), t


def can_decode_rate(n_frames: int = 100_000, n_cells: int = 32, period_s: float = 0.25) -> dict:
    """Queue ``n_frames`` reference-board frames on a virtual bus (not timed), then time the
    link draining and decoding them. Returns frames, samples, simulated_s (the stream's
    span of board time), wall_s, frames_per_s."""
    import can

    from ..sim.can_tx import CanTransmitter
    from .can_link import CanBmsLink

    channel = f"bench-{uuid.uuid4().hex[:8]}"
    clock, t = _clock()
    bus = can.Bus(interface="virtual", channel=channel, preserve_timestamps=True)
    link = CanBmsLink("bench", bus, DBC, SIGNAL_MAP, n_cells, clock, timeout_s=1e9, own_bus=True)
    tx = CanTransmitter(DBC, channel, n_cells)
    rng = np.random.default_rng(0)
    tels = [_telemetry(n_cells, rng) for _ in range(16)]
    sent, k = 0, 0
    try:
        while sent < n_frames:
            sent += tx.send(k * period_s, tels[k % len(tels)])
            k += 1
        t0 = time.perf_counter()
        got = link.pump()
        wall = time.perf_counter() - t0
        samples = link.sample_count
    finally:
        link.close()
        tx.close()
    return {"frames": got, "samples": samples, "n_cells": n_cells, "simulated_s": k * period_s, "wall_s": wall,
            "frames_per_s": got / wall if wall > 0 else float("inf")}


def modbus_poll_time(n_polls: int = 200, n_cells: int = 16) -> dict:
    """Time ``n_polls`` sample polls of the sim board's Modbus slave over a pty."""
    from ..sim.modbus_slave import ModbusSlave
    from .modbus_link import ModbusBmsLink

    clock, _ = _clock()
    slave = ModbusSlave(REGISTER_MAP, n_cells).start()
    slave.update(_telemetry(n_cells, np.random.default_rng(0)))
    link = None
    try:
        link = ModbusBmsLink("bench", slave.port, REGISTER_MAP, n_cells, clock)
        link.latest()  # open + warm up
        t0 = time.perf_counter()
        for _ in range(n_polls):
            link.latest()
        wall = time.perf_counter() - t0
        reads = link.plan.sample_reads
    finally:
        if link is not None:
            link.close()
        slave.close()
    return {"polls": n_polls, "n_cells": n_cells, "transactions_per_poll": len(reads),
            "registers": sum(c for _, c in reads), "wall_s": wall, "ms_per_poll": 1e3 * wall / n_polls}


if __name__ == "__main__":  # python -m rig.links.bench
    import json

    print(json.dumps({"can_decode": can_decode_rate(), "modbus_poll": modbus_poll_time()}, indent=2))
