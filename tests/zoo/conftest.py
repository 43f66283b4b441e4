"""Zoo helpers: run the plans in a subprocess against the virtual bench and read the record."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLANS = REPO / "testplans"


class PlanRun:
    def __init__(self, returncode: int, run_dir: Path, stdout: str):
        self.returncode = returncode
        self.run_dir = run_dir
        self.stdout = stdout
        self.events = []
        rec = run_dir / "record.jsonl"
        if rec.is_file():
            self.events = [json.loads(line) for line in rec.read_text().splitlines() if line.strip()]

    def test_end(self, test: str) -> dict | None:
        for e in self.events:
            if e.get("event") == "test_end" and e["nodeid"].split("::")[-1] == test:
                return e
        return None

    def outcomes(self) -> dict[str, str]:
        return {e["nodeid"]: e["outcome"] for e in self.events if e.get("event") == "test_end"}


def run_plans(tmp_path: Path, board: str, *, seed: int = 1, defects=(), plan: str | None = None,
              test: str | None = None, cli: bool = False, timeout: float = 600.0) -> PlanRun:
    """Run the plans on the virtual bench. ``cli=True`` goes through ``bmsrig run`` (reports
    and exit-code mapping included); otherwise pytest directly with the same options (the
    run record only: no report build, much faster)."""
    run_dir = tmp_path / "run"
    if cli:
        cmd = [sys.executable, "-m", "rig.cli", "run", "--board", board, "--seed", str(seed), "--out", str(run_dir)]
        for d in defects:
            cmd += ["--defect", d]
        if test:
            cmd += ["-k", test]
        if plan:
            cmd += [plan]
    else:
        target = str(PLANS / plan) if plan else str(PLANS)
        cmd = [sys.executable, "-m", "pytest", target, "-p", "no:cacheprovider", "-p", "no:xdist",
               "--rootdir", str(PLANS), "-o", "testpaths=", "--board", board, "--seed", str(seed),
               "--run-dir", str(run_dir), "-q"]
        for d in defects:
            cmd += ["--defect", d]
        if test:
            cmd += ["-k", test]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    return PlanRun(proc.returncode, run_dir, proc.stdout[-4000:] + proc.stderr[-2000:])


@pytest.fixture
def plan_runner(tmp_path):
    def _run(*args, **kwargs):
        return run_plans(tmp_path, *args, **kwargs)
    return _run
