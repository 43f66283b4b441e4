"""End to end: a failing `bmsrig run` prints the failing requirement, its measurements with
limits and acceptance, and where their plot and table are; no pytest/pluggy internals."""

import os
import re
import subprocess
import sys

CLI = [sys.executable, "-m", "rig.cli"]


def test_a_failing_run_prints_requirement_measurement_limits_and_plot(tmp_path):
    out = tmp_path / "run"
    # as a user runs it: not inside this suite's xdist worker (its variables make other
    # installed pytest plugins warn about xdist)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "XDIST_"))}
    proc = subprocess.run([*CLI, "run", "--out", str(out), "--defect", "adc_offset:cell=5,mv=8",
                           "-k", "test_sampling_accuracy"], capture_output=True, text=True, timeout=600, env=env)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 1, text[-3000:]
    for internal in ("pluggy", "_pytest", "site-packages", "Traceback", "CallInfo", "None s"):
        assert internal not in text, internal
    assert len(text.splitlines()) <= 30, text
    assert "FAIL ACC-001: Every cell channel reports within" in text
    assert re.search(r"cell05_error_mv = 7\.\d\d ±0\.\d\d mV \(set_v=[\d.]+, temp_c=25\); limits -5 … 5, acceptance", text)
    plots = re.findall(r"plot (\S+)#(p-[\w-]+),", text)
    assert plots
    html = (out / "report.html").read_text(encoding="utf-8")
    for path, anchor in plots:
        assert path == str(out / "report.html") and f'id="{anchor}"' in html


def test_nothing_is_printed_for_a_run_without_failures(tmp_path):
    import io
    import json

    from reports.console import print_failures

    (tmp_path / "summary.json").write_text(json.dumps({"tests": [{"nodeid": "a::t", "outcome": "passed"}],
                                                       "requirements": {"R": {"verdict": "PASS"}}}))
    buf = io.StringIO()
    assert print_failures(tmp_path, buf) == 0 and buf.getvalue() == ""
    assert print_failures(tmp_path / "missing", buf) == 0
