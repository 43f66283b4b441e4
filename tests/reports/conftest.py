"""Shared fixtures for the report tests: synthetic runs built once per session."""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reports_synthetic import make_run  # noqa: E402

# the reports sign their manifest: a throw-away lab key, never the user's ~/.config/bmsrig

ISSUED = dt.datetime(2025, 3, 15, 9, 0, tzinfo=dt.timezone.utc)


def _pdf_renderer_loads() -> bool:
    """WeasyPrint loads its native libraries (else the PDF tests skip, see tests/conftest.py)."""
    try:
        import weasyprint  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


@pytest.fixture(scope="session")
def built_run(tmp_path_factory):
    """A complete synthetic run (failures, skipped, rig fault, defects, expired calibration), built
    (without report.pdf where WeasyPrint cannot load: the tests that need it skip)."""
    import reports

    run_dir = make_run(tmp_path_factory.mktemp("complete") / "run")
    timings: dict = {}
    artifacts = reports.build(run_dir, issued=ISSUED, timings=timings, pdf=_pdf_renderer_loads())
    return run_dir, artifacts, timings


@pytest.fixture(scope="session")
def incomplete_run(tmp_path_factory):
    """A run killed mid-test: no run_end, a test without test_end, a torn last line; HTML only."""
    import reports

    run_dir = make_run(tmp_path_factory.mktemp("incomplete") / "run", complete=False,
                       expired_calibration=False, defects=())
    with open(run_dir / "record.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"event":"measurement","seq":999,"t_wall":"2025-03-14T10:5')  # killed mid-write
    artifacts = reports.build(run_dir, pdf=False, issued=ISSUED)
    return run_dir, artifacts
