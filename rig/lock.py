"""One run per rig at a time: an exclusive lock held for the whole of ``bmsrig run``.

Two CI jobs on one host that name the same rig must never drive it at once. ``bmsrig run``
takes an advisory ``flock`` on ``<lock dir>/<name>.lock`` before any instrument is opened
and keeps it until the run ends (the kernel drops it if the process dies, so a killed run
never leaves a stale lock). The file holds who has it (pid, run id, rig, since) for the
message a second job gets.

- Real rigs lock by default, named after the rig description's file stem; the virtual
  bench does not (every run has its own private world) unless ``--lock NAME`` asks.
- ``--lock-wait S`` queues for up to S seconds (a CI job behind another); 0 fails at once.
- A busy rig is a rig fault (exit 3): the board was not judged.
- The lock directory is ``$BMSRIG_LOCK_DIR`` or ``<tmp>/bmsrig-locks`` (shared by every
  user of the host); a lab with several hosts per rig uses labgrid's place locks instead.

Across hosts this is no substitute for labgrid's coordinator (``labgrid-client lock``).
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .clock import WallClock
from .errors import RigFault

POLL_S = 1.0
"""How often a queued run retries the lock, s."""


class RigBusy(RigFault):
    """Another run holds the rig (exit 3)."""


def lock_dir() -> Path:
    return Path(os.environ.get("BMSRIG_LOCK_DIR") or Path(tempfile.gettempdir()) / "bmsrig-locks")


def lock_name_for(env_path: str | Path) -> str:
    """The default lock name of a rig description: its file stem, made filename-safe."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(env_path).stem) or "rig"


def holder(name: str) -> dict:
    """Who holds (or last held) lock ``name``: ``{"pid", "run_id", "rig", "since"}`` or {}."""
    try:
        return json.loads((lock_dir() / f"{name}.lock").read_text() or "{}")
    except (OSError, ValueError):
        return {}


@contextmanager
def rig_lock(name: str, *, wait_s: float = 0.0, run_id: str = "", rig: str = "", clock=None):
    """Hold the exclusive lock ``name`` for the body; :class:`RigBusy` if another run
    keeps it for longer than ``wait_s`` seconds (waits on ``clock``, the wall by default)."""
    d = lock_dir()
    d.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(d, 0o1777)  # shared by every user of the host, like /tmp
    except OSError:
        pass
    path = d / f"{name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    clock = clock or WallClock()
    t_end = clock.now() + max(0.0, float(wait_s))
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if clock.now() >= t_end:
                    h = holder(name)
                    who = ", ".join(f"{k} {h[k]}" for k in ("pid", "run_id", "rig", "since") if h.get(k)) or "unknown"
                    raise RigBusy(f"rig lock '{name}'", f"in use by another run ({who}); lock file {path}. "
                                  f"Wait for it, or queue with --lock-wait SECONDS") from None
                clock.sleep(min(POLL_S, t_end - clock.now()))
        info = {"pid": os.getpid(), "run_id": run_id, "rig": str(rig),
                "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the flock
