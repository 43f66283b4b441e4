"""One run per rig at a time: an exclusive lock held for the whole of ``bmsrig run``.

Two CI jobs on one host that name the same rig must never drive it at once. ``bmsrig run``
takes an exclusive OS lock (``flock`` on POSIX, ``LockFileEx`` on Windows, both through
``filelock``) on ``<lock dir>/<name>.lock`` before any instrument is opened and keeps it
until the run ends (the OS drops it if the process dies, so a killed run never leaves a
stale lock). The file holds who has it (pid, run id, rig, since) for the message a second
job gets.

- Real rigs lock by default, named after the rig description's file stem; the virtual
  bench does not (every run has its own private world) unless ``--lock NAME`` asks.
- A lock name is a plain file name (letters, digits, ``_ . -``); a path is refused (exit 2).
- ``--lock-wait S`` queues for up to S seconds (a CI job behind another); 0 fails at once.
  The wait runs on the rig's clock (the wall clock by default).
- A busy rig is a rig fault (exit 3): the board was not judged.
- The lock directory is ``$BMSRIG_LOCK_DIR`` or ``<tmp>/bmsrig-locks``, shared by every
  user of the host: the directory is world-writable with the sticky bit, a lock file is
  created mode 0666 whatever the umask, and a lock file another user left read-only is
  locked read-only (the holder details are then not rewritten).

Across hosts this is no substitute for labgrid's coordinator (``labgrid-client lock``).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

from filelock import lock_descriptor, unlock_descriptor

from .clock import WallClock
from .errors import ConfigError, RigFault

POLL_S = 1.0
"""How often a queued run retries the lock, s."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_HOLDER_OFFSET = 1
"""The holder details start at this byte: Windows locks byte 0, which other processes
cannot read while the lock is held."""


class RigBusy(RigFault):
    """Another run holds the rig (exit 3)."""


def lock_dir() -> Path:
    return Path(os.environ.get("BMSRIG_LOCK_DIR") or Path(tempfile.gettempdir()) / "bmsrig-locks")


def lock_name_for(env_path: str | Path) -> str:
    """The default lock name of a rig description: its file stem, made filename-safe."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(env_path).stem).strip("._-")
    return name[:100] or "rig"


def check_lock_name(name: str, source: str = "--lock") -> str:
    """``name`` if it is a plain lock name; :class:`ConfigError` (exit 2) otherwise."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name.endswith(".") or ".." in name:
        raise ConfigError("bmsrig run", source,
                          f"lock name {name!r} is not a plain name: use letters, digits, '_', '.' and '-' "
                          f"(at most 100, starting with a letter or digit), no path")
    return name


def holder(name: str) -> dict:
    """Who holds (or last held) lock ``name``: ``{"pid", "run_id", "rig", "since"}`` or {}."""
    try:
        with open(lock_dir() / f"{check_lock_name(name)}.lock", "rb") as fh:
            fh.seek(_HOLDER_OFFSET)
            return json.loads(fh.read().decode("utf-8") or "{}")
    except (OSError, ValueError, ConfigError):
        return {}


def _prepare_dir() -> Path:
    d = lock_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(d, "BMSRIG_LOCK_DIR", f"cannot create the rig lock directory: {exc.strerror}") from None
    try:
        if os.name == "posix" and d.stat().st_uid == os.geteuid():
            os.chmod(d, 0o1777)  # shared by every user of the host, like /tmp
    except OSError:
        pass
    return d


def _open_lock_file(path: Path) -> tuple[int, bool]:
    """Open (or create, mode 0666) the lock file: ``(fd, writable)``."""
    binary = getattr(os, "O_BINARY", 0)
    for _ in range(3):
        try:
            return os.open(path, os.O_RDWR | binary), True
        except FileNotFoundError:
            pass
        except PermissionError:  # another user's read-only lock file: a read-only fd locks as well
            try:
                return os.open(path, os.O_RDONLY | binary), False
            except OSError as exc:
                raise ConfigError(path, "rig lock", f"cannot open the lock file: {exc.strerror}") from None
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | binary, 0o666)
        except FileExistsError:
            continue  # another run created it in between: open it as it is
        except OSError as exc:
            raise ConfigError(path, "rig lock", f"cannot create the lock file: {exc.strerror}; "
                                                f"set BMSRIG_LOCK_DIR to a shared writable directory") from None
        try:
            os.chmod(path, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IWGRP | stat.S_IROTH | stat.S_IWOTH)
        except OSError:
            pass
        return fd, True
    raise ConfigError(path, "rig lock", "the lock file keeps disappearing")


@contextmanager
def rig_lock(name: str, *, wait_s: float = 0.0, run_id: str = "", rig: str = "", clock=None):
    """Hold the exclusive lock ``name`` for the body; :class:`RigBusy` if another run
    keeps it for longer than ``wait_s`` seconds (waits on ``clock``, the wall by default)."""
    check_lock_name(name)
    path = _prepare_dir() / f"{name}.lock"
    fd, writable = _open_lock_file(path)
    clock = clock or WallClock()
    t_end = clock.now() + max(0.0, float(wait_s))
    locked = False
    try:
        while not (locked := lock_descriptor(fd, blocking=False)):
            if clock.now() >= t_end:
                h = holder(name)
                who = ", ".join(f"{k} {h[k]}" for k in ("pid", "run_id", "rig", "since") if h.get(k)) or "unknown"
                raise RigBusy(f"rig lock '{name}'", f"in use by another run ({who}); lock file {path}. "
                              f"Wait for it, or queue with --lock-wait SECONDS")
            clock.sleep(min(POLL_S, t_end - clock.now()))
        if writable:
            info = {"pid": os.getpid(), "run_id": run_id, "rig": str(rig),
                    "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
            data = b"\n" + json.dumps(info).encode()
            try:
                os.lseek(fd, 0, os.SEEK_SET)
                os.write(fd, data)
                os.ftruncate(fd, len(data))
            except OSError:
                pass  # the details are a courtesy; the lock itself is held
        yield path
    finally:
        if locked:
            try:
                unlock_descriptor(fd)
            except OSError:
                pass
        os.close(fd)  # closing the descriptor releases the lock in any case
