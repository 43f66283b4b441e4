"""report.html: the test report (ISO/IEC 17025 clause 7.8) as one self-contained page.

:func:`report_context` turns a run record into the facts the report states (plain data,
testable on its own); :func:`render_html` fills ``templates/report.html.j2`` with them.
Plots are inline SVG, the CSS is inline: the file needs nothing beside it. The PDF is
printed from this same HTML (CSS paged media: run ID and "page x of y" on every page).
"""

from __future__ import annotations

import datetime as _dt
import itertools
import re
from pathlib import Path
from typing import Any

import jinja2

from rig.identity import UNIDENTIFIED, identity_problems
from rig.labconfig import NOT_STATED, lab_facts
from rig.record import RecordSummary, TestRecord, number, parse_iso, read_capture
from testplans.requirements import record_requirements
from . import plots
from .conditions import cond_text, conditions_section, observed_text
from .fmt import clean_text, fmt_limits, fmt_value_u
from .anchors import has_measurement_plot, slug
from .tables import annex_tables, layout_test, trend_rows, worst_by_requirement
from .verdict import gated_exit_code, overall_verdict, traceability

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

try:  # the wording the measuring code used; the report must still build without it
    from rig.measurement import DECISION_RULES as _RULE_TEXT
except Exception:  # pragma: no cover - rig.measurement is part of the package
    _RULE_TEXT = {}

RULE_TEXT = {
    "guarded": _RULE_TEXT.get("guarded")
    or "Guarded acceptance per ILAC-G8:2019: a result passes only when it lies inside the tolerance "
    "limits reduced on each side by its expanded uncertainty U (k = 2), acceptance limit = tolerance "
    "limit − U; otherwise it fails.",
    "simple": _RULE_TEXT.get("simple")
    or "Simple acceptance per ILAC-G8:2019: a result passes when the measured value lies inside the "
    "tolerance limits; the measurement uncertainty is reported but not deducted (false-accept risk up "
    "to 50 % for results on a limit).",
}

RULE_RISK = {
    "guarded": "With the guard band w = U (k = 2, normal distribution) the specific risk of a false "
    "accept is below 2.5 % for every result declared PASS; a result in the guard band is declared FAIL "
    "(false-reject risk accepted by the lab).",
    "simple": "Results are compared with the tolerance limits directly (guard band w = 0). A PASS "
    "within U of a limit carries a specific false-accept risk of up to 50 %; such results are counted "
    "below.",
}

VERDICT_CLASS = {"PASS": "pass", "FAIL": "fail", "INCOMPLETE": "incomplete", "ERROR": "error", "NO TESTS": "incomplete",
                 UNIDENTIFIED: "error"}


def rule_name(rule: Any) -> str | None:
    """``guarded`` / ``simple`` from a recorded decision rule (a name or a dict)."""
    if isinstance(rule, dict):
        rule = rule.get("name") or rule.get("kind") or rule.get("rule")
    if not rule:
        return None
    r = str(rule).lower()
    if "guard" in r:
        return "guarded"
    if "simple" in r:
        return "simple"
    return str(rule)


def _date(text: str | None) -> _dt.date | None:
    t = parse_iso(text)
    if t is not None:
        return t.date()
    if isinstance(text, str):
        try:
            return _dt.date.fromisoformat(text[:10])
        except ValueError:
            return None
    return None


def _fmt_wall(text: str | None) -> str:
    t = parse_iso(text)
    return t.strftime("%Y-%m-%d %H:%M:%S UTC") if t else (text or "—")


def _fmt_duration(s: float | None) -> str:
    if s is None:
        return "—"
    if s < 120:
        return f"{s:.3g} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    h, rem = divmod(int(round(s)), 3600)
    return f"{h} h {rem // 60:02d} min"


def _measurement_row(i: int, m: dict, default_rule: str | None) -> dict:
    rule = rule_name(m.get("decision_rule")) or default_rule
    limits = m.get("limits") or [None, None]
    acc = m.get("acceptance")
    if not acc:
        u = number(m.get("uncertainty")) or 0.0
        lo, hi = (list(limits) + [None, None])[:2]
        lo, hi = number(lo), number(hi)
        acc = [lo, hi] if rule == "simple" else [None if lo is None else lo + u, None if hi is None else hi - u]
    verdict = str(m.get("verdict") or "?").upper()
    value, u = fmt_value_u(m.get("value"), m.get("uncertainty"))
    observed = observed_text(m.get("conditions"))
    return {
        "i": i,
        "name": m.get("name") or "",
        "conditions": cond_text(m.get("conditions")) + (f" (observed: {observed})" if observed else ""),
        "value": value,
        "unit": "" if (m.get("unit") or "") == "1" or m.get("value") is None else m.get("unit"),
        "limits": fmt_limits(limits),
        "uncertainty": u,
        "acceptance": fmt_limits(acc),
        "rule": rule or "",
        "verdict": verdict,
        "cls": "pass" if verdict == "PASS" else "fail",
        "requirement": m.get("requirement") or "",
        "u_zero": u == "0" and m.get("value") is not None, "u_note": 0,
        "u_reason": clean_text(m.get("u_reason")) if m.get("u_reason") else "",
    }


def u_notes(rows: list[dict]) -> list[str]:
    """The reasons a U of 0 is stated in ``rows``, numbered in order of first use: sets each
    such row's ``u_note`` (1-based) and returns the reasons (the notes under the table)."""
    notes: list[str] = []
    for r in rows:
        if r["u_zero"] and r["u_reason"]:
            if r["u_reason"] not in notes:
                notes.append(r["u_reason"])
            r["u_note"] = notes.index(r["u_reason"]) + 1
    return notes


def _near_limit(m: dict) -> bool:
    """A simple-acceptance PASS within U of a tolerance limit (false-accept risk > 2.5 %)."""
    v, u = number(m.get("value")), number(m.get("uncertainty")) or 0.0
    if v is None or not u or m.get("verdict") != "pass":
        return False
    lo, hi = [number(x) for x in (list(m.get("limits") or []) + [None, None])[:2]]
    return (lo is not None and v < lo + u) or (hi is not None and v > hi - u)


def shared_rig_line(labgrid: dict | None) -> str | None:
    """The report's line naming the labgrid coordinator, places, exporters and resources a
    shared rig was held through (``record run_start context.rig.labgrid``), None otherwise."""
    if not labgrid or not labgrid.get("places"):
        return None
    parts = []
    for p in labgrid["places"]:
        res = ", ".join(f"{r.get('cls')} {r.get('path')}" for r in p.get("resources") or []) or "none"
        hosts = ", ".join(p.get("exporter_hosts") or []) or "not stated"
        reservation = f", reservation {p['reservation']}" if p.get("reservation") else ""
        parts.append(f"place {p.get('name')} ({p.get('how')} by {labgrid.get('holder')}{reservation}); exporters "
                     f"{', '.join(p.get('exporters') or []) or 'none'} on {hosts}; resources: {res}")
    return f"Held through labgrid coordinator {labgrid.get('coordinator')}: " + "; ".join(parts) + "."


def _instrument_rows(instruments: list, test_date: _dt.date | None) -> list[dict]:
    rows = []
    for ins in instruments or []:
        if not isinstance(ins, dict):
            continue
        due_text = ins.get("calibration_due")
        due = _date(due_text) if due_text else None
        if due_text is None:
            status, cls = "not calibrated / n.a.", "muted"
        elif due is None:
            status, cls = f"unreadable due date {due_text!r}", "fail"
        elif test_date is not None and due < test_date:
            status, cls = f"EXPIRED ({(test_date - due).days} days before the test)", "fail"
        else:
            status, cls = "valid", "pass"
        rows.append(
            {
                "role": ins.get("role", ""),
                "model": ins.get("model", ""),
                "serial": ins.get("serial", ""),
                "due": due_text or "—",
                "status": status,
                "cls": cls,
                "expired": status.startswith("EXPIRED"),
                "notes": ins.get("notes", ""),
            }
        )
    return rows


def _deviations(summary: RecordSummary, instruments: list[dict], ctx: dict) -> list[dict]:
    rows = []
    for d in summary.deviations:
        rows.append({"kind": d.get("kind") or "note", "test": d.get("test") or "—", "message": clean_text(d.get("message"))})
    noted = {(r["test"], r["kind"]) for r in rows}
    for t in summary.tests.values():
        if t.status == "skipped" and (t.nodeid, "skipped") not in noted:
            rows.append({"kind": "skipped", "test": t.nodeid, "message": t.message or "skipped"})
        elif t.status == "error" and (t.nodeid, "rig_fault") not in noted:
            rows.append({"kind": "rig_fault", "test": t.nodeid, "message": t.message or "rig fault: the board was not judged"})
    if not summary.complete:
        unfinished = summary.unfinished_tests
        rows.append({
            "kind": "incomplete", "test": "—",
            "message": "The record has no run_end: the run was interrupted. "
            + (f"{len(unfinished)} planned test(s) never ended." if unfinished else "Every started test ended."),
        })
    if summary.torn_tail:
        rows.append({"kind": "note", "test": "—", "message": "The record's last line was torn (written when the run was killed) and is not part of this report."})
    for ins in instruments:
        if ins["expired"]:
            rows.append({"kind": "calibration", "test": "—",
                         "message": f"{ins['role']} {ins['model']} s/n {ins['serial']}: calibration due {ins['due']} had expired on the date of test."})
    missing = identity_problems(summary.dut)
    if missing:
        rows.append({"kind": "identity", "test": "—",
                     "message": "The item tested is not identified (" + "; ".join(missing) + "): no statement of "
                     "conformity is made; the results below cannot be attributed to an item."})
    if ctx.get("defects"):
        rows.append({"kind": "defects", "test": "—",
                     "message": "Defects were injected on the virtual bench: " + ", ".join(ctx["defects"])})
    return rows


def _plots_for(t: TestRecord, summary: RecordSummary, profile: dict, ids) -> list[dict]:
    out = []
    acc = plots.profile_get(profile, "sampling", "accuracy_mv")
    if has_measurement_plot(t.measurements):
        prefix = f"plot{next(ids)}"
        svg = plots.safe_svg(lambda: plots.sampling_error_svg(t.measurements, None if acc is None else float(acc), prefix) or "",
                             "sampling error")
        if svg:
            out.append({"caption": "Sampling error per channel against the ± accuracy band (from the measurements)",
                        "svg": svg, "measurement": None, "m_i": None})
    for c in t.captures:
        out.append(_capture_plot(c, summary, profile, ids))
    return out


def _capture_plot(c: dict, summary: RecordSummary, profile: dict, ids) -> dict:
    name, kind = c.get("name") or "capture", c.get("kind")
    prefix = f"plot{next(ids)}"

    def render() -> str:
        cols = read_capture(summary.run_dir, c["file"])
        return plots.capture_svg(kind, name, cols, c.get("units") or {}, c.get("meta") or {}, profile, prefix)

    meta = c.get("meta") or {}
    shows = ", ".join(x for x in ((f"cell {meta['cell']}" if meta.get("cell") is not None else ""),
                                  (f"illustrates {meta['measurement']}" if meta.get("measurement") else "")) if x)
    caption = f"{name}" + (f" ({kind})" if kind else "") + (f", {shows}" if shows else "") \
        + f" — {c.get('file')}, {c.get('rows', '?')} rows"
    return {"caption": caption, "svg": plots.safe_svg(render, c.get("file") or name),
            "measurement": meta.get("measurement"), "m_i": None}


def report_context(summary: RecordSummary, issued: _dt.datetime | None = None, with_plots: bool = True,
                   signature: dict | None = None, trend: dict | None = None) -> dict:
    """Everything the report states, as plain data. ``signature``: ``{"algorithm",
    "fingerprint"}`` of the key that signs the manifest, or ``{"reason"}`` why none does."""
    ctx = summary.context
    profile = ctx.get("board_profile") or {}
    requirements = record_requirements(ctx)
    rig = ctx.get("rig") or {}
    lab = ctx.get("lab") or {}
    plans = ctx.get("plans") or {}
    issued = issued or _dt.datetime.now(_dt.timezone.utc)
    start_wall = (summary.run_start or {}).get("t_wall") or summary.first_wall
    end_wall = (summary.run_end or {}).get("t_wall") or summary.last_wall
    test_dates = [d for d in (_date(start_wall), _date(end_wall)) if d]
    test_date = max(test_dates) if test_dates else None
    instruments = _instrument_rows(rig.get("instruments") or [], test_date)
    default_rule = rule_name(ctx.get("decision_rule"))
    rules_used = sorted({rule_name(m.get("decision_rule")) or default_rule for m in summary.measurements} - {None})
    if not rules_used and default_rule:
        rules_used = [default_rule]
    verdict = overall_verdict(summary)
    trace = traceability(summary, requirements)
    unverified = unverified_requirements(trace)
    labcfg = lab_facts(ctx.get("lab_config"))
    if labcfg["customer"] == NOT_STATED and ctx.get("requester") not in (None, "", NOT_STATED):
        labcfg["customer"] = ctx["requester"]

    tests = []
    idx = 0
    ids = itertools.count(1)
    for t in summary.tests.values():
        rows = []
        for m in t.measurements:
            idx += 1
            rows.append(_measurement_row(idx, m, default_rule))
        notes = u_notes(rows)
        tslug = slug(t.nodeid)
        layout = layout_test(rows, t.measurements, tslug)
        tplots = _plots_for(t, summary, profile, ids) if with_plots else []
        for p in tplots:  # a plot that illustrates one measurement links to its table cell
            p["m_i"] = next((r["i"] for r in rows if p.get("measurement") and r["name"] == p["measurement"]), None)
        for k, p in enumerate(tplots, 1):
            p["anchor"] = f"p-{tslug}-{k}"
        tests.append({
            "nodeid": t.nodeid, "name": t.name, "doc": t.doc, "status": t.status, "slug": tslug,
            "raw": t.measurements, "main_rows": layout["main"], "series": layout["series"],
            "annex_tables": annex_tables(layout["series"]),
            "annex_notes": [(k, notes[k - 1]) for k in sorted({v["u_note"] for sr in layout["series"] for row in sr["cells"]
                                                                for v in row["vals"] if v and v["u_note"]})],
            "cls": {"passed": "pass", "failed": "fail", "error": "error", "skipped": "muted"}.get(t.status, "incomplete"),
            "duration": _fmt_duration(t.duration_s),
            "requirements": t.requirements, "message": clean_text(t.message),
            "measurements": rows, "n_fail": sum(r["cls"] == "fail" for r in rows), "u_notes": notes,
            "plots": tplots,
            "deviations": t.deviations,
        })
    run_plots = [_capture_plot(c, summary, profile, ids) for c in summary.run_captures] if with_plots else []
    for k, p in enumerate(run_plots, 1):
        p["anchor"] = f"p-run-{k}"
    failures = [t for t in tests if t["status"] in ("failed", "error") or t["n_fail"]]
    failures.sort(key=lambda t: (t["status"] != "failed", t["nodeid"]))
    for t in failures:
        t["failed_rows"] = [r for r in t["measurements"] if r["cls"] == "fail"]

    banners = []
    if not summary.complete:
        n = len(summary.unfinished_tests)
        banners.append(("incomplete", "Incomplete run",
                        "The run record ends without run_end: the run was interrupted. "
                        + (f"{n} planned test(s) never ended (listed below)." if n else "")))
    if ctx.get("defects"):
        banners.append(("fail", "Defects injected",
                        "This run injected defects into the virtual bench's board: " + ", ".join(ctx["defects"])
                        + ". Its results describe the defective model, not the board as built."))
    for ins in instruments:
        if ins["expired"]:
            banners.append(("fail", "Expired calibration",
                            f"{ins['role']}: {ins['model']} s/n {ins['serial']}, calibration due {ins['due']}, "
                            "expired before the date of test. Results depending on it are not traceable."))
    if summary.torn_tail:
        banners.append(("incomplete", "Torn record", "The last line of the record was torn when the run was killed; it is ignored."))
    if not labcfg["authorised"]:
        banners.append(("note", "Not authorised",
                        "No approver and authorisation statement are stated (lab configuration "
                        + ("file " + labcfg["source"] if labcfg["source"] else "not given: --lab-config or $BMSRIG_LAB")
                        + "): this report is not authorised for issue."))
    if rig.get("kind") == "bench":
        banners.append(("note", "Virtual bench", "The DUT was the simulated board of the virtual bench, not hardware."))

    measurements = summary.measurements
    n_meas_fail = sum(m.get("verdict") != "pass" for m in measurements)
    counts = summary.counts()
    plan_files = [{"path": f.get("path", ""), "sha256": f.get("sha256", "")} for f in (plans.get("files") or []) if isinstance(f, dict)]
    run_id = summary.run_id or "unknown-run"
    dut = summary.dut or {}
    return {
        "run_id": run_id,
        "title": ctx.get("title") or "BMS board test report",
        "lab": {"name": lab.get("name") or "—", "location": lab.get("location") or "—",
                "accreditation": lab.get("accreditation")},
        "requester": labcfg["customer"],
        "labcfg": labcfg,
        "operator": ctx.get("operator") or "—",
        "test_start": _fmt_wall(start_wall),
        "test_end": _fmt_wall(end_wall) + ("" if summary.complete else " (last record; run interrupted)"),
        "issued": issued.astimezone(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "verdict": verdict,
        "verdict_cls": VERDICT_CLASS.get(verdict, "incomplete"),
        "complete": summary.complete,
        "exit_code": gated_exit_code(summary),
        "banners": banners,
        "counts": counts,
        "n_tests": len(summary.tests),
        "n_meas": len(measurements),
        "n_meas_fail": n_meas_fail,
        "failures": failures,
        "unfinished": [(n, summary.tests[n].status) for n in summary.unfinished_tests],
        "dut": {
            "serial": dut.get("serial") or "not read", "hw_revision": dut.get("hw_revision") or "not read",
            "fw_version": dut.get("fw_version") or "not read", "read": bool(summary.dut),
            "from_item": [k.replace("_", " ") for k, v in (dut.get("identity_source") or {}).items() if v != "board"],
            "profile": profile.get("name") or "—", "description": profile.get("description") or "",
            "chemistry": (profile.get("chemistry") or "").upper(), "cells": profile.get("cells"),
            "capacity_ah": profile.get("capacity_ah"), "profile_path": ctx.get("profile_path") or profile.get("source") or "",
        },
        "method": {
            "plans": plan_files, "git_commit": plans.get("git_commit") or "not recorded",
            "git_dirty": plans.get("git_dirty"),
            "bmsrig_version": ctx.get("bmsrig_version") or "—",
            "argv": " ".join(str(a) for a in (ctx.get("argv") or [])),
            "planned": len(summary.planned_tests),
        },
        "rig": {"env": rig.get("env") or "—", "kind": rig.get("kind") or "—", "instruments": instruments,
                "shared": shared_rig_line(rig.get("labgrid"))},
        "conditions": conditions_section(summary, ctx),
        "rules": [{"name": r, "text": RULE_TEXT.get(r, f"Decision rule {r!r} (as recorded)."), "risk": RULE_RISK.get(r, "")} for r in rules_used],
        "near_limit": sum(_near_limit(m) for m in measurements if rule_name(m.get("decision_rule")) == "simple"),
        "conformity": _conformity(verdict, profile.get("name"), rules_used, unverified),
        "unverified": unverified,
        "tests": tests,
        "run_plots": run_plots,
        "deviations": _deviations(summary, instruments, ctx),
        "trace": _with_worst(trace, worst_by_requirement(tests)),
        "annex": [t for t in tests if t["series"]],
        "trend": trend_rows(trend),
        "signature": {"algorithm": "Ed25519", "fingerprint": None, "reason": "no signing key was given",
                      **(signature or {})},
        "generator": f"bmsrig {ctx.get('bmsrig_version') or ''}".strip(),
    }


def _with_worst(trace: list[dict], worst: dict) -> list[dict]:
    for row in trace:
        row["worst"] = worst.get(row["id"])
    return trace


def unverified_requirements(trace: list[dict]) -> list[str]:
    """The requirements a PASS says nothing about: wholly or partly not verified (the board
    does not report a quantity they rest on) or not tested at all, in traceability order."""
    return [row["id"] for row in trace
            if row["verdict"].startswith(("NOT VERIFIED", "NOT TESTED")) or "NOT VERIFIED" in row["verdict"]]


def _conformity(verdict: str, profile: str | None, rules: list[str], unverified: list[str] = ()) -> str:
    spec = f"board profile {profile!r}" if profile else "the board profile"
    rule = " and ".join(f"{r} acceptance" for r in rules) or "the decision rule stated"
    if verdict == "PASS" and unverified:
        return (f"The item tested conforms to the requirements of {spec} that were tested, under {rule}. "
                f"No statement is made on {', '.join(unverified)}: not verified or not tested on this board "
                f"in this run (see Requirement traceability).")
    if verdict == "PASS":
        return f"The item tested conforms to the requirements of {spec} that were tested, under {rule}."
    if verdict == "FAIL":
        return f"The item tested does not conform to {spec}: at least one result failed under {rule} (failures listed on page 1)."
    if verdict == UNIDENTIFIED:
        return ("No statement of conformity is made: the item tested is not identified (its serial number or "
                "firmware version was not read), so the results cannot be attributed to an item (see Deviations).")
    if verdict == "INCOMPLETE":
        return "No statement of conformity is made: the run is incomplete. The results shown are those recorded before it stopped."
    if verdict == "ERROR":
        return "No statement of conformity is made: rig faults prevented judging part of the board (see Deviations)."
    return "No statement of conformity is made: no test was run."


def css_string(text: Any) -> str:
    """A CSS string literal's body for ``content: "..."`` (quotes, backslashes, newlines escaped)."""
    return re.sub(r'(["\\])', r"\\\1", str(text)).replace("\n", " ")


def halves(entries: list, sub_weight: float = 0.9) -> tuple[list, list]:
    """``entries`` (``(li class, href, label)``) split in two columns of about the same
    height, in order; an entry of class ``sub`` is set smaller (7.2 pt against 8 pt)."""
    heights = [sub_weight if e[0] == "sub" else 1.0 for e in entries]
    total, run = sum(heights), 0.0
    for k, h in enumerate(heights):
        if run + h / 2 > total / 2:
            return entries[:k], entries[k:]
        run += h
    return entries, []


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["css_string"] = css_string
    env.filters["halves"] = halves
    return env


def render_html(summary: RecordSummary, issued: _dt.datetime | None = None, with_plots: bool = True,
                signature: dict | None = None, trend: dict | None = None) -> str:
    """The report as one self-contained HTML string."""
    return _env().get_template("report.html.j2").render(**report_context(summary, issued, with_plots, signature, trend))
