"""Plan waits use the rig clock's own waits (``clock.wait_until``): no wait loop of their
own in testplans/, and none spins on a remainder of time too small to move the clock (the
float-rounding hazard the plans once worked around is handled in ``rig.clock``)."""

import inspect
import re
import types

import numpy as np
import pytest

import testplans.cutoff as cutoff
import testplans.procedures as procedures
from rig.clock import VirtualClock
from rig.errors import LinkFault, WaitTimeout
from rig.protocols import BmsFlags, BmsSample


class CoarseWorld:
    """A world that cannot resolve steps below 1 ns and starts late (large rig times have a
    coarse float resolution): a step too small to move it is lost, as in rig.sim."""

    def __init__(self, t0: float = 3.0e6):
        self.t = t0
        self.steps = 0

    def advance(self, dt: float) -> None:
        self.steps += 1
        if self.steps > 100_000:
            raise RuntimeError("the wait spins: the clock does not move")
        if dt >= 1e-9:
            self.t += dt


class SpyClock(VirtualClock):
    """A virtual clock that counts its ``wait_until`` calls."""

    def __init__(self, world):
        super().__init__(world.advance, lambda: world.t)
        self.waits = 0

    def wait_until(self, *a, **k):
        self.waits += 1
        return super().wait_until(*a, **k)


class FakeLink:
    """A board that reports every ``period`` s; ``balancing`` is on from ``on_at`` (rig s)."""

    poll_s = 0.1
    name = "fake-link"

    def __init__(self, clock, period=0.1, on_at=float("inf"), silent_after=float("inf")):
        self.clock, self.period, self.on_at, self.silent_after = clock, period, on_at, silent_after

    def history(self, since=0.0, until=None, *, require_coverage=True):
        now = self.clock.now() if until is None else until
        k0 = int(np.ceil(since / self.period - 1e-9))
        out = []
        for k in range(k0, int(np.floor(now / self.period + 1e-9)) + 1):
            t = k * self.period
            if t > self.silent_after:
                break
            out.append(BmsSample(t=t, cell_v=np.full(4, 3.3), temps_c=np.array([25.0, 25.0]),
                                 balancing=np.array([t >= self.on_at] * 4), flags=BmsFlags(),
                                 charge_fet=True, discharge_fet=True))
        if require_coverage and (not out or now - out[-1].t > 1.0):
            raise LinkFault(self.name, "silent")
        return out


def profile(poll=0.1):
    return types.SimpleNamespace(link=types.SimpleNamespace(poll_s=poll),
                                 sampling=types.SimpleNamespace(filter_samples=4, period_s=0.1))


@pytest.mark.parametrize("timeout", [1.0 + 1e-12, 0.3 + 1e-10, 2.7, 1e-10])
def test_clock_wait_until_ends_on_a_remainder_too_small_to_move_the_clock(timeout):
    world = CoarseWorld()
    clock = VirtualClock(world.advance, lambda: world.t)
    t0 = clock.now()
    with pytest.raises(WaitTimeout):
        clock.wait_until(lambda: False, timeout, "never", poll=0.1)
    assert clock.now() - t0 == pytest.approx(timeout, abs=1e-6)
    assert world.steps <= int(timeout / 0.1) + 2


def test_wait_sample_returns_the_first_matching_sample_through_the_clock():
    world = CoarseWorld()
    clock = SpyClock(world)
    link = FakeLink(clock, on_at=world.t + 0.75)
    s = procedures.wait_sample(link, clock, lambda s: bool(s.balancing[0]), 2.0 + 1e-12, "balancing on")
    first_on = np.ceil(link.on_at / link.period - 1e-9) * link.period
    assert s is not None and s.balancing[0] and s.t == pytest.approx(first_on) and clock.waits == 1


def test_wait_sample_times_out_to_none_on_evidence_and_never_spins():
    world = CoarseWorld()
    clock = SpyClock(world)
    link = FakeLink(clock)
    t0 = clock.now()
    assert procedures.wait_sample(link, clock, lambda s: bool(s.balancing[0]), 1.0 + 1e-12, "never") is None
    assert clock.now() - t0 == pytest.approx(1.0, abs=1e-6) and clock.waits == 1


def test_wait_sample_with_a_silent_link_is_a_link_fault_not_an_absence():
    world = CoarseWorld()
    clock = SpyClock(world)
    link = FakeLink(clock, silent_after=world.t + 0.2)
    with pytest.raises(LinkFault):
        procedures.wait_sample(link, clock, lambda s: False, 3.0, "never")


def test_observe_passes_exactly_the_duration_in_poll_steps():
    world = CoarseWorld()
    clock = SpyClock(world)
    t0 = procedures.observe(clock, profile(poll=0.3), 1.0 + 1e-12)
    assert clock.now() - t0 == pytest.approx(1.0, abs=1e-6) and clock.waits == 1
    assert world.steps == 4  # 0.3 + 0.3 + 0.3 + 0.1


def test_cutoff_clock_wait_is_the_clock_wait():
    world = CoarseWorld()
    clock = SpyClock(world)
    t_on = world.t + 0.5
    assert cutoff.clock_wait(clock, lambda: world.t >= t_on, 2.0, 0.1) is True
    assert cutoff.clock_wait(clock, lambda: False, 0.7 + 1e-12, 0.1) is False
    assert clock.waits == 2


def test_soak_waits_until_the_board_reading_settles():
    world = CoarseWorld(t0=0.0)
    clock = SpyClock(world)
    chamber = types.SimpleNamespace(set_temperature=lambda c: None, wait_stable=lambda **k: 0.0)
    temps = iter([20.0, 24.0, 26.0, 26.1, 26.1])
    link = types.SimpleNamespace(latest=lambda: types.SimpleNamespace(temps_c=np.array([next(temps)] * 3)))
    got = procedures.soak(chamber, link, clock, 26.0, dwell_s=60.0, settle_c=0.3)
    assert got == pytest.approx(26.1) and clock.now() == pytest.approx(180.0) and clock.waits == 1


def test_an_air_soak_waits_for_the_chamber_only_and_any_soak_at_its_set_point_serves_it():
    world = CoarseWorld(t0=0.0)
    clock = SpyClock(world)
    moves = []

    class Chamber:  # hashable: the soak remembers it
        set_temperature = staticmethod(moves.append)
        wait_stable = staticmethod(lambda **k: 0.0)
        read_temperature = staticmethod(lambda: 10.2)

    chamber = Chamber()
    link = types.SimpleNamespace(latest=lambda: types.SimpleNamespace(temps_c=np.array([12.0] * 3)))
    assert procedures.soak(chamber, link, clock, 10.0, what="air") == pytest.approx(12.0)
    assert moves == [10.0] and clock.now() == 0.0  # no dwell, no settle: the plan waits on its own reading
    procedures.soak(chamber, link, clock, 10.0, dwell_s=60.0, what="cells")  # an air soak does not serve cells
    assert moves == [10.0, 10.0] and clock.now() == pytest.approx(60.0)
    procedures.soak(chamber, link, clock, 10.0, what="air")  # a cell soak at the set point serves air
    assert moves == [10.0, 10.0] and clock.now() == pytest.approx(60.0)


def test_plans_keep_no_wait_loop_of_their_own():
    for module in (procedures, cutoff):
        src = inspect.getsource(module)
        assert "while clock.now()" not in src, module.__name__
    for func in (procedures.wait_sample, procedures.observe, procedures.soak, cutoff.clock_wait):
        assert not re.search(r"^\s*while\b", inspect.getsource(func), re.M), func.__name__


def test_set_cells_is_declared_once():
    assert not hasattr(procedures, "set_cells")
    emulator = types.SimpleNamespace(n_channels=3, sent=[])
    emulator.set_voltages = emulator.sent.append
    world = CoarseWorld(t0=0.0)
    clock = VirtualClock(world.advance, lambda: world.t)
    v = procedures.set_cells_and_settle(emulator, clock, profile(), 3.3)
    assert v.tolist() == [3.3] * 3 and emulator.sent[-1].tolist() == [3.3] * 3
    assert clock.now() == pytest.approx(procedures.settle_s(profile()))
