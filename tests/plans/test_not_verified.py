"""End to end: a correct board whose link map lacks a quantity is not failed for it.

The test profiles under ``data/`` are the reference 16S board with `cells.balancing`
(resp. `flags`) removed from a copy of its signal map. The board itself is correct; it only
does not tell. ``bmsrig run`` ends PASS (exit 0), the requirements that rest on the missing
quantity are "NOT VERIFIED: <reason>" in summary.json and the report, their tests are
skipped with the reason in junit.xml and the console, and where the rig sees the quantity
itself (bleed currents on the emulator's channels) the plan judges on that and says so.
"""

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from rig.record import read_record

DATA = Path(__file__).parent / "data"
CLI = [sys.executable, "-m", "rig.cli"]
NO_MASK = "the board does not report its balancing mask (signal map no-balancing-can.yaml has no `cells.balancing`)"
NO_HVC = "the board does not report its HVC flag (signal map no-flags-can.yaml has no `flags.hvc`)"


def run_cli(*args, timeout=600):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def junit_skips(out: Path) -> dict[str, str]:
    root = ET.parse(out / "junit.xml").getroot()
    return {tc.get("name"): sk.get("message") for tc in root.iter("testcase") for sk in tc.findall("skipped")}


def test_a_board_without_a_balancing_mask_passes_with_the_mask_tests_not_verified(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("run", "--board", str(DATA / "reference-16s-no-balancing.yaml"), "--out", str(out),
                   "test_bleed_timing.py", "test_noise_immunity.py")
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-3000:]
    doc = json.loads((out / "summary.json").read_text())
    reqs = {k: v["verdict"] for k, v in doc["requirements"].items()}
    for r in ("BAL-001", "BAL-003", "BAL-006"):
        assert reqs[r] == "NOT VERIFIED: " + NO_MASK, reqs
    for r in ("BAL-002", "BAL-004", "BAL-005"):  # judged on the rig's own observation
        assert reqs[r] == "PASS", reqs
    # ACC-002: the sampling-noise test passed, the mask-under-noise test is not verified
    assert reqs["ACC-002"] == f"PASS (part NOT VERIFIED: {NO_MASK})", reqs
    skips = junit_skips(out)
    assert set(skips) == {"test_balancing_start", "test_balancing_stop", "test_balancing_pauses_for_measurement",
                          "test_balancing_noise_immunity"}, skips
    assert all(NO_MASK in m for m in skips.values()), skips
    assert f"NOT VERIFIED test_bleed_timing.py::test_balancing_start: {NO_MASK}" in proc.stdout
    report = (out / "report.html").read_text()
    assert "NOT VERIFIED: " + NO_MASK in report
    # the front page does not claim more than was verified: no "every test passed", and the
    # statement of conformity names what it says nothing about
    unverified = set(doc["unverified_requirements"])
    assert {"BAL-001", "BAL-003", "BAL-006", "ACC-002"} <= unverified, unverified
    assert not {"BAL-002", "BAL-004", "BAL-005"} & unverified, unverified
    assert "Every test passed" not in report and "4 skipped" in report
    statement = report[report.index("No statement is made on"):].split(":", 1)[0]
    assert all(r in statement for r in ("BAL-001", "BAL-003", "BAL-006", "ACC-002")), statement
    # the bleed currents are measured on the emulator, and the conditions say the rig observed them
    meas = [e for e in read_record(out / "record.jsonl") if e.get("event") == "measurement"]
    bleed = [m for m in meas if m["name"].endswith("_bleed_current_ma")]
    assert len(bleed) == 16 and all(m["verdict"] == "pass" for m in bleed), bleed[:2]
    assert all(m["conditions"]["board_selected"].startswith("rig observation: emulator channel currents")
               for m in bleed)
    assert not [m for m in meas if m["name"] in ("channels_balancing_on_plateau", "max_channels_balancing_link")]
    assert [m for m in meas if m["name"] == "max_channels_conducting_emulator"]


def test_a_board_without_flags_passes_with_the_flag_checks_not_verified(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("run", "--board", str(DATA / "reference-16s-no-flags.yaml"), "--out", str(out),
                   "test_hvc.py", "test_lvc.py")
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-3000:]
    doc = json.loads((out / "summary.json").read_text())
    reqs = {k: v["verdict"] for k, v in doc["requirements"].items()}
    assert reqs["HVC-003"] == "NOT VERIFIED: " + NO_HVC, reqs
    assert reqs["HVC-001"] == reqs["LVC-001"] == reqs["LVC-002"] == "PASS", reqs
    assert junit_skips(out) == {"test_hvc_flag": "Skipped: not verified: " + NO_HVC}
    meas = [e for e in read_record(out / "record.jsonl") if e.get("event") == "measurement"]
    lvc = [m for m in meas if m["name"].startswith("cell01_") and "test_lvc_threshold" in str(m.get("test"))]
    assert len(lvc) >= 4, [m["name"] for m in meas][:10]
    assert not [m for m in lvc if "flag" in m["name"]], [m["name"] for m in lvc]
    assert all("no `flags.lvc`" in m["conditions"]["lvc_flag"] for m in lvc), lvc[:1]


@pytest.mark.parametrize("name", ["reference-16s-no-balancing", "reference-16s-no-flags", "reference-16s-cell-ntcs-only",
                                  "reference-16s-bare"])
def test_the_test_profiles_are_the_reference_board_but_for_the_map(name):
    ref = (Path(__file__).parents[2] / "testplans" / "profiles" / "reference-16s-lfp.yaml").read_text()
    mine = (DATA / f"{name}.yaml").read_text()
    drop = ("name:", "dbc:", "signal_map:", "#", "temperatures:", "cells: [1,")
    keep = lambda text: [ln for ln in text.splitlines() if not ln.strip().startswith(drop)]  # noqa: E731
    assert keep(mine) == keep(ref)


def test_a_board_with_no_bleed_resistor_sensor_has_its_derating_not_verified(tmp_path):
    """The profile names the 16 cell NTCs and no bleed-resistor sensor: derating is judged on
    that reading, so it is not verified (never judged on a cell NTC as if it were the resistor)."""
    out = tmp_path / "run"
    proc = run_cli("run", "--board", str(DATA / "reference-16s-cell-ntcs-only.yaml"), "--out", str(out),
                   "test_derating.py")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    doc = json.loads((out / "summary.json").read_text())
    assert doc["requirements"]["BAL-008"]["verdict"].startswith("NOT VERIFIED: the board reports no bleed-resistor")
    assert "NOT VERIFIED test_derating.py::test_derating" in proc.stdout
