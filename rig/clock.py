"""The rig's clock: wall time on a real rig, virtual time on the bench.

Plans and tests never call ``time.sleep``: they call ``clock.sleep`` and
``clock.wait_until``. On the virtual bench ``sleep`` advances the simulated world; on a
real rig it waits in wall time. All times are seconds since the rig was built.
"""

from __future__ import annotations

import time
from typing import Callable, Protocol, runtime_checkable

from .errors import WaitTimeout


@runtime_checkable
class Clock(Protocol):
    """What every clock offers. Times in seconds."""

    def now(self) -> float:
        """Seconds since the rig was built."""

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of rig time pass."""

    def wait_until(
        self, condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.1
    ) -> float:
        """Poll ``condition`` every ``poll`` s until it is true; return the seconds waited.

        Raises :class:`WaitTimeout` naming ``what`` when ``timeout`` s pass first.
        """


class _ClockBase:
    """Shared ``wait_until`` and listeners; subclasses provide ``now`` and ``_advance``."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[float], None]] = []

    def add_listener(self, callback: Callable[[float], None]) -> None:
        """Call ``callback(now)`` after every ``sleep`` (links pump their inputs here)."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[float], None]) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def sleep(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"clock.sleep: negative duration {seconds} s")
        self._advance(seconds)
        now = self.now()
        for cb in list(self._listeners):
            cb(now)

    def wait_until(
        self, condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.1
    ) -> float:
        if poll <= 0:
            raise ValueError("clock.wait_until: poll must be > 0 s")
        start = self.now()
        while True:
            if condition():
                return self.now() - start
            waited = self.now() - start
            # a tolerance of 1 µs: a float remainder too small to move the clock must not spin
            if waited >= timeout - 1e-6:
                raise WaitTimeout(what, timeout)
            self.sleep(min(poll, timeout - waited))

    def _advance(self, seconds: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class WallClock(_ClockBase):
    """Real time, for a real rig."""

    def __init__(self) -> None:
        super().__init__()
        self._t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._t0

    def _advance(self, seconds: float) -> None:
        time.sleep(seconds)


class VirtualClock(_ClockBase):
    """Virtual time driven by a stepping function (the simulated world's ``advance``).

    ``advance(seconds)`` must move the world forward by exactly ``seconds``;
    ``time_source()`` returns the world's time in seconds.
    """

    def __init__(self, advance: Callable[[float], None], time_source: Callable[[], float]) -> None:
        super().__init__()
        self._advance_world = advance
        self._time_source = time_source

    def now(self) -> float:
        return self._time_source()

    def _advance(self, seconds: float) -> None:
        if seconds > 0:
            self._advance_world(seconds)


def wait_stable(
    clock: Clock,
    read: Callable[[], float],
    target: float,
    tolerance: float,
    dwell_s: float,
    timeout_s: float,
    poll_s: float,
    fault: Callable[[float], Exception],
) -> float:
    """Wait on ``clock`` until ``|read() - target| <= tolerance`` has held for ``dwell_s``.

    Returns the seconds waited. When ``timeout_s`` passes first, raises ``fault(last_value)``
    (the caller names the instrument). Used by every chamber driver.
    """
    start, since = clock.now(), None
    while True:
        now = clock.now()
        value = read()
        if abs(value - target) <= tolerance:
            since = now if since is None else since
            if now - since >= dwell_s:
                return now - start
        else:
            since = None
        if now - start >= timeout_s:
            raise fault(value)
        clock.sleep(min(poll_s, max(timeout_s - (now - start), 1e-3)))


class StepClock(VirtualClock):
    """A virtual clock with no simulator behind it: ``on_step`` callbacks ``(t0, t1)`` run
    at every advance. For testing drivers and links against virtual time."""

    def __init__(self) -> None:
        self.t = 0.0
        self.on_step: list[Callable[[float, float], None]] = []
        super().__init__(self._advance_steps, lambda: self.t)

    def _advance_steps(self, dt: float) -> None:
        t0, self.t = self.t, self.t + dt
        for cb in self.on_step:
            cb(t0, self.t)
