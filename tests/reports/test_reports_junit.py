"""junit.xml: validates against the Jenkins JUnit schema and carries requirements and measurements."""

from __future__ import annotations

import json

import copy
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from rig.record import load_summary
from reports.junit import build_junit, classname_of
from testplans.requirements import load_requirements

etree = pytest.importorskip("lxml.etree", reason="lxml validates junit.xml against the XSD (pip install -e .[test])")

XSD = Path(__file__).parent / "data" / "jenkins-junit-subset.xsd"
XS = "http://www.w3.org/2001/XMLSchema"


def _schema(testcase_properties: bool):
    doc = etree.parse(str(XSD))
    if testcase_properties:
        # the one extension: <properties> inside <testcase> (Jenkins' JUnit plugin, GitLab, pytest read it)
        choice = doc.find(f"{{{XS}}}element[@name='testcase']//{{{XS}}}choice")
        etree.SubElement(choice, f"{{{XS}}}element", ref="properties")
    return etree.XMLSchema(doc)


def test_junit_validates_with_testcase_properties(built_run):
    run_dir, artifacts, _ = built_run
    schema = _schema(testcase_properties=True)
    doc = etree.parse(str(artifacts["junit.xml"]))
    assert schema.validate(doc), schema.error_log


def test_junit_without_testcase_properties_validates_against_the_unchanged_schema(built_run):
    run_dir, _, _ = built_run
    schema = _schema(testcase_properties=False)
    tree = build_junit(load_summary(run_dir), testcase_properties=False)
    doc = etree.fromstring(ET.tostring(tree.getroot(), encoding="utf-8"))
    assert schema.validate(doc), schema.error_log
    # and the default file is rejected by it only because of the per-testcase properties
    full = etree.parse(str(run_dir / "junit.xml"))
    stripped = copy.deepcopy(full)
    for tc in stripped.iter("testcase"):
        for p in tc.findall("properties"):
            tc.remove(p)
    assert schema.validate(stripped), schema.error_log


def test_testcases_carry_requirements_measurements_and_verdicts(built_run):
    run_dir, artifacts, _ = built_run
    root = ET.parse(artifacts["junit.xml"]).getroot()
    suite = root.find("testsuite")
    assert suite.get("tests") == "13" and suite.get("failures") == "1"
    assert suite.get("errors") == "1" and suite.get("skipped") == "1"
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["run_id"] == "20250314T101500Z-ref16-7f3a" and props["dut.serial"] == "REF16-000123"
    assert props["decision_rule"] == "guarded" and props["complete"] == "true"

    cases = {tc.get("name"): tc for tc in suite.iter("testcase")}
    hvc = cases["test_hvc_trip"]
    assert hvc.get("classname") == "testplans.test_qualification"
    reqs = [p.get("value") for p in hvc.find("properties") if p.get("name") == "requirement"]
    assert reqs == ["HVC-001", "HVC-002", "HVC-003"]
    meas = json.loads(next(p.get("value") for p in hvc.find("properties") if p.get("name") == "measurements.json"))
    assert (meas[0]["name"], meas[0]["value"], meas[0]["unit"], meas[0]["verdict"]) == ("hvc_trip_v", 3.6512, "V", "pass")
    assert meas[0]["limits"] == {"low": 3.64, "high": 3.66}
    assert "hvc_trip_v=3.6512 V [3.64, 3.66]" in hvc.find("system-out").text  # the human line stays in system-out

    hot = cases["test_sampling_accuracy[45C]"]
    failure = hot.find("failure")
    assert failure is not None and "sampling_error_cell_05" in failure.get("message")
    assert failure.get("message").startswith("1 measurement out of limits")
    assert cases["test_temperature_compensation"].find("skipped") is not None
    err = cases["test_link_dropout"].find("error")
    assert err is not None and err.get("type") == "RigFault"


def test_incomplete_run_marks_unfinished_tests_as_errors(incomplete_run):
    run_dir, artifacts = incomplete_run
    suite = ET.parse(artifacts["junit.xml"]).getroot().find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["complete"] == "false"
    cases = {tc.get("name"): tc for tc in suite.iter("testcase")}
    assert cases["test_balancing_pause"].find("error").get("type") == "Incomplete"
    assert "never started" in cases["test_hvc_recovery"].find("error").get("message")
    assert _schema(True).validate(etree.parse(str(artifacts["junit.xml"])))


@pytest.mark.parametrize(
    "nodeid, expected",
    [
        ("testplans/test_hvc.py::test_trip[16]", ("testplans.test_hvc", "test_trip[16]")),
        ("testplans/test_bal.py::TestBleed::test_current", ("testplans.test_bal.TestBleed", "test_current")),
        ("odd", ("bmsrig", "odd")),
    ],
)
def test_classname_from_nodeid(nodeid, expected):
    assert classname_of(nodeid) == expected


def test_one_testcase_per_requirement_when_the_run_asked_for_it(tmp_path, built_run):
    import json
    import shutil
    import xml.etree.ElementTree as ET

    from reports.junit import build_junit
    from rig.record import load_summary

    run_dir = tmp_path / "run"
    shutil.copytree(built_run[0], run_dir)
    lines = (run_dir / "record.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    first["context"]["junit_by"] = "requirement"
    (run_dir / "record.jsonl").write_text("\n".join([json.dumps(first)] + lines[1:]) + "\n", encoding="utf-8")
    root = build_junit(load_summary(run_dir)).getroot()
    cases = {tc.get("name"): tc for tc in root.iter("testcase")}
    assert all(tc.get("classname") == "requirements" for tc in cases.values())
    assert len(cases) == len(load_requirements())  # every requirement of the profile
    assert cases["ACC-001"].find("failure") is not None
    assert cases["MAP-001"].find("skipped") is not None
    assert cases["HVC-004"].find("error") is not None
    props = {p.get("name"): p.get("value") for p in cases["ACC-001"].iter("property")}
    assert len(json.loads(props["measurements.json"])) == 48
    suite = root.find("testsuite")
    assert suite.get("tests") == str(len(load_requirements())) and int(suite.get("failures")) >= 1
