"""The run record: append-only JSON lines, one fsync per line, plus columnar captures.

A run is one folder::

    runs/<run-id>/
        run.claim           which run owns the folder (rig.runfolder)
        record.jsonl        one JSON object per line (the evidence)
        captures/*.csv      time series, one column per key, header row

Every line carries ``event``, ``seq`` (0, 1, 2, ... in the order written) and ``t_wall``
(ISO 8601, UTC) plus the event's own fields (schema in docs/internals.md, "Run record").
A line is a record only once its newline is on disk: :class:`RunRecord` writes, flushes
and fsyncs each line before it returns, so a crash or a pulled plug loses nothing that
was appended. :func:`read_record` tolerates the one thing such a crash can leave behind,
a torn last line; a line damaged before the end is :class:`RecordError` (exit 2, naming
the file and line).

A write the storage refuses (disk full, I/O error, read-only, file too big) raises
:class:`rig.errors.DiskFault` (a rig fault, exit 3) naming the file; the record cuts the
partial line off and takes no line after it, so it keeps exactly what was fsynced.

Values serialise the way a lab reads them: numpy scalars and arrays as numbers and lists,
paths as strings, dataclasses and pydantic models as objects, dates as ISO 8601 strings.
A non-finite float (NaN, ±inf) is written as the string ``"nan"``, ``"inf"`` or ``"-inf"``
so the file stays strict JSON.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import enum
import hashlib
import io
import json
import math
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Iterable, Mapping

import numpy as np

from .errors import DiskFault, path_error
from .record_scan import RECORD_FILE, RecordError, RecordScan, scan_record

CAPTURE_DIR = "captures"



# --------------------------------------------------------------------------- JSON


def utc_now_iso() -> str:
    """Now, ISO 8601 UTC with microseconds and a ``Z`` suffix."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_iso(text: str | None) -> _dt.datetime | None:
    """Parse an ISO 8601 timestamp written by :func:`utc_now_iso` (or any aware ISO string)."""
    if not text or not isinstance(text, str):
        return None
    s = text.strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    try:
        t = _dt.datetime.fromisoformat(s)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return t


def _float(x: float) -> float | str:
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON types (see the module docstring for the mapping)."""
    if obj is None or isinstance(obj, (str, bool, int)) and not isinstance(obj, enum.Enum):
        return obj
    if isinstance(obj, float):
        return _float(obj)
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, np.ndarray):
        return [jsonable(x) for x in obj.tolist()] if obj.dtype.kind in "fc" or obj.dtype == object else obj.tolist()
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=str) if isinstance(obj, (set, frozenset)) else obj
        return [jsonable(x) for x in items]
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return jsonable(obj.value)
    if isinstance(obj, (_dt.datetime, _dt.date, _dt.time)):
        return obj.isoformat()
    if isinstance(obj, _dt.timedelta):
        return obj.total_seconds()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    dump = getattr(obj, "model_dump", None)  # pydantic v2
    if callable(dump):
        return jsonable(dump(mode="json"))
    if isinstance(obj, bytes):
        return obj.hex()
    if isinstance(obj, complex):
        return [_float(obj.real), _float(obj.imag)]
    return str(obj)


def dumps_line(obj: dict) -> str:
    """One record line (no newline): compact, strict JSON, non-ASCII kept."""
    return json.dumps(jsonable(obj), ensure_ascii=False, allow_nan=False, separators=(",", ":"))


# --------------------------------------------------------------------------- writer

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str, max_len: int = 80) -> str:
    """A file-name-safe version of ``text`` (nodeids, capture names)."""
    s = _UNSAFE.sub("_", text).strip("._-")
    return (s[:max_len].rstrip("._-") or "capture")


def _test_stem(test: str | None) -> str:
    if not test:
        return "run"
    # "testplans/test_hvc.py::TestX::test_trip[16]" -> "test_hvc__TestX__test_trip_16"
    path, _, rest = test.partition("::")
    stem = PurePath(path).stem if path else ""
    parts = [stem] + [p for p in rest.split("::") if p]
    return safe_name("__".join(p for p in parts if p), 60)


class RunRecord:
    """The append-only record of one run.

    ``RunRecord(run_dir)`` creates ``run_dir`` and ``run_dir/captures`` and opens
    ``record.jsonl`` for append. Reopening an existing record continues its ``seq``; a torn
    last line left by a killed writer is cut off first (it never became a record).
    Thread-safe: one lock serialises lines.
    """

    def __init__(self, run_dir: Path | str):
        self.run_dir = Path(run_dir)
        self.capture_dir = self.run_dir / CAPTURE_DIR
        self.path = self.run_dir / RECORD_FILE
        self._lock = threading.Lock()
        self._seq = 0
        self.fault: DiskFault | None = None
        """The first storage failure (record or capture), None while every write succeeded."""
        self._broken = False  # the record file itself failed: no line is written after that
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.capture_dir.mkdir(exist_ok=True)
            self._names: set[str] = {p.name for p in self.capture_dir.iterdir()}
            if self.path.exists():
                self._recover()
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
            self._fd: int | None = os.open(self.path, flags, 0o644)
            self._size = os.fstat(self._fd).st_size
        except OSError as exc:
            raise path_error(exc, getattr(exc, "filename", None) or self.run_dir, "--run-dir",
                             "cannot open the run record") from None
        _fsync_dir(self.run_dir)

    def _recover(self) -> None:
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with open(self.path, "r+b") as fh:
                fh.truncate(cut)
                fh.flush()
                os.fsync(fh.fileno())
            data = data[:cut]
        for line in reversed(data.splitlines()):
            try:
                self._seq = int(json.loads(line)["seq"]) + 1
                break
            except (ValueError, KeyError, TypeError):
                continue

    @property
    def closed(self) -> bool:
        return self._fd is None

    @property
    def next_seq(self) -> int:
        return self._seq

    def _fail(self, path: Path, exc: OSError) -> DiskFault:
        fault = DiskFault(path, exc)
        if self.fault is None:
            self.fault = fault
        return fault

    def append(self, event: str, **fields: Any) -> dict:
        """Write one event line (write + fsync) and return it as written (plain JSON types).

        Raises :class:`~rig.errors.DiskFault` when the line cannot be made durable: the
        partial line is cut off again and the record refuses every later line, so the
        file keeps exactly the lines fsynced before (no torn line in the middle).
        """
        if not event or not isinstance(event, str):
            raise ValueError("event must be a non-empty string")
        for reserved in ("event", "seq", "t_wall"):
            if reserved in fields:
                raise ValueError(f"{reserved!r} is set by the record, not by the caller")
        with self._lock:
            if self._fd is None:
                raise ValueError(f"{self.path}: record is closed")
            if self._broken:
                raise self.fault  # type: ignore[misc]
            entry = {"event": event, "seq": self._seq, "t_wall": utc_now_iso(), **fields}
            entry = jsonable(entry)
            line = json.dumps(entry, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
            data = (line + "\n").encode("utf-8")
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view):]
                os.fsync(self._fd)
            except OSError as exc:
                self._broken = True
                try:
                    os.ftruncate(self._fd, self._size)  # cut the partial line off again
                except OSError:
                    pass  # a torn last line is what a reader tolerates
                raise self._fail(self.path, exc) from None
            self._size += len(data)
            self._seq += 1
        return entry

    def _unique_name(self, test: str | None, name: str) -> str:
        base = f"{_test_stem(test)}__{safe_name(name, 60)}"
        candidate, k = f"{base}.csv", 2
        while candidate in self._names or (self.capture_dir / candidate).exists():
            candidate, k = f"{base}-{k}.csv", k + 1
        self._names.add(candidate)
        return candidate

    def write_capture(
        self,
        test: str | None,
        name: str,
        columns: Mapping[str, Iterable],
        units: Mapping[str, str] | None = None,
        kind: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> str:
        """Write a time series as a columnar CSV under ``captures/`` and record a ``capture`` event.

        ``columns`` maps column name -> 1-D array-like, all the same length (numbers, bools
        as 0/1, or strings). The CSV has one header row of column names; units, kind and
        meta travel in the ``capture`` event. Returns the file's path relative to the run
        folder (``captures/...csv``).
        """
        if not columns:
            raise ValueError(f"capture {name!r}: no columns")
        cols: dict[str, list] = {}
        length = None
        for key, values in columns.items():
            arr = np.asarray(values)
            if arr.ndim == 0:
                arr = arr.reshape(1)
            if arr.ndim != 1:
                raise ValueError(f"capture {name!r}: column {key!r} is not 1-D (shape {arr.shape})")
            if length is None:
                length = len(arr)
            elif len(arr) != length:
                raise ValueError(
                    f"capture {name!r}: column {key!r} has {len(arr)} values, expected {length}"
                )
            if arr.dtype.kind == "b":
                cols[str(key)] = arr.astype(int).tolist()
            elif arr.dtype.kind == "f":
                cols[str(key)] = [repr(float(x)) for x in arr.tolist()]
            else:
                cols[str(key)] = arr.tolist()
        units = {str(k): str(v) for k, v in (units or {}).items()}
        unknown = set(units) - set(cols)
        if unknown:
            raise ValueError(f"capture {name!r}: units for unknown columns {sorted(unknown)}")
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(list(cols))
        writer.writerows(zip(*cols.values()))
        data = buf.getvalue().encode("utf-8")
        with self._lock:
            fname = self._unique_name(test, name)
        rel = f"{CAPTURE_DIR}/{fname}"
        target = self.run_dir / rel
        try:
            with open(target, "xb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            try:
                target.unlink()  # no half capture under its name
            except OSError:
                pass
            raise self._fail(target, exc) from None
        _fsync_dir(self.capture_dir)
        self.append(
            "capture",
            test=test,
            name=name,
            kind=kind,
            file=rel,
            columns=list(cols),
            units=units,
            rows=length,
            sha256=hashlib.sha256(data).hexdigest(),
            meta=dict(meta or {}),
        )
        return rel

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                fd, self._fd = self._fd, None
                os.close(fd)  # every line was fsynced when it was appended

    def __enter__(self) -> "RunRecord":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunRecord({str(self.run_dir)!r}, next_seq={self._seq})"


def _fsync_dir(path: Path) -> None:
    """Make a new directory entry durable (POSIX); a no-op where directories can't be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- reader


def read_record(run_dir: Path | str) -> list[dict]:
    """The events of a run, in order. A torn last line (run killed mid-write) is dropped."""
    return scan_record(run_dir).events


def read_capture(run_dir: Path | str, file: str) -> dict[str, np.ndarray]:
    """A capture CSV as column name -> array (float where the column is numeric, else str)."""
    path = Path(run_dir) / file
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            return {}
        rows = list(reader)
    out: dict[str, np.ndarray] = {}
    for j, key in enumerate(header):
        raw = [r[j] if j < len(r) else "" for r in rows]
        try:
            out[key] = np.array([float(x) if x != "" else np.nan for x in raw], dtype=float)
        except ValueError:
            out[key] = np.array(raw, dtype=object)
    return out


# The summary of a record lives in rig.summary; its names stay importable from here.
from .summary import TEST_OUTCOMES, RecordSummary, TestRecord, load_summary, number, summarize  # noqa: E402,F401
