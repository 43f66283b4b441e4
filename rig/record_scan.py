"""Reading a run record (``record.jsonl``) back: :func:`scan_record`, tolerant of a torn last
line (a writer killed mid-line), strict about damage anywhere else. Shared by
:mod:`rig.record` (the writer) and :mod:`rig.summary` (the reader's digest)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

__all__ = ["RECORD_FILE", "RecordError", "RecordScan", "scan_record"]

RECORD_FILE = "record.jsonl"


class RecordError(ConfigError, ValueError):
    """The record is unreadable beyond a torn last line (exit 2; names the file and line)."""

    def __init__(self, path: object, line: int | None, problem: str):
        super().__init__(path, f"line {line}" if line else None, problem)


@dataclass
class RecordScan:
    """What :func:`scan_record` found: the events and any torn last line."""

    events: list[dict]
    torn_tail: str | None = None  # the unreadable last line (truncated), None if clean
    path: Path | None = None


def _record_path(run_dir: Path | str) -> Path:
    p = Path(run_dir)
    return p if p.is_file() else p / RECORD_FILE


def scan_record(run_dir: Path | str) -> RecordScan:
    """Read a record, tolerating a torn last line; raise :class:`RecordError` on worse damage.

    A line that does not parse is tolerated only when it is the last one and has no
    newline after it (a writer killed mid-line) or is the last line and is cut short.
    """
    path = _record_path(run_dir)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RecordError(path, None, "no run record here") from None
    except OSError as exc:
        raise RecordError(path, None, f"cannot read the run record: {exc.strerror or exc}") from None
    lines = data.split(b"\n")
    ends_clean = data.endswith(b"\n") or not data
    if ends_clean:
        lines = lines[:-1]
    events: list[dict] = []
    torn = None
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        last = i == len(lines) - 1
        try:
            obj = json.loads(raw.decode("utf-8"))
            if not isinstance(obj, dict) or "event" not in obj:
                raise ValueError("not an event object")
        except (ValueError, UnicodeDecodeError) as exc:
            if last:
                torn = raw.decode("utf-8", "replace")[:200]
                break
            raise RecordError(path, i + 1, f"not a record event ({exc}); the record is corrupt in the middle, "
                                           f"not just torn at its end: restore it from a copy") from None
        events.append(obj)
    return RecordScan(events=events, torn_tail=torn, path=path)
