"""The CAN link's pump against plain python-can + cantools decoding of the same frames.

:func:`pump_vs_cantools` queues the same stream of frames (a multiplexed DBC, 18 cells by
default: the reference board's DBC and signal map) on two python-can ``virtual`` buses and
times, side by side and best of ``repeats``: (a) :meth:`CanBmsLink.pump` (bus read, decode,
pages, staleness, sample assembly) and (b) the plain loop a lab would write:
``bus.recv(0)`` then ``db.decode_message(id, data, decode_choices=False)``. The ratio is
(a)'s frames/s over (b)'s (``pump_vs_cantools``); the issue's target is >= 0.9.

Same work: both read every frame from a python-can bus and both decode every frame. The
pump decodes on its compiled fast path (:mod:`rig.links.can_fastpath`: the whole frame
unpacked with the very bitstruct formats cantools builds, each signal the map uses scaled
by its own cantools conversion; the multiplexer, alive counter and the like are unpacked
but not scaled, as nobody reads them) and on top assembles a sample per cycle; the result
reports ``pump_frames_decoded`` (asserted equal to ``frames``). ``fast_path=False`` links
decode with ``Message.decode`` and give identical samples
(``tests/links/test_can_fastpath.py``).
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


def _stream(n_cells: int, n_frames: int, period_s: float) -> list:
    from ..sim.can_tx import CanTransmitter

    tx = CanTransmitter(DBC, f"tp-{uuid.uuid4().hex[:8]}", n_cells)
    rng = np.random.default_rng(0)
    frames, k = [], 0
    try:
        while len(frames) < n_frames:
            tel = SimpleNamespace(cell_v=3.3 + 0.05 * rng.standard_normal(n_cells), temps_c=25 + rng.standard_normal(n_cells + 1),
                                  balancing=rng.random(n_cells) < 0.3, hvc=False, lvc=False, ot=False, ut=False,
                                  charge_fet=True, discharge_fet=True, pack_v=3.3 * n_cells, pack_a=10.0,
                                  serial="TP-000001", hw_revision="C", fw_version="2.3.1", state="charge")
            frames += [(k * period_s, fid, data) for fid, data in tx.encode(k * period_s, tel)]
            k += 1
    finally:
        tx.close()
    return frames


def _queue(frames):
    import can

    channel = f"tp-{uuid.uuid4().hex[:8]}"
    rx = can.Bus(interface="virtual", channel=channel, preserve_timestamps=True)
    with can.Bus(interface="virtual", channel=channel, preserve_timestamps=True) as tx:
        for t, fid, data in frames:
            tx.send(can.Message(arbitration_id=fid, data=data, is_extended_id=False, timestamp=t))
    return rx


def pump_vs_cantools(n_cells: int = 18, n_frames: int = 30_000, repeats: int = 3, period_s: float = 0.25) -> dict:
    """Frames/s of the link's pump and of python-can + cantools on the same frames (best of
    ``repeats`` each, interleaved); ``pump_vs_cantools`` = pump / plain."""
    import cantools

    from .can_link import CanBmsLink

    frames = _stream(n_cells, n_frames, period_s)
    db = cantools.database.load_file(str(DBC))
    best_pump = best_plain = float("inf")
    samples = decoded = 0
    for _ in range(repeats):
        bus = _queue(frames)
        t = [0.0]
        clock = VirtualClock(lambda dt: t.__setitem__(0, t[0] + dt), lambda: t[0])
        link = CanBmsLink("throughput", bus, DBC, SIGNAL_MAP, n_cells, clock, timeout_s=1e9, own_bus=True)
        t0 = time.perf_counter()
        got = link.pump()
        best_pump = min(best_pump, time.perf_counter() - t0)
        samples, decoded = link.sample_count, link.frames_decoded
        link.close()
        assert got == decoded == len(frames)
        bus = _queue(frames)
        decode, recv, n = db.decode_message, bus.recv, 0
        t0 = time.perf_counter()
        while (msg := recv(0)) is not None:
            decode(msg.arbitration_id, msg.data, decode_choices=False)
            n += 1
        best_plain = min(best_plain, time.perf_counter() - t0)
        bus.shutdown()
        assert n == len(frames)
    pump_fps, plain_fps = len(frames) / best_pump, len(frames) / best_plain
    return {"frames": len(frames), "n_cells": n_cells, "samples": samples, "dbc": DBC.name,
            "pump_frames_decoded": decoded,
            "pump_frames_per_s": pump_fps, "cantools_frames_per_s": plain_fps, "pump_vs_cantools": pump_fps / plain_fps,
            "wall_s": best_pump + best_plain, "simulated_s": frames[-1][0] + period_s}
