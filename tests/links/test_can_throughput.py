"""The throughput benchmark measures the pump and plain cantools on the very same frames."""

from __future__ import annotations

from rig.links.can_throughput import pump_vs_cantools


def test_pump_and_cantools_decode_the_same_stream_side_by_side():
    r = pump_vs_cantools(n_cells=18, n_frames=2_000, repeats=1)
    assert r["frames"] >= 2_000 and r["n_cells"] == 18
    # one sample per telemetry cycle: the pump assembled every cycle it was given
    assert r["samples"] == round(r["simulated_s"] / 0.25)
    assert r["pump_frames_decoded"] == r["frames"]  # the pump decoded every frame, as cantools did
    assert r["pump_vs_cantools"] == r["pump_frames_per_s"] / r["cantools_frames_per_s"] > 0
