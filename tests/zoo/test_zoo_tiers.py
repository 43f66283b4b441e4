"""The defect zoo in the regression tier: every defect whose catching test is a regression
test is caught by a regression run too (its HVC/LVC characterisation covers the first,
middle and last channel only; the qualification tier is the zoo of ``test_zoo.py``). A
defect whose requirement is outside the regression tier need only be caught by
qualification, and the table says which those are.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from testplans.tiers import load_tiers

from .catalog_expectations import CAUGHT

REPO = Path(__file__).resolve().parents[2]
PLANS = REPO / "testplans"
TIERS = load_tiers()
REGRESSION_CAUGHT = {spec: row for spec, row in CAUGHT.items() if TIERS[f"{row[0]}::{row[1]}"] == "regression"}


def test_the_regression_tier_judges_most_of_the_catalog():
    """Only the chamber and convergence plans are qualification-only."""
    outside = sorted({f"{row[0]}::{row[1]}" for spec, row in CAUGHT.items() if spec not in REGRESSION_CAUGHT})
    assert outside == ["test_derating.py::test_derating",
                       "test_sampling_accuracy.py::test_sampling_accuracy_over_temperature",
                       "test_temp_compensation.py::test_temperature_compensation"]


def _case(spec):
    """The HVC/LVC defects (the tier's channel subset) run by default; the rest with --zoo=full
    (the same tests as in qualification, only fewer of them run)."""
    plan = REGRESSION_CAUGHT[spec][0]
    return pytest.param(spec, marks=() if plan in ("test_hvc.py", "test_lvc.py") else pytest.mark.zoo_full)


@pytest.mark.parametrize("spec", [_case(s) for s in sorted(REGRESSION_CAUGHT)])
def test_regression_tier_catches_the_defect(tmp_path, spec):
    plan, test, cause = REGRESSION_CAUGHT[spec]
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "pytest", str(PLANS / plan), "-p", "no:cacheprovider", "-p", "no:xdist",
           "--rootdir", str(PLANS), "-o", "testpaths=", "--board", "reference-16s-lfp", "--tier", "regression",
           "--defect", spec, "--run-dir", str(run_dir), "-q", "--no-progress", "-k", test]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    ends = [json.loads(line) for line in (run_dir / "record.jsonl").read_text().splitlines()]
    failed = [e for e in ends if e.get("event") == "test_end" and e["nodeid"].endswith(f"::{test}")
              and e["outcome"] == "failed"]
    assert proc.returncode == 1 and failed, proc.stdout[-2000:]
    assert cause in failed[0]["message"], failed[0]["message"]
