"""summary.json: the run for a CI system, machine-readable, beside the report.

One JSON object (``format: bmsrig-summary/1``): run id, board identity (and whether it
identifies the item, :mod:`rig.identity`), verdict and exit code (after the identity gate),
counts, per test its outcome and measurements, per requirement its verdict, the worst
margin and its measurements as references ``{test, index, name, unit, verdict, margin}``
(``index`` into that test's ``measurements``), the artifacts' paths (relative to the run folder) and
the signing key's fingerprint. A measurement is ``{name, value, unit, limits: {low, high},
acceptance: {low, high}, uncertainty: {U, k[, reason]}, decision_rule, verdict, margin, requirement,
conditions}``; an open limit or a non-finite value is ``null``. ``margin`` is the distance
from the value to the nearest acceptance limit in the value's unit (negative: outside).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from rig.identity import identity_problems
from rig.record import RecordSummary, number

from testplans.requirements import record_requirements

from .anchors import plot_anchors, slug
from .verdict import gated_exit_code, overall_verdict, results_verdict, traceability

FORMAT = "bmsrig-summary/1"
SUMMARY_FILE = "summary.json"


def _finite(x: Any) -> float | None:
    f = number(x)
    return f if f is not None and math.isfinite(f) else None


def _pair(limits) -> dict:
    lo, hi = (list(limits or []) + [None, None])[:2]
    return {"low": _finite(lo), "high": _finite(hi)}


def margin(m: dict) -> float | None:
    """Distance from the value to the nearest acceptance limit (tolerance limit when no
    acceptance is recorded), in the value's unit; negative outside; None without a value
    or without any finite limit."""
    v = _finite(m.get("value"))
    if v is None:
        return None
    acc = _pair(m.get("acceptance") or m.get("limits"))
    sides = [v - acc["low"]] if acc["low"] is not None else []
    sides += [acc["high"] - v] if acc["high"] is not None else []
    return min(sides) if sides else None


def measurement_dict(m: dict) -> dict:
    """One recorded measurement as plain, typed JSON."""
    u = _finite(m.get("uncertainty"))
    return {
        "name": m.get("name"),
        "value": _finite(m.get("value")),
        "unit": m.get("unit") or "",
        "limits": _pair(m.get("limits")),
        "acceptance": _pair(m.get("acceptance") or m.get("limits")),
        "uncertainty": {"U": u, "k": 2, **({"reason": str(m["u_reason"])} if m.get("u_reason") else {})},
        "decision_rule": m.get("decision_rule"),
        "verdict": m.get("verdict"),
        "margin": margin(m),
        "requirement": m.get("requirement"),
        "conditions": plain(m.get("conditions") or {}),
    }


def plain(x: Any) -> Any:
    """JSON without NaN/inf (strict parsers reject them): non-finite floats become null."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    return x


def _worst(ms: list[dict]) -> dict | None:
    scored = [m for m in ms if m["margin"] is not None]
    if not scored:
        return None
    w = min(scored, key=lambda m: m["margin"])
    return {"name": w["name"], "test": w.get("test"), "margin": w["margin"], "unit": w["unit"], "verdict": w["verdict"]}


def build_summary(summary: RecordSummary, signature: dict | None = None, artifacts: list[str] | None = None) -> dict:
    """The summary.json document of a run."""
    ctx = summary.context
    profile = ctx.get("board_profile") or {}
    requirements = record_requirements(ctx)
    dut = summary.dut or {}
    problems = identity_problems(summary.dut)
    tests, by_req = [], {}
    for t in summary.tests.values():
        ms = []
        for i, raw in enumerate(t.measurements):
            m = measurement_dict(raw)
            ms.append(m)
            req = m["requirement"] or (t.requirements[0] if len(t.requirements) == 1 else None)
            if req:
                by_req.setdefault(req, []).append({"test": t.nodeid, "index": i, "name": m["name"], "unit": m["unit"],
                                                   "verdict": m["verdict"], "margin": m["margin"]})
        tests.append({"nodeid": t.nodeid, "name": t.name, "outcome": t.status, "requirements": t.requirements,
                      "duration_s": _finite(t.duration_s), "message": t.message, "measurements": ms,
                      "captures": [c.get("file") for c in t.captures if c.get("file")],
                      "report_anchor": f"report.html#t-{slug(t.nodeid)}",
                      "plots": [f"report.html#{a}" for a in plot_anchors(t.nodeid, t.measurements, t.captures)]})
    reqs = {}
    for row in traceability(summary, requirements):
        ms = by_req.get(row["id"], [])
        reqs[row["id"]] = {"text": row["text"], "verdict": row["verdict"], "tests": dict(row["tests"]),
                           "n_measurements": row["n"], "n_failed": row["n_fail"], "worst": _worst(ms),
                           "measurements": ms}
    start = summary.run_start or {}
    return {
        "format": FORMAT,
        "run_id": summary.run_id,
        "complete": summary.complete,
        "verdict": overall_verdict(summary),
        "results_verdict": results_verdict(summary),
        "exit_code": gated_exit_code(summary),
        "board": {"profile": profile.get("name"), "serial": dut.get("serial"), "hw_revision": dut.get("hw_revision"),
                  "fw_version": dut.get("fw_version"), "identified": not problems, "identity_problems": problems,
                  **({"identity_source": dut["identity_source"]} if dut.get("identity_source") else {})},
        "started": start.get("t_wall") or summary.first_wall,
        "ended": (summary.run_end or {}).get("t_wall") or summary.last_wall,
        "decision_rule": ctx.get("decision_rule"),
        "seed": ctx.get("seed"),
        "defects": list(ctx.get("defects") or []),
        "rig": {"env": (ctx.get("rig") or {}).get("env"), "kind": (ctx.get("rig") or {}).get("kind")},
        "counts": summary.counts(),
        "tests": tests,
        "requirements": reqs,
        "unverified_requirements": [r for r, row in reqs.items()
                                    if row["verdict"].startswith(("NOT VERIFIED", "NOT TESTED")) or "NOT VERIFIED" in row["verdict"]],
        "deviations": [{"kind": d.get("kind"), "test": d.get("test"), "message": d.get("message")}
                       for d in summary.deviations],
        "artifacts": sorted(artifacts or []),
        "signature": {k: v for k, v in (signature or {}).items() if k in ("fingerprint", "reason")},
    }


def write_summary(summary: RecordSummary, path: Path, signature: dict | None = None,
                  artifacts: list[str] | None = None) -> Path:
    """Write summary.json (atomically) and return its path."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(plain(build_summary(summary, signature, artifacts)), fh, indent=2, allow_nan=False, default=str)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path
