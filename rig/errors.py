"""Errors the rig raises, each with the exit code ``bmsrig`` maps it to.

- :class:`ConfigError` (exit 2): a user's file is malformed or inconsistent. The message
  names the file, the key and what is wrong; the CLI prints it without a traceback.
- :class:`SafetyLimitError` (exit 2): a command beyond a hard limit of the rig description.
  Nothing was sent to the instrument.
- :class:`RigFault` (exit 3): an instrument or the DUT link failed; the board was not judged.
- :class:`WaitTimeout` (a test failure, exit 1): an awaited condition on the DUT did not
  happen in time. It subclasses AssertionError so pytest reports it as a failure.
"""

from __future__ import annotations


class BmsrigError(Exception):
    """Base of every error the rig raises on purpose."""

    exit_code = 1


class ConfigError(BmsrigError):
    """A configuration file is malformed or inconsistent (exit 2)."""

    exit_code = 2

    def __init__(self, file: object, key: str | None, problem: str):
        self.file = str(file) if file is not None else "<none>"
        self.key = key or "<top level>"
        self.problem = problem
        super().__init__(f"{self.file}: {self.key}: {problem}")


class SafetyLimitError(BmsrigError):
    """A command would exceed a hard limit of the rig description; nothing was sent."""

    exit_code = 2

    def __init__(self, instrument: str, quantity: str, requested: float, lo: float, hi: float, unit: str):
        self.instrument = instrument
        self.quantity = quantity
        self.requested = requested
        self.lo, self.hi, self.unit = lo, hi, unit
        super().__init__(
            f"{instrument}: refused {quantity} = {requested:g} {unit}: outside the hard limit "
            f"[{lo:g}, {hi:g}] {unit} of the rig description; nothing was sent"
        )


class RigFault(BmsrigError):
    """An instrument or the DUT link failed: the board was not judged (exit 3)."""

    exit_code = 3

    def __init__(self, source: str, message: str):
        self.source = source
        super().__init__(f"rig fault in {source}: {message}")


class LinkFault(RigFault):
    """The DUT link (CAN or UART) failed: no frames, a garbled reply, a bus error."""


class WaitTimeout(AssertionError):
    """An awaited condition did not come true within its timeout (a test failure)."""

    def __init__(self, what: str, timeout_s: float, detail: str = ""):
        self.what = what
        self.timeout_s = timeout_s
        msg = f"timed out after {timeout_s:g} s waiting for {what}"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)
