"""Hard limits and the safe state.

The rig description carries hard limits (emulator voltage range, currents, chamber range).
Drivers call :func:`check_limit` before sending anything, so a command outside a limit
raises :class:`~rig.errors.SafetyLimitError` and nothing reaches the instrument. A test
cannot talk its way past this: the limits live in the rig description, not in the plan.

:class:`SafeStateGuard` puts the rig in its safe state on teardown, on an exception, on
Ctrl-C (SIGINT) and on SIGTERM: pack current zero, chamber to ambient, emulator outputs to
the safe voltage.
"""

from __future__ import annotations

import math
import signal
import threading
from typing import Callable

from .errors import SafetyLimitError


def check_limit(instrument: str, quantity: str, value: float, lo: float, hi: float, unit: str) -> float:
    """Return ``value`` if ``lo <= value <= hi`` (and finite); else raise SafetyLimitError."""
    v = float(value)
    if not math.isfinite(v) or v < lo or v > hi:
        raise SafetyLimitError(instrument, quantity, v, lo, hi, unit)
    return v


class SafeStateGuard:
    """Runs ``safe_state`` once on SIGTERM/SIGINT and on exit of a ``with`` block.

    Both signals become ``KeyboardInterrupt`` once the safe state is reached, so pytest and
    the CLI unwind normally: the run record gets an "incomplete" deviation and keeps every
    measurement taken so far. ``last_signal`` says which signal it was.
    """

    def __init__(self, safe_state: Callable[[], None]):
        self._safe_state = safe_state
        self._previous: dict[int, object] = {}
        self.reached = 0
        self.last_signal: str | None = None

    def make_safe(self) -> None:
        try:
            self._safe_state()
        finally:
            self.reached += 1

    def _on_signal(self, signum, frame):
        self.last_signal = signal.Signals(signum).name
        self.make_safe()
        raise KeyboardInterrupt(f"{self.last_signal}: rig put in its safe state")

    def install(self) -> "SafeStateGuard":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def __enter__(self):
        return self.install()

    def __exit__(self, *exc):
        try:
            self.make_safe()
        finally:
            self.uninstall()
        return False
