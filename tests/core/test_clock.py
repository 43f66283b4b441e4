"""The rig clock: virtual time advances only through the world; waits name what they awaited."""

import pytest

from rig.clock import VirtualClock
from rig.errors import WaitTimeout


class Stepper:
    def __init__(self):
        self.t = 0.0
        self.steps = []

    def advance(self, dt):
        self.steps.append(dt)
        self.t += dt


def make():
    s = Stepper()
    return s, VirtualClock(s.advance, lambda: s.t)


def test_sleep_advances_the_world_by_exactly_the_duration():
    s, clock = make()
    clock.sleep(2.5)
    clock.sleep(0.0)
    assert clock.now() == 2.5
    assert s.steps == [2.5]


def test_negative_sleep_is_refused():
    _, clock = make()
    with pytest.raises(ValueError):
        clock.sleep(-1)


def test_wait_until_returns_the_time_waited():
    s, clock = make()
    waited = clock.wait_until(lambda: s.t >= 1.0, timeout=5, what="t ≥ 1 s", poll=0.25)
    assert waited == pytest.approx(1.0)


def test_wait_until_timeout_names_what_was_awaited():
    _, clock = make()
    with pytest.raises(WaitTimeout, match="the charge FET to open") as exc:
        clock.wait_until(lambda: False, timeout=3, what="the charge FET to open", poll=1.0)
    assert exc.value.timeout_s == 3
    assert clock.now() == pytest.approx(3.0)


def test_listeners_run_after_each_sleep():
    _, clock = make()
    seen = []
    clock.add_listener(seen.append)
    clock.sleep(1)
    clock.sleep(2)
    assert seen == [1.0, 3.0]


def test_wait_until_ends_when_the_remainder_is_too_small_to_move_the_clock():
    # a world that cannot resolve steps below 1 ns (as rig.sim.World) must not make a wait spin
    t = {"now": 0.0}

    def advance(dt):
        if dt >= 1e-9:
            t["now"] += dt

    clock = VirtualClock(advance, lambda: t["now"])
    with pytest.raises(WaitTimeout):
        clock.wait_until(lambda: False, timeout=1.0 + 1e-12, what="never", poll=0.5)
    assert clock.now() == pytest.approx(1.0)
