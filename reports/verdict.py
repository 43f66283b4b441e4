"""The run's verdicts from its record, shared by the report, junit.xml and summary.json.

- :func:`overall_verdict`: PASS / FAIL / INCOMPLETE / ERROR / NO TESTS, or UNIDENTIFIED when
  a judged run's board did not identify itself (:mod:`rig.identity`);
- :func:`gated_exit_code`: the recorded exit code after the identity gate;
- :func:`traceability`: per requirement its tests, measurements and verdict ("NOT VERIFIED:
  <reason>" when its tests were skipped because the board does not report a quantity;
  "PASS (part NOT VERIFIED: <reason>)" when only some were).
"""

from __future__ import annotations

from rig.identity import UNIDENTIFIED, gate_exit_code, identity_problems
from rig.record import RecordSummary


def overall_verdict(summary: RecordSummary) -> str:
    """PASS / FAIL / INCOMPLETE / ERROR / NO TESTS; a judged run (PASS or FAIL) of a board
    whose serial or firmware was not read is UNIDENTIFIED (:mod:`rig.identity`)."""
    verdict = results_verdict(summary)
    if verdict in ("PASS", "FAIL") and identity_problems(summary.dut):
        return UNIDENTIFIED
    return verdict


def results_verdict(summary: RecordSummary) -> str:
    """The verdict the results alone give (before the identity gate)."""
    tests = list(summary.tests.values())
    if any(t.status == "failed" or t.failed_measurements for t in tests):
        return "FAIL"
    if not summary.complete:
        return "INCOMPLETE"
    if any(t.status in ("error", "incomplete", "not run") for t in tests):
        return "ERROR"
    if not any(t.status == "passed" for t in tests):
        return "NO TESTS"
    return "PASS"


def traceability(summary: RecordSummary, requirements: dict) -> list[dict]:
    """Per requirement (profile order, then any the record adds): its text, ``tests``
    [(nodeid, status)], ``n`` measurements, ``n_fail`` failed, ``verdict`` and CSS ``cls``."""
    by_req: dict[str, dict] = {}
    order = list(requirements)
    for t in summary.tests.values():
        reqs = list(t.requirements) + [m.get("requirement") for m in t.measurements if m.get("requirement")]
        for r in dict.fromkeys(reqs):
            row = by_req.setdefault(r, {"tests": {}, "n": 0, "n_fail": 0})
            row["tests"][t.nodeid] = t.status
            if r not in order:
                order.append(r)
        for m in t.measurements:
            r = m.get("requirement") or (t.requirements[0] if len(t.requirements) == 1 else None)
            if r:
                row = by_req.setdefault(r, {"tests": {t.nodeid: t.status}, "n": 0, "n_fail": 0})
                row["n"] += 1
                row["n_fail"] += m.get("verdict") != "pass"
    rows = []
    for r in order:
        info = by_req.get(r)
        text = requirements.get(r) or "(not in the board profile)"
        if not info:
            rows.append({"id": r, "text": text, "tests": [], "n": 0, "n_fail": 0, "verdict": "NOT TESTED", "cls": "muted"})
            continue
        statuses = set(info["tests"].values())
        if info["n_fail"] or "failed" in statuses:
            verdict, cls = "FAIL", "fail"
        elif statuses & {"error", "incomplete", "not run"}:
            verdict, cls = "NOT JUDGED", "incomplete"
        elif statuses <= {"skipped"}:
            why = not_verified_reason(summary, info["tests"])
            verdict, cls = ("NOT VERIFIED: " + why if why else "NOT TESTED (skipped)"), "muted"
        else:
            skipped = [n for n, st in info["tests"].items() if st == "skipped"]
            why = not_verified_reason(summary, skipped) if skipped else None
            verdict, cls = ("PASS (part NOT VERIFIED: " + why + ")" if why else "PASS"), "pass"
        rows.append({
            "id": r, "text": text, "tests": sorted(info["tests"].items()), "n": info["n"], "n_fail": info["n_fail"],
            "verdict": verdict, "cls": cls,
        })
    return rows


#: how a plan's skip message starts when the requirement is not applicable to the board
#: (it does not report the quantity: ``rig.links.base.Capabilities.reason``)
NOT_VERIFIED = "not verified: "


def not_verified_reason(summary: RecordSummary, nodeids) -> str | None:
    """The reason(s) the skipped tests ``nodeids`` give for "not verified" (a quantity the
    board does not report), joined with "; "; None when none of them says so."""
    reasons = []
    for nodeid in nodeids:
        t = summary.tests.get(nodeid)
        msg = (getattr(t, "message", None) or "").strip()
        if msg.startswith("Skipped: "):
            msg = msg[len("Skipped: "):]
        if msg.startswith(NOT_VERIFIED) and msg[len(NOT_VERIFIED):] not in reasons:
            reasons.append(msg[len(NOT_VERIFIED):])
    return "; ".join(reasons) or None


def gated_exit_code(summary: RecordSummary) -> int | None:
    """The run's exit code: the recorded one after the identity gate (None when not recorded)."""
    code = (summary.run_end or {}).get("exit_code")
    return gate_exit_code(int(code), summary.dut) if isinstance(code, int) else code
