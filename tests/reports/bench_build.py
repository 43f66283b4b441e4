"""Time a full report build of a large synthetic run (not a test; run it by hand or from CI).
``bmsrig bench report-build`` gives the same figure for a real full-plan 16S run.

    python tests/reports/bench_build.py [--repeat-sampling 6] [--extra-captures 4] [--runs 3]

Prints JSON: measurements, captures, pages and the seconds of each build step (best and
all runs). Every run builds in a fresh process-less way: same interpreter, so the first
run includes WeasyPrint's import and font set-up and the later ones do not.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo, ahead of a stale editable finder

from reports_synthetic import make_run  # noqa: E402

import reports  # noqa: E402
from rig.record import load_summary  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat-sampling", type=int, default=6)
    ap.add_argument("--extra-captures", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = make_run(Path(tmp) / "run", repeat_sampling=args.repeat_sampling, extra_captures=args.extra_captures)
        s = load_summary(run_dir)
        results = []
        for _ in range(args.runs):
            timings: dict = {}
            t0, c0 = time.perf_counter(), time.process_time()
            reports.build(run_dir, timings=timings)
            timings["total"] = time.perf_counter() - t0
            timings["cpu"] = time.process_time() - c0
            results.append({k: round(v, 3) if isinstance(v, float) else v for k, v in timings.items()})
        print(json.dumps({
            "measurements": len(s.measurements), "captures": len(s.captures),
            "pages": results[-1].get("pdf_pages"),
            "total_s_first": results[0]["total"], "total_s_best": min(r["total"] for r in results),
            "cpu_s_first": results[0]["cpu"], "cpu_s_best": min(r["cpu"] for r in results),
            "runs": results,
        }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
