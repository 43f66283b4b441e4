"""End to end: `bmsrig run` indexes each run in the results database (unless --no-index)
and the report shows a trend of the key measurements over the earlier runs of the same
board profile; a run record alone still rebuilds its report (no database: no trend)."""

import subprocess
import sys

CLI = [sys.executable, "-m", "rig.cli"]


def _run(out, *extra):
    proc = subprocess.run([*CLI, "run", "--board", "reference-4s-lfp-uart", "--out", str(out), "-k", "hvc_latency",
                           *extra], capture_output=True, text=True, timeout=600, env=_env())
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


def _env():
    import os

    env = dict(os.environ)
    env.pop("BMSRIG_DB", None)
    return env


def test_runs_are_indexed_and_the_report_trends_earlier_runs(tmp_path):
    runs = tmp_path / "runs"
    _run(runs / "a", "--no-index")
    assert not (runs / "results.sqlite").exists()
    proc = _run(runs / "b")
    assert (runs / "results.sqlite").is_file() and "index  sqlite:///" in proc.stdout
    assert 'id="trend"' not in (runs / "b" / "report.html").read_text(encoding="utf-8")  # nothing earlier indexed
    _run(runs / "c")
    html = (runs / "c" / "report.html").read_text(encoding="utf-8")
    assert 'id="trend"' in html and "over the last 1 indexed run of the same board profile" in html
    assert "cell01_charge_current_after_hvc_a" in html[html.index('id="trend"'):]
    # the record alone rebuilds the report: without the database, without the trend
    (runs / "results.sqlite").unlink()
    proc = subprocess.run([*CLI, "report", str(runs / "c")], capture_output=True, text=True, timeout=600, env=_env())
    assert proc.returncode == 0, proc.stderr
    assert 'id="trend"' not in (runs / "c" / "report.html").read_text(encoding="utf-8")
    assert not (runs / "results.sqlite").exists()
