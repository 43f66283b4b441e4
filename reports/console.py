"""What ``bmsrig run`` prints about a run that did not pass: per failing requirement, its
failed measurements with value, limits and acceptance, and where the plot and table are.

Read from ``summary.json`` (the CI contract), never from pytest's output: the plans run
under pytest with ``--tb=no``, so no framework internals reach the operator.
"""

from __future__ import annotations

import json
from pathlib import Path

from .conditions import cond_text
from .fmt import fmt_limits, fmt_value_u

MAX_PER_REQUIREMENT = 5


def _limits(pair: dict | None) -> str:
    pair = pair or {}
    return fmt_limits([pair.get("low"), pair.get("high")])


def _measurement_line(m: dict) -> str:
    """``name = value ±U unit (conditions); limits …, acceptance …`` (the report's rounding)."""
    u = (m.get("uncertainty") or {}).get("U")
    value, ustr = fmt_value_u(m.get("value"), u)
    unit = m.get("unit") if m.get("unit") not in (None, "", "1") and m.get("value") is not None else ""
    cond = cond_text(m.get("conditions"))
    return (f"{m.get('name')} = {value}{f' ±{ustr}' if u else ''}{(' ' + unit) if unit else ''}"
            f"{f' ({cond})' if cond else ''}; limits {_limits(m.get('limits'))}, acceptance {_limits(m.get('acceptance'))}")


def failure_lines(doc: dict, run_dir: Path | str) -> list[str]:
    """The lines to print for a run's failures (empty when nothing failed)."""
    run_dir = Path(run_dir)
    tests = {t["nodeid"]: t for t in doc.get("tests") or []}
    lines: list[str] = []
    shown_tests: set[str] = set()
    for rid, req in (doc.get("requirements") or {}).items():
        if req.get("verdict") != "FAIL":
            continue
        lines.append(f"FAIL {rid}: {req.get('text') or ''}".rstrip())
        failed = [r for r in req.get("measurements") or [] if r.get("verdict") != "pass"]
        for ref in failed[:MAX_PER_REQUIREMENT]:
            t = tests.get(ref.get("test")) or {}
            ms = t.get("measurements") or []
            m = ms[ref["index"]] if isinstance(ref.get("index"), int) and ref["index"] < len(ms) else ref
            lines.append(f"  {_measurement_line(m)}")
        if len(failed) > MAX_PER_REQUIREMENT:
            lines.append(f"  … and {len(failed) - MAX_PER_REQUIREMENT} more failed measurements")
        for nodeid, outcome in (req.get("tests") or {}).items():
            t = tests.get(nodeid) or {}
            if outcome == "passed" and not any(r.get("test") == nodeid for r in failed):
                continue
            shown_tests.add(nodeid)
            lines.append(f"  test {nodeid.split('::', 1)[-1]} ({outcome}): {_where(t, run_dir)}")
    for nodeid, t in tests.items():
        if nodeid in shown_tests or t.get("outcome") not in ("failed", "error"):
            continue
        first = (t.get("message") or "").strip().splitlines()[:1]
        lines.append(f"{t['outcome'].upper()} {nodeid.split('::', 1)[-1]}" + (f": {first[0]}" if first else ""))
        lines.append(f"  {_where(t, run_dir)}")
    return lines


def _where(t: dict, run_dir: Path) -> str:
    plots = t.get("plots") or []
    table = run_dir / (t.get("report_anchor") or "report.html")
    if plots:
        return f"plot {run_dir / plots[0]}" + (f" (+{len(plots) - 1} more)" if len(plots) > 1 else "") + f", table {table}"
    return f"table {table} (no plot)"


def print_failures(run_dir: Path | str, out) -> int:
    """Print the failures of the run in ``run_dir`` from its summary.json to ``out``;
    the number of lines printed (0 when there is no summary or nothing failed)."""
    path = Path(run_dir) / "summary.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    lines = failure_lines(doc, run_dir)
    for line in lines:
        print(line, file=out)
    return len(lines)
