"""How the report lays out many measurements: the worst case up front, per-cell tables in an annex.

A 16S board gives ~700 measurements, most of them one per cell (``cell05_error_mv``). One
row each made a 56-page report. Here a test's per-cell measurements of one kind form a
*series*: section 7 shows its worst case (smallest margin to an acceptance limit) with a
link to its per-cell table in Annex A, where the cells are rows and the set points columns.
Measurements not tied to a cell stay one row each in section 7.

Anchors (HTML ``id``, also PDF link targets with their page numbers): ``t-<slug>`` a test
in section 7, ``a-<slug>`` its annex tables, ``m-<i>`` measurement ``#i`` (its annex cell,
or its section 7 row), ``p-<slug>-<k>`` the test's k-th plot.
"""

from __future__ import annotations

import re

from .conditions import cond_text
from .summary_json import margin

CELL_RE = re.compile(r"^cell(\d+)_(.+)$")


def split_cell(name: str) -> tuple[int | None, str]:
    """``cell05_error_mv`` → (5, ``error_mv``); a name without a cell prefix → (None, name)."""
    m = CELL_RE.match(name or "")
    return (int(m.group(1)), m.group(2)) if m else (None, name)


def _common_conditions(ms: list[dict]) -> dict:
    """The conditions every measurement of a column shares (the set point), without ``cell``."""
    if not ms:
        return {}
    first = {k: v for k, v in (ms[0].get("conditions") or {}).items() if k != "cell"}
    return {k: v for k, v in first.items() if all((m.get("conditions") or {}).get(k) == v for m in ms[1:])}


def layout_test(rows: list[dict], raws: list[dict], test_slug: str) -> dict:
    """Split a test's measurement rows (section 7 rows, formatted) into ``main`` rows (one per
    measurement not tied to a cell, plus one worst-case row per series) and ``series``
    (annex tables). ``raws`` are the recorded measurements in the same order."""
    by_base: dict[str, dict[int, list[int]]] = {}
    for j, raw in enumerate(raws):
        cell, base = split_cell(str(raw.get("name") or ""))
        if cell is not None:
            by_base.setdefault(base, {}).setdefault(cell, []).append(j)
    series_bases = {b for b, cells in by_base.items() if len(cells) >= 2}
    main, series = [], []
    placed: set[str] = set()
    for j, raw in enumerate(raws):
        cell, base = split_cell(str(raw.get("name") or ""))
        if cell is None or base not in series_bases:
            main.append({**rows[j], "series": None})
            continue
        if base in placed:
            continue
        placed.add(base)
        s = _series(base, by_base[base], rows, raws, test_slug, len(series) + 1)
        series.append(s)
        main.append(s["worst_row"])
    return {"main": main, "series": series}


def _series(base: str, cells: dict[int, list[int]], rows, raws, test_slug: str, k: int) -> dict:
    n_cols = max(len(ix) for ix in cells.values())
    columns = []
    for c in range(n_cols):
        members = [raws[ix[c]] for ix in cells.values() if len(ix) > c]
        first = rows[next(ix[c] for ix in cells.values() if len(ix) > c)]
        same_limits = all(rows[ix[c]]["limits"] == first["limits"] for ix in cells.values() if len(ix) > c)
        columns.append({"label": cond_text(_common_conditions(members)) or (f"#{c + 1}" if n_cols > 1 else ""),
                        "limits": first["limits"] if same_limits else "per cell",
                        "acceptance": first["acceptance"] if same_limits else "per cell"})
    table = []
    for cell in sorted(cells):
        values = []
        for c in range(n_cols):
            if c < len(cells[cell]):
                r = rows[cells[cell][c]]
                values.append({"i": r["i"], "value": r["value"], "u": r["uncertainty"], "cls": r["cls"],
                               "u_note": r.get("u_note", 0)})
            else:
                values.append(None)
        table.append({"cell": cell, "vals": values})
    members = [j for ix in cells.values() for j in ix]
    failed = [j for j in members if rows[j]["cls"] == "fail"]

    def badness(j):
        mg = margin(raws[j])
        return (rows[j]["cls"] != "fail", mg if mg is not None else float("inf"))

    worst_j = min(members, key=badness)
    w = rows[worst_j]
    anchor = f"a-{test_slug}-{k}"
    n_fail = len(failed)
    worst_row = {**w, "series": {"anchor": anchor, "n": len(members), "n_cells": len(cells), "n_fail": n_fail,
                                 "base": base},
                 "name": f"{base}: worst of {len(members)}", "cls": "fail" if n_fail else w["cls"],
                 "verdict": f"FAIL ({n_fail})" if n_fail else w["verdict"]}
    return {"base": base, "unit": w["unit"], "anchor": anchor, "columns": columns, "cells": table,
            "n": len(members), "n_fail": n_fail, "worst_row": worst_row, "u_notes": []}


def worst_by_requirement(tests: list[dict]) -> dict[str, dict]:
    """Per requirement: its worst measurement (a failed one first, then the smallest margin)
    as ``{"name", "value", "unit", "cls", "i", "test_anchor"}`` from the report's tests."""
    best: dict[str, tuple] = {}
    for t in tests:
        for r, raw in zip(t["measurements"], t["raw"]):
            req = r["requirement"] or (t["requirements"][0] if len(t["requirements"]) == 1 else None)
            if not req:
                continue
            mg = margin(raw)
            key = (r["cls"] != "fail", mg if mg is not None else float("inf"))
            if req not in best or key < best[req][0]:
                best[req] = (key, {"name": r["name"], "value": r["value"], "unit": r["unit"], "cls": r["cls"],
                                   "limits": r["limits"], "i": r["i"], "test_anchor": "t-" + t["slug"]})
    return {k: v[1] for k, v in best.items()}


def annex_tables(series: list[dict], max_cols: int = 12) -> list[dict]:
    """A test's series side by side: tables of at most ``max_cols`` value columns, a row per
    cell; ``groups`` head the columns (one per series, with its anchor and unit)."""
    chunks: list[list[tuple[dict, int]]] = [[]]
    for sr in series:
        cols = list(range(len(sr["columns"])))
        if chunks[-1] and len(chunks[-1]) + len(cols) > max_cols:
            chunks.append([])
        for c in cols:
            if len(chunks[-1]) >= max_cols:
                chunks.append([])
            chunks[-1].append((sr, c))
    tables = []
    for chunk in chunks:
        if not chunk:
            continue
        groups: list[dict] = []
        for sr, c in chunk:
            if groups and groups[-1]["series"] is sr:
                groups[-1]["span"] += 1
            else:
                groups.append({"series": sr, "span": 1, "base": sr["base"], "unit": sr["unit"],
                               "anchor": sr["anchor"] if c == 0 else None})
        cells = sorted({row["cell"] for sr, _ in chunk for row in sr["cells"]})
        vals_of = {(id(sr), row["cell"]): row["vals"] for sr, _ in chunk for row in sr["cells"]}
        rows = [{"cell": cell, "vals": [(vals_of.get((id(sr), cell)) or [])[c:c + 1][0]
                                        if len(vals_of.get((id(sr), cell)) or []) > c else None
                                        for sr, c in chunk]} for cell in cells]
        tables.append({"groups": [{k: v for k, v in g.items() if k != "series"} for g in groups],
                       "columns": [sr["columns"][c] for sr, c in chunk], "cells": rows})
    return tables


def trend_rows(trend: dict | None) -> dict | None:
    """The results database's trend (:func:`rig.results_db.trend`) as report text: per key
    measurement its earlier values (oldest first, "—" where a run lacks it) and this run's."""
    if not trend or not trend.get("rows"):
        return None
    from .fmt import fmt_limits, fmt_plain

    runs = [{"run_id": r.get("run_id") or "", "date": str(r.get("started") or "")[:10],
             "fw": r.get("fw_version") or "—", "verdict": r.get("verdict") or ""} for r in trend.get("runs") or []]
    rows = [{"requirement": r["requirement"], "name": r["name"],
             "unit": "" if r.get("unit") in (None, "1") else r["unit"], "limits": fmt_limits(r.get("limits")),
             "vals": ["—" if v is None else fmt_plain(v, 4) for v in r.get("values") or []],
             "current": "—" if r.get("current") is None else fmt_plain(r["current"], 4),
             "cls": "pass" if r.get("verdict") == "pass" else "fail"} for r in trend["rows"]]
    return {"runs": runs, "rows": rows}
