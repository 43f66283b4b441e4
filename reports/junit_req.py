"""junit.xml with one testcase per requirement (``--junit-by requirement``).

A CI dashboard that tracks requirements rather than test functions gets one
``<testcase classname="requirements" name="HVC-001">`` per requirement of the board
profile: ``<failure>`` when the requirement failed, ``<error>`` when a test behind it was
not judged (rig fault, unfinished), ``<skipped>`` when no test covered it. Its properties:
``test`` (each test behind it) and ``measurements.json`` (its measurements, the objects of
``summary.json``); ``<system-out>`` the human-readable lines.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from rig.record import RecordSummary, number

from .summary_json import build_summary


def requirement_cases(summary: RecordSummary, clean, describe) -> list[tuple[ET.Element, str]]:
    """(testcase, result) per requirement; ``clean`` makes text XML-safe, ``describe`` writes
    one measurement line (both from :mod:`reports.junit`)."""
    doc = build_summary(summary)
    tests = {t["nodeid"]: t for t in doc["tests"]}
    raw = {t.nodeid: t for t in summary.tests.values()}
    cases = []
    for rid, req in doc["requirements"].items():
        nodeids = list(req.get("tests") or {})
        time_s = sum(number(tests[n].get("duration_s")) or 0.0 for n in nodeids if n in tests)
        tc = ET.Element("testcase", {"classname": "requirements", "name": clean(rid), "time": f"{time_s:.3f}"})
        props = ET.SubElement(tc, "properties")
        ET.SubElement(props, "property", {"name": "text", "value": clean(req.get("text"))})
        for n in nodeids:
            ET.SubElement(props, "property", {"name": "test", "value": clean(n)})
        refs = req.get("measurements") or []
        ms = [tests[r["test"]]["measurements"][r["index"]] for r in refs if r["test"] in tests]
        if ms:
            ET.SubElement(props, "property", {"name": "measurements.json",
                                              "value": clean(json.dumps(ms, separators=(",", ":"), default=str))})
        raw_ms = [raw[r["test"]].measurements[r["index"]] for r in refs if r["test"] in raw]
        failed = [m for m in raw_ms if m.get("verdict") != "pass"]
        verdict = req.get("verdict") or ""
        if verdict == "FAIL":
            msg = (f"{len(failed)} of {len(raw_ms)} measurements out of limits: " + "; ".join(describe(m) for m in failed[:10])
                   if failed else "a test behind this requirement failed: " + ", ".join(
                       n for n in nodeids if (req["tests"] or {}).get(n) == "failed"))
            el = ET.SubElement(tc, "failure", {"type": "RequirementFailed", "message": clean(msg)})
            el.text = clean("\n".join(describe(m) for m in failed))
            result = "failed"
        elif verdict.startswith("NOT JUDGED"):
            ET.SubElement(tc, "error", {"type": "NotJudged", "message": clean("a test behind this requirement was not judged")})
            result = "error"
        elif verdict.startswith("NOT TESTED"):
            ET.SubElement(tc, "skipped", {"message": clean(verdict.lower())})
            result = "skipped"
        else:
            result = "passed"
        if raw_ms:
            ET.SubElement(tc, "system-out").text = clean("\n".join(describe(m) for m in raw_ms))
        cases.append((tc, result))
    return cases
