"""The link benchmarks run and report their figures (the rates are figures of
``bmsrig bench can-decode``, not wall-clock limits: a loaded machine must not fail a test)."""

from rig.links.bench import can_decode_rate, modbus_poll_time


def test_can_decode_rate():
    r = can_decode_rate(n_frames=20_000)
    assert r["frames"] >= 20_000
    assert r["samples"] >= 20_000 // 26  # 32 cells: 25 frames per cycle (+ identity pages)
    assert r["frames_per_s"] > 0, r


def test_modbus_poll_time():
    r = modbus_poll_time(n_polls=20, n_cells=16)
    assert r["transactions_per_poll"] == 1
    assert r["ms_per_poll"] > 0, r
