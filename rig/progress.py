"""Live progress of a run on the console: the test and phase under way, rig time elapsed
against the estimate, and the wall-clock ETA.

On a terminal one line is rewritten in place (``\\r`` and erase-to-end-of-line, at most
every ``refresh_s`` of wall time); in a log (not a TTY: CI) a plain line is written when a
test starts and when its phase changes, never per clock tick.

Plans and procedures name their phase with :func:`phase` (``progress.phase("soak at 45
°C")``); it does nothing when no run is showing progress (a plan run by plain pytest, a
unit test). The run's reporter is installed by the pytest plugin
(:func:`install` / :func:`uninstall`); the rig clock's listener feeds it the rig time.

Units: rig time in s (the rig clock), wall time in s (``time.monotonic``).
"""

from __future__ import annotations

import datetime as _dt
import time
from typing import Callable

_active: "Progress | None" = None


def phase(text: str) -> None:
    """Name the phase of the test under way (shown until the next phase or test)."""
    if _active is not None:
        _active.set_phase(text)


def install(progress: "Progress") -> None:
    global _active
    _active = progress


def uninstall(progress: "Progress") -> None:
    global _active
    if _active is progress:
        _active = None


def hms(seconds: float | None) -> str:
    """``h:mm:ss`` of a duration in s ('?' when unknown)."""
    if seconds is None:
        return "?"
    s = int(round(max(seconds, 0.0)))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class Progress:
    """The progress of one run.

    ``estimates``: estimated rig time per test nodeid, s (``rig.estimate``; empty: unknown);
    ``write(text)`` / ``rewrite(text)``: append a line / rewrite the current line of the
    console; ``tty``: rewrite in place (else plain lines); ``wall``: a monotonic clock, s.
    """

    def __init__(self, estimates: dict[str, float] | None, write: Callable[[str], None],
                 rewrite: Callable[[str], None], tty: bool, n_tests: int,
                 wall: Callable[[], float] = time.monotonic, refresh_s: float = 0.5) -> None:
        self.estimates = dict(estimates or {})
        self.total_est = sum(self.estimates.values()) if self.estimates else None
        self._write, self._rewrite, self.tty = write, rewrite, tty
        self.n_tests = n_tests
        self._wall = wall
        self.refresh_s = refresh_s
        self.index = 0
        self.test: str | None = None
        self.phase: str = ""
        self.t0_rig: float | None = None  # rig time at the run's first test, s
        self.t_rig: float | None = None
        self.done_rig = 0.0  # rig time of the finished tests, s
        self.done_est = 0.0  # their estimates, s
        self.test_t0: float | None = None
        self.wall0 = wall()
        self._last_draw = -1e9

    # ---- events -------------------------------------------------------------------
    def start_test(self, nodeid: str, t_rig: float | None) -> None:
        self.index += 1
        self.test, self.phase, self.test_t0 = nodeid, "", t_rig
        if self.t0_rig is None:
            self.t0_rig = t_rig
        self.t_rig = t_rig
        self.show(force=True)

    def end_test(self, nodeid: str, t_rig: float | None) -> None:
        if self.test_t0 is not None and t_rig is not None:
            self.done_rig += t_rig - self.test_t0
        self.done_est += self.estimates.get(nodeid, 0.0)
        self.t_rig, self.test_t0 = t_rig, None

    def set_phase(self, text: str) -> None:
        if text != self.phase:
            self.phase = text
            self.show(force=True)

    def tick(self, t_rig: float) -> None:
        """The rig clock moved (a clock listener)."""
        self.t_rig = t_rig
        if self.tty:
            self.show()

    def finish(self) -> None:
        if self.tty and self.test is not None:
            self._write("")

    # ---- figures ------------------------------------------------------------------
    def elapsed_rig(self) -> float:
        """Rig time since the first test started, s."""
        if self.t0_rig is None or self.t_rig is None:
            return 0.0
        return self.t_rig - self.t0_rig

    def remaining_rig(self) -> float | None:
        """Estimated rig time still to run, s: the tests not finished, less what the one
        under way has used (never below zero); None without estimates."""
        if self.total_est is None:
            return None
        current = self.estimates.get(self.test or "", 0.0)
        used = (self.t_rig - self.test_t0) if (self.test_t0 is not None and self.t_rig is not None) else 0.0
        return max(self.total_est - self.done_est - current, 0.0) + max(current - used, 0.0)

    def eta_wall(self) -> _dt.datetime | None:
        """Wall-clock time the run should end: remaining rig time at the rate rig time has
        passed against wall time so far (1 on a real rig, far more on the bench)."""
        remaining = self.remaining_rig()
        wall = self._wall() - self.wall0
        rig = self.elapsed_rig()
        if remaining is None or wall <= 0 or rig <= 0:
            return None
        return _dt.datetime.now() + _dt.timedelta(seconds=remaining * wall / rig)

    def line(self) -> str:
        name = (self.test or "").rsplit("/", 1)[-1]
        est = None if self.total_est is None else self.elapsed_rig() + (self.remaining_rig() or 0.0)
        eta = self.eta_wall()
        parts = [f"[{self.index}/{self.n_tests}] {name}"]
        if self.phase:
            parts.append(self.phase)
        parts.append(f"rig {hms(self.elapsed_rig())} / {hms(est)} est")
        parts.append(f"ETA {eta:%H:%M:%S}" if eta is not None else "ETA ?")
        return " | ".join(parts)

    def show(self, force: bool = False) -> None:
        now = self._wall()
        if not force and now - self._last_draw < self.refresh_s:
            return
        self._last_draw = now
        if self.tty:
            self._rewrite(self.line())
        elif force:
            self._write("bmsrig: " + self.line())
