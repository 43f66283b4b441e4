"""junit.xml for the lab CI runner, from the run record.

Layout (Jenkins / Ant JUnit dialect, the one CI servers read)::

    <testsuites name="bmsrig" tests failures errors skipped time>
      <testsuite name="bmsrig.<run-id>" tests failures errors skipped time timestamp hostname id>
        <properties>  run_id, DUT identity, profile, decision rule, seed, defects, complete
        <testcase classname="testplans.test_hvc" name="test_trip[16]" time="...">
          <properties>
            <property name="requirement" value="HVC-001"/>
            <property name="measurements.json" value='[{"name": "trip_v", "value": 3.651, ...}]'/>
          <failure type="MeasurementFailure" message="2 measurements out of limits: ...">
          <skipped message="..."/>       skipped tests
          <error type="RigFault" message="..."/>  rig faults (outcome error) and unfinished tests
          <system-out>  the measurement table as text

``measurements.json`` is the machine-readable form: a JSON list, one object per measurement
(``name value unit limits{low,high} acceptance{low,high} uncertainty{U,k} decision_rule
verdict margin requirement conditions``, the same objects as ``summary.json``). The suite's
properties carry ``verdict`` and ``exit_code`` (after the identity gate).

Per-testcase ``<properties>`` are what Jenkins' JUnit plugin, GitLab and most readers take
for test metadata; note that the xunit-plugin schema (junit-10.xsd) only allows
``<properties>`` under ``<testsuite>``. With ``--junit-by requirement`` (recorded in the run's context as ``junit_by``) the suite
holds one testcase per requirement instead (:mod:`reports.junit_req`).
``testcase_properties=False`` leaves them out
(requirements are then in ``<system-out>`` only; the measurements always are, one human-readable
line each, ``trip_v=3.651 V [3.64, 3.66] U=0.002 pass``) for a runner that
validates against that schema strictly.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from rig.record import RecordSummary, TestRecord, number

from .summary_json import measurement_dict, plain
from .verdict import gated_exit_code, overall_verdict

# characters XML 1.0 cannot carry at all (a stray control byte from a UART must not break CI)
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text) -> str:
    return _XML_BAD.sub("\ufffd", "" if text is None else str(text))


def fmt_num(x, digits: int = 6) -> str:
    """A recorded number for humans: ``6`` significant digits, ``-inf``/``+inf`` for open limits."""
    if x is None:
        return "—"
    f = number(x)
    if f is None:
        return str(x)
    return f"{f:.{digits}g}"


def fmt_limits(limits) -> str:
    lo, hi = (list(limits or []) + [None, None])[:2]
    return f"[{'-inf' if lo is None else fmt_num(lo)}, {'+inf' if hi is None else fmt_num(hi)}]"


def describe_measurement(m: dict) -> str:
    """``name=value unit [lo, hi] U=.. verdict`` plus conditions — one property value."""
    unit = m.get("unit") or ""
    text = f"{m.get('name')}={fmt_num(m.get('value'))}{(' ' + unit) if unit else ''} {fmt_limits(m.get('limits'))}"
    u = number(m.get("uncertainty"))
    if u:
        text += f" U={fmt_num(u)}"
    if m.get("acceptance") and m.get("acceptance") != m.get("limits"):
        text += f" acc={fmt_limits(m.get('acceptance'))}"
    text += f" {m.get('verdict', '?')}"
    cond = m.get("conditions") or {}
    if cond:
        text += " {" + ", ".join(f"{k}={v}" for k, v in cond.items()) + "}"
    if m.get("requirement"):
        text += f" ({m['requirement']})"
    return text


def classname_of(nodeid: str) -> tuple[str, str]:
    """(classname, name) from a pytest nodeid: ``a/b/test_x.py::TestY::test_z[p]`` ->
    (``a.b.test_x.TestY``, ``test_z[p]``)."""
    path, sep, rest = nodeid.partition("::")
    if not sep:
        return "bmsrig", nodeid
    mod = path[:-3] if path.endswith(".py") else path
    parts = [p for p in re.split(r"[/\\]", mod) if p] + rest.split("::")[:-1]
    return ".".join(parts) or "bmsrig", rest.split("::")[-1]


def _time(x) -> str:
    f = number(x)
    return f"{max(f, 0.0):.3f}" if f is not None else "0.000"


def _testcase(t: TestRecord, testcase_properties: bool, run_complete: bool) -> tuple[ET.Element, str]:
    classname, name = classname_of(t.nodeid)
    tc = ET.Element("testcase", {"classname": _clean(classname), "name": _clean(name), "time": _time(t.duration_s)})
    if testcase_properties:
        props = ET.SubElement(tc, "properties")
        reqs = list(dict.fromkeys(t.requirements + [m["requirement"] for m in t.measurements if m.get("requirement")]))
        for r in reqs:
            ET.SubElement(props, "property", {"name": "requirement", "value": _clean(r)})
        if t.measurements:
            doc = plain([measurement_dict(m) for m in t.measurements])
            ET.SubElement(props, "property", {"name": "measurements.json",
                                              "value": _clean(json.dumps(doc, separators=(",", ":"), default=str))})
        for c in t.captures:
            ET.SubElement(props, "property", {"name": "capture", "value": _clean(c.get("file"))})
        if len(props) == 0:
            tc.remove(props)
    status = t.status
    failed = t.failed_measurements
    result = "passed"
    if status == "skipped":
        ET.SubElement(tc, "skipped", {"message": _clean(t.message or "skipped")})
        result = "skipped"
    elif status == "error":
        el = ET.SubElement(tc, "error", {"type": "RigFault", "message": _clean(t.message or "rig fault")})
        el.text = _clean(t.message)
        result = "error"
    elif status in ("incomplete", "not run"):
        why = "the run ended before this test finished" if status == "incomplete" else "never started: the run ended first"
        if run_complete and status == "not run":
            why = "planned but never started"
        el = ET.SubElement(tc, "error", {"type": "Incomplete", "message": _clean(f"{status}: {why}")})
        el.text = _clean(why)
        result = "error"
    elif status == "failed" or failed:
        if failed:
            msg = f"{len(failed)} measurement{'s' if len(failed) != 1 else ''} out of limits: " + "; ".join(
                describe_measurement(m) for m in failed
            )
        else:
            msg = t.message or "failed"
        el = ET.SubElement(tc, "failure", {"type": "MeasurementFailure" if failed else "AssertionError", "message": _clean(msg)})
        lines = [describe_measurement(m) for m in failed]
        if t.message and t.message not in lines:
            lines.append(t.message)
        el.text = _clean("\n".join(lines))
        result = "failed"
    out = []
    if t.requirements:
        out.append("requirements: " + ", ".join(t.requirements))
    out.extend(describe_measurement(m) for m in t.measurements)
    out.extend(f"deviation ({d.get('kind')}): {d.get('message')}" for d in t.deviations)
    if out:
        so = ET.SubElement(tc, "system-out")
        so.text = _clean("\n".join(out))
    return tc, result


def build_junit(summary: RecordSummary, testcase_properties: bool = True) -> ET.ElementTree:
    """The junit.xml tree for a run."""
    ctx = summary.context
    run_id = summary.run_id or "unknown-run"
    cases, totals = [], {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = sum(number(t.duration_s) or 0.0 for t in summary.tests.values())
    if ctx.get("junit_by") == "requirement":
        from .junit_req import requirement_cases

        made = requirement_cases(summary, _clean, describe_measurement)
    else:
        made = [_testcase(t, testcase_properties, summary.complete) for t in summary.tests.values()]
    for tc, result in made:
        cases.append(tc)
        totals["tests"] += 1
        totals["failures"] += result == "failed"
        totals["errors"] += result == "error"
        totals["skipped"] += result == "skipped"
    attrs = {k: str(v) for k, v in totals.items()}
    root = ET.Element("testsuites", {"name": "bmsrig", "time": f"{total_time:.3f}",
                                     "tests": attrs["tests"], "failures": attrs["failures"], "errors": attrs["errors"]})
    suite = ET.SubElement(root, "testsuite", {
        "name": _clean(f"bmsrig.{run_id}"), **attrs, "time": f"{total_time:.3f}",
        "timestamp": _clean((summary.run_start or {}).get("t_wall") or ""),
        "id": _clean(run_id),
    })
    if ctx.get("hostname"):
        suite.set("hostname", _clean(ctx["hostname"]))
    props = ET.SubElement(suite, "properties")
    verdict, code = overall_verdict(summary), gated_exit_code(summary)
    dut = summary.dut or {}
    profile = ctx.get("board_profile") or {}
    rule = ctx.get("decision_rule")
    if isinstance(rule, dict):
        rule = rule.get("name") or rule.get("kind")
    plans = ctx.get("plans") or {}
    run_props = [
        ("run_id", run_id),
        ("complete", "true" if summary.complete else "false"),
        ("verdict", verdict),
        ("exit_code", code),
        ("dut.serial", dut.get("serial")),
        ("dut.hw_revision", dut.get("hw_revision")),
        ("dut.fw_version", dut.get("fw_version")),
        ("board_profile", profile.get("name")),
        ("decision_rule", rule),
        ("seed", ctx.get("seed")),
        ("defects", ", ".join(ctx.get("defects") or []) or "none"),
        ("rig.kind", (ctx.get("rig") or {}).get("kind")),
        ("git_commit", plans.get("git_commit")),
        ("bmsrig_version", ctx.get("bmsrig_version")),
    ]
    for k, v in run_props:
        if v is not None and v != "":
            ET.SubElement(props, "property", {"name": k, "value": _clean(v)})
    suite.extend(cases)
    if summary.deviations or summary.torn_tail:
        lines = [f"deviation ({d.get('kind')}) {d.get('test') or ''}: {d.get('message')}" for d in summary.deviations]
        if summary.torn_tail:
            lines.append("record: torn last line dropped (run killed mid-write)")
        so = ET.SubElement(suite, "system-out")
        so.text = _clean("\n".join(lines))
    ET.indent(root, space="  ")
    return ET.ElementTree(root)


def write_junit(summary: RecordSummary, path: Path, testcase_properties: bool = True) -> Path:
    """Write junit.xml (UTF-8, XML declaration) and return its path."""
    tree = build_junit(summary, testcase_properties=testcase_properties)
    path = Path(path)
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return path
