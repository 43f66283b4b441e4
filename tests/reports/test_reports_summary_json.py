"""summary.json and junit.xml's machine-readable measurement properties: what a CI system
parses without reading the report."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

from reports.summary_json import margin, measurement_dict
from reports_synthetic import RUN_ID


def test_summary_json_states_run_identity_verdict_and_every_measurement(built_run):
    run_dir, artifacts, _ = built_run
    doc = json.loads((run_dir / "summary.json").read_text())  # strict JSON: no NaN
    assert doc["format"] == "bmsrig-summary/1" and doc["run_id"] == RUN_ID
    assert doc["board"] == {"profile": "reference-16s-lfp", "serial": "REF16-000123", "hw_revision": "C",
                            "fw_version": "2.3.1", "identified": True, "identity_problems": []}
    assert doc["verdict"] == "FAIL" and doc["exit_code"] == 1
    assert doc["signature"]["fingerprint"].startswith("SHA256:")
    recorded = sum(1 for line in (run_dir / "record.jsonl").read_text().splitlines() if '"event":"measurement"' in line)
    assert sum(len(t["measurements"]) for t in doc["tests"]) == recorded
    m = doc["tests"][0]["measurements"][0]
    assert set(m) >= {"name", "value", "unit", "limits", "acceptance", "uncertainty", "decision_rule", "verdict", "margin"}
    assert set(m["limits"]) == {"low", "high"} and set(m["uncertainty"]) == {"U", "k"}
    assert {"report.html", "junit.xml", "manifest.json", "manifest.sig", "summary.json"} <= set(doc["artifacts"])


def test_summary_json_requirements_carry_verdict_and_worst_margin(built_run):
    run_dir, _, _ = built_run
    doc = json.loads((run_dir / "summary.json").read_text())
    acc = doc["requirements"]["ACC-001"]
    assert acc["verdict"] == "FAIL" and acc["n_failed"] >= 1
    assert acc["worst"]["margin"] < 0 and acc["worst"]["verdict"] == "fail"
    ref = acc["measurements"][0]
    test = next(t for t in doc["tests"] if t["nodeid"] == ref["test"])
    assert test["measurements"][ref["index"]]["name"] == ref["name"]  # a reference, not a copy
    assert all(r["verdict"] in ("PASS", "FAIL", "NOT JUDGED", "NOT TESTED", "NOT TESTED (skipped)")
               for r in doc["requirements"].values())


def test_margin_is_the_distance_to_the_nearest_acceptance_limit():
    assert margin({"value": 3.0, "limits": [0, 10], "acceptance": [1, 9]}) == 2.0
    assert margin({"value": 9.5, "limits": [0, 10], "acceptance": [1, 9]}) == -0.5
    assert margin({"value": 4.0, "limits": [None, 10]}) == 6.0
    assert margin({"value": "nan", "limits": [0, 1]}) is None
    m = measurement_dict({"name": "x", "value": "inf", "unit": "mV", "limits": ["-inf", 10], "uncertainty": 0.2})
    assert m["value"] is None and m["limits"] == {"low": None, "high": 10.0} and m["uncertainty"]["U"] == 0.2


def test_junit_measurements_are_one_json_property_per_testcase(built_run):
    run_dir, _, _ = built_run
    root = ET.parse(run_dir / "junit.xml").getroot()
    suite_props = {p.get("name"): p.get("value") for p in root.find("testsuite/properties")}
    assert suite_props["verdict"] == "FAIL" and suite_props["exit_code"] == "1"
    n = 0
    for tc in root.iter("testcase"):
        props = [p for p in tc.iter("property") if p.get("name") == "measurements.json"]
        assert not [p for p in tc.iter("property") if p.get("name") == "measurement"], "no free-text measurement property"
        assert len(props) <= 1
        for p in props:
            ms = json.loads(p.get("value"))
            for m in ms:
                n += 1
                assert isinstance(m["name"], str) and m["verdict"] in ("pass", "fail")
                assert m["value"] is None or math.isfinite(m["value"])
    assert n > 10
