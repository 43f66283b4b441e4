"""Evidence or no verdict: a judged window of link samples must be covered, or LinkFault.

Against real links: the CAN link on a python-can virtual bus fed by the sim board's
transmitter, the Modbus link over a pty, and the whole bench rig (``build_rig``: the
driver a plan gets, the simulated board, the ``silent_while_balancing`` defect).
"""

from __future__ import annotations

import numpy as np
import pytest

from rig.build import build_rig
from rig.errors import LinkFault
from rig.links.can_link import CanBmsLink
from rig.links.modbus_link import ModbusBmsLink
from rig.profile import load_profile
from rig.sim.can_tx import CanTransmitter
from rig.sim.modbus_slave import ModbusSlave
from testplans import procedures

from .conftest import REF_DBC, REF_MAP, REF_REGS, SimBoard, make_telemetry


def can_setup(can_bus, channel, clock, n=8, timeout_s=2.0):
    link = CanBmsLink("dut", can_bus, REF_DBC, REF_MAP, n, clock, timeout_s=timeout_s)
    tx = CanTransmitter(REF_DBC, channel, n)
    board = SimBoard(clock, tx, period=0.25)
    board.telemetry = make_telemetry(n)
    return link, tx, board


# --------------------------------------------------------------------------- the gap rule


def test_covered_window_returns_its_samples(can_bus, channel, clock):
    link, tx, board = can_setup(can_bus, channel, clock)
    clock.sleep(1.0)
    t0 = clock.now()
    clock.sleep(4.0)
    got = link.history(since=t0)
    assert [s.t for s in got] == pytest.approx([1.0 + 0.25 * k for k in range(17)])
    # a closed window [since, until] keeps only its own samples
    assert [s.t for s in link.history(2.0, 3.0)] == pytest.approx([2.0, 2.25, 2.5, 2.75, 3.0])
    tx.close()


def test_gap_inside_the_window_is_a_link_fault(can_bus, channel, clock):
    link, tx, board = can_setup(can_bus, channel, clock)
    clock.sleep(1.0)
    t0 = clock.now()
    clock.sleep(2.0)
    board.silent = True          # 3 s without a frame, then the board talks again
    clock.sleep(3.0)
    board.silent = False
    clock.sleep(2.0)
    with pytest.raises(LinkFault) as ei:
        link.history(since=t0)
    msg = str(ei.value)
    assert "board not judged" in msg and "no sample for 3.250 s from t=3.000 s" in msg, msg
    assert "longest gap allowed 2 s" in msg
    # the stretches either side of the gap are covered on their own
    assert len(link.history(t0, 3.0)) == 9
    assert len(link.history(since=6.5)) == 7
    # diagnostics may still look at a thin history
    assert len(link.history(since=t0, require_coverage=False)) == 9 + 8
    tx.close()


def test_silent_tail_and_silent_head_are_link_faults(can_bus, channel, clock):
    link, tx, board = can_setup(can_bus, channel, clock)
    clock.sleep(1.0)
    t0 = clock.now()
    board.silent = True           # the board stops: the window's end is not covered
    clock.sleep(2.5)
    with pytest.raises(LinkFault, match=r"board not judged.*no sample for 2\.500 s from t=1\.000 s"):
        link.history(since=t0)
    # a window that starts in the silence and ends after the board talks again: head gap
    t1 = clock.now()
    clock.sleep(1.0)
    board.silent = False
    clock.sleep(1.5)
    with pytest.raises(LinkFault, match="board not judged"):
        link.history(since=t1 - 1.5)
    tx.close()


def test_empty_window_longer_than_the_gap_limit_is_a_link_fault(can_bus, channel, clock):
    link, tx, board = can_setup(can_bus, channel, clock)
    board.silent = True
    clock.sleep(5.0)
    with pytest.raises(LinkFault, match=r"no sample at all in 5\.000 s.*no CAN frames received at all"):
        link.history(since=0.0)
    tx.close()


def test_gap_exactly_at_the_limit_is_covered(can_bus, channel, clock):
    link, tx, board = can_setup(can_bus, channel, clock, timeout_s=0.5)
    clock.sleep(1.0)
    t0 = clock.now()
    board.silent = True
    clock.sleep(0.4)               # samples at 1.0, then the next at 1.5: a 0.5 s gap
    board.silent = False
    clock.sleep(1.1)
    assert link.max_gap_s == 0.5
    assert [s.t for s in link.history(since=t0)][:2] == pytest.approx([1.0, 1.5])
    tx.close()


def test_window_older_than_the_bounded_history_names_the_cause(can_bus, channel, clock):
    link = CanBmsLink("dut", can_bus, REF_DBC, REF_MAP, 4, clock, history_len=10)
    tx = CanTransmitter(REF_DBC, channel, 4)
    board = SimBoard(clock, tx, period=0.25)
    board.telemetry = make_telemetry(4)
    clock.sleep(5.0)                # 21 samples, the last 10 held (t = 2.75 .. 5.0)
    with pytest.raises(LinkFault, match="holds only the last 10 samples"):
        link.history(since=0.0)
    assert len(link.history(since=3.0)) == 9
    tx.close()


# --------------------------------------------------------------------------- Modbus


@pytest.fixture
def slave():
    s = ModbusSlave(REF_REGS, 16).start()
    yield s
    s.close()


def test_modbus_window_covered_and_a_muted_board_is_a_link_fault(slave, clock):
    slave.update(make_telemetry(16))
    link = ModbusBmsLink("uart-dut", slave.port, REF_REGS, 16, clock, response_timeout_s=0.5, poll_s=0.25)
    t0 = clock.now()
    for _ in range(12):
        clock.sleep(0.25)
    got = link.history(since=t0)
    assert [s.t for s in got] == pytest.approx([0.25 * k for k in range(1, 13)])
    slave.muted = True
    with pytest.raises(LinkFault, match="no reply"):
        clock.sleep(0.25)
    link.close()


# --------------------------------------------------------------------------- plan procedures


def test_procedures_never_judge_an_empty_window(can_bus, channel, clock):
    """A short window with no sample yet is no evidence: LinkFault, not an empty list."""
    link, tx, board = can_setup(can_bus, channel, clock)
    clock.sleep(1.0)
    board.silent = True
    t0 = clock.now()
    clock.sleep(0.5)
    assert link.history(since=t0 + 0.01) == []    # shorter than the gap limit: no fault by itself
    with pytest.raises(LinkFault, match=r"board not judged: no sample from the board since t=1\.010 s \(the test\)"):
        procedures.window(link, t0 + 0.01, "the test")
    with pytest.raises(ValueError, match="no evidence"):
        procedures.most_channels([])
    tx.close()


def test_wait_sample_on_a_silent_board_is_a_link_fault_not_an_absence(can_bus, channel, clock):
    link, tx, board = can_setup(can_bus, channel, clock)
    clock.sleep(1.0)
    # talking board: the absence of the awaited condition is measured (None)
    assert procedures.wait_sample(link, clock, lambda s: s.flags.hvc, 3.0, "HVC", poll=0.1) is None
    # the board goes quiet for longer than the link timeout while the plan waits
    board.silent = True
    with pytest.raises(LinkFault, match="board not judged"):
        procedures.wait_sample(link, clock, lambda s: s.flags.hvc, 10.0, "HVC", poll=0.1)
    tx.close()


# --------------------------------------------------------------------------- the bench rig


def _bench(board: str, defects=()):
    return build_rig(None, load_profile(board), seed=1, defects=list(defects))


@pytest.mark.parametrize("board", ["reference-16s-lfp", "reference-4s-lfp-uart"])
def test_bench_board_silent_while_balancing_is_not_judged(board):
    """The plan's own link (driver) on the bench: a covered window while the board rests, a
    LinkFault once it balances and goes quiet."""
    rig = _bench(board, ["silent_while_balancing"])
    try:
        rig.baseline()
        p = rig.profile
        n = rig.emulator.n_channels
        samples = procedures.observe_window(rig.link, rig.clock, p, 10.0, "board at rest")
        assert len(samples) >= 10.0 / max(p.sampling.period_s, p.link.poll_s) - 1
        base = procedures.top_of_charge_v(p, rig.link)
        v = np.full(n, base)
        v[n // 2] = base + procedures.imbalance_mv(p) * 1e-3
        rig.emulator.set_voltages(v)
        with pytest.raises(LinkFault, match="board not judged|no reply"):
            procedures.observe_window(rig.link, rig.clock, p, p.balancing.start_latency_max_s + 2 * p.balancing.interval_s,
                                      "balancing on the high cell")
    finally:
        rig.close()


def test_bench_good_board_balancing_window_is_covered():
    rig = _bench("reference-16s-lfp")
    try:
        rig.baseline()
        p = rig.profile
        n = rig.emulator.n_channels
        base = procedures.top_of_charge_v(p, rig.link)
        v = np.full(n, base)
        v[n // 2] = base + procedures.imbalance_mv(p) * 1e-3
        rig.emulator.set_voltages(v)
        samples = procedures.observe_window(rig.link, rig.clock, p, 25.0, "balancing on the high cell")
        assert any(s.balancing[n // 2] for s in samples)
        gaps = np.diff([s.t for s in samples])
        assert gaps.max() <= p.sampling.period_s + 1e-6
    finally:
        rig.close()
