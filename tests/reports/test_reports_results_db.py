"""The results database: index runs (SQLite through SQLAlchemy), history by board / serial /
firmware, compare two runs (deltas and verdict changes); the CLI commands over it."""

from __future__ import annotations

import json

import pytest

from reports_synthetic import RUN_ID, make_run
from rig.cli import main
from rig.results_db import ResultsDB, compare, db_url, run_rows


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    bad = make_run(base / "bad", balancing_samples=200)  # adc_offset on cell 5: ACC-001 fails at 45 °C
    good = make_run(base / "good", balancing_samples=200, defects=(), expired_calibration=False)
    rec = good / "record.jsonl"
    rec.write_text(rec.read_text().replace(RUN_ID, "run-good").replace('"2.3.1"', '"2.4.0"'))
    return base, bad, good


def test_index_history_and_reindex(two_runs, tmp_path):
    base, bad, good = two_runs
    db = ResultsDB.open(db_url(str(tmp_path / "r.sqlite")))
    try:
        row = db.index_run(bad)
        assert row["run_id"] == RUN_ID and row["verdict"] == "FAIL" and row["n_measurements"] > 20
        db.index_run(good)
        db.index_run(good)  # re-indexing replaces, never duplicates
        assert {r["run_id"] for r in db.history(board="reference-16s-lfp")} == {RUN_ID, "run-good"}
        assert [r["run_id"] for r in db.history(firmware="2.4.0")] == ["run-good"]
        assert db.history(serial="nope") == []
        assert len(db.measurements("run-good")) == len(run_rows(good)[1])
    finally:
        db.close()
    assert (tmp_path / "r.sqlite").stat().st_size > 0


def test_compare_gives_deltas_and_verdict_changes(two_runs):
    _, bad, good = two_runs
    rows = compare(run_rows(good)[1], run_rows(bad)[1])
    changed = [r for r in rows if r["changed"]]
    assert changed and all(r["verdict_a"] == "pass" and r["verdict_b"] == "fail" for r in changed)
    assert any("cell05" in r["key"] or "cell=5" in r["key"] for r in changed)
    both = [r for r in rows if r["presence"] == "both" and r["a"] is not None and r["b"] is not None]
    assert all(r["delta"] == pytest.approx(r["b"] - r["a"]) for r in both)


def test_cli_index_history_compare(two_runs, tmp_path, capsys, monkeypatch):
    base, bad, good = two_runs
    monkeypatch.delenv("BMSRIG_DB", raising=False)
    assert main(["index", str(bad), str(good)]) == 0  # default: results.sqlite beside the run folders
    assert (base / "results.sqlite").is_file()
    capsys.readouterr()
    assert main(["history", "--db", str(base / "results.sqlite"), "--json", "--firmware", "2.4.0"]) == 0
    hist = json.loads(capsys.readouterr().out)
    assert [h["run_id"] for h in hist] == ["run-good"] and hist[0]["verdict"] == "ERROR"  # its rig fault
    monkeypatch.setenv("BMSRIG_DB", str(base / "results.sqlite"))
    assert main(["compare", "run-good", RUN_ID, "--changed-only"]) == 0  # by run ID, database from $BMSRIG_DB
    out = capsys.readouterr().out
    assert "verdict change(s)" in out and "VERDICT pass -> fail" in out
    assert main(["compare", str(good), "no-such-run"]) == 2
