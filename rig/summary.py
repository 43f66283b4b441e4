"""A run's state as its record tells it: :func:`summarize` folds the events of a record
(:mod:`rig.record`) into tests with their measurements, captures and deviations.

Times are as recorded: ``t_rig`` in s of rig time, ``t_wall`` ISO 8601 UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .record_scan import scan_record

#: the outcomes a test_end event can carry
TEST_OUTCOMES = ("passed", "failed", "skipped", "error")


def number(x: Any) -> float | None:
    """A recorded number back as float (``"nan"``/``"inf"`` strings included); None if absent."""
    if x is None or isinstance(x, bool):
        return None if x is None else float(x)
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, str):
        try:
            return float(x)
        except ValueError:
            return None
    return None


@dataclass
class TestRecord:
    """Everything the record says about one test."""

    nodeid: str
    name: str = ""
    doc: str = ""
    requirements: list[str] = field(default_factory=list)
    started: bool = False
    ended: bool = False
    outcome: str | None = None  # passed|failed|skipped|error, None when it never ended
    message: str = ""
    duration_s: float | None = None
    t_rig_start: float | None = None
    t_rig_end: float | None = None
    planned: bool = False
    measurements: list[dict] = field(default_factory=list)
    captures: list[dict] = field(default_factory=list)
    deviations: list[dict] = field(default_factory=list)

    @property
    def failed_measurements(self) -> list[dict]:
        return [m for m in self.measurements if m.get("verdict") != "pass"]

    @property
    def status(self) -> str:
        """outcome, or ``not run`` (planned, never started) / ``incomplete`` (never ended)."""
        if self.outcome:
            return self.outcome
        return "incomplete" if self.started else "not run"


@dataclass
class RecordSummary:
    """A run's state as the record tells it."""

    run_dir: Path | None
    events: list[dict]
    run_id: str | None = None
    run_start: dict | None = None
    run_end: dict | None = None
    dut: dict | None = None
    tests: dict[str, TestRecord] = field(default_factory=dict)
    run_captures: list[dict] = field(default_factory=list)  # captures outside any test
    deviations: list[dict] = field(default_factory=list)  # every deviation event, in order
    torn_tail: str | None = None
    first_wall: str | None = None
    last_wall: str | None = None

    @property
    def context(self) -> dict:
        return (self.run_start or {}).get("context") or {}

    @property
    def complete(self) -> bool:
        """True when the record has its ``run_end``."""
        return self.run_end is not None

    @property
    def planned_tests(self) -> list[str]:
        return list(self.context.get("planned_tests") or [])

    @property
    def unfinished_tests(self) -> list[str]:
        """Planned or started tests without a ``test_end``, in plan order."""
        return [t.nodeid for t in self.tests.values() if not t.ended]

    @property
    def measurements(self) -> list[dict]:
        return [m for t in self.tests.values() for m in t.measurements]

    @property
    def captures(self) -> list[dict]:
        return [c for t in self.tests.values() for c in t.captures] + self.run_captures

    def counts(self) -> dict[str, int]:
        """Test outcomes plus ``incomplete`` (started, never ended) and ``not_run``."""
        c = {k: 0 for k in (*TEST_OUTCOMES, "incomplete", "not_run")}
        for t in self.tests.values():
            c[t.status.replace(" ", "_")] += 1
        return c


def summarize(events: list[dict], run_dir: Path | None = None, torn_tail: str | None = None) -> RecordSummary:
    """Fold the events of a record into a :class:`RecordSummary`."""
    s = RecordSummary(run_dir=run_dir, events=events, torn_tail=torn_tail)

    def test(nodeid: str | None) -> TestRecord | None:
        if not nodeid:
            return None
        if nodeid not in s.tests:
            s.tests[nodeid] = TestRecord(nodeid=nodeid, name=nodeid.rsplit("::", 1)[-1])
        return s.tests[nodeid]

    for ev in events:
        kind = ev.get("event")
        wall = ev.get("t_wall")
        if wall:
            s.first_wall = s.first_wall or wall
            s.last_wall = wall
        if kind == "run_start":
            s.run_start = ev
            s.run_id = ev.get("run_id")
            for nodeid in (ev.get("context") or {}).get("planned_tests") or []:
                test(nodeid).planned = True
        elif kind == "dut_identity":
            s.dut = ev
        elif kind == "test_start":
            t = test(ev.get("nodeid"))
            if t is None:
                continue
            t.started = True
            t.name = ev.get("name") or t.name
            t.doc = ev.get("doc") or ""
            t.requirements = list(ev.get("requirements") or [])
            t.t_rig_start = number(ev.get("t_rig"))
        elif kind == "measurement":
            t = test(ev.get("test")) or test("(run)")
            t.measurements.append(ev)
        elif kind == "capture":
            t = test(ev.get("test"))
            (t.captures if t else s.run_captures).append(ev)
        elif kind == "deviation":
            s.deviations.append(ev)
            t = test(ev.get("test"))
            if t:
                t.deviations.append(ev)
        elif kind == "test_end":
            t = test(ev.get("nodeid"))
            if t is None:
                continue
            t.ended = True
            t.outcome = ev.get("outcome")
            t.message = ev.get("message") or ""
            t.duration_s = number(ev.get("duration_s"))
            t.t_rig_end = number(ev.get("t_rig"))
        elif kind == "run_end":
            s.run_end = ev
    return s


def load_summary(run_dir: Path | str) -> RecordSummary:
    """Read and summarise the record in ``run_dir`` (torn last line tolerated)."""
    scan = scan_record(run_dir)
    folder = scan.path.parent if scan.path else Path(run_dir)
    return summarize(scan.events, run_dir=folder, torn_tail=scan.torn_tail)
