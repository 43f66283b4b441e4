"""rig.record: the append-only run record and its captures."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from rig.protocols import InstrumentInfo
from rig.record import (
    RecordError,
    RunRecord,
    load_summary,
    parse_iso,
    read_capture,
    read_record,
    scan_record,
)


@dataclass
class _Point:
    x: float
    where: Path


def test_append_writes_event_seq_and_utc_wall_time(tmp_path):
    with RunRecord(tmp_path / "run") as rec:
        a = rec.append("run_start", run_id="r1", context={})
        b = rec.append("note", text="x")
    assert (tmp_path / "run" / "captures").is_dir()
    lines = (tmp_path / "run" / "record.jsonl").read_text().splitlines()
    assert [json.loads(x)["seq"] for x in lines] == [0, 1]
    assert a["event"] == "run_start" and b["seq"] == 1
    t = parse_iso(a["t_wall"])
    assert t is not None and t.utcoffset().total_seconds() == 0
    assert a["t_wall"].endswith("Z")


def test_values_serialise_numpy_paths_dataclasses_and_non_finite(tmp_path):
    with RunRecord(tmp_path) as rec:
        rec.append(
            "measurement",
            value=np.float64(3.3), n=np.int32(4), ok=np.bool_(True), arr=np.array([1.5, np.nan]),
            path=Path("/x/y"), point=_Point(np.float32(0.5), Path("a")), info=InstrumentInfo("daq", "M", "S1"),
            inf=float("inf"), mask=np.array([True, False]),
        )
    ev = read_record(tmp_path)[0]
    assert ev["value"] == 3.3 and ev["n"] == 4 and ev["ok"] is True
    assert ev["arr"] == [1.5, "nan"] and ev["inf"] == "inf" and ev["mask"] == [True, False]
    assert ev["path"] == "/x/y" and ev["point"] == {"x": 0.5, "where": "a"}
    assert ev["info"]["serial"] == "S1"
    # strict JSON: no bare NaN / Infinity tokens
    text = (tmp_path / "record.jsonl").read_text()
    assert "NaN" not in text and "Infinity" not in text


def test_every_line_is_fsynced(tmp_path, monkeypatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    rec = RunRecord(tmp_path)
    calls.clear()
    for i in range(5):
        rec.append("measurement", i=i)
    assert len(calls) == 5
    rec.close()


def test_reserved_fields_are_refused(tmp_path):
    with RunRecord(tmp_path) as rec, pytest.raises(ValueError, match="seq"):
        rec.append("x", seq=3)


def test_write_capture_csv_event_and_unique_names(tmp_path):
    with RunRecord(tmp_path) as rec:
        t = np.arange(4) * 0.25
        rel = rec.write_capture("testplans/test_hvc.py::test_trip[16]", "ramp/cell 7",
                                {"t_s": t, "cell_v": [3.6, 3.62, 3.65, 3.66], "fet": np.array([1, 1, 0, 0], bool)},
                                units={"t_s": "s", "cell_v": "V"}, kind="hvc_timing", meta={"cell": 7})
        rel2 = rec.write_capture("testplans/test_hvc.py::test_trip[16]", "ramp/cell 7", {"t_s": t})
    assert rel.startswith("captures/") and rel.endswith(".csv") and rel != rel2
    assert "/" not in rel.removeprefix("captures/") and " " not in rel
    lines = (tmp_path / rel).read_text().splitlines()
    assert lines[0] == "t_s,cell_v,fet" and lines[1] == "0.0,3.6,1" and len(lines) == 5
    cols = read_capture(tmp_path, rel)
    assert np.allclose(cols["cell_v"], [3.6, 3.62, 3.65, 3.66]) and list(cols["fet"]) == [1, 1, 0, 0]
    ev = [e for e in read_record(tmp_path) if e["event"] == "capture"][0]
    assert ev["file"] == rel and ev["kind"] == "hvc_timing" and ev["units"]["cell_v"] == "V"
    assert ev["columns"] == ["t_s", "cell_v", "fet"] and ev["rows"] == 4 and ev["meta"] == {"cell": 7}
    assert ev["test"] == "testplans/test_hvc.py::test_trip[16]" and len(ev["sha256"]) == 64


def test_write_capture_rejects_ragged_columns(tmp_path):
    with RunRecord(tmp_path) as rec, pytest.raises(ValueError, match="expected 3"):
        rec.write_capture(None, "bad", {"a": [1, 2, 3], "b": [1, 2]})


def test_torn_last_line_is_tolerated(tmp_path):
    with RunRecord(tmp_path) as rec:
        rec.append("run_start", run_id="r")
        rec.append("test_start", nodeid="t::a")
    with open(tmp_path / "record.jsonl", "a") as fh:
        fh.write('{"event":"measurement","seq":2,"val')
    scan = scan_record(tmp_path)
    assert [e["event"] for e in scan.events] == ["run_start", "test_start"]
    assert scan.torn_tail.startswith('{"event":"measurement"')
    assert len(read_record(tmp_path)) == 2


def test_a_damaged_line_before_the_end_is_an_error(tmp_path):
    (tmp_path / "record.jsonl").write_text('{"event":"a","seq":0}\nGARBAGE\n{"event":"b","seq":2}\n')
    with pytest.raises(RecordError, match="line 2"):
        read_record(tmp_path)


def test_reopening_cuts_the_torn_tail_and_continues_seq(tmp_path):
    with RunRecord(tmp_path) as rec:
        rec.append("a")
        rec.append("b")
    with open(tmp_path / "record.jsonl", "a") as fh:
        fh.write('{"event":"c","se')
    with RunRecord(tmp_path) as rec:
        ev = rec.append("d")
    assert ev["seq"] == 2
    assert [e["event"] for e in read_record(tmp_path)] == ["a", "b", "d"]


def test_summary_tells_complete_and_planned_versus_run(tmp_path):
    with RunRecord(tmp_path) as rec:
        rec.append("run_start", run_id="r9", context={"planned_tests": ["p::a", "p::b", "p::c"]})
        rec.append("test_start", nodeid="p::a", requirements=["R-1"])
        rec.append("measurement", test="p::a", name="m", value=1.0, verdict="pass")
        rec.append("test_end", nodeid="p::a", outcome="passed", duration_s=1.0)
        rec.append("test_start", nodeid="p::b")
    s = load_summary(tmp_path)
    assert s.run_id == "r9" and not s.complete
    assert s.unfinished_tests == ["p::b", "p::c"]
    assert s.tests["p::b"].status == "incomplete" and s.tests["p::c"].status == "not run"
    assert s.counts()["passed"] == 1 and len(s.measurements) == 1
    with RunRecord(tmp_path) as rec:
        rec.append("test_end", nodeid="p::b", outcome="failed")
        rec.append("run_end", exit_code=1, summary={})
    assert load_summary(tmp_path).complete
