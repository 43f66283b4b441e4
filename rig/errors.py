"""Errors the rig raises, each with the exit code ``bmsrig`` maps it to.

- :class:`ConfigError` (exit 2): a user's file is malformed or inconsistent. The message
  names the file, the key and what is wrong; the CLI prints it without a traceback.
- :class:`SafetyLimitError` (exit 2): a command beyond a hard limit of the rig description.
  Nothing was sent to the instrument.
- :class:`CommandError` (exit 2): a board command the link cannot send (undeclared, bad value).
- :class:`RigFault` (exit 3): an instrument or the DUT link failed; the board was not judged.
- :class:`DiskFault` (exit 3): a file of the run (record, capture, report) could not be
  written (disk full, I/O error, read-only file system); every line fsynced before stays.
- :class:`WaitTimeout` (a test failure, exit 1): an awaited condition on the DUT did not
  happen in time. It subclasses AssertionError so pytest reports it as a failure.
"""

from __future__ import annotations

import errno as _errno

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_RIG_FAULT = 0, 1, 2, 3
"""``bmsrig`` exit codes: all passed, a test failed, bad usage/configuration, rig fault."""

DISK_ERRNOS = frozenset(getattr(_errno, n) for n in ("ENOSPC", "EDQUOT", "EIO", "EROFS", "EFBIG")
                        if hasattr(_errno, n))
"""OS errors that mean the storage failed (a rig fault), not that the user named a bad path."""


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


class CommandError(BmsrigError, ValueError):
    """A board command the link cannot send: not declared, an unknown or missing parameter, a
    value its signal/register cannot carry (exit 2). Nothing was sent."""

    exit_code = 2


class RigFault(BmsrigError):
    """An instrument or the DUT link failed: the board was not judged (exit 3)."""

    exit_code = 3

    def __init__(self, source: str, message: str):
        self.source = source
        super().__init__(f"rig fault in {source}: {message}")


class DiskFault(RigFault):
    """A file of the run could not be written: the storage failed (exit 3). ``path`` names it."""

    def __init__(self, path: object, exc: OSError):
        self.path = str(path)
        self.errno = exc.errno
        name = _errno.errorcode.get(exc.errno or 0, "")
        reason = exc.strerror or str(exc)
        super().__init__("storage", f"could not write {self.path}: {reason}"
                                    f"{f' ({name})' if name else ''}; every line fsynced before is kept")


def is_disk_error(exc: BaseException) -> bool:
    """True for an OS error that means the storage failed (full, I/O error, read-only, too big)."""
    return isinstance(exc, OSError) and exc.errno in DISK_ERRNOS


def path_error(exc: OSError, path: object, key: str | None, action: str = "cannot write") -> BmsrigError:
    """The error to raise for ``exc`` on a path the user named: :class:`DiskFault` (exit 3)
    when the storage failed, else :class:`ConfigError` (exit 2) naming the path and key."""
    if is_disk_error(exc):
        return DiskFault(path, exc)
    reason = exc.strerror or str(exc)
    return ConfigError(path, key, f"{action}: {reason}")


def run_exit_code(pytest_code: int, *, any_failed: bool = False, rig_fault: bool = False,
                  disk_fault: bool = False) -> int:
    """The exit code of ``bmsrig run`` from pytest's exit status and what the run saw.

    The one place it is worked out: the run record's ``run_end`` and the CLI both use it.
    A storage failure is a rig fault whatever the tests did (their evidence is not on
    disk); a rig fault while a test ran turns a failed session into exit 3; an interrupted
    run with a failure already seen keeps the failure (a verdict), else it is not judged.
    """
    if disk_fault:
        return EXIT_RIG_FAULT
    if pytest_code == 0:
        return EXIT_PASS
    if pytest_code == 1:
        return EXIT_RIG_FAULT if rig_fault else EXIT_FAIL
    if pytest_code in (4, 5):  # usage error, nothing collected (e.g. -k matched nothing)
        return EXIT_USAGE
    if pytest_code == 2:  # interrupted
        return EXIT_FAIL if any_failed else EXIT_RIG_FAULT
    return EXIT_RIG_FAULT


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
