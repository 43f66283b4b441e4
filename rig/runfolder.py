"""Claiming a run folder: one run per folder, decided atomically before anything runs.

``claim_run_dir(run_dir, run_id)`` creates the folder (``os.mkdir``, parents as needed) or
takes an existing empty one, then publishes ``run.claim`` (JSON: run id, pid, host, since)
with a hard link, which either appears whole or fails because another run's claim is
there. A second run on the same folder gets :class:`~rig.errors.ConfigError` (exit 2)
naming the first run's id. Claiming again with the same run id is a no-op (the CLI claims,
then the pytest plugin confirms). A folder holding anything but a claim is refused: a run
never writes into another's folder.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
import uuid
from pathlib import Path

from .errors import ConfigError, path_error

CLAIM_FILE = "run.claim"


def _claimed_by(claim: Path) -> str:
    try:
        return str(json.loads(claim.read_text(encoding="utf-8")).get("run_id") or "an unnamed run")
    except (OSError, ValueError, AttributeError):
        return "another run (its claim is being written)"


def claim_run_dir(run_dir: Path | str, run_id: str, key: str = "--out") -> Path:
    """Make ``run_dir`` this run's own folder, or raise ConfigError (exit 2) / DiskFault (exit 3)."""
    run_dir = Path(run_dir)
    for above in run_dir.absolute().parents:
        if above.exists():
            if not above.is_dir():
                raise ConfigError(run_dir, key, f"{above} is a file, not a folder: no run folder can go under it")
            break
    try:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise path_error(exc, run_dir, key, "cannot create the run folder's parent") from None
    try:
        os.mkdir(run_dir)
    except FileExistsError:
        if not run_dir.is_dir():
            raise ConfigError(run_dir, key, "names an existing file, not a run folder") from None
    except OSError as exc:
        raise path_error(exc, run_dir, key, "cannot create the run folder") from None
    claim = run_dir / CLAIM_FILE
    if claim.exists():
        first = _claimed_by(claim)
        if first == run_id:
            return run_dir
        raise ConfigError(run_dir, key, f"the run folder belongs to run {first}; a run never writes into another's folder")
    try:
        others = [p.name for p in run_dir.iterdir() if not p.name.startswith(".claim-")]
    except OSError as exc:
        raise path_error(exc, run_dir, key, "cannot read the run folder") from None
    if others:
        raise ConfigError(run_dir, key, "the run folder exists and is not empty; a run never overwrites another")
    info = {"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(),
            "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    tmp = run_dir / f".claim-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "x", encoding="utf-8") as fh:
            json.dump(info, fh)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, claim)  # atomic, and fails if another run's claim is there
        except FileExistsError:
            first = _claimed_by(claim)
            if first != run_id:
                raise ConfigError(run_dir, key, f"the run folder belongs to run {first}, "
                                                f"started at the same time; a run never writes into another's folder") from None
        except OSError:  # no hard links on this file system: exclusive create, then write
            try:
                fd = os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                raise ConfigError(run_dir, key, f"the run folder belongs to run {_claimed_by(claim)}; "
                                                f"a run never writes into another's folder") from None
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(info, fh)
                fh.flush()
                os.fsync(fh.fileno())
    except OSError as exc:
        raise path_error(exc, run_dir, key, "cannot write in the run folder") from None
    finally:
        try:
            tmp.unlink()
        except OSError:
            pass
    return run_dir


def write_json_atomic(path: Path | str, doc) -> Path:
    """Write ``doc`` as indented JSON to ``path`` so that a reader sees the old file or the
    whole new one, never a part: a temporary file beside it, flushed to disk, then renamed."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=2)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    return target

