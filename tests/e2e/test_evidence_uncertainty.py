"""End to end: a full plan run records no measured value with U = 0 unless it states why
(``u_reason``: a count is exact, no scatter was seen), and the report shows the reason."""

import subprocess
import sys

import pytest

from rig.record import read_record

CLI = [sys.executable, "-m", "rig.cli"]


@pytest.fixture(scope="module")
def full_16s(tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "run16"
    proc = subprocess.run([*CLI, "run", "--board", "reference-16s-lfp", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    return proc, out


def test_no_measured_value_has_u_0_without_a_stated_reason(full_16s):
    proc, out = full_16s
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    measured = [e for e in read_record(out) if e["event"] == "measurement" and e.get("value") is not None]
    assert len(measured) > 300
    bare = sorted({f"{e['test'].split('::')[-1]}: {e['name']}" for e in measured
                   if not e.get("uncertainty") and not e.get("u_reason")})
    assert bare == [], "U = 0 without a reason:\n" + "\n".join(bare)
    # the quantities the issue named carry a real U now
    for suffix in ("repeatability_mv", "mapping_rise_mv", "gap_closing_rate_ma"):
        us = [e["uncertainty"] for e in measured if e["name"].endswith(suffix)]
        assert us and all(u > 0 for u in us), suffix


def test_the_report_states_each_reason_for_a_u_of_0(full_16s):
    proc, out = full_16s
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "(no reason)" not in html
    assert 'class="small muted u-notes">U = 0: <sup>1</sup> a count of discrete events' in html
