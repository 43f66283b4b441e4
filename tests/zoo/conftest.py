"""Zoo helpers: run the plans in a subprocess against the virtual bench and read the record."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
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


# --------------------------------------------------------------------------- default subset
# The default suite runs a representative subset of the zoo; ``--zoo=full`` (BMSRIG_ZOO=full,
# what CI runs) runs every case. Cases outside the subset are marked ``zoo_full`` here and
# deselected by tests/conftest.py. The subset still runs every catalog defect spec (each on
# one profile, every profile getting some), every within-spec case once, one extra seed per
# profile and, per plan file, the full plan with one of its defects.

def home_profile(spec: str, profiles=None) -> str:
    """The one profile a defect spec runs on in the default subset (stable as rows are added)."""
    from .catalog_expectations import PROFILES

    profiles = tuple(profiles or PROFILES)
    return profiles[zlib.crc32(spec.encode("utf-8")) % len(profiles)]


def default_seed(board: str) -> int:
    """The extra seed (besides seed 1 via the CLI) a profile runs in the default subset."""
    from .catalog_expectations import PROFILES

    return 2 + PROFILES.index(board)


def full_plan_default_specs() -> set[str]:
    """Per plan file, the first of its defect specs (sorted): the full-plan cases run by default."""
    from .catalog_expectations import CAUGHT

    first: dict[str, str] = {}
    for spec in sorted(CAUGHT):
        first.setdefault(CAUGHT[spec][0], spec)
    return set(first.values())


def in_default_subset(test: str, params: dict) -> bool:
    """Whether the zoo case ``test`` with parameters ``params`` runs without ``--zoo=full``."""
    if test == "test_reference_board_passes":
        return params["seed"] == default_seed(params["board"])
    if test in ("test_defect_is_caught", "test_defect_within_spec_passes", "test_silenced_board_is_not_judged"):
        return params["board"] == home_profile(params["spec"])
    if test == "test_full_plan_fails_each_defect_in_its_intended_test":
        return params["spec"] in full_plan_default_specs()
    return True


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or Path(item.fspath).parent != here:
            continue
        if not in_default_subset(item.originalname, callspec.params):
            item.add_marker(pytest.mark.zoo_full)
