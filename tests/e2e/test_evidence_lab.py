"""End to end: `bmsrig run --lab-config` records the lab file in run_start and the report
names customer, method and approver; a wrong lab file exits 2 before anything runs."""

import json
import subprocess
import sys

from rig.record import read_record

CLI = [sys.executable, "-m", "rig.cli"]

LAB = """\
customer: ACME Batteries GmbH
item_received: 2026-11-30
method: {id: LAB-BMS-TP-001, revision: 3}
preparer: {name: A. Tester}
approver: {name: B. Approver, function: head of laboratory}
authorisation: Authorised for issue.
"""


def test_the_lab_file_is_recorded_and_reported(tmp_path):
    lab = tmp_path / "lab.yaml"
    lab.write_text(LAB, encoding="utf-8")
    out = tmp_path / "run"
    proc = subprocess.run([*CLI, "run", "--out", str(out), "--lab-config", str(lab), "-k", "channel_mapping"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    start = next(e for e in read_record(out) if e["event"] == "run_start")
    assert start["context"]["lab_config"]["method"] == {"id": "LAB-BMS-TP-001", "revision": "3"}
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "LAB-BMS-TP-001 rev. 3" in html and "B. Approver, head of laboratory" in html
    assert "Not authorised" not in html


def test_a_wrong_lab_file_exits_2_naming_it(tmp_path):
    lab = tmp_path / "lab.yaml"
    lab.write_text(LAB + "approved_by: X\n", encoding="utf-8")
    out = tmp_path / "run"
    proc = subprocess.run([*CLI, "run", "--out", str(out), "--lab-config", str(lab)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2
    assert str(lab) in proc.stderr and "approved_by" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
